/* Avro schema JSON → the flat node array avro.c decodes with (see avro.h, avro_int.h). The
 * JSON is parsed with jansson; names follow the spec's full name and namespace rules; errors name
 * the JSON path of what is wrong. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro.h"
#include "avro_int.h"
#include "buf.h"

struct avro_name {
    char *full;                 /* "com.example.Order" */
    uint32_t node;
};

struct compiler {
    struct avro_schema *s;
    uint32_t nodes_cap, slots_cap;
    struct buf text;
    struct avro_name *names;
    size_t nnames, names_cap;
    json_t *index;              /* full name → its place in names: no quadratic lookups */
    const char *where;          /* "" or "reference 2: " */
    char path[512];
    size_t path_len;
    char *err;
    size_t errlen;
};

static const struct {
    const char *name;
    enum avro_kind kind;
} primitives[] = {
    { "null", AVRO_NULL }, { "boolean", AVRO_BOOLEAN }, { "int", AVRO_INT }, { "long", AVRO_LONG },
    { "float", AVRO_FLOAT }, { "double", AVRO_DOUBLE }, { "bytes", AVRO_BYTES }, { "string", AVRO_STRING },
};

static int fail(struct compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct compiler *c, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->path_len <= 120)
        snprintf(c->err, c->errlen, "%s$%s: %s", c->where, c->path, what);
    else    /* a deep path keeps its two ends, so the reason still fits a small buffer */
        snprintf(c->err, c->errlen, "%s$%.40s...%s: %s", c->where, c->path, c->path + c->path_len - 60, what);
    return -1;
}

/* Append ".fields[2]" and the like to the path; returns the length to restore. */
static size_t path_push(struct compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct compiler *c, const char *fmt, ...)
{
    size_t was = c->path_len;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(c->path + was, sizeof c->path - was, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->path_len = was + (size_t)n < sizeof c->path ? was + (size_t)n : sizeof c->path - 1;
    return was;
}

static void path_pop(struct compiler *c, size_t was)
{
    c->path_len = was;
    c->path[was] = '\0';
}

static int oom(struct compiler *c)
{
    return fail(c, "out of memory");
}

static int new_node(struct compiler *c, enum avro_kind kind, uint32_t *idx)
{
    struct avro_schema *s = c->s;

    if (s->nnodes == c->nodes_cap) {
        uint32_t cap = c->nodes_cap ? c->nodes_cap * 2 : 16;
        struct avro_node *nodes = realloc(s->nodes, cap * sizeof *nodes);

        if (!nodes)
            return oom(c);
        s->nodes = nodes;
        c->nodes_cap = cap;
    }
    *idx = s->nnodes++;
    s->nodes[*idx] = (struct avro_node){ .kind = (uint8_t)kind, .zero_size = kind == AVRO_NULL,
                                         .zero_cost = kind == AVRO_NULL, .defined = 1, .name = -1 };
    return 0;
}

/* Reserve @p n consecutive slots (a record's fields stay together while their types, compiled
 * after, add slots of their own). */
static int new_slots(struct compiler *c, size_t n, uint32_t *first)
{
    struct avro_schema *s = c->s;

    *first = s->nslots;
    if (n == 0)                         /* an empty record: slots may still be NULL */
        return 0;
    if (n > UINT32_MAX / 2 - s->nslots)
        return oom(c);
    if (s->nslots + n > c->slots_cap) {
        size_t cap = (size_t)c->slots_cap * 2 + n + 16;
        struct avro_slot *slots = realloc(s->slots, cap * sizeof *slots);

        if (!slots)
            return oom(c);
        s->slots = slots;
        c->slots_cap = (uint32_t)cap;
    }
    memset(s->slots + s->nslots, 0, n * sizeof *s->slots);
    s->nslots += (uint32_t)n;
    return 0;
}

/* Store the JSON string of @p name (with a ':' after it when @p colon) as slot @p slot's text. */
static int slot_text(struct compiler *c, uint32_t slot, const char *name, int colon)
{
    struct avro_slot *sl = &c->s->slots[slot];

    sl->text_off = (uint32_t)c->text.len;
    /* names are checked to be [A-Za-z_][A-Za-z0-9_]*: nothing to escape */
    buf_add(&c->text, "\"", 1);
    buf_adds(&c->text, name);
    buf_add(&c->text, colon ? "\":" : "\"", colon ? 2 : 1);
    if (c->text.oom || c->text.len > UINT32_MAX)
        return oom(c);
    sl->text_len = (uint32_t)(c->text.len - sl->text_off);
    return 0;
}

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_'))
            return 0;
    return 1;
}

/* A full name: dot-separated valid names. */
static int valid_full_name(const char *s)
{
    const char *dot;

    for (; (dot = strchr(s, '.')); s = dot + 1)
        if (!valid_name(s, (size_t)(dot - s)))
            return 0;
    return valid_name(s, strlen(s));
}

static int primitive_kind(const char *name)
{
    for (size_t i = 0; i < sizeof primitives / sizeof *primitives; i++)
        if (strcmp(primitives[i].name, name) == 0)
            return (int)primitives[i].kind;
    return -1;
}

static const struct avro_name *lookup(const struct compiler *c, const char *full)
{
    json_t *at = json_object_get(c->index, full);

    return at ? &c->names[json_integer_value(at)] : NULL;
}

/* The index of the first element of @p arr whose name (the element itself, or its member
 * @p key) came before, -1 when none, -2 out of memory. A jansson object is the set, so a schema
 * of many fields costs no quadratic time. */
static long first_repeat(json_t *arr, const char *key)
{
    json_t *seen = json_object(), *el;
    long found = -1;
    size_t i;

    if (!seen)
        return -2;
    json_array_foreach(arr, i, el) {
        const char *name = json_string_value(key ? json_object_get(el, key) : el);

        if (!name)
            continue;
        if (json_object_get(seen, name)) {
            found = (long)i;
            break;
        }
        if (json_object_set_new(seen, name, json_true()) != 0) {
            found = -2;
            break;
        }
    }
    json_decref(seen);
    return found;
}

/* A reference by name: qualified by the enclosing namespace unless it has a dot; an
 * unqualified name not found there is tried in the null namespace (as the Java parser does). */
static const struct avro_name *resolve(struct compiler *c, const char *name, const char *ns)
{
    const struct avro_name *found;
    char *full;

    if (strchr(name, '.') || !ns[0])
        return lookup(c, name);
    if (asprintf(&full, "%s.%s", ns, name) < 0)
        return NULL;
    found = lookup(c, full);
    free(full);
    return found ? found : lookup(c, name);
}

/* Define the named type of object @p j (record, enum, fixed) as node @p idx; sets @p ns_out to
 * its namespace (owned by the name table entry). */
static int define_name(struct compiler *c, json_t *j, const char *ns, uint32_t idx, const char **ns_out)
{
    const char *name = json_string_value(json_object_get(j, "name")), *dot;
    json_t *jns = json_object_get(j, "namespace");
    char *full;
    int n;

    if (!name)
        return fail(c, "a %s needs a \"name\" string", json_string_value(json_object_get(j, "type")));
    if (jns && !json_is_string(jns) && !json_is_null(jns))
        return fail(c, "\"namespace\" must be a string");
    if (strchr(name, '.'))
        n = asprintf(&full, "%s", name);
    else if (jns && json_is_string(jns))
        n = json_string_length(jns) ? asprintf(&full, "%s.%s", json_string_value(jns), name)
                                    : asprintf(&full, "%s", name);
    else
        n = ns[0] ? asprintf(&full, "%s.%s", ns, name) : asprintf(&full, "%s", name);
    if (n < 0)
        return oom(c);
    if (!valid_full_name(full) || primitive_kind(full) >= 0) {
        fail(c, "invalid type name \"%s\"", full);
        free(full);
        return -1;
    }
    if (lookup(c, full)) {
        fail(c, "type \"%s\" is defined twice", full);
        free(full);
        return -1;
    }
    if (c->nnames == c->names_cap) {
        size_t cap = c->names_cap ? c->names_cap * 2 : 8;
        struct avro_name *names = realloc(c->names, cap * sizeof *names);

        if (!names) {
            free(full);
            return oom(c);
        }
        c->names = names;
        c->names_cap = cap;
    }
    if (json_object_set_new(c->index, full, json_integer((json_int_t)c->nnames)) != 0) {
        free(full);
        return oom(c);
    }
    c->names[c->nnames] = (struct avro_name){ .full = full, .node = idx };
    c->s->nodes[idx].name = (int32_t)c->nnames++;
    /* The namespace is the full name up to its last dot: kept in the table's copy, cut there
     * by a second string so the full name stays whole. */
    dot = strrchr(full, '.');
    *ns_out = dot ? full : "";
    return dot ? (int)(dot - full) : 0;
}

static int compile_type(struct compiler *c, json_t *j, const char *ns, int depth, uint32_t *out);

static int compile_record(struct compiler *c, json_t *j, const char *ns, int depth, uint32_t idx)
{
    json_t *fields = json_object_get(j, "fields");
    uint32_t first = 0;
    size_t i, was;
    uint64_t zero_cost = 1;
    int zero = 1;
    long repeat;

    if (!json_is_array(fields))
        return fail(c, "a record needs a \"fields\" array");
    if ((repeat = first_repeat(fields, "name")) == -2)
        return oom(c);
    if (repeat >= 0) {
        path_push(c, ".fields[%ld]", repeat);
        return fail(c, "field \"%s\" is defined twice",
                    json_string_value(json_object_get(json_array_get(fields, (size_t)repeat), "name")));
    }
    if (new_slots(c, json_array_size(fields), &first) != 0)
        return -1;
    c->s->nodes[idx].first = first;
    c->s->nodes[idx].count = (uint32_t)json_array_size(fields);
    for (i = 0; i < json_array_size(fields); i++) {
        json_t *field = json_array_get(fields, i);
        const char *fname = json_string_value(json_object_get(field, "name"));
        uint32_t type;

        was = path_push(c, ".fields[%zu]", i);
        if (!json_is_object(field))
            return fail(c, "a field must be an object");
        if (!fname || !valid_name(fname, strlen(fname)))
            return fail(c, "a field needs a \"name\" of letters, digits and '_'");
        if (!json_object_get(field, "type"))
            return fail(c, "a field needs a \"type\"");
        path_push(c, ".type");
        if (compile_type(c, json_object_get(field, "type"), ns, depth + 1, &type) != 0)
            return -1;
        path_pop(c, was);
        c->s->slots[first + i].node = type;
        if (slot_text(c, first + (uint32_t)i, fname, 1) != 0)
            return -1;
        zero &= c->s->nodes[type].zero_size & c->s->nodes[type].defined;
        zero_cost += c->s->nodes[type].zero_cost;
    }
    if (zero && zero_cost > AVRO_MAX_ZERO_SIZE_VALUES)
        return fail(c, "a record that takes no bytes stands for more than %u values", AVRO_MAX_ZERO_SIZE_VALUES);
    c->s->nodes[idx].zero_size = (uint8_t)zero;
    c->s->nodes[idx].zero_cost = zero ? (uint32_t)zero_cost : 0;
    return 0;
}

static int compile_enum(struct compiler *c, json_t *j, uint32_t idx)
{
    json_t *symbols = json_object_get(j, "symbols");
    uint32_t first = 0;
    size_t i;
    long repeat;

    if (!json_is_array(symbols) || json_array_size(symbols) == 0)
        return fail(c, "an enum needs a non-empty \"symbols\" array");
    if ((repeat = first_repeat(symbols, NULL)) == -2)
        return oom(c);
    if (repeat >= 0)
        return fail(c, "enum symbol \"%s\" is defined twice", json_string_value(json_array_get(symbols, (size_t)repeat)));
    if (new_slots(c, json_array_size(symbols), &first) != 0)
        return -1;
    c->s->nodes[idx].first = first;
    c->s->nodes[idx].count = (uint32_t)json_array_size(symbols);
    for (i = 0; i < json_array_size(symbols); i++) {
        const char *sym = json_string_value(json_array_get(symbols, i));

        if (!sym || !valid_name(sym, strlen(sym)))
            return fail(c, "enum symbol %zu must be letters, digits and '_'", i);
        if (slot_text(c, first + (uint32_t)i, sym, 0) != 0)
            return -1;
    }
    return 0;
}

static int compile_union(struct compiler *c, json_t *j, const char *ns, int depth, uint32_t *out)
{
    uint32_t idx = 0, first = 0;
    size_t i, n = json_array_size(j);
    json_t *seen;               /* the branches' types: "#<kind>" unnamed, else the full name */
    int rc = -1;

    if (n == 0)
        return fail(c, "a union needs at least one branch");
    if (new_node(c, AVRO_UNION, &idx) != 0 || new_slots(c, n, &first) != 0)
        return -1;
    if (!(seen = json_object()))
        return oom(c);
    c->s->nodes[idx].first = first;
    c->s->nodes[idx].count = (uint32_t)n;
    for (i = 0; i < n; i++) {
        size_t was = path_push(c, "[%zu]", i);
        const struct avro_node *bn;
        char kind[8];
        const char *key = kind;
        uint32_t branch;

        if (compile_type(c, json_array_get(j, i), ns, depth + 1, &branch) != 0)
            goto out;
        bn = &c->s->nodes[branch];
        if (bn->kind == AVRO_UNION) {
            fail(c, "a union cannot hold a union");
            goto out;
        }
        if (bn->name >= 0)
            key = c->names[bn->name].full;
        else
            snprintf(kind, sizeof kind, "#%d", bn->kind);
        if (json_object_get(seen, key)) {
            fail(c, "the union already has a branch of this type");
            goto out;
        }
        if (json_object_set_new(seen, key, json_true()) != 0) {
            oom(c);
            goto out;
        }
        path_pop(c, was);
        c->s->slots[first + i].node = branch;
    }
    *out = idx;
    rc = 0;
out:
    json_decref(seen);
    return rc;
}

static enum avro_logical logical_of(const char *name, const struct avro_node *n)
{
    static const struct {
        const char *name;
        enum avro_kind kind;
        enum avro_logical logical;
    } table[] = {
        { "uuid", AVRO_STRING, AVRO_UUID }, { "date", AVRO_INT, AVRO_DATE },
        { "time-millis", AVRO_INT, AVRO_TIME_MILLIS }, { "time-micros", AVRO_LONG, AVRO_TIME_MICROS },
        { "timestamp-millis", AVRO_LONG, AVRO_TIMESTAMP_MILLIS },
        { "timestamp-micros", AVRO_LONG, AVRO_TIMESTAMP_MICROS },
        { "timestamp-nanos", AVRO_LONG, AVRO_TIMESTAMP_NANOS },
        { "local-timestamp-millis", AVRO_LONG, AVRO_LOCAL_TIMESTAMP_MILLIS },
        { "local-timestamp-micros", AVRO_LONG, AVRO_LOCAL_TIMESTAMP_MICROS },
        { "local-timestamp-nanos", AVRO_LONG, AVRO_LOCAL_TIMESTAMP_NANOS },
    };

    if (strcmp(name, "uuid") == 0 && n->kind == AVRO_FIXED && n->size == 16)
        return AVRO_UUID;
    if (strcmp(name, "duration") == 0 && n->kind == AVRO_FIXED && n->size == 12)
        return AVRO_DURATION;
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcmp(name, table[i].name) == 0 && n->kind == table[i].kind)
            return table[i].logical;
    return AVRO_PLAIN;
}

/* The "logicalType" of object @p j on node @p idx. Invalid or unknown ones fall back to the
 * underlying type, as the spec says, except a decimal too large for this decoder. */
static int apply_logical(struct compiler *c, json_t *j, uint32_t idx)
{
    const char *name = json_string_value(json_object_get(j, "logicalType"));
    struct avro_node *n = &c->s->nodes[idx];
    json_t *jp, *js;
    json_int_t precision, scale = 0;

    if (!name)
        return 0;
    if (strcmp(name, "decimal") != 0) {
        n->logical = (uint8_t)logical_of(name, n);
        return 0;
    }
    if (n->kind != AVRO_BYTES && n->kind != AVRO_FIXED)
        return 0;
    jp = json_object_get(j, "precision");
    js = json_object_get(j, "scale");
    if (!json_is_integer(jp) || (js && !json_is_integer(js)))
        return 0;
    precision = json_integer_value(jp);
    if (js)
        scale = json_integer_value(js);
    if (precision < 1 || scale < 0 || scale > precision)
        return 0;
    if (scale > AVRO_DECIMAL_MAX_SCALE)
        return fail(c, "a decimal scale of %lld is over this decoder's %d", (long long)scale, AVRO_DECIMAL_MAX_SCALE);
    if (n->kind == AVRO_FIXED) {
        if (n->size > AVRO_DECIMAL_MAX_BYTES)
            return fail(c, "a decimal of %u bytes is over this decoder's %d", n->size, AVRO_DECIMAL_MAX_BYTES);
        if (n->size == 0 || (double)precision > floor(log10(2.0) * (8.0 * n->size - 1)))
            return 0;
    }
    n->logical = AVRO_DECIMAL;
    n->scale = (int32_t)scale;
    return 0;
}

static int compile_object(struct compiler *c, json_t *j, const char *ns, int depth, uint32_t *out)
{
    const char *type = json_string_value(json_object_get(j, "type")), *inner_ns = ns;
    const struct avro_name *named;
    uint32_t idx = 0;
    int kind, ns_len;
    size_t was;
    char *ns_copy = NULL;
    int rc = -1;

    if (!type) {
        path_push(c, ".type");
        return fail(c, "expected a type name");
    }
    if ((kind = primitive_kind(type)) >= 0) {
        if (new_node(c, (enum avro_kind)kind, &idx) != 0 || apply_logical(c, j, idx) != 0)
            return -1;
        *out = idx;
        return 0;
    }
    if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
        int array = type[0] == 'a';
        json_t *child = json_object_get(j, array ? "items" : "values");
        uint32_t child_idx;

        if (!child)
            return fail(c, "%s needs \"%s\"", array ? "an array" : "a map", array ? "items" : "values");
        if (new_node(c, array ? AVRO_ARRAY : AVRO_MAP, &idx) != 0)
            return -1;
        was = path_push(c, array ? ".items" : ".values");
        if (compile_type(c, child, ns, depth + 1, &child_idx) != 0)
            return -1;
        path_pop(c, was);
        c->s->nodes[idx].child = child_idx;
        *out = idx;
        return 0;
    }
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 || strcmp(type, "enum") == 0 ||
        strcmp(type, "fixed") == 0) {
        enum avro_kind k = type[0] == 'e' && type[1] == 'n' ? AVRO_ENUM : type[0] == 'f' ? AVRO_FIXED : AVRO_RECORD;

        if (new_node(c, k, &idx) != 0)
            return -1;
        c->s->nodes[idx].defined = 0;          /* until its body is compiled: recursion sees it */
        if ((ns_len = define_name(c, j, ns, idx, &inner_ns)) < 0)
            return -1;
        if (ns_len > 0) {
            if (!(ns_copy = strndup(inner_ns, (size_t)ns_len)))
                return oom(c);
            inner_ns = ns_copy;
        }
        if (k == AVRO_RECORD) {
            if (compile_record(c, j, inner_ns, depth, idx) != 0)
                goto out;
        } else if (k == AVRO_ENUM) {
            if (compile_enum(c, j, idx) != 0)
                goto out;
        } else {
            json_t *size = json_object_get(j, "size");

            if (!json_is_integer(size) || json_integer_value(size) < 0 || json_integer_value(size) > INT32_MAX) {
                fail(c, "a fixed needs a \"size\" from 0 to %d", INT32_MAX);
                goto out;
            }
            c->s->nodes[idx].size = (uint32_t)json_integer_value(size);
            c->s->nodes[idx].zero_size = c->s->nodes[idx].zero_cost = c->s->nodes[idx].size == 0;
            if (apply_logical(c, j, idx) != 0)
                goto out;
        }
        c->s->nodes[idx].defined = 1;
        *out = idx;
        rc = 0;
        goto out;
    }
    if ((named = resolve(c, type, ns))) {
        *out = named->node;
        return 0;
    }
    path_push(c, ".type");
    return fail(c, "unknown type \"%s\"", type);
out:
    free(ns_copy);
    return rc;
}

static int compile_type(struct compiler *c, json_t *j, const char *ns, int depth, uint32_t *out)
{
    const struct avro_name *named;
    const char *name;
    int kind;

    if (depth > AVRO_MAX_SCHEMA_DEPTH)
        return fail(c, "the schema nests deeper than %d levels", AVRO_MAX_SCHEMA_DEPTH);
    if (json_is_object(j))
        return compile_object(c, j, ns, depth, out);
    if (json_is_array(j))
        return compile_union(c, j, ns, depth, out);
    if (!(name = json_string_value(j)))
        return fail(c, "expected a type name, an object or an array");
    if ((kind = primitive_kind(name)) >= 0)
        return new_node(c, (enum avro_kind)kind, out);
    if ((named = resolve(c, name, ns))) {
        *out = named->node;
        return 0;
    }
    return fail(c, "unknown type \"%s\"", name);
}

static int compile_text(struct compiler *c, const char *json, size_t len, uint32_t *root)
{
    json_error_t jerr;
    json_t *j = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    int rc;

    path_pop(c, 0);
    if (!j)
        return fail(c, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
    rc = compile_type(c, j, "", 0, root);
    json_decref(j);
    return rc;
}

struct avro_schema *avro_schema_compile(const char *json, size_t len,
        const struct avro_named_schema *refs, size_t nrefs, char *err, size_t errlen)
{
    struct compiler c = { .where = "", .err = err, .errlen = errlen, .index = json_object() };
    char where[48];
    uint32_t root;
    int rc = -1;

    if (!c.index || !(c.s = calloc(1, sizeof *c.s))) {
        json_decref(c.index);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < nrefs; i++) {
        snprintf(where, sizeof where, "reference %zu: ", i);
        c.where = where;
        if (compile_text(&c, refs[i].json, refs[i].len, &root) != 0)
            goto out;
    }
    c.where = "";
    if (compile_text(&c, json, len, &c.s->root) != 0)
        goto out;
    if (!(c.s->text = buf_steal(&c.text, NULL))) {
        oom(&c);
        goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < c.nnames; i++)
        free(c.names[i].full);
    free(c.names);
    json_decref(c.index);
    buf_free(&c.text);
    if (rc != 0) {
        avro_schema_free(c.s);
        return NULL;
    }
    return c.s;
}

void avro_schema_free(struct avro_schema *s)
{
    if (!s)
        return;
    free(s->nodes);
    free(s->slots);
    free(s->text);
    free(s);
}
