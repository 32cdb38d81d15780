/* bench-contract: the CPU cost of validating one customer record (~250 bytes of JSON) against a
 * 10-property JSON Schema contract with lib/jsonschema.c, against jansson parsing the same
 * record (json_loadb, then json_decref). Issue 14's goal: validation costs less than the parse.
 * Each side runs N times, R rounds, alternating; the process's CPU time per round is measured
 * and the median printed as ns/record, with the ratio validate/parse.
 *
 * Usage: bench-contract [--records N] [--repeat R] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/jsonschema.h"

static const char schema_text[] =
    "{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"type\":\"object\","
    "\"required\":[\"id\",\"email\",\"name\",\"created_at\"],\"additionalProperties\":false,"
    "\"properties\":{"
    "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
    "\"tier\":{\"enum\":[\"free\",\"pro\",\"enterprise\"]},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"country\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}$\"},"
    "\"score\":{\"type\":\"number\",\"minimum\":0},"
    "\"active\":{\"type\":\"boolean\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":5}}}";

static const char record[] =
    "{\"id\":\"3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b\",\"email\":\"ada.lovelace@example.com\","
    "\"name\":\"Ada Lovelace\",\"age\":36,\"tier\":\"pro\",\"created_at\":\"2024-05-01T12:30:00.250Z\","
    "\"country\":\"GB\",\"score\":97.5,\"active\":true,\"tags\":[\"vip\",\"beta\"]}";

static double cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long records = 200000, repeat = 7;
    double parse_ns[64], validate_ns[64];
    struct jsonschema_violation v;
    struct jsonschema *s;
    json_t *schema, *doc;
    char err[512];
    size_t len = strlen(record);

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--records") == 0)
            records = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = atol(argv[i + 1]);
    }
    if (records < 1 || repeat < 1 || repeat > 64) {
        fprintf(stderr, "usage: bench-contract [--records N>0] [--repeat 1..64]\n");
        return 2;
    }
    schema = json_loads(schema_text, 0, NULL);
    s = schema ? jsonschema_compile(schema, err, sizeof err) : NULL;
    doc = json_loadb(record, len, 0, NULL);
    if (!s || !doc || jsonschema_validate(s, doc, &v) != 1) {
        fprintf(stderr, "bench-contract: the fixture is broken: %s%s\n", s ? "" : err, s && doc ? v.reason : "");
        return 1;
    }
    for (long r = 0; r < repeat; r++) {
        double t0 = cpu_ns();
        for (long i = 0; i < records; i++) {
            json_t *d = json_loadb(record, len, 0, NULL);
            json_decref(d);
        }
        double t1 = cpu_ns();
        for (long i = 0; i < records; i++)
            if (jsonschema_validate(s, doc, &v) != 1)
                return 1;
        double t2 = cpu_ns();
        parse_ns[r] = (t1 - t0) / (double)records;
        validate_ns[r] = (t2 - t1) / (double)records;
    }
    qsort(parse_ns, (size_t)repeat, sizeof parse_ns[0], by_value);
    qsort(validate_ns, (size_t)repeat, sizeof validate_ns[0], by_value);
    printf("record: %zu bytes, schema: 10 properties\n", len);
    printf("json_loadb: %.0f ns/record (median of %ld rounds of %ld)\n", parse_ns[repeat / 2], repeat, records);
    printf("validate:   %.0f ns/record\n", validate_ns[repeat / 2]);
    printf("ratio validate/parse: %.2f\n", validate_ns[repeat / 2] / parse_ns[repeat / 2]);
    jsonschema_free(s);
    json_decref(schema);
    json_decref(doc);
    return 0;
}
