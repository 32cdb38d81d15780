/* The router: the life of a batch: cut, write, verdict, retry, dead letters, dry run. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "conf.h"
#include "cuts.h"
#include "dlq.h"
#include "engine.h"
#include "flow.h"
#include "offsets.h"
#include "position.h"
#include "queue.h"
#include "tap.h"
#include "lib/backoff.h"
#include "lib/clock.h"
#include "lib/log.h"

struct letter_ctx {
    struct router *r;
    struct rtopic *rt;
    int32_t partition;
    uint64_t generation;
    size_t sink_index;
    int64_t offset;
};

static void on_batch_done(struct sink_batch *pub, enum sink_result result, const char *error);
static void on_batch_note(struct sink_batch *pub, const char *fmt, va_list ap);
static void on_batch_refused(struct sink_batch *pub, size_t records, const char *reason);
static void on_batch_verdict(evutil_socket_t fd, short what, void *arg);

/* What sink_batch_done, sink_batch_note and sink_batch_refused (sinks/sink.c) call for a batch of ours. */
static const struct sink_batch_hooks batch_hooks = { .done = on_batch_done, .note = on_batch_note,
                                                     .refused = on_batch_refused };

static void on_letter_stored(void *arg, int ok, const char *error)
{
    struct letter_ctx *ctx = arg;
    struct router *r = ctx->r;
    struct rpart *rp = (size_t)ctx->partition < ctx->rt->nparts ? ctx->rt->parts[ctx->partition] : NULL;

    (void)error;
    if (ok && rp && rp->generation == ctx->generation) {
        offsets_done(rp->op, ctx->sink_index, ctx->offset);
        r->conf->sinks[ctx->sink_index]->state->stats.dead_lettered++;
    }
    free(ctx);
    router_progress(r);
}

/* Sends one record of @p sp to the dead letters; its offset is finished once Kafka has it. */
void spart_dead_letter(struct spart *sp, const struct sink_record *e, const char *reason)
{
    struct router *r = sp->rp->r;
    struct letter_ctx *ctx;
    /* The record as it came from Kafka, not as decoded: a letter can be re-driven as it is. */
    const struct router_record *rec = e->origin;
    const rd_kafka_message_t *rkm = rec ? rec->rkm : NULL;
    struct dlq_letter letter = {
        .sink = sp->sk->name, .reason = reason, .topic = e->topic, .partition = e->partition,
        .offset = e->offset, .key = rkm ? rkm->key : e->key, .key_len = rkm ? (rkm->key ? rkm->key_len : 0) : e->key_len,
        .value = rkm ? rkm->payload : e->value, .value_len = rkm ? (rkm->payload ? rkm->len : 0) : e->value_len,
        .timestamp_ms = e->timestamp_ms, .has_schema_id = rec && rec->has_schema_id,
        .schema_id = rec ? rec->schema_id : 0,
    };

    if (r->dry_run) {   /* shown, not produced; the record counts as done for this run */
        json_t *line = json_pack("{s:s, s:{s:s, s:i, s:I}, s:s}", "sink", sp->sk->name, "dead_letter",
                                 "topic", e->topic, "partition", (int)e->partition, "offset", (json_int_t)e->offset,
                                 "reason", reason);
        if (line) {
            json_dumpf(line, r->dry_run, JSON_COMPACT);
            fputc('\n', r->dry_run);
            json_decref(line);
        }
        offsets_done(sp->rp->op, sp->sink_index, e->offset);
        return;
    }
    ctx = malloc(sizeof *ctx);
    sink_log(sp->sk, LOG_WARN, "dead-lettering %s [%" PRId32 "] @%" PRId64 ": %s",
             e->topic, e->partition, e->offset, reason);
    if (!ctx) {
        sink_log(sp->sk, LOG_ERROR, "out of memory while dead-lettering; the record stays unfinished");
        return;
    }
    *ctx = (struct letter_ctx){ r, sp->rp->rt, sp->rp->partition, sp->rp->generation, sp->sink_index, e->offset };
    if (dlq_send(r->dlq, &letter, on_letter_stored, ctx) != 0) {
        sink_log(sp->sk, LOG_ERROR, "out of memory while dead-lettering; the record stays unfinished");
        free(ctx);
    }
}

/* The record as the sink would send it: its own description, or the prepared bytes when the
 * sink says they are text. Otherwise prepared is the sink's private structure (its size only an
 * estimate), so the key and value the sink maps are shown instead; the batch line names the type. */
static json_t *dry_run_record(struct sink *sk, const struct sink_record *e)
{
    json_t *out = json_pack("{s:I}", "offset", (json_int_t)e->offset), *shown;
    size_t len;
    char *owned;
    int mapped;
    const char *text = tap_record_shown(sk, e, &len, &owned, &mapped);

    if (!out) {
        free(owned);
        return NULL;
    }
    json_object_set_new(out, "key", e->key ? json_stringn(e->key, e->key_len) : json_null());
    shown = text ? json_stringn(text, len) : json_null();
    free(owned);
    /* json_stringn refuses text that is not UTF-8 */
    json_object_set_new(out, mapped ? "would_send" : "value", shown ? shown : json_string("(binary)"));
    return out;
}

static void dry_run_batch(struct router_batch *b)
{
    struct sink *sk = b->pub.sink;
    json_t *records = json_array();
    char *line;

    for (size_t i = 0; i < b->pub.count; i++)
        json_array_append_new(records, dry_run_record(sk, &b->pub.records[i]));
    json_t *doc = json_pack("{s:s, s:s, s:s, s:i, s:I, s:o}", "sink", sk->name, "type", sk->type,
                            "topic", b->pub.topic, "partition", (int)b->pub.partition,
                            "records_in_batch", (json_int_t)b->pub.count, "records", records);
    line = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (line) {
        fprintf(b->r->dry_run, "%s\n", line);
        fflush(b->r->dry_run);
        free(line);
    }
    sink_batch_done(&b->pub, SINK_OK, NULL);
}

void batch_write(struct router_batch *b)
{
    struct sink *sk = b->pub.sink;
    b->at_sink = 1;
    b->started_ms = mono_ms();
    b->note[0] = '\0';
    sk->state->stats.in_flight++;
    if (sk->state->tap && b->pub.attempt == 1)
        tap_records(sk->state->tap, sk, &b->pub);
    if (b->r->dry_run)
        dry_run_batch(b);
    else
        sk->ops->write(sk, &b->pub);
}

void spart_flush(struct spart *sp)
{
    struct sink *sk = sp->sk;
    struct router_batch *b;
    size_t n = 0, bytes = 0;
    int full, recorded, cut;

    if (sp->inflight || sp->qcount == 0 || sp->resyncing || sink_holds_off(sk) || sp->rp->state != RPART_ACTIVE)
        return;
    while (n < sp->qcount && n < (size_t)sk->batch.max_records) {
        size_t len = spart_queued(sp, n)->prepared_len;
        if (n > 0 && bytes + len > (size_t)sk->batch.max_bytes)
            break;
        bytes += len;
        n++;
    }
    /* Cut by a limit: the same records give the same cut, whenever it is made. */
    full = n == (size_t)sk->batch.max_records || n < sp->qcount || bytes >= (size_t)sk->batch.max_bytes;
    if (!cuts_shape(sp, &n, &bytes, full, &recorded, &cut))
        return;
    b = calloc(1, sizeof *b);
    if (!b || !(b->pub.records = malloc(n * sizeof *b->pub.records)) ||
        !(b->timer = evtimer_new(sp->rp->r->eb, on_batch_verdict, b))) {
        sink_log(sk, LOG_ERROR, "out of memory forming a batch; trying again later");
        if (b)
            free(b->pub.records);
        free(b);
        struct timeval again = { 1, 0 };
        evtimer_add(sp->linger_timer, &again);
        return;
    }
    for (size_t i = 0; i < n; i++)
        b->pub.records[i] = *spart_queued(sp, i);
    sp->qhead = (sp->qhead + n) % sp->qcap;
    sp->qcount -= n;
    sp->qbytes -= bytes;
    if (sp->qcount == 0)
        evtimer_del(sp->linger_timer);
    spart_queue_fit(sp);

    b->r = sp->rp->r;
    b->sp = sp;
    b->pub.sink = sk;
    b->pub.hooks = &batch_hooks;
    b->pub.topic = sp->rp->rt->name;
    b->pub.partition = sp->rp->partition;
    b->pub.count = n;
    b->pub.bytes = bytes;
    b->pub.prev_next = sp->stored;
    b->pub.next = b->pub.records[n - 1].offset + 1;
    b->pub.attempt = 1;
    sp->first_batch = 0;
    sp->recorded_first = sp->recorded_last = -1;
    sp->first_wait_since_ms = 0;
    if (cut && spart_cut_fits(sp, b)) {
        b->cut = 1;
        /* A recorded cut is in the committed metadata already; a new one goes there first. */
        b->awaiting_commit = !recorded;
    }
    sp->inflight = b;
    if (b->awaiting_commit)
        router_want_cut_commit(b->r);
    else
        batch_write(b);
}

/* A batch of no record that moves the target's stored position to the tracker's: records at the
 * partition's tail that were dead-lettered or filtered out are then behind it for good. */
void spart_flush_position(struct spart *sp)
{
    struct sink *sk = sp->sk;
    struct rpart *rp = sp->rp;
    int64_t next = offsets_next(rp->op, sp->sink_index);
    struct router_batch *b;

    if (!(sk->ops->flags & SINK_F_POSITION_BATCHES) || rp->r->dry_run || sp->inflight || sp->qcount ||
        sp->resyncing || sink_holds_off(sk) || rp->state != RPART_ACTIVE || sp->stored == OFFSET_UNKNOWN ||
        next == OFFSET_UNKNOWN || next <= sp->stored || offsets_outstanding(rp->op, sp->sink_index))
        return;
    if (!(b = calloc(1, sizeof *b)) || !(b->timer = evtimer_new(rp->r->eb, on_batch_verdict, b))) {
        free(b);
        return;   /* the next tick tries again */
    }
    b->r = rp->r;
    b->sp = sp;
    b->pub.sink = sk;
    b->pub.hooks = &batch_hooks;
    b->pub.topic = rp->rt->name;
    b->pub.partition = rp->partition;
    b->pub.prev_next = sp->stored;
    b->pub.next = next;
    b->pub.attempt = 1;
    sp->inflight = b;
    batch_write(b);
}

void on_linger(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    spart_flush(arg);
}

/* Called after a record is queued: flush when the batch is full, else within linger_ms. */
void spart_schedule(struct spart *sp)
{
    struct sink *sk = sp->sk;

    if (sp->inflight)
        return;   /* the verdict of the batch in flight flushes what waits */
    if (sp->qcount >= (size_t)sk->batch.max_records || sp->qbytes >= (size_t)sk->batch.max_bytes ||
        sp->rp->r->phase != PHASE_RUNNING ||
        (sp->first_batch && sp->recorded_last >= 0 && sp->qcount &&
         spart_queued(sp, sp->qcount - 1)->offset >= sp->recorded_last)) {
        spart_flush(sp);
        return;
    }
    if (!evtimer_pending(sp->linger_timer, NULL)) {
        struct timeval tv = ms_to_tv(sk->batch.linger_ms);
        evtimer_add(sp->linger_timer, &tv);
    }
}

static void on_batch_done(struct sink_batch *pub, enum sink_result result, const char *error)
{
    struct router_batch *b = (struct router_batch *)pub;
    /* Processed on the next turn of the loop: a sink may call this from inside write(). */
    b->result = result;
    free(b->error);
    b->error = error ? strdup(error) : NULL;
    evtimer_add(b->timer, &ZERO_TV);
}

static void on_batch_note(struct sink_batch *pub, const char *fmt, va_list ap)
{
    struct router_batch *b = (struct router_batch *)pub;
    vsnprintf(b->note, sizeof b->note, fmt, ap);
}

/* Records sluice would not send (the SSRF guard): counted, and the reason is the last error, so
 * that the sink shows "degraded" instead of a clean bill while its records are dead-lettered. */
static void on_batch_refused(struct sink_batch *pub, size_t records, const char *reason)
{
    struct sink_state *st = pub->sink->state;

    st->stats.refused_ssrf += records;
    snprintf(st->last_error, sizeof st->last_error, "%s", reason ? reason : "refused by the SSRF guard");
    st->last_error_ms = wall_ms();
    st->last_refused_ms = mono_ms();
}

/* Keeps the attempt in the sink's ring for the debug view, and its error as the last error. */
static void batch_record_delivery(struct router_batch *b)
{
    struct sink_state *st = b->pub.sink->state;
    struct router_delivery *d = &st->deliveries[st->ndeliveries++ % DELIVERY_RING];

    memset(d, 0, sizeof *d);
    d->at_ms = wall_ms();
    d->duration_ms = mono_ms() - b->started_ms;
    snprintf(d->topic, sizeof d->topic, "%s", b->pub.topic);
    d->partition = b->pub.partition;
    d->first_offset = b->pub.count ? b->pub.records[0].offset : b->pub.prev_next;
    d->last_offset = b->pub.count ? b->pub.records[b->pub.count - 1].offset : b->pub.next - 1;
    d->count = b->pub.count;
    d->bytes = b->pub.bytes;
    d->attempt = b->pub.attempt;
    d->result = b->result;
    snprintf(d->error, sizeof d->error, "%s", b->error ? b->error : "");
    snprintf(d->detail, sizeof d->detail, "%s", b->note);
    if (b->result != SINK_OK && b->error) {
        snprintf(st->last_error, sizeof st->last_error, "%s", b->error);
        st->last_error_ms = d->at_ms;
    }
}

static void batch_dead_letter_all(struct router_batch *b, const char *reason)
{
    for (size_t i = 0; i < b->pub.count; i++)
        spart_dead_letter(b->sp, &b->pub.records[i], reason);
}

static void spart_batch_finished(struct spart *sp, struct router_batch *b)
{
    int was_over_half = !sink_below_half(sp->sk);
    sp->inflight = NULL;
    batch_free(b);
    if (was_over_half && sink_below_half(sp->sk))
        router_recheck_paused(sp->rp->r);
    if (sp->rewind_to != NO_REWIND) {
        int64_t to = sp->rewind_to;
        sp->rewind_to = NO_REWIND;
        spart_rewind(sp, to);
    }
    spart_flush(sp);
    rpart_check_backpressure(sp->rp);
    router_progress(sp->rp->r);
}

void batch_orphan_unlink(struct router_batch *b)
{
    if (b->orphan_prev)
        b->orphan_prev->orphan_next = b->orphan_next;
    else if (b->r->orphans == b)
        b->r->orphans = b->orphan_next;
    if (b->orphan_next)
        b->orphan_next->orphan_prev = b->orphan_prev;
    b->orphan_prev = b->orphan_next = NULL;
}

static void on_batch_verdict(evutil_socket_t fd, short what, void *arg)
{
    struct router_batch *b = arg;
    struct spart *sp = b->sp;
    struct sink *sk = b->pub.sink;
    struct router *r = b->r;
    char reason[1024];

    (void)fd;
    (void)what;
    if (!b->at_sink) {                 /* a retry's backoff has passed */
        b->pub.attempt++;
        batch_write(b);
        return;
    }
    b->at_sink = 0;
    sk->state->stats.in_flight--;
    batch_record_delivery(b);
    if (sk->state->tap)
        tap_delivery(sk->state->tap, &sk->state->deliveries[(sk->state->ndeliveries - 1) % DELIVERY_RING]);
    if (b->result != SINK_OK)
        sk->state->stats.records_failed += b->pub.count;
    if (!sp) {                         /* orphaned by a revoke that stopped waiting */
        batch_orphan_unlink(b);
        batch_free(b);
        router_progress(r);
        return;
    }
    switch (b->result) {
    case SINK_OK: {
        int64_t now = wall_ms();
        sp->stored = b->pub.next;
        if (b->pub.count) {   /* a position-only batch is bookkeeping, not a delivery */
            sk->state->park_streak = 0;
            sk->state->stats.batches++;
            histogram_observe(&sk->state->stats.batch_records, (double)b->pub.count);
        }
        for (size_t i = 0; i < b->pub.count; i++) {
            struct sink_record *e = &b->pub.records[i];
            if (e->reject_reason) {
                spart_dead_letter(sp, e, e->reject_reason);
            } else {
                offsets_done(sp->rp->op, sp->sink_index, e->offset);
                sk->state->stats.delivered++;
                sk->state->stats.bytes += e->key_len + e->value_len;
                if (e->timestamp_ms > 0)
                    histogram_observe(&sk->state->stats.latency, (double)(now - e->timestamp_ms) / 1000.0);
            }
        }
        spart_batch_finished(sp, b);
        return;
    }
    case SINK_RETRY:
        sk->state->stats.retries++;
        if (sp->rp->state == RPART_REVOKING) {   /* the next owner will write it */
            spart_keep_cut(sp, b);
            spart_batch_finished(sp, b);
            return;
        }
        if ((long long)b->pub.attempt >= sk->retry.max_attempts && sk->on_failure == SINK_ON_FAILURE_DEAD_LETTER &&
            !b->pub.unreachable) {
            snprintf(reason, sizeof reason, "gave up after %u attempts: %s", b->pub.attempt,
                     b->error ? b->error : "unknown error");
            sink_log(sk, LOG_ERROR, "%s [%" PRId32 "]: %s", b->pub.topic, b->pub.partition, reason);
            batch_dead_letter_all(b, reason);
            spart_batch_finished(sp, b);
            return;
        }
        /* on_failure block, or a target that never answered about the batch: keep trying, parked */
        if ((long long)b->pub.attempt >= sk->retry.max_attempts)
            sink_park(sk, "%s [%" PRId32 "]: %u attempts failed: %s (%s: retrying, not skipped)",
                      b->pub.topic, b->pub.partition, b->pub.attempt, b->error ? b->error : "unknown error",
                      b->pub.unreachable ? "the target did not answer" : "on_failure block");
        sk->state->stats.records_retried += b->pub.count;
        {
            int64_t delay = backoff_full_jitter(b->pub.attempt, sk->retry.initial_backoff_ms, sk->retry.max_backoff_ms);
            struct timeval tv = ms_to_tv(delay);
            sink_log(sk, LOG_WARN, "%s [%" PRId32 "] attempt %u failed: %s; retrying in %" PRId64 " ms",
                     b->pub.topic, b->pub.partition, b->pub.attempt, b->error ? b->error : "unknown error", delay);
            evtimer_add(b->timer, &tv);
        }
        return;
    case SINK_FAIL:
        snprintf(reason, sizeof reason, "%s", b->error ? b->error : "permanent failure");
        if (sk->on_failure == SINK_ON_FAILURE_BLOCK && sp->rp->state != RPART_REVOKING) {
            /* Never skipped: parked, and the batch tried again now and then until the target
             * (or the data behind it) is fixed, or an operator changes the sink. */
            struct timeval tv = ms_to_tv(sk->retry.max_backoff_ms);
            sink_park(sk, "%s [%" PRId32 "]: %s (on_failure block: retrying, not skipped)", b->pub.topic,
                      b->pub.partition, reason);
            evtimer_add(b->timer, &tv);
            return;
        }
        if (sk->on_failure == SINK_ON_FAILURE_BLOCK) {   /* the next owner of the partition tries it */
            spart_keep_cut(sp, b);
            spart_batch_finished(sp, b);
            return;
        }
        batch_dead_letter_all(b, reason);
        spart_batch_finished(sp, b);
        return;
    case SINK_FENCED:
        sk->state->stats.fenced++;
        sink_log(sk, LOG_ERROR, "%s [%" PRId32 "]: stored position moved under us (%s); reloading it",
                 b->pub.topic, b->pub.partition, b->error ? b->error : "another writer");
        sp->inflight = NULL;
        batch_free(b);
        spart_resync(sp);
        return;
    }
}
