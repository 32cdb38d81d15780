/* Private to lib/jsonschema*.c: the compiled tree, and the helpers its files share. */
#ifndef SLUICE_JSONSCHEMA_INT_H
#define SLUICE_JSONSCHEMA_INT_H

#include <stddef.h>
#include <jansson.h>

#include "lib/jsonschema.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Bits of the "type" keyword; JS_T_INTEGER is also set by "number" (an integer is a number). */
enum {
    JS_T_NULL = 1, JS_T_BOOLEAN = 2, JS_T_INTEGER = 4, JS_T_NUMBER = 8,
    JS_T_STRING = 16, JS_T_ARRAY = 32, JS_T_OBJECT = 64,
};

enum js_format { JS_F_NONE, JS_F_DATE_TIME, JS_F_DATE, JS_F_TIME, JS_F_EMAIL, JS_F_UUID, JS_F_URI };

struct js_node;

struct js_regex {
    pcre2_code *code;
    const char *source;          /* borrowed from the schema copy, for reasons */
};

struct js_named {                /* properties, dependencies: a name and what it brings */
    const char *name;            /* borrowed from the schema copy */
    struct js_node *schema;      /* NULL for a dependency that is a list of names */
    const json_t *names;         /* the list of a property dependency */
};

struct js_pattern_schema {
    struct js_regex re;
    struct js_node *schema;
};

struct js_list {
    struct js_node **items;
    size_t n;
};

struct js_node {
    char *path;                  /* where in the schema, "$.properties.email" */
    struct js_node *next_alloc;  /* every node, for jsonschema_free */
    int boolean;                 /* -1: an object schema; 0/1: the schema false/true */
    struct js_node *ref;         /* $ref: in draft-07 it replaces every sibling keyword */

    unsigned types;              /* 0: no "type" */
    const json_t *enum_values, *const_value;
    const json_t *multiple_of, *minimum, *maximum, *exclusive_minimum, *exclusive_maximum;
    long long min_length, max_length;            /* -1: absent */
    struct js_regex pattern;
    enum js_format format;

    struct js_named *properties;
    size_t n_properties;
    const json_t *properties_obj;                /* for the additionalProperties lookup */
    struct js_pattern_schema *pattern_properties;
    size_t n_pattern_properties;
    struct js_node *additional_properties;
    const json_t *required;
    long long min_properties, max_properties;
    struct js_node *property_names;
    struct js_named *dependencies;
    size_t n_dependencies;

    struct js_node *items;                       /* one schema for every item */
    struct js_list items_tuple;                  /* or one per position */
    int has_items_tuple;
    struct js_node *additional_items;
    long long min_items, max_items;
    int unique_items;
    struct js_node *contains;

    struct js_list all_of, any_of, one_of;
    struct js_node *not_schema, *if_schema, *then_schema, *else_schema;
};

struct jsonschema {
    json_t *doc;                 /* the deep copy every borrowed pointer points into */
    struct js_node *root;
    struct js_node *nodes;       /* every node, linked by next_alloc */
    size_t n_nodes;
    pcre2_match_context *match_ctx;  /* bounds backtracking: a pattern cannot hang a worker */
};

/** @brief Deepest nesting of schema applications one validation walks ($ref hops count): twice
 * the schema depth, as a level of the instance usually costs a subschema and a $ref. */
#define JS_MAX_EVAL_DEPTH (2 * JSONSCHEMA_MAX_DEPTH)
/** @brief Steps (subschema applications, uniqueItems comparisons) one validation may take. */
#define JS_EVAL_BUDGET (1L << 20)
/** @brief pcre2's match limit for one pattern on one string. */
#define JS_MATCH_LIMIT 100000

/* jsonschema_value.c */
/** @brief JSON equality where numbers compare by value (1 == 1.0), as enum, const and
 * uniqueItems want it; jansson's json_equal does not. */
int js_equal(const json_t *a, const json_t *b);
/** @brief <0, 0, >0 as number a is below, equal to, above number b (exact for two integers). */
int js_number_cmp(const json_t *a, const json_t *b);
/** @brief 1 when the number is an integer in draft-07's sense (1.0 is one). */
int js_is_integer(const json_t *v);
/** @brief Code points in a UTF-8 string of @p n bytes. */
size_t js_utf8_count(const char *s, size_t n);
/** @brief 1 when the string is of the format. */
int js_format_ok(enum js_format f, const char *s, size_t n);
/** @brief The format named @p name, JS_F_NONE when it is not supported. */
enum js_format js_format_by_name(const char *name);
/** @brief "an email", "a date-time", ... for reasons. */
const char *js_format_noun(enum js_format f);
/** @brief Append the JSON path segment of member @p key (".key" or "[\"odd key\"]") or of
 * index @p index (when key is NULL) to @p buf holding @p len bytes of @p size; returns the new
 * length (cut, still terminated, when it would not fit). */
size_t js_path_append(char *buf, size_t len, size_t size, const char *key, size_t index);
/** @brief @p s as a JSON string on one line (quotes, escapes), cut to @p max code points with
 * "..."; @p outsize of at least 16. For names and patterns in reasons and errors. */
void js_quote(const char *s, char *out, size_t outsize, size_t max);
/** @brief The value as compact JSON on one line, cut to @p max code points with "...". */
void js_value_snippet(const json_t *v, char *out, size_t outsize, size_t max);

#endif
