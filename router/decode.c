/* The decode stage (decode.h): framing, schema lookup, and the decoders of lib/. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "decode.h"
#include "lib/avro.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/jsonschema.h"
#include "lib/protobuf.h"
#include "lib/ruleset.h"
#include "lib/wire.h"

/* Decoded JSON may be longer than its record (base64, digits of small varints), but not without
 * bound: a few bytes claiming a million empty items must not become megabytes of text. */
#define DECODED_SLACK_BYTES (64u << 10)
#define DECODED_FACTOR 32u

struct decode_schema {
    enum registry_schema_type type;
    struct avro_schema *avro;
    struct pb_schema *pb;
    /* The data contract attached to the schema, compiled for topics whose contract is "registry":
     * the rules, and for JSON Schema payloads the schema itself (Confluent's deserializers leave
     * its validation off by default). Why either cannot be used, in unsupported. */
    struct ruleset *rules;
    struct jsonschema *json;
    char *unsupported;
};

/* Base64 (the registry's serialized descriptors) to bytes; NULL when it is not base64. */
static unsigned char *base64_decode(const char *text, size_t len, size_t *out_len)
{
    unsigned char *out;
    int n;
    size_t pad = 0;

    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len % 4 != 0 || len > (size_t)INT32_MAX)
        return NULL;
    if (len >= 1 && text[len - 1] == '=')
        pad++;
    if (len >= 2 && text[len - 2] == '=')
        pad++;
    if (!(out = malloc(len / 4 * 3 + 1)))
        return NULL;
    n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    if (n < 0 || (size_t)n < pad) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)n - pad;
    return out;
}

static struct pb_schema *protobuf_compile(const struct registry_schema *s, char *err, size_t errlen)
{
    struct pb_blob *files = calloc(s->nrefs + 1, sizeof *files);
    struct pb_schema *pb = NULL;
    size_t n = 0;

    if (!files) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* files[0] is the schema's own descriptor, then its imports */
    for (size_t i = 0; i <= s->nrefs; i++) {
        const char *text = i == 0 ? s->text : s->refs[i - 1].text;
        size_t len = i == 0 ? s->text_len : s->refs[i - 1].text_len;
        if (!(files[n].p = base64_decode(text, len, &files[n].len))) {
            if (i == 0)
                snprintf(err, errlen, "the registry's descriptor is not base64 (was it asked with format=serialized?)");
            else
                snprintf(err, errlen, "reference \"%s\": the registry's descriptor is not base64", s->refs[i - 1].name);
            goto out;
        }
        n++;
    }
    pb = pb_schema_load(files, n, err, errlen);
out:
    for (size_t i = 0; i < n; i++)
        free((void *)files[i].p);
    free(files);
    return pb;
}

/* The JSON Schema of a JSON payload, for the "registry" contract; a schema the validator cannot
 * compile (another draft's keywords, references to other subjects) leaves the contract unusable. */
static int json_contract_compile(struct decode_schema *ds, const struct registry_schema *s)
{
    char why[512];
    json_error_t jerr;
    json_t *doc = json_loadb(s->text, s->text_len, 0, &jerr);

    if (!doc)
        snprintf(why, sizeof why, "its JSON Schema is not JSON: %s", jerr.text);
    else if (s->nrefs > 0)
        snprintf(why, sizeof why, "its JSON Schema references other subjects, which sluice's validator cannot follow");
    else if ((ds->json = jsonschema_compile(doc, why, sizeof why)) == NULL && strcmp(why, "out of memory") == 0) {
        json_decref(doc);
        return -1;
    }
    json_decref(doc);
    if (ds->json)
        return 0;
    char msg[600];
    snprintf(msg, sizeof msg, "its JSON Schema cannot be checked: %s", why);
    return (ds->unsupported = strdup(msg)) ? 0 : -1;
}

/* The rules of the schema's data contract (compiled for every schema: a topic's contract says
 * whether they are used). */
static int contract_compile(struct decode_schema *ds, const struct registry_schema *s, char *err, size_t errlen)
{
    const char *unsupported;

    if (!(ds->rules = ruleset_compile(s->rule_set, err, errlen)))
        return -1;
    if ((unsupported = ruleset_unsupported(ds->rules)) && !(ds->unsupported = strdup(unsupported))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (s->type == REGISTRY_JSON && !ds->unsupported && json_contract_compile(ds, s) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void *decode_schema_compile(const struct registry_schema *s, size_t *bytes, char *err, size_t errlen)
{
    struct decode_schema *ds = calloc(1, sizeof *ds);

    if (!ds) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ds->type = s->type;
    if (contract_compile(ds, s, err, errlen) != 0) {
        decode_schema_release(ds);
        return NULL;
    }
    switch (s->type) {
    case REGISTRY_AVRO: {
        struct avro_named_schema *refs = s->nrefs ? calloc(s->nrefs, sizeof *refs) : NULL;
        if (s->nrefs && !refs) {
            snprintf(err, errlen, "out of memory");
            break;
        }
        for (size_t i = 0; i < s->nrefs; i++)
            refs[i] = (struct avro_named_schema){ s->refs[i].text, s->refs[i].text_len };
        ds->avro = avro_schema_compile(s->text, s->text_len, refs, s->nrefs, err, errlen);
        free(refs);
        break;
    }
    case REGISTRY_PROTOBUF:
        ds->pb = protobuf_compile(s, err, errlen);
        break;
    case REGISTRY_JSON:
        break;   /* the payload is JSON already */
    }
    if (s->type != REGISTRY_JSON && !ds->avro && !ds->pb) {
        decode_schema_release(ds);
        return NULL;
    }
    /* What the compiled form holds is of the order of its text (and its rules' text). */
    *bytes = sizeof *ds + s->text_len * 2 + (s->rule_set ? 2048 * ruleset_count(ds->rules) : 0);
    return ds;
}

void decode_schema_release(void *compiled)
{
    struct decode_schema *ds = compiled;

    if (!ds)
        return;
    avro_schema_free(ds->avro);
    pb_schema_free(ds->pb);
    ruleset_free(ds->rules);
    jsonschema_free(ds->json);
    free(ds->unsupported);
    free(ds);
}

/* One framed field (the value or the key) to JSON text. On DECODE_OK *text and *text_len are
 * what sinks see; *owned is set when the text was built (else it points into @p data). */
static enum decode_verdict decode_framed(struct registry *reg, const struct conf_topic *format, const char *what,
                                         const uint8_t *data, size_t len, struct router_record *rec, char **owned,
                                         const char **text, size_t *text_len, char *why, size_t whylen)
{
    struct wire_frame frame;
    struct decode_schema *ds;
    char err[512], reason[768];
    struct buf out;
    void *compiled = NULL;

    if (wire_parse(data, len, &frame, err, sizeof err) != 0) {
        snprintf(why, whylen, "decode: %s: %s", what, err);
        return DECODE_FAIL;
    }
    if (data == (const uint8_t *)rec->rkm->payload) {
        rec->has_schema_id = 1;
        rec->schema_id = frame.schema_id;
    }
    switch (registry_get(reg, frame.schema_id, &compiled, reason, sizeof reason)) {
    case REGISTRY_WAIT:
        return DECODE_WAIT;
    case REGISTRY_UNUSABLE:
        snprintf(why, whylen, "decode: %s: %s", what, reason);
        return DECODE_FAIL;
    case REGISTRY_READY:
        break;
    }
    ds = compiled;
    err[0] = '\0';
    if (ds->type == REGISTRY_JSON) {
        if (json_check((const char *)data + frame.payload, len - frame.payload, err, sizeof err) != 0) {
            snprintf(why, whylen, "decode: %s: schema %" PRIu32 ": JSON payload: %s", what, frame.schema_id, err);
            return DECODE_FAIL;
        }
        *text = (const char *)data + frame.payload;
        *text_len = len - frame.payload;
        return DECODE_OK;
    }
    buf_init(&out, DECODED_SLACK_BYTES + (size_t)DECODED_FACTOR * len);
    if (ds->type == REGISTRY_AVRO) {
        struct avro_decode_opts opts = { .timestamps_iso = format->timestamps == CONF_TIMESTAMPS_ISO };
        if (avro_decode_json(ds->avro, data, len, frame.payload, &opts, &out, err, sizeof err) != 0)
            goto fail;
    } else {
        int32_t idx[WIRE_MAX_INDEXES];
        size_t nidx = 0, pos = frame.payload;
        if (wire_proto_indexes(data, len, &pos, idx, &nidx, err, sizeof err) != 0 ||
            pb_decode_json(ds->pb, idx, nidx, data, len, pos, &out, err, sizeof err) != 0)
            goto fail;
    }
    if (out.oom)
        goto fail;
    if (!(*owned = buf_steal(&out, text_len)))
        abort();   /* out of memory on the loop: better dead than a record dead-lettered for it */
    *text = *owned;
    return DECODE_OK;
fail:
    if (out.oom)
        snprintf(why, whylen, "decode: %s: schema %" PRIu32 ": the JSON would be over %zu bytes", what,
                 frame.schema_id, out.max);
    else
        snprintf(why, whylen, "decode: %s: schema %" PRIu32 ": %s", what, frame.schema_id, err[0] ? err : "cannot be decoded");
    buf_free(&out);
    return DECODE_FAIL;
}

/* A key whose schema is a string (the usual case) is that string, as Kafka Connect's converters
 * give it: "customer:{key}" must not become customer:"c-1". Other keys stay JSON text. */
static void key_unquote(struct router_record *rec)
{
    json_t *k;
    char *text;

    if (rec->key_len == 0 || rec->key[0] != '"')
        return;
    if (!(k = json_loadb(rec->key, rec->key_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)))
        return;
    if (json_is_string(k) && (text = malloc(json_string_length(k) + 1))) {
        memcpy(text, json_string_value(k), json_string_length(k) + 1);
        rec->key_len = json_string_length(k);
        free(rec->decoded_key);
        rec->decoded_key = text;
        rec->key = text;
    }
    json_decref(k);
}

enum decode_verdict decode_record(struct registry *reg, const struct conf_topic *format, struct router_record *rec,
                                  char *why, size_t whylen)
{
    const rd_kafka_message_t *rkm = rec->rkm;
    enum decode_verdict v = DECODE_OK;

    if (format->value_format == CONF_VALUE_CONFLUENT && rkm->payload && !rec->decoded_value) {
        v = decode_framed(reg, format, "value", (const uint8_t *)rkm->payload, rkm->len, rec, &rec->decoded_value, &rec->value,
                          &rec->value_len, why, whylen);
        if (v != DECODE_OK)
            return v;
    }
    if (format->key_format == CONF_KEY_STRING && rkm->key) {
        if (!json_utf8_valid(rkm->key, rkm->key_len)) {
            snprintf(why, whylen, "decode: key: not UTF-8 text (key_format \"string\")");
            return DECODE_FAIL;
        }
    } else if (format->key_format == CONF_KEY_CONFLUENT && rkm->key && !rec->decoded_key) {
        v = decode_framed(reg, format, "key", (const uint8_t *)rkm->key, rkm->key_len, rec, &rec->decoded_key, &rec->key, &rec->key_len,
                          why, whylen);
        if (v == DECODE_OK)
            key_unquote(rec);
    }
    return v;
}

enum decode_verdict decode_contract(struct registry *reg, const struct router_record *rec, struct decode_contract *c,
                                    char *why, size_t whylen)
{
    char reason[768];
    void *compiled = NULL;
    const struct decode_schema *ds;

    memset(c, 0, sizeof *c);
    if (!rec->has_schema_id)
        return DECODE_OK;
    switch (registry_get(reg, rec->schema_id, &compiled, reason, sizeof reason)) {
    case REGISTRY_WAIT:   /* pushed out of the cache since its value was decoded */
        return DECODE_WAIT;
    case REGISTRY_UNUSABLE:
        snprintf(why, whylen, "decode: value: %s", reason);
        return DECODE_FAIL;
    case REGISTRY_READY:
        break;
    }
    ds = compiled;
    c->json_schema = ds->json;
    c->rules = ds->rules;
    c->unsupported = ds->unsupported;
    return DECODE_OK;
}
