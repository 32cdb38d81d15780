/* Avro binary → plain JSON, sluice's own decoder (issue 13): the writer's schema only, compiled
 * once into a flat array of nodes, then each datum decoded straight into the caller's buffer.
 *
 * The JSON is the one filters, mappings and sinks already read, not Avro's JSON encoding:
 * - unions are unwrapped to the bare value (null → null);
 * - enums are their symbol; bytes and fixed are base64 (RFC 4648, padded);
 * - decimal (bytes or fixed) is an exact JSON number with the schema's scale ("12.30");
 * - date, time-*, timestamp-*, local-timestamp-* are numbers; with timestamps_iso the
 *   timestamps are ISO-8601 text ("2026-12-06T02:03:34.123Z", local ones without the Z, years
 *   outside 0000..9999 as a sign and six or more digits as JavaScript does) and dates
 *   "YYYY-MM-DD"; time-* stay numbers;
 * - uuid on a string is the string, on fixed(16) the canonical 8-4-4-4-12 text;
 * - duration (fixed 12) is {"months":M,"days":D,"milliseconds":MS};
 * - float and double print the shortest text that reads back to the same value; NaN and the
 *   infinities, which JSON lacks, are the strings "NaN", "Infinity", "-Infinity" (as the
 *   proto3 JSON mapping writes them, so both decoders agree);
 * - a map is an object (a key repeated in the data is repeated in the object).
 * An unknown or invalid logical type falls back to its underlying type, as the spec says
 * (timestamp-nanos and local-timestamp-nanos are known too). Schemas: names and namespaces by
 * the spec's rules (an unqualified reference not found in the enclosing namespace is tried in
 * the null one, as the Java parser does); names, field names and symbols must be
 * [A-Za-z_][A-Za-z0-9_]*; aliases, defaults and doc are ignored (writer schema only).
 *
 * Limits against hostile input: no length or count is believed before it is checked against
 * the bytes left; data nests at most AVRO_MAX_DEPTH records, arrays and maps deep (a recursive
 * schema cannot recurse further); a datum holds at most AVRO_MAX_ZERO_SIZE_VALUES values that
 * take no bytes and are not paid for by a union index or a map key (nulls, empty records,
 * fixed(0): as array items or record fields, each of which would otherwise cost CPU for free),
 * and a schema whose byte-less type stands for more values than that is refused; a decimal is
 * at most AVRO_DECIMAL_MAX_BYTES bytes with a scale of at most AVRO_DECIMAL_MAX_SCALE. Errors
 * read "<what> at byte N", N counted from value[0]; for a length or count, N is where its
 * varint starts and "bytes left" are those after it. */
#ifndef SLUICE_AVRO_H
#define SLUICE_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/** @brief Deepest nesting of records, arrays and maps in a datum. */
#define AVRO_MAX_DEPTH 64
/** @brief Deepest nesting of types in a schema's JSON. */
#define AVRO_MAX_SCHEMA_DEPTH 64
/** @brief Most values that take no bytes (null, empty record) in one datum (see above). */
#define AVRO_MAX_ZERO_SIZE_VALUES (1u << 20)
/** @brief Largest decimal, in bytes of its unscaled two's-complement value (617 digits). */
#define AVRO_DECIMAL_MAX_BYTES 256
/** @brief Largest decimal scale (digits after the point). */
#define AVRO_DECIMAL_MAX_SCALE 640

struct avro_schema;                      /* compiled, immutable, shareable */
/** A referenced schema (registry references), compiled first so its named types are known. */
struct avro_named_schema {
    const char *json;
    size_t len;
};
struct avro_decode_opts {
    int timestamps_iso;                  /* 0: numbers (default); 1: ISO-8601 UTC text */
};

/**
 * @brief Compile the schema JSON @p json[0..len) after the referenced schemas @p refs (whose
 * named types it may use). @return the schema, or NULL with the reason in @p err, naming the
 * JSON path ("$.fields[2].type: unknown type \"strin\""; "reference 0: $..." in a reference).
 */
struct avro_schema *avro_schema_compile(const char *json, size_t len,
        const struct avro_named_schema *refs, size_t nrefs, char *err, size_t errlen);

/**
 * @brief Decode the datum at @p value[start..len) (start = 5 after the Confluent prefix) and
 * append its JSON to @p out. Trailing bytes after the datum are an error. @p opts may be NULL.
 * @return 0, or -1 with the reason and its byte offset (from value[0]) in @p err and @p out as
 * it was before the call.
 */
int avro_decode_json(const struct avro_schema *s, const uint8_t *value, size_t len, size_t start,
        const struct avro_decode_opts *opts, struct buf *out, char *err, size_t errlen);

/** @brief Release a compiled schema (NULL is fine). */
void avro_schema_free(struct avro_schema *s);

#endif
