/* libFuzzer target: the Protobuf decoder (lib/protobuf.c, protobuf_schema.c). The first byte
 * picks the mode:
 *  - even: walk the rest as [message indexes][payload] with a fixed schema that has nested,
 *    recursive, repeated (packed and not), map, oneof, optional and well-known-type fields
 *    (tests/unit/pb_schemas.h). An accepted record is valid JSON (lib/json.c's checker); a refused
 *    one has a reason with a byte offset inside the value.
 *  - odd: load the rest as a FileDescriptorProto, then decode a few payloads (empty, a sample,
 *    the input itself) with each of its first top-level messages.
 * Never a crash, a leak, undefined behaviour or a read past the end. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/json.h"
#include "lib/protobuf.h"
#include "lib/wire.h"
#include "../unit/pb_schemas.h"

#include "fuzz_check.h"

static const struct pb_schema *shop_schema(void)
{
    static struct pb_schema *shop;
    size_t len;
    uint8_t *bytes;
    struct pb_blob file;
    char err[256];

    if (shop)
        return shop;
    bytes = pbt_shop(&len);
    file = (struct pb_blob){ bytes, len };
    shop = pb_schema_load(&file, 1, err, sizeof err);
    free(bytes);
    CHECK(shop != NULL);
    return shop;
}

/* Decodes value[start..len) as @p idx; checks the promise of either outcome. */
static void decode_and_check(const struct pb_schema *s, const int32_t *idx, size_t nidx, const uint8_t *value,
        size_t len, size_t start)
{
    struct buf out;
    char err[256];
    const char *at;

    buf_init(&out, 1 << 24);
    err[0] = '\0';
    if (pb_decode_json(s, idx, nidx, value, len, start, &out, err, sizeof err) == 0) {
        /* lib/json.c's checker, not jansson: jansson refuses "\u0000" in a member name, which
         * JSON allows and a map<string, ...> key may hold */
        if (json_check(out.p, out.len, err, sizeof err) != 0)
            fprintf(stderr, "not JSON (%s): %s\n", err, out.p);
        CHECK(json_check(out.p, out.len, err, sizeof err) == 0);
    } else {
        if (!(at = strstr(err, " at byte ")))
            fprintf(stderr, "reason without its byte: %s\n", err);
        CHECK(at != NULL);
        CHECK(strtoull(at + 9, NULL, 10) <= len);
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int32_t idx[WIRE_MAX_INDEXES];
    size_t nidx = 0, pos = 1;
    char err[256];

    if (size < 1)
        return 0;
    if (!(data[0] & 1)) {
        if (wire_proto_indexes(data, size, &pos, idx, &nidx, err, sizeof err) != 0)
            return 0;
        decode_and_check(shop_schema(), idx, nidx, data, size, pos);
        return 0;
    } else {
        static const uint8_t sample[] = { 0x0a, 0x02, 'h', 'i', 0x10, 0x01, 0x1a, 0x00, 0x25, 1, 2, 3, 4 };
        struct pb_blob file = { data + 1, size - 1 };
        struct pb_schema *s = pb_schema_load(&file, 1, err, sizeof err);
        if (!s) {
            CHECK(err[0] != '\0');
            return 0;
        }
        for (int32_t i = 0; i < 4; i++) {
            if (!pb_schema_message_name(s, &i, 1))
                break;
            decode_and_check(s, &i, 1, sample, 0, 0);
            decode_and_check(s, &i, 1, sample, sizeof sample, 0);
            decode_and_check(s, &i, 1, data, size, 1);
        }
        pb_schema_free(s);
    }
    return 0;
}
