/* libFuzzer target: the Schema Registry API (lib/schema_api.c) on any request, as `sluice dev
 * --registry` serves it. The input is "METHOD\nPATH\nQUERY\nBODY" (missing parts empty); each
 * request goes to a store that already holds an Avro schema and a reference to it. Every answer
 * has a status 200..599 and exactly one body (JSON or text), an error body has an error_code, and
 * the store stays consistent: each subject's ids name schemas. Never a crash or a leak (ASan). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/schema_api.h"
#include "lib/schema_store.h"

#include "fuzz_check.h"

static const char *const seed_bodies[] = {
    "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"A\\\",\\\"fields\\\":[]}\"}",
    "{\"schema\":\"\\\"A\\\"\",\"references\":[{\"name\":\"A\",\"subject\":\"a\",\"version\":1}]}",
};

/* The next part of the input up to '\n' (or the end), NUL-terminated in a copy. */
static char *part(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(len + 1);

    CHECK(s != NULL);
    memcpy(s, *p, len);
    s[len] = '\0';
    *p += nl ? len + 1 : len;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    struct schema_api_reply rp = { 0 };
    struct schema_store st;
    char *method = part(&p, end), *path = part(&p, end), *query = part(&p, end);
    const char *subject;
    json_t *ids, *id;
    size_t i;

    CHECK(schema_store_init(&st) == 0);
    schema_api_answer(&st, "POST", "/subjects/a/versions", NULL, seed_bodies[0], strlen(seed_bodies[0]), &rp);
    CHECK(rp.status == 200);
    schema_api_reply_clear(&rp);
    schema_api_answer(&st, "POST", "/subjects/b/versions", NULL, seed_bodies[1], strlen(seed_bodies[1]), &rp);
    CHECK(rp.status == 200);
    schema_api_reply_clear(&rp);

    schema_api_answer(&st, method, path, query[0] ? query : NULL, (const char *)p, (size_t)(end - p), &rp);
    CHECK(rp.status >= 200 && rp.status <= 599);
    CHECK((rp.body != NULL) != (rp.raw != NULL));
    CHECK(rp.status == 200 || json_is_integer(json_object_get(rp.body, "error_code")));
    CHECK(!rp.changed || rp.status == 200);
    json_object_foreach(st.subjects, subject, ids)
        json_array_foreach(ids, i, id)
            CHECK(schema_store_by_id(&st, json_integer_value(id)) != NULL);
    schema_api_reply_clear(&rp);
    schema_store_free(&st);
    free(method);
    free(path);
    free(query);
    return 0;
}
