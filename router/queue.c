/* The router: shared records, a sink's queue per partition, deferred callbacks. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "cuts.h"
#include "engine.h"
#include "offsets.h"
#include "queue.h"
#include "lib/clock.h"

/* The sink's own readiness (connected); a sink without the hook, or one a dry run never
 * started, counts as ready. */
int sink_can_deliver(struct sink *sk, char *why, size_t whylen)
{
    if (sk->state->r->dry_run || !sk->ops->ready)
        return 1;
    return sk->ops->ready(sk, why, whylen);
}

void deferred_unlink(struct deferred *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        d->r->deferred = d->next;
    if (d->next)
        d->next->prev = d->prev;
    event_free(d->ev);
}

static void on_deferred(evutil_socket_t fd, short what, void *p)
{
    struct deferred *d = p;
    (void)fd;
    (void)what;
    deferred_unlink(d);
    d->fn(d->r, d->arg);
    free(d);
}

void router_defer(struct router *r, int64_t delay_ms, void (*fn)(struct router *r, void *arg),
                         void (*drop)(void *arg), void *arg)
{
    struct deferred *d = calloc(1, sizeof *d);
    struct timeval tv = ms_to_tv(delay_ms);

    if (!d || !(d->ev = evtimer_new(r->eb, on_deferred, d)))
        abort();   /* out of memory on the loop's own bookkeeping */
    d->r = r;
    d->fn = fn;
    d->drop = drop;
    d->arg = arg;
    d->next = r->deferred;
    if (r->deferred)
        r->deferred->prev = d;
    r->deferred = d;
    evtimer_add(d->ev, &tv);
}

struct rtopic *router_topic(struct router *r, const char *name)
{
    for (size_t i = 0; i < r->ntopics; i++)
        if (strcmp(r->topics[i].name, name) == 0)
            return &r->topics[i];
    return NULL;
}

struct rpart *router_part(struct router *r, const char *topic, int32_t partition)
{
    struct rtopic *rt = router_topic(r, topic);
    if (!rt || partition < 0 || (size_t)partition >= rt->nparts)
        return NULL;
    return rt->parts[partition];
}

/* Bytes of the records alive in this process (routing, waiting, queued or in flight), each
 * counted once: the shared budget (flow.c) weighs them against max_buffered_bytes. */
static size_t records_held;

/* librdkafka's own bookkeeping for one fetched message (its op and message header, ~200 bytes
 * in 2.0.2); the key and value themselves stay in the fetch response's buffer, referenced. */
#define KAFKA_MESSAGE_OVERHEAD 256
#define MALLOC_OVERHEAD 16      /* glibc's chunk header and rounding, per allocation */

size_t records_held_bytes(void)
{
    return records_held;
}

/* What a record holds while it lives: the Kafka message (referenced, not copied), the record
 * itself and the decoded forms a registry format made of it. Updated by record_set_decoded. */
void record_count(struct router_record *rec)
{
    size_t bytes = KAFKA_MESSAGE_OVERHEAD + rec->rkm->len + rec->rkm->key_len + sizeof *rec + MALLOC_OVERHEAD;

    if (rec->decoded_key)
        bytes += rec->key_len + MALLOC_OVERHEAD;
    if (rec->decoded_value)
        bytes += rec->value_len + MALLOC_OVERHEAD;
    records_held += bytes - rec->bytes;
    rec->bytes = bytes;
}

struct router_record *record_new(rd_kafka_message_t *rkm)
{
    struct router_record *rec = calloc(1, sizeof *rec);
    if (rec) {
        rec->rkm = rkm;
        rec->key = rkm->key;
        rec->key_len = rkm->key ? rkm->key_len : 0;
        rec->value = rkm->payload;
        rec->value_len = rkm->payload ? rkm->len : 0;
        record_count(rec);
    }
    return rec;
}

void record_unref(struct router_record *rec)
{
    if (--rec->refs > 0)
        return;
    records_held -= rec->bytes + rec->doc_bytes;
    rd_kafka_message_destroy(rec->rkm);
    json_decref(rec->doc);
    free(rec->doc_error);
    free(rec->decoded_key);
    free(rec->decoded_value);
    free(rec);
}

/* jansson's allocations, counted, so that a parsed document weighs what it really holds (a tree
 * of 250-byte objects takes several times its text, more for many small values). Per thread:
 * a worker thread may use jansson too; only the difference across one parse is read. */
static _Thread_local size_t json_allocated;

static void *json_counted_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        json_allocated += malloc_usable_size(p) + MALLOC_OVERHEAD / 2;
    return p;
}

static void json_counted_free(void *p)
{
    if (p)
        json_allocated -= malloc_usable_size(p) + MALLOC_OVERHEAD / 2;
    free(p);
}

/* Installed before the first document is parsed: memory jansson allocated before is freed by
 * the same free() underneath, only the count (never read across) is off. */
static void json_count_allocations(void)
{
    static int installed;

    if (!installed) {
        json_set_alloc_funcs(json_counted_malloc, json_counted_free);
        installed = 1;
    }
}

/* The value parsed as JSON, once per record whatever the number of sinks. */
json_t *record_doc(struct router_record *rec)
{
    json_error_t jerr;

    if (rec->doc_state == 0) {
        size_t before;
        json_count_allocations();
        before = json_allocated;
        rec->doc = json_loadb(rec->value, rec->value_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (rec->doc) {
            rec->doc_bytes = json_allocated - before;
            records_held += rec->doc_bytes;
        }
        rec->doc_state = rec->doc ? 1 : -1;
        /* the sinks' wording (sink_value_json): jansson's reason, at its byte offset */
        if (!rec->doc && asprintf(&rec->doc_error, "value is not JSON: %s at byte %d", jerr.text, jerr.position) < 0)
            rec->doc_error = NULL;
    }
    return rec->doc;
}

/* The queue of records waiting for their schema, per partition (route.c). */
void rpart_wait_push(struct rpart *rp, struct router_record *rec)
{
    rec->wait_next = NULL;
    if (rp->wait_tail)
        rp->wait_tail->wait_next = rec;
    else
        rp->wait_head = rec;
    rp->wait_tail = rec;
    rp->nwaiting++;
}

struct router_record *rpart_wait_pop(struct rpart *rp)
{
    struct router_record *rec = rp->wait_head;

    if (rec) {
        rp->wait_head = rec->wait_next;
        if (!rp->wait_head)
            rp->wait_tail = NULL;
        rec->wait_next = NULL;
        rp->nwaiting--;
    }
    return rec;
}

int64_t rpart_wait_drop(struct rpart *rp)
{
    int64_t first = rp->wait_head ? rp->wait_head->rkm->offset : OFFSET_UNKNOWN;
    struct router_record *rec;

    while ((rec = rpart_wait_pop(rp)))
        record_unref(rec);
    return first;
}

void entry_fill(struct sink_record *e, struct router_record *rec, const char *topic)
{
    const rd_kafka_message_t *rkm = rec->rkm;
    rd_kafka_timestamp_type_t tstype;

    memset(e, 0, sizeof *e);
    e->topic = topic;
    e->partition = rkm->partition;
    e->offset = rkm->offset;
    e->key = rec->key;
    e->key_len = rec->key_len;
    e->value = rec->value;
    e->value_len = rec->value_len;
    e->timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
    e->origin = rec;
}

/* What the sink's own part of a record costs: its slot in the queue or batch and the mapped form
 * its prepare made (a copy, when the sink makes one). */
static size_t entry_own_bytes(const struct sink_record *e)
{
    return sizeof *e + (e->prepared ? e->prepared_len + MALLOC_OVERHEAD : 0);
}

/* What a record held for a sink keeps in memory, counted against its max_buffered_bytes: its own
 * part, and the shared record it keeps alive (with the parsed document when the sink reads it).
 * Fixed for the entry's life: the record's count is taken as it was when the entry was made. */
size_t entry_bytes(const struct sink_record *e)
{
    const struct router_record *rec = e->origin;
    return entry_own_bytes(e) + rec->bytes + (e->doc ? rec->doc_bytes : 0);
}

static void entry_release(struct sink *sk, struct sink_record *e)
{
    records_held -= entry_own_bytes(e);
    if (sk->ops->release && e->prepared)
        sk->ops->release(sk, e);
    free(e->reject_reason);
    record_unref(e->origin);
}

#define QUEUE_MIN_CAP 256

/* Gives back what the queue's ring no longer needs, once records left it: rings that kept the
 * largest size they ever had, one per sink and partition, were most of the router's memory
 * with many sinks (bench-memory fan8, 8 sinks x 64 partitions: 27 of 70 MiB). Empty, the ring
 * is freed; at a quarter full or less, halved (as often as that holds): see spart_queue_fit. */

/* Moves the queued records into a ring of @p cap (at least qcount); -1 out of memory. */
static int spart_queue_resize(struct spart *sp, size_t cap)
{
    struct sink_record *q = malloc(cap * sizeof *q);

    if (!q)
        return -1;
    for (size_t i = 0; i < sp->qcount; i++)
        q[i] = sp->queue[(sp->qhead + i) % sp->qcap];
    free(sp->queue);
    sp->queue = q;
    sp->qcap = cap;
    sp->qhead = 0;
    return 0;
}

void spart_queue_fit(struct spart *sp)
{
    size_t cap = sp->qcap;

    if (sp->qcount == 0) {
        free(sp->queue);
        sp->queue = NULL;
        sp->qcap = sp->qhead = 0;
        return;
    }
    while (cap > QUEUE_MIN_CAP && sp->qcount <= cap / 4)
        cap /= 2;
    if (cap != sp->qcap)
        spart_queue_resize(sp, cap);   /* out of memory: the larger ring stays, nothing is lost */
}

int spart_enqueue(struct spart *sp, const struct sink_record *e)
{
    if (sp->qcount == sp->qcap && spart_queue_resize(sp, sp->qcap ? sp->qcap * 2 : QUEUE_MIN_CAP) != 0)
        return -1;
    sp->queue[(sp->qhead + sp->qcount) % sp->qcap] = *e;
    sp->qcount++;
    sp->qbytes += e->prepared_len;
    records_held += entry_own_bytes(e);
    sp->sk->state->buffered++;
    sp->sk->state->buffered_bytes += entry_bytes(e);
    return 0;
}

void batch_free(struct router_batch *b)
{
    struct sink *sk = b->pub.sink;
    for (size_t i = 0; i < b->pub.count; i++) {
        if (b->sp)
            sk->state->buffered_bytes -= entry_bytes(&b->pub.records[i]);
        entry_release(sk, &b->pub.records[i]);
    }
    if (b->sp)
        sk->state->buffered -= b->pub.count;
    free(b->pub.records);
    free(b->error);
    if (b->timer)
        event_free(b->timer);
    free(b);
}

/* Drops what the partition has queued for this sink (revoke, resync): not finished, so the
 * tracker keeps those offsets unfinished and whoever reads the partition next gets them. */
void spart_drop_queue(struct spart *sp)
{
    while (sp->qcount) {
        sp->sk->state->buffered_bytes -= entry_bytes(&sp->queue[sp->qhead]);
        entry_release(sp->sk, &sp->queue[sp->qhead]);
        sp->qhead = (sp->qhead + 1) % sp->qcap;
        sp->qcount--;
        sp->sk->state->buffered--;
    }
    spart_queue_fit(sp);
    sp->qbytes = 0;
    if (sp->linger_timer)
        evtimer_del(sp->linger_timer);
}

/* Drops the batch of @p sp that waits for a retry or for its cut's commit. */
void spart_drop_waiting_batch(struct spart *sp)
{
    if (sp->inflight && !sp->inflight->at_sink) {
        spart_keep_cut(sp, sp->inflight);
        evtimer_del(sp->inflight->timer);
        batch_free(sp->inflight);
        sp->inflight = NULL;
    }
}

/* Calls fn for every partition the sink reads here. */
void router_sink_sparts(struct router *r, size_t k, void (*fn)(struct spart *sp, void *arg), void *arg)
{
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            if (rp && rp->state == RPART_ACTIVE && rp->sparts[k])
                fn(rp->sparts[k], arg);
        }
}
