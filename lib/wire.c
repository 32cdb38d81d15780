/* Confluent framing: see wire.h. */
#include <stdio.h>

#include "lib/wire.h"

enum { WIRE_PREFIX = 5, WIRE_GUID_PREFIX = 17 };

int wire_parse(const uint8_t *value, size_t len, struct wire_frame *f, char *err, size_t errlen)
{
    if (len >= 1 && value[0] == 1) {
        /* Magic 1 carries a 16-byte schema GUID, looked up by /schemas/guids/{guid}: not yet. */
        snprintf(err, errlen, "magic byte 1 (schema GUID framing) is not supported yet");
        return -1;
    }
    if (len < WIRE_PREFIX) {
        snprintf(err, errlen, "value of %zu bytes is too short for the 5-byte schema registry prefix", len);
        return -1;
    }
    if (value[0] != 0) {
        snprintf(err, errlen, "unknown magic byte 0x%02x at byte 0 (not schema registry framing%s)", value[0],
                value[0] == '{' || value[0] == '[' || value[0] == '"' ? "; is the topic JSON?" : "");
        return -1;
    }
    f->schema_id = (uint32_t)value[1] << 24 | (uint32_t)value[2] << 16 | (uint32_t)value[3] << 8 | value[4];
    f->payload = WIRE_PREFIX;
    return 0;
}

/* One zigzag varint of at most 32 bits (the serializers write int32s). */
static int read_zigzag32(const uint8_t *value, size_t len, size_t *pos, int32_t *out, const char *what,
        char *err, size_t errlen)
{
    size_t start = *pos, p = *pos;
    uint64_t v = 0;

    for (unsigned shift = 0;; shift += 7) {
        if (p >= len) {
            snprintf(err, errlen, "truncated %s varint at byte %zu", what, start);
            return -1;
        }
        if (shift == 35 || (shift == 28 && value[p] > 0x0f)) {
            snprintf(err, errlen, "%s varint over 32 bits at byte %zu", what, start);
            return -1;
        }
        v |= (uint64_t)(value[p] & 0x7f) << shift;
        if (!(value[p++] & 0x80))
            break;
    }
    *out = (int32_t)((uint32_t)(v >> 1) ^ (uint32_t)-(int64_t)(v & 1));
    *pos = p;
    return 0;
}

int wire_proto_indexes(const uint8_t *value, size_t len, size_t *pos, int32_t *idx, size_t *count,
        char *err, size_t errlen)
{
    size_t p = *pos, at = *pos;
    int32_t n;

    if (read_zigzag32(value, len, &p, &n, "message index count", err, errlen) != 0)
        return -1;
    if (n == 0) {                   /* the shortcut for the first top-level message */
        idx[0] = 0;
        *count = 1;
        *pos = p;
        return 0;
    }
    if (n < 0) {
        snprintf(err, errlen, "negative message index count %d at byte %zu", (int)n, at);
        return -1;
    }
    if (n > WIRE_MAX_INDEXES) {
        snprintf(err, errlen, "message index count %d over the limit of %d at byte %zu", (int)n,
                WIRE_MAX_INDEXES, at);
        return -1;
    }
    if ((size_t)n > len - p) {      /* each index takes at least one byte */
        snprintf(err, errlen, "message index count %d but only %zu bytes left at byte %zu", (int)n, len - p, at);
        return -1;
    }
    for (int32_t i = 0; i < n; i++) {
        at = p;
        if (read_zigzag32(value, len, &p, &idx[i], "message index", err, errlen) != 0)
            return -1;
        if (idx[i] < 0) {
            snprintf(err, errlen, "negative message index %d at byte %zu", (int)idx[i], at);
            return -1;
        }
    }
    *count = (size_t)n;
    *pos = p;
    return 0;
}
