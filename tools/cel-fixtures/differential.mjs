// Writes tests/fixtures/cel/differential.json: ~2,000 random expressions over lib/cel's subset,
// each evaluated by @bufbuild/cel against one of a few JSON records bound as `message`, with the
// verdict (a type-tagged value as in export-conformance.mjs, or an error). A fixed seed makes the
// file reproducible. Usage: npm install && node differential.mjs [count]
import { writeFileSync } from "node:fs";
import { run } from "@bufbuild/cel";

const COUNT = Number(process.argv[2] || 2000);
let seed = 0x5eed;
function rand(n) { // xorshift32: the same expressions on every run
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed % n;
}
const pick = (a) => a[rand(a.length)];

const INPUTS = [
  { age: 42, email: "ann@example.com", score: 0.5, tags: ["vip", "eu"], nested: { x: 1, y: "héllo" }, active: true, note: null },
  { age: -3, email: "bob", score: 1e300, tags: [], nested: {}, active: false, count: 9223372036854775807n },
  { age: 0, email: "", score: -2.5, tags: ["a", "b", "c"], nested: { x: -7 }, active: true },
];

// Mostly well-typed expressions (a random mix of types would almost always be a type error),
// with an ill-typed operand now and then so that errors and their absorption are exercised too.
const LEAVES = {
  bool: ["true", "false", "message.active", "has(message.missing)", "has(message.nested.x)"],
  int: ["0", "1", "-1", "7", "42", "9223372036854775807", "-9223372036854775808", "message.age", "message.nested.x", "message.count"],
  uint: ["0u", "3u", "18446744073709551615u"],
  double: ["0.0", "0.5", "-2.5", "1e300", "2.0", "message.score"],
  string: ["''", "'abc'", "'héllo'", "'@'", "'ann'", "message.email", "message.nested.y", "message.missing"],
  list: ["[1, 2, 3]", "['vip', 'x']", "[]", "message.tags", "[1, 2u, 3.0]"],
  map: ["{'x': 1, 'y': 2}", "{1: 'one', 2u: 'two'}", "message.nested", "message"],
  any: ["null", "message.note", "b'ab'"],
};
const TYPES = ["bool", "int", "uint", "double", "string"];
const NUMERIC = ["int", "uint", "double"];

function gen(type, depth, exact) {
  if (!exact && rand(20) === 0) type = pick(Object.keys(LEAVES)); // an operand of another type now and then
  if (depth <= 0 || rand(10) < 3) return pick(LEAVES[type]);
  const d = depth - 1;
  if (rand(8) === 0) return `${paren(gen("bool", d))} ? ${gen(type, d)} : ${gen(type, d)}`;
  switch (type) {
    case "bool": {
      const t = pick(TYPES), u = rand(3) ? t : pick(NUMERIC.includes(t) ? NUMERIC : TYPES);
      switch (rand(8)) {
        case 0: return `!${paren(gen("bool", d))}`;
        case 1: case 2: return `${paren(gen("bool", d))} ${pick(["&&", "||"])} ${paren(gen("bool", d))}`;
        case 3: case 4: return `${paren(gen(t, d))} ${pick(["==", "!=", "<", "<=", ">", ">="])} ${paren(gen(u, d))}`;
        case 5: return `${paren(gen(t, d))} in ${paren(gen(pick(["list", "map"]), d))}`;
        case 6: return `${paren(gen("string", d))}.${pick(["startsWith", "endsWith", "contains"])}(${gen("string", d)})`;
        default: return `${paren(gen("string", d))}.matches(${pick(["'^a'", "'[0-9]+'", "r'@example\\.com$'", "'^$'", "'h.llo'"])})`;
      }
    }
    case "int": case "uint": case "double": {
      switch (rand(6)) {
        case 0: return type === "uint" ? `uint(${gen(pick(NUMERIC), d, true)})` : `-${paren(gen(type, d))}`;
        case 1: return `${type}(${gen(pick(NUMERIC), d, true)})`;
        case 2: return type === "int" ? `size(${gen(pick(["string", "list", "map"]), d)})` : gen(type, d);
        default: return `${paren(gen(type, d))} ${pick(type === "double" ? ["+", "-", "*", "/"] : ["+", "-", "*", "/", "%"])} ${paren(gen(type, d))}`;
      }
    }
    case "string":
      return rand(2) ? `${paren(gen("string", d))} + ${paren(gen("string", d))}` : `string(${gen(pick(TYPES), d, true)})`;
    case "list":
      return rand(2) ? `${paren(gen("list", d))} + ${paren(gen("list", d))}` : `[${gen(pick(TYPES), d)}, ${gen(pick(TYPES), d)}]`;
    case "map":
      return `{${gen("string", d)}: ${gen(pick(TYPES), d)}}`;
    default:
      return `${paren(gen("list", d))}[${gen("int", d)}]`;
  }
}
function paren(e) { return /^[\w.'"@]+$/.test(e) ? e : `(${e})`; }

function toCel(v) { // JSON as lib/cel sees it: integers int, reals double, objects maps
  if (typeof v === "number") return v; // every number in INPUTS that is meant as an int is written as one below
  if (Array.isArray(v)) return v.map(toCel);
  if (v && typeof v === "object" && typeof v !== "bigint") return new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)]));
  return v;
}
function intsAsBigint(v, key) {
  if (typeof v === "number" && Number.isInteger(v) && key !== "score") return BigInt(v);
  if (Array.isArray(v)) return v.map((x) => intsAsBigint(x));
  if (v && typeof v === "object" && typeof v !== "bigint") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, intsAsBigint(x, k)]));
  return v;
}
function typed(r) {
  if (r instanceof Error) return null;
  if (typeof r === "bigint") return { int: String(r) };
  if (typeof r === "number") return { double: String(r) };
  if (typeof r === "string") return { string: r };
  if (typeof r === "boolean") return { bool: r };
  if (r === null) return { null: null };
  if (r && typeof r._value === "bigint") return { uint: String(r._value) };
  if (r instanceof Uint8Array) return { bytes: Buffer.from(r).toString("base64") };
  return { unsupported: r && r.constructor ? r.constructor.name : typeof r };
}
function jsonText(v) { // bigints as JSON integers, reals with a fraction or exponent
  return JSON.stringify(v, (k, x) => (typeof x === "bigint" ? `@@${x}@@` : x)).replace(/"@@(-?\d+)@@"/g, "$1");
}

const bound = INPUTS.map((i) => toCel(intsAsBigint(i)));
const cases = [];
const seen = new Set();
while (cases.length < COUNT) {
  const expr = gen(rand(4) ? "bool" : pick(TYPES), 4);
  if (seen.has(expr) || expr.length > 400) continue;
  seen.add(expr);
  const input = cases.length % INPUTS.length;
  let r;
  try { r = run(expr, { message: bound[input] }); } catch (e) { r = e instanceof Error ? e : new Error(String(e)); }
  const value = typed(r);
  cases.push(value ? { expr, input, value } : { expr, input, error: String(r.message).slice(0, 200) });
}
const inputs = INPUTS.map((i) => JSON.parse(jsonText(intsAsBigint(i)).replace(/"score":(-?\d+)([,}])/g, '"score":$1.0$2')));
const text = `{"generator":"tools/cel-fixtures/differential.mjs","oracle":"@bufbuild/cel 0.6.1",\n"inputs":[\n${
  INPUTS.map((i) => jsonText(intsAsBigint(i)).replace(/"score":(-?\d+(e\d+)?)([,}])/g, '"score":$1.0$3')).join(",\n")}],\n"cases":[\n${
  cases.map((c) => JSON.stringify(c)).join(",\n")}]}\n`;
void inputs;
writeFileSync(new URL("../../tests/fixtures/cel/differential.json", import.meta.url), text);
const errors = cases.filter((c) => c.error).length;
console.log(`${cases.length} expressions, ${errors} errors, ${cases.length - errors} values`);
