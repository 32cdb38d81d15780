/* libFuzzer target: lib/jsonschema.c. The input, when it is JSON, is compiled as a schema and,
 * when that succeeds, validates a few fixed instances; it is also validated, as an instance,
 * against a fixed contract that uses most keywords. Compile either succeeds or says where and
 * why; validation says 1, 0 with a one-line reason that starts with the value's path, or -1 with
 * a reason. Never a crash, a leak or a hang. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "lib/jsonschema.h"

#include "fuzz_check.h"

static const char contract[] =
    "{\"type\":\"object\",\"required\":[\"id\"],\"additionalProperties\":{\"type\":[\"string\",\"null\"]},"
    "\"definitions\":{\"node\":{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#/definitions/node\"}}}},"
    "\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},\"email\":{\"format\":\"email\",\"maxLength\":64},"
    "\"at\":{\"format\":\"date-time\"},\"day\":{\"format\":\"date\"},\"t\":{\"format\":\"time\"},\"u\":{\"format\":\"uri\"},"
    "\"n\":{\"type\":\"number\",\"multipleOf\":0.5,\"exclusiveMinimum\":-10,\"maximum\":1e6},"
    "\"tags\":{\"type\":\"array\",\"items\":[{\"const\":\"a\"}],\"additionalItems\":{\"pattern\":\"^[a-z]+$\"},"
    "\"uniqueItems\":true,\"contains\":{\"minLength\":1},\"maxItems\":20},"
    "\"kind\":{\"enum\":[\"a\",1,{\"x\":[null]}]},\"list\":{\"$ref\":\"#/definitions/node\"},"
    "\"mix\":{\"anyOf\":[{\"type\":\"integer\"},{\"oneOf\":[{\"minLength\":2},{\"maxLength\":4}]}],\"not\":{\"const\":7}},"
    "\"cond\":{\"if\":{\"required\":[\"a\"]},\"then\":{\"dependencies\":{\"a\":[\"b\"]}},\"else\":{\"propertyNames\":{\"pattern\":\"^x\"}}}},"
    "\"patternProperties\":{\"^p_\":{\"type\":\"integer\",\"minimum\":0}}}";

static const char *const instances[] = {
    "null", "true", "0", "-1.5", "1e300", "\"\"", "\"bob@example.com\"", "\"2024-01-01T00:00:00Z\"",
    "[]", "[1,1.0,\"a\",[null],{}]", "{}", "{\"a\":{\"b\":[1,2,{\"c\":\"d\"}]},\"id\":\"x\"}",
};

static void check_result(int r, const struct jsonschema_violation *v)
{
    CHECK(r == 1 || r == 0 || r == -1);
    if (r == 1)
        return;
    CHECK(v->reason[0] != '\0' && strchr(v->reason, '\n') == NULL);
    CHECK(v->keyword[0] != '\0');
    if (r == 0) {
        CHECK(v->path[0] == '$');
        CHECK(strncmp(v->reason, v->path, strlen(v->path)) == 0);
        CHECK(v->schema_path[0] == '$');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jsonschema *fixed;
    static json_t *fixed_instances[sizeof instances / sizeof instances[0]];
    struct jsonschema_violation v;
    struct jsonschema *s;
    char err[512];
    json_t *doc;

    if (!fixed) {
        json_t *schema = json_loads(contract, 0, NULL);
        CHECK(schema != NULL);
        fixed = jsonschema_compile(schema, err, sizeof err);
        CHECK(fixed != NULL);
        json_decref(schema);
        for (size_t i = 0; i < sizeof instances / sizeof instances[0]; i++)
            CHECK((fixed_instances[i] = json_loads(instances[i], JSON_DECODE_ANY, NULL)) != NULL);
    }
    doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!doc)
        return 0;
    check_result(jsonschema_validate(fixed, doc, &v), &v);
    err[0] = '\0';
    s = jsonschema_compile(doc, err, sizeof err);
    if (!s) {
        CHECK(err[0] == '$' && strstr(err, ": ") != NULL && strchr(err, '\n') == NULL);
    } else {
        for (size_t i = 0; i < sizeof instances / sizeof instances[0]; i++)
            check_result(jsonschema_validate(s, fixed_instances[i], &v), &v);
        check_result(jsonschema_validate(s, doc, &v), &v);   /* a schema validating itself */
        jsonschema_free(s);
    }
    json_decref(doc);
    return 0;
}
