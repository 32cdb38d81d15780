/* JSON Schema (draft-07) over jansson: the contract a data product's records must meet. A schema
 * is compiled once (when the configuration is loaded) into an immutable tree that any number of
 * threads may validate with. Every keyword that constrains and is not implemented is refused at
 * compile time with its path, never silently ignored.
 *
 * Supported: type, enum, const, multipleOf, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * minLength, maxLength (code points), pattern (pcre2, UTF, unanchored), format (date-time, date,
 * time, email, uuid, uri), required, properties, additionalProperties, patternProperties,
 * propertyNames, minProperties, maxProperties, dependencies, items, additionalItems, minItems,
 * maxItems, uniqueItems, contains, allOf, anyOf, oneOf, not, if/then/else, definitions, $ref to
 * "#" or a JSON pointer within the document ("#/definitions/x", ~0 ~1, %-encoding), boolean
 * schemas. Refused: remote or $id-relative $ref, "#name" anchors, $id in a subschema (a base-URI
 * change), other formats, unknown keywords (except annotations and "x-" extensions). */
#ifndef SLUICE_JSONSCHEMA_H
#define SLUICE_JSONSCHEMA_H

#include <stddef.h>
#include <jansson.h>

/** @brief Deepest schema nesting the compiler accepts, and deepest evaluation (instance depth
 * plus $ref hops) the validator walks before it gives up with an error. */
#define JSONSCHEMA_MAX_DEPTH 64

/** @brief Most subschemas one schema may hold: bounds its compiled size (a subschema's node
 * is a few hundred bytes, its text may be two) to some tens of MiB. */
#define JSONSCHEMA_MAX_SUBSCHEMAS 65536

struct jsonschema;                       /* compiled, immutable */

/**
 * @brief Compile a draft-07 schema document (deep-copied: the caller keeps @p schema).
 * @return NULL on error with "<json path in the schema>: <reason>" in @p err, e.g.
 * "$.properties.email.format: unsupported format \"hostname\"" or
 * "$.foo: keyword not supported". Annotations ($schema, $id at the root, title, description,
 * default, examples, $comment, readOnly, writeOnly, contentMediaType, contentEncoding) are accepted.
 */
struct jsonschema *jsonschema_compile(const json_t *schema, char *err, size_t errlen);

struct jsonschema_violation {
    char path[256];       /* JSON path of the failing value in the instance, "$.email" */
    char keyword[64];     /* "format", "required", "type", ... */
    char schema_path[256];/* where in the schema: "$.properties.email.format" */
    char reason[512];     /* a person can act on it: "$.email: \"bob@\" is not an email (format)" */
};

/**
 * @brief Validate @p instance against @p s.
 * @return 1 valid, 0 invalid (the first violation in *v, in a deterministic order), -1 when the
 * evaluation itself fails (too deep, over its step budget, out of memory): the reason is in
 * v->reason, with keyword "$evaluation".
 */
int jsonschema_validate(const struct jsonschema *s, const json_t *instance, struct jsonschema_violation *v);

void jsonschema_free(struct jsonschema *s);

#endif
