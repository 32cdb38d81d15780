/* router/tap.c: what the tap cuts out of a target's answer before showing it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "router/tap.h"

static void expect_redacted(const char *in, const char *want)
{
    char s[512];
    strcpy(s, in);
    tap_redact(s);
    assert_string_equal(s, want);
}

static void test_redact(void **state)
{
    (void)state;
    expect_redacted("POST /x -> 401: {\"echo\":\"Authorization: Bearer abcdefghijklmnop\"}",
                    "POST /x -> 401: {\"echo\":\"Authorization: [redacted]\"}");
    expect_redacted("authorization: Basic dXNlcjpwYXNzd29yZA==\r\nX: y", "authorization: [redacted]\r\nX: y");
    expect_redacted("got bearer tok, retry", "got bearer ***, retry");
    expect_redacted("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw was wrong", "secret [redacted] was wrong");
    expect_redacted("dsn host=db password=hunter2 user=x", "dsn host=db password=******* user=x");
    expect_redacted("GET /cb?token=0123456789abcdef&x=1", "GET /cb?token=[redacted]&x=1");
    expect_redacted("POST 127.0.0.1:8080 -> ok", "POST 127.0.0.1:8080 -> ok");
    expect_redacted("bearer ", "bearer ");
    expect_redacted("", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
