/* lib/cel's private parts: the syntax tree cel_parse.c builds, the values cel_eval.c computes,
 * and the arena both allocate from. The conformance and differential tests use cel_eval to see
 * values of every type, not just bools. */
#ifndef SLUICE_CEL_INT_H
#define SLUICE_CEL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "lib/cel.h"

/* Chunked bump allocator; everything is freed at once. A nonzero budget caps the total. */
struct cel_arena {
    struct cel_chunk *chunks;
    size_t used, budget;
};
void *cel_arena_alloc(struct cel_arena *a, size_t size);
void cel_arena_free(struct cel_arena *a);

enum cel_kind { CEL_ERROR, CEL_NULL, CEL_BOOL, CEL_INT, CEL_UINT, CEL_DOUBLE, CEL_STRING, CEL_BYTES, CEL_LIST, CEL_MAP };

/* A value. Lists and maps are either borrowed JSON (json != NULL) or arrays in an arena; strings,
 * bytes and error messages are (pointer, length), not NUL-terminated. */
struct cel_value {
    enum cel_kind kind;
    union {
        int b;
        int64_t i;
        uint64_t u;
        double d;
        struct { const char *p; size_t n; } s;
        struct { const json_t *json; const struct cel_value *items; size_t n; } list;
        struct { const json_t *json; const struct cel_value *keys, *vals; size_t n; } map;
    } v;
};

enum cel_node_kind {
    N_LITERAL, N_IDENT, N_SELECT, N_HAS, N_INDEX, N_CALL, N_LIST, N_MAP,
    N_NOT, N_NEGATE, N_AND, N_OR, N_CONDITIONAL, N_BINARY
};
enum cel_binop { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN };
enum cel_func {
    F_SIZE, F_STARTS_WITH, F_ENDS_WITH, F_CONTAINS, F_MATCHES,
    F_INT, F_UINT, F_DOUBLE, F_STRING, F_BYTES, F_BOOL, F_DYN
};

struct cel_node {
    enum cel_node_kind kind;
    int op;                 /* enum cel_binop for N_BINARY, enum cel_func for N_CALL */
    int column;             /* 1-based, for messages */
    int depth;              /* of the subtree, bounded by CEL_MAX_TREE_DEPTH */
    struct cel_value literal;
    const char *name;       /* N_IDENT: the variable; N_SELECT, N_HAS: the field */
    const char *qualified;  /* N_SELECT over identifiers only: "a.b.c", tried as a variable first */
    struct cel_node **args; /* operands; for a method call args[0] is the receiver */
    size_t nargs;           /* N_MAP: 2 per entry, key then value */
    void *regex;            /* matches() with a literal pattern: compiled once (pcre2_code) */
};

/* The compiled patterns of a program, to free with it. */
struct cel_regex_list {
    void *regex;
    struct cel_regex_list *next;
};

struct cel_program {
    struct cel_arena arena;
    struct cel_node *root;
    struct cel_regex_list *regexes;
};

struct cel_binding {
    const char *name;
    struct cel_value value;
};

/* One evaluation: the variables and the arena (with CEL_EVAL_BUDGET) for the values it makes. */
struct cel_eval {
    const struct cel_binding *bindings;
    size_t nbindings;
    struct cel_arena arena;
};

/** @brief Evaluates @p p; the result (an error value on failure) lives until the arena is freed. */
struct cel_value cel_eval(const struct cel_program *p, struct cel_eval *ev);
struct cel_value cel_eval_node(const struct cel_node *n, struct cel_eval *ev);

/* Values (cel_value.c). */
struct cel_value cel_from_json(const json_t *json);
struct cel_value cel_error(struct cel_eval *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cel_kind_name(enum cel_kind kind);
size_t cel_list_size(const struct cel_value *list);
struct cel_value cel_list_get(const struct cel_value *list, size_t i);
size_t cel_map_size(const struct cel_value *map);
/* 1 and *out when @p map has @p key (numeric keys compare across int, uint and double), else 0. */
int cel_map_find(const struct cel_value *map, const struct cel_value *key, struct cel_value *out);
/* Map entries in order: *cursor starts at NULL (JSON) / 0; returns 0 at the end. */
int cel_map_next(const struct cel_value *map, void **iter, size_t *index, struct cel_value *key, struct cel_value *val);
int cel_equal(const struct cel_value *a, const struct cel_value *b);
/* -1, 0, 1; 2 when unordered (NaN); -2 when the types have no ordering between them. */
int cel_compare(const struct cel_value *a, const struct cel_value *b);

/* Functions (cel_func.c). */
struct cel_value cel_call(struct cel_eval *ev, int func, const struct cel_value *args, size_t nargs, const void *regex);
/* A pattern in RE2 syntax compiled for PCRE2; NULL with "invalid regex: <reason>" in @p err. */
void *cel_regex_compile(const char *pattern, size_t n, char *err, size_t errlen);
void cel_regex_free(void *regex);
size_t cel_utf8_length(const char *s, size_t n);
int cel_utf8_valid(const char *s, size_t n);

#endif
