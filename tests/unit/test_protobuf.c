/* lib/protobuf.c and protobuf_schema.c: proto3 JSON of hand-encoded wire bytes, rule by rule, and
 * the exact reason and byte offset of each malformed input. The schemas are FileDescriptorProtos
 * built in pb_schemas.h. Golden records from the real Confluent serializer are checked too when
 * tests/fixtures/registry/ is there (test_golden). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <jansson.h>

#include "lib/buf.h"
#include "lib/protobuf.h"
#include "lib/wire.h"
#include "pb_schemas.h"

static struct pb_schema *shop;

static int setup(void **state)
{
    size_t len;
    uint8_t *bytes = pbt_shop(&len);
    struct pb_blob file = { bytes, len };
    char err[256] = "";

    (void)state;
    shop = pb_schema_load(&file, 1, err, sizeof err);
    free(bytes);
    if (!shop)
        fprintf(stderr, "shop schema: %s\n", err);
    return shop ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pb_schema_free(shop);
    return 0;
}

/* The JSON of @p payload framed as the serializer frames it (5-byte prefix, one index byte
 * 0x00 standing for [0], so the payload starts at byte 6), or "error: <reason>". */
static const char *decode_path(const struct pb_schema *s, const int32_t *idx, size_t nidx, const char *payload, size_t n)
{
    static char result[4096];
    uint8_t *value = malloc(6 + n);
    struct buf out;
    char err[256];
    int rc;

    memcpy(value, "\0\0\0\0\1\0", 6);
    memcpy(value + 6, payload, n);
    buf_init(&out, 0);
    rc = pb_decode_json(s, idx, nidx, value, 6 + n, 6, &out, err, sizeof err);
    if (rc == 0)
        snprintf(result, sizeof result, "%s", out.p ? out.p : "");
    else
        snprintf(result, sizeof result, "error: %s", err);
    buf_free(&out);
    free(value);
    return result;
}

#define ORDER(bytes) decode_path(shop, (const int32_t[]){ 0 }, 1, bytes, sizeof bytes - 1)

static void test_scalars(void **state)
{
    (void)state;
    assert_string_equal(ORDER(""), "{}");
    assert_string_equal(ORDER("\x0a\x02" "A1"
                              "\x10\xfb\xff\xff\xff\xff\xff\xff\xff\xff\x01"        /* amount_cents -5 */
                              "\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"        /* qty -1 */
                              "\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"        /* big 2^64-1 */
                              "\x29\x00\x00\x00\x00\x00\x00\xf8\x3f"                /* price 1.5 */
                              "\x35\xcd\xcc\xcc\x3d"                                /* ratio 0.1f */
                              "\x38\x01" "\x42\x03\x00\xff\x10" "\x48\x02"),
            "{\"id\":\"A1\",\"amountCents\":\"-5\",\"qty\":-1,\"big\":\"18446744073709551615\",\"price\":1.5,"
            "\"ratio\":0.1,\"paid\":true,\"blob\":\"AP8Q\",\"status\":\"SHIPPED\"}");
    assert_string_equal(ORDER("\x98\x01\x05" "\xa0\x01\x05" "\xad\x01\x01\x00\x00\x00"
                              "\xb1\x01\x02\x00\x00\x00\x00\x00\x00\x00" "\xbd\x01\xff\xff\xff\xff"
                              "\xc1\x01\xfe\xff\xff\xff\xff\xff\xff\xff" "\xc8\x01\xff\xff\xff\xff\x0f"),
            "{\"s32\":-3,\"s64\":\"-3\",\"f32\":1,\"f64\":\"2\",\"sf32\":-1,\"sf64\":\"-2\",\"u32\":4294967295}");
    /* an enum number without a name prints as the number; json_name as declared */
    assert_string_equal(ORDER("\x48\x07" "\xd2\x01\x01v"), "{\"status\":7,\"x-custom\":\"v\"}");
    /* base64 padding, float specials, strings escaped */
    assert_string_equal(ORDER("\x42\x01\xfb" "\x35\x00\x00\xc0\x7f" "\x29\x00\x00\x00\x00\x00\x00\xf0\xff"),
            "{\"price\":\"-Infinity\",\"ratio\":\"NaN\",\"blob\":\"+w==\"}");
    assert_string_equal(ORDER("\x35\x00\x00\x80\x7f" "\x42\x02\xfb\xff"), "{\"ratio\":\"Infinity\",\"blob\":\"+/8=\"}");
    assert_string_equal(ORDER("\x0a\x09" "a\"b\\\n\x01\xc3\xa9" "c"), "{\"id\":\"a\\\"b\\\\\\n\\u0001\xc3\xa9" "c\"}");
    assert_string_equal(ORDER("\x29\x9a\x99\x99\x99\x99\x99\xb9\x3f" "\x35\x00\x00\x80\x3f"), "{\"price\":0.1,\"ratio\":1}");
}

/* proto3 implicit presence: defaults are not printed; optional and oneof members are. */
static void test_presence(void **state)
{
    (void)state;
    assert_string_equal(ORDER("\x0a\x00" "\x18\x00" "\x38\x00" "\x48\x00" "\x42\x00" "\x29\x00\x00\x00\x00\x00\x00\x00\x00"), "{}");
    assert_string_equal(ORDER("\x90\x01\x00"), "{\"opt\":0}");
    assert_string_equal(ORDER("\x70\x00"), "{\"voucher\":0}");
    assert_string_equal(ORDER("\x8a\x01\x00"), "{\"maybe\":\"0\"}");     /* a wrapper present with its default */
    assert_string_equal(ORDER("\xda\x01\x00"), "{\"child\":{}}");       /* an empty message is present */
    /* -0.0 is not the default 0 */
    assert_string_equal(ORDER("\x29\x00\x00\x00\x00\x00\x00\x00\x80"), "{\"price\":-0}");
}

static void test_last_one_wins(void **state)
{
    (void)state;
    assert_string_equal(ORDER("\x18\x01\x18\x02"), "{\"qty\":2}");
    assert_string_equal(ORDER("\x18\x05\x18\x00"), "{}");
    assert_string_equal(ORDER("\x0a\x01x\x18\x01\x0a\x01y"), "{\"id\":\"y\",\"qty\":1}");
    assert_string_equal(ORDER("\x6a\x01x\x70\x03"), "{\"voucher\":3}");          /* oneof: the member seen last */
    assert_string_equal(ORDER("\x70\x03\x6a\x01x"), "{\"card\":\"x\"}");
    assert_string_equal(ORDER("\xda\x01\x02\x18\x01\xda\x01\x02\x18\x02"), "{\"child\":{\"qty\":2}}");
}

static void test_repeated_and_maps(void **state)
{
    (void)state;
    /* message elements; int32 packed and unpacked, interleaved with other fields */
    assert_string_equal(ORDER("\x52\x06\x0a\x02" "ab" "\x10\x02" "\x5a\x03\x01\x02\x03" "\x18\x09"
                              "\x52\x00" "\x58\x04" "\xf2\x01\x01x" "\xf2\x01\x00"),
            "{\"qty\":9,\"lines\":[{\"sku\":\"ab\",\"n\":2},{}],\"codes\":[1,2,3,4],\"tags\":[\"x\",\"\"]}");
    assert_string_equal(ORDER("\x5a\x00"), "{}");                                /* an empty packed array */
    assert_string_equal(ORDER("\x92\x02\x08\x01\x00\x00\x00\xff\xff\xff\xff" "\x95\x02\x07\x00\x00\x00"),
            "{\"samples\":[1,4294967295,7]}");
    assert_string_equal(ORDER("\x9a\x02\x03\x01\x02\x09" "\x98\x02\x00"),
            "{\"history\":[\"PAID\",\"SHIPPED\",9,\"UNKNOWN\"]}");
    /* maps: keys as strings; a missing key or value is its default */
    assert_string_equal(ORDER("\x62\x07\x0a\x03" "abc" "\x10\x05" "\x62\x03\x0a\x01z" "\x62\x02\x10\x01"),
            "{\"counts\":{\"abc\":\"5\",\"z\":\"0\",\"\":\"1\"}}");
    assert_string_equal(ORDER("\xea\x01\x06\x08\x07\x12\x02\x10\x01" "\xea\x01\x02\x08\xff"),
            "error: truncated varint at byte 19");
    assert_string_equal(ORDER("\xea\x01\x06\x08\x07\x12\x02\x10\x01" "\xea\x01\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            "{\"byN\":{\"7\":{\"n\":1},\"-1\":{}}}");
}

static void test_well_known_types(void **state)
{
    (void)state;
    assert_string_equal(ORDER("\x7a\x0a\x08\xb4\xe7\x8b\x1e\x10\xc0\xde\x81\x0a"), "{\"at\":\"1972-01-01T10:00:20.021Z\"}");
    assert_string_equal(ORDER("\x7a\x00"), "{\"at\":\"1970-01-01T00:00:00Z\"}");
    assert_string_equal(ORDER("\x7a\x0d\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x10\x01"),
            "{\"at\":\"1969-12-31T23:59:59.000000001Z\"}");
    assert_string_equal(ORDER("\x7a\x09\x08\xff\x82\xd1\xff\xaf\x07\x10\x0a"), "{\"at\":\"9999-12-31T23:59:59.000000010Z\"}");
    assert_string_equal(ORDER("\x7a\x0b\x08\x80\x92\xb8\xc3\x98\xfe\xff\xff\xff\x01"), "{\"at\":\"0001-01-01T00:00:00Z\"}");
    assert_string_equal(ORDER("\x7a\x0d\x08\x01\x10\x80\x80\x80\x80\xf8\xff\xff\xff\xff\x01"),
            "error: Timestamp out of range (seconds 1, nanos -2147483648) at byte 8");
    assert_string_equal(ORDER("\x7a\x07\x08\x80\x83\xd1\xff\xaf\x07"),
            "error: Timestamp out of range (seconds 253402300800, nanos 0) at byte 8");
    assert_string_equal(ORDER("\x82\x01\x06\x08\x01\x10\xac\xe0\x14"), "{\"took\":\"1.000340012s\"}");
    assert_string_equal(ORDER("\x82\x01\x16\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x10\x80\xb6\xca\x91\xfe\xff\xff\xff\xff\x01"),
            "{\"took\":\"-1.500s\"}");
    assert_string_equal(ORDER("\x82\x01\x0b\x10\xf8\xd8\xff\xff\xff\xff\xff\xff\xff\x01"), "{\"took\":\"-0.000005s\"}");
    assert_string_equal(ORDER("\x82\x01\x04\x08\x01\x10\x7f"), "{\"took\":\"1.000000127s\"}");
    assert_string_equal(ORDER("\x82\x01\x02\x08\x3c"), "{\"took\":\"60s\"}");
    assert_string_equal(ORDER("\x82\x01\x0d\x08\x01\x10\xf8\xd8\xff\xff\xff\xff\xff\xff\xff\x01"),
            "error: Duration out of range (seconds 1, nanos -5000) at byte 9");
    /* wrappers print their bare value; Empty is {} */
    assert_string_equal(ORDER("\x8a\x01\x02\x08\x09" "\xfa\x01\x03\x0a\x01q" "\x82\x02\x00"),
            "{\"maybe\":\"9\",\"note\":\"q\",\"nothing\":{}}");
    assert_string_equal(ORDER("\xfa\x01\x00"), "{\"note\":\"\"}");
    /* Struct {"k": 2, "n": null, "l": [true, "s"]} */
    assert_string_equal(ORDER("\xe2\x01\x2b\x0a\x0e\x0a\x01\x6b\x12\x09\x11\x00\x00\x00\x00\x00\x00\x00\x40\x0a\x07"
                              "\x0a\x01\x6e\x12\x02\x08\x00\x0a\x10\x0a\x01\x6c\x12\x0b\x32\x09\x0a\x02\x20\x01\x0a"
                              "\x03\x1a\x01\x73"),
            "{\"meta\":{\"k\":2,\"n\":null,\"l\":[true,\"s\"]}}");
    assert_string_equal(ORDER("\xe2\x01\x00"), "{\"meta\":{}}");
    assert_string_equal(ORDER("\xe2\x01\x10\x0a\x0e\x0a\x01\x78\x12\x09\x11\x00\x00\x00\x00\x00\x00\xf0\x7f"),
            "error: google.protobuf.Value holds a number that is not finite at byte 16");
    /* Any: "@type" and the packed message's members, or its well-known JSON as "value" */
    assert_string_equal(ORDER("\x8a\x02\x00"), "{\"any\":{}}");
    assert_string_equal(ORDER("\x8a\x02\x2a\x0a\x23" "type.googleapis.com/shop.Order.Line" "\x12\x03\x0a\x01x"),
            "{\"any\":{\"@type\":\"type.googleapis.com/shop.Order.Line\",\"sku\":\"x\"}}");
    assert_string_equal(ORDER("\x8a\x02\x33\x0a\x2d" "type.googleapis.com/google.protobuf.Timestamp" "\x12\x02\x08\x01"),
            "{\"any\":{\"@type\":\"type.googleapis.com/google.protobuf.Timestamp\",\"value\":\"1970-01-01T00:00:01Z\"}}");
    assert_string_equal(ORDER("\x8a\x02\x20\x0a\x1e" "type.googleapis.com/shop.Other"),
            "{\"any\":{\"@type\":\"type.googleapis.com/shop.Other\"}}");
    assert_string_equal(ORDER("\x8a\x02\x09\x0a\x05" "x/y.Z" "\x12\x00"),
            "error: google.protobuf.Any holds a type the schema does not have at byte 11");
    /* FieldMask: paths in lowerCamel, joined by commas */
    assert_string_equal(ORDER("\xa2\x02\x1a\x0a\x11" "user.display_name" "\x0a\x05" "a_b_c"),
            "{\"mask\":\"user.displayName,aBC\"}");
    assert_string_equal(ORDER("\xa2\x02\x00"), "{\"mask\":\"\"}");
}

static void test_unknown_fields(void **state)
{
    (void)state;
    /* field 100 as varint, fixed64, length-delimited and fixed32; field 101 as a group holding a group */
    assert_string_equal(ORDER("\xa0\x06\x96\x01" "\x18\x01" "\xa1\x06\x01\x02\x03\x04\x05\x06\x07\x08"
                              "\xa2\x06\x02\xff\xff" "\xa5\x06\x01\x02\x03\x04"
                              "\xab\x06\x08\x01\xb3\x06\xb4\x06\xac\x06" "\x38\x01"),
            "{\"qty\":1,\"paid\":true}");
    assert_string_equal(ORDER("\xac\x06"), "error: end-group tag for field 101 without its start at byte 6");
    assert_string_equal(ORDER("\xab\x06\x08\x01"), "error: group of field 101 without its end-group tag at byte 6");
    assert_string_equal(ORDER("\xab\x06\xb4\x06"), "error: end-group tag for field 102 inside the group of field 101 at byte 8");
}

/* Every malformed input: the reason and the byte, counted from the start of the value. */
static void test_malformed(void **state)
{
    (void)state;
    assert_string_equal(ORDER("\x18"), "error: truncated varint at byte 7");
    assert_string_equal(ORDER("\x80"), "error: truncated varint at byte 6");
    assert_string_equal(ORDER("\x0a\x05\x41"), "error: length 5 past the end of the message (1 bytes left) at byte 7");
    assert_string_equal(ORDER("\x0a\xff\xff\xff\xff\x0f"),
            "error: length 4294967295 past the end of the message (0 bytes left) at byte 7");
    assert_string_equal(ORDER("\x1a\x00"), "error: field shop.Order.qty (3) has wire type 2, expected 0 at byte 6");
    assert_string_equal(ORDER("\x0f"), "error: invalid wire type 7 at byte 6");
    assert_string_equal(ORDER("\x00"), "error: invalid field number 0 at byte 6");
    assert_string_equal(ORDER("\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"),
            "error: varint longer than 10 bytes or over 64 bits at byte 7");
    assert_string_equal(ORDER("\x29\x00\x00\x00"), "error: truncated fixed64 (3 bytes left) at byte 7");
    assert_string_equal(ORDER("\x0a\x02\xc3\x28"), "error: shop.Order.id: string is not valid UTF-8 at byte 8");
    assert_string_equal(ORDER("\x52\x02\x0a\x05"),
            "error: length 5 past the end of the message (0 bytes left) at byte 9");
    assert_string_equal(ORDER("\x92\x02\x03\x01\x02\x03"),
            "error: packed field shop.Order.samples: 3 bytes is not a multiple of 4 at byte 9");
    assert_string_equal(ORDER("\x5a\x02\x01\x80"), "error: truncated varint at byte 9");
    assert_string_equal(decode_path(shop, (const int32_t[]){ 5 }, 1, "", 0),
            "error: message index 5 out of range (the schema has 2 top-level messages) at byte 6");
    assert_string_equal(decode_path(shop, (const int32_t[]){ 0, 3 }, 2, "", 0),
            "error: message index 3 out of range (shop.Order has 3 nested types) at byte 6");
}

/* Order{child: Order{child: ... Order{qty: 1}}} with @p levels children, built from the inside
 * out at the end of @p buf; returns where it starts. */
static size_t nest_children(uint8_t *buf, size_t cap, int levels)
{
    size_t start = cap - 2;

    memcpy(buf + start, "\x18\x01", 2);
    for (int i = 0; i < levels; i++) {
        size_t inner = cap - start;
        uint8_t len[10];
        size_t n = 0;
        do {
            len[n++] = (uint8_t)((inner & 0x7f) | (inner > 0x7f ? 0x80 : 0));
            inner >>= 7;
        } while (inner);
        start -= n;
        memcpy(buf + start, len, n);
        start -= 2;
        buf[start] = 0xda;
        buf[start + 1] = 0x01;
    }
    return start;
}

static void test_depth(void **state)
{
    uint8_t buf[1024];
    char expected[2048], groups[2 * 70];
    size_t start, used = 0;

    (void)state;
    start = nest_children(buf, sizeof buf, PB_MAX_DEPTH);
    for (int i = 0; i < PB_MAX_DEPTH; i++)
        used += (size_t)snprintf(expected + used, sizeof expected - used, "{\"child\":");
    used += (size_t)snprintf(expected + used, sizeof expected - used, "{\"qty\":1}");
    for (int i = 0; i < PB_MAX_DEPTH; i++)
        expected[used++] = '}';
    expected[used] = '\0';
    assert_string_equal(decode_path(shop, (const int32_t[]){ 0 }, 1, (const char *)buf + start, sizeof buf - start),
            expected);

    /* one more level: refused where the 65th nested message starts (its bytes are the last two) */
    start = nest_children(buf, sizeof buf, PB_MAX_DEPTH + 1);
    snprintf(expected, sizeof expected, "error: messages nested deeper than 64 at byte %zu", 6 + (sizeof buf - start) - 2);
    assert_string_equal(decode_path(shop, (const int32_t[]){ 0 }, 1, (const char *)buf + start, sizeof buf - start),
            expected);

    /* unknown groups nested 70 deep: refused at the 64th start-group tag, 6 + 63 * 2 */
    for (size_t i = 0; i < 70; i++)
        memcpy(groups + 2 * i, "\xab\x06", 2);
    assert_string_equal(decode_path(shop, (const int32_t[]){ 0 }, 1, groups, sizeof groups),
            "error: groups nested deeper than 64 at byte 132");
}

static void test_message_indexes(void **state)
{
    (void)state;
    assert_string_equal(decode_path(shop, (const int32_t[]){ 1 }, 1, "\x0a\x02hi", 4), "{\"name\":\"hi\"}");
    assert_string_equal(decode_path(shop, (const int32_t[]){ 0, 0 }, 2, "\x0a\x01x\x10\x02", 5), "{\"sku\":\"x\",\"n\":2}");
    assert_string_equal(pb_schema_message_name(shop, (const int32_t[]){ 0, 0 }, 2), ".shop.Order.Line");
    assert_string_equal(pb_schema_message_name(shop, (const int32_t[]){ 1 }, 1), ".shop.Other");
    assert_null(pb_schema_message_name(shop, (const int32_t[]){ 2 }, 1));
}

/* A proto2 file importing a proto3 one: explicit presence, a type from the import by a partly
 * qualified relative name, and the type left unset (only type_name), as the registry may send.
 *   common.proto (proto3): package acme.common; message Money { int64 units = 1; }
 *   legacy.proto (proto2): package acme.legacy; import "common.proto";
 *     message Box { optional int32 a = 1; optional common.Money price = 2; repeated string s = 3;
 *                   optional string b = 4; } */
static void test_proto2_and_references(void **state)
{
    static const char *const deps[] = { "common.proto" };
    PbField *money_fields[] = { pbt_field("units", 1, PB_OPT, PB_T_INT64, NULL, NULL, -1) };
    PbField *box_fields[] = {
        pbt_field("a", 1, PB_OPT, PB_T_INT32, NULL, NULL, -1),
        pbt_field("price", 2, PB_OPT, 0, "common.Money", NULL, -1),
        pbt_field("s", 3, PB_REP, PB_T_STRING, NULL, NULL, -1),
        pbt_field("b", 4, PB_OPT, PB_T_STRING, NULL, NULL, -1),
    };
    PbMessage *money = pbt_message("Money", money_fields, 1, 0), *box = pbt_message("Box", box_fields, 4, 0);
    struct pb_blob files[2];
    struct pb_schema *s;
    char err[256];

    (void)state;
    files[0].p = pbt_pack_file("legacy.proto", "acme.legacy", NULL, &box, 1, NULL, 0, deps, 1, &files[0].len);
    files[1].p = pbt_pack_file("common.proto", "acme.common", "proto3", &money, 1, NULL, 0, NULL, 0, &files[1].len);
    s = pb_schema_load(files, 2, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(decode_path(s, (const int32_t[]){ 0 }, 1, "\x08\x00\x22\x00", 4), "{\"a\":0,\"b\":\"\"}");
    assert_string_equal(decode_path(s, (const int32_t[]){ 0 }, 1, "\x12\x02\x08\x00", 4), "{\"price\":{}}");
    assert_string_equal(decode_path(s, (const int32_t[]){ 0 }, 1, "\x12\x02\x08\x07", 4), "{\"price\":{\"units\":\"7\"}}");
    pb_schema_free(s);

    /* without the reference, the type cannot be found */
    s = pb_schema_load(files, 1, err, sizeof err);
    assert_null(s);
    assert_string_equal(err, "acme.legacy.Box.price: type common.Money is not defined (a missing reference?)");
    free((void *)files[0].p);
    free((void *)files[1].p);
}

/* Sparse field numbers (the lookup by binary search rather than a table), up to the largest. */
static void test_sparse_numbers(void **state)
{
    PbField *fields[] = {
        pbt_field("c", 536870911, PB_OPT, PB_T_INT32, NULL, NULL, -1),
        pbt_field("a", 1, PB_OPT, PB_T_INT32, NULL, NULL, -1),
        pbt_field("b", 100000, PB_OPT, PB_T_STRING, NULL, NULL, -1),
    };
    PbMessage *sparse = pbt_message("Sparse", fields, 3, 0);
    struct pb_blob file;
    struct pb_schema *s;
    char err[256];

    (void)state;
    file.p = pbt_pack_file("sparse.proto", "", "proto3", &sparse, 1, NULL, 0, NULL, 0, &file.len);
    assert_non_null(s = pb_schema_load(&file, 1, err, sizeof err));
    /* field 5000 is unknown: skipped; members in declaration order */
    assert_string_equal(decode_path(s, (const int32_t[]){ 0 }, 1,
            "\x08\x01\x82\xea\x30\x01\x78\xf8\xff\xff\xff\x0f\x07\xc0\xb8\x02\x01", 17),
            "{\"c\":7,\"a\":1,\"b\":\"x\"}");
    assert_string_equal(decode_path(s, (const int32_t[]){ 0 }, 1, "\x80\x80\x80\x80\x10", 5),
            "error: invalid field number 536870912 at byte 6");
    pb_schema_free(s);
    free((void *)file.p);
}

static void test_load_errors(void **state)
{
    struct pb_blob garbage = { (const uint8_t *)"\x0a\x05" "ab", 4 };
    uint8_t deep[200];
    struct pb_blob nested = { deep, 0 };
    PbField *dup_fields[] = {
        pbt_field("a", 1, PB_OPT, PB_T_INT32, NULL, NULL, -1),
        pbt_field("b", 1, PB_OPT, PB_T_INT32, NULL, NULL, -1),
    };
    PbField *group_fields[] = { pbt_field("g", 1, PB_OPT, PB_T_GROUP, ".G", NULL, -1) };
    PbMessage *dup = pbt_message("Dup", dup_fields, 2, 0), *g = pbt_message("G", group_fields, 1, 0), *bad_name;
    struct pb_blob file;
    char err[256];

    (void)state;
    assert_null(pb_schema_load(&garbage, 1, err, sizeof err));
    assert_string_equal(err, "FileDescriptorProto 0 (4 bytes) is not a valid descriptor");
    assert_null(pb_schema_load(NULL, 0, err, sizeof err));
    assert_string_equal(err, "no FileDescriptorProto");

    /* message_type { nested_type { nested_type ... } } 40 deep: refused before protobuf-c recurses */
    for (size_t i = 0; i < 40; i++) {
        deep[2 * i] = i == 0 ? 0x22 : 0x1a;             /* FileDescriptorProto.message_type, then nested_type */
        deep[2 * i + 1] = (uint8_t)(2 * (40 - i - 1));
    }
    nested.len = 80;
    assert_null(pb_schema_load(&nested, 1, err, sizeof err));
    assert_string_equal(err, "FileDescriptorProto 0: nested deeper than 32 or holds a group");

    /* names go into the JSON as they are: identifiers only, json_name valid UTF-8 */
    bad_name = pbt_message("X", (PbField *[]){ pbt_field("bad-name", 1, PB_OPT, PB_T_INT32, NULL, NULL, -1) }, 1, 0);
    file.p = pbt_pack_file("x.proto", "", "proto3", &bad_name, 1, NULL, 0, NULL, 0, &file.len);
    assert_null(pb_schema_load(&file, 1, err, sizeof err));
    assert_string_equal(err, "field name or json_name is not a valid name: X.bad-name");
    free((void *)file.p);
    bad_name = pbt_message("X", (PbField *[]){ pbt_field("a", 1, PB_OPT, PB_T_INT32, NULL, "\xff", -1) }, 1, 0);
    file.p = pbt_pack_file("x.proto", "", "proto3", &bad_name, 1, NULL, 0, NULL, 0, &file.len);
    assert_null(pb_schema_load(&file, 1, err, sizeof err));
    assert_string_equal(err, "field name or json_name is not a valid name: X.a");
    free((void *)file.p);
    bad_name = pbt_message("X", NULL, 0, 0);
    file.p = pbt_pack_file("x.proto", "a..b", "proto3", &bad_name, 1, NULL, 0, NULL, 0, &file.len);
    assert_null(pb_schema_load(&file, 1, err, sizeof err));
    assert_string_equal(err, "package is not a valid name in: x.proto");
    free((void *)file.p);

    file.p = pbt_pack_file("dup.proto", "", "proto3", &dup, 1, NULL, 0, NULL, 0, &file.len);
    assert_null(pb_schema_load(&file, 1, err, sizeof err));
    assert_string_equal(err, "field number used twice: Dup.b");
    free((void *)file.p);
    file.p = pbt_pack_file("g.proto", "", "proto2", &g, 1, NULL, 0, NULL, 0, &file.len);
    assert_null(pb_schema_load(&file, 1, err, sizeof err));
    assert_string_equal(err, "proto2 groups are not supported: G.g");
    free((void *)file.p);
}

/* A cap on the output buffer stops a decode that would pass it; a small error buffer keeps the offset. */
static void test_output_cap(void **state)
{
    uint8_t value[] = { 0, 0, 0, 0, 1, 0, 0x0a, 0x05, 'h', 'e', 'l', 'l', 'o' };
    struct buf out;
    char err[256];

    (void)state;
    buf_init(&out, 8);
    assert_int_equal(pb_decode_json(shop, (const int32_t[]){ 0 }, 1, value, sizeof value, 6, &out, err, sizeof err), -1);
    assert_string_equal(err, "decoded JSON is larger than the output cap (or out of memory) at byte 6");
    buf_free(&out);

    /* a reason too long for the caller's buffer is cut, never its offset */
    value[7] = 0x00;
    value[6] = 0x1a;
    assert_int_equal(pb_decode_json(shop, (const int32_t[]){ 0 }, 1, value, 8, 6, &out, err, 30), -1);
    assert_string_equal(err, "field shop.Order.qt at byte 6");
    buf_free(&out);
}

/* ---- golden records from the real Confluent JS serializer ----
 * tests/fixtures/registry/ (made by another piece of issue 13): NAME.bin (the framed value),
 * NAME.expected.json (its proto3 JSON from @bufbuild/protobuf toJson) and registry-state.json, the
 * dump of tools/schema-registry (registry-tool branch, tools/common/registry_state.h):
 *   {"schemas":[{"id":1,"schemaType":"PROTOBUF","schema":"...","references":[{"name":..,
 *     "subject":..,"version":1}],"serialized":"base64 FileDescriptorProto"}], "subjects":{"s":[1,3]}}
 * A Protobuf schema needs its base64 FileDescriptorProto (sluice reads no .proto text): "serialized"
 * when the dump has one, else "schema" itself (the JS client registers the base64 form); its references,
 * and theirs, come after it as files[1..]. Avro and JSON records are passed over. Numbers are
 * compared as numbers (a float widened to double by JS and printed shortest as a float here
 * agree to float precision). */
static size_t base64_decode(const char *in, uint8_t *out)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;

    for (; *in && *in != '='; in++) {
        const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *at = strchr(abc, *in);
        if (!at)
            continue;
        acc = acc << 6 | (uint32_t)(at - abc);
        if ((bits += 6) >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

static int json_close(json_t *a, json_t *b)
{
    size_t i;
    const char *key;
    json_t *v;

    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x == y || fabs(x - y) <= 1e-6 * fabs(y);
    }
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        json_array_foreach(a, i, v)
            if (!json_close(v, json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach(a, key, v)
            if (!json_object_get(b, key) || !json_close(v, json_object_get(b, key)))
                return 0;
        return 1;
    }
    return json_equal(a, b);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
            (p = malloc((size_t)n + 1)) && fread(p, 1, (size_t)n, f) == (size_t)n)
        *len = (size_t)n;
    else {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

static json_t *golden_schema(json_t *registry, json_int_t id)
{
    size_t i;
    json_t *entry;

    json_array_foreach(json_object_get(registry, "schemas"), i, entry)
        if (json_integer_value(json_object_get(entry, "id")) == id)
            return entry;
    return NULL;
}

enum { GOLDEN_MAX_FILES = 16 };

/* The schema's descriptor, then its references' (breadth first, each once). */
static size_t golden_files(json_t *registry, json_t *entry, const char *name, json_t **files)
{
    size_t n = 0;

    files[n++] = entry;
    for (size_t at = 0; at < n; at++) {
        size_t i;
        json_t *ref;
        json_array_foreach(json_object_get(files[at], "references"), i, ref) {
            json_t *ids = json_object_get(json_object_get(registry, "subjects"),
                    json_string_value(json_object_get(ref, "subject")));
            json_int_t version = json_integer_value(json_object_get(ref, "version"));
            json_t *dep = version >= 1 ? golden_schema(registry, json_integer_value(json_array_get(ids, (size_t)version - 1))) : NULL;
            int seen = 0;
            if (!dep)
                fail_msg("%s: reference %s is not in registry-state.json", name, json_string_value(json_object_get(ref, "name")));
            for (size_t k = 0; k < n; k++)
                seen |= files[k] == dep;
            if (!seen && n < GOLDEN_MAX_FILES)
                files[n++] = dep;
        }
    }
    return n;
}

/* Decodes one golden record; 1 checked, 0 not Protobuf; fails the test on a mismatch. */
static int golden_one(json_t *registry, const char *dir, const char *name)
{
    char path[1024], err[256];
    size_t len = 0, nfiles, pos, nidx;
    uint8_t *value, *blobs[GOLDEN_MAX_FILES] = { 0 };
    struct pb_blob files[GOLDEN_MAX_FILES];
    json_t *entries[GOLDEN_MAX_FILES], *entry, *expected, *got;
    struct wire_frame frame;
    int32_t idx[WIRE_MAX_INDEXES];
    struct pb_schema *s;
    struct buf out;

    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    assert_non_null(value = read_file(path, &len));
    assert_int_equal(wire_parse(value, len, &frame, err, sizeof err), 0);
    entry = golden_schema(registry, frame.schema_id);
    if (!entry)
        fail_msg("%s: schema %u is not in registry-state.json", name, frame.schema_id);
    if (!json_is_string(json_object_get(entry, "schemaType")) ||
            strcmp(json_string_value(json_object_get(entry, "schemaType")), "PROTOBUF") != 0) {
        free(value);
        return 0;
    }
    nfiles = golden_files(registry, entry, name, entries);
    for (size_t i = 0; i < nfiles; i++) {
        const char *b64 = json_string_value(json_object_get(entries[i], "serialized"));
        if (!b64)
            b64 = json_string_value(json_object_get(entries[i], "schema"));
        if (!b64)
            fail_msg("%s: schema %lld has no \"serialized\" or \"schema\" (base64 FileDescriptorProto)", name,
                    (long long)json_integer_value(json_object_get(entries[i], "id")));
        blobs[i] = malloc(strlen(b64) + 1);
        files[i] = (struct pb_blob){ blobs[i], base64_decode(b64, blobs[i]) };
    }
    s = pb_schema_load(files, nfiles, err, sizeof err);
    if (!s)
        fail_msg("%s: schema %u: %s", name, frame.schema_id, err);
    pos = frame.payload;
    assert_int_equal(wire_proto_indexes(value, len, &pos, idx, &nidx, err, sizeof err), 0);
    buf_init(&out, 0);
    if (pb_decode_json(s, idx, nidx, value, len, pos, &out, err, sizeof err) != 0)
        fail_msg("%s: %s", name, err);
    snprintf(path, sizeof path, "%s/%s.expected.json", dir, name);
    expected = json_load_file(path, 0, NULL);
    got = json_loads(out.p, 0, NULL);
    assert_non_null(expected);
    assert_non_null(got);
    if (!json_close(got, expected))
        fail_msg("%s: got %s", name, out.p);
    json_decref(got);
    json_decref(expected);
    buf_free(&out);
    pb_schema_free(s);
    for (size_t i = 0; i < nfiles; i++)
        free(blobs[i]);
    free(value);
    return 1;
}

static void test_golden(void **state)
{
    const char *dir = "../fixtures/registry";
    char path[1024];
    json_t *registry;
    DIR *d;
    struct dirent *e;
    int checked = 0;

    (void)state;
    snprintf(path, sizeof path, "%s/registry-state.json", dir);
    if (!(d = opendir(dir)) || !(registry = json_load_file(path, 0, NULL))) {
        if (d)
            closedir(d);
        fprintf(stderr, "test_golden: skipped, %s/ with registry-state.json is not here\n", dir);
        skip();
        return;
    }
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        char name[256];
        if (n < 5 || n >= sizeof name || strcmp(e->d_name + n - 4, ".bin") != 0)
            continue;
        memcpy(name, e->d_name, n - 4);
        name[n - 4] = '\0';
        checked += golden_one(registry, dir, name);
    }
    closedir(d);
    json_decref(registry);
    fprintf(stderr, "test_golden: %d Protobuf records matched their expected JSON\n", checked);
    assert_true(checked > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_last_one_wins),
        cmocka_unit_test(test_repeated_and_maps),
        cmocka_unit_test(test_well_known_types),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_message_indexes),
        cmocka_unit_test(test_proto2_and_references),
        cmocka_unit_test(test_sparse_numbers),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_golden),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
