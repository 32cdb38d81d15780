/* lib/cel against cel-spec's simple conformance tests (tests/fixtures/cel/conformance.json, made by
 * tools/cel-fixtures/export-conformance.mjs): every case whose expression compiles in the subset
 * and whose bindings JSON can carry must give the expected value or an error where one is expected.
 * Prints run and skipped counts per file; any wrong result fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "cel_typed.h"

#define MAX_BINDINGS 8

struct tally { const char *file; int run, skipped_compile, skipped_input, wrong; };

/* 1 when the case ran and was right, 0 when wrong, -1 compile skip, -2 input skip. */
static int run_case(const json_t *c)
{
    const char *expr = json_string_value(json_object_get(c, "expr"));
    const json_t *expected = json_object_get(c, "value");
    char err[256];
    if (json_object_get(c, "container"))
        return -2;
    struct cel_program *p = cel_compile(expr, err, sizeof err);
    if (!p)
        return -1;
    struct cel_binding bindings[MAX_BINDINGS];
    json_t *values[MAX_BINDINGS];
    size_t n = 0;
    int verdict = 1;
    const char *name;
    json_t *typed;
    json_object_foreach(json_object_get(c, "bindings"), name, typed) {
        if (n == MAX_BINDINGS || !(values[n] = typed_to_json(typed))) {
            verdict = -2;
            break;
        }
        bindings[n].name = name;
        bindings[n].value = cel_from_json(values[n]);
        n++;
    }
    if (verdict == 1 && expected && typed_matches(expected, &(struct cel_value){ .kind = CEL_NULL }) == -1)
        verdict = -2; /* an expected value of a type outside the subset */
    if (verdict == 1) {
        struct cel_eval ev = { .bindings = bindings, .nbindings = n };
        struct cel_value result = cel_eval(p, &ev);
        if (expected)
            verdict = typed_matches(expected, &result) == 1;
        else
            verdict = result.kind == CEL_ERROR;
        if (!verdict) {
            if (result.kind == CEL_ERROR)
                printf("WRONG %s/%s: %s -> error %.*s\n", json_string_value(json_object_get(c, "section")),
                       json_string_value(json_object_get(c, "name")), expr, (int)result.v.s.n, result.v.s.p);
            else
                printf("WRONG %s/%s: %s -> %s value\n", json_string_value(json_object_get(c, "section")),
                       json_string_value(json_object_get(c, "name")), expr, cel_kind_name(result.kind));
        }
        cel_arena_free(&ev.arena);
    }
    while (n)
        json_decref(values[--n]);
    cel_program_free(p);
    return verdict;
}

static void test_conformance(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *fixture = json_load_file("../fixtures/cel/conformance.json", JSON_ALLOW_NUL, &jerr);
    assert_non_null(fixture);
    const json_t *files = json_object_get(fixture, "files");
    struct tally tallies[16] = { 0 };
    size_t nfiles = json_array_size(files);
    assert_true(nfiles <= 16);
    for (size_t i = 0; i < nfiles; i++)
        tallies[i].file = json_string_value(json_array_get(files, i));
    size_t i;
    const json_t *c;
    int total_run = 0, total_wrong = 0;
    json_array_foreach(json_object_get(fixture, "cases"), i, c) {
        const char *file = json_string_value(json_object_get(c, "file"));
        struct tally *t = NULL;
        for (size_t k = 0; k < nfiles; k++)
            if (strcmp(tallies[k].file, file) == 0)
                t = &tallies[k];
        assert_non_null(t);
        int verdict = run_case(c);
        if (verdict == -1)
            t->skipped_compile++;
        else if (verdict == -2)
            t->skipped_input++;
        else {
            t->run++;
            t->wrong += !verdict;
        }
    }
    printf("%-14s %5s %9s %9s %6s\n", "file", "run", "!compile", "!inputs", "wrong");
    for (size_t k = 0; k < nfiles; k++) {
        printf("%-14s %5d %9d %9d %6d\n", tallies[k].file, tallies[k].run, tallies[k].skipped_compile,
               tallies[k].skipped_input, tallies[k].wrong);
        total_run += tallies[k].run;
        total_wrong += tallies[k].wrong;
    }
    printf("total: %d run, %d wrong\n", total_run, total_wrong);
    json_decref(fixture);
    assert_true(total_run > 0);
    assert_int_equal(total_wrong, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_conformance) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
