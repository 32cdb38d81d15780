/* lib/jsonschema_validate.c: walking an instance through a compiled schema. The instance path is
 * kept as a stack of segments and only written out when a violation is reported; inside anyOf,
 * oneOf, not, if and contains the branches are tried without reporting. Every walk is bounded:
 * in depth (recursive $refs), in steps (a schema that fans out), and in regex backtracking. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/jsonschema.h"
#include "lib/jsonschema_int.h"

#define VALUE_SNIPPET_POINTS 60

struct segment {
    const char *key;             /* NULL: an array index */
    size_t index;
};

struct walk {
    const struct jsonschema *s;
    struct jsonschema_violation *v;
    int report;                  /* 0 while trying a branch: nothing is written to v */
    int depth;
    long budget;
    size_t n_segments;
    struct segment segments[JS_MAX_EVAL_DEPTH + 1];
};

static void instance_path(const struct walk *w, char *out, size_t size)
{
    size_t len = 1;

    strcpy(out, "$");
    for (size_t i = 0; i < w->n_segments; i++)
        len = js_path_append(out, len, size, w->segments[i].key, w->segments[i].index);
}

static int eval_error(struct walk *w, const char *fmt, ...)
{
    va_list ap;

    instance_path(w, w->v->path, sizeof w->v->path);
    snprintf(w->v->keyword, sizeof w->v->keyword, "$evaluation");
    w->v->schema_path[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(w->v->reason, sizeof w->v->reason, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reports "<path>: [<value> ]<message> (<keyword>)" when reporting; always returns 0 (invalid). */
static int violation(struct walk *w, const struct js_node *node, const char *keyword, const json_t *value,
                     const char *fmt, ...)
{
    struct jsonschema_violation *v = w->v;
    char message[320], snippet[256];
    va_list ap;

    if (!w->report)
        return 0;
    instance_path(w, v->path, sizeof v->path);
    snprintf(v->keyword, sizeof v->keyword, "%s", keyword);
    if (node->boolean >= 0)
        snprintf(v->schema_path, sizeof v->schema_path, "%s", node->path);
    else
        snprintf(v->schema_path, sizeof v->schema_path, "%s.%s", node->path, keyword);
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (value)
        js_value_snippet(value, snippet, sizeof snippet, VALUE_SNIPPET_POINTS);
    if (snprintf(v->reason, sizeof v->reason, "%s: %s%s%s (%s)", v->path, value ? snippet : "", value ? " " : "",
                 message, keyword) >= (int)sizeof v->reason)
        memcpy(v->reason + sizeof v->reason - 4, "...", 4);   /* a deep path and a long message: cut */
    return 0;
}

static int eval(struct walk *w, const struct js_node *node, const json_t *inst);

static int push_segment(struct walk *w, const char *key, size_t index)
{
    if (w->n_segments >= JS_MAX_EVAL_DEPTH)
        return eval_error(w, "instance nested deeper than %d levels", JS_MAX_EVAL_DEPTH);
    w->segments[w->n_segments++] = (struct segment){ key, index };
    return 0;
}

/* Descend into member @p key or item @p index of the instance. */
static int eval_at(struct walk *w, const struct js_node *node, const json_t *inst, const char *key, size_t index)
{
    int r;

    if (push_segment(w, key, index) < 0)
        return -1;
    r = eval(w, node, inst);
    w->n_segments--;
    return r;
}

/* A branch of anyOf, oneOf, not, if or contains: its verdict only. */
static int try_branch(struct walk *w, const struct js_node *node, const json_t *inst)
{
    int saved = w->report, r;

    w->report = 0;
    r = eval(w, node, inst);
    w->report = saved;
    return r;
}

static const char *type_noun(const json_t *inst)
{
    switch (json_typeof(inst)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return js_is_integer(inst) ? "an integer" : "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static void type_names(unsigned bits, char *out, size_t size)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        { JS_T_NULL, "null" }, { JS_T_BOOLEAN, "boolean" }, { JS_T_NUMBER, "number" },
        { JS_T_INTEGER, "integer" }, { JS_T_STRING, "string" }, { JS_T_ARRAY, "array" }, { JS_T_OBJECT, "object" },
    };
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(bits & names[i].bit) || (names[i].bit == JS_T_INTEGER && (bits & JS_T_NUMBER)))
            continue;   /* "number" already says integer */
        len += (size_t)snprintf(out + len, size - len, "%s%s", len ? " or " : "", names[i].name);
        if (len >= size)
            break;
    }
}

static unsigned type_bits(const json_t *inst)
{
    switch (json_typeof(inst)) {
    case JSON_OBJECT: return JS_T_OBJECT;
    case JSON_ARRAY: return JS_T_ARRAY;
    case JSON_STRING: return JS_T_STRING;
    case JSON_INTEGER: return JS_T_INTEGER | JS_T_NUMBER;
    case JSON_REAL: return JS_T_NUMBER | (js_is_integer(inst) ? JS_T_INTEGER : 0);
    case JSON_TRUE: case JSON_FALSE: return JS_T_BOOLEAN;
    default: return JS_T_NULL;
    }
}

static int multiple_of(const json_t *inst, const json_t *divisor)
{
    double x, m, q;

    if (json_is_integer(inst) && json_is_integer(divisor))
        return json_integer_value(inst) % json_integer_value(divisor) == 0;
    x = json_is_integer(inst) ? (double)json_integer_value(inst) : json_real_value(inst);
    m = json_is_integer(divisor) ? (double)json_integer_value(divisor) : json_real_value(divisor);
    q = x / m;
    /* Decimal divisors are not exact in binary: 0.0075 / 0.0001 is 75.00000000000001. */
    return isfinite(q) && fabs(q - nearbyint(q)) <= 1e-9 * fmax(1.0, fabs(q));
}

static int eval_number(struct walk *w, const struct js_node *node, const json_t *inst)
{
    char bound[96];

    if (node->multiple_of && !multiple_of(inst, node->multiple_of)) {
        js_value_snippet(node->multiple_of, bound, sizeof bound, 40);
        return violation(w, node, "multipleOf", inst, "is not a multiple of %s", bound);
    }
#define BOUND(field, keyword, fails, text)                                                   \
    if (node->field && js_number_cmp(inst, node->field) fails) {                            \
        js_value_snippet(node->field, bound, sizeof bound, 40);                             \
        return violation(w, node, keyword, inst, text " %s", bound);                        \
    }
    BOUND(minimum, "minimum", < 0, "is less than the minimum")
    BOUND(maximum, "maximum", > 0, "is more than the maximum")
    BOUND(exclusive_minimum, "exclusiveMinimum", <= 0, "is not above")
    BOUND(exclusive_maximum, "exclusiveMaximum", >= 0, "is not below")
#undef BOUND
    return 1;
}

static int regex_matches(struct walk *w, const struct js_regex *re, const char *s, size_t n)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    int rc;

    if (--w->budget < 0) {   /* many members times many patterns */
        pcre2_match_data_free(md);
        return eval_error(w, "validation takes more than %ld steps", JS_EVAL_BUDGET);
    }
    if (!md)
        return eval_error(w, "out of memory");
    rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, w->s->match_ctx);
    pcre2_match_data_free(md);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    char quoted[256];
    js_quote(re->source, quoted, sizeof quoted, 60);
    return eval_error(w, "pattern %s could not be matched (pcre2 error %d, e.g. too much backtracking)", quoted, rc);
}

static int eval_string(struct walk *w, const struct js_node *node, const json_t *inst)
{
    const char *s = json_string_value(inst);
    size_t n = json_string_length(inst), points = 0;
    int r;

    if (node->min_length >= 0 || node->max_length >= 0)
        points = js_utf8_count(s, n);
    if (node->min_length >= 0 && points < (unsigned long long)node->min_length)
        return violation(w, node, "minLength", inst, "is shorter than %lld characters", node->min_length);
    if (node->max_length >= 0 && points > (unsigned long long)node->max_length)
        return violation(w, node, "maxLength", inst, "is longer than %lld characters", node->max_length);
    if (node->pattern.code && (r = regex_matches(w, &node->pattern, s, n)) != 1) {
        char quoted[256];
        if (r < 0)
            return r;
        js_quote(node->pattern.source, quoted, sizeof quoted, 60);
        return violation(w, node, "pattern", inst, "does not match the pattern %s", quoted);
    }
    if (node->format != JS_F_NONE && !js_format_ok(node->format, s, n))
        return violation(w, node, "format", inst, "is not %s", js_format_noun(node->format));
    return 1;
}

static int eval_array(struct walk *w, const struct js_node *node, const json_t *inst)
{
    size_t n = json_array_size(inst);
    int r;

    if (node->min_items >= 0 && n < (unsigned long long)node->min_items)
        return violation(w, node, "minItems", NULL, "has %zu items, fewer than %lld", n, node->min_items);
    if (node->max_items >= 0 && n > (unsigned long long)node->max_items)
        return violation(w, node, "maxItems", NULL, "has %zu items, more than %lld", n, node->max_items);
    for (size_t i = 0; i < n; i++) {
        const struct js_node *item = node->items;
        if (node->has_items_tuple)
            item = i < node->items_tuple.n ? node->items_tuple.items[i] : node->additional_items;
        if (item && (r = eval_at(w, item, json_array_get(inst, i), NULL, i)) != 1)
            return r;
    }
    if (node->unique_items) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++) {
                if (--w->budget < 0)
                    return eval_error(w, "validation takes more than %ld steps", JS_EVAL_BUDGET);
                if (js_equal(json_array_get(inst, i), json_array_get(inst, j)))
                    return violation(w, node, "uniqueItems", NULL, "items %zu and %zu are equal", j, i);
            }
    }
    if (node->contains) {
        for (size_t i = 0; i < n; i++)
            if ((r = try_branch(w, node->contains, json_array_get(inst, i))) != 0)
                return r < 0 ? r : 1;
        return violation(w, node, "contains", NULL, "has no item that matches the schema of contains");
    }
    return 1;
}

/* patternProperties and additionalProperties for one member; *matched tells whether any
 * pattern (or properties) claimed it. */
static int eval_member(struct walk *w, const struct js_node *node, const char *key, size_t key_len,
                       const json_t *value)
{
    int matched = node->properties_obj && json_object_get(node->properties_obj, key) != NULL, r;

    for (size_t i = 0; i < node->n_pattern_properties; i++) {
        const struct js_pattern_schema *pp = &node->pattern_properties[i];
        if ((r = regex_matches(w, &pp->re, key, key_len)) < 0)
            return r;
        if (r == 1) {
            matched = 1;
            if ((r = eval_at(w, pp->schema, value, key, 0)) != 1)
                return r;
        }
    }
    if (!matched && node->additional_properties) {
        if (node->additional_properties->boolean == 0) {   /* the usual case: say which member is extra */
            if (push_segment(w, key, 0) < 0)
                return -1;
            r = violation(w, node, "additionalProperties", NULL, "is not a property the schema allows");
            w->n_segments--;
            return r;
        }
        return eval_at(w, node->additional_properties, value, key, 0);
    }
    return 1;
}

static int eval_object(struct walk *w, const struct js_node *node, const json_t *inst)
{
    size_t n = json_object_size(inst);
    const char *key;
    json_t *value;
    int r;

    for (size_t i = 0; node->required && i < json_array_size(node->required); i++) {
        const char *name = json_string_value(json_array_get(node->required, i));
        if (!json_object_get(inst, name)) {
            char quoted[96];
            js_value_snippet(json_array_get(node->required, i), quoted, sizeof quoted, 60);
            return violation(w, node, "required", NULL, "required property %s is missing", quoted);
        }
    }
    if (node->min_properties >= 0 && n < (unsigned long long)node->min_properties)
        return violation(w, node, "minProperties", NULL, "has %zu properties, fewer than %lld", n, node->min_properties);
    if (node->max_properties >= 0 && n > (unsigned long long)node->max_properties)
        return violation(w, node, "maxProperties", NULL, "has %zu properties, more than %lld", n, node->max_properties);
    for (size_t i = 0; i < node->n_properties; i++) {
        const json_t *member = json_object_get(inst, node->properties[i].name);
        if (member && (r = eval_at(w, node->properties[i].schema, member, node->properties[i].name, 0)) != 1)
            return r;
    }
    if (node->n_pattern_properties || node->additional_properties || node->property_names) {
        json_object_foreach((json_t *)inst, key, value) {
            size_t key_len = json_object_iter_key_len(json_object_key_to_iter(key));
            if ((r = eval_member(w, node, key, key_len, value)) != 1)
                return r;
            if (node->property_names) {
                json_t *name = json_stringn(key, key_len);
                if (!name)
                    return eval_error(w, "out of memory");
                r = push_segment(w, key, 0) < 0 ? -1 : eval(w, node->property_names, name);
                w->n_segments -= r >= 0;
                json_decref(name);
                if (r != 1)
                    return r;
            }
        }
    }
    for (size_t i = 0; i < node->n_dependencies; i++) {
        const struct js_named *dep = &node->dependencies[i];
        if (!json_object_get(inst, dep->name))
            continue;
        if (dep->schema && (r = eval(w, dep->schema, inst)) != 1)
            return r;
        for (size_t k = 0; dep->names && k < json_array_size(dep->names); k++) {
            const char *needed = json_string_value(json_array_get(dep->names, k));
            char has[128], lacks[128];
            if (json_object_get(inst, needed))
                continue;
            js_quote(dep->name, has, sizeof has, 40);
            js_quote(needed, lacks, sizeof lacks, 40);
            return violation(w, node, "dependencies", NULL, "has %s but not %s, which it needs", has, lacks);
        }
    }
    return 1;
}

static int eval_combinators(struct walk *w, const struct js_node *node, const json_t *inst)
{
    size_t first = 0, valid = 0;
    int r;

    for (size_t i = 0; i < node->all_of.n; i++)
        if ((r = eval(w, node->all_of.items[i], inst)) != 1)
            return r;
    if (node->any_of.n) {
        for (size_t i = 0; i < node->any_of.n && valid == 0; i++) {
            if ((r = try_branch(w, node->any_of.items[i], inst)) < 0)
                return r;
            valid += (size_t)r;
        }
        if (!valid)
            return violation(w, node, "anyOf", inst, "matches none of the %zu schemas of anyOf", node->any_of.n);
    }
    valid = 0;
    for (size_t i = 0; i < node->one_of.n; i++) {
        if ((r = try_branch(w, node->one_of.items[i], inst)) < 0)
            return r;
        if (r == 1 && valid++ == 0)
            first = i;
        else if (r == 1)
            return violation(w, node, "oneOf", inst, "matches both schema %zu and schema %zu of oneOf", first, i);
    }
    if (node->one_of.n && valid == 0)
        return violation(w, node, "oneOf", inst, "matches none of the %zu schemas of oneOf", node->one_of.n);
    if (node->not_schema) {
        if ((r = try_branch(w, node->not_schema, inst)) < 0)
            return r;
        if (r == 1)
            return violation(w, node, "not", inst, "matches the schema of not");
    }
    if (node->if_schema) {
        if ((r = try_branch(w, node->if_schema, inst)) < 0)
            return r;
        if (r == 1 && node->then_schema)
            return eval(w, node->then_schema, inst);
        if (r == 0 && node->else_schema)
            return eval(w, node->else_schema, inst);
    }
    return 1;
}

static int eval_node(struct walk *w, const struct js_node *node, const json_t *inst)
{
    int r;

    if (node->boolean >= 0)
        return node->boolean ? 1 : violation(w, node, "false", inst, "is not allowed here (the schema is false)");
    if (node->ref)   /* draft-07: a $ref replaces its sibling keywords */
        return eval(w, node->ref, inst);
    if (node->types && !(type_bits(inst) & node->types)) {
        char expected[96];
        type_names(node->types, expected, sizeof expected);
        return violation(w, node, "type", inst, "is %s, not %s", type_noun(inst), expected);
    }
    if (node->enum_values) {
        size_t i = 0, n = json_array_size(node->enum_values);
        while (i < n && !js_equal(inst, json_array_get(node->enum_values, i)))
            i++;
        if (i == n)
            return violation(w, node, "enum", inst, "is not one of the %zu values of enum", n);
    }
    if (node->const_value && !js_equal(inst, node->const_value))
        return violation(w, node, "const", inst, "is not the value of const");
    if (json_is_number(inst) && (r = eval_number(w, node, inst)) != 1)
        return r;
    if (json_is_string(inst) && (r = eval_string(w, node, inst)) != 1)
        return r;
    if (json_is_array(inst) && (r = eval_array(w, node, inst)) != 1)
        return r;
    if (json_is_object(inst) && (r = eval_object(w, node, inst)) != 1)
        return r;
    return eval_combinators(w, node, inst);
}

static int eval(struct walk *w, const struct js_node *node, const json_t *inst)
{
    int r;

    if (--w->budget < 0)
        return eval_error(w, "validation takes more than %ld steps", JS_EVAL_BUDGET);
    if (++w->depth > JS_MAX_EVAL_DEPTH) {
        w->depth--;
        return eval_error(w, "validation nested deeper than %d schemas (a recursive $ref?)", JS_MAX_EVAL_DEPTH);
    }
    r = eval_node(w, node, inst);
    w->depth--;
    return r;
}

int jsonschema_validate(const struct jsonschema *s, const json_t *instance, struct jsonschema_violation *v)
{
    struct walk w = { .s = s, .v = v, .report = 1, .budget = JS_EVAL_BUDGET };

    memset(v, 0, sizeof *v);
    return eval(&w, s->root, instance);
}
