/* The state of a Schema Registry (tools/schema-registry, the embedded one of `sluice dev`):
 * schemas by id and subjects' versions, in memory, kept as jansson values so the dump
 * (schema-registry's --load, --dump and GET /_dump, sluice dev's --registry-load) is the state
 * itself:
 *   {"schemas":[{"id":1,"schemaType":"AVRO","schema":"...","references":[{"name":..,
 *     "subject":..,"version":1}],"metadata":{..},"ruleSet":{"domainRules":[..]},
 *     "serialized":"base64 (PROTOBUF, optional)"}],
 *    "subjects":{"s":[1,3]}}           version k of s is the k-th id of its list */
#ifndef SLUICE_SCHEMA_STORE_H
#define SLUICE_SCHEMA_STORE_H

#include <stddef.h>

#include <jansson.h>

#define SCHEMA_STORE_MAX 100000      /* schemas, and subjects */

struct schema_store {
    json_t *schemas;                     /* array of {id, schemaType, schema, references?, metadata?, ruleSet?, serialized?} */
    json_t *subjects;                    /* object: subject -> array of ids, version k at k-1 */
    long next_id;
};

/** @brief An empty state with ids from 1; 0 or -1 (out of memory). */
int schema_store_init(struct schema_store *st);
void schema_store_free(struct schema_store *st);

/** @brief Loads a dump into an empty state; 0 or -1 with err set. */
int schema_store_load(struct schema_store *st, const char *path, char *err, size_t errlen);

/** @brief The dump document (a new reference). */
json_t *schema_store_dump(const struct schema_store *st);

int schema_store_type_valid(const char *type);

json_t *schema_store_by_id(const struct schema_store *st, json_int_t id);

/* What identifies a schema, as a register or lookup body gives it: its type, text, references,
 * and the data contract attached to it (Confluent's metadata and ruleSet: the same text with
 * other rules is another schema, with its own id, as in the real registry). NULL: none. */
struct schema_def {
    const char *type, *text;
    const json_t *refs, *metadata, *rule_set;
};

/** @brief The schema with this definition, or NULL. */
json_t *schema_store_find(const struct schema_store *st, const struct schema_def *def);

/** @brief NULL or an array of {name, subject, version} each naming a registered version; 0 or
 *  -1 with err set. */
int schema_store_references_check(const struct schema_store *st, const json_t *refs, char *err, size_t errlen);

/** @brief Registers under subject (an identical schema keeps its id, like the real registry);
 *  the schema's entry, or NULL with err set. *changed tells whether the state changed. */
json_t *schema_store_register(struct schema_store *st, const char *subject, const struct schema_def *def,
                              int *changed, char *err, size_t errlen);

/** @brief {schema, schemaType unless AVRO, references unless empty, metadata and ruleSet when
 *  the schema has them}; with serialized set, a
 *  PROTOBUF schema's "serialized" text (from a dump) replaces its text when it has one. */
json_t *schema_store_schema_view(const json_t *s, int serialized);

/** @brief The schema view plus subject, version and id. */
json_t *schema_store_version_view(const json_t *s, const char *subject, size_t version, int serialized);

#endif
