/* The Schema Registry REST API over a schema_store (schema_api.h). */
#include "schema_api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "uri.h"

#define SEGMENTS_MAX 8

void schema_api_error(struct schema_api_reply *rp, int status, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (size_t n = strlen(msg), at; (at = json_utf8_invalid_at(msg, n)) < n; n--)
        memmove(msg + at, msg + at + 1, n - at);   /* a "%.200s" may cut a character: drop its bytes */
    json_decref(rp->body);
    rp->status = status;
    rp->body = json_pack("{s:i, s:s}", "error_code", code, "message", msg);
}

void schema_api_json(struct schema_api_reply *rp, json_t *body)
{
    json_decref(rp->body);
    rp->status = body != NULL ? 200 : 500;
    rp->body = body != NULL ? body : json_pack("{s:i, s:s}", "error_code", 50001, "message", "out of memory");
}

static void reply_raw(struct schema_api_reply *rp, const char *text)
{
    rp->raw = strdup(text);
    rp->status = 200;
    if (rp->raw == NULL)
        schema_api_json(rp, NULL);
}

char *schema_api_reply_text(const struct schema_api_reply *rp, size_t *len)
{
    char *text = rp->body != NULL ? json_dumps(rp->body, JSON_COMPACT)
                 : rp->raw != NULL ? strdup(rp->raw) : NULL;

    *len = text != NULL ? strlen(text) : 0;
    return text;
}

void schema_api_reply_clear(struct schema_api_reply *rp)
{
    json_decref(rp->body);
    free(rp->raw);
    memset(rp, 0, sizeof *rp);
}

/* Whole-string decimal integer in [1, 2^31-1]; 0 or -1. */
static int parse_id(const char *s, long *out)
{
    char *end;
    long v;

    if (*s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > 2147483647L)
        return -1;
    *out = v;
    return 0;
}

/* The ids of a subject, or NULL with a 40401 reply. */
static json_t *subject_ids(struct schema_store *st, const char *subject, struct schema_api_reply *rp)
{
    json_t *ids = json_object_get(st->subjects, subject);

    if (ids == NULL)
        schema_api_error(rp, 404, 40401, "Subject '%.200s' not found.", subject);
    return ids;
}

/* Version text "latest", "-1" or 1..n into *version; a reply on failure. */
static int version_parse(const char *text, const json_t *ids, size_t *version, struct schema_api_reply *rp)
{
    long v;

    if (strcmp(text, "latest") == 0 || strcmp(text, "-1") == 0) {
        *version = json_array_size(ids);
        return 0;
    }
    if (parse_id(text, &v) != 0) {
        schema_api_error(rp, 422, 42202, "The specified version '%.64s' is not a valid version id. Allowed "
                         "values are between [1, 2^31-1] and the string \"latest\"", text);
        return -1;
    }
    if ((size_t)v > json_array_size(ids)) {
        schema_api_error(rp, 404, 40402, "Version %ld not found.", v);
        return -1;
    }
    *version = (size_t)v;
    return 0;
}

/* An optional contract part of a body ("metadata", "ruleSet"): an object, or absent (null too). */
static int contract_part(const json_t *doc, const char *key, const json_t **out, struct schema_api_reply *rp)
{
    const json_t *v = json_object_get(doc, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        schema_api_error(rp, 422, 42201, "Invalid schema: %s must be an object", key);
        return -1;
    }
    if (json_object_size(v) > 0)   /* an empty one is no contract, like no references */
        *out = v;
    return 0;
}

/* Parses a register or lookup body into the schema's definition; a reply on failure. */
static int schema_body_parse(struct schema_store *st, const char *body, size_t len, json_t **doc,
                             struct schema_def *def, struct schema_api_reply *rp)
{
    json_error_t jerr;
    json_t *parsed, *refs;
    char err[512];

    memset(def, 0, sizeof *def);
    *doc = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
    if (*doc == NULL || !json_is_object(*doc)) {
        schema_api_error(rp, 422, 42201, "Invalid schema: the body is not a JSON object: %s",
                         *doc ? "not an object" : jerr.text);
        return -1;
    }
    def->text = json_string_value(json_object_get(*doc, "schema"));
    def->type = json_string_value(json_object_get(*doc, "schemaType"));
    refs = json_object_get(*doc, "references");
    if (def->type == NULL)
        def->type = "AVRO";
    if (def->text == NULL || !schema_store_type_valid(def->type)) {
        schema_api_error(rp, 422, 42201, "Invalid schema: want \"schema\" text and schemaType AVRO, PROTOBUF "
                         "or JSON");
        return -1;
    }
    if (schema_store_references_check(st, refs, err, sizeof err) != 0) {
        schema_api_error(rp, 422, 42201, "Invalid schema: %s", err);
        return -1;
    }
    if (!json_is_null(refs) && !(json_is_array(refs) && json_array_size(refs) == 0))
        def->refs = refs;   /* no references, however they are written, is one identity */
    if (contract_part(*doc, "metadata", &def->metadata, rp) != 0 ||
        contract_part(*doc, "ruleSet", &def->rule_set, rp) != 0)
        return -1;
    if (strcmp(def->type, "PROTOBUF") != 0) {   /* Avro and JSON Schema are JSON documents */
        parsed = json_loads(def->text, JSON_DECODE_ANY, &jerr);
        if (parsed == NULL) {
            schema_api_error(rp, 422, 42201, "Invalid schema: not JSON: %s at %d", jerr.text, jerr.position);
            return -1;
        }
        json_decref(parsed);
    }
    return 0;
}

static void on_register(struct schema_store *st, const char *body, size_t len, const char *subject,
                        struct schema_api_reply *rp)
{
    struct schema_def def;
    json_t *doc = NULL, *s;
    char err[256];
    int changed;

    if (schema_body_parse(st, body, len, &doc, &def, rp) == 0) {
        s = schema_store_register(st, subject, &def, &changed, err, sizeof err);
        if (s == NULL)
            schema_api_error(rp, 500, 50001, "%s", err);
        else
            schema_api_json(rp, json_pack("{s:O}", "id", json_object_get(s, "id")));
        rp->changed = changed;
    }
    json_decref(doc);
}

static void on_lookup(struct schema_store *st, const char *body, size_t len, const char *subject,
                      struct schema_api_reply *rp)
{
    struct schema_def def;
    json_t *doc = NULL, *s, *ids, *id;
    size_t i;

    if ((ids = subject_ids(st, subject, rp)) == NULL || schema_body_parse(st, body, len, &doc, &def, rp) != 0)
        goto out;
    s = schema_store_find(st, &def);
    json_array_foreach(ids, i, id)
        if (s != NULL && json_equal(id, json_object_get(s, "id")))
            break;
    if (s == NULL || i == json_array_size(ids))
        schema_api_error(rp, 404, 40403, "Schema not found");
    else
        schema_api_json(rp, schema_store_version_view(s, subject, i + 1, 0));
out:
    json_decref(doc);
}

static void on_schema_by_id(struct schema_store *st, const char *id_text, const char *tail, int serialized,
                            struct schema_api_reply *rp)
{
    long id;
    json_t *s = NULL, *list, *ids, *one;
    const char *subject;
    size_t i;

    if (parse_id(id_text, &id) == 0)
        s = schema_store_by_id(st, id);
    if (s == NULL) {
        schema_api_error(rp, 404, 40403, "Schema %.32s not found", id_text);
    } else if (tail == NULL) {
        schema_api_json(rp, schema_store_schema_view(s, serialized));
    } else if (strcmp(tail, "schema") == 0) {
        reply_raw(rp, json_string_value(json_object_get(s, "schema")));
    } else if (strcmp(tail, "versions") == 0) {
        list = json_array();
        json_object_foreach(st->subjects, subject, ids)
            json_array_foreach(ids, i, one)
                if (json_integer_value(one) == id)
                    json_array_append_new(list, json_pack("{s:s, s:I}", "subject", subject, "version",
                                                          (json_int_t)(i + 1)));
        schema_api_json(rp, list);
    } else {
        schema_api_error(rp, 404, 404, "HTTP 404 Not Found");
    }
}

static void on_subject_get(struct schema_store *st, char **seg, int nseg, int serialized,
                           struct schema_api_reply *rp)
{
    json_t *ids = subject_ids(st, seg[1], rp), *list, *s;
    size_t version, i;

    if (ids == NULL)
        return;
    if (nseg == 3) {
        list = json_array();
        for (i = 1; list != NULL && i <= json_array_size(ids); i++)
            json_array_append_new(list, json_integer((json_int_t)i));
        schema_api_json(rp, list);
        return;
    }
    if (version_parse(seg[3], ids, &version, rp) != 0)
        return;
    if (version == 0) {
        schema_api_error(rp, 404, 40402, "Version latest not found.");
        return;
    }
    s = schema_store_by_id(st, json_integer_value(json_array_get(ids, version - 1)));
    if (nseg == 4)
        schema_api_json(rp, schema_store_version_view(s, seg[1], version, serialized));
    else if (strcmp(seg[4], "schema") == 0)
        reply_raw(rp, json_string_value(json_object_get(s, "schema")));
    else
        schema_api_error(rp, 404, 404, "HTTP 404 Not Found");
}

static json_t *subjects_list(const struct schema_store *st)
{
    json_t *list = json_array(), *ids;
    const char *subject;

    json_object_foreach(st->subjects, subject, ids)
        if (list != NULL)
            json_array_append_new(list, json_string(subject));
    return list;
}

/* Splits the path into percent-decoded segments; the count, or -1 when there are too many or
 * one does not decode to UTF-8 (subjects are JSON strings). seg[] must be freed by the caller. */
static int path_split(const char *path, char **seg, int max)
{
    int n = 0;
    const char *p = path, *slash;

    while (*p == '/')
        p++;
    while (*p != '\0') {
        size_t len;

        slash = strchr(p, '/');
        len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == max || (seg[n] = uri_decode(p, len, 0)) == NULL || !json_utf8_valid(seg[n], strlen(seg[n])))
            return -1;
        n++;
        p += len;
        while (*p == '/')
            p++;
    }
    return n;
}

void schema_api_answer(struct schema_store *st, const char *method, const char *path, const char *query,
                       const char *body, size_t len, struct schema_api_reply *rp)
{
    char *seg[SEGMENTS_MAX] = { 0 };
    int nseg = path_split(path, seg, SEGMENTS_MAX);
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    char *format = uri_query_param(query, "format");
    int serialized = format != NULL && strcmp(format, "serialized") == 0;

    free(format);
    if (nseg >= 1 && strcmp(seg[0], "subjects") == 0) {
        if (nseg == 1 && get)
            schema_api_json(rp, subjects_list(st));
        else if (nseg == 3 && strcmp(seg[2], "versions") == 0 && post)
            on_register(st, body, len, seg[1], rp);
        else if (nseg == 2 && post)
            on_lookup(st, body, len, seg[1], rp);
        else if (nseg >= 3 && nseg <= 5 && strcmp(seg[2], "versions") == 0 && get)
            on_subject_get(st, seg, nseg, serialized, rp);
        else if (nseg == 3 || nseg == 2 || nseg == 4)
            schema_api_error(rp, 405, 405, "HTTP 405 Method Not Allowed");
    } else if (nseg >= 3 && nseg <= 4 && strcmp(seg[0], "schemas") == 0 && strcmp(seg[1], "ids") == 0 && get) {
        on_schema_by_id(st, seg[2], nseg == 4 ? seg[3] : NULL, serialized, rp);
    } else if (nseg == 2 && strcmp(seg[0], "schemas") == 0 && strcmp(seg[1], "types") == 0 && get) {
        schema_api_json(rp, json_pack("[s, s, s]", "AVRO", "JSON", "PROTOBUF"));
    }
    if (rp->status == 0)
        schema_api_error(rp, 404, 404, "HTTP 404 Not Found");
    for (int i = 0; i < SEGMENTS_MAX; i++)
        free(seg[i]);
}
