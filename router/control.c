/* The router: what the admin API asks for: pause, resume, replay, and the views. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dlq.h"
#include "engine.h"
#include "flow.h"
#include "group.h"
#include "offsets.h"
#include "position.h"
#include "queue.h"
#include "registry.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/worker.h"

int router_sink_pause(struct router *r, size_t k)
{
    struct sink *sk = r->conf->sinks[k];
    if (sk->state->paused)
        return 0;
    sk->state->paused = 1;
    router_sink_sparts(r, k, spart_park, NULL);
    sink_log(sk, LOG_INFO, "paused: positions kept, records skipped until resumed");
    return 0;
}

int router_sink_resume(struct router *r, size_t k)
{
    struct sink *sk = r->conf->sinks[k];
    if (!sink_holds_off(sk))
        return 0;
    /* Also ends a park at once: the operator says the target is fine again. */
    sk->state->paused = 0;
    sk->state->parked = 0;
    sk->state->park_reason[0] = '\0';
    sk->state->park_streak = 0;
    router_sink_sparts(r, k, spart_unpark, NULL);
    sink_log(sk, LOG_INFO, "resumed: catching up from its positions");
    return 0;
}

struct replay_req {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t replay_id;
    int count;
};

/* A group-wide replay applied to @p sp: its mark goes into the partition's commits once the
 * target holds the rewound position (spart_replay_marked): before that, the next owner of the
 * partition applies the replay again. */
static void spart_mark_replay(struct spart *sp, int64_t replay_id, int rewinding)
{
    sp->replay_id = replay_id;
    sp->replay_capture = rewinding && (sp->sk->ops->flags & SINK_F_TRANSACTIONAL);
    sp->replay_saved_from = OFFSET_UNKNOWN;
}

static void spart_replay(struct spart *sp, void *arg)
{
    struct replay_req *req = arg;
    int64_t next = offsets_next(sp->rp->op, sp->sink_index);

    if (req->topic && strcmp(req->topic, sp->rp->rt->name) != 0)
        return;
    if (req->partition >= 0 && req->partition != sp->rp->partition)
        return;
    if (next != OFFSET_UNKNOWN && req->offset >= next) {
        if (req->replay_id >= 0)
            spart_mark_replay(sp, req->replay_id, 0);
        return;   /* only backwards: forwards would skip records */
    }
    if (req->replay_id >= 0)
        spart_mark_replay(sp, req->replay_id, 1);
    spart_rewind(sp, req->offset);
    req->count++;
}

int router_sink_replay(struct router *r, size_t k, const char *topic, int32_t partition, int64_t offset,
                       int64_t replay_id, char *err, size_t errlen)
{
    struct replay_req req = { topic, partition, offset, replay_id, 0 };

    if (offset < 0) {
        snprintf(err, errlen, "offset must be 0 or more");
        return -1;
    }
    if (topic && !router_topic(r, topic)) {
        snprintf(err, errlen, "sink %s does not read topic \"%s\"", r->conf->sinks[k]->name, topic);
        return -1;
    }
    router_sink_sparts(r, k, spart_replay, &req);
    sink_log(r->conf->sinks[k], LOG_INFO, "replay from offset %" PRId64 " on %d partition(s)", offset, req.count);
    return req.count;
}

size_t replay_plan_from_times(const void *found_list, int err, struct replay_target *out, size_t *unmatched)
{
    const rd_kafka_topic_partition_list_t *found = found_list;
    size_t n = 0;

    *unmatched = 0;
    for (int i = 0; i < found->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &found->elems[i];
        if (err || tp->err || tp->offset < 0) {
            (*unmatched)++;
            continue;
        }
        out[n++] = (struct replay_target){ tp->topic, tp->partition, tp->offset };
    }
    return n;
}

struct replay_time_job {
    struct router *r;
    size_t sink_index;
    rd_kafka_topic_partition_list_t *list;   /* offset = the timestamp, then the answer */
    rd_kafka_resp_err_t err;
    router_replay_done_fn done;
    void *arg;
    int64_t replay_id;
};

static void on_replay_time_run(void *arg)
{
    struct replay_time_job *job = arg;
    job->err = rd_kafka_offsets_for_times(job->r->rk, job->list, 10000);
}

static void on_replay_time_done(void *arg)
{
    struct replay_time_job *job = arg;
    struct replay_target *targets = calloc((size_t)job->list->cnt + 1, sizeof *targets);
    size_t unmatched = 0, n;
    int rewound = 0;
    char err[256] = "";

    if (!targets) {
        job->done(job->arg, -1, 0, "out of memory");
        goto out;
    }
    n = replay_plan_from_times(job->list, job->err, targets, &unmatched);
    for (size_t i = 0; i < n; i++) {
        int count = router_sink_replay(job->r, job->sink_index, targets[i].topic, targets[i].partition,
                                       targets[i].offset, job->replay_id, err, sizeof err);
        if (count > 0)
            rewound += count;
    }
    /* A partition with no record at or after the time has nothing to replay: done there too. */
    for (int i = 0; job->replay_id >= 0 && i < job->list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &job->list->elems[i];
        struct rpart *rp = router_part(job->r, tp->topic, tp->partition);
        if ((job->err || tp->err || tp->offset < 0) && rp && rp->state == RPART_ACTIVE && rp->sparts[job->sink_index])
            spart_mark_replay(rp->sparts[job->sink_index], job->replay_id, 0);
    }
    job->done(job->arg, rewound, unmatched, job->err ? rd_kafka_err2str(job->err) : NULL);
out:
    free(targets);
    rd_kafka_topic_partition_list_destroy(job->list);
    free(job);
}

int router_sink_replay_time(struct router *r, size_t k, const char *topic, int32_t partition, int64_t timestamp_ms,
                            int64_t replay_id, router_replay_done_fn done, void *arg, char *err, size_t errlen)
{
    struct replay_time_job *job;

    if (topic && !router_topic(r, topic)) {
        snprintf(err, errlen, "sink %s does not read topic \"%s\"", r->conf->sinks[k]->name, topic);
        return -1;
    }
    if (!(job = calloc(1, sizeof *job)) || !(job->list = rd_kafka_topic_partition_list_new(8))) {
        free(job);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            if (!rp || rp->state != RPART_ACTIVE || !rp->sparts[k])
                continue;
            if ((topic && strcmp(topic, rp->rt->name) != 0) || (partition >= 0 && partition != rp->partition))
                continue;
            rd_kafka_topic_partition_list_add(job->list, rp->rt->name, rp->partition)->offset = timestamp_ms;
        }
    job->r = r;
    job->sink_index = k;
    job->done = done;
    job->arg = arg;
    job->replay_id = replay_id;
    if (worker_submit(r->worker, on_replay_time_run, on_replay_time_done, job) != 0) {
        rd_kafka_topic_partition_list_destroy(job->list);
        free(job);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int router_sink_find(const struct router *r, const char *name)
{
    for (size_t k = 0; k < r->conf->nsinks; k++)
        if (strcmp(r->conf->sinks[k]->name, name) == 0)
            return (int)k;
    return -1;
}

struct tap **router_sink_tap(struct router *r, size_t k)
{
    return &r->conf->sinks[k]->state->tap;
}

size_t router_sink_count(const struct router *r)
{
    return r->conf->nsinks;
}

void router_sink_view(const struct router *r, size_t k, struct router_sink_view *view)
{
    const struct sink *sk = r->conf->sinks[k];
    memset(view, 0, sizeof *view);
    view->sk = sk;
    view->stats = &sk->state->stats;
    view->paused = sk->state->paused;
    view->parked = sk->state->parked;
    view->park_reason = sk->state->park_reason;
    view->last_loss = sk->state->last_loss;
    view->parked_ms = sk->state->parked ? mono_ms() - sk->state->parked_since_ms : 0;
    view->buffered = sk->state->buffered;
    view->buffered_bytes = sk->state->buffered_bytes;
    view->last_error = sk->state->last_error;
    view->last_error_ms = sk->state->last_error_ms;
    view->degraded = sk->state->last_refused_ms && mono_ms() - sk->state->last_refused_ms < SINK_DEGRADED_MS;
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            if (rp && rp->sparts[k] && rp->sparts[k]->resyncing)
                view->resyncing++;
        }
}

size_t router_sink_deliveries(const struct router *r, size_t k, struct router_delivery *out, size_t max)
{
    const struct sink_state *st = r->conf->sinks[k]->state;
    size_t n = st->ndeliveries < DELIVERY_RING ? st->ndeliveries : DELIVERY_RING;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        out[i] = st->deliveries[(st->ndeliveries - 1 - i) % DELIVERY_RING];
    return n;
}

void router_partitions_foreach(struct router *r, void (*fn)(void *arg, const struct router_partition_view *pv), void *arg)
{
    static const char *const states[] = { "loading", "active", "revoking" };
    size_t nsinks = r->conf->nsinks;
    int64_t *next = calloc(nsinks ? nsinks : 1, sizeof *next);
    uint8_t *reads = calloc(nsinks ? nsinks : 1, 1);

    if (!next || !reads)
        goto out;
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            struct router_partition_view pv;
            int64_t low = -1, high = -1;
            if (!rp)
                continue;
            for (size_t k = 0; k < nsinks; k++) {
                reads[k] = rp->sparts[k] != NULL;
                next[k] = reads[k] ? offsets_next(rp->op, k) : OFFSET_UNKNOWN;
            }
            /* Cached from the last fetch response: no broker round trip. */
            if (rd_kafka_get_watermark_offsets(r->rk, rp->rt->name, rp->partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR)
                high = -1;
            pv = (struct router_partition_view){
                .topic = rp->rt->name, .partition = rp->partition, .state = states[rp->state],
                .paused = rp->paused, .committed = rp->committed, .consumed = rp->fetched_end,
                .high_watermark = high, .next = next, .reads = reads,
            };
            fn(arg, &pv);
        }
out:
    free(next);
    free(reads);
}

static size_t topic_waiting(const struct rtopic *rt)
{
    size_t n = 0;
    for (size_t p = 0; p < rt->nparts; p++)
        if (rt->parts[p])
            n += rt->parts[p]->nwaiting;
    return n;
}

int router_registry_view(const struct router *r, struct router_registry_view *view)
{
    const struct registry_stats *st;

    memset(view, 0, sizeof *view);
    if (!r->registry)
        return -1;
    st = registry_stats(r->registry);
    view->state = registry_state_name(registry_state(r->registry, view->error, sizeof view->error));
    view->requests_ok = st->requests_ok;
    view->requests_not_found = st->requests_not_found;
    view->requests_retried = st->requests_retried;
    view->requests_unauthorized = st->requests_unauthorized;
    view->requests_failed = st->requests_failed;
    view->evictions = st->evictions;
    view->cached = st->cached;
    view->cached_bytes = st->cached_bytes;
    view->fetching = st->fetching;
    for (size_t t = 0; t < r->ntopics; t++)
        view->waiting_records += topic_waiting(&r->topics[t]);
    return 0;
}

size_t router_format_topic_count(const struct router *r)
{
    size_t n = 0;
    for (size_t t = 0; t < r->ntopics; t++)
        n += r->topics[t].format != NULL || r->topics[t].contract != NULL;
    return n;
}

void router_format_topic_view(const struct router *r, size_t index, struct router_topic_view *view)
{
    static const char *const value_names[] = { "json", "confluent" };
    static const char *const key_names[] = { "bytes", "string", "confluent" };

    memset(view, 0, sizeof *view);
    for (size_t t = 0; t < r->ntopics; t++) {
        const struct rtopic *rt = &r->topics[t];
        if ((!rt->format && !rt->contract && !rt->contract_registry) || index-- > 0)
            continue;
        view->name = rt->name;
        view->value_format = value_names[rt->format ? rt->format->value_format : CONF_VALUE_JSON];
        view->key_format = key_names[rt->format ? rt->format->key_format : CONF_KEY_BYTES];
        view->decoded = rt->decoded;
        view->decode_failures = rt->decode_failures;
        view->last_decode_error = rt->last_decode_error;
        view->waiting_records = topic_waiting(rt);
        view->has_contract = rt->contract != NULL || rt->contract_registry;
        view->contract_kind = rt->contract_registry ? "registry" : "json_schema";
        view->contract_held = rt->contract_held;
        view->contract_valid = rt->contract_valid;
        view->contract_rules = rt->contract_rules;
        view->ncontract_rules = rt->ncontract_rules;
        view->last_violation = rt->last_violation;
        return;
    }
}

int router_ready(const struct router *r, char *why, size_t whylen)
{
    char *member;
    int joined;

    if (!r->rk || r->phase != PHASE_RUNNING) {
        snprintf(why, whylen, r->rk ? "shutting down" : "not started");
        return 0;
    }
    if (r->subscribe_held) {
        snprintf(why, whylen, "reading the group's control topic before joining (%s)",
                 group_waiting_reason(r->group));
        return 0;
    }
    member = rd_kafka_memberid(r->rk);
    joined = member && member[0];
    if (member)
        rd_kafka_mem_free(r->rk, member);
    if (!joined) {
        snprintf(why, whylen, "the consumer has not joined group %s yet", router_group(r));
        return 0;
    }
    if (r->assigning) {
        snprintf(why, whylen, "loading the positions of a new assignment");
        return 0;
    }
    if (r->registry) {
        /* Records of a data product wait for their schema: sluice cannot do its work. */
        struct router_registry_view rv;
        router_registry_view(r, &rv);
        if (rv.waiting_records > 0 && strcmp(rv.state, "up") != 0) {
            snprintf(why, whylen, "schema registry %s (%.300s): %zu records wait for a schema", rv.state, rv.error,
                     rv.waiting_records);
            return 0;
        }
    }
    for (size_t k = 0; k < r->conf->nsinks; k++) {
        struct sink *sk = r->conf->sinks[k];
        char reason[256] = "";
        /* A parked sink counts as ready: sluice is doing what it should, isolating a target
         * that is down; /metrics and /sinks say so. */
        if (sink_holds_off(sk) || sink_can_deliver(sk, reason, sizeof reason))
            continue;
        snprintf(why, whylen, "sink %s: %s", sk->name, reason[0] ? reason : "not ready");
        return 0;
    }
    return 1;
}

const char *router_group(const struct router *r)
{
    json_t *group = json_object_get(r->conf->kafka, "group.id");
    return json_is_string(group) ? json_string_value(group) : "";
}

const char *router_rebalance_kind_name(enum router_rebalance_kind kind)
{
    static const char *const names[ROUTER_REBALANCE_KINDS] = { "assign", "revoke", "lost", "error" };
    return (unsigned)kind < ROUTER_REBALANCE_KINDS ? names[kind] : "?";
}

void router_group_view(const struct router *r, struct router_group_view *view)
{
    memset(view, 0, sizeof *view);
    memcpy(view->rebalances, r->rebalances, sizeof view->rebalances);
    if (r->dlq) {
        dlq_counts(r->dlq, &view->dead_letters_stored, &view->dead_letter_produce_errors);
        view->dead_letters_pending = dlq_pending(r->dlq);
    }
}

void router_loop_stats(const struct router *r, uint64_t *stalls, double *worst_s)
{
    *stalls = r->loop_stalls;
    *worst_s = r->loop_worst_s;
}

const struct router_sink_stats *router_sink_stats(const struct router *r, size_t sink_index)
{
    struct sink *sk = r->conf->sinks[sink_index];
    return sk->state ? &sk->state->stats : NULL;
}
