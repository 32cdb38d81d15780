/* The decode stage: a record of a topic with a "confluent" format becomes the JSON text every
 * filter, mapping and sink reads, once per record, before fan-out. Its schema comes from the
 * registry (registry.h); decode_schema_compile is the registry's compile callback. */
#ifndef SLUICE_ROUTER_DECODE_H
#define SLUICE_ROUTER_DECODE_H

#include <stddef.h>

#include "conf_products.h"
#include "engine.h"
#include "registry.h"

enum decode_verdict {
    DECODE_OK,          /* rec->key / rec->value are what sinks see */
    DECODE_WAIT,        /* its schema is being fetched: the record waits in its partition */
    DECODE_FAIL,        /* why says why ("decode: schema 7: ..."); rec->schema_id set when known */
};

/** @brief Decode @p rec's value and key as @p format says. */
enum decode_verdict decode_record(struct registry *reg, const struct conf_topic *format, struct router_record *rec,
                                  char *why, size_t whylen);

struct jsonschema;
struct ruleset;

/* The data contract the registry keeps with a record's value schema (topics.<name>.contract
 * "registry"), valid until control returns to the loop. */
struct decode_contract {
    const struct jsonschema *json_schema;   /* JSON Schema payloads: the schema to validate with */
    const struct ruleset *rules;            /* the ruleSet's read side; may hold no rule */
    const char *unsupported;                /* why the contract cannot be checked; NULL: it can */
};

/**
 * @brief The contract of @p rec's value schema (rec->schema_id; none when the value had no
 * schema). DECODE_WAIT when the schema must be fetched again, DECODE_FAIL (why) when the
 * registry no longer has it.
 */
enum decode_verdict decode_contract(struct registry *reg, const struct router_record *rec, struct decode_contract *c,
                                    char *why, size_t whylen);

/** @brief registry_compile_fn: an Avro, Protobuf or JSON Schema schema in the decoders' form. */
void *decode_schema_compile(const struct registry_schema *s, size_t *bytes, char *err, size_t errlen);
/** @brief registry_release_fn. */
void decode_schema_release(void *compiled);

#endif
