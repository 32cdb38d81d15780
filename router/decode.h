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

/** @brief registry_compile_fn: an Avro, Protobuf or JSON Schema schema in the decoders' form. */
void *decode_schema_compile(const struct registry_schema *s, size_t *bytes, char *err, size_t errlen);
/** @brief registry_release_fn. */
void decode_schema_release(void *compiled);

#endif
