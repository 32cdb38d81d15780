/* lib/avro.c, lib/avro_schema.c: every type and logical type from hand-built bytes to the exact
 * JSON; every malformed datum and schema to its exact reason; the golden fixtures of the real
 * Confluent serializer when tests/fixtures/registry/ is there. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "lib/avro.h"

/* ---- building datums ---- */

struct enc {
    uint8_t b[32768];
    size_t n;
};

static void put_raw(struct enc *e, const void *p, size_t n)
{
    assert_true(e->n + n <= sizeof e->b);
    memcpy(e->b + e->n, p, n);
    e->n += n;
}

static void put_varint(struct enc *e, uint64_t u)
{
    do {
        uint8_t byte = (uint8_t)(u & 0x7f);

        u >>= 7;
        if (u)
            byte |= 0x80;
        put_raw(e, &byte, 1);
    } while (u);
}

static void put_long(struct enc *e, int64_t v)
{
    put_varint(e, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_str(struct enc *e, const char *s)
{
    put_long(e, (int64_t)strlen(s));
    put_raw(e, s, strlen(s));
}

static void put_bytes(struct enc *e, const void *p, size_t n)
{
    put_long(e, (int64_t)n);
    put_raw(e, p, n);
}

static void put_float(struct enc *e, float f)
{
    put_raw(e, &f, 4);      /* little-endian machine, as Avro */
}

static void put_double(struct enc *e, double d)
{
    put_raw(e, &d, 8);
}

/* ---- checking ---- */

static struct avro_schema *compile_ok(const char *json)
{
    char err[256] = "";
    struct avro_schema *s = avro_schema_compile(json, strlen(json), NULL, 0, err, sizeof err);

    if (!s)
        fail_msg("schema %s: %s", json, err);
    return s;
}

static void expect_json_opts(const char *schema, const uint8_t *bytes, size_t n, int iso, const char *want)
{
    struct avro_schema *s = compile_ok(schema);
    struct avro_decode_opts opts = { .timestamps_iso = iso };
    struct buf out = { 0 };
    char err[256] = "";

    if (avro_decode_json(s, bytes, n, 0, &opts, &out, err, sizeof err) != 0)
        fail_msg("decode: %s", err);
    assert_string_equal(out.p, want);
    assert_int_equal(out.len, strlen(want));
    buf_free(&out);
    avro_schema_free(s);
}

static void expect_json(const char *schema, const struct enc *e, const char *want)
{
    expect_json_opts(schema, e->b, e->n, 0, want);
}

static void expect_error_at(const char *schema, const uint8_t *bytes, size_t n, size_t start, const char *want)
{
    struct avro_schema *s = compile_ok(schema);
    struct buf out = { 0 };
    char err[256] = "";

    buf_adds(&out, "kept");
    assert_int_equal(avro_decode_json(s, bytes, n, start, NULL, &out, err, sizeof err), -1);
    assert_string_equal(err, want);
    assert_string_equal(out.p, "kept");     /* the output is as it was before the call */
    buf_free(&out);
    avro_schema_free(s);
}

static void expect_error(const char *schema, const struct enc *e, const char *want)
{
    expect_error_at(schema, e->b, e->n, 0, want);
}

static void expect_schema_error(const char *schema, const char *want)
{
    char err[256] = "";

    assert_null(avro_schema_compile(schema, strlen(schema), NULL, 0, err, sizeof err));
    assert_string_equal(err, want);
}

/* ---- types ---- */

static void test_primitives(void **state)
{
    struct enc e = { 0 };
    (void)state;

    put_raw(&e, "\x01", 1);
    put_long(&e, -3);
    put_long(&e, INT64_MAX);
    put_float(&e, 0.1f);
    put_double(&e, 0.1);
    put_bytes(&e, "foo", 3);
    put_str(&e, "\xc3\xa9\"\n\x01\\/");
    expect_json("{\"type\":\"record\",\"name\":\"P\",\"fields\":["
                "{\"name\":\"n\",\"type\":\"null\"},{\"name\":\"b\",\"type\":\"boolean\"},"
                "{\"name\":\"i\",\"type\":\"int\"},{\"name\":\"l\",\"type\":\"long\"},"
                "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"},"
                "{\"name\":\"by\",\"type\":\"bytes\"},{\"name\":\"s\",\"type\":{\"type\":\"string\"}}]}",
                &e, "{\"n\":null,\"b\":true,\"i\":-3,\"l\":9223372036854775807,\"f\":0.1,\"d\":0.1,"
                    "\"by\":\"Zm9v\",\"s\":\"\xc3\xa9\\\"\\n\\u0001\\\\/\"}");

    /* top-level primitives, and the extremes of int and long */
    e.n = 0;
    put_long(&e, INT32_MIN);
    expect_json("\"int\"", &e, "-2147483648");
    e.n = 0;
    put_long(&e, INT64_MIN);
    expect_json("{\"type\":\"long\"}", &e, "-9223372036854775808");
    expect_json_opts("\"null\"", (const uint8_t *)"", 0, 0, "null");
    expect_json_opts("\"boolean\"", (const uint8_t *)"\x00", 1, 0, "false");
}

static void test_floats(void **state)
{
    static const double doubles[] = { 1e300, 0.30000000000000004, -0.0, 5.0, 1.0 / 3, 0.0 / 0.0, 1.0 / 0.0, -1.0 / 0.0 };
    static const float floats[] = { 3.4028235e38f, 1.0f / 3, 0.0f / 0.0f, -1.0f / 0.0f };
    struct enc e = { 0 };
    (void)state;

    put_long(&e, 8);
    for (size_t i = 0; i < 8; i++)
        put_double(&e, doubles[i]);
    put_long(&e, 0);
    expect_json("{\"type\":\"array\",\"items\":\"double\"}", &e,
                "[1e+300,0.30000000000000004,-0,5,0.3333333333333333,\"NaN\",\"Infinity\",\"-Infinity\"]");
    e.n = 0;
    put_long(&e, 4);
    for (size_t i = 0; i < 4; i++)
        put_float(&e, floats[i]);
    put_long(&e, 0);
    expect_json("{\"type\":\"array\",\"items\":\"float\"}", &e, "[3.4028235e+38,0.33333334,\"NaN\",\"-Infinity\"]");
}

static void test_bytes_base64(void **state)
{
    struct enc e = { 0 };
    (void)state;

    put_long(&e, 5);
    put_bytes(&e, "", 0);
    put_bytes(&e, "f", 1);
    put_bytes(&e, "fo", 2);
    put_bytes(&e, "foo", 3);
    put_bytes(&e, "\xfb\xff\xbf", 3);
    put_long(&e, 0);
    expect_json("{\"type\":\"array\",\"items\":\"bytes\"}", &e, "[\"\",\"Zg==\",\"Zm8=\",\"Zm9v\",\"+/+/\"]");
}

static const char order_schema[] =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},"
    "{\"name\":\"status\",\"type\":{\"type\":\"enum\",\"name\":\"Status\",\"symbols\":[\"NEW\",\"PAID\"]}},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"int\"}},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"hash\",\"type\":{\"type\":\"fixed\",\"name\":\"H\",\"size\":3}},"
    "{\"name\":\"customer\",\"type\":{\"type\":\"record\",\"name\":\"Customer\",\"fields\":["
    "  {\"name\":\"name\",\"type\":\"string\"},{\"name\":\"prev\",\"type\":[\"null\",\"Status\"]}]}},"
    "{\"name\":\"again\",\"type\":\"shop.Customer\"},"
    "{\"name\":\"either\",\"type\":[\"int\",\"string\",\"H\"]}]}";

static void test_complex_types(void **state)
{
    struct enc e = { 0 };
    (void)state;

    put_long(&e, 7);
    put_long(&e, 1);                    /* PAID */
    put_long(&e, -2);                   /* a block of 2 items, 4 bytes */
    put_long(&e, 4);
    put_str(&e, "a");
    put_str(&e, "b");
    put_long(&e, 0);
    put_long(&e, 1);
    put_str(&e, "k\"");
    put_long(&e, 2);
    put_long(&e, 1);
    put_str(&e, "x");
    put_long(&e, 0);
    put_long(&e, 0);
    put_long(&e, 1);
    put_str(&e, "hi");
    put_raw(&e, "\x01\x02\x03", 3);
    put_str(&e, "Al");
    put_long(&e, 1);
    put_long(&e, 0);
    put_str(&e, "");
    put_long(&e, 0);
    put_long(&e, 2);
    put_raw(&e, "abc", 3);
    expect_json(order_schema, &e,
                "{\"id\":7,\"status\":\"PAID\",\"tags\":[\"a\",\"b\"],\"attrs\":{\"k\\\"\":2,\"x\":0},\"note\":\"hi\","
                "\"hash\":\"AQID\",\"customer\":{\"name\":\"Al\",\"prev\":\"NEW\"},\"again\":{\"name\":\"\",\"prev\":null},"
                "\"either\":\"YWJj\"}");
}

static const char list_schema[] =
    "{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"v\",\"type\":\"int\"},"
    "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}";

static void test_recursive_and_depth(void **state)
{
    struct enc e = { 0 };
    char want[64 * 20], *w = want;
    (void)state;

    put_long(&e, 1);
    put_long(&e, 1);
    put_long(&e, 2);
    put_long(&e, 0);
    expect_json(list_schema, &e, "{\"v\":1,\"next\":{\"v\":2,\"next\":null}}");

    /* 64 records deep is the limit; the 65th, at byte 128, is refused */
    e.n = 0;
    for (int i = 0; i < 64; i++) {
        put_long(&e, 0);
        put_long(&e, i < 63);
        w += sprintf(w, "{\"v\":0,\"next\":%s", i < 63 ? "" : "null");
    }
    for (int i = 0; i < 64; i++)
        *w++ = '}';
    *w = '\0';
    expect_json(list_schema, &e, want);
    e.n = 0;
    for (int i = 0; i < 65; i++) {
        put_long(&e, 0);
        put_long(&e, 1);
    }
    expect_error(list_schema, &e, "data nested deeper than 64 levels at byte 128");
}

static void test_names_and_references(void **state)
{
    static const char address[] = "{\"type\":\"record\",\"name\":\"Address\",\"namespace\":\"com.x\","
                                  "\"fields\":[{\"name\":\"city\",\"type\":\"string\"}]}";
    static const char customer[] = "{\"type\":\"record\",\"name\":\"Customer\",\"namespace\":\"com.x\",\"fields\":["
                                   "{\"name\":\"home\",\"type\":\"Address\"},{\"name\":\"work\",\"type\":\"com.x.Address\"},"
                                   "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"other.Kind\",\"symbols\":[\"A\"]}},"
                                   "{\"name\":\"k2\",\"type\":\"other.Kind\"}]}";
    struct avro_named_schema refs[] = { { address, sizeof address - 1 } };
    char err[256] = "";
    struct avro_schema *s;
    struct buf out = { 0 };
    struct enc e = { 0 };
    (void)state;

    put_str(&e, "Oslo");
    put_str(&e, "Bergen");
    put_long(&e, 0);
    put_long(&e, 0);
    s = avro_schema_compile(customer, sizeof customer - 1, refs, 1, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(avro_decode_json(s, e.b, e.n, 0, NULL, &out, err, sizeof err), 0);
    assert_string_equal(out.p, "{\"home\":{\"city\":\"Oslo\"},\"work\":{\"city\":\"Bergen\"},\"kind\":\"A\",\"k2\":\"A\"}");
    buf_free(&out);
    avro_schema_free(s);

    /* without the reference, Address is unknown */
    expect_schema_error(customer, "$.fields[0].type: unknown type \"Address\"");
    refs[0].json = "{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"a\",\"type\":\"nope\"}]}";
    refs[0].len = strlen(refs[0].json);
    assert_null(avro_schema_compile(customer, sizeof customer - 1, refs, 1, err, sizeof err));
    assert_string_equal(err, "reference 0: $.fields[0].type: unknown type \"nope\"");
}

static void test_decimal(void **state)
{
    struct enc e = { 0 };
    uint8_t max[16], min[16], one[16];
    (void)state;

    put_long(&e, 6);
    put_bytes(&e, "\x04\xce", 2);     /* 1230 */
    put_bytes(&e, "\xfb\x32", 2);     /* -1230 */
    put_bytes(&e, "\xff", 1);         /* -1 */
    put_bytes(&e, "\x05", 1);
    put_bytes(&e, "", 0);
    put_bytes(&e, "\x00\x00\x80", 3); /* positive, with a zero byte before the sign bit */
    put_long(&e, 0);
    expect_json("{\"type\":\"array\",\"items\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":6,\"scale\":2}}",
                &e, "[12.30,-12.30,-0.01,0.05,0.00,1.28]");

    memset(max, 0xff, 16);
    max[0] = 0x7f;
    memset(min, 0, 16);
    min[0] = 0x80;
    memset(one, 0, 16);
    one[15] = 1;
    e.n = 0;
    put_long(&e, 3);
    put_raw(&e, max, 16);
    put_raw(&e, min, 16);
    put_raw(&e, one, 16);
    put_long(&e, 0);
    expect_json("{\"type\":\"array\",\"items\":{\"type\":\"fixed\",\"name\":\"D\",\"size\":16,"
                "\"logicalType\":\"decimal\",\"precision\":38,\"scale\":4}}", &e,
                "[17014118346046923173168730371588410.5727,-17014118346046923173168730371588410.5728,0.0001]");
    e.n = 0;
    put_raw(&e, max, 16);
    expect_json("{\"type\":\"fixed\",\"name\":\"D\",\"size\":16,\"logicalType\":\"decimal\",\"precision\":38}", &e,
                "170141183460469231731687303715884105727");

    /* invalid decimals fall back to the underlying type, as the spec says */
    e.n = 0;
    put_bytes(&e, "\x04\xce", 2);
    expect_json("{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":2,\"scale\":3}", &e, "\"BM4=\"");
    e.n = 0;
    put_raw(&e, "\x04\xce", 2);
    expect_json("{\"type\":\"fixed\",\"name\":\"F\",\"size\":2,\"logicalType\":\"decimal\",\"precision\":5}", &e, "\"BM4=\"");
    expect_schema_error("{\"type\":\"fixed\",\"name\":\"F\",\"size\":300,\"logicalType\":\"decimal\",\"precision\":700}",
                        "$: a decimal of 300 bytes is over this decoder's 256");
}

static const char times_schema[] =
    "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
    "{\"name\":\"d\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
    "{\"name\":\"tm\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"}},"
    "{\"name\":\"tu\",\"type\":{\"type\":\"long\",\"logicalType\":\"time-micros\"}},"
    "{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    "{\"name\":\"tsu\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
    "{\"name\":\"lts\",\"type\":{\"type\":\"long\",\"logicalType\":\"local-timestamp-millis\"}},"
    "{\"name\":\"ltu\",\"type\":{\"type\":\"long\",\"logicalType\":\"local-timestamp-micros\"}},"
    "{\"name\":\"neg\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    "{\"name\":\"far\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
    "{\"name\":\"zero\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}}]}";

static void test_times(void **state)
{
    struct enc e = { 0 };
    (void)state;

    put_long(&e, 20793);
    put_long(&e, 3723004);
    put_long(&e, 3723004005);
    put_long(&e, 1765000000123);
    put_long(&e, 1765000000123456);
    put_long(&e, 0);
    put_long(&e, 1);
    put_long(&e, -1);
    put_long(&e, 2932897);
    put_long(&e, -719528);
    expect_json_opts(times_schema, e.b, e.n, 0,
                     "{\"d\":20793,\"tm\":3723004,\"tu\":3723004005,\"ts\":1765000000123,\"tsu\":1765000000123456,"
                     "\"lts\":0,\"ltu\":1,\"neg\":-1,\"far\":2932897,\"zero\":-719528}");
    expect_json_opts(times_schema, e.b, e.n, 1,
                     "{\"d\":\"2026-12-06\",\"tm\":3723004,\"tu\":3723004005,\"ts\":\"2025-12-06T05:46:40.123Z\","
                     "\"tsu\":\"2025-12-06T05:46:40.123456Z\",\"lts\":\"1970-01-01T00:00:00.000\","
                     "\"ltu\":\"1970-01-01T00:00:00.000001\",\"neg\":\"1969-12-31T23:59:59.999Z\","
                     "\"far\":\"+010000-01-01\",\"zero\":\"0000-01-01\"}");
}

static void test_other_logical_types(void **state)
{
    struct enc e = { 0 };
    (void)state;

    put_str(&e, "6f1e2b1c-0000-4000-8000-000000000001");
    put_raw(&e, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16);
    put_raw(&e, "\x01\x00\x00\x00\x02\x00\x00\x00\xff\xff\xff\xff", 12);
    put_long(&e, -3);
    put_str(&e, "s");
    expect_json("{\"type\":\"record\",\"name\":\"L\",\"fields\":["
                "{\"name\":\"u\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
                "{\"name\":\"uf\",\"type\":{\"type\":\"fixed\",\"name\":\"U\",\"size\":16,\"logicalType\":\"uuid\"}},"
                "{\"name\":\"dur\",\"type\":{\"type\":\"fixed\",\"name\":\"Dur\",\"size\":12,\"logicalType\":\"duration\"}},"
                "{\"name\":\"unknown\",\"type\":{\"type\":\"int\",\"logicalType\":\"rainbow\"}},"
                "{\"name\":\"wrong\",\"type\":{\"type\":\"string\",\"logicalType\":\"date\"}}]}",
                &e, "{\"u\":\"6f1e2b1c-0000-4000-8000-000000000001\",\"uf\":\"00010203-0405-0607-0809-0a0b0c0d0e0f\","
                    "\"dur\":{\"months\":1,\"days\":2,\"milliseconds\":4294967295},\"unknown\":-3,\"wrong\":\"s\"}");
}

/* ---- malformed datums ---- */

static void test_malformed(void **state)
{
    struct enc e = { 0 };
    uint8_t ff[11];
    (void)state;

    memset(ff, 0xff, sizeof ff);
    expect_error_at("\"long\"", (const uint8_t *)"\x00\x00\x00\x00\x07\x80", 6, 5, "truncated varint at byte 5");
    expect_error_at("\"long\"", ff, 11, 0, "varint overflows 64 bits at byte 0");
    ff[9] = 0x02;
    expect_error_at("\"long\"", ff, 10, 0, "varint overflows 64 bits at byte 0");
    put_long(&e, (int64_t)INT32_MAX + 1);
    expect_error("\"int\"", &e, "int 2147483648 out of range at byte 0");
    expect_error_at("\"string\"", (const uint8_t *)"\x01", 1, 0, "negative string length -1 at byte 0");
    expect_error_at("[\"null\",\"string\"]", (const uint8_t *)"\x04", 1, 0, "union branch 2 out of range (2 branches) at byte 0");
    expect_error_at("[\"null\",\"string\"]", (const uint8_t *)"\x01", 1, 0, "union branch -1 out of range (2 branches) at byte 0");
    expect_error_at("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}", (const uint8_t *)"\x04", 1, 0,
                    "enum index 2 out of range (2 symbols) at byte 0");
    expect_error_at("\"string\"", (const uint8_t *)"\x06" "ab\xff", 4, 0, "string is not valid UTF-8 at byte 3");
    expect_error_at("\"string\"", (const uint8_t *)"\x06" "a\xed\xa0\x80", 5, 0, "string is not valid UTF-8 at byte 2");
    expect_error_at("{\"type\":\"map\",\"values\":\"int\"}", (const uint8_t *)"\x02\x02\xc3\x00\x00", 5, 0,
                    "map key is not valid UTF-8 at byte 2");
    expect_error_at("\"int\"", (const uint8_t *)"\x02\x00\x00", 3, 0, "2 trailing bytes after the datum at byte 1");
    expect_error_at("\"boolean\"", (const uint8_t *)"\x02", 1, 0, "invalid boolean byte 0x02 at byte 0");
    expect_error_at("\"boolean\"", (const uint8_t *)"", 0, 0, "truncated boolean at byte 0");
    expect_error_at("\"double\"", (const uint8_t *)"\x00\x00\x00", 3, 0, "truncated double at byte 0");
    expect_error_at("\"float\"", (const uint8_t *)"\x00\x00\x00", 3, 0, "truncated float at byte 0");
    expect_error_at("{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}", (const uint8_t *)"\x01\x02", 2, 0,
                    "fixed of 3 bytes exceeds the 2 bytes left at byte 0");
    expect_error_at("{\"type\":\"array\",\"items\":\"int\"}", (const uint8_t *)"\x14\x02\x02", 3, 0,
                    "array block count 10 exceeds the 2 bytes left at byte 0");
    expect_error_at("{\"type\":\"array\",\"items\":\"int\"}", (const uint8_t *)"\x01\xc8\x01\x02\x00", 5, 0,
                    "array block size 100 exceeds the 2 bytes left at byte 0");
    expect_error_at("{\"type\":\"map\",\"values\":\"null\"}", (const uint8_t *)"\x0a\x02", 2, 0,
                    "map block count 5 exceeds the 1 bytes left at byte 0");
    expect_error_at("\"int\"", (const uint8_t *)"\x00\x00\x00\x00\x07", 5, 6, "the datum's start 6 is past the value's 5 bytes");
    expect_error_at("\"int\"", (const uint8_t *)"\x00\x00\x00\x00\x07", 5, 5, "truncated varint at byte 5");
    e.n = 0;
    put_long(&e, 257);
    for (int i = 0; i < 257; i++)
        put_raw(&e, "\x01", 1);
    expect_error("{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":700}", &e,
                 "decimal of 257 bytes is over the limit of 256 at byte 0");
}

/* The header's "8 bytes claiming 2 GiB" case: refused before any allocation, even into a
 * buffer capped at 16 bytes. */
static void test_huge_length_claim(void **state)
{
    static const uint8_t value[] = { 0, 0, 0, 0, 7, 0xfe, 0xff, 0xff, 0xff, 0x0f, 'a', 'b', 'c' };
    struct avro_schema *s = compile_ok("\"string\"");
    struct buf out;
    char err[256];
    (void)state;

    buf_init(&out, 16);
    assert_int_equal(avro_decode_json(s, value, sizeof value, 5, NULL, &out, err, sizeof err), -1);
    assert_string_equal(err, "string length 2147483647 exceeds the 3 bytes left at byte 5");
    assert_int_equal(out.len, 0);
    assert_int_equal(out.oom, 0);
    buf_free(&out);
    expect_error_at("{\"type\":\"array\",\"items\":\"bytes\"}", (const uint8_t *)"\xfe\xff\xff\xff\x0f\x00", 6, 0,
                    "array block count 2147483647 exceeds the 1 bytes left at byte 0");
    avro_schema_free(s);
}

/* Values that take no bytes are capped per datum (a CPU bomb otherwise), across blocks, and
 * weighted by what they stand for. */
static void test_zero_size_values(void **state)
{
    struct enc e = { 0 };
    struct avro_schema *s = compile_ok("{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"E\",\"fields\":[]}}");
    struct buf out = { 0 }, schema = { 0 };
    char err[256];
    uint8_t *value;
    (void)state;

    put_long(&e, 3);
    put_long(&e, 0);
    assert_int_equal(avro_decode_json(s, e.b, e.n, 0, NULL, &out, err, sizeof err), 0);
    assert_string_equal(out.p, "[{},{},{}]");
    buf_free(&out);
    avro_schema_free(s);

    e.n = 0;
    put_long(&e, AVRO_MAX_ZERO_SIZE_VALUES);
    put_long(&e, 1);
    put_long(&e, 0);
    expect_error("{\"type\":\"array\",\"items\":\"null\"}", &e, "more than 1048576 values that take no bytes at byte 4");

    /* a record field of 1000 nulls (1001 values) in each item: 1047 items fit, the 1048th
     * item's field, at byte 2 + 1047 + 1, does not */
    buf_adds(&schema, "{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                      "{\"name\":\"x\",\"type\":\"int\"},{\"name\":\"z\",\"type\":{\"type\":\"record\",\"name\":\"Z\",\"fields\":[");
    for (int i = 0; i < 1000; i++)
        buf_printf(&schema, "%s{\"name\":\"n%d\",\"type\":\"null\"}", i ? "," : "", i);
    buf_adds(&schema, "]}}]}}");
    value = calloc(1, 2 + 1048 + 1);
    assert_non_null(value);
    value[0] = 0xb0;     /* 1048 */
    value[1] = 0x10;
    expect_error_at(schema.p, value, 2 + 1048 + 1, 0, "more than 1048576 values that take no bytes at byte 1050");
    free(value);
    buf_free(&schema);

    /* nulls in unions are paid for by the branch index */
    e.n = 0;
    put_long(&e, 20000);
    for (int i = 0; i < 20000; i++)
        put_long(&e, 0);
    put_long(&e, 0);
    s = compile_ok("{\"type\":\"array\",\"items\":[\"null\",\"int\"]}");
    assert_int_equal(avro_decode_json(s, e.b, e.n, 0, NULL, &out, err, sizeof err), 0);
    assert_int_equal(out.len, 2 + 20000 * 5 - 1);
    buf_free(&out);
    avro_schema_free(s);
}

/* ---- schema errors ---- */

static void test_schema_errors(void **state)
{
    char deep[4096], *p = deep;
    char err[256];
    (void)state;

    expect_schema_error("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
                        "{\"name\":\"b\",\"type\":\"int\"},{\"name\":\"c\",\"type\":\"strin\"}]}",
                        "$.fields[2].type: unknown type \"strin\"");
    expect_schema_error("{\"type\":\"record\",\"name\":\"R\"}", "$: a record needs a \"fields\" array");
    expect_schema_error("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
                        "{\"name\":\"a\",\"type\":\"int\"}]}", "$.fields[1]: field \"a\" is defined twice");
    expect_schema_error("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                        "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}}]}",
                        "$.fields[0].type: type \"R\" is defined twice");
    expect_schema_error("[\"null\",[\"int\"]]", "$[1]: a union cannot hold a union");
    expect_schema_error("[\"int\",\"int\"]", "$[1]: the union already has a branch of this type");
    expect_schema_error("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"1a\"]}", "$: enum symbol 0 must be letters, digits and '_'");
    expect_schema_error("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"A\"]}", "$: enum symbol \"A\" is defined twice");
    expect_schema_error("[\"null\",{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]},\"string\",\"E\"]",
                        "$[3]: the union already has a branch of this type");
    expect_schema_error("{\"type\":\"fixed\",\"name\":\"F\"}", "$: a fixed needs a \"size\" from 0 to 2147483647");
    expect_schema_error("{\"type\":\"record\",\"name\":\"int\",\"fields\":[]}", "$: invalid type name \"int\"");
    expect_schema_error("{\"type\":\"array\"}", "$: an array needs \"items\"");
    expect_schema_error("{\"type\":\"map\",\"values\":{\"type\":\"nope\"}}", "$.values.type: unknown type \"nope\"");
    expect_schema_error("42", "$: expected a type name, an object or an array");
    assert_null(avro_schema_compile("{\"type\":", 8, NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "$: invalid JSON at byte 8"));

    expect_schema_error("{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":700,\"scale\":641}",
                        "$: a decimal scale of 641 is over this decoder's 640");

    /* R(k) holds two R(k-1): 2^(k+2)-1 values that take no bytes; R19 is over the limit */
    {
        struct buf nested = { 0 }, inner = { 0 };

        buf_adds(&nested, "{\"type\":\"record\",\"name\":\"R0\",\"fields\":[{\"name\":\"a\",\"type\":\"null\"},"
                          "{\"name\":\"b\",\"type\":\"null\"}]}");
        for (int k = 1; k <= 19; k++) {
            buf_reset(&inner);
            buf_add(&inner, nested.p, nested.len);
            buf_reset(&nested);
            buf_printf(&nested, "{\"type\":\"record\",\"name\":\"R%d\",\"fields\":[{\"name\":\"a\",\"type\":%s},"
                                "{\"name\":\"b\",\"type\":\"R%d\"}]}", k, inner.p, k - 1);
        }
        expect_schema_error(nested.p, "$: a record that takes no bytes stands for more than 1048576 values");
        buf_free(&nested);
        buf_free(&inner);
    }
    p = deep;
    for (int i = 0; i < 70; i++)
        p += sprintf(p, "{\"type\":\"array\",\"items\":");
    p += sprintf(p, "\"int\"");
    for (int i = 0; i < 70; i++)
        *p++ = '}';
    *p = '\0';
    assert_null(avro_schema_compile(deep, strlen(deep), NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, ": the schema nests deeper than 64 levels"));
}

/* ---- golden fixtures of the real Confluent serializer (tests/fixtures/registry/) ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct buf b = { 0 };
    char chunk[4096];
    size_t n;

    if (!f)
        return NULL;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    return buf_steal(&b, len);
}

/* The first object under @p j with "key" equal to @p want (an integer id, or a string) that has
 * a "schema" string: the registry dump's format is the other tool's, so look for it by shape. */
static json_t *find_schema(json_t *j, const char *key, json_t *want)
{
    json_t *v, *found;
    const char *k;
    size_t i;

    if (json_is_object(j)) {
        if (json_is_string(json_object_get(j, "schema")) && json_equal(json_object_get(j, key), want))
            return j;
        json_object_foreach(j, k, v)
            if ((found = find_schema(v, key, want)))
                return found;
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            if ((found = find_schema(v, key, want)))
                return found;
    }
    return NULL;
}

/* The references of @p entry, depth first, into refs (their dependencies before them). */
static int collect_refs(json_t *state, json_t *entry, struct avro_named_schema *refs, size_t *nrefs, int depth)
{
    json_t *r;
    size_t i;

    if (depth > 8)
        return -1;
    json_array_foreach(json_object_get(entry, "references"), i, r) {
        /* tools/schema-registry's dump: "subjects" maps a subject to its ids, version k at k-1 */
        json_t *ids = json_object_get(json_object_get(state, "subjects"), json_string_value(json_object_get(r, "subject")));
        json_int_t version = json_integer_value(json_object_get(r, "version"));
        json_t *ref = version >= 1 ? find_schema(state, "id", json_array_get(ids, (size_t)version - 1)) : NULL;

        if (!ref || *nrefs >= 16 || collect_refs(state, ref, refs, nrefs, depth + 1) != 0)
            return -1;
        refs[*nrefs].json = json_string_value(json_object_get(ref, "schema"));
        refs[*nrefs].len = strlen(refs[*nrefs].json);
        (*nrefs)++;
    }
    return 0;
}

static void test_registry_fixtures(void **state)
{
    const char *dir = getenv("SLUICE_AVRO_FIXTURES") ? getenv("SLUICE_AVRO_FIXTURES") : "../fixtures/registry";
    char path[1024], err[256];
    json_t *index, *registry, *c;
    size_t i, checked = 0;
    (void)state;

    snprintf(path, sizeof path, "%s/index.json", dir);
    if (!(index = json_load_file(path, 0, NULL))) {
        print_message("no Avro golden fixtures at %s (SLUICE_AVRO_FIXTURES): skipped\n", path);
        skip();
    }
    snprintf(path, sizeof path, "%s/registry-state.json", dir);
    registry = json_load_file(path, 0, NULL);
    if (!registry)
        fail_msg("%s: unreadable", path);
    json_array_foreach(json_is_array(index) ? index : json_object_get(index, "cases"), i, c) {
        const char *name = json_string_value(json_object_get(c, "case"));
        const char *format = json_string_value(json_object_get(c, "format"));
        struct avro_named_schema refs[16];
        size_t nrefs = 0, bin_len, want_len;
        struct avro_schema *s;
        char *bin, *want_text;
        json_t *entry, *want = NULL, *got, *id;
        struct buf out = { 0 };

        if (!name || !format || strcasecmp(format, "avro") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s.bin", dir, name);
        if (!(bin = read_file(path, &bin_len)) || bin_len < 5)
            fail_msg("%s: unreadable or shorter than the 5-byte prefix", path);
        id = json_integer((json_int_t)((uint32_t)(uint8_t)bin[1] << 24 | (uint32_t)(uint8_t)bin[2] << 16 |
                                       (uint32_t)(uint8_t)bin[3] << 8 | (uint8_t)bin[4]));
        entry = find_schema(registry, "id", id);
        json_decref(id);
        if (!entry || collect_refs(registry, entry, refs, &nrefs, 0) != 0)
            fail_msg("case %s: schema or its references not found in registry-state.json", name);
        s = avro_schema_compile(json_string_value(json_object_get(entry, "schema")),
                                strlen(json_string_value(json_object_get(entry, "schema"))), refs, nrefs, err, sizeof err);
        if (!s)
            fail_msg("case %s: %s", name, err);
        if (avro_decode_json(s, (const uint8_t *)bin, bin_len, 5, NULL, &out, err, sizeof err) != 0)
            fail_msg("case %s: %s", name, err);
        snprintf(path, sizeof path, "%s/%s.expected.json", dir, name);
        if (!(want_text = read_file(path, &want_len)) || !(want = json_loadb(want_text, want_len, JSON_DECODE_ANY, NULL)))
            fail_msg("%s: unreadable", path);
        got = json_loadb(out.p, out.len, JSON_DECODE_ANY, NULL);
        if (!got || !json_equal(got, want))
            fail_msg("case %s: got %s\nwant %s", name, out.p, want_text);
        json_decref(got);
        json_decref(want);
        free(want_text);
        free(bin);
        buf_free(&out);
        avro_schema_free(s);
        checked++;
    }
    print_message("%zu Avro golden fixtures decoded as expected\n", checked);
    assert_true(checked > 0);
    json_decref(registry);
    json_decref(index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primitives),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_bytes_base64),
        cmocka_unit_test(test_complex_types),
        cmocka_unit_test(test_recursive_and_depth),
        cmocka_unit_test(test_names_and_references),
        cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_other_logical_types),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_huge_length_claim),
        cmocka_unit_test(test_zero_size_values),
        cmocka_unit_test(test_schema_errors),
        cmocka_unit_test(test_registry_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
