/* lib/cel's entry point for contract rules: a bool from one bound variable, everything else an
 * error so that the caller fails closed. Parsing is in cel_parse.c, evaluation in cel_eval.c. */
#include <stdio.h>

#include "lib/cel_int.h"

int cel_eval_bool(const struct cel_program *p, const char *name, const json_t *value, char *err, size_t errlen)
{
    struct cel_binding binding = { .name = name, .value = cel_from_json(value) };
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
