/* The router: shared records, a sink's queue per partition, deferred callbacks. */
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

struct router_record *record_new(rd_kafka_message_t *rkm)
{
    struct router_record *rec = calloc(1, sizeof *rec);
    if (rec) {
        rec->rkm = rkm;
        rec->key = rkm->key;
        rec->key_len = rkm->key ? rkm->key_len : 0;
        rec->value = rkm->payload;
        rec->value_len = rkm->payload ? rkm->len : 0;
    }
    return rec;
}

void record_unref(struct router_record *rec)
{
    if (--rec->refs > 0)
        return;
    rd_kafka_message_destroy(rec->rkm);
    json_decref(rec->doc);
    free(rec->doc_error);
    free(rec->decoded_key);
    free(rec->decoded_value);
    free(rec);
}

/* The value parsed as JSON, once per record whatever the number of sinks. */
json_t *record_doc(struct router_record *rec)
{
    json_error_t jerr;

    if (rec->doc_state == 0) {
        rec->doc = json_loadb(rec->value, rec->value_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
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

static void entry_release(struct sink *sk, struct sink_record *e)
{
    if (sk->ops->release && e->prepared)
        sk->ops->release(sk, e);
    free(e->reject_reason);
    record_unref(e->origin);
}

/* What a record held for a sink costs in memory, counted against max_buffered_bytes: its key,
 * value and mapped form, the structures around them, and an estimate of the parsed document
 * (jansson's tree takes several times the text: ~6x measured for 250-byte objects). */
#define RECORD_OVERHEAD_BYTES 512
#define JSON_TREE_FACTOR 6

size_t entry_bytes(const struct sink_record *e)
{
    return RECORD_OVERHEAD_BYTES + e->key_len + e->value_len + e->prepared_len +
           (e->doc ? JSON_TREE_FACTOR * e->value_len : 0);
}

int spart_enqueue(struct spart *sp, const struct sink_record *e)
{
    if (sp->qcount == sp->qcap) {
        size_t cap = sp->qcap ? sp->qcap * 2 : 256;
        struct sink_record *q = malloc(cap * sizeof *q);
        if (!q)
            return -1;
        for (size_t i = 0; i < sp->qcount; i++)
            q[i] = sp->queue[(sp->qhead + i) % sp->qcap];
        free(sp->queue);
        sp->queue = q;
        sp->qcap = cap;
        sp->qhead = 0;
    }
    sp->queue[(sp->qhead + sp->qcount) % sp->qcap] = *e;
    sp->qcount++;
    sp->qbytes += e->prepared_len;
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
