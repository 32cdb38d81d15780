/* The router's life: router_new and router_start (consumer, wake pipe, timers), the consume loop
 * (on_consumer_readable hands each record to router_route, route.c), the drain phases of a
 * shutdown (router_shutdown, router_check_progress, which struct router carries as its progress
 * hook for the files below), the stall detector and router_free. The rest of the record's path
 * is in route.c, batch.c and commit.c; ARCHITECTURE.md follows it file by file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "carry.h"
#include "commit.h"
#include "conf.h"
#include "decode.h"
#include "dlq.h"
#include "engine.h"
#include "fetch_wake.h"
#include "filter.h"
#include "flow.h"
#include "group.h"
#include "queue.h"
#include "rebalance.h"
#include "registry.h"
#include "route.h"
#include "tap.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/worker.h"

/* Records per wake-up before other events get a turn. Not many: the sinks' verdicts wait for
 * the turn, and a sink's next batch of a partition waits for its verdict, so a long burst fills
 * the buffers (8 MiB a sink) while the writers idle, then holds the router while they catch up
 * (bench-memory, paired runs against 10,000 on a quiet machine: fan8 1.04-1.08x, alone
 * 1.01-1.02x; 500 held the router less but cost alone 8-10%). */
#define CONSUME_BURST 2000
#define CONSUME_BATCH 256          /* records taken from the consumer queue at once */
#define COMMIT_WAIT_MS 5000        /* how long a shutdown waits for its last commit */
#define LOOP_TICK_MS 100           /* the stall detector's period */
#define PARK_CHECK_MS 250          /* how often sinks are looked at for parking and unparking */

static void router_check_progress(struct router *r);

static void on_consumer_readable(evutil_socket_t fd, short what, void *arg)
{
    struct router *r = arg;
    rd_kafka_message_t *msgs[CONSUME_BATCH];
    char drain[64];
    int n = 0;
    ssize_t got = 0;

    (void)what;
    if (fd >= 0)
        while (read(fd, drain, sizeof drain) > 0)
            ;
    /* In batches: one lock of the consumer queue for many records (it serves the rebalance
     * callback as rd_kafka_consumer_poll does). Not while held (router_update_hold). */
    while (n < CONSUME_BURST && !r->held_since_ms &&
           (got = rd_kafka_consume_batch_queue(r->queue, 0, msgs, CONSUME_BATCH)) > 0) {
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *rkm = msgs[i];
            router_fetch_wake_took(r, rkm);
            if (rkm->err) {
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    LOG(LOG_WARN, "consumer: %s%s%s", rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "",
                        rkm->rkt ? ": " : "", rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
                continue;
            }
            router_route(r, rkm);
        }
        n += (int)got;
    }
    if (got == 0 && !r->held_since_ms)
        router_fetch_wake_empty(r);
    if (n >= CONSUME_BURST && !r->held_since_ms) {
        /* More may wait, and the wake-up only comes on empty -> non-empty. A zero timer, not
         * event_active: an activated event runs again in this same pass, before any I/O. */
        evtimer_add(r->consume_more, &ZERO_TV);
    }
    if (r->phase == PHASE_CLOSING && rd_kafka_consumer_closed(r->rk))
        router_check_progress(r);
}

static void on_consume_more(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    on_consumer_readable(-1, what, arg);
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct router *r = opaque;
    char fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        LOG(LOG_ERROR, "kafka: fatal: %s", fatal);
        r->exit_code = 1;
        router_shutdown(r);
        return;
    }
    LOG(LOG_WARN, "kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int router_all_settled(struct router *r)
{
    if (dlq_pending(r->dlq) > 0)
        return 0;
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            for (size_t s = 0; rp && s < rp->rt->nsinks; s++) {
                struct spart *sp = rp->sparts[rp->rt->sinks[s]];
                if (sp->qcount || sp->inflight)
                    return 0;
            }
        }
    return 1;
}

/* The drain is over: tell the owner (a reload starts the next router), or leave the loop. */
static void router_finish(struct router *r)
{
    r->phase = PHASE_DONE;
    if (r->on_stopped)
        r->on_stopped(r->on_stopped_arg);
    else
        event_base_loopexit(r->eb, NULL);
}

void router_set_dry_run(struct router *r, FILE *out)
{
    r->dry_run = out;
}

void router_on_stopped(struct router *r, void (*fn)(void *arg), void *arg)
{
    r->on_stopped = fn;
    r->on_stopped_arg = arg;
}

static void router_close_consumer(struct router *r)
{
    rd_kafka_error_t *kerr;

    r->phase = PHASE_CLOSING;
    evtimer_del(r->phase_timer);
    kerr = rd_kafka_consumer_close_queue(r->rk, r->queue);
    if (kerr) {
        LOG(LOG_ERROR, "closing the consumer: %s", rd_kafka_error_string(kerr));
        rd_kafka_error_destroy(kerr);
        router_finish(r);
        return;
    }
    /* Serve the close's rebalance events from the same queue until it says closed. */
    event_add(r->consume_more, &ZERO_TV);
}

static void router_begin_commit(struct router *r)
{
    struct timeval tv = ms_to_tv(COMMIT_WAIT_MS);
    r->phase = PHASE_COMMITTING;
    router_commit(r, NULL, 0);
    evtimer_del(r->phase_timer);
    evtimer_add(r->phase_timer, &tv);
    router_check_progress(r);
}

static void on_phase_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct router *r = arg;
    (void)fd;
    (void)what;
    if (r->phase == PHASE_DRAINING) {
        LOG(LOG_WARN, "shutdown: sinks did not finish within %lld ms; committing what they finished",
            r->conf->shutdown_timeout_ms);
        router_begin_commit(r);
    } else if (r->phase == PHASE_COMMITTING) {
        LOG(LOG_WARN, "shutdown: the last commit got no answer within %d ms", COMMIT_WAIT_MS);
        router_close_consumer(r);
    }
}

/* Called whenever work finishes: advances a pending revoke and the shutdown phases. */
static void router_check_progress(struct router *r)
{
    if (r->revoking && router_revoking_in_flight(r) == 0)
        router_revoke_finish(r);
    switch (r->phase) {
    case PHASE_DRAINING:
        if (router_all_settled(r))
            router_begin_commit(r);
        break;
    case PHASE_COMMITTING:
        if (r->commits_in_flight == 0)
            router_close_consumer(r);
        break;
    case PHASE_CLOSING:
        if (rd_kafka_consumer_closed(r->rk))
            router_finish(r);
        break;
    default:
        break;
    }
}

void router_shutdown(struct router *r)
{
    struct timeval tv = ms_to_tv(r->conf->shutdown_timeout_ms);
    rd_kafka_topic_partition_list_t *assignment = NULL;

    if (r->phase != PHASE_RUNNING)
        return;
    LOG(LOG_INFO, "shutting down: flushing batches and waiting up to %lld ms for the sinks", r->conf->shutdown_timeout_ms);
    r->phase = PHASE_DRAINING;
    router_update_hold(r);   /* the consumer is served again until it is closed */
    if (!r->rk) {
        router_finish(r);
        return;
    }
    if (rd_kafka_assignment(r->rk, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_pause_partitions(r->rk, assignment);
        rd_kafka_topic_partition_list_destroy(assignment);
    }
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            for (size_t s = 0; rp && s < rp->rt->nsinks; s++) {
                spart_flush(rp->sparts[rp->rt->sinks[s]]);
                spart_flush_position(rp->sparts[rp->rt->sinks[s]]);
            }
        }
    evtimer_add(r->phase_timer, &tv);
    router_check_progress(r);
}

/* A timer that should run every LOOP_TICK_MS: when it runs late, something blocked the loop. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct router *r = arg;
    int64_t now = mono_ms(), late = now - r->tick_expected_ms;
    (void)fd;
    (void)what;
    if (r->tick_expected_ms && late > LOOP_TICK_MS) {
        r->loop_stalls++;
        if ((double)late / 1000.0 > r->loop_worst_s)
            r->loop_worst_s = (double)late / 1000.0;
    }
    r->tick_expected_ms = now + LOOP_TICK_MS;
    /* A hold ends after HOLD_MAX_MS, and assignments and revokes change what may be held. */
    router_update_hold(r);
    if (now - r->park_checked_ms >= PARK_CHECK_MS) {
        r->park_checked_ms = now;
        if (r->phase == PHASE_RUNNING)
            router_check_parking(r);
        /* The queue's wake-up comes only with new events: poll anyway now and then, or an idle
         * consumer exceeds max.poll.interval.ms and is thrown out of its group. */
        if (r->rk && r->consume_more && r->phase != PHASE_DONE && !evtimer_pending(r->consume_more, NULL)) {
            evtimer_add(r->consume_more, &ZERO_TV);
        }
    }
}

struct router *router_new(struct event_base *eb, struct conf *conf, const char *bootstrap_override,
                          char *err, size_t errlen)
{
    struct router *r = calloc(1, sizeof *r);

    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->eb = eb;
    r->conf = conf;
    r->check_progress = router_check_progress;
    r->wake_fds[0] = r->wake_fds[1] = -1;
    if (bootstrap_override)
        json_object_set_new(conf->kafka, "bootstrap.servers", json_string(bootstrap_override));
    /* The topics, each with the sinks that read it. */
    size_t most = 1;
    for (size_t k = 0; k < conf->nsinks; k++)
        most += conf->sinks[k]->topics.n;
    if (!(r->topics = calloc(most, sizeof *r->topics)))
        goto oom;
    for (size_t k = 0; k < conf->nsinks; k++) {
        struct sink *sk = conf->sinks[k];
        for (size_t t = 0; t < sk->topics.n; t++) {
            struct rtopic *rt = router_topic(r, sk->topics.v[t]);
            if (!rt) {
                const struct conf_topic *format = conf_products_topic(&conf->products, sk->topics.v[t]);
                rt = &r->topics[r->ntopics++];
                if (!(rt->name = strdup(sk->topics.v[t])))
                    goto oom;
                if (format && (format->value_format != CONF_VALUE_JSON || format->key_format != CONF_KEY_BYTES))
                    rt->format = format;
                if (format) {
                    rt->contract = format->contract_schema;
                    rt->contract_registry = format->contract_registry;
                }
            }
            size_t *sinks = realloc(rt->sinks, (rt->nsinks + 1) * sizeof *sinks);
            if (!sinks)
                goto oom;
            rt->sinks = sinks;
            rt->sinks[rt->nsinks++] = k;
        }
    }
    /* The redrive topic: read for every sink, each record applied by the sink it names. */
    if (conf->redrive_topic && !router_topic(r, conf->redrive_topic)) {
        struct rtopic *rt = &r->topics[r->ntopics++];
        if (!(rt->name = strdup(conf->redrive_topic)) || !(rt->sinks = calloc(conf->nsinks + 1, sizeof *rt->sinks)))
            goto oom;
        rt->redrive = 1;
        for (size_t k = 0; k < conf->nsinks; k++)
            rt->sinks[rt->nsinks++] = k;
    }
    if (conf_products_use_registry(&conf->products) &&
        !(r->registry = registry_new(eb, &conf->products.registry, decode_schema_compile, decode_schema_release,
                                     router_on_registry_update, r, err, errlen))) {
        router_free(r);
        return NULL;
    }
    return r;
oom:
    snprintf(err, errlen, "out of memory");
    router_free(r);
    return NULL;
}

/* Consumer defaults where sluice needs other than librdkafka's; the kafka section overrides them.
 * librdkafka counts queued.min.messages and queued.max.messages.kbytes over the whole
 * consumer queue (every partition forwards into it). Over either, 2.0.2 takes every
 * partition off its fetch list until its broker thread next wakes (a fetch response, an
 * operation, or 1 s later; fetch.error.backoff.ms does not shorten it): fetch_wake.c nudges
 * it as the router takes from the queue and when paused partitions resume, and wakes it when
 * the router emptied the queue. A
 * partition that resumes after backpressure waits for the fetch in flight, a long poll of up
 * to fetch.wait.max.ms: 100 instead of 500 (as Vector's Kafka source) halves the drain time
 * of a backlog under the default buffer limits (bench-webhook). */
const char *const router_consumer_defaults[][2] = {
    { "auto.offset.reset", "earliest" },
    { "queued.min.messages", "1000000" },
    { "fetch.error.backoff.ms", "50" },
    { "fetch.wait.max.ms", "100" },
    /* Fetch responses of up to 2 MiB instead of 50: the consumer's thread then reuses its
     * buffers instead of mapping fresh pages for each response (page faults were a quarter
     * of its time draining a backlog; bench-webhook: ratio ~0.70 -> ~0.78 with 8 MiB). Not
     * 8 or 4: the queue overshoots the prefetch by up to one response, and a response stays
     * in memory while any record of it lives; with the fetcher nudged (fetch_wake.c), 2 MiB
     * against 4 took bench-memory's peak from 57-61 to 54-55 MiB (alone) and 74-88 to 78
     * (fan8), and drained faster there and in bench-webhook (README). */
    { "fetch.max.bytes", "2097152" },
    /* The prefetch, in bytes of values: fetched records waiting in the consumer queue,
     * beside what the router holds (max_buffered_bytes). librdkafka's 64 MiB made it most
     * of sluice's memory draining a backlog; each fetched record also costs librdkafka ~380
     * bytes of its own (heaptrack), and the queue may overshoot by one fetch response. 8 MiB
     * is ~33,000 records of 250 bytes: with the fetcher woken (fetch_wake.c) the drain rate
     * stays as with 64 (bench-memory). */
    { "queued.max.messages.kbytes", "8192" },
    { NULL, NULL },
};

static int router_consumer_new(struct router *r, char *err, size_t errlen)
{
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();
    const char *name;
    json_t *value;
    char errstr[512];

    /* librdkafka's threads allocate the fetched records and the loop frees them: with an arena
     * per thread, memory freed there is kept for reuse by the fetching thread alone and the peak
     * grows (bench-memory: ~7 MiB of 70). Two arenas unless the operator says otherwise. */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2);
    for (size_t i = 0; router_consumer_defaults[i][0]; i++)
        if (!json_object_get(r->conf->kafka, router_consumer_defaults[i][0]))
            rd_kafka_conf_set(kconf, router_consumer_defaults[i][0], router_consumer_defaults[i][1], errstr,
                              sizeof errstr);
    json_object_foreach(r->conf->kafka, name, value) {
        char dry_group[512];
        const char *v = json_string_value(value);
        if (r->dry_run && strcmp(name, "group.id") == 0) {
            snprintf(dry_group, sizeof dry_group, "%s.dry-run", v);
            v = dry_group;
        }
        if (rd_kafka_conf_set(kconf, name, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "kafka %s: %s", name, errstr);
            rd_kafka_conf_destroy(kconf);
            return -1;
        }
    }
    /* Offsets are sluice's: stored and committed only once every sink has finished them. */
    rd_kafka_conf_set(kconf, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_conf_set(kconf, "enable.auto.offset.store", "false", errstr, sizeof errstr);
    rd_kafka_conf_set(kconf, "enable.partition.eof", "false", errstr, sizeof errstr);
    rd_kafka_conf_set_opaque(kconf, r);
    rd_kafka_conf_set_rebalance_cb(kconf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(kconf, on_commit_result);
    rd_kafka_conf_set_error_cb(kconf, on_kafka_error);
    rd_kafka_conf_set_log_cb(kconf, log_kafka);
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, sizeof errstr);
    if (!r->rk) {
        rd_kafka_conf_destroy(kconf);
        snprintf(err, errlen, "kafka consumer: %s", errstr);
        return -1;
    }
    rd_kafka_poll_set_consumer(r->rk);
    r->queue = rd_kafka_queue_get_consumer(r->rk);
    if (pipe2(r->wake_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    rd_kafka_queue_io_event_enable(r->queue, r->wake_fds[1], "1", 1);
    r->consume_ev = event_new(r->eb, r->wake_fds[0], EV_READ | EV_PERSIST, on_consumer_readable, r);
    r->consume_more = evtimer_new(r->eb, on_consume_more, r);
    if (!r->consume_ev || !r->consume_more || router_fetch_wake_init(r) != 0 || event_add(r->consume_ev, NULL) != 0) {
        snprintf(err, errlen, "cannot watch the consumer queue");
        return -1;
    }
    if (r->group && !group_caught_up(r->group)) {
        r->subscribe_held = 1;   /* router_subscribe, once the group's state is known */
        return 0;
    }
    return router_subscribe(r, err, errlen);
}

int router_subscribe(struct router *r, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t kerr;

    r->subscribe_held = 0;
    if (r->ntopics == 0) {
        /* every sink file was set aside (conf.h): the admin API shows why, a reload brings them */
        LOG(LOG_WARN, "no sink runs: the consumer subscribes to nothing until a reload adds one");
        return 0;
    }
    topics = rd_kafka_topic_partition_list_new((int)r->ntopics);
    for (size_t t = 0; t < r->ntopics; t++)
        rd_kafka_topic_partition_list_add(topics, r->topics[t].name, RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(r->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kerr) {
        snprintf(err, errlen, "subscribe: %s", rd_kafka_err2str(kerr));
        return -1;
    }
    /* Messages may already wait: the io event only fires on the next empty -> non-empty. */
    event_add(r->consume_more, &ZERO_TV);
    return 0;
}

int router_start(struct router *r, char *err, size_t errlen)
{
    struct timeval commit_every = ms_to_tv(r->conf->commit_interval_ms);
    char why[512];

    for (size_t k = 0; k < r->conf->nsinks; k++) {
        struct sink *sk = r->conf->sinks[k];
        char ferr[256];
        if (!(sk->state = calloc(1, sizeof *sk->state))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        sk->state->r = r;
        sk->state->index = k;
        histogram_init(&sk->state->stats.latency, metrics_latency_bounds, metrics_latency_nbounds);
        histogram_init(&sk->state->stats.batch_records, metrics_batch_bounds, metrics_batch_nbounds);
        if (sk->filter && !(sk->state->filter = filter_compile(sk->filter, ferr, sizeof ferr))) {
            snprintf(err, errlen, "sink %s: filter: %s", sk->name, ferr);
            return -1;
        }
        sk->eb = r->eb;
    }
    if (router_apply_carry(r) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(r->worker = worker_new(r->eb, err, errlen)))
        return -1;
    r->commit_timer = event_new(r->eb, -1, EV_PERSIST, on_commit_timer, r);
    r->cut_commit = evtimer_new(r->eb, on_cut_commit, r);
    r->phase_timer = evtimer_new(r->eb, on_phase_timeout, r);
    r->revoke_timer = evtimer_new(r->eb, on_revoke_timeout, r);
    r->tick = event_new(r->eb, -1, EV_PERSIST, on_tick, r);
    if (!r->commit_timer || !r->cut_commit || !r->phase_timer || !r->revoke_timer || !r->tick) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(r->dlq = dlq_new(r->eb, r->conf->kafka, r->conf->dead_letter_topic, err, errlen)))
        return -1;
    for (size_t k = 0; k < r->conf->nsinks; k++) {
        struct sink *sk = r->conf->sinks[k];
        if (r->dry_run) {
            /* start opens, creates, truncates or migrates the target (the file sink's file, a
             * positions table): a dry run touches none. prepare needs only what the
             * configuration check built, and nothing is ever written. */
            sink_log(sk, LOG_INFO, "dry run: not started; its batches are printed, reading %zu topic(s)",
                     sk->topics.n);
            continue;
        }
        why[0] = '\0';
        if (sk->ops->start(sk, why, sizeof why) != 0) {
            snprintf(err, errlen, "sink %s (%s): %s", sk->name, sk->type, why);
            r->sinks_started = (int)k;
            return -1;
        }
        sink_log(sk, LOG_INFO, "started, reading %zu topic(s)", sk->topics.n);
    }
    r->sinks_started = r->dry_run ? 0 : (int)r->conf->nsinks;
    evtimer_add(r->commit_timer, &commit_every);
    {
        struct timeval tick = ms_to_tv(LOOP_TICK_MS);
        evtimer_add(r->tick, &tick);
    }
    return router_consumer_new(r, err, errlen);
}

int router_exit_code(const struct router *r)
{
    return r->exit_code;
}

void router_free(struct router *r)
{
    if (!r)
        return;
    /* The worker first: a job on its thread may use an assignment job or the consumer. */
    worker_free(r->worker);
    r->worker = NULL;
    router_fetch_wake_free(r);
    while (r->deferred) {
        struct deferred *d = r->deferred;
        deferred_unlink(d);
        if (d->drop)
            d->drop(d->arg);
        free(d);
    }
    if (r->revoking) {
        rd_kafka_topic_partition_list_destroy(r->revoking);
        r->revoking = NULL;
    }
    while (r->assigning)
        assign_job_free(r->assigning);
    /* Sinks stop first, so no verdict arrives for a batch freed below. */
    for (int k = 0; k < r->sinks_started; k++) {
        struct sink *sk = r->conf->sinks[k];
        if (sk->ops->stop)
            sk->ops->stop(sk);
    }
    registry_free(r->registry);   /* its requests go without calling back */
    r->registry = NULL;
    for (size_t t = 0; t < r->ntopics; t++) {
        struct rtopic *rt = &r->topics[t];
        for (size_t p = 0; p < rt->nparts; p++)
            if (rt->parts[p])
                rpart_free(rt->parts[p]);
        free(rt->parts);
        free(rt->sinks);
        free(rt->name);
    }
    free(r->topics);
    /* The sinks have stopped and call no verdict now: what they still held goes, and with it
     * the Kafka messages that rd_kafka_destroy would otherwise wait for forever. */
    while (r->orphans) {
        struct router_batch *b = r->orphans;
        batch_orphan_unlink(b);
        batch_free(b);
    }
    if (r->rk) {
        rd_kafka_queue_io_event_enable(r->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(r->queue);
        rd_kafka_destroy(r->rk);
    }
    dlq_free(r->dlq, 2000);
    worker_free(r->worker);
    router_carry_free(r->leaving);
    for (size_t i = 0; i < r->njoins; i++)
        free(r->joins[i].topic);
    free(r->joins);
    if (r->consume_ev)
        event_free(r->consume_ev);
    if (r->consume_more)
        event_free(r->consume_more);
    if (r->fetch_wake)
        event_free(r->fetch_wake);
    if (r->commit_timer)
        event_free(r->commit_timer);
    if (r->cut_commit)
        event_free(r->cut_commit);
    if (r->phase_timer)
        event_free(r->phase_timer);
    if (r->revoke_timer)
        event_free(r->revoke_timer);
    if (r->tick)
        event_free(r->tick);
    if (r->wake_fds[0] >= 0) {
        close(r->wake_fds[0]);
        close(r->wake_fds[1]);
    }
    for (size_t k = 0; k < r->conf->nsinks; k++) {
        struct sink *sk = r->conf->sinks[k];
        if (sk->state) {
            tap_close(sk->state->tap, "the pipeline stopped (sluice is stopping or reloading its configuration; "
                                      "after a reload the sink may be gone): tap again");
            filter_free(sk->state->filter);
            free(sk->state);
            sk->state = NULL;
        }
    }
    free(r);
}
