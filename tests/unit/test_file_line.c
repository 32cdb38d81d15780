/* The file sink's line of a record: the exact bytes for each shape of record (the README's
 * format), the value's JSON embedded as written with the white space between tokens removed, a
 * value that is not JSON embedded as a string, refusals with their reason, and the line shared
 * between file sinks of the same record. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "sinks/file_line.h"

/* The line of @p rec as a C string (freed by the caller); asserts it is one line. */
static char *line_of_record(struct sink_record *rec)
{
    char err[256] = "", *text;

    assert_int_equal(file_line_prepare(rec, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_true(rec->prepared_len > 0);
    assert_int_equal(((char *)rec->prepared)[rec->prepared_len - 1], '\n');
    assert_null(memchr(rec->prepared, '\n', rec->prepared_len - 1));
    text = strndup(rec->prepared, rec->prepared_len);
    assert_non_null(text);
    file_line_release(rec);
    assert_null(rec->prepared);
    return text;
}

static void test_json_value_compacted(void **state)
{
    const char *value = " {\"a\": [1, 2.50e3, \"x y\\n\\u00e9\"],\n \"b\":\r\n\tnull, \"big\": 123456789012345678901234567890} ";
    struct sink_record rec = { .topic = "customers.v1", .partition = 7, .offset = 1234567890123,
                               .key = "c-42", .key_len = 4, .value = value, .value_len = strlen(value),
                               .timestamp_ms = 1764600000000 };
    char *line;
    (void)state;

    line = line_of_record(&rec);
    assert_string_equal(line, "{\"topic\":\"customers.v1\",\"partition\":7,\"offset\":1234567890123,\"key\":\"c-42\","
                              "\"value\":{\"a\":[1,2.50e3,\"x y\\n\\u00e9\"],\"b\":null,\"big\":123456789012345678901234567890},"
                              "\"timestamp\":1764600000000}\n");
    free(line);
}

static void test_scalars_text_and_nulls(void **state)
{
    struct sink_record rec = { .topic = "t", .partition = 0, .offset = 0, .value = " 42 ", .value_len = 4,
                               .timestamp_ms = -1 };
    char *line;
    (void)state;

    line = line_of_record(&rec);
    assert_string_equal(line, "{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"key\":null,\"value\":42,\"timestamp\":null}\n");
    free(line);

    /* not JSON: a string, escaped; a key with a quote and a control byte */
    rec.value = "hello \"w\"\n";
    rec.value_len = strlen(rec.value);
    rec.key = "k\"\x01";
    rec.key_len = 3;
    rec.timestamp_ms = 5;
    line = line_of_record(&rec);
    assert_string_equal(line, "{\"topic\":\"t\",\"partition\":0,\"offset\":0,\"key\":\"k\\\"\\u0001\","
                              "\"value\":\"hello \\\"w\\\"\\n\",\"timestamp\":5}\n");
    free(line);

    /* a tombstone; an empty value is a string; a raw NUL is not JSON */
    rec.value = NULL;
    rec.value_len = 0;
    line = line_of_record(&rec);
    assert_non_null(strstr(line, ",\"value\":null,"));
    free(line);
    rec.value = "";
    line = line_of_record(&rec);
    assert_non_null(strstr(line, ",\"value\":\"\","));
    free(line);
    rec.value = "[\"a\0\"]";
    rec.value_len = 6;
    line = line_of_record(&rec);
    assert_non_null(strstr(line, ",\"value\":\"[\\\"a\\u0000\\\"]\","));
    free(line);
}

static void test_refusals(void **state)
{
    struct sink_record rec = { .topic = "t", .partition = 1, .offset = 2, .value = "\xff\xfe", .value_len = 2 };
    char err[256] = "";
    (void)state;

    assert_int_equal(file_line_prepare(&rec, err, sizeof err), -1);
    assert_string_equal(err, "value is neither JSON nor valid UTF-8 text");
    assert_null(rec.prepared);
    rec.value = "{}";
    rec.value_len = 2;
    rec.key = "\xc0\x80";   /* an overlong NUL */
    rec.key_len = 2;
    assert_int_equal(file_line_prepare(&rec, err, sizeof err), -1);
    assert_string_equal(err, "key is not valid UTF-8");
}

/* What jansson reads back is the record: key, value (as JSON), partition, offset. */
static void test_parses_back(void **state)
{
    const char *value = "{\"s\":\"\\ud83d\\ude00 \xe2\x82\xac\",\"n\":[-0.5,1E-3,{}],\"t\":true}";
    struct sink_record rec = { .topic = "orders.v1", .partition = 2147483647, .offset = INT64_MAX,
                               .key = "\xe2\x82\xac", .key_len = 3, .value = value, .value_len = strlen(value),
                               .timestamp_ms = 0 };
    json_t *line_doc, *value_doc;
    char *line;
    (void)state;

    line = line_of_record(&rec);
    line_doc = json_loads(line, 0, NULL);
    value_doc = json_loads(value, 0, NULL);
    assert_non_null(line_doc);
    assert_non_null(value_doc);
    assert_true(json_equal(json_object_get(line_doc, "value"), value_doc));
    assert_string_equal(json_string_value(json_object_get(line_doc, "key")), "\xe2\x82\xac");
    assert_int_equal(json_integer_value(json_object_get(line_doc, "partition")), 2147483647);
    assert_int_equal(json_integer_value(json_object_get(line_doc, "offset")), INT64_MAX);
    assert_int_equal(json_integer_value(json_object_get(line_doc, "timestamp")), 0);
    json_decref(line_doc);
    json_decref(value_doc);
    free(line);
}

/* With two file sinks the second gets the very line the first made; another record gets its own. */
static void test_line_shared_between_sinks(void **state)
{
    struct sink_record a = { .topic = "t", .partition = 3, .offset = 9, .value = "{\"x\":1}", .value_len = 7 };
    struct sink_record b = a, c = a;
    char err[256];
    (void)state;

    file_line_users(2);
    assert_int_equal(file_line_prepare(&a, err, sizeof err), 0);
    assert_int_equal(file_line_prepare(&b, err, sizeof err), 0);
    assert_ptr_equal(a.prepared, b.prepared);
    c.offset = 10;
    assert_int_equal(file_line_prepare(&c, err, sizeof err), 0);
    assert_ptr_not_equal(c.prepared, a.prepared);
    assert_non_null(strstr(c.prepared, "\"offset\":10,"));
    file_line_release(&a);
    assert_non_null(strstr(b.prepared, "\"offset\":9,"));   /* b's reference keeps it */
    file_line_release(&b);
    file_line_release(&c);
    file_line_users(-2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_value_compacted),
        cmocka_unit_test(test_scalars_text_and_nulls),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_parses_back),
        cmocka_unit_test(test_line_shared_between_sinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
