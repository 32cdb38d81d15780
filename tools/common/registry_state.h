/* The state of tools/schema-registry: schemas by id and subjects' versions, kept as jansson
 * values so the dump (--load, --dump, GET /_dump) is the state itself:
 *   {"schemas":[{"id":1,"schemaType":"AVRO","schema":"...","references":[{"name":..,
 *     "subject":..,"version":1}],"serialized":"base64 (PROTOBUF, optional)"}],
 *    "subjects":{"s":[1,3]}}           version k of s is the k-th id of its list */
#ifndef SLUICE_REGISTRY_STATE_H
#define SLUICE_REGISTRY_STATE_H

#include <stddef.h>

#include <jansson.h>

#define REGISTRY_SCHEMAS_MAX 100000      /* schemas, and subjects */

struct registry_state {
    json_t *schemas;                     /* array of {id, schemaType, schema, references?, serialized?} */
    json_t *subjects;                    /* object: subject -> array of ids, version k at k-1 */
    long next_id;
    const char *dump_path;               /* written after each change, or NULL */
};

/** @brief An empty state with ids from 1; 0 or -1 (out of memory). */
int registry_state_init(struct registry_state *st, const char *dump_path);
void registry_state_free(struct registry_state *st);

/** @brief Loads a dump into an empty state; 0 or -1 with err set. */
int registry_state_load(struct registry_state *st, const char *path, char *err, size_t errlen);

/** @brief The dump document (a new reference). */
json_t *registry_state_dump(const struct registry_state *st);

/** @brief Writes the dump to dump_path (atomically) when there is one; complains on stderr. */
void registry_state_save(const struct registry_state *st);

int registry_schema_type_valid(const char *type);

json_t *registry_schema_by_id(const struct registry_state *st, json_int_t id);

/** @brief The schema with this type, text and references (NULL = none), or NULL. */
json_t *registry_schema_find(const struct registry_state *st, const char *type, const char *text,
                             const json_t *refs);

/** @brief NULL or an array of {name, subject, version} each naming a registered version; 0 or
 *  -1 with err set. */
int registry_references_check(const struct registry_state *st, const json_t *refs, char *err, size_t errlen);

/** @brief Registers under subject (an identical schema keeps its id, like the real registry);
 *  the schema's entry, or NULL with err set. *changed tells whether the state changed. */
json_t *registry_register(struct registry_state *st, const char *subject, const char *type, const char *text,
                          const json_t *refs, int *changed, char *err, size_t errlen);

/** @brief {schema, schemaType unless AVRO, references unless empty}; with serialized set, a
 *  PROTOBUF schema's "serialized" text (from a dump) replaces its text when it has one. */
json_t *registry_schema_view(const json_t *s, int serialized);

/** @brief The schema view plus subject, version and id. */
json_t *registry_version_view(const json_t *s, const char *subject, size_t version, int serialized);

#endif
