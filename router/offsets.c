#include <stdlib.h>
#include <string.h>

#include "offsets.h"

struct offsets_sink {
    int joined;
    int64_t next;          /* OFFSET_UNKNOWN until a position is known */
    int64_t handed_end;    /* one past the highest offset ever handed; OFFSET_UNKNOWN if none */
    /* Outstanding offsets in increasing order, as a ring (capacity a power of two, so a slot
     * is a mask, not a division): offset and finished flag. */
    int64_t *ring;
    uint8_t *finished;
    size_t head, count, cap;
};

struct offsets_partition {
    char *topic;
    int32_t partition;
    size_t nsinks;
    struct offsets_sink sinks[];
};

struct offsets_partition *offsets_partition_new(const char *topic, int32_t partition, size_t nsinks)
{
    struct offsets_partition *op = calloc(1, sizeof *op + nsinks * sizeof op->sinks[0]);
    if (!op)
        return NULL;
    if (!(op->topic = strdup(topic))) {
        free(op);
        return NULL;
    }
    op->partition = partition;
    op->nsinks = nsinks;
    for (size_t i = 0; i < nsinks; i++)
        op->sinks[i].next = op->sinks[i].handed_end = OFFSET_UNKNOWN;
    return op;
}

void offsets_partition_free(struct offsets_partition *op)
{
    if (!op)
        return;
    for (size_t i = 0; i < op->nsinks; i++) {
        free(op->sinks[i].ring);
        free(op->sinks[i].finished);
    }
    free(op->topic);
    free(op);
}

const char *offsets_partition_topic(const struct offsets_partition *op) { return op->topic; }
int32_t offsets_partition_id(const struct offsets_partition *op) { return op->partition; }

void offsets_sink_join(struct offsets_partition *op, size_t sink, int64_t next)
{
    struct offsets_sink *s = &op->sinks[sink];
    s->joined = 1;
    s->next = next;
    s->handed_end = next;
    s->head = s->count = 0;
}

static int ring_grow(struct offsets_sink *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    int64_t *ring = malloc(cap * sizeof *ring);
    uint8_t *finished = malloc(cap);
    if (!ring || !finished) {
        free(ring);
        free(finished);
        return -1;
    }
    for (size_t i = 0; i < s->count; i++) {
        ring[i] = s->ring[(s->head + i) & (s->cap - 1)];
        finished[i] = s->finished[(s->head + i) & (s->cap - 1)];
    }
    free(s->ring);
    free(s->finished);
    s->ring = ring;
    s->finished = finished;
    s->head = 0;
    s->cap = cap;
    return 0;
}

int offsets_accept(struct offsets_partition *op, size_t sink, int64_t offset)
{
    struct offsets_sink *s = &op->sinks[sink];
    size_t slot;

    if (!s->joined)
        return 0;
    if (s->next != OFFSET_UNKNOWN && offset < s->next)
        return 0;
    if (s->handed_end != OFFSET_UNKNOWN && offset < s->handed_end)
        return 0;
    if (s->count == s->cap && ring_grow(s) != 0)
        abort();   /* out of memory while tracking offsets: better dead than wrong */
    slot = (s->head + s->count) & (s->cap - 1);
    s->ring[slot] = offset;
    s->finished[slot] = 0;
    s->count++;
    s->handed_end = offset + 1;
    if (s->count == 1)
        s->next = offset;
    return 1;
}

void offsets_done(struct offsets_partition *op, size_t sink, int64_t offset)
{
    struct offsets_sink *s = &op->sinks[sink];
    size_t mask = s->cap - 1, lo = 0, hi = s->count;

    /* Verdicts come in offset order, as a rule: the oldest outstanding one first. */
    if (s->count == 0 || s->ring[s->head] != offset) {
        /* Binary search: the ring holds offsets in increasing order. */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->ring[(s->head + mid) & mask] < offset)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == s->count || s->ring[(s->head + lo) & mask] != offset)
            return;   /* not outstanding: a late verdict after a rewind or revoke */
    }
    s->finished[(s->head + lo) & mask] = 1;
    while (s->count && s->finished[s->head]) {
        s->head = (s->head + 1) & mask;
        s->count--;
    }
    s->next = s->count ? s->ring[s->head] : s->handed_end;
}

int64_t offsets_next(const struct offsets_partition *op, size_t sink)
{
    return op->sinks[sink].joined ? op->sinks[sink].next : OFFSET_UNKNOWN;
}

int64_t offsets_handed_end(const struct offsets_partition *op, size_t sink)
{
    return op->sinks[sink].joined ? op->sinks[sink].handed_end : OFFSET_UNKNOWN;
}

size_t offsets_outstanding(const struct offsets_partition *op, size_t sink)
{
    return op->sinks[sink].count;
}

void offsets_rewind(struct offsets_partition *op, size_t sink, int64_t next)
{
    offsets_sink_join(op, sink, next);
}

int64_t offsets_commit_position(const struct offsets_partition *op)
{
    int64_t min = OFFSET_UNKNOWN;
    for (size_t i = 0; i < op->nsinks; i++) {
        const struct offsets_sink *s = &op->sinks[i];
        if (!s->joined || s->next == OFFSET_UNKNOWN)
            continue;
        if (min == OFFSET_UNKNOWN || s->next < min)
            min = s->next;
    }
    return min;
}
