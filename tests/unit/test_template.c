/* Templates of the http sink: placeholders, escaping where a value lands (URL, JSON, header),
 * missing fields, $each batches; and the text helpers the webhook sink builds bodies with. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "sinks/template.h"

static json_t *doc_of(const char *text)
{
    json_t *doc = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(doc);
    return doc;
}

static struct tpl_record rec_of(json_t *doc)
{
    struct tpl_record r = {
        .topic = "customers.v1", .partition = 3, .offset = 42, .key = "c/1 ü", .key_len = strlen("c/1 ü"),
        .timestamp_ms = 1700000000123, .doc = doc, .id = "crm:customers.v1:3:42",
    };
    return r;
}

/* Renders string template @p text; returns a malloc'd result or NULL (reason in err). */
static char *render(const char *text, const struct tpl_record *r, enum tpl_escape esc, char *err, size_t errlen)
{
    struct tpl *t = tpl_compile(text, err, errlen);
    struct buf b = { 0 };
    char *out = NULL;

    assert_non_null(t);
    if (tpl_render(t, r, esc, &b, err, errlen) == 0)
        out = buf_steal(&b, NULL);
    buf_free(&b);
    tpl_free(t);
    return out;
}

static void test_url_escaping(void **state)
{
    json_t *doc = doc_of("{\"id\":\"a b/c?d=e&f#g\",\"n\":7,\"email\":\"x+y@example.com\",\"emoji\":\"é\"}");
    struct tpl_record r = rec_of(doc);
    char err[256], *s;
    (void)state;

    s = render("https://api.example.com/contacts/{$.id}?email={$.email}&n={$.n}", &r, TPL_URL, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "https://api.example.com/contacts/a%20b%2Fc%3Fd%3De%26f%23g?email=x%2By%40example.com&n=7");
    free(s);
    s = render("/k/{key}/{$.emoji}/{topic}/{partition}/{offset}", &r, TPL_URL, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "/k/c%2F1%20%C3%BC/%C3%A9/customers.v1/3/42");
    free(s);
    json_decref(doc);
}

static void test_text_and_braces(void **state)
{
    json_t *doc = doc_of("{\"name\":\"Ada\",\"tags\":[\"a\",\"b\"],\"nothing\":null}");
    struct tpl_record r = rec_of(doc);
    char err[256], *s;
    (void)state;

    s = render("{{literal}} {$.name} {$.tags} [{$.nothing}] {id} {timestamp}", &r, TPL_TEXT, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "{literal} Ada [\"a\",\"b\"] [] crm:customers.v1:3:42 1700000000123");
    free(s);
    json_decref(doc);
}

static void test_missing_fields(void **state)
{
    json_t *doc = doc_of("{\"name\":\"Ada\"}");
    struct tpl_record r = rec_of(doc);
    char err[256], *s;
    (void)state;

    s = render("/x/{$.email}", &r, TPL_URL, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "missing field $.email"));
    s = render("/x/{$.email?}", &r, TPL_URL, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "/x/");
    free(s);
    r.doc = NULL;   /* a tombstone */
    s = render("/x/{$.name}", &r, TPL_URL, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "tombstone"));
    r.key = NULL;
    s = render("/x/{key}", &r, TPL_URL, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "no key"));
    json_decref(doc);

    /* In a URL a null or empty field would address the collection ("/x/"): refused unless
     * optional. In a header or body it is just empty. */
    doc = doc_of("{\"id\":null,\"blank\":\"\"}");
    r = rec_of(doc);
    s = render("/x/{$.id}", &r, TPL_URL, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "empty or null"));
    s = render("/x/{$.blank}", &r, TPL_URL, err, sizeof err);
    assert_null(s);
    s = render("/x/{$.id?}", &r, TPL_URL, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "/x/");
    free(s);
    s = render("v={$.id}", &r, TPL_HEADER, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "v=");
    free(s);
    json_decref(doc);
}

static void test_compile_errors(void **state)
{
    char err[256];
    (void)state;
    assert_null(tpl_compile("/x/{$.a", err, sizeof err));
    assert_non_null(strstr(err, "unclosed"));
    assert_null(tpl_compile("/x/{nope}", err, sizeof err));
    assert_non_null(strstr(err, "unknown placeholder {nope}"));
    assert_null(tpl_compile("/x/{}", err, sizeof err));
    assert_null(tpl_compile("/x/{$.a..b}", err, sizeof err));

    /* A JSON body key may not spell the internal $each marker (byte 0x01; a fuzz_template find:
     * the batch was spliced at such a key). */
    {
        json_t *tmpl = json_pack("{s:s}", "\001sluice-each\001", "{$.a}");
        assert_non_null(tmpl);
        assert_null(tpl_json_compile(tmpl, err, sizeof err));
        assert_non_null(strstr(err, "0x01"));
        json_decref(tmpl);
    }
}

static void test_header_injection(void **state)
{
    json_t *doc = doc_of("{\"v\":\"ok\\r\\nX-Evil: 1\",\"w\":\"fine\"}");
    struct tpl_record r = rec_of(doc);
    char err[256], *s;
    (void)state;

    s = render("{$.v}", &r, TPL_HEADER, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "line break"));
    s = render("Bearer {$.w}", &r, TPL_HEADER, err, sizeof err);
    assert_string_equal(s, "Bearer fine");
    free(s);
    json_decref(doc);
}

static char *render_json(const char *tmpl_text, const struct tpl_record *r, char *err, size_t errlen)
{
    json_t *tmpl = doc_of(tmpl_text);
    struct tpl_json *t = tpl_json_compile(tmpl, err, errlen);
    struct buf b = { 0 };
    char *out = NULL;

    json_decref(tmpl);
    assert_non_null(t);
    if (tpl_json_render(t, r, &b, err, errlen) == 0)
        out = buf_steal(&b, NULL);
    buf_free(&b);
    tpl_json_free(t);
    return out;
}

static void test_json_escaping_and_types(void **state)
{
    json_t *doc = doc_of("{\"name\":\"Ada \\\"the\\\" \\\\ Countess\\n\",\"age\":36,\"vip\":true,"
                         "\"addr\":{\"city\":\"Londön\"},\"email\":\"ada@example.com\"}");
    struct tpl_record r = rec_of(doc);
    char err[256], *s;
    json_t *back;
    (void)state;

    s = render_json("{\"properties\":{\"name\":\"{$.name}\",\"age\":\"{$.age}\",\"vip\":\"{$.vip}\","
                    "\"city\":\"{$.addr.city}\",\"addr\":\"{$.addr}\",\"greeting\":\"Hi {$.name}, you are {$.age}\","
                    "\"fixed\":[1,\"two\",null],\"phone\":\"{$.phone?}\",\"key\":\"{key}\",\"offset\":\"{offset}\"}}",
                    &r, err, sizeof err);
    assert_non_null(s);
    back = json_loads(s, 0, NULL);   /* the output is valid JSON whatever the value held */
    assert_non_null(back);
    assert_string_equal(json_string_value(json_object_get(json_object_get(back, "properties"), "name")),
                        "Ada \"the\" \\ Countess\n");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(back, "properties"), "age")), 36);
    assert_true(json_is_true(json_object_get(json_object_get(back, "properties"), "vip")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(back, "properties"), "city")), "Londön");
    assert_true(json_is_object(json_object_get(json_object_get(back, "properties"), "addr")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(back, "properties"), "greeting")),
                        "Hi Ada \"the\" \\ Countess\n, you are 36");
    assert_true(json_is_null(json_object_get(json_object_get(back, "properties"), "phone")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(back, "properties"), "key")), "c/1 ü");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(back, "properties"), "offset")), 42);
    assert_int_equal(json_array_size(json_object_get(json_object_get(back, "properties"), "fixed")), 3);
    json_decref(back);
    free(s);

    /* The default body: the whole value. */
    s = render_json("\"{$}\"", &r, err, sizeof err);
    back = json_loads(s, 0, NULL);
    assert_true(json_equal(back, doc));
    json_decref(back);
    free(s);

    s = render_json("{\"email\":\"{$.mail}\"}", &r, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "missing field $.mail"));
    json_decref(doc);
}

static void test_each(void **state)
{
    json_t *tmpl = doc_of("{\"inputs\":{\"$each\":{\"id\":\"{$.email}\",\"properties\":{\"n\":\"{$.n}\"}}},"
                          "\"source\":\"{topic}\"}");
    json_t *docs[3], *back, *inputs;
    struct tpl_json *t;
    struct buf elems[3] = { { 0 } }, body = { 0 };
    const char *texts[3];
    size_t lens[3];
    char err[256];
    struct tpl_record batch = { .topic = "customers.v1", .partition = 1, .offset = -1, .timestamp_ms = -1 };
    (void)state;

    t = tpl_json_compile(tmpl, err, sizeof err);
    assert_non_null(t);
    assert_true(tpl_json_has_each(t));
    assert_int_equal(tpl_json_outer_fields(t), TPL_F_TOPIC);
    for (int i = 0; i < 3; i++) {
        char text[64];
        struct tpl_record r;
        snprintf(text, sizeof text, "{\"email\":\"u%d@x.io\",\"n\":%d}", i, i);
        docs[i] = doc_of(text);
        r = rec_of(docs[i]);
        assert_int_equal(tpl_json_render(t, &r, &elems[i], err, sizeof err), 0);
        texts[i] = elems[i].p;
        lens[i] = elems[i].len;
    }
    assert_int_equal(tpl_json_render_batch(t, &batch, texts, lens, 3, &body, err, sizeof err), 0);
    back = json_loads(body.p, 0, NULL);
    assert_non_null(back);
    inputs = json_object_get(back, "inputs");
    assert_int_equal(json_array_size(inputs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(inputs, 2), "id")), "u2@x.io");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(inputs, 1), "properties"), "n")), 1);
    assert_string_equal(json_string_value(json_object_get(back, "source")), "customers.v1");
    json_decref(back);
    for (int i = 0; i < 3; i++) {
        buf_free(&elems[i]);
        json_decref(docs[i]);
    }
    buf_free(&body);
    tpl_json_free(t);
    json_decref(tmpl);

    /* Only one $each, not nested, and alone in its object. */
    tmpl = doc_of("{\"a\":{\"$each\":1},\"b\":{\"$each\":2}}");
    assert_null(tpl_json_compile(tmpl, err, sizeof err));
    assert_non_null(strstr(err, "only one $each"));
    json_decref(tmpl);
    tmpl = doc_of("{\"a\":{\"$each\":1,\"x\":2}}");
    assert_null(tpl_json_compile(tmpl, err, sizeof err));
    assert_non_null(strstr(err, "body.a"));
    json_decref(tmpl);
    tmpl = doc_of("{\"a\":\"{$.x\"}");
    assert_null(tpl_json_compile(tmpl, err, sizeof err));
    assert_non_null(strstr(err, "body.a"));
    json_decref(tmpl);
}

static void test_json_escape_helper(void **state)
{
    struct buf b = { 0 };
    (void)state;
    assert_int_equal(tpl_json_escape(&b, "a\"b\\c\n\t\x01é", strlen("a\"b\\c\n\t\x01é")), 0);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\t\\u0001é\"");
    buf_free(&b);
    assert_int_equal(tpl_json_escape(&b, "\xff\xfe", 2), -1);
    buf_free(&b);
    buf_add_i64(&b, 0);
    buf_add(&b, " ", 1);
    buf_add_i64(&b, -42);
    buf_add(&b, " ", 1);
    buf_add_i64(&b, INT64_MIN);
    buf_add(&b, " ", 1);
    buf_add_i64(&b, INT64_MAX);
    assert_string_equal(b.p, "0 -42 -9223372036854775808 9223372036854775807");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_escaping),
        cmocka_unit_test(test_text_and_braces),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_header_injection),
        cmocka_unit_test(test_json_escaping_and_types),
        cmocka_unit_test(test_each),
        cmocka_unit_test(test_json_escape_helper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
