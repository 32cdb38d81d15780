/* The schemas and subjects of a Schema Registry, in memory (schema_store.h). */
#include "schema_store.h"

#include <stdio.h>
#include <string.h>

int schema_store_init(struct schema_store *st)
{
    st->schemas = json_array();
    st->subjects = json_object();
    st->next_id = 1;
    return st->schemas != NULL && st->subjects != NULL ? 0 : -1;
}

void schema_store_free(struct schema_store *st)
{
    json_decref(st->schemas);
    json_decref(st->subjects);
    st->schemas = st->subjects = NULL;
}

json_t *schema_store_by_id(const struct schema_store *st, json_int_t id)
{
    size_t i;
    json_t *s;

    json_array_foreach(st->schemas, i, s)
        if (json_integer_value(json_object_get(s, "id")) == id)
            return s;
    return NULL;
}

static json_t *references_or_empty(const json_t *s)
{
    json_t *refs = json_object_get(s, "references");

    return json_is_array(refs) ? refs : NULL;
}

/* Both absent, or both present and equal. */
static int same_part(const json_t *mine, const json_t *theirs)
{
    if (mine == NULL || theirs == NULL)
        return mine == theirs;
    return json_equal((json_t *)mine, (json_t *)theirs);
}

json_t *schema_store_find(const struct schema_store *st, const struct schema_def *def)
{
    size_t i;
    json_t *s;

    json_array_foreach(st->schemas, i, s) {
        if (strcmp(json_string_value(json_object_get(s, "schemaType")), def->type) != 0 ||
            strcmp(json_string_value(json_object_get(s, "schema")), def->text) != 0)
            continue;
        if (same_part(references_or_empty(s), def->refs) && same_part(json_object_get(s, "metadata"), def->metadata) &&
            same_part(json_object_get(s, "ruleSet"), def->rule_set))
            return s;
    }
    return NULL;
}

/* Checks a references array: each {name, subject, version} names an existing version. */
int schema_store_references_check(const struct schema_store *st, const json_t *refs, char *err, size_t errlen)
{
    size_t i;
    json_t *r, *ids;
    json_int_t version;

    if (refs == NULL || json_is_null(refs))
        return 0;
    if (!json_is_array(refs)) {
        snprintf(err, errlen, "references must be an array");
        return -1;
    }
    json_array_foreach(refs, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *subject = json_string_value(json_object_get(r, "subject"));

        version = json_integer_value(json_object_get(r, "version"));
        if (!json_is_object(r) || name == NULL || subject == NULL ||
            !json_is_integer(json_object_get(r, "version")) || json_object_size(r) != 3) {
            snprintf(err, errlen, "references[%zu] must be {name, subject, version}", i);
            return -1;
        }
        ids = json_object_get(st->subjects, subject);
        if (ids == NULL || version < 1 || (size_t)version > json_array_size(ids)) {
            snprintf(err, errlen, "references[%zu]: %.200s version %lld is not registered", i, subject,
                     (long long)version);
            return -1;
        }
    }
    return 0;
}

/* The registered view of a schema: {schema, schemaType unless AVRO, references unless empty}.
 * With serialized set, a PROTOBUF schema's "serialized" text replaces the schema. */
json_t *schema_store_schema_view(const json_t *s, int serialized)
{
    const char *type = json_string_value(json_object_get(s, "schemaType"));
    json_t *text = json_object_get(s, "schema"), *refs = references_or_empty(s);
    json_t *ser = json_object_get(s, "serialized");
    json_t *v;

    if (serialized && strcmp(type, "PROTOBUF") == 0 && json_is_string(ser))
        text = ser;
    v = json_pack("{s:O}", "schema", text);
    if (v != NULL && strcmp(type, "AVRO") != 0)
        json_object_set_new(v, "schemaType", json_string(type));
    if (v != NULL && refs != NULL && json_array_size(refs) > 0)
        json_object_set(v, "references", refs);
    if (v != NULL && json_is_object(json_object_get(s, "metadata")))
        json_object_set(v, "metadata", json_object_get(s, "metadata"));
    if (v != NULL && json_is_object(json_object_get(s, "ruleSet")))
        json_object_set(v, "ruleSet", json_object_get(s, "ruleSet"));
    return v;
}

json_t *schema_store_version_view(const json_t *s, const char *subject, size_t version, int serialized)
{
    json_t *v = schema_store_schema_view(s, serialized);

    if (v != NULL) {
        json_object_set_new(v, "subject", json_string(subject));
        json_object_set_new(v, "version", json_integer((json_int_t)version));
        json_object_set(v, "id", json_object_get(s, "id"));
    }
    return v;
}

json_t *schema_store_dump(const struct schema_store *st)
{
    return json_pack("{s:O, s:O}", "schemas", st->schemas, "subjects", st->subjects);
}

int schema_store_type_valid(const char *type)
{
    return strcmp(type, "AVRO") == 0 || strcmp(type, "PROTOBUF") == 0 || strcmp(type, "JSON") == 0;
}

/* Loads a dump into an empty registry; 0 or -1 with err set. */
int schema_store_load(struct schema_store *st, const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr), *schemas, *subjects, *s, *ids, *id;
    const char *key;
    size_t i, k;
    int rc = -1;

    if (doc == NULL) {
        snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
        return -1;
    }
    schemas = json_object_get(doc, "schemas");
    subjects = json_object_get(doc, "subjects");
    if (!json_is_array(schemas) || !json_is_object(subjects) || json_array_size(schemas) > SCHEMA_STORE_MAX ||
        json_object_size(subjects) > SCHEMA_STORE_MAX) {
        snprintf(err, errlen, "%s: want {\"schemas\": [...] (at most %d), \"subjects\": {...}}", path,
                 SCHEMA_STORE_MAX);
        goto out;
    }
    json_array_foreach(schemas, i, s) {
        json_int_t n = json_integer_value(json_object_get(s, "id"));
        const char *type = json_string_value(json_object_get(s, "schemaType"));

        if (!json_is_string(json_object_get(s, "schema")) || n < 1 || n >= SCHEMA_STORE_MAX * 100L ||
            type == NULL || !schema_store_type_valid(type) || schema_store_by_id(st, n) != NULL ||
            (json_object_get(s, "serialized") != NULL && !json_is_string(json_object_get(s, "serialized"))) ||
            (json_object_get(s, "metadata") != NULL && !json_is_object(json_object_get(s, "metadata"))) ||
            (json_object_get(s, "ruleSet") != NULL && !json_is_object(json_object_get(s, "ruleSet")))) {
            snprintf(err, errlen, "%s: schemas[%zu]: want a new id >= 1, schemaType AVRO|PROTOBUF|JSON, "
                     "a schema string and, if any, a serialized string, metadata and ruleSet objects", path, i);
            goto out;
        }
        json_array_append(st->schemas, s);
        if (n >= st->next_id)
            st->next_id = (long)n + 1;
    }
    json_object_foreach(subjects, key, ids) {
        if (!json_is_array(ids)) {
            snprintf(err, errlen, "%s: subjects.%.200s: want an array of ids", path, key);
            goto out;
        }
        json_array_foreach(ids, k, id)
            if (schema_store_by_id(st, json_integer_value(id)) == NULL) {
                snprintf(err, errlen, "%s: subjects.%.200s[%zu]: no schema with that id", path, key, k);
                goto out;
            }
        json_object_set(st->subjects, key, ids);
    }
    /* References are checked once every subject is known, whatever the order. */
    json_array_foreach(st->schemas, i, s)
        if (schema_store_references_check(st, json_object_get(s, "references"), err, errlen) != 0)
            goto out;
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

json_t *schema_store_register(struct schema_store *st, const char *subject, const struct schema_def *def,
                              int *changed, char *err, size_t errlen)
{
    json_t *s = schema_store_find(st, def), *ids, *id;
    size_t i;

    *changed = 0;
    if (s == NULL) {
        if (json_array_size(st->schemas) >= SCHEMA_STORE_MAX) {
            snprintf(err, errlen, "at most %d schemas", SCHEMA_STORE_MAX);
            return NULL;
        }
        s = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)st->next_id, "schemaType", def->type, "schema", def->text);
        if (s == NULL || (def->refs != NULL && json_object_set(s, "references", (json_t *)def->refs) != 0) ||
            (def->metadata != NULL && json_object_set(s, "metadata", (json_t *)def->metadata) != 0) ||
            (def->rule_set != NULL && json_object_set(s, "ruleSet", (json_t *)def->rule_set) != 0) ||
            json_array_append_new(st->schemas, s) != 0) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        st->next_id++;
        *changed = 1;
    }
    ids = json_object_get(st->subjects, subject);
    if (ids == NULL && json_object_size(st->subjects) >= SCHEMA_STORE_MAX) {
        snprintf(err, errlen, "at most %d subjects", SCHEMA_STORE_MAX);
        return NULL;
    }
    if (ids == NULL) {
        ids = json_array();
        if (ids == NULL || json_object_set_new(st->subjects, subject, ids) != 0) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
    }
    json_array_foreach(ids, i, id)
        if (json_equal(id, json_object_get(s, "id")))
            return s;
    if (json_array_append(ids, json_object_get(s, "id")) != 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *changed = 1;
    return s;
}
