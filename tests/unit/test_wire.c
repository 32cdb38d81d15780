/* lib/wire.c: the Confluent prefix and the Protobuf message indexes, with the bytes the real
 * JS serializer wrote (DATA-PRODUCTS.md section 1): [1] is 02 02, [1,0] is 04 02 00. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/wire.h"

static void test_prefix(void **state)
{
    static const uint8_t avro[] = { 0x00, 0x00, 0x00, 0x00, 0x01, 0x06, 0x63 };
    static const uint8_t big_id[] = { 0x00, 0x12, 0x34, 0x56, 0x78 };
    struct wire_frame f;
    char err[160];

    (void)state;
    assert_int_equal(wire_parse(avro, sizeof avro, &f, err, sizeof err), 0);
    assert_int_equal(f.schema_id, 1);
    assert_int_equal(f.payload, 5);
    assert_int_equal(wire_parse(big_id, sizeof big_id, &f, err, sizeof err), 0);
    assert_int_equal(f.schema_id, 0x12345678u);
    assert_int_equal(f.payload, 5);

    assert_int_equal(wire_parse(avro, 3, &f, err, sizeof err), -1);
    assert_string_equal(err, "value of 3 bytes is too short for the 5-byte schema registry prefix");
    assert_int_equal(wire_parse(avro, 0, &f, err, sizeof err), -1);
    assert_string_equal(err, "value of 0 bytes is too short for the 5-byte schema registry prefix");
    assert_int_equal(wire_parse((const uint8_t *)"{\"id\":1}", 8, &f, err, sizeof err), -1);
    assert_string_equal(err, "unknown magic byte 0x7b at byte 0 (not schema registry framing; is the topic JSON?)");
    assert_int_equal(wire_parse((const uint8_t *)"\x07\x00\x00\x00\x01", 5, &f, err, sizeof err), -1);
    assert_string_equal(err, "unknown magic byte 0x07 at byte 0 (not schema registry framing)");
    assert_int_equal(wire_parse((const uint8_t *)"\x01" "0123456789abcdef\x02", 18, &f, err, sizeof err), -1);
    assert_string_equal(err, "magic byte 1 (schema GUID framing) is not supported yet");
}

/* Parses value[5..] and returns the path as text ("1,0"), or the error. */
static const char *indexes(const uint8_t *payload, size_t n, size_t *after)
{
    static char text[400];
    uint8_t value[64] = { 0, 0, 0, 0, 9 };
    int32_t idx[WIRE_MAX_INDEXES];
    size_t count = 99, pos = 5, used = 0;

    memcpy(value + 5, payload, n);
    if (wire_proto_indexes(value, 5 + n, &pos, idx, &count, text, sizeof text) != 0)
        return text;
    text[0] = '\0';
    for (size_t i = 0; i < count; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%d", i ? "," : "", (int)idx[i]);
    *after = pos;
    return text;
}

static void test_indexes(void **state)
{
    size_t after = 0;

    (void)state;
    assert_string_equal(indexes((const uint8_t *)"\x00\x0a", 2, &after), "0");   /* the [0] shortcut */
    assert_int_equal(after, 6);
    assert_string_equal(indexes((const uint8_t *)"\x02\x02\x0a", 3, &after), "1");
    assert_int_equal(after, 7);
    assert_string_equal(indexes((const uint8_t *)"\x04\x02\x00", 3, &after), "1,0");
    assert_int_equal(after, 8);
    assert_string_equal(indexes((const uint8_t *)"\x02\x00", 2, &after), "0");     /* [0] spelt out */
    assert_string_equal(indexes((const uint8_t *)"\x06\x04\x02\x00", 4, &after), "2,1,0");
    assert_string_equal(indexes((const uint8_t *)"\x02\xfe\xff\xff\xff\x0f", 6, &after), "2147483647");

    assert_string_equal(indexes((const uint8_t *)"", 0, &after), "truncated message index count varint at byte 5");
    assert_string_equal(indexes((const uint8_t *)"\x80", 1, &after), "truncated message index count varint at byte 5");
    assert_string_equal(indexes((const uint8_t *)"\x04\x02", 2, &after),
            "message index count 2 but only 1 bytes left at byte 5");
    assert_string_equal(indexes((const uint8_t *)"\x04\x02\x80", 3, &after), "truncated message index varint at byte 7");
    assert_string_equal(indexes((const uint8_t *)"\x01", 1, &after), "negative message index count -1 at byte 5");
    assert_string_equal(indexes((const uint8_t *)"\x04\x02\x01", 3, &after), "negative message index -1 at byte 7");
    assert_string_equal(indexes((const uint8_t *)"\x82\x01", 2, &after),
            "message index count 65 over the limit of 64 at byte 5");
    assert_string_equal(indexes((const uint8_t *)"\xfe\xff\xff\xff\x0f", 5, &after),
            "message index count 2147483647 over the limit of 64 at byte 5");
    assert_string_equal(indexes((const uint8_t *)"\xfe\xff\xff\xff\x1f", 5, &after),
            "message index count varint over 32 bits at byte 5");
    assert_string_equal(indexes((const uint8_t *)"\x02\x80\x80\x80\x80\x80\x01", 7, &after),
            "message index varint over 32 bits at byte 6");
}

/* The most indexes the limit allows, all bytes used. */
static void test_indexes_at_limit(void **state)
{
    uint8_t value[5 + 1 + 2 + WIRE_MAX_INDEXES] = { 0 };
    int32_t idx[WIRE_MAX_INDEXES];
    size_t count = 0, pos = 5;
    char err[160];

    (void)state;
    value[5] = 0x80;                /* zigzag 64 = 128: two bytes */
    value[6] = 0x01;
    for (size_t i = 0; i < WIRE_MAX_INDEXES; i++)
        value[7 + i] = (uint8_t)(2 * (i % 60));
    assert_int_equal(wire_proto_indexes(value, 7 + WIRE_MAX_INDEXES, &pos, idx, &count, err, sizeof err), 0);
    assert_int_equal(count, WIRE_MAX_INDEXES);
    assert_int_equal(pos, 7 + WIRE_MAX_INDEXES);
    assert_int_equal(idx[63], 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_indexes),
        cmocka_unit_test(test_indexes_at_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
