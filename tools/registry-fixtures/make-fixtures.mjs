#!/usr/bin/env node
// Makes tests/fixtures/registry/: records framed by the REAL Confluent serializers
// (@confluentinc/schemaregistry's AvroSerializer, ProtobufSerializer, JsonSerializer) talking to
// the project's own registry, build/schema-registry. See README.md in this folder.
//
//   node make-fixtures.mjs [path/to/schema-registry] [output dir]
//   (or SCHEMA_REGISTRY_BIN=...; defaults: ../../build/schema-registry, ../../tests/fixtures/registry)
//
// Every record is read back with the matching real deserializer and must equal what was
// written, and the expected JSON of a Protobuf record is made twice (from the deserializer's
// message and from a plain fromBinary of the payload) and must agree, so a fixture the real
// client cannot read never gets committed.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

import {
  AvroDeserializer, AvroSerializer, JsonDeserializer, JsonSerializer, ProtobufDeserializer,
  ProtobufSerializer, SchemaRegistryClient, SerdeType,
} from '@confluentinc/schemaregistry';
import { create, createFileRegistry, createMutableRegistry, fromBinary, toJson } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const registryBin = process.argv[2] ?? process.env.SCHEMA_REGISTRY_BIN ?? path.join(root, 'build/schema-registry');
const outDir = path.resolve(process.argv[3] ?? path.join(root, 'tests/fixtures/registry'));
const USER = 'fixtures', PASSWORD = 'fixtures-secret';

let registryChild = null;

function fail(msg) {
  console.error(`make-fixtures: ${msg}`);
  if (registryChild !== null)
    registryChild.kill('SIGTERM');
  process.exit(1);
}

function readText(name) {
  return fs.readFileSync(path.join(here, name), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// The registry: our own tool, with basic auth on so the client's credentials are exercised.

async function startRegistry(work) {
  const portFile = path.join(work, 'port');
  const child = spawn(registryBin, ['--port', '0', '--port-file', portFile, '--out', path.join(work, 'requests.ndjson'),
    '--user', USER, '--password', PASSWORD], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  registryChild = child;
  for (let i = 0; i < 100 && !fs.existsSync(portFile); i++)
    await new Promise((r) => setTimeout(r, 50));
  if (!fs.existsSync(portFile))
    fail(`${registryBin} did not start`);
  return { child, exited, url: `http://127.0.0.1:${fs.readFileSync(portFile, 'utf8').trim()}`, work };
}

// The requests the registry answered since the last call: "METHOD /path?query -> status".
let requestsSeen = 0;
function requestsSince(registry) {
  const lines = fs.readFileSync(path.join(registry.work, 'requests.ndjson'), 'utf8').split('\n').filter(Boolean);
  const fresh = lines.slice(requestsSeen).map((l) => JSON.parse(l));
  requestsSeen = lines.length;
  return fresh.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ''} -> ${r.status}`);
}

// ---------------------------------------------------------------------------------------------
// Avro: the JSON sluice must print, written as text so a decimal keeps its scale's digits.

function avroNames(schema, ns, names) {
  if (Array.isArray(schema)) {
    schema.forEach((s) => avroNames(s, ns, names));
  } else if (schema !== null && typeof schema === 'object') {
    if (['record', 'enum', 'fixed'].includes(schema.type)) {
      const full = schema.name.includes('.') ? schema.name : `${schema.namespace ?? ns}.${schema.name}`;
      names.set(full, schema);
      ns = full.slice(0, full.lastIndexOf('.'));
      schema.__ns = ns;
    }
    if (schema.type === 'record')
      schema.fields.forEach((f) => avroNames(f.type, ns, names));
    if (schema.type === 'array')
      avroNames(schema.items, ns, names);
    if (schema.type === 'map')
      avroNames(schema.values, ns, names);
  }
  return names;
}

const AVRO_PRIMITIVES = ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'];

function avroResolve(schema, ns, names) {
  if (typeof schema !== 'string' || AVRO_PRIMITIVES.includes(schema))
    return schema;
  const named = names.get(schema.includes('.') ? schema : `${ns}.${schema}`) ?? names.get(schema);
  if (named === undefined)
    fail(`Avro type ${schema} not found`);
  return named;
}

function avroMatches(schema, value, ns, names) {
  const s = avroResolve(schema, ns, names);
  const type = typeof s === 'string' ? s : s.type;
  switch (type) {
    case 'null': return value === null;
    case 'boolean': return typeof value === 'boolean';
    case 'int': case 'long': return Number.isInteger(value);
    case 'float': case 'double': return typeof value === 'number';
    case 'string': return typeof value === 'string';
    case 'enum': return typeof value === 'string' && s.symbols.includes(value);
    case 'bytes': case 'fixed': return Buffer.isBuffer(value);
    case 'array': return Array.isArray(value);
    case 'record': case 'map': return value !== null && typeof value === 'object' && !Array.isArray(value) &&
      !Buffer.isBuffer(value);
    default: return false;
  }
}

// Two's complement big-endian bytes (the Avro decimal encoding) and back.
function decimalBytes(unscaled) {
  let hex = (unscaled < 0n ? (1n << 128n) + unscaled : unscaled).toString(16);
  hex = hex.padStart(hex.length + (hex.length % 2), '0');
  let bytes = Buffer.from(hex, 'hex');
  if (unscaled < 0n) {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0xff && (bytes[i + 1] & 0x80))
      i++;
    bytes = bytes.subarray(i);
  } else if (bytes[0] & 0x80) {
    bytes = Buffer.concat([Buffer.from([0]), bytes]);
  }
  return bytes;
}

function decimalText(bytes, scale) {
  let v = bytes.length ? BigInt(`0x${bytes.toString('hex')}`) : 0n;
  if (bytes.length && (bytes[0] & 0x80))
    v -= 1n << BigInt(8 * bytes.length);
  const digits = (v < 0n ? -v : v).toString().padStart(scale + 1, '0');
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return v < 0n ? `-${text}` : text;
}

function avroJson(schema, value, ns, names) {
  const s = avroResolve(schema, ns, names);
  if (Array.isArray(s)) {
    const branch = s.find((b) => avroMatches(b, value, ns, names));
    if (branch === undefined)
      fail(`no union branch for ${JSON.stringify(value)}`);
    return avroJson(branch, value, ns, names);
  }
  const type = typeof s === 'string' ? s : s.type;
  const inner = s.__ns ?? ns;
  if (s.logicalType === 'decimal')
    return decimalText(value, s.scale ?? 0);
  switch (type) {
    case 'null': case 'boolean': case 'string': case 'enum': return JSON.stringify(value);
    case 'int': case 'long': return String(value);
    case 'float': case 'double':
      if (!Number.isFinite(value))
        fail('NaN and infinities have no JSON');
      return JSON.stringify(value);
    case 'bytes': case 'fixed': return JSON.stringify(value.toString('base64'));
    case 'array': return `[${value.map((v) => avroJson(s.items, v, inner, names)).join(',')}]`;
    case 'map': return `{${Object.keys(value).map((k) => `${JSON.stringify(k)}:${avroJson(s.values, value[k], inner, names)}`).join(',')}}`;
    case 'record': return `{${s.fields.map((f) => `${JSON.stringify(f.name)}:${avroJson(f.type, value[f.name], inner, names)}`).join(',')}}`;
    default: fail(`Avro type ${type} not handled`);
  }
  return '';
}

const DAY_MS = 86400000;

const avroCustomers = [
  {
    case: 'avro-customer-full',
    value: {
      id: 1234567890123, name: 'Ada Lovelace', email: 'ada@example.com', rank: 7, status: 'ACTIVE', vip: true,
      age: 36, rating: 4.5, weight: 61.25, tags: ['math', 'poetry'], attributes: { lang: 'en', team: 'analytical' },
      counters: { logins: 42, failed: 0 }, balance: decimalBytes(1230n), signup: 1700000000123,
      last_seen: 1700000000123456, birthday: Date.UTC(1815, 11, 10) / DAY_MS, wake_up: (7 * 60 + 30) * 60000,
      bed_time: ((23 * 60 + 15) * 60) * 1000000 + 123456, avatar: Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]),
      checksum: Buffer.from([0xde, 0xad, 0xbe, 0xef]), contact: { phone: '+44 20 7946 0000', verified: true },
      backup_contact: { phone: '+44 1632 960000', verified: false },
      orders: [{ sku: 'A-1', quantity: 2 }, { sku: 'B-7', quantity: 1 }],
      home: { street: "12 St James's Square", city: 'London', zip: 'SW1Y 4LB' },
    },
  },
  {
    case: 'avro-customer-edges',
    value: {
      id: -1, name: 'Zoë "quoted" \\ back\nslash', email: null, rank: 'gold', status: 'CLOSED', vip: false, age: 0,
      rating: -0.5, weight: 0, tags: [], attributes: {}, counters: { big: 4503599627370496, small: -4503599627370496 },
      balance: decimalBytes(-5n), signup: 0, last_seen: -1, birthday: 0, wake_up: 0, bed_time: 0,
      avatar: Buffer.alloc(0), checksum: Buffer.from([0, 0, 0, 1]), contact: { phone: '', verified: false },
      backup_contact: null, orders: [], home: { street: 'Straße 1 — ünïcode ✓ 😀', city: 'Zürich', zip: null },
    },
  },
];

// ---------------------------------------------------------------------------------------------
// The customers data product: 10 flat records, the same in every format.

const TIERS = ['BRONZE', 'SILVER', 'GOLD'];
const CITIES = [['Lisbon', 'PT'], ['Oslo', 'NO'], ['Osaka', 'JP'], ['Quito', 'EC'], ['Accra', 'GH']];
const customers = Array.from({ length: 10 }, (_, i) => ({
  id: i + 1,
  name: ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Margaret', 'Dennis'][i],
  email: `customer${i + 1}@example.com`,
  phone: `+1-555-01${String(i).padStart(2, '0')}`,
  street: `${i + 1} Main Street`,
  city: CITIES[i % CITIES.length][0],
  country: CITIES[i % CITIES.length][1],
  age: 20 + 3 * i,
  score: i * 10.25,
  active: i % 3 !== 2,
  tier: TIERS[i % 3],
}));

// ---------------------------------------------------------------------------------------------

function protoRegistry(descriptorSetPath) {
  return createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(descriptorSetPath)));
}

// Equal as data: avsc gives records as instances of generated classes, Buffers stay Buffers.
function sameValue(a, b) {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
}

// Magic byte, schema id and (Protobuf) the message indexes, as a reader sees them.
function parseFrame(bytes, protobuf) {
  if (bytes[0] !== 0)
    fail('magic byte is not 0');
  const id = bytes.readUInt32BE(1);
  let off = 5;
  const indexes = [];
  const varint = () => {
    let v = 0, shift = 0, b;
    do {
      b = bytes[off++];
      v |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return (v >>> 1) ^ -(v & 1);
  };
  if (protobuf) {
    const n = varint();
    for (let i = 0; i < n; i++)
      indexes.push(varint());
    if (n === 0)
      indexes.push(0);
  }
  return { id, indexes, payload: bytes.subarray(off), headerLength: off };
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-fixtures.'));
  const registry = await startRegistry(work);
  const client = new SchemaRegistryClient({
    baseURLs: [registry.url],
    basicAuthCredentials: { credentialsSource: 'USER_INFO', userInfo: `${USER}:${PASSWORD}` },
  });
  // Asked straight from the registry: the client caches "latest" (cacheLatestTtlSecs).
  const latestId = async (subject) => {
    const r = await fetch(`${registry.url}/subjects/${encodeURIComponent(subject)}/versions/latest`,
      { headers: { Authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` } });
    return (await r.json()).id;
  };
  const index = { generator: 'tools/registry-fixtures/make-fixtures.mjs', client: '@confluentinc/schemaregistry 1.10.1', cases: [] };
  const clientRequests = {};
  const written = [];

  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(outDir, 'customers'), { recursive: true });
  fs.mkdirSync(path.join(outDir, 'schemas'), { recursive: true });
  const write = (name, data) => {
    fs.writeFileSync(path.join(outDir, name), data);
    written.push(name);
  };
  const addCase = (c, bytes, expectedText, protobuf) => {
    const frame = parseFrame(bytes, protobuf);
    if (frame.id !== c.schema_id)
      fail(`${c.case}: framed id ${frame.id}, registered ${c.schema_id}`);
    write(`${c.case}.bin`, bytes);
    write(`${c.case}.expected.json`, `${expectedText}\n`);
    index.cases.push({ ...c, ...(protobuf ? { message_indexes: frame.indexes } : {}),
      header_hex: bytes.subarray(0, frame.headerLength).toString('hex'),
      bin: `${c.case}.bin`, expected: `${c.case}.expected.json` });
  };

  // ---- Avro: the referenced schema first, then the one that refers to it; the serializer
  // is told to use the latest version, since by default it derives a schema from the value.
  const addressId = await client.register('com.example.Address', { schemaType: 'AVRO', schema: readText('address.avsc') });
  const customerRefs = [{ name: 'com.example.Address', subject: 'com.example.Address', version: 1 }];
  const customerId = await client.register('profiles.avro-value',
    { schemaType: 'AVRO', schema: readText('customer.avsc'), references: customerRefs });
  const avroNamesMap = avroNames([JSON.parse(readText('address.avsc')), JSON.parse(readText('customer.avsc'))], '', new Map());
  const customerSchema = avroNamesMap.get('com.example.Customer');
  clientRequests['avro: register com.example.Address and profiles.avro-value'] = requestsSince(registry);
  const avroSer = new AvroSerializer(client, SerdeType.VALUE, { useLatestVersion: true });
  const avroDe = new AvroDeserializer(client, SerdeType.VALUE, {});
  for (const c of avroCustomers) {
    const bytes = await avroSer.serialize('profiles.avro', c.value);
    const back = await avroDe.deserialize('profiles.avro', bytes);
    if (!sameValue(back, c.value))
      fail(`${c.case}: the AvroDeserializer read back ${JSON.stringify(back)}`);
    addCase({ case: c.case, format: 'avro', topic: 'profiles.avro', subject: 'profiles.avro-value', schema_id: customerId,
      references: customerRefs }, bytes, avroJson(customerSchema, c.value, 'com.example', avroNamesMap), false);
  }
  clientRequests['avro: AvroSerializer(useLatestVersion) + AvroDeserializer, profiles.avro'] = requestsSince(registry);

  // ---- Protobuf: auto-registered from the descriptors protoc made.
  const descV1 = path.join(work, 'customer.desc');
  const descV2 = path.join(work, 'customer_v2.desc');
  execFileSync('protoc', ['-I', here, '--include_imports', `--descriptor_set_out=${descV1}`, path.join(here, 'customer.proto')]);
  // The newer version is customer.proto with two more Order fields, made here so the two
  // cannot drift apart; it keeps the file name, as a new version of a schema would.
  const v1Text = readText('customer.proto');
  const v2Text = v1Text.replace('  sfixed32 offset = 20;\n', '  sfixed32 offset = 20;\n  string coupon = 21;\n  repeated string labels = 22;\n');
  if (v2Text === v1Text)
    fail('customer.proto: the line "sfixed32 offset = 20;" that v2 extends is gone');
  fs.mkdirSync(path.join(work, 'v2'));
  fs.writeFileSync(path.join(work, 'v2', 'customer.proto'), v2Text);
  execFileSync('protoc', ['-I', path.join(work, 'v2'), '--include_imports', `--descriptor_set_out=${descV2}`,
    path.join(work, 'v2', 'customer.proto')]);
  const regV1 = protoRegistry(descV1), regV2 = protoRegistry(descV2);
  const msg = (reg, name) => reg.getMessage(`com.example.${name}`);
  const serializerFor = (reg, conf) => new ProtobufSerializer(client, SerdeType.VALUE,
    { registry: createMutableRegistry(msg(reg, 'Customer'), msg(reg, 'Order'), msg(reg, 'Order.Line')), ...conf });
  const protoDe = new ProtobufDeserializer(client, SerdeType.VALUE, {});
  const protoExpected = async (topic, bytes, reg) => {
    const viaClient = await protoDe.deserialize(topic, bytes);
    const desc = reg.getMessage(viaClient.$typeName);
    const frame = parseFrame(bytes, true);
    const direct = toJson(desc, fromBinary(desc, frame.payload), { registry: reg });
    const mine = toJson(desc, viaClient, { registry: reg });
    if (!isDeepStrictEqual(direct, mine))
      fail(`${topic}: ProtobufDeserializer gave ${JSON.stringify(mine)}, fromBinary ${JSON.stringify(direct)}`);
    return JSON.stringify(direct);
  };
  const orderInit = {
    orderId: 9007199254740993n, customerRef: 18446744073709551615n, delta: -42, checksum: 0xfedcba9876543210n,
    status: 2, tier: 2, packedCounts: [1, 2, 300, -1], unpackedCounts: [5, 0, -7],
    lines: [{ sku: 'A-1', quantity: 2, priceCents: -1999n }, { sku: 'B-7', quantity: 1, priceCents: 250n }],
    payment: { case: 'cardToken', value: 'tok_123' }, attributes: { weight_g: 1200n, neg: -3n },
    createdAt: { seconds: 1700000000n, nanos: 123000000 }, processing: { seconds: 1n, nanos: 500000000 },
    note: 'fragile', discount: 250n, gift: false, blob: new Uint8Array([0, 1, 2, 0xff]), total: 123.5, offset: -8,
  };
  const orderEdges = {
    orderId: -1n, payment: { case: 'voucherId', value: -9223372036854775808n },
    createdAt: { seconds: -1n, nanos: 0 }, processing: { seconds: -2n, nanos: -250000000 }, gift: true,
    attributes: {}, lines: [{}], note: '',
  };
  const protoCases = [
    { case: 'protobuf-order', type: 'Order', init: orderInit },
    { case: 'protobuf-order-defaults', type: 'Order', init: orderEdges },
    { case: 'protobuf-order-line', type: 'Order.Line', init: { sku: 'Z-9', quantity: 4294967295, priceCents: -9223372036854775808n } },
  ];
  const protoSer = serializerFor(regV1, { autoRegisterSchemas: true });
  for (const c of protoCases) {
    const bytes = await protoSer.serialize('orders.proto', create(msg(regV1, c.type), c.init));
    addCase({ case: c.case, format: 'protobuf', topic: 'orders.proto', subject: 'orders.proto-value',
      schema_id: await latestId('orders.proto-value'), message: `com.example.${c.type}` },
    bytes, await protoExpected('orders.proto', bytes, regV1), true);
  }
  const orderV1Id = await latestId('orders.proto-value');
  clientRequests['protobuf: ProtobufSerializer(autoRegisterSchemas) + ProtobufDeserializer, orders.proto (+ GET .../versions/latest by the script)'] =
    requestsSince(registry);

  // A newer writer (two more fields): once under its own new id, once pinned to the old id, so
  // that a reader of the old schema meets fields it does not know.
  const v2Init = { ...orderInit, coupon: 'WELCOME10', labels: ['gift', 'express'] };
  const v2Bytes = await serializerFor(regV2, { autoRegisterSchemas: true })
    .serialize('orders.proto', create(msg(regV2, 'Order'), v2Init));
  const orderV2Id = await latestId('orders.proto-value');
  addCase({ case: 'protobuf-order-v2', format: 'protobuf', topic: 'orders.proto', subject: 'orders.proto-value',
    schema_id: orderV2Id, message: 'com.example.Order' }, v2Bytes, await protoExpected('orders.proto', v2Bytes, regV2), true);
  const unknownBytes = await serializerFor(regV2, { useSchemaId: orderV1Id })
    .serialize('orders.proto', create(msg(regV2, 'Order'), v2Init));
  const unknownJson = await protoExpected('orders.proto', unknownBytes, regV1);
  if (unknownJson !== JSON.stringify(JSON.parse(fs.readFileSync(path.join(outDir, 'protobuf-order.expected.json'), 'utf8'))))
    fail('the unknown-field record does not read as protobuf-order under the old schema');
  addCase({ case: 'protobuf-order-unknown-fields', format: 'protobuf', topic: 'orders.proto', subject: 'orders.proto-value',
    schema_id: orderV1Id, message: 'com.example.Order', unknown_fields: [21, 22] }, unknownBytes, unknownJson, true);
  clientRequests['protobuf: v2 writer (autoRegisterSchemas), then v2 writer pinned to v1 (useSchemaId), orders.proto'] =
    requestsSince(registry);

  // ---- JSON Schema: registered first; the serializer uses the latest version and validates.
  const jsonId = await client.register('profiles.json-value', { schemaType: 'JSON', schema: readText('customer.schema.json') });
  clientRequests['json: register profiles.json-value'] = requestsSince(registry);
  const jsonSer = new JsonSerializer(client, SerdeType.VALUE, { useLatestVersion: true, validate: true });
  const jsonDe = new JsonDeserializer(client, SerdeType.VALUE, { validate: true });
  const jsonCases = [
    { case: 'json-customer', value: { id: 42, name: 'Grace Hopper', email: null, vip: true, balance: 1234.5,
      tags: ['navy', 'cobol'], attributes: { rank: 'rear admiral' },
      home: { street: '1 Navy Way', city: 'Arlington', zip: null }, orders: [{ sku: 'A-1', quantity: 3 }] } },
    { case: 'json-customer-minimal', value: { id: 7, name: 'Ünïcødé ✓' } },
  ];
  for (const c of jsonCases) {
    const bytes = await jsonSer.serialize('profiles.json', c.value);
    const back = await jsonDe.deserialize('profiles.json', bytes);
    if (!isDeepStrictEqual(back, c.value))
      fail(`${c.case}: the JsonDeserializer read back ${JSON.stringify(back)}`);
    addCase({ case: c.case, format: 'json', topic: 'profiles.json', subject: 'profiles.json-value', schema_id: jsonId },
      bytes, JSON.stringify(c.value), false);
  }
  let refused = null;
  try {
    await jsonSer.serialize('profiles.json', { id: 'not a number', name: 'x' });
  } catch (err) {
    refused = String(err.message ?? err);
  }
  if (refused === null)
    fail('the JsonSerializer accepted a record its schema forbids');
  clientRequests['json: JsonSerializer(useLatestVersion, validate) + JsonDeserializer, profiles.json'] = requestsSince(registry);

  // ---- The customers data product in every format, one file per message.
  const flatAvroId = await client.register('customers.avro-value', { schemaType: 'AVRO', schema: readText('customer_flat.avsc') });
  const flatJsonId = await client.register('customers.json-value', { schemaType: 'JSON', schema: readText('customer_flat.schema.json') });
  const flatAvroSer = new AvroSerializer(client, SerdeType.VALUE, { useLatestVersion: true });
  const flatJsonSer = new JsonSerializer(client, SerdeType.VALUE, { useLatestVersion: true, validate: true });
  const customerProto = msg(regV1, 'Customer');
  const expectedLines = [];
  const products = { avro: { topic: 'customers.avro', subject: 'customers.avro-value', schema_id: flatAvroId, files: [] },
    protobuf: { topic: 'customers.proto', subject: 'customers.proto-value', message: 'com.example.Customer', files: [] },
    json: { topic: 'customers.json', subject: 'customers.json-value', schema_id: flatJsonId, files: [] },
    plain: { topic: 'customers.plain', files: [] } };
  for (const [i, rec] of customers.entries()) {
    const n = String(i + 1).padStart(2, '0');
    const expected = JSON.stringify(rec);
    const avroBytes = await flatAvroSer.serialize('customers.avro', rec);
    if (avroJson(JSON.parse(readText('customer_flat.avsc')), rec, 'com.example', new Map()) !== expected ||
        !sameValue(await avroDe.deserialize('customers.avro', avroBytes), rec))
      fail(`customer ${n}: Avro does not read back as ${expected}`);
    const protoBytes = await protoSer.serialize('customers.proto',
      create(customerProto, { ...rec, tier: TIERS.indexOf(rec.tier) }));
    if (await protoExpected('customers.proto', protoBytes, regV1) !== expected)
      fail(`customer ${n}: Protobuf reads back as ${await protoExpected('customers.proto', protoBytes, regV1)}`);
    const jsonBytes = await flatJsonSer.serialize('customers.json', rec);
    for (const [fmt, bytes] of [['avro', avroBytes], ['protobuf', protoBytes], ['json', jsonBytes], ['plain', Buffer.from(expected)]]) {
      const name = `customers/customers.${fmt}.bin.${n}`;
      write(name, bytes);
      products[fmt].files.push(name);
      if (fmt === 'protobuf')
        products.protobuf.schema_id = parseFrame(bytes, true).id;
    }
    expectedLines.push(expected);
  }
  write('customers/customers.expected.ndjson', `${expectedLines.join('\n')}\n`);
  index.customers = { expected: 'customers/customers.expected.ndjson', ...products };
  clientRequests['customers: register the flat Avro and JSON schemas; Avro, Protobuf (auto-registered) and JSON serializers'] =
    requestsSince(registry);

  // ---- The registry's state, the schemas and what the client asked.
  const dump = await fetch(`${registry.url}/_dump`).then((r) => r.json());
  write('registry-state.json', `${JSON.stringify(dump, null, 2)}\n`);
  // The schema sources stay in tools/registry-fixtures/ (and their text in registry-state.json);
  // what protoc made from them is kept here.
  write('schemas/customer.desc', fs.readFileSync(descV1));
  write('schemas/customer_v2.desc', fs.readFileSync(descV2));
  index.subjects_ids = { 'com.example.Address': addressId, 'profiles.avro-value': customerId,
    'orders.proto-value': [orderV1Id, orderV2Id], 'profiles.json-value': jsonId };
  index.json_serializer_refused = refused;
  write('index.json', `${JSON.stringify(index, null, 2)}\n`);
  write('client-requests.json', `${JSON.stringify(clientRequests, null, 2)}\n`);

  registry.child.kill('SIGTERM');
  const code = await registry.exited;
  if (code !== 0)
    fail(`schema-registry exited with ${code}`);
  fs.rmSync(work, { recursive: true, force: true });
  console.log(`make-fixtures: ${written.length} files in ${outDir}`);
}

main().catch((err) => fail(err.stack ?? String(err)));
