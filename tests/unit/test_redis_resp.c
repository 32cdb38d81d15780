/* The redis sink's RESP buffer and bulk strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sinks/redis_resp.h"

/* ---- RESP buffers ---- */

static void test_bulk_and_integers(void **state)
{
    struct buf b = { 0 };
    char out[32];
    (void)state;

    assert_int_equal(resp_put_bulk(&b, "abc", 3), 0);
    assert_int_equal(resp_put_bulk(&b, "", 0), 0);
    assert_int_equal(resp_put_bulk_int(&b, -42), 0);
    assert_int_equal(b.len, strlen("$3\r\nabc\r\n$0\r\n\r\n$3\r\n-42\r\n"));
    assert_memory_equal(b.p, "$3\r\nabc\r\n$0\r\n\r\n$3\r\n-42\r\n", b.len);
    buf_free(&b);

    out[redis_fmt_int(out, 0)] = '\0';
    assert_string_equal(out, "0");
    out[redis_fmt_int(out, LLONG_MAX)] = '\0';
    assert_string_equal(out, "9223372036854775807");
    out[redis_fmt_int(out, LLONG_MIN)] = '\0';
    assert_string_equal(out, "-9223372036854775808");
}

static void test_bulk_large(void **state)
{
    struct buf b = { 0 };
    char *big = malloc(100000);
    (void)state;

    memset(big, 'x', 100000);
    assert_int_equal(resp_put_bulk(&b, big, 100000), 0);
    assert_int_equal(b.len, strlen("$100000\r\n") + 100000 + 2);
    assert_memory_equal(b.p, "$100000\r\nxx", 11);
    buf_free(&b);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bulk_and_integers),
        cmocka_unit_test(test_bulk_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
