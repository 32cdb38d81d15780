/* libFuzzer target: the webhook sink's JSON check and body element, against jansson. The input
 * is [KEY 0x1F] VALUE. json_check must accept exactly what jansson accepts (jansson also
 * refuses numbers it cannot hold, which JSON allows, and takes a raw NUL byte for the end of
 * the text: the only differences tolerated), with a
 * reason when it refuses; the element of an accepted record is exactly as long as counted and
 * parses back to the key and the value. Never a crash or a leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/json.h"
#include "sinks/template.h"
#include "sinks/webhook_element.h"

#include "fuzz_check.h"

static int number_too_big(const json_error_t *jerr)
{
    return strstr(jerr->text, "too big") != NULL || strstr(jerr->text, "overflow") != NULL;
}

static void check_element(const struct sink_record *rec, const json_t *value_doc)
{
    static struct webhook_names names;   /* kept, as the sink keeps it, across inputs */
    long long key_esc = rec->key ? tpl_json_escaped_len(rec->key, rec->key_len) : 0;
    size_t len;
    char *buf, *end;
    json_t *doc;

    if (key_esc < 0)
        return;   /* the sink refuses the record: "key is not valid UTF-8" */
    CHECK(webhook_names_set(&names, "fuzz", "orders.v1") == 0);
    len = webhook_element_len(&names, rec, (size_t)key_esc);
    CHECK((buf = malloc(len + 1)) != NULL);
    end = webhook_element_write(&names, rec, buf);
    CHECK((size_t)(end - buf) == len);
    CHECK(memchr(buf, '\n', len) == NULL && memchr(buf, '\r', len) == NULL);
    if (value_doc && !memchr(rec->value, '\0', rec->value_len)) {
        doc = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
        CHECK(doc != NULL);
        if (rec->key)
            CHECK(json_string_length(json_object_get(doc, "key")) == rec->key_len &&
                  memcmp(json_string_value(json_object_get(doc, "key")), rec->key, rec->key_len) == 0);
        CHECK(json_equal(json_object_get(doc, "value"), (json_t *)value_doc));
        json_decref(doc);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sink_record rec = { .topic = "orders.v1", .partition = 3, .offset = 77, .timestamp_ms = 1 };
    char err[256];
    json_error_t jerr;
    json_t *doc;
    int ok;

    FUZZ_SPLIT_RECORD(&rec, data, size);
    err[0] = '\0';
    ok = json_check(rec.value, rec.value_len, err, sizeof err) == 0;
    doc = json_loadb(rec.value, rec.value_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (doc)
        CHECK(ok || memchr(rec.value, '\0', rec.value_len));   /* jansson ends the text at a raw NUL byte */
    else
        CHECK(!ok || number_too_big(&jerr));
    if (!ok)
        CHECK(err[0] != '\0' && strstr(err, " at byte ") != NULL);
    if (ok)
        check_element(&rec, doc);
    json_decref(doc);
    return 0;
}
