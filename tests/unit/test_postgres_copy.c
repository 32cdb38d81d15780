/* The postgres sink's COPY text: what a value becomes on the wire in mode insert. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sinks/postgres_sink.h"

static void expect_escaped(const char *value, size_t len, const char *want)
{
    struct buf out = { 0 };
    assert_int_equal(pg_copy_escape(&out, value, len), 0);
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.p, want, out.len);
    buf_free(&out);
}

static void test_escape(void **state)
{
    (void)state;
    expect_escaped("plain text", 10, "plain text");
    /* The four bytes COPY's text format reserves, anywhere in the value. */
    expect_escaped("a\tb\nc\\d\re", 9, "a\\tb\\nc\\\\d\\re");
    expect_escaped("\\N", 2, "\\\\N");   /* a value spelled \N is not NULL */
    expect_escaped("\t\t", 2, "\\t\\t");
    expect_escaped("caf\xc3\xa9 \"q\" ,;", 12, "caf\xc3\xa9 \"q\" ,;");
}

static void test_escape_empty(void **state)
{
    struct buf out = { 0 };
    (void)state;
    assert_int_equal(pg_copy_escape(&out, "", 0), 0);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
