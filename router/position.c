/* The router: a sink's position: rewind, resync when fenced, retention loss, the log end. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dlq.h"
#include "engine.h"
#include "offsets.h"
#include "position.h"
#include "queue.h"
#include "lib/clock.h"
#include "lib/log.h"

/* Consume @p rp again from @p next. Records waiting for their schema are let go and read again
 * (the seek goes back to the first of them when it is earlier). @p sk: whose log a failure goes to. */
void rpart_seek(struct rpart *rp, int64_t next, struct sink *sk)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_error_t *kerr;
    int64_t waiting = rpart_wait_drop(rp);

    if (waiting != OFFSET_UNKNOWN && waiting < next)
        next = waiting;
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, rp->rt->name, rp->partition)->offset = next;
    kerr = rd_kafka_seek_partitions(rp->r->rk, list, 0);
    if (kerr) {
        if (sk)
            sink_log(sk, LOG_WARN, "seek %s [%" PRId32 "] to %" PRId64 ": %s", rp->rt->name, rp->partition, next,
                     rd_kafka_error_string(kerr));
        rd_kafka_error_destroy(kerr);
    }
    rd_kafka_topic_partition_list_destroy(list);
    rp->fetched_end = next;
}

static void on_positions_done(struct sink_positions *pub, int ok, const char *error);
static void spart_resync_later(struct spart *sp);
static void on_resync_retry(struct router *r, void *arg);

/* A record below the sink's position is normally one it already has. But when that position
 * lies past the log end, the topic was recreated or truncated: the records it skips are new
 * ones. Say so loudly, once per partition, instead of skipping them in silence. */
void spart_check_beyond_end(struct spart *sp)
{
    struct rpart *rp = sp->rp;
    struct sink_state *st = sp->sk->state;
    int64_t low = -1, high = -1;
    int64_t next = offsets_next(rp->op, sp->sink_index);

    /* The watermarks of the last fetch response: no broker round trip. */
    if (next == OFFSET_UNKNOWN ||
        rd_kafka_get_watermark_offsets(rp->r->rk, rp->rt->name, rp->partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0 || high >= next)
        return;
    sp->beyond_end_reported = 1;
    st->stats.positions_beyond_end++;
    snprintf(st->last_error, sizeof st->last_error,
             "position %" PRId64 " of %s [%" PRId32 "] is past the log end %" PRId64
             ": the topic was recreated or truncated; records below %" PRId64
             " are skipped for this sink (POST /sinks/%s/replay to deliver them)",
             next, rp->rt->name, rp->partition, high, next, sp->sk->name);
    st->last_error_ms = wall_ms();
    sink_log(sp->sk, LOG_ERROR, "%s", st->last_error);
}

void positions_req_free(struct positions_req *req)
{
    free(req->partitions);
    free(req->next);
    free(req);
}

struct positions_req *positions_req_new(struct router *r, struct rtopic *rt, size_t sink_index, size_t n)
{
    struct positions_req *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->partitions = calloc(n ? n : 1, sizeof *req->partitions);
    req->next = calloc(n ? n : 1, sizeof *req->next);
    if (!req->partitions || !req->next) {
        positions_req_free(req);
        return NULL;
    }
    req->rt = rt;
    req->r = r;
    req->sink_index = sink_index;
    req->pub.topic = rt->name;
    req->pub.partitions = req->partitions;
    req->pub.next = req->next;
    req->pub.count = n;
    req->pub.origin = req;
    req->pub.done = on_positions_done;
    for (size_t i = 0; i < n; i++)
        req->next[i] = OFFSET_UNKNOWN;
    return req;
}

static void on_resync_loaded(struct positions_req *req, int ok, const char *error)
{
    struct rtopic *rt = req->rt;
    int32_t partition = req->partitions[0];
    struct rpart *rp = (size_t)partition < rt->nparts ? rt->parts[partition] : NULL;
    struct spart *sp;
    int64_t stored = req->next[0];

    if (!rp || rp->generation != req->resync_generation) {
        positions_req_free(req);
        return;
    }
    sp = rp->sparts[req->sink_index];
    positions_req_free(req);
    if (!ok) {
        sink_log(sp->sk, LOG_WARN, "%s [%" PRId32 "]: cannot reload positions: %s; trying again",
                 rt->name, partition, error ? error : "unknown error");
        spart_resync_later(sp);
        return;
    }
    sp->resyncing = 0;
    if (stored == OFFSET_UNKNOWN) {
        /* The target lost its positions (flushed, restored, restarted without persistence):
         * start again from what the group committed, and say so. */
        stored = rp->committed != OFFSET_UNKNOWN ? rp->committed : offsets_next(rp->op, sp->sink_index);
        sink_log(sp->sk, LOG_ERROR, "%s [%" PRId32 "]: the target holds no position any more; restarting at the "
                 "committed offset %" PRId64 " (records before it are not re-applied)", rt->name, partition, stored);
        sp->stored = OFFSET_UNKNOWN;
    } else {
        sp->stored = stored;
    }
    if (stored != OFFSET_UNKNOWN) {
        offsets_rewind(rp->op, sp->sink_index, stored);
        if (stored < rp->fetched_end)   /* consume again from the sink's position; the other sinks skip what they have */
            rpart_seek(rp, stored, NULL);
    }
    if (sp->stored != OFFSET_UNKNOWN)
        sink_log(sp->sk, LOG_INFO, "%s [%" PRId32 "]: resumed at stored position %" PRId64, rt->name, partition, stored);
}

struct resync_retry {
    struct router *r;
    struct rtopic *rt;
    int32_t partition;
    uint64_t generation;
    size_t sink_index;
};

/* Reload the stored position of a fenced sink's partition, again after a second on failure. */
static void spart_resync_later(struct spart *sp)
{
    struct rpart *rp = sp->rp;
    struct resync_retry *again = malloc(sizeof *again);
    if (!again)
        abort();
    *again = (struct resync_retry){ rp->r, rp->rt, rp->partition, rp->generation, sp->sink_index };
    router_defer(rp->r, 1000, on_resync_retry, free, again);
}

void spart_resync(struct spart *sp)
{
    struct rpart *rp = sp->rp;
    struct positions_req *req;

    sp->resyncing = 1;
    spart_drop_queue(sp);
    if (!(req = positions_req_new(rp->r, rp->rt, sp->sink_index, 1))) {
        spart_resync_later(sp);
        return;
    }
    req->partitions[0] = rp->partition;
    req->resync = sp;
    req->done = on_resync_loaded;
    req->resync_generation = rp->generation;
    sp->sk->ops->load_positions(sp->sk, &req->pub);
}

static void on_resync_retry(struct router *r, void *arg)
{
    struct resync_retry *again = arg;
    struct rpart *rp = (size_t)again->partition < again->rt->nparts ? again->rt->parts[again->partition] : NULL;
    (void)r;
    if (rp && rp->generation == again->generation)
        spart_resync(rp->sparts[again->sink_index]);
    free(again);
}

struct positions_verdict {
    struct positions_req *req;
    int ok;
    char *error;
};

static void positions_verdict_drop(void *arg)
{
    struct positions_verdict *v = arg;
    positions_req_free(v->req);
    free(v->error);
    free(v);
}

static void on_positions_verdict(struct router *r, void *arg)
{
    struct positions_verdict *v = arg;
    struct positions_req *req = v->req;
    (void)r;

    req->done(req, v->ok, v->error);
    free(v->error);
    free(v);
}

static void on_positions_done(struct sink_positions *pub, int ok, const char *error)
{
    struct positions_verdict *v = calloc(1, sizeof *v);
    struct positions_req *req = pub->origin;

    if (!v)
        abort();
    v->req = req;
    v->ok = ok;
    v->error = error ? strdup(error) : NULL;
    /* Next turn of the loop, like batch verdicts: the sink may answer from inside the call. */
    router_defer(req->r, 0, on_positions_verdict, positions_verdict_drop, v);
}

/* Restarts a sink's share of a partition at @p next: what it queued is dropped, the tracker
 * forgets what it had outstanding, and the consumer seeks back when next is below what it has
 * read; the other sinks skip what they already have. Waits for a batch in flight, whose verdict
 * may still move the sink's position. */
void spart_rewind(struct spart *sp, int64_t next)
{
    struct rpart *rp = sp->rp;

    if (sp->inflight) {
        sp->rewind_to = next;
        return;
    }
    spart_drop_queue(sp);
    if (next == REWIND_TO_NEXT) {
        /* Coming back from a pause or park: what retention deleted meanwhile is reported. */
        spart_check_lost(sp, OFFSET_UNKNOWN);
        next = offsets_next(rp->op, sp->sink_index);
        if (next != OFFSET_UNKNOWN && sp->lost_until > next)
            next = sp->lost_until;
    }
    if (next == OFFSET_UNKNOWN)
        return;
    if (sp->replay_capture) {
        /* A group replay's mark waits until a batch has moved the target's position from here. */
        sp->replay_capture = 0;
        sp->replay_saved_from = sp->stored != OFFSET_UNKNOWN && next < sp->stored ? sp->stored : OFFSET_UNKNOWN;
    }
    offsets_rewind(rp->op, sp->sink_index, next);
    if (next < rp->fetched_end)
        rpart_seek(rp, next, sp->sk);
    sink_log(sp->sk, LOG_INFO, "%s [%" PRId32 "]: restarting at %" PRId64, rp->rt->name, rp->partition, next);
}

static void on_loss_marker_stored(void *arg, int ok, const char *error)
{
    (void)arg;
    if (!ok)
        LOG(LOG_ERROR, "dead-letter topic: cannot store a loss marker: %s", error ? error : "unknown error");
}

/* Offsets [from, to) of the sink's partition are gone from the log: counted, logged, marked in
 * the dead-letter topic and shown by the admin API, never skipped silently. */
static void spart_report_lost(struct spart *sp, int64_t from, int64_t to)
{
    struct rpart *rp = sp->rp;
    struct sink_state *st = sp->sk->state;
    char reason[512];
    struct dlq_letter marker = {
        .sink = sp->sk->name, .reason = reason, .topic = rp->rt->name, .partition = rp->partition,
        .offset = from, .timestamp_ms = -1, .lost_end = to,
    };

    sp->lost_until = to;
    st->stats.records_lost += (uint64_t)(to - from);
    snprintf(reason, sizeof reason, "lost: offsets %" PRId64 "..%" PRId64 " of %s [%" PRId32 "] (%" PRId64
             " records) were deleted by the topic's retention before this sink got them", from, to - 1,
             rp->rt->name, rp->partition, to - from);
    snprintf(st->last_error, sizeof st->last_error, "%s", reason);
    st->last_error_ms = wall_ms();
    snprintf(st->last_loss, sizeof st->last_loss, "%s", reason);
    sink_log(sp->sk, LOG_ERROR, "%s", reason);
    if (!rp->r->dry_run && dlq_send(rp->r->dlq, &marker, on_loss_marker_stored, NULL) != 0)
        sink_log(sp->sk, LOG_ERROR, "out of memory sending a loss marker");
}

/* Reports what of the sink's partition below the log start it has not got: from @p from (a gap
 * the consumer just jumped), or (OFFSET_UNKNOWN) from its own position for a sink holding off,
 * whose queued records were dropped; a batch it still has at the target is not lost. */
void spart_check_lost(struct spart *sp, int64_t from)
{
    struct rpart *rp = sp->rp;
    int64_t low = -1, high = -1;

    if (from == OFFSET_UNKNOWN) {
        from = offsets_next(rp->op, sp->sink_index);
        if (sp->inflight && sp->inflight->pub.count &&
            sp->inflight->pub.records[sp->inflight->pub.count - 1].offset + 1 > from)
            from = sp->inflight->pub.records[sp->inflight->pub.count - 1].offset + 1;
    }
    if (from == OFFSET_UNKNOWN || from < 0)
        return;
    if (sp->lost_until > from)
        from = sp->lost_until;
    /* The log start as the last fetch response said: no broker round trip. */
    if (rd_kafka_get_watermark_offsets(rp->r->rk, rp->rt->name, rp->partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (low > from)
        spart_report_lost(sp, from, low);
}
