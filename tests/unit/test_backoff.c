#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/backoff.h"

static void test_bounds_grow_then_cap(void **state)
{
    (void)state;
    for (unsigned attempt = 1; attempt <= 40; attempt++) {
        int64_t ceiling = 100;
        for (unsigned i = 1; i < attempt && ceiling < 30000; i++)
            ceiling *= 2;
        if (ceiling > 30000)
            ceiling = 30000;
        for (int i = 0; i < 200; i++) {
            int64_t d = backoff_full_jitter(attempt, 100, 30000);
            assert_true(d >= 100);
            assert_true(d <= ceiling);
        }
    }
}

static void test_jitter_spreads(void **state)
{
    (void)state;
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t d = backoff_full_jitter(8, 100, 30000);   /* range [100, 12800] */
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo < 2000);
    assert_true(hi > 10000);
}

static void test_first_attempt_is_base(void **state)
{
    (void)state;
    assert_int_equal(backoff_full_jitter(1, 250, 30000), 250);
    assert_int_equal(backoff_full_jitter(5, 500, 400), 400);   /* cap below base wins */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_grow_then_cap),
        cmocka_unit_test(test_jitter_spreads),
        cmocka_unit_test(test_first_attempt_is_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
