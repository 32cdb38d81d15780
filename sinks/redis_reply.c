/* Reply objects of hiredis' reader carved from an arena (see redis_reply.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_reply.h"

/* a reply of the sink's is a few KiB (an EXEC of a batch of 1,000: about 100 KiB) */
#define ARENA_BLOCK ((size_t)64 << 10)
/* kept between replies at most, so one huge reply does not pin its memory */
#define ARENA_KEEP_MAX ((size_t)4 << 20)
#define ARENA_ALIGN _Alignof(redisReply)

struct arena_block {
    struct arena_block *next;   /* the older blocks of the same reply */
    size_t cap, used;
};
_Static_assert(sizeof(struct arena_block) % _Alignof(redisReply) == 0, "block data stays aligned");

struct reply_arena {
    struct arena_block *head;   /* the block being filled */
};

static void *arena_alloc(struct reply_arena *a, size_t n)
{
    struct arena_block *blk = a->head;
    void *p;

    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (!blk || blk->cap - blk->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        if (!(blk = malloc(sizeof *blk + cap)))
            return NULL;
        blk->cap = cap;
        blk->used = 0;
        blk->next = a->head;
        a->head = blk;
    }
    p = (unsigned char *)(blk + 1) + blk->used;
    blk->used += n;
    return p;
}

static void arena_blocks_free(struct arena_block *blk)
{
    while (blk) {
        struct arena_block *next = blk->next;
        free(blk);
        blk = next;
    }
}

/* Everything carved so far is free again. A reply that took several blocks leaves one block of
 * their size (up to ARENA_KEEP_MAX), so the next reply like it needs no malloc. */
static void arena_reset(struct reply_arena *a)
{
    struct arena_block *blk = a->head;
    size_t total = 0;

    if (!blk)
        return;
    if (!blk->next && blk->cap <= ARENA_KEEP_MAX) {
        blk->used = 0;
        return;
    }
    for (; blk; blk = blk->next)
        total += blk->cap;
    arena_blocks_free(a->head);
    a->head = NULL;
    if (total > ARENA_KEEP_MAX)
        return;
    if ((blk = malloc(sizeof *blk + total))) {
        blk->cap = total;
        blk->used = 0;
        blk->next = NULL;
        a->head = blk;
    }
}

/* ---- hiredis' object functions (the task's privdata is the reader's: the arena) ---- */

static redisReply *reply_new(const redisReadTask *task, int type)
{
    redisReply *r = arena_alloc(task->privdata, sizeof *r);

    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *on_string(const redisReadTask *task, char *str, size_t len)
{
    char *copy = len < SIZE_MAX ? arena_alloc(task->privdata, len + 1) : NULL;
    redisReply *r;

    if (!copy)
        return NULL;
    memcpy(copy, str, len);
    copy[len] = '\0';
    if (!(r = reply_new(task, task->type)))
        return NULL;
    r->str = copy;
    r->len = len;
    return r;
}

static void *on_array(const redisReadTask *task, int elements)
{
    redisReply **element = NULL;
    redisReply *r;

    if (elements > 0) {
        if (!(element = arena_alloc(task->privdata, (size_t)elements * sizeof *element)))
            return NULL;
        memset(element, 0, (size_t)elements * sizeof *element);
    }
    if (!(r = reply_new(task, REDIS_REPLY_ARRAY)))
        return NULL;
    r->element = element;
    r->elements = elements > 0 ? (size_t)elements : 0;
    return r;
}

static void *on_integer(const redisReadTask *task, long long value)
{
    redisReply *r = reply_new(task, REDIS_REPLY_INTEGER);

    if (r)
        r->integer = value;
    return r;
}

static void *on_nil(const redisReadTask *task)
{
    return reply_new(task, REDIS_REPLY_NIL);
}

/* the arena owns every object: they go when it is reset or freed */
static void on_free(void *reply)
{
    (void)reply;
}

static redisReplyObjectFunctions arena_functions = {
    .createString = on_string,
    .createArray = on_array,
    .createInteger = on_integer,
    .createNil = on_nil,
    .freeObject = on_free,
};

redisReader *redis_reply_reader_new(void)
{
    struct reply_arena *a = calloc(1, sizeof *a);
    redisReader *r = a ? redisReaderCreateWithFunctions(&arena_functions) : NULL;

    if (!r) {
        free(a);
        return NULL;
    }
    r->privdata = a;
    return r;
}

void redis_reply_release(redisReader *r)
{
    arena_reset(r->privdata);
}

void redis_reply_reader_free(redisReader *r)
{
    struct reply_arena *a;

    if (!r)
        return;
    a = r->privdata;
    redisReaderFree(r);   /* a reply being built goes through on_free: nothing to do */
    if (a)
        arena_blocks_free(a->head);
    free(a);
}
