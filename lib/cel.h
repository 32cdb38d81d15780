/* A subset of CEL (Common Expression Language, github.com/google/cel-spec) for data-contract rules:
 * literals (int, uint, double, string, bytes, bool, null, lists, maps), field selection, indexing,
 * has(), ! and unary -, arithmetic, comparisons, in, && || with CEL's error absorption, ?:, size(),
 * startsWith/endsWith/contains/matches, and the conversions int() uint() double() string() bytes()
 * bool() dyn(). Macros, type values, timestamps, durations and messages are rejected at compile
 * time. Types are strict as in CEL ("1 + 1.0" is an error); int64/uint64 overflow is an error. */
#ifndef SLUICE_CEL_H
#define SLUICE_CEL_H

#include <stddef.h>
#include <jansson.h>

#define CEL_MAX_EXPR_LEN 8192     /* bytes of expression text */
#define CEL_MAX_NESTING 64        /* parentheses, brackets, braces, calls and unary operators */
#define CEL_MAX_TREE_DEPTH 256    /* syntax tree depth, chains of binary operators included */
#define CEL_EVAL_BUDGET (1u << 20) /* bytes one evaluation may allocate for the values it makes */

struct cel_program; /* compiled, immutable: one may be evaluated from several threads at once */

/** @brief Parses @p expr. NULL with "<reason> at column N" in @p err for syntax errors and for
 * constructs outside the subset ("macro 'map' is not supported at column 12"). */
struct cel_program *cel_compile(const char *expr, char *err, size_t errlen);

/** @brief Evaluates @p p with the variable @p name bound to @p value (objects are maps with string
 * keys, arrays lists, integers int, reals double). Returns 1 (true), 0 (false), or -1 with the
 * reason in @p err when evaluation fails ("no such key: email", "division by zero", "overflow")
 * or the result is not a bool ("result is int, not bool"): callers fail closed on -1. */
int cel_eval_bool(const struct cel_program *p, const char *name, const json_t *value, char *err, size_t errlen);

void cel_program_free(struct cel_program *p);

/* A Confluent CEL rule's "expr" (DATA-PRODUCTS.md section 3): "guard ; expr" or just "expr", with
 * the record bound as `message`. The text splits at the first ';' outside string literals; a guard
 * that is false skips the rule (the record passes), as Confluent's executors do. */
struct cel_rule;

/** @brief Compiles both parts; NULL with "<reason> at column N" (columns of the whole text). */
struct cel_rule *cel_rule_compile(const char *expr, char *err, size_t errlen);

/** @brief 1 when @p message passes (or the guard is false), 0 when the condition is false, -1
 * with the reason in @p err when the guard or the condition fails to evaluate to a bool. */
int cel_rule_check(const struct cel_rule *rule, const json_t *message, char *err, size_t errlen);

void cel_rule_free(struct cel_rule *rule);

#endif
