/* lib/jsonschema.c: compiling a draft-07 JSON Schema into the tree jsonschema_validate walks.
 * The document is deep-copied once and the tree borrows from the copy. Every subschema is
 * compiled once, keyed by its place in the copy, so a $ref and the keyword that holds the same
 * subschema share one node and recursive references become cycles in the tree. $refs are
 * resolved after the walk, from a queue, so a long chain of definitions does not recurse. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonschema.h"
#include "lib/jsonschema_int.h"

#define PATH_MAX_LEN 512

struct pending_ref {
    struct js_node *node;
    const char *ref;             /* borrowed from the copy */
    struct pending_ref *next;
};

struct compiler {
    struct jsonschema *s;
    char *err;
    size_t errlen;
    struct js_node **slots;      /* open addressing: json_t * -> node */
    const json_t **keys;
    size_t cap, used;
    struct pending_ref *refs;
};

static void fail(struct compiler *c, const char *path, const char *fmt, ...)
{
    char reason[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", path, reason);
}

static size_t slot_of(const struct compiler *c, const json_t *key)
{
    uintptr_t h = (uintptr_t)key;

    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (c->cap - 1);
}

static struct js_node *map_get(const struct compiler *c, const json_t *key)
{
    if (c->cap == 0)
        return NULL;
    for (size_t i = slot_of(c, key);; i = (i + 1) & (c->cap - 1)) {
        if (!c->keys[i])
            return NULL;
        if (c->keys[i] == key)
            return c->slots[i];
    }
}

static int map_put(struct compiler *c, const json_t *key, struct js_node *node)
{
    if ((c->used + 1) * 2 > c->cap) {
        size_t old_cap = c->cap, new_cap = old_cap ? old_cap * 2 : 64;
        const json_t **old_keys = c->keys;
        struct js_node **old_slots = c->slots;
        c->keys = calloc(new_cap, sizeof *c->keys);
        c->slots = calloc(new_cap, sizeof *c->slots);
        if (!c->keys || !c->slots) {
            free(c->keys);
            free(c->slots);
            c->keys = old_keys;
            c->slots = old_slots;
            return -1;
        }
        c->cap = new_cap;
        c->used = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old_keys[i])
                map_put(c, old_keys[i], old_slots[i]);   /* room guaranteed: no recursion into growth */
        free(old_keys);
        free(old_slots);
    }
    size_t i = slot_of(c, key);
    while (c->keys[i])
        i = (i + 1) & (c->cap - 1);
    c->keys[i] = key;
    c->slots[i] = node;
    c->used++;
    return 0;
}

static void sub_path(char *out, const char *path, const char *key, size_t index)
{
    size_t len = strlen(path);

    if (len >= PATH_MAX_LEN)
        len = PATH_MAX_LEN - 1;
    memcpy(out, path, len);
    out[len] = '\0';
    js_path_append(out, len, PATH_MAX_LEN, key, index);
}

/* A non-negative integer (1.0 counts) for the min/max keywords. */
static int count_value(struct compiler *c, const json_t *v, const char *path, long long *out)
{
    if (!js_is_integer(v) || (json_is_integer(v) ? json_integer_value(v) < 0 : json_real_value(v) < 0)) {
        fail(c, path, "must be a non-negative integer");
        return -1;
    }
    *out = json_is_integer(v) ? (long long)json_integer_value(v)
           : json_real_value(v) > 9e18 ? (long long)9e18 : (long long)json_real_value(v);
    return 0;
}

/* ECMA-262 patterns through pcre2 in UTF mode; like ECMA-262's test(), never implicitly anchored,
 * and, as in ECMA-262, "$" matches only at the very end (not before a final newline). */
static int compile_regex(struct compiler *c, const char *source, size_t len, const char *path, struct js_regex *re)
{
    int code;
    PCRE2_SIZE offset;
    PCRE2_UCHAR message[160];

    re->source = source;
    re->code = pcre2_compile((PCRE2_SPTR)source, len, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &code, &offset, NULL);
    if (!re->code) {
        pcre2_get_error_message(code, message, sizeof message);
        fail(c, path, "invalid regular expression at offset %zu: %s", (size_t)offset, (const char *)message);
        return -1;
    }
    return 0;
}

static struct js_node *compile_schema(struct compiler *c, const json_t *j, const char *path, int depth);

static int compile_list(struct compiler *c, const json_t *v, const char *path, int depth, struct js_list *list,
                        int allow_empty)
{
    char item_path[PATH_MAX_LEN];

    if (!json_is_array(v) || (!allow_empty && json_array_size(v) == 0)) {
        fail(c, path, allow_empty ? "must be an array of schemas" : "must be a non-empty array of schemas");
        return -1;
    }
    list->n = json_array_size(v);
    if (list->n && !(list->items = calloc(list->n, sizeof *list->items))) {
        fail(c, path, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < list->n; i++) {
        sub_path(item_path, path, NULL, i);
        if (!(list->items[i] = compile_schema(c, json_array_get(v, i), item_path, depth + 1)))
            return -1;
    }
    return 0;
}

static int compile_type(struct compiler *c, struct js_node *node, const json_t *v, const char *path)
{
    static const struct { const char *name; unsigned bits; } names[] = {
        { "null", JS_T_NULL }, { "boolean", JS_T_BOOLEAN }, { "integer", JS_T_INTEGER },
        { "number", JS_T_NUMBER | JS_T_INTEGER }, { "string", JS_T_STRING }, { "array", JS_T_ARRAY },
        { "object", JS_T_OBJECT },
    };
    size_t n = json_is_array(v) ? json_array_size(v) : 1;

    for (size_t i = 0; i < n; i++) {
        const json_t *name = json_is_array(v) ? json_array_get(v, i) : v;
        size_t k = 0;
        while (json_is_string(name) && k < sizeof names / sizeof names[0] &&
               strcmp(names[k].name, json_string_value(name)) != 0)
            k++;
        if (!json_is_string(name) || k == sizeof names / sizeof names[0]) {
            fail(c, path, "must be a type name (null, boolean, integer, number, string, array, object) or an array of them");
            return -1;
        }
        node->types |= names[k].bits;
    }
    return 0;
}

static int compile_required(struct compiler *c, const json_t *v, const char *path)
{
    if (!json_is_array(v)) {
        fail(c, path, "must be an array of property names");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_string(json_array_get(v, i))) {
            char item_path[PATH_MAX_LEN];
            sub_path(item_path, path, NULL, i);
            fail(c, item_path, "must be a property name (a string)");
            return -1;
        }
    return 0;
}

/* properties, patternProperties and dependencies: an object of schemas (or, for dependencies,
 * of name lists). */
static int compile_members(struct compiler *c, struct js_node *node, const char *keyword, const json_t *v,
                           const char *path, int depth)
{
    char member_path[PATH_MAX_LEN];
    const char *key;
    json_t *member;
    size_t n = json_object_size(v), i = 0;

    if (!json_is_object(v)) {
        fail(c, path, "must be an object");
        return -1;
    }
    if (strcmp(keyword, "patternProperties") == 0) {
        if (n && !(node->pattern_properties = calloc(n, sizeof *node->pattern_properties)))
            goto oom;
        json_object_foreach((json_t *)v, key, member) {
            sub_path(member_path, path, key, 0);
            if (compile_regex(c, key, json_object_iter_key_len(json_object_key_to_iter(key)), member_path,
                              &node->pattern_properties[i].re) < 0)
                return -1;
            node->n_pattern_properties = ++i;
            if (!(node->pattern_properties[i - 1].schema = compile_schema(c, member, member_path, depth + 1)))
                return -1;
        }
        return 0;
    }
    struct js_named *named = n ? calloc(n, sizeof *named) : NULL;
    if (n && !named)
        goto oom;
    if (strcmp(keyword, "properties") == 0) {
        node->properties = named;
        node->properties_obj = v;
    } else {
        node->dependencies = named;
    }
    json_object_foreach((json_t *)v, key, member) {
        sub_path(member_path, path, key, 0);
        named[i].name = key;
        if (strcmp(keyword, "dependencies") == 0 && json_is_array(member)) {
            if (compile_required(c, member, member_path) < 0)
                return -1;
            named[i].names = member;
        } else if (!(named[i].schema = compile_schema(c, member, member_path, depth + 1))) {
            return -1;
        }
        i++;
        if (named == node->properties)
            node->n_properties = i;
        else
            node->n_dependencies = i;
    }
    return 0;
oom:
    fail(c, path, "out of memory");
    return -1;
}

static const char *const annotations[] = {
    "$schema", "$id", "title", "description", "default", "examples", "$comment", "readOnly", "writeOnly",
    "contentMediaType", "contentEncoding",
};

static int is_annotation(const char *key)
{
    if (strncmp(key, "x-", 2) == 0)   /* vendor extensions, by convention annotations only */
        return 1;
    for (size_t i = 0; i < sizeof annotations / sizeof annotations[0]; i++)
        if (strcmp(annotations[i], key) == 0)
            return 1;
    return 0;
}

/* Where a bound keyword stores its value: the number keywords, then the counts. */
static const json_t **number_slot(struct js_node *node, const char *key)
{
    if (strcmp(key, "multipleOf") == 0) return &node->multiple_of;
    if (strcmp(key, "minimum") == 0) return &node->minimum;
    if (strcmp(key, "maximum") == 0) return &node->maximum;
    if (strcmp(key, "exclusiveMinimum") == 0) return &node->exclusive_minimum;
    if (strcmp(key, "exclusiveMaximum") == 0) return &node->exclusive_maximum;
    return NULL;
}

static long long *count_slot(struct js_node *node, const char *key)
{
    if (strcmp(key, "minLength") == 0) return &node->min_length;
    if (strcmp(key, "maxLength") == 0) return &node->max_length;
    if (strcmp(key, "minItems") == 0) return &node->min_items;
    if (strcmp(key, "maxItems") == 0) return &node->max_items;
    if (strcmp(key, "minProperties") == 0) return &node->min_properties;
    if (strcmp(key, "maxProperties") == 0) return &node->max_properties;
    return NULL;
}

/* A keyword whose value is one schema. */
static struct js_node **schema_slot(struct js_node *node, const char *key)
{
    if (strcmp(key, "additionalProperties") == 0) return &node->additional_properties;
    if (strcmp(key, "additionalItems") == 0) return &node->additional_items;
    if (strcmp(key, "propertyNames") == 0) return &node->property_names;
    if (strcmp(key, "contains") == 0) return &node->contains;
    if (strcmp(key, "not") == 0) return &node->not_schema;
    if (strcmp(key, "if") == 0) return &node->if_schema;
    if (strcmp(key, "then") == 0) return &node->then_schema;
    if (strcmp(key, "else") == 0) return &node->else_schema;
    return NULL;
}

static struct js_list *list_slot(struct js_node *node, const char *key)
{
    if (strcmp(key, "allOf") == 0) return &node->all_of;
    if (strcmp(key, "anyOf") == 0) return &node->any_of;
    if (strcmp(key, "oneOf") == 0) return &node->one_of;
    return NULL;
}

static int compile_keyword(struct compiler *c, struct js_node *node, const char *key, const json_t *v,
                           const char *path, int depth, int is_root)
{
    const json_t **number;
    long long *count;
    struct js_node **one;
    struct js_list *list;

    if ((number = number_slot(node, key))) {
        int positive = json_is_integer(v) ? json_integer_value(v) > 0 : json_real_value(v) > 0;
        if (!json_is_number(v) || (strcmp(key, "multipleOf") == 0 && !positive)) {
            fail(c, path, strcmp(key, "multipleOf") == 0 ? "must be a number above 0" : "must be a number");
            return -1;
        }
        *number = v;
        return 0;
    }
    if ((count = count_slot(node, key)))
        return count_value(c, v, path, count);
    if ((one = schema_slot(node, key)))
        return (*one = compile_schema(c, v, path, depth + 1)) ? 0 : -1;
    if ((list = list_slot(node, key)))
        return compile_list(c, v, path, depth, list, 0);
    if (strcmp(key, "type") == 0)
        return compile_type(c, node, v, path);
    if (strcmp(key, "enum") == 0) {
        if (!json_is_array(v)) {
            fail(c, path, "must be an array");
            return -1;
        }
        node->enum_values = v;
        return 0;
    }
    if (strcmp(key, "const") == 0) {
        node->const_value = v;
        return 0;
    }
    if (strcmp(key, "pattern") == 0) {
        if (!json_is_string(v)) {
            fail(c, path, "must be a string (a regular expression)");
            return -1;
        }
        return compile_regex(c, json_string_value(v), json_string_length(v), path, &node->pattern);
    }
    if (strcmp(key, "format") == 0) {
        if (!json_is_string(v)) {
            fail(c, path, "must be a string");
            return -1;
        }
        if ((node->format = js_format_by_name(json_string_value(v))) == JS_F_NONE) {
            char name[80];
            js_value_snippet(v, name, sizeof name, 60);
            fail(c, path, "unsupported format %s (supported: date-time, date, time, email, uuid, uri)", name);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "required") == 0) {
        node->required = v;
        return compile_required(c, v, path);
    }
    if (strcmp(key, "uniqueItems") == 0) {
        if (!json_is_boolean(v)) {
            fail(c, path, "must be a boolean");
            return -1;
        }
        node->unique_items = json_is_true(v);
        return 0;
    }
    if (strcmp(key, "items") == 0) {
        if (json_is_array(v)) {
            node->has_items_tuple = 1;
            return compile_list(c, v, path, depth, &node->items_tuple, 1);
        }
        return (node->items = compile_schema(c, v, path, depth + 1)) ? 0 : -1;
    }
    if (strcmp(key, "properties") == 0 || strcmp(key, "patternProperties") == 0 || strcmp(key, "dependencies") == 0)
        return compile_members(c, node, key, v, path, depth);
    if (strcmp(key, "definitions") == 0) {
        const char *name;
        json_t *def;
        char def_path[PATH_MAX_LEN];
        if (!json_is_object(v)) {
            fail(c, path, "must be an object of schemas");
            return -1;
        }
        json_object_foreach((json_t *)v, name, def) {   /* compiled even when unused: errors show early */
            sub_path(def_path, path, name, 0);
            if (!compile_schema(c, def, def_path, depth + 1))
                return -1;
        }
        return 0;
    }
    if (strcmp(key, "$ref") == 0) {
        struct pending_ref *p;
        if (!json_is_string(v)) {
            fail(c, path, "must be a string (a URI reference)");
            return -1;
        }
        if (json_string_value(v)[0] != '#') {
            char quoted[256];
            js_quote(json_string_value(v), quoted, sizeof quoted, 60);
            fail(c, path, "$ref to another document (%s) not supported: only \"#\" and \"#/...\" within this one", quoted);
            return -1;
        }
        if (!(p = malloc(sizeof *p))) {
            fail(c, path, "out of memory");
            return -1;
        }
        *p = (struct pending_ref){ node, json_string_value(v), c->refs };
        c->refs = p;
        return 0;
    }
    if (strcmp(key, "$schema") == 0 && is_root) {
        const char *uri = json_is_string(v) ? json_string_value(v) : "";
        if (!strstr(uri, "json-schema.org/draft-07/schema")) {
            fail(c, path, "only draft-07 is supported (\"http://json-schema.org/draft-07/schema#\")");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "$id") == 0 && !is_root && json_is_string(v) && json_string_value(v)[0] != '#') {
        fail(c, path, "$id in a subschema (a change of base URI) not supported");
        return -1;
    }
    if (is_annotation(key))
        return 0;
    fail(c, path, "keyword not supported");
    return -1;
}

static struct js_node *compile_schema(struct compiler *c, const json_t *j, const char *path, int depth)
{
    /* true and false are jansson singletons: not keyed, so each keeps its own path. */
    struct js_node *node = json_is_object(j) ? map_get(c, j) : NULL;
    const char *key;
    json_t *v;
    char key_path[PATH_MAX_LEN];

    if (node)
        return node;
    if (depth > JSONSCHEMA_MAX_DEPTH) {
        fail(c, path, "schema nested deeper than %d levels", JSONSCHEMA_MAX_DEPTH);
        return NULL;
    }
    if (!json_is_object(j) && !json_is_boolean(j)) {
        fail(c, path, "a schema must be an object or a boolean");
        return NULL;
    }
    if (c->s->n_nodes >= JSONSCHEMA_MAX_SUBSCHEMAS) {   /* each costs a few hundred bytes */
        fail(c, path, "schema has more than %d subschemas", JSONSCHEMA_MAX_SUBSCHEMAS);
        return NULL;
    }
    if (!(node = calloc(1, sizeof *node)) || !(node->path = strdup(path))) {
        free(node);
        fail(c, path, "out of memory");
        return NULL;
    }
    node->next_alloc = c->s->nodes;   /* owned from here on: jsonschema_free finds it */
    c->s->nodes = node;
    c->s->n_nodes++;
    node->min_length = node->max_length = node->min_items = node->max_items = -1;
    node->min_properties = node->max_properties = -1;
    node->boolean = json_is_boolean(j) ? json_is_true(j) : -1;
    if (json_is_object(j) && map_put(c, j, node) < 0) {
        fail(c, path, "out of memory");
        return NULL;
    }
    if (node->boolean >= 0)
        return node;
    json_object_foreach((json_t *)j, key, v) {
        sub_path(key_path, path, key, 0);
        if (compile_keyword(c, node, key, v, key_path, depth, depth == 0) < 0)
            return NULL;
    }
    return node;
}

static int hex_digit(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* The JSON pointer of a "#/..." fragment, %-decoded and then ~1 ~0 unescaped token by token. */
static const json_t *resolve_pointer(struct compiler *c, const char *ref, const char *where, char *target_path,
                                     int *depth)
{
    size_t n = strlen(ref), len = 0;
    char *decoded = malloc(n + 1), *token, *rest;
    const json_t *at = c->s->doc;
    char quoted[256];

    js_quote(ref, quoted, sizeof quoted, 60);
    if (!decoded) {
        fail(c, where, "out of memory");
        return NULL;
    }
    for (size_t i = 1; i < n; i++) {   /* ref[0] is '#' */
        if (ref[i] == '%') {
            int hi = i + 2 < n ? hex_digit(ref[i + 1]) : -1, lo = hi >= 0 ? hex_digit(ref[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0)) {
                free(decoded);
                fail(c, where, "invalid %%-encoding in $ref %s", quoted);
                return NULL;
            }
            decoded[len++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            decoded[len++] = ref[i];
        }
    }
    decoded[len] = '\0';
    strcpy(target_path, "$");
    *depth = 0;
    if (len > 0 && decoded[0] != '/') {
        free(decoded);
        fail(c, where, "$ref to an anchor (%s) not supported: only \"#\" and \"#/...\" JSON pointers", quoted);
        return NULL;
    }
    for (rest = len ? decoded + 1 : NULL; rest && at; (*depth)++) {
        char *w;
        token = rest;
        rest = strchr(rest, '/');
        if (rest)
            *rest++ = '\0';
        for (char *r = w = token; *r; r++, w++) {   /* ~1 is '/', ~0 is '~', in that order */
            if (*r == '~' && (r[1] == '0' || r[1] == '1'))
                *w = *++r == '1' ? '/' : '~';
            else
                *w = *r;
        }
        *w = '\0';
        if (json_is_object(at)) {
            at = json_object_get(at, token);
            js_path_append(target_path, strlen(target_path), PATH_MAX_LEN, token, 0);
        } else if (json_is_array(at) && token[0] >= '0' && token[0] <= '9' && (token[0] != '0' || !token[1]) &&
                   strspn(token, "0123456789") == strlen(token) && strlen(token) < 10) {
            size_t index = (size_t)strtoul(token, NULL, 10);
            at = json_array_get(at, index);
            js_path_append(target_path, strlen(target_path), PATH_MAX_LEN, NULL, index);
        } else {
            at = NULL;
        }
    }
    free(decoded);
    if (!at)
        fail(c, where, "$ref %s points at nothing in this document", quoted);
    return at;
}

static int resolve_refs(struct compiler *c)
{
    struct pending_ref *p;

    while ((p = c->refs)) {
        char target_path[PATH_MAX_LEN], where[PATH_MAX_LEN];
        const json_t *target;
        int depth, ok;
        c->refs = p->next;
        snprintf(where, sizeof where, "%s.$ref", p->node->path);
        target = resolve_pointer(c, p->ref, where, target_path, &depth);
        ok = target && (p->node->ref = compile_schema(c, target, target_path, depth)) != NULL;
        free(p);
        if (!ok)
            return -1;
    }
    return 0;
}

struct jsonschema *jsonschema_compile(const json_t *schema, char *err, size_t errlen)
{
    struct compiler c = { .err = err, .errlen = errlen };
    int ok;

    if (errlen)
        err[0] = '\0';
    if (!(c.s = calloc(1, sizeof *c.s)) || !(c.s->doc = json_deep_copy(schema))) {
        free(c.s);
        snprintf(err, errlen, "$: out of memory");
        return NULL;
    }
    ok = (c.s->root = compile_schema(&c, c.s->doc, "$", 0)) != NULL && resolve_refs(&c) == 0;
    if (ok && (!(c.s->match_ctx = pcre2_match_context_create(NULL)) ||
               pcre2_set_match_limit(c.s->match_ctx, JS_MATCH_LIMIT) != 0)) {
        snprintf(err, errlen, "$: out of memory");
        ok = 0;
    }
    while (c.refs) {
        struct pending_ref *next = c.refs->next;
        free(c.refs);
        c.refs = next;
    }
    free(c.keys);
    free(c.slots);
    if (!ok) {
        jsonschema_free(c.s);
        return NULL;
    }
    return c.s;
}

static void free_list(struct js_list *l)
{
    free(l->items);
}

void jsonschema_free(struct jsonschema *s)
{
    struct js_node *node, *next;

    if (!s)
        return;
    for (node = s->nodes; node; node = next) {
        next = node->next_alloc;
        pcre2_code_free(node->pattern.code);
        for (size_t i = 0; i < node->n_pattern_properties; i++)
            pcre2_code_free(node->pattern_properties[i].re.code);
        free(node->pattern_properties);
        free(node->properties);
        free(node->dependencies);
        free_list(&node->items_tuple);
        free_list(&node->all_of);
        free_list(&node->any_of);
        free_list(&node->one_of);
        free(node->path);
        free(node);
    }
    pcre2_match_context_free(s->match_ctx);
    json_decref(s->doc);
    free(s);
}
