/* The router: assignment and revocation of partitions. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "carry.h"
#include "commit.h"
#include "conf.h"
#include "cuts.h"
#include "engine.h"
#include "flow.h"
#include "group_apply.h"
#include "offsets.h"
#include "position.h"
#include "queue.h"
#include "rebalance.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/worker.h"

/* Loading positions for an assignment: committed offsets (on the worker thread, where the
 * blocking rd_kafka_committed may wait) and each transactional sink's stored positions. */
struct assign_job {
    struct router *r;
    int cancelled;                 /* an eager revoke came first: assign nothing */
    struct assign_job *next;       /* the router's list of unfinished jobs */
    rd_kafka_topic_partition_list_t *partitions;   /* with committed offsets once loaded */
    rd_kafka_resp_err_t committed_err;
    size_t pending;
    int failed;
    struct event *retry_timer;
    /* The log start and end of the partitions where a new sink begins at "earliest" or
     * "latest" (by index in partitions; -1: not asked), read on the worker too. */
    int64_t *log_start, *log_end;
    int ends_loaded;
    rd_kafka_resp_err_t ends_err;
};

#define LOAD_RETRY_MS 2000         /* pause before loading positions again after a failure */

static void assign_job_step(struct assign_job *job);

static struct rpart *rpart_new(struct router *r, struct rtopic *rt, int32_t partition)
{
    size_t nsinks = r->conf->nsinks;
    struct rpart *rp = calloc(1, sizeof *rp);

    if (!rp)
        return NULL;
    rp->r = r;
    rp->rt = rt;
    rp->partition = partition;
    rp->state = RPART_LOADING;
    rp->generation = ++r->next_generation;
    rp->committed = OFFSET_UNKNOWN;
    rp->op = offsets_partition_new(rt->name, partition, nsinks);
    rp->sparts = calloc(nsinks, sizeof *rp->sparts);
    if (!rp->op || !rp->sparts)
        goto fail;
    for (size_t i = 0; i < rt->nsinks; i++) {
        size_t k = rt->sinks[i];
        struct spart *sp = calloc(1, sizeof *sp);
        if (!sp)
            goto fail;
        rp->sparts[k] = sp;
        sp->rp = rp;
        sp->sink_index = k;
        sp->sk = r->conf->sinks[k];
        sp->stored = OFFSET_UNKNOWN;
        sp->rewind_to = NO_REWIND;
        sp->lost_until = -1;
        sp->recorded_first = sp->recorded_last = -1;
        sp->replay_id = sp->replay_announced = -1;
        sp->replay_saved_from = OFFSET_UNKNOWN;
        if (!(sp->linger_timer = evtimer_new(r->eb, on_linger, sp)))
            goto fail;
    }
    return rp;
fail:
    offsets_partition_free(rp->op);
    for (size_t k = 0; rp->sparts && k < nsinks; k++) {
        if (rp->sparts[k] && rp->sparts[k]->linger_timer)
            event_free(rp->sparts[k]->linger_timer);
        free(rp->sparts[k]);
    }
    free(rp->sparts);
    free(rp);
    return NULL;
}

/* Frees a partition's state. In-flight batches are orphaned: their verdicts are ignored. */
void rpart_free(struct rpart *rp)
{
    struct rtopic *rt = rp->rt;
    /* librdkafka keeps an application's pause across a revoke: the next assignment of this
     * partition (here or after a rebalance) must not start paused. */
    if (rp->kafka_paused)
        rpart_kafka_resume(rp);
    rpart_wait_drop(rp);   /* never handed to a sink: the next owner reads them */
    for (size_t i = 0; i < rt->nsinks; i++) {
        struct spart *sp = rp->sparts[rt->sinks[i]];
        spart_drop_queue(sp);
        if (sp->inflight) {
            struct router_batch *b = sp->inflight;
            sp->sk->state->buffered -= b->pub.count;
            for (size_t k = 0; k < b->pub.count; k++)
                sp->sk->state->buffered_bytes -= entry_bytes(&b->pub.records[k]);
            b->sp = NULL;
            if (!b->at_sink) {          /* waiting for a retry: nobody else holds it */
                batch_free(b);
            } else {
                b->orphan_next = rp->r->orphans;
                if (rp->r->orphans)
                    rp->r->orphans->orphan_prev = b;
                rp->r->orphans = b;
            }
        }
        event_free(sp->linger_timer);
        free(sp->queue);
        free(sp);
    }
    if ((size_t)rp->partition < rt->nparts && rt->parts[rp->partition] == rp)
        rt->parts[rp->partition] = NULL;
    offsets_partition_free(rp->op);
    free(rp->sparts);
    free(rp);
}

static int rtopic_slot(struct rtopic *rt, int32_t partition)
{
    if ((size_t)partition >= rt->nparts) {
        size_t n = (size_t)partition + 1;
        struct rpart **parts = realloc(rt->parts, n * sizeof *parts);
        if (!parts)
            return -1;
        memset(parts + rt->nparts, 0, (n - rt->nparts) * sizeof *parts);
        rt->parts = parts;
        rt->nparts = n;
    }
    return 0;
}

static void on_committed_run(void *arg)
{
    struct assign_job *job = arg;
    /* On the worker thread: rd_kafka_committed blocks on a broker round trip. */
    job->committed_err = rd_kafka_committed(job->r->rk, job->partitions, 10000);
}

static void on_committed_done(void *arg)
{
    struct assign_job *job = arg;
    if (job->committed_err) {
        LOG(LOG_WARN, "cannot read committed offsets: %s", rd_kafka_err2str(job->committed_err));
        job->failed = 1;
    }
    job->pending--;
    assign_job_step(job);
}

/* The stored positions of one transactional sink for the partitions being assigned. */
static void on_job_positions_loaded(struct positions_req *req, int ok, const char *error)
{
    struct assign_job *job = req->job;
    if (!ok) {
        sink_log(job->r->conf->sinks[req->sink_index], LOG_WARN, "cannot load positions of %s: %s",
                 req->rt->name, error ? error : "unknown error");
        job->failed = 1;
    } else {
        /* Write the stored positions into the sparts of the loading partitions. */
        for (size_t i = 0; i < req->pub.count; i++) {
            struct rpart *rp = (size_t)req->partitions[i] < req->rt->nparts ? req->rt->parts[req->partitions[i]] : NULL;
            if (rp && rp->state == RPART_LOADING)
                rp->sparts[req->sink_index]->stored = req->next[i];
        }
    }
    positions_req_free(req);
    job->pending--;
    assign_job_step(job);
}

/* Whether sink @p sp has no position of its own yet in the partition of @p tp (see README, "start"):
 * none stored in its target, none carried across a reload, and the group's last commit does not
 * name it. A commit that names no sink at all (made by a sluice before "start", or whose names did
 * not fit) cannot tell: its committed offset then counts as every sink's, so an upgrade does not
 * load every sink again. A dry run starts every sink at the committed offset, as it reads no target. */
static int spart_is_new(struct router *r, const struct spart *sp, const rd_kafka_topic_partition_t *tp)
{
    int named;

    if (r->dry_run)
        return 0;
    if ((sp->sk->ops->flags & SINK_F_TRANSACTIONAL) && sp->stored != OFFSET_UNKNOWN)
        return 0;
    if (router_carried_next(r, sp->sink_index, tp->topic, tp->partition, 0) != OFFSET_UNKNOWN)
        return 0;
    named = cuts_names_sink(tp, sp->sk->name);
    return named == 0 || (named < 0 && tp->offset < 0);
}

/* Whether a new sink of the partition begins at its log start or end, which must be looked up. */
static int rpart_needs_ends(struct router *r, const struct rpart *rp, const rd_kafka_topic_partition_t *tp)
{
    for (size_t s = 0; s < rp->rt->nsinks; s++) {
        const struct spart *sp = rp->sparts[rp->rt->sinks[s]];
        if (sp->sk->start != SINK_START_COMMITTED && spart_is_new(r, sp, tp))
            return 1;
    }
    return 0;
}

static void on_ends_run(void *arg)
{
    struct assign_job *job = arg;
    /* On the worker thread: each lookup is a broker round trip. */
    for (int i = 0; i < job->partitions->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &job->partitions->elems[i];
        rd_kafka_resp_err_t err;
        if (job->log_start[i] != -2)
            continue;   /* not asked */
        err = rd_kafka_query_watermark_offsets(job->r->rk, tp->topic, tp->partition, &job->log_start[i],
                                               &job->log_end[i], 10000);
        if (err) {
            job->ends_err = err;
            job->log_start[i] = job->log_end[i] = -1;
        }
    }
}

static void on_ends_done(void *arg)
{
    struct assign_job *job = arg;
    if (job->ends_err) {
        LOG(LOG_WARN, "cannot read the log start and end of the partitions where a new sink begins: %s",
            rd_kafka_err2str(job->ends_err));
        job->failed = 1;
    } else {
        job->ends_loaded = 1;
    }
    job->pending--;
    assign_job_step(job);
}

/* Asks the worker for the log ends a new sink begins at; 0 when none is needed. */
static int assign_job_load_ends(struct assign_job *job)
{
    struct router *r = job->r;
    rd_kafka_topic_partition_list_t *parts = job->partitions;
    int asked = 0;

    for (int i = 0; i < parts->cnt; i++) {
        struct rpart *rp = router_part(r, parts->elems[i].topic, parts->elems[i].partition);
        job->log_start[i] = job->log_end[i] = -1;
        if (rp && rp->state == RPART_LOADING && rpart_needs_ends(r, rp, &parts->elems[i])) {
            job->log_start[i] = -2;   /* to ask */
            asked = 1;
        }
    }
    if (!asked) {
        job->ends_loaded = 1;
        return 0;
    }
    job->ends_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    job->pending = 1;
    if (worker_submit(r->worker, on_ends_run, on_ends_done, job) != 0)
        abort();
    return 1;
}

static void assign_job_start(struct assign_job *job)
{
    struct router *r = job->r;
    rd_kafka_topic_partition_list_t *parts = job->partitions;

    job->failed = 0;
    job->ends_loaded = 0;
    job->pending = 1;
    if (worker_submit(r->worker, on_committed_run, on_committed_done, job) != 0)
        abort();
    /* Each transactional sink reads its stored positions, one request per topic. */
    for (size_t t = 0; t < r->ntopics; t++) {
        struct rtopic *rt = &r->topics[t];
        size_t n = 0;
        for (int i = 0; i < parts->cnt; i++)
            n += strcmp(parts->elems[i].topic, rt->name) == 0;
        if (n == 0)
            continue;
        for (size_t s = 0; s < rt->nsinks; s++) {
            struct sink *sk = r->conf->sinks[rt->sinks[s]];
            struct positions_req *req;
            size_t j = 0;
            /* A dry run starts no sink, so none reads its target: it joins at the committed offset. */
            if (!(sk->ops->flags & SINK_F_TRANSACTIONAL) || r->dry_run)
                continue;
            if (!(req = positions_req_new(r, rt, rt->sinks[s], n)))
                abort();
            for (int i = 0; i < parts->cnt; i++)
                if (strcmp(parts->elems[i].topic, rt->name) == 0)
                    req->partitions[j++] = parts->elems[i].partition;
            req->job = job;
            req->done = on_job_positions_loaded;
            job->pending++;
            sk->ops->load_positions(sk, &req->pub);
        }
    }
}

/* A sink new to the partition joins where its "start" says: the log start (a full load of the
 * retained records, which holds the committed offset back until it reaches it), the group's
 * committed offset (as a sink with no start option always did), or the log end. */
static void spart_join_new(struct rpart *rp, struct spart *sp, int64_t committed, int64_t log_start, int64_t log_end)
{
    static const char *const starts[] = { "earliest", "committed", "latest" };
    int64_t next = committed;

    sp->known_from = INT64_MIN;
    if (sp->sk->start == SINK_START_EARLIEST && log_start >= 0) {
        next = log_start;
        if (committed != OFFSET_UNKNOWN && committed > next)
            sp->known_from = committed;
    } else if (sp->sk->start == SINK_START_LATEST && log_end >= 0) {
        next = log_end;
    }
    offsets_sink_join(rp->op, sp->sink_index, next);
    sink_log(sp->sk, LOG_INFO, "%s [%" PRId32 "]: no position of its own yet; start %s: begins at %" PRId64
             " (log %" PRId64 "..%" PRId64 ", group committed %" PRId64 ")", rp->rt->name, rp->partition,
             starts[sp->sk->start], next, log_start, log_end, committed);
}

/* Once every position is known: join each sink at its next, and start the consumer at the
 * lowest of them, so a transactional sink that stored less than the commit catches up. */
static void assign_job_step(struct assign_job *job)
{
    struct router *r = job->r;
    rd_kafka_topic_partition_list_t *parts = job->partitions;
    rd_kafka_error_t *kerr = NULL;

    if (job->pending > 0)
        return;
    if (job->cancelled) {
        assign_job_free(job);
        return;
    }
    if (job->failed) {
        struct timeval tv = ms_to_tv(LOAD_RETRY_MS);
        LOG(LOG_WARN, "positions for the new assignment are not all known; trying again in %d ms", LOAD_RETRY_MS);
        evtimer_add(job->retry_timer, &tv);
        return;
    }
    if (!job->ends_loaded && assign_job_load_ends(job))
        return;
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct rpart *rp = router_part(r, tp->topic, tp->partition);
        int64_t committed = tp->offset >= 0 ? tp->offset : OFFSET_UNKNOWN;
        int64_t start;
        if (!rp || rp->state != RPART_LOADING)
            continue;   /* revoked while loading */
        /* Its commits name the sinks with a position; the group's last one did not: the next
         * commit does, even without progress (an empty name is in no list: -1 means none). */
        rp->names_sinks = !r->dry_run;
        rp->announce = rp->names_sinks && cuts_names_sink(tp, "") < 0;
        for (size_t s = 0; s < rp->rt->nsinks; s++) {
            struct spart *sp = rp->sparts[rp->rt->sinks[s]];
            int64_t next = committed, carried;
            if (spart_is_new(r, sp, tp)) {
                spart_join_new(rp, sp, committed, job->log_start[i], job->log_end[i]);
                continue;
            }
            if ((sp->sk->ops->flags & SINK_F_TRANSACTIONAL) && sp->stored != OFFSET_UNKNOWN)
                next = sp->stored;
            /* A sink kept across a reload has finished everything below its carried position,
             * even when another sink held the commit back: it skips those records. */
            carried = router_carried_next(r, sp->sink_index, tp->topic, tp->partition, 1);
            if (carried != OFFSET_UNKNOWN && (next == OFFSET_UNKNOWN || carried > next))
                next = carried;
            /* Below the committed offset (still loading when a reload carried it, or a target
             * behind the group): named in commits once it has caught up. */
            sp->known_from = next != OFFSET_UNKNOWN && committed != OFFSET_UNKNOWN && next < committed ? committed
                                                                                                    : INT64_MIN;
            offsets_sink_join(rp->op, sp->sink_index, next);
        }
        rpart_read_cuts(rp, tp);
        start = offsets_commit_position(rp->op);
        rd_kafka_topic_partition_list_add(assign, tp->topic, tp->partition)->offset =
            start == OFFSET_UNKNOWN ? RD_KAFKA_OFFSET_INVALID : start;
        rp->committed = committed;
        rp->fetched_end = start == OFFSET_UNKNOWN ? 0 : start;
        rp->state = RPART_ACTIVE;
        LOG(LOG_INFO, "assigned %s [%" PRId32 "]: committed %" PRId64 ", starting at %" PRId64,
            tp->topic, tp->partition, committed, start);
    }
    if (r->cooperative)
        kerr = rd_kafka_incremental_assign(r->rk, assign);
    else
        rd_kafka_assign(r->rk, assign);
    if (kerr) {
        LOG(LOG_ERROR, "assign: %s", rd_kafka_error_string(kerr));
        rd_kafka_error_destroy(kerr);
    }
    rd_kafka_topic_partition_list_destroy(assign);
    /* Replays the group asked for that no earlier owner applied here (their mark is missing). */
    for (int i = 0; i < parts->cnt; i++) {
        struct rpart *rp = router_part(r, parts->elems[i].topic, parts->elems[i].partition);
        if (rp && rp->state == RPART_ACTIVE)
            rpart_group_replays(rp, &parts->elems[i]);
    }
    assign_job_free(job);
}

static void on_assign_retry(evutil_socket_t fd, short what, void *arg)
{
    struct assign_job *job = arg;
    (void)fd;
    (void)what;
    if (job->cancelled) {
        assign_job_free(job);
        return;
    }
    assign_job_start(job);
}

void assign_job_free(struct assign_job *job)
{
    for (struct assign_job **p = &job->r->assigning; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            break;
        }
    if (job->retry_timer)
        event_free(job->retry_timer);
    rd_kafka_topic_partition_list_destroy(job->partitions);
    free(job->log_start);
    free(job->log_end);
    free(job);
}

static void router_assign(struct router *r, const rd_kafka_topic_partition_list_t *partitions)
{
    struct assign_job *job = calloc(1, sizeof *job);

    if (!job || !(job->partitions = rd_kafka_topic_partition_list_copy(partitions)) ||
        !(job->log_start = calloc((size_t)partitions->cnt + 1, sizeof *job->log_start)) ||
        !(job->log_end = calloc((size_t)partitions->cnt + 1, sizeof *job->log_end)))
        abort();
    job->r = r;
    job->retry_timer = evtimer_new(r->eb, on_assign_retry, job);
    for (int i = 0; i < partitions->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &partitions->elems[i];
        struct rtopic *rt = router_topic(r, tp->topic);
        struct rpart *rp;
        if (!rt || rtopic_slot(rt, tp->partition) != 0 || !(rp = rpart_new(r, rt, tp->partition)))
            abort();
        if (rt->parts[tp->partition])
            rpart_free(rt->parts[tp->partition]);
        rt->parts[tp->partition] = rp;
    }
    job->next = r->assigning;
    r->assigning = job;
    LOG(LOG_INFO, "partitions assigned: %d; loading positions", partitions->cnt);
    assign_job_start(job);
}

size_t router_revoking_in_flight(struct router *r)
{
    size_t n = 0;
    for (int i = 0; r->revoking && i < r->revoking->cnt; i++) {
        struct rpart *rp = router_part(r, r->revoking->elems[i].topic, r->revoking->elems[i].partition);
        for (size_t s = 0; rp && s < rp->rt->nsinks; s++)
            n += rp->sparts[rp->rt->sinks[s]]->inflight != NULL;
    }
    return n;
}

void router_revoke_finish(struct router *r)
{
    rd_kafka_topic_partition_list_t *list = r->revoking;
    rd_kafka_error_t *kerr = NULL;

    if (!list)
        return;
    evtimer_del(r->revoke_timer);
    if (!r->revoking_lost)
        router_commit(r, list, 0);    /* what the revoked partitions finished, for their next owner */
    for (int i = 0; i < list->cnt; i++) {
        struct rpart *rp = router_part(r, list->elems[i].topic, list->elems[i].partition);
        if (!rp)
            continue;
        if (r->phase != PHASE_RUNNING)   /* the drain of a stop or reload: the next router may use them */
            router_note_positions(r, rp);
        rpart_free(rp);
    }
    r->revoking = NULL;
    if (r->cooperative)
        kerr = rd_kafka_incremental_unassign(r->rk, list);
    else
        rd_kafka_assign(r->rk, NULL);
    if (kerr) {
        LOG(LOG_ERROR, "unassign: %s", rd_kafka_error_string(kerr));
        rd_kafka_error_destroy(kerr);
    }
    LOG(LOG_INFO, "partitions revoked: %d", list->cnt);
    rd_kafka_topic_partition_list_destroy(list);
}

void on_revoke_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct router *r = arg;
    (void)fd;
    (void)what;
    LOG(LOG_WARN, "revoke: %zu batches still in flight after the shutdown timeout; handing the partitions over",
        router_revoking_in_flight(r));
    router_revoke_finish(r);
}

static void router_revoke(struct router *r, const rd_kafka_topic_partition_list_t *partitions, int lost)
{
    struct timeval tv = ms_to_tv(r->conf->shutdown_timeout_ms);

    if (r->revoking)
        router_revoke_finish(r);   /* a second revoke while waiting: hand the first over now */
    if (!r->cooperative)   /* eager: the whole assignment goes, loading or not */
        for (struct assign_job *job = r->assigning; job; job = job->next)
            job->cancelled = 1;
    r->revoking = rd_kafka_topic_partition_list_copy(partitions);
    r->revoking_lost = lost;
    for (int i = 0; i < partitions->cnt; i++) {
        struct rpart *rp = router_part(r, partitions->elems[i].topic, partitions->elems[i].partition);
        if (!rp)
            continue;
        if (rp->state == RPART_LOADING) {
            rpart_free(rp);
            continue;
        }
        rp->state = RPART_REVOKING;
        for (size_t s = 0; s < rp->rt->nsinks; s++) {
            struct spart *sp = rp->sparts[rp->rt->sinks[s]];
            spart_drop_queue(sp);
            spart_drop_waiting_batch(sp);   /* waiting for a retry (or its cut's commit) */
        }
    }
    if (router_revoking_in_flight(r) == 0)
        router_revoke_finish(r);
    else
        evtimer_add(r->revoke_timer, &tv);
}

void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    struct router *r = opaque;

    r->cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        r->rebalances[ROUTER_REBALANCE_ASSIGN]++;
        router_assign(r, partitions);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        int lost = rd_kafka_assignment_lost(rk);
        r->rebalances[lost ? ROUTER_REBALANCE_LOST : ROUTER_REBALANCE_REVOKE]++;
        router_revoke(r, partitions, lost);
    } else {
        r->rebalances[ROUTER_REBALANCE_ERROR]++;
        LOG(LOG_ERROR, "rebalance error: %s", rd_kafka_err2str(err));
        router_revoke(r, partitions, 1);
    }
}
