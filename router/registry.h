/* The Schema Registry client: schema ids to schemas, on the event loop (the HTTP engine of the
 * sinks, libcurl multi on libevent). Ids are immutable, so a fetched schema is kept until the
 * memory bound pushes it out (least recently used first); one request per id is in flight
 * however many records wait for it; "not found" is believed for missing_ttl_ms. Network errors,
 * timeouts, 429 and 5xx are retried with backoff (Retry-After honoured by the engine); 401/403
 * put the client in a fault the router parks the sinks for. Nothing here blocks the loop. */
#ifndef SLUICE_ROUTER_REGISTRY_H
#define SLUICE_ROUTER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <jansson.h>

#include "conf_products.h"

enum registry_schema_type { REGISTRY_AVRO, REGISTRY_PROTOBUF, REGISTRY_JSON };

/* A referenced schema (Avro named types from another subject, a Protobuf import). */
struct registry_ref {
    char *name;                 /* as the referring schema names it (an import path for Protobuf) */
    char *subject;
    long long version;
    char *text;                 /* its schema text (Protobuf: the base64 FileDescriptorProto) */
    size_t text_len;
};

/* What the registry holds for one id, as fetched. */
struct registry_schema {
    uint32_t id;
    enum registry_schema_type type;
    char *text;                 /* Avro / JSON Schema text; Protobuf: the base64 FileDescriptorProto */
    size_t text_len;
    struct registry_ref *refs;  /* every schema it references, directly or not; dependencies first */
    size_t nrefs;
    json_t *rule_set;           /* the answer's "ruleSet" (its data contract's rules), or NULL */
};

/* Turns a fetched schema into the decoder's form. Returns it, or NULL with the reason in err
 * (the id is then unusable: its records are dead-lettered with that reason). *bytes: its size. */
typedef void *(*registry_compile_fn)(const struct registry_schema *s, size_t *bytes, char *err, size_t errlen);
typedef void (*registry_release_fn)(void *compiled);
/* Something changed: an id became ready or missing, or the fault state changed. */
typedef void (*registry_update_fn)(void *arg);

enum registry_state { REGISTRY_UP, REGISTRY_DOWN, REGISTRY_UNAUTHORIZED };

struct registry_stats {
    uint64_t requests_ok, requests_not_found, requests_retried, requests_unauthorized, requests_failed;
    uint64_t evictions;
    size_t cached, cached_bytes;        /* usable schemas kept, and what they hold */
    size_t fetching;                    /* ids being fetched */
};

struct registry;

struct registry *registry_new(struct event_base *eb, const struct conf_registry *conf, registry_compile_fn compile,
                              registry_release_fn release, registry_update_fn update, void *update_arg, char *err,
                              size_t errlen);

enum registry_lookup {
    REGISTRY_READY,             /* *compiled is the schema's decoder form, valid until control returns to the loop */
    REGISTRY_WAIT,              /* being fetched (a fetch was started if none was); update() says when */
    REGISTRY_UNUSABLE,          /* the registry has no such id, or its schema cannot be used: why says which */
};

/**
 * @brief The schema of @p id. REGISTRY_READY: @p compiled set; REGISTRY_UNUSABLE: the reason in
 * @p why ("schema 7 does not exist in the registry (40403)", "schema 7: <compile error>").
 */
enum registry_lookup registry_get(struct registry *reg, uint32_t id, void **compiled, char *why, size_t whylen);

/** @brief Up, down (requests failing, retried) or unauthorized; @p why says the last error. */
enum registry_state registry_state(const struct registry *reg, char *why, size_t whylen);
const char *registry_state_name(enum registry_state st);
const struct registry_stats *registry_stats(const struct registry *reg);

/** @brief Stop every request (no update is called) and free everything. */
void registry_free(struct registry *reg);

#endif
