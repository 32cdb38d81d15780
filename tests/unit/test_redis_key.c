/* The redis sink's pure parts: URL, values read with lib/json.h as stored (checked against jansson), key
 * template. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "sinks/redis_key.h"

/* ---- URL ---- */

static void test_url_full(void **state)
{
    struct redis_url u;
    char err[256];
    (void)state;

    assert_int_equal(redis_url_parse("redis://app:s%40cr%3At@cache.internal:6380/3", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "s@cr:t");
    redis_url_free(&u);
}

static void test_url_defaults_and_forms(void **state)
{
    struct redis_url u;
    char err[256];
    (void)state;

    assert_int_equal(redis_url_parse("redis://127.0.0.1", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_int_equal(u.tls, 0);
    assert_null(u.user);
    assert_null(u.password);
    redis_url_free(&u);

    /* TLS; the same defaults */
    assert_int_equal(redis_url_parse("rediss://cache.example.com", &u, err, sizeof err), 0);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.host, "cache.example.com");
    assert_int_equal(u.port, 6379);
    redis_url_free(&u);

    /* an ACL user without a password in the URL: the password option supplies it */
    assert_int_equal(redis_url_parse("RediSS://ingest%2Dbot@10.0.0.7:6380/2", &u, err, sizeof err), 0);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.user, "ingest-bot");
    assert_null(u.password);
    assert_string_equal(u.host, "10.0.0.7");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    redis_url_free(&u);

    assert_int_equal(redis_url_parse("redis://:pw@[::1]:7000/", &u, err, sizeof err), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_null(u.user);
    assert_string_equal(u.password, "pw");
    redis_url_free(&u);

    /* the last '@' ends the user information */
    assert_int_equal(redis_url_parse("REDIS://:p@ss@h/1", &u, err, sizeof err), 0);
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.db, 1);
    redis_url_free(&u);
}

static void test_url_errors_never_show_the_password(void **state)
{
    static const struct { const char *url, *says; } bad[] = {
        { "http://h", "redis://" },
        { "redis:/h", "rediss://" },
        { "redis://@h", "empty" },
        { "rediss://:hunter2@", "no host" },
        { "redis://", "no host" },
        { "redis://:hunter2@", "no host" },
        { "redis://h:0", "port" },
        { "redis://h:65536", "port" },
        { "redis://h:12x", "port" },
        { "redis://h/abc", "database" },
        { "redis://h/1?timeout=3", "query" },
        { "redis://:hunter2%zz@h", "percent" },
        { "redis://[::1", "[" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct redis_url u;
        char err[256] = "";
        assert_int_equal(redis_url_parse(bad[i].url, &u, err, sizeof err), -1);
        if (!strstr(err, bad[i].says))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].url, err, bad[i].says);
        assert_null(strstr(err, "hunter2"));
        assert_null(u.host);
        assert_null(u.password);
    }
}

/* ---- JSON read in place ---- */

/* Documents both parsers must accept, with their top-level type. */
static const char *const valid_docs[] = {
    "{}", "[]", "0", "-0", "1.5", "-12.25e+3", "1E5", "true", "false", "null", "\"\"",
    " \t\r\n{ \"a\" : 1 , \"b\":[1, 2,{\"c\":null}] }\n ",
    "{\"s\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}",
    "{\"utf8\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"}",
    "{\"nested\":{\"deep\":[[[[{\"x\":[]}]]]]},\"e\":{}}",
    "[\"a\",1,true,false,null,{},[]]",
    "{\"dup\":1,\"dup\":2}",
    "{\"nul\":\"a\\u0000b\"}",
};

/* Documents both must refuse. */
static const char *const invalid_docs[] = {
    "", " ", "{", "}", "[", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}", "01", "1.", ".5",
    "-", "1e", "1e+", "+1", "tru", "nul", "True", "\"abc", "\"a\\x\"", "\"\\u12\"", "\"\\ud800\"",
    "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"tab\there\"", "{} {}", "1 2", "[1 2]", "{\"a\":1 \"b\":2}",
    "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "nan",
    "[1]x", "{\"a\":}", "{,}",
};

static void test_json_agrees_with_jansson(void **state)
{
    struct json_slice doc;
    char err[256];
    (void)state;

    for (size_t i = 0; i < sizeof valid_docs / sizeof valid_docs[0]; i++) {
        const char *text = valid_docs[i];
        json_t *j = json_loadb(text, strlen(text), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(j);
        if (sink_value_json(text, strlen(text), &doc, err, sizeof err) != 0)
            fail_msg("refused valid %s: %s", text, err);
        switch (json_typeof(j)) {
        case JSON_OBJECT:
            assert_int_equal(doc.kind, JK_OBJECT);
            break;
        case JSON_ARRAY:
            assert_int_equal(doc.kind, JK_ARRAY);
            break;
        case JSON_STRING:
            assert_int_equal(doc.kind, JK_STRING);
            break;
        case JSON_INTEGER:
        case JSON_REAL:
            assert_int_equal(doc.kind, JK_NUMBER);
            break;
        default:
            assert_true(doc.kind == JK_TRUE || doc.kind == JK_FALSE || doc.kind == JK_NULL);
        }
        json_decref(j);
    }
    for (size_t i = 0; i < sizeof invalid_docs / sizeof invalid_docs[0]; i++) {
        const char *text = invalid_docs[i];
        json_t *j = json_loadb(text, strlen(text), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (j)
            fail_msg("jansson accepts %s: fix the test", text);
        err[0] = '\0';
        if (sink_value_json(text, strlen(text), &doc, err, sizeof err) != -1)
            fail_msg("accepted invalid \"%s\"", text);
        assert_non_null(strstr(err, "value is not JSON: "));
        assert_non_null(strstr(err, " at byte "));
    }
}

/* Member names and string values decode to exactly what jansson decodes. */
static void test_json_strings_match_jansson(void **state)
{
    struct json_slice doc;
    struct buf out = { 0 };
    char err[256];
    (void)state;

    for (size_t i = 0; i < sizeof valid_docs / sizeof valid_docs[0]; i++) {
        const char *text = valid_docs[i], *key;
        json_t *j = json_loadb(text, strlen(text), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL), *v;
        assert_int_equal(json_read(text, strlen(text), &doc, err, sizeof err), 0);
        if (!json_is_object(j)) {
            json_decref(j);
            continue;
        }
        json_object_foreach(j, key, v) {
            struct json_slice found = json_get(&doc, key, strlen(key)), *mine = &found;
            assert_int_not_equal(mine->kind, JK_NONE);
            if (json_is_string(v)) {
                out.len = 0;
                assert_int_equal(redis_text_append(&out, mine), 0);
                assert_int_equal(out.len, json_string_length(v));
                assert_memory_equal(out.p, json_string_value(v), out.len);
            } else if (json_is_object(v) || json_is_array(v)) {
                char *compact = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
                out.len = 0;
                assert_int_equal(redis_text_append(&out, mine), 0);
                assert_int_equal(out.len, strlen(compact));
                assert_memory_equal(out.p, compact, out.len);
                free(compact);
            }
        }
        json_decref(j);
    }
    buf_free(&out);
}

static void test_json_members_and_text(void **state)
{
    static const char text[] = "{ \"id\" : \"c-1\", \"n\": 10.50, \"big\": 12345678901234567890123,"
                               " \"ok\": true, \"gone\": null, \"addr\": { \"city\" : \"Berlin\",\n \"zip\": [1, 2] },"
                               " \"esc\\u0061pe\": \"x\", \"id\": \"c-2\" }";
    struct json_slice doc, v, name;
    struct json_iter it;
    struct buf out = { 0 };
    char err[256];
    size_t n = 0;
    (void)state;

    assert_int_equal(json_read(text, strlen(text), &doc, err, sizeof err), 0);
    json_iter_init(&it, &doc);
    while (json_iter_next(&it, &name, &v))
        n++;
    assert_int_equal(n, 8);
    /* a repeated name: the last one counts, as in a parsed object */
    v = json_get(&doc, "id", 2);
    assert_int_equal(redis_text_append(&out, &v), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.p, "c-2", 3);
    /* numbers exactly as written, even beyond a double's precision */
    out.len = 0;
    v = json_get(&doc, "n", 1);
    assert_int_equal(redis_text_append(&out, &v), 0);
    assert_memory_equal(out.p, "10.50", 5);
    out.len = 0;
    v = json_get(&doc, "big", 3);
    assert_int_equal(redis_text_append(&out, &v), 0);
    assert_int_equal(out.len, 23);
    out.len = 0;
    v = json_get(&doc, "addr", 4);
    assert_int_equal(redis_text_append(&out, &v), 0);
    assert_int_equal(out.len, strlen("{\"city\":\"Berlin\",\"zip\":[1,2]}"));
    assert_memory_equal(out.p, "{\"city\":\"Berlin\",\"zip\":[1,2]}", out.len);
    assert_int_equal(json_get(&doc, "gone", 4).kind, JK_NULL);
    assert_int_equal(json_get(&doc, "escape", 6).kind, JK_STRING);   /* names compare decoded */
    assert_int_equal(json_get(&doc, "missing", 7).kind, JK_NONE);
    buf_free(&out);
}

static void test_json_depth_limit(void **state)
{
    struct json_slice doc;
    char err[256], *deep = malloc(5001);
    (void)state;

    /* the reader's limit, JSON_MAX_DEPTH (2048, as jansson's, so as the router's) */
    memset(deep, '[', 2500);
    memset(deep + 2500, ']', 2500);
    deep[5000] = '\0';
    assert_int_equal(sink_value_json(deep, 5000, &doc, err, sizeof err), -1);
    assert_string_equal(err, "value is not JSON: nested too deep at byte 2048");
    assert_int_equal(sink_value_json(deep + 500, 4000, &doc, err, sizeof err), 0);
    free(deep);
}

/* ---- key template ---- */

static char rendered[512];

/* Renders @p tpl for a record with key @p key and value @p value (NULL: tombstone); returns
 * 0 with the key in `rendered`, or -1 with the reason there. */
static int render(const char *tpl, const char *key, const char *value)
{
    struct sink_record rec = { .topic = "customers.v1", .partition = 7, .key = key, .key_len = key ? strlen(key) : 0,
                               .value = value, .value_len = value ? strlen(value) : 0 };
    struct json_slice doc;
    struct buf out = { 0 };
    char err[256];
    struct redis_template *t = redis_template_compile(tpl, err, sizeof err);
    int rc;

    assert_non_null(t);
    if (value)
        assert_int_equal(json_read(value, strlen(value), &doc, err, sizeof err), 0);
    rc = redis_template_render(t, &rec, value ? &doc : NULL, &out, rendered, sizeof rendered);
    if (rc == 0)
        snprintf(rendered, sizeof rendered, "%.*s", (int)out.len, out.p);
    buf_free(&out);
    redis_template_free(t);
    return rc;
}

static void test_template_fills(void **state)
{
    static const char value[] = "{\"tenant\":\"acme\",\"id\":42,\"vip\":true,\"a\":{\"b\":[\"x\",{\"c\":\"deep\"}]},"
                                "\"odd key\":\"o\",\"esc\":\"a\\\"b\"}";
    (void)state;

    assert_int_equal(render("customer:{key}", "c-1", value), 0);
    assert_string_equal(rendered, "customer:c-1");
    assert_int_equal(render("{$.tenant}:{$.id}", "c-1", value), 0);
    assert_string_equal(rendered, "acme:42");
    assert_int_equal(render("{$.a.b[1].c}/{$.a.b[0]}/{$.vip}", NULL, value), 0);
    assert_string_equal(rendered, "deep/x/true");
    assert_int_equal(render("{$[\"odd key\"]}-{$.esc}", NULL, value), 0);
    assert_string_equal(rendered, "o-a\"b");
    assert_int_equal(render("{{literal}}:{topic}:{partition}", NULL, value), 0);
    assert_string_equal(rendered, "{literal}:customers.v1:7");
    assert_int_equal(render("fixed", NULL, NULL), 0);
    assert_string_equal(rendered, "fixed");
    assert_int_equal(render("{$}", NULL, "\"whole\""), 0);
    assert_string_equal(rendered, "whole");
}

static void test_template_reasons(void **state)
{
    static const char value[] = "{\"id\":1,\"n\":null,\"o\":{},\"arr\":[1]}";
    (void)state;

    assert_int_equal(render("{$.tenant}:{$.id}", "k", value), -1);
    assert_string_equal(rendered, "key template: $.tenant is missing");
    assert_int_equal(render("{$.n}", "k", value), -1);
    assert_string_equal(rendered, "key template: $.n is null, not a string, number or boolean");
    assert_int_equal(render("{$.o}", "k", value), -1);
    assert_non_null(strstr(rendered, "is an object"));
    assert_int_equal(render("{$.arr[3]}", "k", value), -1);
    assert_string_equal(rendered, "key template: $.arr[3] is missing");
    assert_int_equal(render("{$.id.x}", "k", value), -1);
    assert_int_equal(render("c:{key}", NULL, value), -1);
    assert_string_equal(rendered, "key template: the record has no key to fill {key}");
    assert_int_equal(render("c:{$.id}", "k", NULL), -1);
    assert_string_equal(rendered, "key template: a tombstone has no value to fill {$.id}");
    assert_int_equal(render("c:{key}", "k", NULL), 0);   /* a tombstone can delete by record key */
}

static void test_template_compile_errors(void **state)
{
    static const struct { const char *tpl, *says; } bad[] = {
        { "", "empty" },
        { "a:{key", "unterminated" },
        { "a:}", "unmatched" },
        { "{name}", "unknown placeholder {name}" },
        { "{$.}", "empty field name" },
        { "{$.a[x]}", "index" },
        { "{$x}", "unexpected" },
        { "{$[\"open}", "unterminated" },
    };
    char err[256];
    struct redis_template *t;
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        t = redis_template_compile(bad[i].tpl, err, sizeof err);
        if (t || !strstr(err, bad[i].says))
            fail_msg("\"%s\": %s (wanted \"%s\")", bad[i].tpl, t ? "compiled" : err, bad[i].says);
    }
    t = redis_template_compile("{$.tenant}:{key}", err, sizeof err);
    assert_non_null(t);
    assert_int_equal(redis_template_uses_value(t), 1);
    redis_template_free(t);
    t = redis_template_compile("c:{key}", err, sizeof err);
    assert_int_equal(redis_template_uses_value(t), 0);
    redis_template_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_full),
        cmocka_unit_test(test_url_defaults_and_forms),
        cmocka_unit_test(test_url_errors_never_show_the_password),
        cmocka_unit_test(test_json_agrees_with_jansson),
        cmocka_unit_test(test_json_strings_match_jansson),
        cmocka_unit_test(test_json_members_and_text),
        cmocka_unit_test(test_json_depth_limit),
        cmocka_unit_test(test_template_fills),
        cmocka_unit_test(test_template_reasons),
        cmocka_unit_test(test_template_compile_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
