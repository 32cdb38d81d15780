/* The redis sink's plan of a batch, shared by both routes (redis.c's script, redis_tx.c's
 * optimistic one): the records grouped by key into operations, and the verdict of an operation
 * whose key holds another type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"

/* A short, printable rendering of a key for messages: other bytes as \\xNN, cut with "...". */
void key_printable(char *out, size_t outlen, const char *key, size_t len)
{
    size_t o = 0, i;

    for (i = 0; i < len && o + 8 < outlen; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* ---- planning a batch: which operations, on which keys ---- */

int redis_grow(void **p, size_t n, size_t size)
{
    void *q = realloc(*p, n * size);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

static int plan_reserve(struct redis_plan *plan, size_t count)
{
    size_t want = 16;

    while (want < count * 2)
        want *= 2;
    if (want > plan->nslots) {
        uint32_t *s = realloc(plan->slots, want * sizeof *s);
        if (!s)
            return -1;
        plan->slots = s;
        plan->nslots = want;
    }
    if (count > plan->cap) {
        if (redis_grow((void **)&plan->op_head, count, sizeof *plan->op_head) ||
            redis_grow((void **)&plan->op_tail, count, sizeof *plan->op_tail) ||
            redis_grow((void **)&plan->rec_next, count, sizeof *plan->rec_next))
            return -1;
        plan->cap = count;
    }
    return 0;
}

void plan_free(struct redis_plan *plan)
{
    free(plan->slots);
    free(plan->op_head);
    free(plan->op_tail);
    free(plan->rec_next);
    memset(plan, 0, sizeof *plan);
}

const struct redis_prep *rec_prep(const struct sink_batch *b, size_t i)
{
    return b->records[i].prepared;
}

/* Groups the batch's records by key into operations (op_head..op_tail chains through rec_next,
 * in record order); a stream has one operation per record. Returns the number of operations,
 * or -1 when out of memory. String and hash write only an operation's last record (several
 * updates of one key collapse to the last); a list appends all of them. */
long batch_plan(struct redis_sink *rs, struct redis_plan *plan, const struct sink_batch *b)
{
    size_t nops = 0, mask;

    if (plan_reserve(plan, b->count) != 0)
        return -1;
    mask = plan->nslots - 1;
    memset(plan->slots, 0, plan->nslots * sizeof *plan->slots);
    for (size_t i = 0; i < b->count; i++) {
        const struct redis_prep *p = rec_prep(b, i);
        size_t s;
        plan->rec_next[i] = UINT32_MAX;
        if (p->skip)
            continue;
        if (rs->shape == SHAPE_STREAM) {
            plan->op_head[nops] = plan->op_tail[nops] = (uint32_t)i;
            nops++;
            continue;
        }
        for (s = p->key_hash & mask; plan->slots[s]; s = (s + 1) & mask) {
            const struct redis_prep *q = rec_prep(b, plan->op_head[plan->slots[s] - 1]);
            if (q->key_hash == p->key_hash && q->key_len == p->key_len &&
                memcmp(q->data + q->key_off, p->data + p->key_off, p->key_len) == 0)
                break;
        }
        if (plan->slots[s]) {
            uint32_t op = plan->slots[s] - 1;
            plan->rec_next[plan->op_tail[op]] = (uint32_t)i;
            plan->op_tail[op] = (uint32_t)i;
        } else {
            plan->op_head[nops] = plan->op_tail[nops] = (uint32_t)i;
            plan->slots[s] = (uint32_t)++nops;
        }
    }
    return (long)nops;
}

/* Marks the records of operation @p op (all records on its key) as rejected. */
void batch_reject_op(struct redis_sink *rs, struct redis_plan *plan, struct sink_batch *b, size_t op, const char *type)
{
    const struct redis_prep *p = rec_prep(b, plan->op_head[op]);
    char shown[160], reason[400];

    key_printable(shown, sizeof shown, p->data + p->key_off, p->key_len);
    snprintf(reason, sizeof reason, "WRONGTYPE: key %s holds a %s, the %s shape needs a %s or no key",
             shown, type, redis_shapes[rs->shape], redis_shapes[rs->shape]);
    for (uint32_t i = plan->op_head[op]; i != UINT32_MAX; i = plan->rec_next[i]) {
        sink_batch_reject(b, i, reason);
        rs->count.wrongtype_records++;
    }
}

