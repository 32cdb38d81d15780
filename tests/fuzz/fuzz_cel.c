/* libFuzzer target: lib/cel's parser and evaluator. The input is an expression (and, split at
 * its first ';', a guarded rule); compiling and evaluating it against a fixed customer record must
 * never crash, leak, or stall, and the verdict must be 1, 0 or -1 with a reason on -1. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_check.h"
#include "lib/cel.h"

static json_t *customer(void)
{
    static json_t *record;
    if (!record)
        record = json_loads("{\"id\": 7, \"name\": \"Ann\", \"email\": \"ann@example.com\", \"age\": 42, \"score\": 0.75,"
                            " \"tags\": [\"vip\", \"eu\"], \"address\": {\"city\": \"Oslo\", \"zip\": \"0150\"},"
                            " \"phone\": null, \"big\": 9223372036854775807, \"nested\": [[1, 2], {\"k\": [true]}]}",
                            0, NULL);
    return record;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *expr = malloc(size + 1), err[256];
    if (!expr)
        return 0;
    memcpy(expr, data, size);
    expr[size] = '\0'; /* an embedded NUL ends the expression, as it would for a C caller */

    struct cel_program *p = cel_compile(expr, err, sizeof err);
    if (p) {
        err[0] = '\0';
        int v = cel_eval_bool(p, "message", customer(), err, sizeof err);
        CHECK(v == 1 || v == 0 || (v == -1 && err[0] != '\0'));
        cel_program_free(p);
    } else {
        CHECK(strstr(err, " at column ") != NULL);
    }
    struct cel_rule *r = cel_rule_compile(expr, err, sizeof err);
    if (r) {
        err[0] = '\0';
        int v = cel_rule_check(r, customer(), err, sizeof err);
        CHECK(v == 1 || v == 0 || (v == -1 && err[0] != '\0'));
        cel_rule_free(r);
    }
    free(expr);
    return 0;
}
