/* lib/cel against @bufbuild/cel on ~2,000 generated expressions (tests/fixtures/cel/
 * differential.json, made by tools/cel-fixtures/differential.mjs): the same value, or an error
 * where it reports one (messages differ between implementations and are not compared). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "cel_typed.h"

/* Where @bufbuild/cel 0.6.1 departs from cel-spec, lib/cel follows cel-spec (README, "Contracts:
 * CEL"): its parser folds double negation, so !!x and --x are x whatever x's type. */
static const char *const known_differences[] = {
    "-(-(false ? (-2.5) * message.score : 3u * 0u))", /* -(uint) has no overload in CEL */
    "!(!((['vip', 'x'])[0 * message.age]))",           /* !(string) has no overload in CEL */
};

static int is_known_difference(const char *expr)
{
    for (size_t i = 0; i < sizeof known_differences / sizeof *known_differences; i++)
        if (strcmp(expr, known_differences[i]) == 0)
            return 1;
    return 0;
}

/* 1 agree, 0 disagree, -1 not comparable (a result type the fixture does not record). */
static int compare_case(const json_t *c, const json_t *inputs)
{
    const char *expr = json_string_value(json_object_get(c, "expr"));
    const json_t *expected = json_object_get(c, "value");
    const json_t *input = json_array_get(inputs, (size_t)json_integer_value(json_object_get(c, "input")));
    char err[256];
    struct cel_program *p = cel_compile(expr, err, sizeof err);
    if (!p) {
        if (expected)
            printf("DISAGREE %s: refused (%s), @bufbuild/cel gives a value\n", expr, err);
        return !expected;
    }
    struct cel_binding message = { .name = "message", .value = cel_from_json(input) };
    struct cel_eval ev = { .bindings = &message, .nbindings = 1 };
    struct cel_value result = cel_eval(p, &ev);
    int verdict = expected ? typed_matches(expected, &result) : result.kind == CEL_ERROR;
    if (verdict == 0 && is_known_difference(expr) && result.kind == CEL_ERROR) {
        verdict = 2;
    } else if (verdict == 0) {
        if (result.kind == CEL_ERROR)
            printf("DISAGREE %s: error %.*s, @bufbuild/cel gives a value\n", expr, (int)result.v.s.n, result.v.s.p);
        else
            printf("DISAGREE %s: %s value, @bufbuild/cel %s\n", expr, cel_kind_name(result.kind),
                   expected ? "another value" : json_string_value(json_object_get(c, "error")));
    }
    cel_arena_free(&ev.arena);
    cel_program_free(p);
    return verdict;
}

static void test_differential(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *fixture = json_load_file("../fixtures/cel/differential.json", JSON_ALLOW_NUL, &jerr);
    if (!fixture)
        fail_msg("differential.json: %s", jerr.text);
    const json_t *inputs = json_object_get(fixture, "inputs");
    size_t i;
    const json_t *c;
    int agree = 0, disagree = 0, incomparable = 0, errors = 0, known = 0;
    json_array_foreach(json_object_get(fixture, "cases"), i, c) {
        int verdict = compare_case(c, inputs);
        agree += verdict == 1;
        disagree += verdict == 0;
        incomparable += verdict == -1;
        known += verdict == 2;
        errors += verdict == 1 && json_object_get(c, "error") != NULL;
    }
    printf("differential: %d agree (%d of them errors), %d disagree, %d known differences, %d not comparable\n",
           agree, errors, disagree, known, incomparable);
    json_decref(fixture);
    assert_true(agree >= 1900);
    assert_int_equal(disagree, 0);
    assert_int_equal(known, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_differential) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
