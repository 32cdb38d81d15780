// Renders a kustomization (deploy/kustomize/base or an overlay) the way `kustomize build` does,
// for the subset of kustomize that sluice's manifests use, and validates every object against
// the Kubernetes (kubernetes-models) and prometheus-operator schemas. kustomize and kubectl are
// not Debian 12 packages, so the test renders with this instead.
//
//   node render.mjs DIR OUTDIR [KUSTOMIZE_OUTPUT]
//
// With KUSTOMIZE_OUTPUT (what `kubectl kustomize DIR` printed, where kubectl is installed) the
// rendered objects must equal those, field by field.
//
// Writes OUTDIR/objects.json (the rendered objects, in order) and prints one line per object;
// exits 1 with every problem found. Supported kustomization keys: resources (files and
// directories), namespace, images, replicas, configMapGenerator and secretGenerator (files,
// literals, envs; behavior create, merge, replace; the content hash in the name, computed as
// kustomize computes it, and the references to it rewritten), patches (path: a strategic merge
// patch of one object). Any other key is an error, so an overlay cannot use a feature this
// renderer would silently ignore.
//
// Beyond the schemas: selectors must match the pod template's labels (Deployment, Service,
// PodDisruptionBudget), the ServiceMonitor must select the Service and name its ports, probes and
// Service target ports must name container ports, and every ConfigMap and Secret a pod uses must
// be rendered too (but those listed in SLUICE_EXTERNAL_SECRETS, comma-separated). The schemas
// check types, formats, enums and required fields; they do not refuse unknown fields (the
// published Kubernetes schemas allow them), so a misspelt optional field is not caught here.
import { createHash } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

const problems = [];
const problem = (msg) => problems.push(msg);

function readYamlDocs(file) {
    const docs = [];
    for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
        if (doc.errors.length) {
            problem(`${file}: ${doc.errors[0].message}`);
            continue;
        }
        const value = doc.toJS();
        if (value !== null && value !== undefined)
            docs.push(value);
    }
    return docs;
}

const KUSTOMIZATION_KEYS = new Set(["apiVersion", "kind", "resources", "namespace", "images", "replicas",
    "configMapGenerator", "secretGenerator", "patches"]);

// Lines KEY=VALUE of an env file (kustomize's envs): blank lines and # comments skipped.
function readEnvFile(file) {
    const out = {};
    readFileSync(file, "utf8").split("\n").forEach((line, i) => {
        const t = line.trim();
        if (!t || t.startsWith("#"))
            return;
        const eq = t.indexOf("=");
        if (eq <= 0) {
            problem(`${file}:${i + 1}: expected KEY=VALUE`);
            return;
        }
        out[t.slice(0, eq)] = t.slice(eq + 1);
    });
    return out;
}

function generatorData(dir, gen, where) {
    const data = {};
    const add = (key, value) => {
        if (key in data)
            problem(`${where}: key ${key} given twice`);
        data[key] = value;
    };
    for (const f of gen.files ?? []) {
        const eq = f.indexOf("=");
        const [key, path] = eq > 0 ? [f.slice(0, eq), f.slice(eq + 1)] : [basename(f), f];
        add(key, readFileSync(join(dir, path), "utf8"));
    }
    for (const l of gen.literals ?? []) {
        const eq = l.indexOf("=");
        add(l.slice(0, eq), l.slice(eq + 1));
    }
    for (const e of gen.envs ?? [])
        for (const [k, v] of Object.entries(readEnvFile(join(dir, e))))
            add(k, v);
    for (const key of Object.keys(gen))
        if (!["name", "files", "literals", "envs", "behavior", "type"].includes(key))
            problem(`${where}: unsupported generator key ${key}`);
    return data;
}

// One kustomization directory: its objects, generated ones marked (hashed at the top level only,
// so that an overlay's merge or replace is hashed on the final content, as kustomize does).
function build(dir) {
    const kfile = join(dir, "kustomization.yaml");
    const [k] = readYamlDocs(kfile);
    let objects = [];

    for (const key of Object.keys(k ?? {}))
        if (!KUSTOMIZATION_KEYS.has(key))
            problem(`${kfile}: ${key} is not supported by this renderer`);
    for (const r of k.resources ?? []) {
        const path = resolve(dir, r);
        if (statSync(path).isDirectory())
            objects.push(...build(path));
        else
            objects.push(...readYamlDocs(path).map((o) => ({ obj: o, generated: false })));
    }
    for (const [field, kind] of [["configMapGenerator", "ConfigMap"], ["secretGenerator", "Secret"]])
        for (const gen of k[field] ?? []) {
            const where = `${kfile}: ${field} ${gen.name}`;
            let data = generatorData(dir, gen, where);
            if (kind === "Secret")
                data = Object.fromEntries(Object.entries(data).map(([key, v]) => [key, Buffer.from(v).toString("base64")]));
            const behavior = gen.behavior ?? "create";
            const i = objects.findIndex((o) => o.generated && o.obj.kind === kind && o.obj.metadata.name === gen.name);
            if (behavior === "create") {
                if (i >= 0)
                    problem(`${where}: already generated (use behavior merge or replace)`);
                const obj = { apiVersion: "v1", kind, metadata: { name: gen.name }, data };
                if (kind === "Secret")
                    obj.type = gen.type ?? "Opaque";
                objects.push({ obj, generated: true });
            } else if (behavior === "merge" || behavior === "replace") {
                if (i < 0)
                    problem(`${where}: behavior ${behavior} but no such generated ${kind} in the resources`);
                else
                    objects[i].obj.data = behavior === "merge" ? { ...objects[i].obj.data, ...data } : data;
            } else
                problem(`${where}: unknown behavior ${behavior}`);
        }
    for (const p of k.patches ?? []) {
        if (!p.path || Object.keys(p).length !== 1) {
            problem(`${kfile}: only patches with a path alone are supported`);
            continue;
        }
        for (const patch of readYamlDocs(join(dir, p.path))) {
            const target = objects.find((o) => o.obj.kind === patch.kind && o.obj.metadata.name === patch.metadata?.name);
            if (!target)
                problem(`${join(dir, p.path)}: no ${patch.kind} ${patch.metadata?.name} to patch`);
            else
                target.obj = strategicMerge(target.obj, patch, []);
        }
    }
    if (k.namespace)
        for (const o of objects)
            if (!CLUSTER_SCOPED.has(o.obj.kind))
                o.obj.metadata.namespace = k.namespace;
    for (const img of k.images ?? [])
        for (const o of objects)
            for (const c of podContainers(o.obj)) {
                const m = /^([^@:]+(?::\d+\/[^@:]+)?)(?::([^@]+))?(@.+)?$/.exec(c.image);
                if (!m || m[1] !== img.name)
                    continue;
                const name = img.newName ?? m[1];
                c.image = img.digest ? `${name}@${img.digest}` : `${name}${img.newTag ? ":" + img.newTag : m[2] ? ":" + m[2] : ""}${img.newTag ? "" : m[3] ?? ""}`;
            }
    for (const rep of k.replicas ?? []) {
        const target = objects.find((o) => ["Deployment", "StatefulSet", "ReplicaSet"].includes(o.obj.kind) && o.obj.metadata.name === rep.name);
        if (!target)
            problem(`${kfile}: replicas for ${rep.name}, which is not rendered`);
        else
            target.obj.spec.replicas = rep.count;
    }
    return objects;
}

const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PriorityClass", "StorageClass", "PersistentVolume"]);

// The merge keys of the lists sluice's manifests patch (from the Kubernetes API's
// patchMergeKey); any other list is replaced whole, as the strategic merge does for lists without one.
function mergeKey(path, kind) {
    const field = path[path.length - 1];
    if (["containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets"].includes(field))
        return "name";
    if (field === "volumeMounts")
        return "mountPath";
    if (field === "ports")
        return kind === "Service" ? "port" : "containerPort";
    return null;
}

function strategicMerge(base, patch, path, kind = base.kind) {
    if (Array.isArray(patch)) {
        const key = mergeKey(path, kind);
        if (!key || !Array.isArray(base))
            return structuredClone(patch);
        // The order kustomize (kyaml) gives: the patch's items, merged into the base's of the
        // same key, then the base's items the patch does not name.
        const out = patch.map((item) => {
            const match = base.find((x) => x[key] === item[key]);
            return match ? strategicMerge(match, item, path, kind) : structuredClone(item);
        });
        return out.concat(base.filter((x) => !patch.some((item) => item[key] === x[key])).map((x) => structuredClone(x)));
    }
    if (patch === null || typeof patch !== "object" || base === null || typeof base !== "object" || Array.isArray(base))
        return structuredClone(patch);
    const out = structuredClone(base);
    for (const [key, value] of Object.entries(patch)) {
        if (key.startsWith("$"))
            problem(`strategic merge directive ${key} at ${path.join(".")} is not supported`);
        else if (value === null)
            delete out[key];
        else
            out[key] = key in out ? strategicMerge(out[key], value, [...path, key], kind) : structuredClone(value);
    }
    return out;
}

function podSpec(obj) {
    if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(obj.kind))
        return obj.spec?.template?.spec;
    return obj.kind === "Pod" ? obj.spec : undefined;
}

function podContainers(obj) {
    const spec = podSpec(obj);
    return spec ? [...(spec.initContainers ?? []), ...(spec.containers ?? [])] : [];
}

// Where a pod names a ConfigMap or a Secret: kustomize's nameReference paths for them.
function* podReferences(obj) {
    const spec = podSpec(obj);
    if (!spec)
        return;
    for (const v of spec.volumes ?? []) {
        if (v.configMap)
            yield ["ConfigMap", v.configMap, "name"];
        if (v.secret)
            yield ["Secret", v.secret, "secretName"];
        for (const s of v.projected?.sources ?? []) {
            if (s.configMap)
                yield ["ConfigMap", s.configMap, "name"];
            if (s.secret)
                yield ["Secret", s.secret, "name"];
        }
    }
    for (const s of spec.imagePullSecrets ?? [])
        yield ["Secret", s, "name"];
    for (const c of podContainers(obj)) {
        for (const e of c.envFrom ?? []) {
            if (e.configMapRef)
                yield ["ConfigMap", e.configMapRef, "name"];
            if (e.secretRef)
                yield ["Secret", e.secretRef, "name"];
        }
        for (const e of c.env ?? []) {
            if (e.valueFrom?.configMapKeyRef)
                yield ["ConfigMap", e.valueFrom.configMapKeyRef, "name"];
            if (e.valueFrom?.secretKeyRef)
                yield ["Secret", e.valueFrom.secretKeyRef, "name"];
        }
    }
}

// Go's encoding/json, which kustomize hashes: map keys sorted, <, >, & and U+2028/9 escaped.
function goJson(value) {
    if (value === null || typeof value !== "object")
        return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
    if (Array.isArray(value))
        return "[" + value.map(goJson).join(",") + "]";
    return "{" + Object.keys(value).sort().map((k) => goJson(k) + ":" + goJson(value[k])).join(",") + "}";
}

// kustomize's content hash: sha256 of the object's encoding, its first 10 hex digits with
// 0, 1, 3, a, e replaced (so that the suffix is never all digits or a word). kustomize 5 puts
// an empty name in the encoding (it looks "metadata/name" up as one field, which is absent), so
// the hash depends on the kind, type and data alone; checked against kubectl kustomize 5.5.0.
function kustomizeHash(obj) {
    const m = obj.kind === "Secret"
        ? { kind: "Secret", type: obj.type, name: "", data: obj.data }
        : { kind: "ConfigMap", name: "", data: obj.data };
    const hex = createHash("sha256").update(goJson(m)).digest("hex");
    return hex.slice(0, 10).replace(/[013ae]/g, (c) => ({ 0: "g", 1: "h", 3: "k", a: "m", e: "t" })[c]);
}

function finish(objects) {
    const renamed = new Map();   // "Kind/name" -> the hashed name
    for (const o of objects)
        if (o.generated) {
            const hashed = `${o.obj.metadata.name}-${kustomizeHash(o.obj)}`;
            renamed.set(`${o.obj.kind}/${o.obj.metadata.name}`, hashed);
            o.obj.metadata.name = hashed;
        }
    for (const o of objects)
        for (const [kind, holder, field] of podReferences(o.obj)) {
            const to = renamed.get(`${kind}/${holder[field]}`);
            if (to)
                holder[field] = to;
        }
    return objects.map((o) => o.obj);
}

function schemaModule(apiVersion, kind) {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
    if (group === "monitoring.coreos.com")
        return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
    return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

const matches = (selector, labels) =>
    Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v) && Object.keys(selector ?? {}).length > 0;

function crossCheck(objects) {
    const name = (o) => `${o.kind}/${o.metadata.name}`;
    const external = new Set((process.env.SLUICE_EXTERNAL_SECRETS ?? "").split(",").filter(Boolean));
    const pods = objects.filter((o) => podSpec(o));
    const services = objects.filter((o) => o.kind === "Service");
    for (const o of pods) {
        const labels = o.spec.template?.metadata?.labels;
        if (o.spec.selector && !matches(o.spec.selector.matchLabels, labels))
            problem(`${name(o)}: spec.selector does not match the pod template's labels`);
        const ports = new Map(podContainers(o).flatMap((c) => (c.ports ?? []).map((p) => [p.name, p.containerPort])));
        for (const c of podContainers(o))
            for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
                const port = c[probe]?.httpGet?.port;
                if (typeof port === "string" && !ports.has(port))
                    problem(`${name(o)}: ${c.name}.${probe} names port ${port}, which no container declares`);
            }
        for (const [kind, holder, field] of podReferences(o)) {
            const found = objects.some((x) => x.kind === kind && x.metadata.name === holder[field]);
            if (!found && !(kind === "Secret" && external.has(holder[field])))
                problem(`${name(o)} uses ${kind} ${holder[field]}, which is not rendered`);
        }
        for (const s of services)
            if (matches(s.spec.selector, labels))
                for (const p of s.spec.ports ?? [])
                    if (typeof p.targetPort === "string" && !ports.has(p.targetPort))
                        problem(`${name(s)}: targetPort ${p.targetPort} is no container port of ${name(o)}`);
    }
    for (const s of services)
        if (!pods.some((o) => matches(s.spec.selector, o.spec.template?.metadata?.labels)))
            problem(`${name(s)}: its selector matches no pod template`);
    for (const pdb of objects.filter((o) => o.kind === "PodDisruptionBudget"))
        if (!pods.some((o) => matches(pdb.spec.selector?.matchLabels, o.spec.template?.metadata?.labels)))
            problem(`${name(pdb)}: its selector matches no pod template`);
    for (const sm of objects.filter((o) => o.kind === "ServiceMonitor")) {
        const selected = services.filter((s) => matches(sm.spec.selector?.matchLabels, s.metadata.labels));
        if (!selected.length)
            problem(`${name(sm)}: its selector matches no Service`);
        for (const ep of sm.spec.endpoints ?? [])
            if (!selected.some((s) => (s.spec.ports ?? []).some((p) => p.name === ep.port)))
                problem(`${name(sm)}: endpoint port ${ep.port} is not a port of the Services it selects`);
    }
}

function compare(objects, expected, where) {
    const key = (o) => `${o.kind} ${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
    const canonical = (v) => goJson(v);
    const mine = new Map(objects.map((o) => [key(o), o]));
    for (const e of expected) {
        const o = mine.get(key(e));
        if (!o)
            problem(`${where} has ${key(e)}, which this renderer did not make`);
        else if (canonical(o) !== canonical(e))
            problem(`${key(e)} differs from ${where}:\n  here:  ${canonical(o)}\n  there: ${canonical(e)}`);
        mine.delete(key(e));
    }
    for (const k of mine.keys())
        problem(`this renderer made ${k}, which ${where} lacks`);
    if (!problems.length)
        console.log(`equal to ${where}: ${expected.length} objects`);
}

async function main() {
    const [dir, outdir, reference] = process.argv.slice(2);
    if (!dir || !outdir) {
        console.error("usage: node render.mjs KUSTOMIZATION_DIR OUTDIR");
        process.exit(2);
    }
    const objects = finish(build(resolve(dir)));
    for (const o of objects) {
        let Model;
        try {
            Model = (await import(schemaModule(o.apiVersion, o.kind)))[o.kind];
        } catch {
            problem(`${o.kind}/${o.metadata?.name}: no schema for ${o.apiVersion} ${o.kind}`);
            continue;
        }
        try {
            new Model(o).validate();
            console.log(`valid: ${o.apiVersion} ${o.kind} ${o.metadata.namespace ? o.metadata.namespace + "/" : ""}${o.metadata.name}`);
        } catch (e) {
            problem(`${o.kind}/${o.metadata?.name}: ${e.message}`);
        }
    }
    crossCheck(objects);
    if (reference)
        compare(objects, readYamlDocs(reference), reference);
    writeFileSync(join(outdir, "objects.json"), JSON.stringify(objects, null, 2));
    for (const p of problems)
        console.error(`problem: ${p}`);
    process.exit(problems.length ? 1 : 0);
}

main();
