/* lib/jsonschema.c: compile errors name their place in the schema; violations of a realistic
 * "customers" contract name the value's path, the keyword, the schema path and a reason a person
 * can act on; hostile schemas and instances end in an error, not a crash or a hang. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "lib/jsonschema.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_DECODE_ANY, &jerr);

    if (!doc)
        fail_msg("test JSON does not parse: %s: %s", jerr.text, text);
    return doc;
}

static struct jsonschema *compile_text(const char *text, char *err, size_t errlen)
{
    json_t *doc = parse(text);
    struct jsonschema *s = jsonschema_compile(doc, err, errlen);

    json_decref(doc);   /* the compiled schema keeps its own copy */
    return s;
}

static void test_compile_errors(void **state)
{
    static const struct { const char *schema, *err; } cases[] = {
        { "{\"properties\":{\"email\":{\"format\":\"hostname\"}}}",
          "$.properties.email.format: unsupported format \"hostname\" (supported: date-time, date, time, email, uuid, uri)" },
        { "{\"dependentRequired\":{}}", "$.dependentRequired: keyword not supported" },
        { "{\"properties\":{\"a b\":{\"requried\":[]}}}", "$.properties[\"a b\"].requried: keyword not supported" },
        { "{\"type\":\"text\"}",
          "$.type: must be a type name (null, boolean, integer, number, string, array, object) or an array of them" },
        { "{\"minLength\":-1}", "$.minLength: must be a non-negative integer" },
        { "{\"maxItems\":1.5}", "$.maxItems: must be a non-negative integer" },
        { "{\"multipleOf\":0}", "$.multipleOf: must be a number above 0" },
        { "{\"required\":[\"id\",7]}", "$.required[1]: must be a property name (a string)" },
        { "{\"items\":[{\"type\":\"string\"},3]}", "$.items[1]: a schema must be an object or a boolean" },
        { "{\"anyOf\":[]}", "$.anyOf: must be a non-empty array of schemas" },
        { "{\"pattern\":\"(a\"}", "$.pattern: invalid regular expression at offset 2: missing closing parenthesis" },
        { "{\"$ref\":\"#/definitions/missing\"}", "$.$ref: $ref \"#/definitions/missing\" points at nothing in this document" },
        { "{\"$ref\":\"other.json#/x\"}",
          "$.$ref: $ref to another document (\"other.json#/x\") not supported: only \"#\" and \"#/...\" within this one" },
        { "{\"$ref\":\"#foo\"}",
          "$.$ref: $ref to an anchor (\"#foo\") not supported: only \"#\" and \"#/...\" JSON pointers" },
        { "{\"items\":{\"$id\":\"http://example.com/item\"}}",
          "$.items.$id: $id in a subschema (a change of base URI) not supported" },
        { "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}",
          "$.$schema: only draft-07 is supported (\"http://json-schema.org/draft-07/schema#\")" },
        { "[1]", "$: a schema must be an object or a boolean" },
        /* a newline in the schema never splits an error over lines */
        { "{\"$ref\":\"#/x\\ny\"}", "$.$ref: $ref \"#/x\\u000ay\" points at nothing in this document" },
        { "{\"definitions\":{\"a\":{\"not\":{\"contentSchema\":{}}}}}", "$.definitions.a.not.contentSchema: keyword not supported" },
    };
    char err[512];
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct jsonschema *s = compile_text(cases[i].schema, err, sizeof err);
        if (s || strcmp(err, cases[i].err) != 0)
            fail_msg("schema %s\n  expected: %s\n  got:      %s", cases[i].schema, cases[i].err, s ? "(compiled)" : err);
    }
}

static void test_annotations_and_refs_compile(void **state)
{
    char err[512];
    struct jsonschema *s = compile_text(
        "{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"$id\":\"https://example.com/c.json\","
        "\"title\":\"t\",\"description\":\"d\",\"$comment\":\"c\",\"x-owner\":\"team\","
        "\"definitions\":{\"a~b/c\":{\"type\":\"integer\",\"default\":1,\"examples\":[1],\"readOnly\":true}},"
        "\"properties\":{\"n\":{\"$ref\":\"#/definitions/a~0b~1c\"},\"m\":{\"$ref\":\"#/definitions/a%7E0b~1c\"}}}",
        err, sizeof err);
    struct jsonschema_violation v;
    json_t *doc = parse("{\"n\":1,\"m\":\"x\"}");
    (void)state;

    assert_non_null(s);
    assert_int_equal(jsonschema_validate(s, doc, &v), 0);
    assert_string_equal(v.path, "$.m");
    assert_string_equal(v.schema_path, "$.definitions[\"a~b/c\"].type");
    assert_string_equal(v.reason, "$.m: \"x\" is a string, not integer (type)");
    json_decref(doc);
    jsonschema_free(s);
}

/* A realistic contract: ten properties, most keywords a data product uses. */
static const char customers_schema[] =
    "{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"title\":\"customers.v1\",\"type\":\"object\","
    "\"required\":[\"id\",\"email\",\"name\",\"created_at\"],\"additionalProperties\":false,"
    "\"definitions\":{\"country\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}$\"}},"
    "\"properties\":{"
    "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
    "\"tier\":{\"enum\":[\"free\",\"pro\",\"enterprise\"]},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"birthday\":{\"type\":[\"string\",\"null\"],\"format\":\"date\"},"
    "\"website\":{\"type\":\"string\",\"format\":\"uri\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"minLength\":1},\"uniqueItems\":true,\"maxItems\":5},"
    "\"address\":{\"type\":\"object\",\"required\":[\"country\"],"
    "\"properties\":{\"city\":{\"type\":\"string\"},\"country\":{\"$ref\":\"#/definitions/country\"}}}}}";

static const char valid_customer[] =
    "{\"id\":\"3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b\",\"email\":\"ada@example.com\",\"name\":\"Ada Lovelace\","
    "\"age\":36,\"tier\":\"pro\",\"created_at\":\"2024-05-01T12:30:00.250Z\",\"birthday\":null,"
    "\"website\":\"https://example.com/ada\",\"tags\":[\"vip\",\"beta\"],"
    "\"address\":{\"city\":\"London\",\"country\":\"GB\"}}";

static void test_customers(void **state)
{
    static const struct { const char *set, *path, *keyword, *schema_path, *reason; } cases[] = {
        { "{\"email\":\"bob@\"}", "$.email", "format", "$.properties.email.format",
          "$.email: \"bob@\" is not an email (format)" },
        { "{\"id\":\"not-a-uuid\"}", "$.id", "format", "$.properties.id.format",
          "$.id: \"not-a-uuid\" is not a uuid (format)" },
        { "{\"age\":-1}", "$.age", "minimum", "$.properties.age.minimum",
          "$.age: -1 is less than the minimum 0 (minimum)" },
        { "{\"age\":36.5}", "$.age", "type", "$.properties.age.type",
          "$.age: 36.5 is a number, not integer (type)" },
        { "{\"tier\":\"gold\"}", "$.tier", "enum", "$.properties.tier.enum",
          "$.tier: \"gold\" is not one of the 3 values of enum (enum)" },
        { "{\"created_at\":\"2024-02-30T10:00:00Z\"}", "$.created_at", "format", "$.properties.created_at.format",
          "$.created_at: \"2024-02-30T10:00:00Z\" is not a date-time (format)" },
        { "{\"birthday\":\"1815-12-10T00:00:00Z\"}", "$.birthday", "format", "$.properties.birthday.format",
          "$.birthday: \"1815-12-10T00:00:00Z\" is not a date (format)" },
        { "{\"website\":\"/relative/path\"}", "$.website", "format", "$.properties.website.format",
          "$.website: \"/relative/path\" is not a URI (format)" },
        { "{\"name\":\"\"}", "$.name", "minLength", "$.properties.name.minLength",
          "$.name: \"\" is shorter than 1 characters (minLength)" },
        { "{\"tags\":[\"a\",\"b\",\"a\"]}", "$.tags", "uniqueItems", "$.properties.tags.uniqueItems",
          "$.tags: items 0 and 2 are equal (uniqueItems)" },
        { "{\"tags\":[\"a\",\"\"]}", "$.tags[1]", "minLength", "$.properties.tags.items.minLength",
          "$.tags[1]: \"\" is shorter than 1 characters (minLength)" },
        { "{\"address\":{\"country\":\"gb\"}}", "$.address.country", "pattern", "$.definitions.country.pattern",
          "$.address.country: \"gb\" does not match the pattern \"^[A-Z]{2}$\" (pattern)" },
        { "{\"address\":{\"city\":\"Paris\"}}", "$.address", "required", "$.properties.address.required",
          "$.address: required property \"country\" is missing (required)" },
        { "{\"nickname\":\"ada\"}", "$.nickname", "additionalProperties", "$.additionalProperties",
          "$.nickname: is not a property the schema allows (additionalProperties)" },
        { "{\"name\":\"line one\\nline two that goes on and on and on and on and on and on and on\"}",
          "$.name", "maxLength", "$.properties.name.maxLength", NULL },
    };
    char err[512];
    struct jsonschema *s = compile_text(customers_schema, err, sizeof err);
    struct jsonschema_violation v;
    json_t *good = parse(valid_customer), *doc, *missing;
    (void)state;

    assert_non_null(s);
    assert_int_equal(jsonschema_validate(s, good, &v), 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *change = parse(cases[i].set);
        doc = json_deep_copy(good);
        json_object_update(doc, change);
        if (i == sizeof cases / sizeof cases[0] - 1) {   /* a long multiline value: one line, cut */
            json_object_set_new(doc, "name", json_string("line one\nline two that goes on and on and on and on and "
                                                         "on and on and on and on and on and on and on and on and on "
                                                         "and on and on"));
        }
        assert_int_equal(jsonschema_validate(s, doc, &v), 0);
        assert_string_equal(v.path, cases[i].path);
        assert_string_equal(v.keyword, cases[i].keyword);
        assert_string_equal(v.schema_path, cases[i].schema_path);
        if (cases[i].reason)
            assert_string_equal(v.reason, cases[i].reason);
        else
            assert_string_equal(v.reason, "$.name: \"line one\\nline two that goes on and on and on and on and on... "
                                          "is longer than 100 characters (maxLength)");
        json_decref(change);
        json_decref(doc);
    }
    missing = json_deep_copy(good);
    json_object_del(missing, "email");
    assert_int_equal(jsonschema_validate(s, missing, &v), 0);
    assert_string_equal(v.reason, "$: required property \"email\" is missing (required)");
    assert_string_equal(v.schema_path, "$.required");
    json_decref(missing);
    json_decref(good);
    jsonschema_free(s);
}

static void test_combinators_reasons(void **state)
{
    static const struct { const char *schema, *instance, *reason; } cases[] = {
        { "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", "1.5",
          "$: 1.5 matches none of the 2 schemas of anyOf (anyOf)" },
        { "{\"oneOf\":[{\"minimum\":0},{\"maximum\":10}]}", "5", "$: 5 matches both schema 0 and schema 1 of oneOf (oneOf)" },
        { "{\"not\":{\"const\":\"x\"}}", "\"x\"", "$: \"x\" matches the schema of not (not)" },
        { "{\"if\":{\"properties\":{\"kind\":{\"const\":\"b2b\"}}},\"then\":{\"required\":[\"vat\"]}}",
          "{\"kind\":\"b2b\"}", "$: required property \"vat\" is missing (required)" },
        { "{\"properties\":{\"a\":false}}", "{\"a\":1}", "$.a: 1 is not allowed here (the schema is false) (false)" },
        { "{\"propertyNames\":{\"maxLength\":3}}", "{\"long\":1}", "$.long: \"long\" is longer than 3 characters (maxLength)" },
        { "{\"dependencies\":{\"card\":[\"billing\"]}}", "{\"card\":1}",
          "$: has \"card\" but not \"billing\", which it needs (dependencies)" },
        { "{\"contains\":{\"type\":\"null\"}}", "[1,2]", "$: has no item that matches the schema of contains (contains)" },
        { "{\"multipleOf\":0.01}", "1.005", "$: 1.005 is not a multiple of 0.01 (multipleOf)" },
        { "{\"enum\":[1,[2,{\"a\":3}]]}", "[2.0,{\"a\":3.0}]", NULL },
        { "{\"uniqueItems\":true}", "[1,1.0]", "$: items 0 and 1 are equal (uniqueItems)" },
        { "{\"maxLength\":2}", "\"\xc3\xa9\xc3\xa9\"", NULL },   /* two code points, four bytes */
        { "{\"pattern\":\"^abc$\"}", "\"abc\\n\"", "$: \"abc\\n\" does not match the pattern \"^abc$\" (pattern)" },
        { "{\"pattern\":\"b\"}", "\"abc\"", NULL },   /* not anchored */
        /* a value far longer than the snippet's buffer is cut, not garbled */
        { "{\"maxLength\":3}", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
          "$: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa... is longer than 3 characters (maxLength)" },
        { "{\"properties\":{\"odd key\":{\"type\":\"null\"}}}", "{\"odd key\":0}",
          "$[\"odd key\"]: 0 is an integer, not null (type)" },
    };
    char err[512];
    struct jsonschema_violation v;
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct jsonschema *s = compile_text(cases[i].schema, err, sizeof err);
        json_t *doc = parse(cases[i].instance);
        if (!s)
            fail_msg("%s: %s", cases[i].schema, err);
        assert_int_equal(jsonschema_validate(s, doc, &v), cases[i].reason ? 0 : 1);
        if (cases[i].reason)
            assert_string_equal(v.reason, cases[i].reason);
        json_decref(doc);
        jsonschema_free(s);
    }
}

static char *nested(const char *open, const char *middle, const char *close, int depth)
{
    size_t lo = strlen(open), lc = strlen(close), lm = strlen(middle), len = 0;
    char *text = malloc((lo + lc) * (size_t)depth + lm + 1);

    assert_non_null(text);
    for (int i = 0; i < depth; i++, len += lo)
        memcpy(text + len, open, lo);
    memcpy(text + len, middle, lm);
    len += lm;
    for (int i = 0; i < depth; i++, len += lc)
        memcpy(text + len, close, lc);
    text[len] = '\0';
    return text;
}

static void test_hostile_depth(void **state)
{
    char err[512];
    struct jsonschema_violation v;
    char *text = nested("{\"not\":", "{}", "}", JSONSCHEMA_MAX_DEPTH + 1), *expected;
    struct jsonschema *s = compile_text(text, err, sizeof err);
    json_t *doc;
    (void)state;

    /* A schema nested past the limit is refused where it crosses the limit. */
    assert_null(s);
    expected = nested(".not", ": schema nested deeper than 64 levels", "", JSONSCHEMA_MAX_DEPTH + 1);
    assert_string_equal(err + 1, expected);
    free(expected);
    free(text);

    /* A 300-character name is cut in the path (60 characters when quoted), the error still says why. */
    {
        char schema[512], want[512];
        snprintf(schema, sizeof schema, "{\"properties\":{\"%0300d\":{\"bogus\":1}}}", 0);
        snprintf(want, sizeof want, "$.properties[\"%060d...\"].bogus: keyword not supported", 0);
        assert_null(compile_text(schema, err, sizeof err));
        assert_string_equal(err, want);
    }

    /* Too many subschemas: refused where the limit is crossed. */
    {
        json_t *many = json_object(), *list = json_array();
        for (int i = 0; i < JSONSCHEMA_MAX_SUBSCHEMAS; i++)
            json_array_append_new(list, json_object());
        json_object_set_new(many, "anyOf", list);
        assert_null(jsonschema_compile(many, err, sizeof err));
        assert_string_equal(err, "$.anyOf[65535]: schema has more than 65536 subschemas");
        json_array_remove(list, 0);
        s = jsonschema_compile(many, err, sizeof err);
        assert_non_null(s);
        jsonschema_free(s);
        json_decref(many);
    }

    /* A $ref to itself: the walk stops at its depth limit with an error, not a stack overflow. */
    s = compile_text("{\"definitions\":{\"loop\":{\"$ref\":\"#/definitions/loop\"}},\"$ref\":\"#/definitions/loop\"}",
                     err, sizeof err);
    assert_non_null(s);
    doc = json_integer(1);
    assert_int_equal(jsonschema_validate(s, doc, &v), -1);
    assert_string_equal(v.keyword, "$evaluation");
    assert_string_equal(v.reason, "validation nested deeper than 128 schemas (a recursive $ref?)");
    json_decref(doc);
    jsonschema_free(s);

    /* A recursive tree schema over an instance nested 1,000 deep: an error, not a crash. */
    s = compile_text("{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}", err, sizeof err);
    assert_non_null(s);
    text = nested("[", "", "]", 1000);
    doc = parse(text);
    assert_int_equal(jsonschema_validate(s, doc, &v), -1);
    assert_string_equal(v.keyword, "$evaluation");
    json_decref(doc);
    free(text);
    /* ...while a shallow one is fine. */
    doc = parse("[[[]],[]]");
    assert_int_equal(jsonschema_validate(s, doc, &v), 1);
    json_decref(doc);
    jsonschema_free(s);

    /* A schema that fans out (each level applies the next twice: 2^40) runs out of steps. */
    {
        char schema[8192];
        size_t len = (size_t)snprintf(schema, sizeof schema, "{\"definitions\":{");
        for (int i = 0; i < 40; i++)
            len += (size_t)snprintf(schema + len, sizeof schema - len,
                                    "\"d%d\":{\"allOf\":[{\"$ref\":\"#/definitions/d%d\"},{\"$ref\":\"#/definitions/d%d\"}]},",
                                    i, i + 1, i + 1);
        snprintf(schema + len, sizeof schema - len, "\"d40\":{}},\"$ref\":\"#/definitions/d0\"}");
        s = compile_text(schema, err, sizeof err);
        assert_non_null(s);
        doc = json_null();
        assert_int_equal(jsonschema_validate(s, doc, &v), -1);
        assert_string_equal(v.reason, "validation takes more than 1048576 steps");
        jsonschema_free(s);
    }

    /* Catastrophic backtracking hits pcre2's match limit: an error, not a hung worker. */
    s = compile_text("{\"pattern\":\"^(a+)+$\"}", err, sizeof err);
    assert_non_null(s);
    doc = json_string("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
    assert_int_equal(jsonschema_validate(s, doc, &v), -1);
    assert_string_equal(v.reason, "pattern \"^(a+)+$\" could not be matched (pcre2 error -47, e.g. too much backtracking)");
    json_decref(doc);
    jsonschema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_annotations_and_refs_compile),
        cmocka_unit_test(test_customers),
        cmocka_unit_test(test_combinators_reasons),
        cmocka_unit_test(test_hostile_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
