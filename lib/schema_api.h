/* The Confluent Schema Registry REST API over a schema_store, without a transport: one request
 * (method, path, query, body) in, one answer (status, JSON or text) out. tools/schema-registry
 * serves it on evhttp, `sluice dev --registry` on sluice's own HTTP server (router/dev_registry.c).
 *
 * Subjects and versions are path segments, percent-decoded:
 *   POST /subjects/{s}/versions        register {schema, schemaType?, references?} -> {id}
 *   POST /subjects/{s}                 look up a schema under s -> {subject, id, version, schema...}
 *   GET  /subjects                     ["s", ...]
 *   GET  /subjects/{s}/versions        [1, 2, ...]
 *   GET  /subjects/{s}/versions/{v|latest|-1}[/schema]
 *   GET  /schemas/ids/{id}[?subject=&format=serialized]   {schema, schemaType?, references?}
 *   GET  /schemas/ids/{id}/schema      the schema text alone
 *   GET  /schemas/ids/{id}/versions    [{subject, version}, ...]
 *   GET  /schemas/types                ["AVRO", "JSON", "PROTOBUF"]
 * Like the real registry, an identical schema (type, text, references) gets one id whatever the
 * subject; ids count from 1; schemaType is left out for AVRO and references when empty; errors
 * are {"error_code":40401|40402|40403|42201|42202|404|405,"message":...}; any other path
 * (e.g. /associations/..., which the JS client asks and tolerates) is 404 {"error_code":404}.
 * Schema texts are stored as given (no canonicalisation). For format=serialized of a PROTOBUF
 * schema the answer is the schema's "serialized" text from the dump when it has one, else the
 * registered text itself: the JS client registers base64 FileDescriptorProtos already. */
#ifndef SLUICE_SCHEMA_API_H
#define SLUICE_SCHEMA_API_H

#include <stddef.h>

#include <jansson.h>

#include "schema_store.h"

/* The Content-Type of every answer, the text ones included (as the real registry). */
#define SCHEMA_API_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

/* One answer: a status with a JSON body, or with a text body (raw). */
struct schema_api_reply {
    int status;
    json_t *body;
    char *raw;
    int changed;                         /* the store changed (time to write a dump) */
};

/**
 * @brief Answer one request: @p method ("GET", "POST", ...), @p path (not decoded, without the
 * query), @p query (not decoded, or NULL), @p body of @p len bytes (POST). Fills a zeroed @p rp;
 * free it with schema_api_reply_clear.
 */
void schema_api_answer(struct schema_store *st, const char *method, const char *path, const char *query,
                       const char *body, size_t len, struct schema_api_reply *rp);

/** @brief The registry's error answer: {"error_code": code, "message": ...}. */
void schema_api_error(struct schema_api_reply *rp, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** @brief 200 with @p body (taken), or 500 {"error_code":50001} when it is NULL (out of memory). */
void schema_api_json(struct schema_api_reply *rp, json_t *body);

/** @brief The answer's bytes (compact JSON, or the text), malloc'd, with *len; NULL when there
 * is none or memory is short. */
char *schema_api_reply_text(const struct schema_api_reply *rp, size_t *len);

void schema_api_reply_clear(struct schema_api_reply *rp);

#endif
