/* libFuzzer target: the redis sink's reply reader (hiredis' parser, objects in an arena,
 * sinks/redis_reply.c). The input's first byte picks the slice size it is fed in; the rest is
 * what a server sent. Checks: the arena reader gives the same replies (types, values, shapes)
 * as hiredis' own reader fed the same bytes at once, and the same verdict on broken input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "sinks/redis_reply.h"

#include "fuzz_check.h"

static int same_reply(const redisReply *a, const redisReply *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case REDIS_REPLY_INTEGER:
        return a->integer == b->integer;
    case REDIS_REPLY_NIL:
        return 1;
    case REDIS_REPLY_ARRAY:
        if (a->elements != b->elements)
            return 0;
        for (size_t i = 0; i < a->elements; i++)
            if (!same_reply(a->element[i], b->element[i]))
                return 0;
        return 1;
    default:
        return a->len == b->len && a->str[a->len] == '\0' && memcmp(a->str, b->str, a->len) == 0;
    }
}

/* An array of millions of elements is an allocation libFuzzer reports as too big, in hiredis'
 * own reader as in ours: such inputs are left out. */
static int huge_array(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned long long n = 0;
        if (data[i] != '*')
            continue;
        for (size_t j = i + 1; j < size && data[j] >= '0' && data[j] <= '9' && n <= 100000; j++)
            n = n * 10 + (data[j] - '0');
        if (n > 100000)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReader *plain, *arena;
    size_t slice, off;
    int plain_rc = REDIS_OK, arena_rc = REDIS_OK;

    if (size < 1 || size > 65536 || huge_array(data, size))
        return 0;
    slice = (size_t)data[0] + 1;
    data++;
    size--;
    plain = redisReaderCreate();
    arena = redis_reply_reader_new();
    if (!plain || !arena) {
        redisReaderFree(plain);
        redis_reply_reader_free(arena);
        return 0;
    }
    CHECK(redisReaderFeed(plain, (const char *)data, size) == REDIS_OK);
    off = 0;
    for (;;) {
        void *a = NULL, *p = NULL;
        if (arena_rc == REDIS_OK)
            arena_rc = redisReaderGetReply(arena, &a);
        if (arena_rc == REDIS_OK && !a && off < size) {
            size_t n = size - off < slice ? size - off : slice;
            CHECK(redisReaderFeed(arena, (const char *)data + off, n) == REDIS_OK);
            off += n;
            continue;
        }
        if (plain_rc == REDIS_OK)
            plain_rc = redisReaderGetReply(plain, &p);
        CHECK((plain_rc == REDIS_OK) == (arena_rc == REDIS_OK));
        CHECK(!a == !p);
        if (a && p)
            CHECK(same_reply(a, p));
        if (p)
            freeReplyObject(p);
        if (a)
            redis_reply_release(arena);
        if (!a || arena_rc != REDIS_OK)
            break;
    }
    redisReaderFree(plain);
    redis_reply_reader_free(arena);
    return 0;
}
