/* lib/json.c: UTF-8, the checker against jansson, and the reader: slices, iteration, lookup by
 * jsonpath, unescaping, numbers. */
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

/* The slice's text as a C string (static: one at a time). */
static const char *text_of(const struct json_slice *v)
{
    static char out[256];
    snprintf(out, sizeof out, "%.*s", (int)v->n, v->p ? v->p : "");
    return out;
}

static struct json_slice read_ok(const char *text)
{
    struct json_slice v;
    char err[128];
    if (json_read(text, strlen(text), &v, err, sizeof err) != 0)
        fail_msg("refused %s: %s", text, err);
    return v;
}

static struct json_slice lookup(const struct json_slice *doc, const char *expr)
{
    char err[128];
    struct jsonpath *path = jsonpath_compile(expr, err, sizeof err);
    struct json_slice v;

    assert_non_null(path);
    v = json_lookup(doc, path);
    jsonpath_free(path);
    return v;
}

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

/* The top value: its kind and its text without the white space around it. */
static void test_read_slices(void **state)
{
    static const struct { const char *text, *value; enum json_kind kind; } cases[] = {
        { " {\"a\": 1}\n", "{\"a\": 1}", JK_OBJECT }, { "[ ]", "[ ]", JK_ARRAY },
        { "\t\"s\\\"\" ", "\"s\\\"\"", JK_STRING }, { "-1.5e3", "-1.5e3", JK_NUMBER },
        { "true ", "true", JK_TRUE }, { " false", "false", JK_FALSE }, { "\r\nnull\r\n", "null", JK_NULL },
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct json_slice v = read_ok(cases[i].text);
        assert_int_equal(v.kind, cases[i].kind);
        assert_string_equal(text_of(&v), cases[i].value);
    }
    assert_string_equal(json_kind_name(JK_OBJECT), "an object");
    assert_string_equal(json_kind_name(JK_FALSE), "a boolean");
}

/* Members and elements in order, values as written; brackets and quotes inside strings do not
 * end a value early. */
static void test_iterate(void **state)
{
    static const char text[] = "{ \"a\" : [1, \"]}\\\"\", {\"x\": [[]]}] , \"b\\u0062\":\"v\",\"c\":{} ,\"d\":-0 }";
    static const char *const names[] = { "\"a\"", "\"b\\u0062\"", "\"c\"", "\"d\"" };
    static const char *const values[] = { "[1, \"]}\\\"\", {\"x\": [[]]}]", "\"v\"", "{}", "-0" };
    static const char *const elements[] = { "1", "\"]}\\\"\"", "{\"x\": [[]]}" };
    struct json_slice doc = read_ok(text), name, value, empty = read_ok("[ ]"), scalar = read_ok("7");
    struct json_iter it;
    size_t n = 0;
    (void)state;

    json_iter_init(&it, &doc);
    while (json_iter_next(&it, &name, &value)) {
        assert_true(n < 4);
        assert_int_equal(name.kind, JK_STRING);
        assert_string_equal(text_of(&name), names[n]);
        assert_string_equal(text_of(&value), values[n]);
        n++;
    }
    assert_int_equal(n, 4);
    value = json_get(&doc, "a", 1);
    json_iter_init(&it, &value);
    for (n = 0; json_iter_next(&it, NULL, &value); n++) {
        assert_true(n < 3);
        assert_string_equal(text_of(&value), elements[n]);
    }
    assert_int_equal(n, 3);
    json_iter_init(&it, &empty);
    assert_int_equal(json_iter_next(&it, NULL, &value), 0);
    json_iter_init(&it, &scalar);    /* not a container: nothing to iterate */
    assert_int_equal(json_iter_next(&it, NULL, &value), 0);
}

/* Lookup by a compiled path: member names compare unescaped, the last repeated name wins (as in
 * jansson), absent or mistyped steps give JK_NONE; many paths in one walk find the same. */
static void test_lookup(void **state)
{
    static const char text[] = "{\"a\": {\"b\": [10, {\"c\": \"deep\"}]}, \"odd key\": 5, \"e\\u0073c\": true,"
                               " \"dup\": {\"x\": 1}, \"dup\": {\"y\": 2}, \"n\": null}";
    static const struct { const char *path, *want; } cases[] = {
        { "$", NULL }, { "$.a.b[0]", "10" }, { "$.a.b[1].c", "\"deep\"" }, { "$[\"odd key\"]", "5" },
        { "$.esc", "true" }, { "$.dup.y", "2" }, { "$.n", "null" }, { "$.dup.x", "" }, { "$.a.b[2]", "" },
        { "$.a[0]", "" }, { "$.a.b.c", "" }, { "$.missing", "" }, { "$.odd", "" },
    };
    struct json_slice doc = read_ok(text), found[sizeof cases / sizeof *cases];
    struct jsonpath *paths[sizeof cases / sizeof *cases];
    char err[128];
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct json_slice v = lookup(&doc, cases[i].path);
        const char *want = cases[i].want ? cases[i].want : text;
        if (!*want)
            assert_int_equal(v.kind, JK_NONE);
        else if (strcmp(text_of(&v), want) != 0)
            fail_msg("%s: %s, want %s", cases[i].path, text_of(&v), want);
        assert_non_null(paths[i] = jsonpath_compile(cases[i].path, err, sizeof err));
    }
    json_lookup_many(&doc, (const struct jsonpath *const *)paths, sizeof cases / sizeof *cases, found);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct json_slice v = json_lookup(&doc, paths[i]);
        assert_int_equal(found[i].kind, v.kind);
        assert_ptr_equal(found[i].p, v.p);
        assert_int_equal(found[i].n, v.n);
        jsonpath_free(paths[i]);
    }
    /* paths refused at compile time */
    assert_null(jsonpath_compile("$.a[-1]", err, sizeof err));
    assert_null(jsonpath_compile("$.a[ 1]", err, sizeof err));
    assert_null(jsonpath_compile("a.b", err, sizeof err));
}

/* Unescaping gives exactly jansson's characters: escapes, \u0000 as a NUL byte, surrogate
 * pairs as one 4-byte sequence; member names compare the same way. */
static void test_unescape(void **state)
{
    static const char *const strings[] = {
        "\"plain\"", "\"\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"caf\\u00e9 caf\xc3\xa9\"", "\"a\\u0000b\"",
        "\"\\ud83d\\ude00!\"", "\"\\u20AC\\uFFFF\"", "\"x\\u0041y\"",
    };
    struct buf out = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
        struct json_slice v = read_ok(strings[i]);
        json_t *j = json_loadb(strings[i], strlen(strings[i]), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(j);
        buf_reset(&out);
        assert_int_equal(json_unescape(&out, &v), 0);
        assert_int_equal(out.len, json_string_length(j));
        assert_memory_equal(out.p, json_string_value(j), out.len);
        assert_int_equal(json_string_equals(&v, json_string_value(j), json_string_length(j)), 1);
        assert_int_equal(json_string_equals(&v, json_string_value(j), json_string_length(j) + 1), 0);
        json_decref(j);
    }
    {
        struct json_slice v = read_ok("\"a\\u0000b\"");
        buf_reset(&out);
        assert_int_equal(json_unescape(&out, &v), 0);
        assert_int_equal(out.len, 3);
        assert_memory_equal(out.p, "a\0b", 3);
        v = read_ok("\"\\ud83d\\ude00\"");
        buf_reset(&out);
        assert_int_equal(json_unescape(&out, &v), 0);
        assert_int_equal(out.len, 4);
        assert_memory_equal(out.p, "\xf0\x9f\x98\x80", 4);
        assert_int_equal(json_string_equals(&v, "\xf0\x9f\x98", 3), 0);
    }
    buf_free(&out);
}

/* Compact text: white space between tokens goes, white space in strings stays. */
static void test_compact(void **state)
{
    struct json_slice v = read_ok(" { \"a b\" : [ 1 ,\n\t\"x \\\" y\" ] , \"c\":{ } } ");
    struct buf out = { 0 };
    (void)state;

    assert_int_equal(json_compact(&out, &v), 0);
    assert_string_equal(out.p, "{\"a b\":[1,\"x \\\" y\"],\"c\":{}}");
    buf_free(&out);
}

/* Numbers: the slice is the text as written; int64 exact to its limits, else refused. */
static void test_numbers(void **state)
{
    static const struct { const char *text; int ok; int64_t want; } ints[] = {
        { "0", 1, 0 }, { "-0", 1, 0 }, { "42", 1, 42 }, { "9223372036854775807", 1, INT64_MAX },
        { "-9223372036854775808", 1, INT64_MIN }, { "9223372036854775808", 0, 0 },
        { "-9223372036854775809", 0, 0 }, { "1.0", 0, 0 }, { "1e3", 0, 0 }, { "123456789012345678901234", 0, 0 },
    };
    struct json_slice v;
    int64_t i64;
    double d;
    (void)state;

    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        v = read_ok(ints[i].text);
        i64 = 12345;
        assert_int_equal(json_number_i64(&v, &i64), ints[i].ok ? 0 : -1);
        if (ints[i].ok)
            assert_true(i64 == ints[i].want);
    }
    v = read_ok("-1.25e2");
    assert_int_equal(json_number_double(&v, &d), 0);
    assert_true(d == -125.0);
    v = read_ok("\"1\"");
    assert_int_equal(json_number_i64(&v, &i64), -1);
    assert_int_equal(json_number_double(&v, &d), -1);
}

/* json_read's errors are json_check's; the depth limit holds inside values as at the top. */
static void test_read_errors(void **state)
{
    static const struct { const char *text, *reason; } bad[] = {
        { "{\"a\":[1,{\"b\":tru}]}", "unexpected character at byte 13" },
        { "{\"a\":\"\\ud800x\"}", "high surrogate without its low half in a \\u escape at byte 6" },
        { "[\"\\u00\"]", "invalid \\u escape in a string at byte 2" },
        { "{\"a\":1 \"b\":2}", "expected ',' or a closing bracket at byte 7" },
        { "{\"a\":-}", "invalid number at byte 5" },
        { "[1,2", "unexpected end of the text at byte 4" },
    };
    struct json_slice v = { 0 };
    char err[128], *deep;
    size_t n = JSON_MAX_DEPTH;
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(json_read(bad[i].text, strlen(bad[i].text), &v, err, sizeof err), -1);
        assert_string_equal(err, bad[i].reason);
    }
    /* {"a":[[...]]}: the array levels and the object count together */
    assert_non_null(deep = malloc(2 * n + 8));
    memcpy(deep, "{\"a\":", 5);
    memset(deep + 5, '[', n);
    memset(deep + 5 + n, ']', n);
    deep[5 + 2 * n] = '}';
    assert_int_equal(json_read(deep, 2 * n + 6, &v, err, sizeof err), -1);
    assert_string_equal(err, "nested too deep at byte 2052");
    assert_int_equal(json_read(deep + 5, 2 * n, &v, err, sizeof err), 0);
    assert_int_equal(v.kind, JK_ARRAY);
    assert_int_equal(v.n, 2 * n);
    free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_json_check),
        cmocka_unit_test(test_read_slices),
        cmocka_unit_test(test_iterate),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_read_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
