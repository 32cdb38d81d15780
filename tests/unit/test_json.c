/* lib/json.c: UTF-8, and the checker against jansson. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "lib/json.h"

static void test_utf8(void **state)
{
    (void)state;
    assert_int_equal(json_utf8_valid("\xc0\x80", 2), 0);        /* overlong */
    assert_int_equal(json_utf8_valid("\xed\xa0\x80", 3), 0);    /* surrogate */
    assert_int_equal(json_utf8_valid("\xf0\x9f\x98\x80", 4), 1);
    assert_int_equal(json_utf8_valid("\xf0\x9f\x98", 3), 0);    /* cut short */
}

/* json_check accepts exactly the JSON texts a parser does (checked against jansson, the
 * router's parser, for every case) and says what is wrong and where. */
static void test_json_check(void **state)
{
    static const char *const good[] = {
        "{}", "[]", " {\"a\":1} ", "42", "-0.5e+10", "\"x\"", "true", "false", "null", "[1,[2,[3]],{}]",
        "{\"a\":{\"b\":[true,false,null]},\"c\":\"\\u00e9\\n\\\"\"}", "\"\\ud83d\\ude00\"", "\"a\\u0000b\"",
        "{\n\"a\" :\r\n1\t}", "\"caf\xc3\xa9\"", "1E5", "0",
        "[\"abcdefghijklmnopqrstuvwxyz\",\"0123456789abcdef\\\"ghij\xc3\xa9klmnopqrstuvw\"]",
    };
    static const struct { const char *text, *reason; } bad[] = {
        { "", "unexpected end of the text at byte 0" },
        { "   ", "unexpected end of the text at byte 3" },
        { "{\"id\":", "unexpected end of the text at byte 6" },
        { "hello, world", "unexpected character at byte 0" },
        { "{\"a\":1} tail", "text after the value at byte 8" },
        { "[1,]", "unexpected character at byte 3" },
        { "{\"a\":1,}", "expected a member name at byte 7" },
        { "{\"a\" 1}", "expected ':' at byte 5" },
        { "[1}", "expected ',' or a closing bracket at byte 2" },
        { "{1:2}", "expected a member name at byte 1" },
        { "01", "text after the value at byte 1" },
        { "-", "invalid number at byte 0" },
        { "1.", "invalid number at byte 0" },
        { "1e", "invalid number at byte 0" },
        { "\"a\x01\"", "control character in a string at byte 2" },
        { "\"abc", "unterminated string at byte 4" },
        { "\"\\x\"", "invalid escape in a string at byte 1" },
        { "\"\\u12g4\"", "invalid \\u escape in a string at byte 1" },
        { "\"\\ud800\"", "high surrogate without its low half in a \\u escape at byte 1" },
        { "\"\\udc00\"", "lone low surrogate in a \\u escape at byte 1" },
        { "\"caf\xe9\"", "not valid UTF-8 at byte 4" },
        { "\xff", "not valid UTF-8 at byte 0" },
        { "[1,\xc3\xa9]", "unexpected character at byte 3" },
        { "\"abcdefghijklmn\xed\xa0\x80\"", "not valid UTF-8 at byte 15" },
        { "tru", "unexpected character at byte 0" },
        /* past the eight-bytes-at-a-time scan of a string's plain run */
        { "\"abcdefghijk\x01lmnopqrstuvwx\"", "control character in a string at byte 12" },
        { "\"abcdefghijklmno\\qrstuvwxyz\"", "invalid escape in a string at byte 16" },
        { "[\"abcdefghijklmnopqrstuvwxyz\u00e9\" ", "unexpected end of the text at byte 32" },
    };
    char err[256], *deep;
    json_error_t jerr;
    size_t n = JSON_MAX_DEPTH + 1;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        json_t *doc = json_loadb(good[i], strlen(good[i]), JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        assert_non_null(doc);
        json_decref(doc);
        err[0] = '\0';
        if (json_check(good[i], strlen(good[i]), err, sizeof err) != 0)
            fail_msg("refused %s: %s", good[i], err);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_null(json_loadb(bad[i].text, strlen(bad[i].text), JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr));
        assert_int_equal(json_check(bad[i].text, strlen(bad[i].text), err, sizeof err), -1);
        assert_string_equal(err, bad[i].reason);
    }
    /* The depth limit, just under and just over it; a NUL byte outside a string. */
    assert_non_null(deep = malloc(2 * n));
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    assert_int_equal(json_check(deep + 1, 2 * n - 2, err, sizeof err), 0);
    assert_int_equal(json_check(deep, 2 * n, err, sizeof err), -1);
    assert_string_equal(err, "nested too deep at byte 2048");
    free(deep);
    assert_int_equal(json_check("[1]\0", 4, err, sizeof err), -1);
    assert_string_equal(err, "text after the value at byte 3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_json_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
