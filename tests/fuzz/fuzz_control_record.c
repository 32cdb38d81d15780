/* libFuzzer target: a record of the group's control topic (router/control_record.c), which any
 * client allowed to write that topic may have written. Input: one byte n (the key's length, at
 * most what follows), one byte f (odd: a tombstone), the key, then the value, each copied to a
 * buffer of its exact size (ASan sees a read past it). A record that parses has a name of
 * 1..127 bytes, a replay has exactly one of offset and timestamp_ms, and the value sluice writes
 * for it parses back to the same record. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/control_record.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct control_record rec, again;
    char err[256], key[CONTROL_NAME_MAX + 16], *text;
    size_t klen, vlen;
    void *k, *v = NULL;
    int tombstone, keylen;

    if (size < 2)
        return 0;
    klen = data[0] <= size - 2 ? data[0] : size - 2;
    tombstone = data[1] & 1;
    vlen = size - 2 - klen;
    if (!(k = malloc(klen ? klen : 1)) || (!tombstone && !(v = malloc(vlen ? vlen : 1)))) {
        free(k);
        return 0;
    }
    memcpy(k, data + 2, klen);
    if (v)
        memcpy(v, data + 2 + klen, vlen);
    if (control_record_parse(k, klen, v, vlen, &rec, err, sizeof err) == 0) {
        CHECK(rec.name[0] && strlen(rec.name) < CONTROL_NAME_MAX);
        CHECK(rec.tombstone == tombstone);
        if (rec.kind == CONTROL_REPLAY && !rec.tombstone)
            CHECK((rec.offset >= 0) != (rec.timestamp_ms >= 0));
        keylen = control_record_key(&rec, key, sizeof key);
        CHECK(keylen > 0);
        if (!rec.tombstone && (text = control_record_value(&rec)) != NULL) {
            if (control_record_parse(key, (size_t)keylen, text, strlen(text), &again, err, sizeof err) == 0) {
                CHECK(again.kind == rec.kind && strcmp(again.name, rec.name) == 0 && again.paused == rec.paused);
                CHECK(again.offset == rec.offset && again.timestamp_ms == rec.timestamp_ms &&
                      again.partition == rec.partition);
            }
            free(text);
        }
    } else {
        CHECK(err[0] != '\0');
    }
    free(k);
    free(v);
    return 0;
}
