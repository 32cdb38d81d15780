/* Confluent Schema Registry framing of a Kafka record value: magic byte 0, a 4-byte big-endian
 * schema id, then the payload; a Protobuf payload starts with its message indexes. Hostile input
 * is expected: every error says what is wrong and at which byte of the value. */
#ifndef SLUICE_WIRE_H
#define SLUICE_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Deepest message-index path accepted (nesting of the chosen message type in its file). */
enum { WIRE_MAX_INDEXES = 64 };

struct wire_frame {
    uint32_t schema_id;
    size_t payload;                 /* offset of the payload in the value */
};

/**
 * @brief Read the 5-byte prefix of @p value. @return 0, or -1 with the reason in @p err
 * ("value of 3 bytes is too short for the 5-byte schema registry prefix", "unknown magic byte
 * 0x7b at byte 0 (not schema registry framing; is the topic JSON?)").
 */
int wire_parse(const uint8_t *value, size_t len, struct wire_frame *f, char *err, size_t errlen);

/**
 * @brief Read the Protobuf message indexes at @p value[*pos..len): a count (zigzag varint), then
 * that many zigzag varints; a lone 0 stands for [0]. Fills @p idx (room for WIRE_MAX_INDEXES)
 * and @p count, and advances @p *pos past them. @return 0, or -1 with the reason and its byte
 * offset in @p err (count over WIRE_MAX_INDEXES or over the bytes left, negative entries,
 * truncated or overlong varints).
 */
int wire_proto_indexes(const uint8_t *value, size_t len, size_t *pos, int32_t *idx, size_t *count,
        char *err, size_t errlen);

#endif
