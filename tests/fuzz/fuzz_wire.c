/* libFuzzer target: the Confluent prefix and the Protobuf message indexes (lib/wire.c) on any
 * value. A refusal has a reason; an accepted value gives 1..WIRE_MAX_INDEXES non-negative indexes
 * read from bytes inside the value, at least one byte each. Never a crash or a read past the end
 * (ASan). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/wire.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_frame f;
    int32_t idx[WIRE_MAX_INDEXES];
    size_t count = 0, pos;
    char err[256];

    err[0] = '\0';
    if (wire_parse(data, size, &f, err, sizeof err) != 0) {
        CHECK(err[0] != '\0');
        CHECK(size < 5 || data[0] != 0);
        return 0;
    }
    CHECK(f.payload == 5 && size >= 5 && data[0] == 0);
    CHECK(f.schema_id == ((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4]));
    pos = f.payload;
    if (wire_proto_indexes(data, size, &pos, idx, &count, err, sizeof err) != 0) {
        CHECK(strstr(err, " at byte ") != NULL);
        CHECK(pos == f.payload);        /* nothing consumed on a refusal */
        return 0;
    }
    CHECK(count >= 1 && count <= WIRE_MAX_INDEXES);
    CHECK(pos > f.payload && pos <= size);
    CHECK(pos - f.payload >= (count == 1 && idx[0] == 0 ? 1 : count + 1));
    for (size_t i = 0; i < count; i++)
        CHECK(idx[i] >= 0);
    return 0;
}
