/* libFuzzer target: the sink names of a commit's metadata (router/cuts.c, cuts_names_sink), which
 * any client of the group may have written. Input: one byte n, a sink name of n % 101 bytes, then
 * the metadata, copied to a buffer of its exact size (ASan sees a read past metadata_size). The
 * answer is -1, 0 or 1; never -1 for metadata with the tag and a "sinks:" entry; 1 only when the
 * name occurs in the metadata. Also the group replay marks of the same metadata (cuts_replay_mark). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/cuts.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd_kafka_topic_partition_t tp;
    char name[101];
    size_t n;
    void *metadata;
    int found;

    if (size < 1)
        return 0;
    n = data[0] % sizeof name;
    if (size < 1 + n)
        return 0;
    memcpy(name, data + 1, n);
    name[n] = '\0';
    n = strlen(name);   /* a NUL in the name ends it */
    size -= 1 + (data[0] % sizeof name);
    data += 1 + (data[0] % sizeof name);
    if (!(metadata = malloc(size ? size : 1)))
        return 0;
    memcpy(metadata, data, size);
    memset(&tp, 0, sizeof tp);
    tp.topic = "t";
    tp.metadata = metadata;
    tp.metadata_size = size;
    found = cuts_names_sink(&tp, name);
    CHECK(found >= -1 && found <= 1);
    if (size < strlen(CUT_METADATA_TAG) || memcmp(data, CUT_METADATA_TAG, strlen(CUT_METADATA_TAG)) != 0)
        CHECK(found == -1);
    if (size <= CUT_METADATA_MAX && size >= strlen(CUT_METADATA_TAG "sinks:") &&
        memcmp(data, CUT_METADATA_TAG "sinks:", strlen(CUT_METADATA_TAG "sinks:")) == 0)
        CHECK(found != -1);
    if (found == 1)
        CHECK(memmem(data, size, name, n) != NULL);
    /* A group replay's mark: an id only where "<name>@" occurs in the metadata. */
    if (cuts_replay_mark(&tp, name) >= 0)
        CHECK(n > 0 && memmem(data, size, name, n) != NULL && memchr(data, '@', size) != NULL);
    free(metadata);
    return 0;
}
