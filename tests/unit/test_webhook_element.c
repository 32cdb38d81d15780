/* The webhook sink's element of a body: its length is counted before it is written (prepare
 * counts it against batch.max_bytes, write reserves exactly that), so the two must agree for
 * every shape of record; and what is written is the JSON object the README documents. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <setjmp.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "sinks/template.h"
#include "sinks/webhook_element.h"

/* Writes the element of @p rec into a buffer of exactly the counted length plus a guard byte,
 * checks the two agree and that the guard is untouched, and returns the element parsed. */
static json_t *element_of(struct webhook_names *n, const struct sink_record *rec)
{
    long long key_esc = rec->key ? tpl_json_escaped_len(rec->key, rec->key_len) : 0;
    size_t len;
    char *buf, *end;
    json_t *doc;

    assert_true(key_esc >= 0);
    len = webhook_element_len(n, rec, (size_t)key_esc);
    buf = malloc(len + 1);
    assert_non_null(buf);
    buf[len] = '#';
    end = webhook_element_write(n, rec, buf);
    assert_int_equal((size_t)(end - buf), len);
    assert_int_equal(buf[len], '#');
    doc = json_loadb(buf, len, 0, NULL);
    assert_non_null(doc);
    assert_null(memchr(buf, '\n', len));
    free(buf);
    return doc;
}

static void test_plain_record(void **state)
{
    struct webhook_names n = { 0 };
    const char *value = "{\"a\": [1, 2.5e3, \"x\"],\n \"b\":\r\n null}";
    struct sink_record rec = { .topic = "customers.v1", .partition = 7, .offset = 1234567890123,
                               .key = "c-42", .key_len = 4, .value = value, .value_len = strlen(value),
                               .timestamp_ms = 1764600000000 };
    json_t *doc;
    (void)state;

    assert_int_equal(webhook_names_set(&n, "crm", rec.topic), 0);
    doc = element_of(&n, &rec);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "crm:customers.v1:7:1234567890123");
    assert_string_equal(json_string_value(json_object_get(doc, "topic")), "customers.v1");
    assert_int_equal(json_integer_value(json_object_get(doc, "partition")), 7);
    assert_int_equal(json_integer_value(json_object_get(doc, "offset")), 1234567890123);
    assert_string_equal(json_string_value(json_object_get(doc, "key")), "c-42");
    assert_int_equal(json_array_size(json_object_get(json_object_get(doc, "value"), "a")), 3);
    assert_true(json_is_null(json_object_get(json_object_get(doc, "value"), "b")));
    assert_int_equal(json_integer_value(json_object_get(doc, "timestamp")), 1764600000000);
    json_decref(doc);
    webhook_names_free(&n);
}

static void test_escapes_nulls_and_topics(void **state)
{
    struct webhook_names n = { 0 };
    const char key[] = "q\"b\\s/\x01\t\xc3\xbc\xf0\x9f\x98\x80";   /* quote, backslash, control, tab, ü, emoji */
    struct sink_record rec = { .topic = "t\"1", .partition = 0, .offset = 0, .key = key, .key_len = sizeof key - 1,
                               .value = NULL, .timestamp_ms = -1 };
    json_t *doc;
    (void)state;

    assert_int_equal(webhook_names_set(&n, "s\\ink", rec.topic), 0);
    doc = element_of(&n, &rec);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "s\\ink:t\"1:0:0");
    assert_string_equal(json_string_value(json_object_get(doc, "topic")), "t\"1");
    assert_string_equal(json_string_value(json_object_get(doc, "key")), key);
    assert_true(json_is_null(json_object_get(doc, "value")));      /* a tombstone */
    assert_true(json_is_null(json_object_get(doc, "timestamp")));
    json_decref(doc);

    /* Another topic, no key, a scalar value: the cached escapes follow the topic. */
    rec.topic = "orders";
    rec.key = NULL;
    rec.key_len = 0;
    rec.value = "-0.5";
    rec.value_len = 4;
    rec.timestamp_ms = 0;
    rec.partition = 2147483647;
    assert_int_equal(webhook_names_set(&n, "s\\ink", rec.topic), 0);
    doc = element_of(&n, &rec);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "s\\ink:orders:2147483647:0");
    assert_true(json_is_null(json_object_get(doc, "key")));
    assert_true(json_real_value(json_object_get(doc, "value")) == -0.5);
    assert_int_equal(json_integer_value(json_object_get(doc, "timestamp")), 0);
    json_decref(doc);
    webhook_names_free(&n);
}

/* Partitions, offsets and timestamps at every digit count and at the edges: the same text as
 * printf's, and the counted length (element_of checks it). */
static void test_decimals(void **state)
{
    static const int64_t values[] = { 0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 9999, 10000, 10001, 99999, 100000,
                                      1234567, 99999999, 100000000, 1764600000000, 999999999999999999,
                                      1000000000000000000, INT64_MAX, -1, -9, -10, -100, -12345, INT64_MIN };
    struct webhook_names n = { 0 };
    char id[96];
    (void)state;

    assert_int_equal(webhook_names_set(&n, "s", "t"), 0);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        int32_t partition = (int32_t)(values[i] % 2147483647);
        struct sink_record rec = { .topic = "t", .partition = partition, .offset = values[i],
                                   .key = NULL, .value = "1", .value_len = 1,
                                   .timestamp_ms = values[i] < 0 ? -1 : values[i] };
        json_t *doc = element_of(&n, &rec);
        snprintf(id, sizeof id, "s:t:%" PRId32 ":%" PRId64, partition, values[i]);
        assert_string_equal(json_string_value(json_object_get(doc, "id")), id);
        assert_true(json_integer_value(json_object_get(doc, "partition")) == partition);
        assert_true(json_integer_value(json_object_get(doc, "offset")) == values[i]);
        if (values[i] >= 0)
            assert_true(json_integer_value(json_object_get(doc, "timestamp")) == values[i]);
        json_decref(doc);
    }
    webhook_names_free(&n);
}

static void test_escaped_len_refuses_bad_utf8(void **state)
{
    (void)state;
    assert_true(tpl_json_escaped_len("\xff", 1) < 0);
    assert_true(tpl_json_escaped_len("\xed\xa0\x80", 3) < 0);   /* a surrogate */
    assert_int_equal(tpl_json_escaped_len("a\"\x1f", 3), 1 + 2 + 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_record),
        cmocka_unit_test(test_escapes_nulls_and_topics),
        cmocka_unit_test(test_decimals),
        cmocka_unit_test(test_escaped_len_refuses_bad_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
