/* Protobuf records to proto3 JSON without generated code: a schema compiled once from the
 * registry's FileDescriptorProto(s) (GET /schemas/ids/N?format=serialized, base64-decoded), then a
 * bounds-checked walk of the wire that prints JSON (https://protobuf.dev/programming-guides/json/).
 * Hostile records are expected: lengths are checked against the bytes left before anything is
 * read, nesting is limited, and every refusal says what is wrong and at which byte of the value.
 *
 * Choices where peers differ: a known field with the wrong wire type is refused (not skipped as
 * unknown), except packed/unpacked for repeated scalars; an embedded message that occurs twice is
 * not merged (the last prints); a map key written twice prints twice; a float prints as the
 * shortest text that reads back as that float ("0.1"; JS peers print the widened double). */
#ifndef SLUICE_PROTOBUF_H
#define SLUICE_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/** @brief Deepest nesting of messages (and of unknown groups) a record may have. */
enum { PB_MAX_DEPTH = 64 };

struct pb_schema;   /* compiled from FileDescriptorProto(s), immutable, shareable between threads */

struct pb_blob {
    const uint8_t *p;
    size_t len;
};

/**
 * @brief Compile a schema. @p files[0] is the schema's own serialized FileDescriptorProto, the
 * others its references' (imports). The types of google/protobuf/{timestamp,duration,wrappers,
 * empty,struct,any,field_mask}.proto are known by full name without their descriptors (an Any
 * prints when its packed type is in the schema). Relative type names are resolved by protobuf's
 * scoping rules. Names must be identifiers. @return the schema, or NULL with the reason in @p err.
 */
struct pb_schema *pb_schema_load(const struct pb_blob *files, size_t nfiles, char *err, size_t errlen);

/**
 * @brief Decode the message chosen by the message indexes @p idx (idx[0]: a top-level message of
 * files[0], then nested type indexes) at @p value[start..len) and append its proto3 JSON to
 * @p out. @return 0, or -1 with the reason and its byte offset counted from value[0] ("... at byte
 * N"); @p out then holds a partial text the caller discards.
 */
int pb_decode_json(const struct pb_schema *s, const int32_t *idx, size_t nidx,
        const uint8_t *value, size_t len, size_t start, struct buf *out, char *err, size_t errlen);

/** @brief The full name (".pkg.Outer.Inner") of the message @p idx chooses, or NULL. */
const char *pb_schema_message_name(const struct pb_schema *s, const int32_t *idx, size_t nidx);

void pb_schema_free(struct pb_schema *s);

#endif
