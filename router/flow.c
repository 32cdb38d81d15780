/* The router: backpressure, the hold, park and unpark. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "conf.h"
#include "engine.h"
#include "fetch_wake.h"
#include "flow.h"
#include "offsets.h"
#include "position.h"
#include "queue.h"
#include "registry.h"
#include "lib/clock.h"
#include "lib/log.h"

#define HOLD_MAX_MS 1000           /* longest the router stops taking records instead of pausing */
#define UNPARK_WAIT_MIN_MS 1000    /* the shortest park */
#define UNPARK_WAIT_MAX_MS 60000   /* the longest wait before a parked sink is tried again */

static int sink_full(const struct sink *sk);

static size_t spart_limit(const struct spart *sp)
{
    /* Room for several batches and more than a consume burst: a paused partition is fetched
     * again only when librdkafka's fetcher next looks (up to a second when all were paused). */
    size_t limit = (size_t)sp->sk->batch.max_records * 16;
    if (limit < 16384)
        limit = 16384;
    if (limit > (size_t)sp->sk->max_buffered_records)
        limit = (size_t)sp->sk->max_buffered_records;
    return limit;
}

/* Its share of the partition, or the sink as a whole, holds as much as it may. */
static int spart_full(const struct spart *sp)
{
    return sp->qcount >= spart_limit(sp) || sink_full(sp->sk);
}

static int spart_below_half(const struct spart *sp)
{
    return sp->qcount < spart_limit(sp) / 2 && sink_below_half(sp->sk);
}

/* Backpressure without librdkafka's pause where it can: pausing a partition drops what the
 * consumer prefetched for it, and after the resume the partition waits for the fetch in flight
 * (up to fetch.wait.max.ms) and fetches it all again; a backlog behind one busy sink then
 * drains in bursts with idle gaps. So while every active partition is paused, the router simply
 * stops taking records from the consumer queue (librdkafka stops fetching at its own limit,
 * queued.max.messages.kbytes) and resumes with what was prefetched. Not for long: the queue also
 * carries the rebalance callback, and a consumer that does not poll for max.poll.interval.ms
 * leaves its group. After HOLD_MAX_MS, or as soon as some partition may flow again, the paused
 * partitions are paused in librdkafka and records are taken again. */
static int router_hold_wanted(struct router *r)
{
    int some_active = 0, prefetch_kept = 0;

    if (r->phase != PHASE_RUNNING || !r->rk)
        return 0;
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            const struct rpart *rp = r->topics[t].parts[p];
            if (!rp || rp->state != RPART_ACTIVE)
                continue;
            if (!rp->paused)
                return 0;
            some_active = 1;
            prefetch_kept |= !rp->kafka_paused;
        }
    return some_active && prefetch_kept;
}

void router_update_hold(struct router *r)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    int64_t now = mono_ms();

    if (router_hold_wanted(r) && (r->held_since_ms == 0 || now - r->held_since_ms < HOLD_MAX_MS)) {
        if (r->held_since_ms == 0)
            r->held_since_ms = now;
        return;
    }
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            if (rp && rp->state == RPART_ACTIVE && rp->paused && !rp->kafka_paused && r->rk) {
                if (!list)
                    list = rd_kafka_topic_partition_list_new(16);
                rd_kafka_topic_partition_list_add(list, rp->rt->name, rp->partition);
                rp->kafka_paused = 1;
            }
        }
    if (list) {
        rd_kafka_pause_partitions(r->rk, list);
        rd_kafka_topic_partition_list_destroy(list);
    }
    if (r->held_since_ms) {
        r->held_since_ms = 0;
        if (r->consume_more)
            evtimer_add(r->consume_more, &ZERO_TV);
    }
}

void rpart_kafka_resume(struct rpart *rp)
{
    rd_kafka_topic_partition_list_t *list;

    rp->kafka_paused = 0;
    if (!rp->r->rk)
        return;
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, rp->rt->name, rp->partition);
    rd_kafka_resume_partitions(rp->r->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
}

static void rpart_set_paused_only(struct rpart *rp, int paused)
{
    if (rp->paused == paused)
        return;
    rp->paused = paused;
    rp->paused_since_ms = paused ? mono_ms() : 0;
    if (!paused && rp->kafka_paused) {
        rpart_kafka_resume(rp);
        router_fetch_wake_resumed(rp->r, rp->rt->name, rp->partition);
    }
}

static void rpart_set_paused(struct rpart *rp, int paused)
{
    if (rp->paused == paused)
        return;
    rpart_set_paused_only(rp, paused);
    router_update_hold(rp->r);
}

/* The sink as a whole holds as much as it may: no partition it reads may bring more now, not
 * only the one whose record filled it (they resume with router_recheck_paused). */
static void router_pause_sink_partitions(struct router *r, const struct sink *full)
{
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            if (!rp || rp->state != RPART_ACTIVE || rp->paused)
                continue;
            for (size_t i = 0; i < rp->rt->nsinks; i++)
                if (rp->sparts[rp->rt->sinks[i]]->sk == full) {
                    rpart_set_paused_only(rp, 1);
                    break;
                }
        }
    router_update_hold(r);
}

/* The shared budget (the main file's max_buffered_bytes) divided evenly between the sinks. It
 * binds only once the records held for all of them reach the budget, and then only the sinks
 * over their share: a slow sink cannot take the memory of the others (it pauses, then parks),
 * and a sink alone, or beside sinks that hold little, may use its own limit. */
static size_t sink_share(const struct sink *sk)
{
    const struct conf *conf = sk->state->r->conf;
    return (size_t)conf->max_buffered_bytes / (conf->nsinks ? conf->nsinks : 1);
}

static int sink_full(const struct sink *sk)
{
    const struct sink_state *st = sk->state;
    return st->buffered >= (size_t)sk->max_buffered_records || st->buffered_bytes >= (size_t)sk->max_buffered_bytes ||
           (records_held_bytes() >= (size_t)st->r->conf->max_buffered_bytes && st->buffered_bytes >= sink_share(sk));
}

int sink_below_half(const struct sink *sk)
{
    const struct sink_state *st = sk->state;
    return st->buffered < (size_t)sk->max_buffered_records / 2 && st->buffered_bytes < (size_t)sk->max_buffered_bytes / 2 &&
           (records_held_bytes() < (size_t)st->r->conf->max_buffered_bytes / 2 || st->buffered_bytes < sink_share(sk) / 2);
}

/* Pauses or resumes @p rp; with @p update_hold 0 the caller updates the hold once for many. */
static void rpart_backpressure(struct rpart *rp, int update_hold)
{
    const struct sink *full = NULL;
    int over = 0, under_half = 1;

    if (rp->r->phase != PHASE_RUNNING || rp->state != RPART_ACTIVE)
        return;
    for (size_t i = 0; i < rp->rt->nsinks; i++) {
        struct spart *sp = rp->sparts[rp->rt->sinks[i]];
        if (sink_holds_off(sp->sk))
            continue;   /* what it still has in flight holds nobody back */
        if (spart_full(sp))
            over = 1;
        if (sink_full(sp->sk))
            full = sp->sk;
        if (!spart_below_half(sp))
            under_half = 0;
    }
    if (rp->wait_head)
        over = 1;   /* a record waits for its schema: the partition takes nothing more now */
    if (over && full && !rp->paused)
        router_pause_sink_partitions(rp->r, full);
    else if (over || under_half)
        update_hold ? rpart_set_paused(rp, over) : rpart_set_paused_only(rp, over);
}

void rpart_check_backpressure(struct rpart *rp)
{
    rpart_backpressure(rp, 1);
}

/* A partition paused because a sink as a whole held too much resumes only when checked: after
 * that sink frees room, check every paused partition, not only the one whose batch finished. */
void router_recheck_paused(struct router *r)
{
    /* All first, then the hold: resuming them one by one would end the hold at the first and
     * pause the others in librdkafka, dropping what it prefetched for them. */
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            if (rp && rp->paused)
                rpart_backpressure(rp, 0);
        }
    router_update_hold(r);
}

/* What the sink queued for this partition leaves memory; its position stays where it was. */
static void spart_shed(struct spart *sp, void *arg)
{
    (void)arg;
    spart_drop_queue(sp);
    rpart_check_backpressure(sp->rp);
}

/* Paused by an operator: a batch waiting for its retry goes too (an automatic park keeps it, as
 * the probe that tells when the target is back). */
void spart_park(struct spart *sp, void *arg)
{
    spart_drop_waiting_batch(sp);
    spart_shed(sp, arg);
}

void spart_unpark(struct spart *sp, void *arg)
{
    (void)arg;
    spart_rewind(sp, REWIND_TO_NEXT);
}

void sink_park(struct sink *sk, const char *fmt, ...)
{
    struct sink_state *st = sk->state;
    va_list ap;

    if (st->parked)
        return;
    st->parked = 1;
    st->parked_since_ms = mono_ms();
    st->park_streak++;
    st->stats.parks++;
    va_start(ap, fmt);
    vsnprintf(st->park_reason, sizeof st->park_reason, fmt, ap);
    va_end(ap);
    snprintf(st->last_error, sizeof st->last_error, "parked: %s", st->park_reason);
    st->last_error_ms = wall_ms();
    sink_log(sk, LOG_ERROR, "parked: %s; its positions are kept, its queued records dropped from memory, "
             "the other sinks go on", st->park_reason);
    router_sink_sparts(st->r, st->index, spart_shed, NULL);
}

/* How long a park lasts before the sink is tried again: longer each time it parks again without
 * having delivered anything in between. */
static int64_t sink_unpark_wait_ms(const struct sink_state *st)
{
    unsigned doublings = st->park_streak > 1 ? st->park_streak - 1 : 0;
    int64_t wait = (int64_t)UNPARK_WAIT_MIN_MS << (doublings > 6 ? 6 : doublings);
    return wait > UNPARK_WAIT_MAX_MS ? UNPARK_WAIT_MAX_MS : wait;
}

/* Whether a topic sink @p k reads holds its records for a contract sluice cannot check. */
static int sink_contract_held(const struct router *r, size_t k)
{
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t i = 0; r->topics[t].contract_held[0] && i < r->topics[t].nsinks; i++)
            if (r->topics[t].sinks[i] == k)
                return 1;
    return 0;
}

void router_check_parking(struct router *r)
{
    int64_t now = mono_ms();

    /* A partition paused by the shared budget may resume because another sink freed memory:
     * that sink's batches recheck when it falls below half, this catches the rest. */
    router_recheck_paused(r);

    /* A parked sink comes back once what it still had at the target is finished (that batch, retried,
     * is the probe) and the sink says it can deliver. */
    for (size_t k = 0; k < r->conf->nsinks; k++) {
        struct sink *sk = r->conf->sinks[k];
        struct sink_state *st = sk->state;
        char why[256] = "";
        if (!st->parked || st->paused || now - st->parked_since_ms < sink_unpark_wait_ms(st) || st->buffered)
            continue;
        if (!sink_can_deliver(sk, why, sizeof why))
            continue;
        if (st->parked_by_registry && registry_state(r->registry, why, sizeof why) == REGISTRY_UNAUTHORIZED)
            continue;
        if (st->parked_by_contract && sink_contract_held(r, k))
            continue;
        st->parked = 0;
        st->parked_by_registry = 0;
        st->parked_by_contract = 0;
        st->park_reason[0] = '\0';
        sink_log(sk, LOG_WARN, "unparked after %.1f s: catching up from its positions",
                 (double)(now - st->parked_since_ms) / 1000.0);
        router_sink_sparts(r, k, spart_unpark, NULL);
    }
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            int someone_free = 0, someone_below_half = 0;
            if (!rp || rp->state != RPART_ACTIVE)
                continue;
            for (size_t i = 0; i < rp->rt->nsinks; i++) {
                struct spart *sp = rp->sparts[rp->rt->sinks[i]];
                if (sink_holds_off(sp->sk))
                    spart_check_lost(sp, OFFSET_UNKNOWN);
                else if (spart_below_half(sp))
                    someone_below_half = someone_free = 1;
                else if (!spart_full(sp))
                    someone_free = 1;
            }
            /* Held paused by a sink for too long: park it so that the others go on. A partition
             * resumes only once every sink is below half, so the sinks that keep it paused are
             * the full ones and, beside a sink that waits for records (below half), those still
             * over half: a sink whose share of the shared budget (sink_full) no longer binds
             * but which delivers nothing stays there. When no sink could take more, parking
             * frees nobody: the partition stays paused. */
            if (!rp->paused || !someone_free)
                continue;
            for (size_t i = 0; i < rp->rt->nsinks; i++) {
                struct spart *sp = rp->sparts[rp->rt->sinks[i]];
                struct sink_state *st = sp->sk->state;
                int holding = spart_full(sp) || (someone_below_half && !spart_below_half(sp));
                if (sink_holds_off(sp->sk) || !holding || now - rp->paused_since_ms < sp->sk->park_after_ms)
                    continue;
                sink_park(sp->sk, "held %s [%" PRId32 "] paused for %" PRId64 " ms with %zu records (%zu bytes) "
                          "buffered: its target is too slow or down", rp->rt->name, rp->partition,
                          now - rp->paused_since_ms, st->buffered, st->buffered_bytes);
            }
        }
}
