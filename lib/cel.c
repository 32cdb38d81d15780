/* lib/cel's entry point for contract rules: a bool from one bound variable, everything else an
 * error so that the caller fails closed. Parsing is in cel_parse.c, evaluation in cel_eval.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cel_int.h"

int cel_eval_bool(const struct cel_program *p, const char *name, const json_t *value, char *err, size_t errlen)
{
    struct cel_binding binding = { .name = name };
    if (value)
        binding.value = cel_from_json(value);
    struct cel_eval ev = { .bindings = &binding, .nbindings = value ? 1 : 0 };
    struct cel_value result = cel_eval(p, &ev);
    int verdict = -1;
    if (result.kind == CEL_BOOL)
        verdict = result.v.b;
    else if (result.kind == CEL_ERROR)
        snprintf(err, errlen, "%.*s", (int)result.v.s.n, result.v.s.p);
    else
        snprintf(err, errlen, "result is %s, not bool", cel_kind_name(result.kind));
    cel_arena_free(&ev.arena);
    return verdict;
}

struct cel_rule {
    struct cel_program *guard; /* NULL without a guard */
    struct cel_program *condition;
};

/* The offset of the first ';' outside string literals, or -1. Quotes are tracked the way the
 * lexer reads them (escapes, triple quotes) so that "a;b" inside a literal does not split. */
static long guard_separator(const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == ';')
            return (long)i;
        if (s[i] != '"' && s[i] != '\'')
            continue;
        char quote = s[i];
        int triple = s[i + 1] == quote && s[i + 2] == quote;
        int raw = i > 0 && (s[i - 1] == 'r' || s[i - 1] == 'R' ||
                            (i > 1 && (s[i - 2] == 'r' || s[i - 2] == 'R') && (s[i - 1] == 'b' || s[i - 1] == 'B')));
        i += triple ? 3 : 1;
        while (s[i] && !(s[i] == quote && (!triple || (s[i + 1] == quote && s[i + 2] == quote)))) {
            if (s[i] == '\\' && !raw && s[i + 1])
                i++;
            i++;
        }
        if (!s[i])
            return -1; /* unterminated: the compiler reports it */
        i += triple ? 2 : 0;
    }
    return -1;
}

/* Compiles @p text[from, to) with what comes before blanked, so that columns stay those of the
 * whole rule in messages (and the end of a guard is the column of its ';'). */
static struct cel_program *compile_part(const char *text, size_t from, size_t to, char *err, size_t errlen)
{
    size_t n = to;
    char *copy = malloc(n + 1);
    if (!copy) {
        snprintf(err, errlen, "out of memory at column 1");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        copy[i] = i >= from ? text[i] : ' ';
    copy[n] = '\0';
    struct cel_program *p = cel_compile(copy, err, errlen);
    free(copy);
    return p;
}

struct cel_rule *cel_rule_compile(const char *expr, char *err, size_t errlen)
{
    size_t n = strlen(expr);
    if (n > CEL_MAX_EXPR_LEN) {
        snprintf(err, errlen, "expression longer than %d bytes at column 1", CEL_MAX_EXPR_LEN);
        return NULL;
    }
    struct cel_rule *rule = calloc(1, sizeof *rule);
    if (!rule) {
        snprintf(err, errlen, "out of memory at column 1");
        return NULL;
    }
    long semicolon = guard_separator(expr);
    size_t blank = 0;
    while (semicolon >= 0 && blank < (size_t)semicolon && strchr(" \t\r\n", expr[blank]))
        blank++;
    if (semicolon >= 0 && blank < (size_t)semicolon && !(rule->guard = compile_part(expr, 0, (size_t)semicolon, err, errlen))) {
        cel_rule_free(rule);
        return NULL;
    }
    if (!(rule->condition = compile_part(expr, semicolon >= 0 ? (size_t)semicolon + 1 : 0, n, err, errlen))) {
        cel_rule_free(rule);
        return NULL;
    }
    return rule;
}

int cel_rule_check(const struct cel_rule *rule, const json_t *message, char *err, size_t errlen)
{
    if (rule->guard) {
        char why[200];
        int guard = cel_eval_bool(rule->guard, "message", message, why, sizeof why);
        if (guard < 0) {
            snprintf(err, errlen, "guard: %s", why);
            return -1;
        }
        if (guard == 0)
            return 1;
    }
    return cel_eval_bool(rule->condition, "message", message, err, errlen);
}

void cel_rule_free(struct cel_rule *rule)
{
    if (!rule)
        return;
    cel_program_free(rule->guard);
    cel_program_free(rule->condition);
    free(rule);
}
