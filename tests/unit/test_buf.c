/* lib/buf.c: growth, the cap, the sticky failure flag, reuse, hand-over. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"

static void test_add_and_nul(void **state)
{
    struct buf b = { 0 };
    (void)state;

    assert_int_equal(buf_add(&b, "ab", 2), 0);
    assert_int_equal(buf_adds(&b, "cd"), 0);
    assert_int_equal(buf_add_i64(&b, INT64_MIN), 0);
    assert_int_equal(buf_add_i64(&b, 0), 0);
    assert_int_equal(buf_printf(&b, "|%s|", "x"), 0);
    assert_string_equal(b.p, "abcd-92233720368547758080|x|");
    assert_int_equal(b.len, strlen(b.p));
    buf_free(&b);
    assert_null(b.p);
}

static void test_grows_past_printf_scratch(void **state)
{
    struct buf b = { 0 };
    char big[1000];
    (void)state;

    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 50; i++)
        assert_int_equal(buf_printf(&b, "%s", big), 0);
    assert_int_equal(b.len, 50 * (sizeof big - 1));
    assert_true(b.cap > b.len);
    assert_int_equal(b.p[b.len], '\0');
    buf_free(&b);
}

static void test_reserve_leaves_room_for_caller(void **state)
{
    struct buf b = { 0 };
    (void)state;

    assert_int_equal(buf_add(&b, NULL, 5), 0);   /* room for 5 bytes the caller fills */
    assert_int_equal(b.len, 5);
    memcpy(b.p, "hello", 5);
    assert_string_equal(b.p, "hello");
    assert_int_equal(buf_reserve(&b, 1000), 0);
    assert_true(b.cap - b.len > 1000);
    buf_free(&b);
}

static void test_cap(void **state)
{
    struct buf b;
    (void)state;

    buf_init(&b, 10);
    assert_int_equal(buf_add(&b, "0123456789", 10), 0);   /* up to the cap */
    assert_true(b.cap <= 11);                             /* never more than the cap and the NUL */
    assert_int_equal(buf_add(&b, "x", 1), -1);
    assert_true(b.oom);
    assert_int_equal(b.len, 10);                          /* contents kept */
    assert_null(buf_steal(&b, NULL));                     /* a failed buffer hands nothing over */
    assert_null(b.p);

    buf_init(&b, 4);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -1);      /* no overflow in the size sum */
    assert_int_equal(buf_add(&b, "ab", 2), -1);           /* sticky until reset */
    buf_reset(&b);
    assert_false(b.oom);
    assert_int_equal(buf_add(&b, "ab", 2), 0);
    assert_int_equal(b.max, 4);
    buf_free(&b);
    assert_int_equal(b.max, 4);                           /* the cap outlives the memory */
}

static void test_reset_and_steal(void **state)
{
    struct buf b = { 0 };
    size_t len = 99;
    char *s;
    (void)state;

    s = buf_steal(&b, &len);                              /* never added to: "" */
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);

    buf_adds(&b, "first");
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.p, "");
    buf_adds(&b, "second");
    s = buf_steal(&b, &len);
    assert_string_equal(s, "second");
    assert_int_equal(len, 6);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_nul),
        cmocka_unit_test(test_grows_past_printf_scratch),
        cmocka_unit_test(test_reserve_leaves_room_for_caller),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_reset_and_steal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
