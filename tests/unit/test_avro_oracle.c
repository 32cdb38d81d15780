/* lib/avro.c against avro-c (Debian's libavro, linked to this test only): random datums for a
 * few schemas are built and written with avro-c, read back with avro-c and with sluice's
 * decoder, and the two must agree. avro-c has no plain-JSON output of its own (its
 * avro_value_to_json wraps unions and writes bytes as \u00XX), so its value is walked here into
 * the plain JSON sluice promises: unions bare, bytes and fixed base64, enums by symbol, NaN and
 * the infinities as strings. Every proper prefix of a datum must be refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <avro.h>

#include "lib/avro.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Integers that exercise every varint length: random widths, both signs. */
static int64_t rnd_long(void)
{
    unsigned bits = (unsigned)(rnd() % 64);
    int64_t v = (int64_t)(rnd() >> (63 - bits) >> 1);

    return rnd() & 1 ? -v - 1 : v;
}

static double rnd_double(void)
{
    static const double special[] = { 0.0, -0.0, 1.0, 0.1, 1e308, 5e-324, NAN, INFINITY, -INFINITY };
    uint64_t bits = rnd();
    double d;

    if (rnd() % 4 == 0)
        return special[rnd() % (sizeof special / sizeof *special)];
    if (rnd() % 2)
        return (double)rnd_long() / 1000.0;
    memcpy(&d, &bits, 8);
    return d;
}

/* Text with ASCII, escapes, 2-, 3- and 4-byte UTF-8. */
static size_t rnd_text(char *s, size_t max)
{
    static const char *const pieces[] = { "a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f", "\x7f",
                                          "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbf" };
    size_t n = 0, want = rnd() % 12;

    for (size_t i = 0; i < want; i++) {
        const char *p = pieces[rnd() % (sizeof pieces / sizeof *pieces)];

        if (n + strlen(p) >= max)
            break;
        memcpy(s + n, p, strlen(p));
        n += strlen(p);
    }
    s[n] = '\0';
    return n;
}

/* Fill @p v (of a generic class) with random content; depth bounds recursive schemas. */
static void fill(avro_value_t *v, int depth)
{
    avro_schema_t schema = avro_value_get_schema(v);
    avro_value_t child;
    char text[64];
    size_t n = 0, i;

    switch (avro_value_get_type(v)) {
    case AVRO_NULL: assert_int_equal(avro_value_set_null(v), 0); break;
    case AVRO_BOOLEAN: assert_int_equal(avro_value_set_boolean(v, (int)(rnd() & 1)), 0); break;
    case AVRO_INT32: assert_int_equal(avro_value_set_int(v, (int32_t)rnd_long()), 0); break;
    case AVRO_INT64: assert_int_equal(avro_value_set_long(v, rnd_long()), 0); break;
    case AVRO_FLOAT: assert_int_equal(avro_value_set_float(v, (float)rnd_double()), 0); break;
    case AVRO_DOUBLE: assert_int_equal(avro_value_set_double(v, rnd_double()), 0); break;
    case AVRO_STRING:
        n = rnd_text(text, sizeof text);
        assert_int_equal(avro_value_set_string_len(v, text, n + 1), 0);
        break;
    case AVRO_BYTES:
        n = rnd() % 9;
        for (i = 0; i < n; i++)
            text[i] = (char)rnd();
        assert_int_equal(avro_value_set_bytes(v, text, n), 0);
        break;
    case AVRO_FIXED:
        n = (size_t)avro_schema_fixed_size(schema);
        for (i = 0; i < n; i++)
            text[i] = (char)rnd();
        assert_int_equal(avro_value_set_fixed(v, text, n), 0);
        break;
    case AVRO_ENUM:
        assert_int_equal(avro_value_set_enum(v, (int)(rnd() % (uint64_t)avro_schema_enum_number_of_symbols(schema))), 0);
        break;
    case AVRO_RECORD:
        assert_int_equal(avro_value_get_size(v, &n), 0);
        for (i = 0; i < n; i++) {
            assert_int_equal(avro_value_get_by_index(v, i, &child, NULL), 0);
            fill(&child, depth + 1);
        }
        break;
    case AVRO_ARRAY:
        for (n = depth > 4 ? 0 : rnd() % 4, i = 0; i < n; i++) {
            assert_int_equal(avro_value_append(v, &child, NULL), 0);
            fill(&child, depth + 1);
        }
        break;
    case AVRO_MAP:
        for (n = depth > 4 ? 0 : rnd() % 4, i = 0; i < n; i++) {
            snprintf(text, sizeof text, "k%zu\xc3\xa9\"", i);
            assert_int_equal(avro_value_add(v, text, &child, NULL, NULL), 0);
            fill(&child, depth + 1);
        }
        break;
    case AVRO_UNION:
        /* deep in a recursive schema, take branch 0 (null, by the schemas' convention) */
        i = depth > 6 ? 0 : rnd() % avro_schema_union_size(schema);
        assert_int_equal(avro_value_set_branch(v, (int)i, &child), 0);
        fill(&child, depth + 1);
        break;
    default:
        fail_msg("type %d not generated", (int)avro_value_get_type(v));
    }
}

static json_t *base64_json(const uint8_t *s, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char text[128];
    size_t o = 0;

    assert_true(n <= 64);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);

        text[o++] = alphabet[v >> 18];
        text[o++] = alphabet[(v >> 12) & 63];
        text[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        text[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    return json_stringn(text, o);
}

static json_t *real_json(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

/* avro-c's value as the plain JSON sluice promises. */
static json_t *to_json(avro_value_t *v)
{
    avro_value_t child;
    const char *name;
    /* avro-c's getters are macros that may skip the call: start from zero */
    const void *p = NULL;
    size_t n = 0, i;
    int32_t i32 = 0;
    int64_t i64 = 0;
    float f = 0;
    double d = 0;
    int b = 0;
    json_t *j;

    switch (avro_value_get_type(v)) {
    case AVRO_NULL: return json_null();
    case AVRO_BOOLEAN: avro_value_get_boolean(v, &b); return json_boolean(b);
    case AVRO_INT32: avro_value_get_int(v, &i32); return json_integer(i32);
    case AVRO_INT64: avro_value_get_long(v, &i64); return json_integer(i64);
    case AVRO_FLOAT: avro_value_get_float(v, &f); return real_json(f);
    case AVRO_DOUBLE: avro_value_get_double(v, &d); return real_json(d);
    case AVRO_STRING: avro_value_get_string(v, (const char **)&p, &n); return json_stringn(p, n - 1);
    case AVRO_BYTES: avro_value_get_bytes(v, &p, &n); return base64_json(p, n);
    case AVRO_FIXED: avro_value_get_fixed(v, &p, &n); return base64_json(p, n);
    case AVRO_ENUM:
        avro_value_get_enum(v, &b);
        return json_string(avro_schema_enum_get(avro_value_get_schema(v), b));
    case AVRO_UNION: avro_value_get_current_branch(v, &child); return to_json(&child);
    case AVRO_RECORD:
    case AVRO_MAP:
        j = json_object();
        avro_value_get_size(v, &n);
        for (i = 0; i < n; i++) {
            avro_value_get_by_index(v, i, &child, &name);
            json_object_set_new(j, name, to_json(&child));
        }
        return j;
    case AVRO_ARRAY:
        j = json_array();
        avro_value_get_size(v, &n);
        for (i = 0; i < n; i++) {
            avro_value_get_by_index(v, i, &child, NULL);
            json_array_append_new(j, to_json(&child));
        }
        return j;
    default:
        fail_msg("type %d not converted", (int)avro_value_get_type(v));
    }
    return NULL;
}

/* Equal JSON, numbers by value (sluice prints 5.0 as 5, which jansson reads as an integer),
 * a float's shortest text equal when it reads back to the same float. */
static int same(json_t *want, json_t *got)
{
    if (json_is_number(want) && json_is_number(got)) {
        double a = json_number_value(want), b = json_number_value(got);

        if (json_is_integer(want) && json_is_integer(got))
            return json_integer_value(want) == json_integer_value(got);
        return a == b || ((double)(float)a == a && (float)b == (float)a);
    }
    if (json_typeof(want) != json_typeof(got))
        return 0;
    if (json_is_array(want)) {
        if (json_array_size(want) != json_array_size(got))
            return 0;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!same(json_array_get(want, i), json_array_get(got, i)))
                return 0;
        return 1;
    }
    if (json_is_object(want)) {
        const char *k;
        json_t *v;

        if (json_object_size(want) != json_object_size(got))
            return 0;
        json_object_foreach(want, k, v)
            if (!json_object_get(got, k) || !same(v, json_object_get(got, k)))
                return 0;
        return 1;
    }
    return json_equal(want, got);
}

static void differential(const char *schema_json, int rounds)
{
    char err[256], wire[16384];
    avro_schema_t cs;
    avro_value_iface_t *iface;
    struct avro_schema *s = avro_schema_compile(schema_json, strlen(schema_json), NULL, 0, err, sizeof err);
    struct buf out = { 0 };

    if (!s)
        fail_msg("sluice: %s", err);
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &cs) != 0)
        fail_msg("avro-c: %s", avro_strerror());
    iface = avro_generic_class_from_schema(cs);
    assert_non_null(iface);
    for (int round = 0; round < rounds; round++) {
        avro_value_t v, back;
        avro_writer_t w = avro_writer_memory(wire, sizeof wire);
        avro_reader_t r;
        json_t *want, *got;
        size_t len;

        assert_int_equal(avro_generic_value_new(iface, &v), 0);
        fill(&v, 0);
        assert_int_equal(avro_value_write(w, &v), 0);
        len = (size_t)avro_writer_tell(w);
        avro_writer_free(w);

        /* avro-c reads its own bytes back: that value is the oracle */
        assert_int_equal(avro_generic_value_new(iface, &back), 0);
        r = avro_reader_memory(wire, (int64_t)len);
        assert_int_equal(avro_value_read(r, &back), 0);
        avro_reader_free(r);
        want = to_json(&back);

        buf_reset(&out);
        if (avro_decode_json(s, (const uint8_t *)wire, len, 0, NULL, &out, err, sizeof err) != 0)
            fail_msg("round %d: sluice refused avro-c's datum: %s", round, err);
        got = json_loadb(out.p, out.len, JSON_DECODE_ANY, NULL);
        if (!got || !same(want, got)) {
            char *w_text = json_dumps(want, JSON_ENCODE_ANY | JSON_COMPACT);

            fail_msg("round %d:\n avro-c: %s\n sluice: %s", round, w_text, out.p);
        }
        /* every proper prefix is refused, with a reason */
        for (size_t cut = 0; cut < len; cut++) {
            buf_reset(&out);
            assert_int_equal(avro_decode_json(s, (const uint8_t *)wire, cut, 0, NULL, &out, err, sizeof err), -1);
            assert_non_null(strstr(err, " at byte "));
        }
        json_decref(want);
        json_decref(got);
        avro_value_decref(&v);
        avro_value_decref(&back);
    }
    buf_free(&out);
    avro_value_iface_decref(iface);
    avro_schema_decref(cs);
    avro_schema_free(s);
}

static void test_all_types(void **state)
{
    (void)state;
    differential("{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":["
                 "{\"name\":\"n\",\"type\":\"null\"},{\"name\":\"b\",\"type\":\"boolean\"},{\"name\":\"i\",\"type\":\"int\"},"
                 "{\"name\":\"l\",\"type\":\"long\"},{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"},"
                 "{\"name\":\"by\",\"type\":\"bytes\"},{\"name\":\"s\",\"type\":\"string\"},"
                 "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Status\",\"symbols\":[\"NEW\",\"PAID\",\"GONE\"]}},"
                 "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"H\",\"size\":5}},"
                 "{\"name\":\"u\",\"type\":[\"null\",\"string\",\"long\",\"Status\",\"H\"]},"
                 "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
                 "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"double\"}}},"
                 "{\"name\":\"inner\",\"type\":{\"type\":\"record\",\"name\":\"Inner\",\"fields\":["
                 "  {\"name\":\"x\",\"type\":\"float\"},{\"name\":\"st\",\"type\":\"Status\"}]}}]}",
                 2000);
}

static void test_recursive(void **state)
{
    (void)state;
    differential("{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"v\",\"type\":\"long\"},"
                 "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"Node\"}},"
                 "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}", 500);
}

static void test_top_level_union_and_maps(void **state)
{
    (void)state;
    differential("[\"null\",\"bytes\",{\"type\":\"array\",\"items\":\"float\"},"
                 "{\"type\":\"map\",\"values\":{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                 "{\"name\":\"ok\",\"type\":\"boolean\"},{\"name\":\"n\",\"type\":\"int\"},"
                 "{\"name\":\"id\",\"type\":{\"type\":\"fixed\",\"name\":\"Id\",\"size\":16}}]}}]", 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_types),
        cmocka_unit_test(test_recursive),
        cmocka_unit_test(test_top_level_union_and_maps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
