/* lib/schema_api over lib/schema_store, without a transport: what tools/schema-registry and
 * `sluice dev --registry` both answer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/schema_api.h"
#include "lib/schema_store.h"
#include "lib/uri.h"

#define AVRO_A "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"A\\\",\\\"fields\\\":[]}\"}"

/* Answers one request; returns "STATUS BODY" (static buffer) and whether the store changed. */
static const char *ask(struct schema_store *st, const char *method, const char *path, const char *query,
                       const char *body, int *changed)
{
    static char out[4096];
    struct schema_api_reply rp = { 0 };
    size_t len;
    char *text;

    schema_api_answer(st, method, path, query, body, body ? strlen(body) : 0, &rp);
    text = schema_api_reply_text(&rp, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    snprintf(out, sizeof out, "%d %s", rp.status, text);
    if (changed)
        *changed = rp.changed;
    free(text);
    schema_api_reply_clear(&rp);
    return out;
}

static void test_register_and_read(void **state)
{
    struct schema_store st;
    int changed;
    (void)state;

    assert_int_equal(schema_store_init(&st), 0);
    assert_string_equal(ask(&st, "POST", "/subjects/a-value/versions", NULL, AVRO_A, &changed), "200 {\"id\":1}");
    assert_true(changed);
    assert_string_equal(ask(&st, "POST", "/subjects/a-value/versions", "normalize=false", AVRO_A, &changed),
                        "200 {\"id\":1}");
    assert_false(changed);
    assert_string_equal(ask(&st, "POST", "/subjects/p%2Fvalue/versions", NULL, AVRO_A, &changed), "200 {\"id\":1}");
    assert_true(changed);   /* a new version of another subject */
    assert_string_equal(ask(&st, "GET", "/subjects", NULL, NULL, NULL), "200 [\"a-value\",\"p/value\"]");
    assert_string_equal(ask(&st, "GET", "/subjects/p%2Fvalue/versions", NULL, NULL, NULL), "200 [1]");
    assert_string_equal(ask(&st, "GET", "/subjects/a-value/versions/latest", NULL, NULL, NULL),
                        "200 {\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"A\\\",\\\"fields\\\":[]}\","
                        "\"subject\":\"a-value\",\"version\":1,\"id\":1}");
    assert_string_equal(ask(&st, "GET", "/schemas/ids/1/schema", NULL, NULL, NULL),
                        "200 {\"type\":\"record\",\"name\":\"A\",\"fields\":[]}");
    assert_string_equal(ask(&st, "GET", "/schemas/ids/1/versions", NULL, NULL, NULL),
                        "200 [{\"subject\":\"a-value\",\"version\":1},{\"subject\":\"p/value\",\"version\":1}]");
    assert_string_equal(ask(&st, "POST", "/subjects/a-value", NULL, AVRO_A, NULL) + 4,
                        "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"A\\\",\\\"fields\\\":[]}\","
                        "\"subject\":\"a-value\",\"version\":1,\"id\":1}");
    assert_string_equal(ask(&st, "GET", "/schemas/types", NULL, NULL, NULL), "200 [\"AVRO\",\"JSON\",\"PROTOBUF\"]");
    schema_store_free(&st);
}

static void test_serialized_protobuf(void **state)
{
    struct schema_store st;
    json_t *s;
    (void)state;

    assert_int_equal(schema_store_init(&st), 0);
    assert_string_equal(ask(&st, "POST", "/subjects/p/versions", NULL,
                            "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\";\"}", NULL),
                        "200 {\"id\":1}");
    s = schema_store_by_id(&st, 1);
    json_object_set_new(s, "serialized", json_string("CgA="));   /* as a dump may carry */
    assert_string_equal(ask(&st, "GET", "/schemas/ids/1", "subject=p&format=serialized", NULL, NULL),
                        "200 {\"schema\":\"CgA=\",\"schemaType\":\"PROTOBUF\"}");
    assert_string_equal(ask(&st, "GET", "/schemas/ids/1", "format=text", NULL, NULL),
                        "200 {\"schema\":\"syntax = \\\"proto3\\\";\",\"schemaType\":\"PROTOBUF\"}");
    schema_store_free(&st);
}

static void test_errors(void **state)
{
    struct schema_store st;
    (void)state;

    assert_int_equal(schema_store_init(&st), 0);
    assert_string_equal(ask(&st, "POST", "/subjects/a/versions", NULL, AVRO_A, NULL), "200 {\"id\":1}");
    assert_string_equal(ask(&st, "GET", "/schemas/ids/99", NULL, NULL, NULL),
                        "404 {\"error_code\":40403,\"message\":\"Schema 99 not found\"}");
    assert_string_equal(ask(&st, "GET", "/subjects/nope/versions", NULL, NULL, NULL),
                        "404 {\"error_code\":40401,\"message\":\"Subject 'nope' not found.\"}");
    assert_string_equal(ask(&st, "GET", "/subjects/a/versions/2", NULL, NULL, NULL),
                        "404 {\"error_code\":40402,\"message\":\"Version 2 not found.\"}");
    assert_memory_equal(ask(&st, "GET", "/subjects/a/versions/x", NULL, NULL, NULL), "422 {\"error_code\":42202", 22);
    assert_memory_equal(ask(&st, "POST", "/subjects/a/versions", NULL, "{\"schema\":\"{nope\"}", NULL),
                        "422 {\"error_code\":42201", 22);
    assert_memory_equal(ask(&st, "POST", "/subjects/a/versions", NULL, "", NULL), "422 {\"error_code\":42201", 22);
    assert_string_equal(ask(&st, "POST", "/subjects/c/versions", NULL,
                            "{\"schema\":\"\\\"int\\\"\",\"references\":[{\"name\":\"A\",\"subject\":\"a\",\"version\":7}]}", NULL),
                        "422 {\"error_code\":42201,\"message\":\"Invalid schema: references[0]: a version 7 is not registered\"}");
    assert_string_equal(ask(&st, "DELETE", "/subjects/a/versions", NULL, NULL, NULL),
                        "405 {\"error_code\":405,\"message\":\"HTTP 405 Method Not Allowed\"}");
    assert_string_equal(ask(&st, "GET", "/associations/resources/-/t", "resourceType=topic", NULL, NULL),
                        "404 {\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}");
    assert_memory_equal(ask(&st, "GET", "/subjects/a/b/c/d/e/f/g/h/i/j", NULL, NULL, NULL), "404 {\"error_code\":404,", 21);
    assert_memory_equal(ask(&st, "GET", "/subjects/a%zz/versions", NULL, NULL, NULL), "404 {\"error_code\":404,", 21);
    assert_memory_equal(ask(&st, "GET", "/subjects/a%00/versions", NULL, NULL, NULL), "404 {\"error_code\":404,", 21);
    assert_memory_equal(ask(&st, "POST", "/subjects/%ff/versions", NULL, AVRO_A, NULL), "404 {\"error_code\":404,", 21);
    assert_memory_equal(ask(&st, "POST", "/subjects/\xff", NULL, AVRO_A, NULL), "404 {\"error_code\":404,", 21);
    /* the message cuts the subject at 200 bytes, here inside a two-byte character */
    assert_string_equal(ask(&st, "GET", "/subjects/"
                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                            "%C3%A9/versions", NULL, NULL, NULL) + 4 + 31 + 9 + 199,
                        "' not found.\"}");
    schema_store_free(&st);
}

static void test_uri_decode(void **state)
{
    char *s;
    (void)state;

    s = uri_decode("a%2Fb+c", 7, 0);
    assert_string_equal(s, "a/b+c");
    free(s);
    s = uri_decode("a%2fb+c", 7, 1);
    assert_string_equal(s, "a/b c");
    free(s);
    s = uri_decode("abc", 2, 0);
    assert_string_equal(s, "ab");
    free(s);
    assert_null(uri_decode("%4", 2, 0));
    assert_null(uri_decode("%g0", 3, 0));
    assert_null(uri_decode("%00", 3, 0));
    s = uri_query_param("subject=x&format=serialized", "format");
    assert_string_equal(s, "serialized");
    free(s);
    s = uri_query_param("format=&x=1", "format");
    assert_string_equal(s, "");
    free(s);
    assert_null(uri_query_param("formats=1&format", "format"));
    assert_null(uri_query_param(NULL, "format"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_and_read),
        cmocka_unit_test(test_serialized_protobuf),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_uri_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
