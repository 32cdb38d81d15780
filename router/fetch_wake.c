/* The router: waking librdkafka's fetcher when its queue ran dry behind a full prefetch.
 *
 * librdkafka 2.0.2 stops fetching every partition of the consumer once its queue holds
 * queued.max.messages.kbytes (or queued.min.messages), and decides again only when its broker
 * thread next wakes: on a fetch response, on an operation for it, or after 1000 ms (hard-coded;
 * fetch.error.backoff.ms plays no part, librdkafka 2.2 made it fetch.queue.backoff.ms; see its
 * issue 2879). With a prefetch smaller than a second of draining, the router empties the queue
 * long before that and then idles: ~0.7 s per refill, the drain rate halved (bench-memory).
 *
 * So when the queue stays empty for FETCH_WAKE_MS after the router took at least half the
 * prefetch since it was last empty (the queue was full, so the fetcher may sleep) while a
 * partition has records left at the broker, the router sends the fetcher an operation: a seek
 * of that partition to exactly where the router is (fetched_end). Nothing of it is waiting in the
 * queue (empty), so nothing is dropped or skipped; a fetch of it in flight (at most
 * max.partition.fetch.bytes) is asked again. One partition per wake-up, the next one
 * FETCH_WAKE_MS later while the queue stays empty (another broker may sleep too); a partition
 * is never sought twice at the same position, so a slow link cannot have its fetches discarded
 * over and over.
 *
 * The seek comes late: the queue already ran dry, and then the fetch still takes its round trip
 * (bench-webhook: the consumer queue stood empty for 30-50% of a drain, ~130-400 times). So the
 * fetcher is also nudged before that, without discarding anything: whenever the router has taken
 * a quarter of the prefetch since the last nudge (the queue has room again, if it was full), the
 * worker thread asks the leader of the partition just taken for its watermarks (ListOffsets). The
 * request is an operation on that broker's thread, which then decides again what to fetch and
 * fetches if the queue is below its limits: the next response is on its way while the router
 * takes the rest of the queue. One nudge at a time; a spurious one costs a small request.
 *
 * A partition resumed in librdkafka (backpressure that outlasted the router's hold, see flow.c)
 * waits for the same wake-up: resuming sets a flag, and a broker whose partitions were all
 * paused fetches nothing and sleeps up to the 1000 ms. Draining a backlog after a target's pause
 * of a second or more, the sink got what it held at once, then nothing for 0.3-1.1 s
 * (test_isolation's bursts, traced). So each resume is followed by a nudge of its partition's
 * leader: the partitions resumed meanwhile go together in one ListOffsets request per leader
 * (offsets_for_times for "latest"), their answers unused. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "fetch_wake.h"
#include "lib/log.h"
#include "lib/worker.h"

#define FETCH_WAKE_MS 5
#define NUDGE_TIMEOUT_MS 500   /* the worker's wait for the answer; the nudge is the request itself */

static const struct timeval FETCH_WAKE_TV = { 0, FETCH_WAKE_MS * 1000 };

static uint64_t consumer_conf_number(rd_kafka_t *rk, const char *name, uint64_t fallback)
{
    char buf[64];
    size_t size = sizeof buf;
    char *end;
    unsigned long long v;

    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &size) != RD_KAFKA_CONF_OK)
        return fallback;
    v = strtoull(buf, &end, 10);
    return end == buf ? fallback : (uint64_t)v;
}

/* Seeks one partition that may wait for a sleeping fetcher; 1 when it did. */
static int router_fetch_wake_one(struct router *r)
{
    size_t total = 0;

    for (size_t t = 0; t < r->ntopics; t++)
        total += r->topics[t].nparts;
    for (size_t i = 0; i < total; i++) {
        size_t slot = (r->wake_cursor + i) % total, t = 0;
        int64_t low = -1, high = -1;
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_error_t *kerr;
        struct rpart *rp;

        while (slot >= r->topics[t].nparts)
            slot -= r->topics[t++].nparts;
        rp = r->topics[t].parts[slot];
        if (!rp || rp->state != RPART_ACTIVE || rp->paused || rp->kafka_paused || rp->wait_head || !rp->took ||
            rp->wake_sought == rp->fetched_end)
            continue;
        /* the high watermark of its last fetch response: no broker round trip */
        if (rd_kafka_get_watermark_offsets(r->rk, rp->rt->name, rp->partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            high <= rp->fetched_end)
            continue;
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, rp->rt->name, rp->partition)->offset = rp->fetched_end;
        kerr = rd_kafka_seek_partitions(r->rk, list, 0);
        rd_kafka_topic_partition_list_destroy(list);
        if (kerr) {
            LOG(LOG_DEBUG, "waking the fetcher: seek %s [%" PRId32 "] to %" PRId64 ": %s", rp->rt->name,
                rp->partition, rp->fetched_end, rd_kafka_error_string(kerr));
            rd_kafka_error_destroy(kerr);
        }
        rp->wake_sought = rp->fetched_end;
        r->wake_cursor = (r->wake_cursor + i + 1) % total;
        return 1;
    }
    return 0;
}

static void on_fetch_wake(evutil_socket_t fd, short what, void *arg)
{
    struct router *r = arg;

    (void)fd;
    (void)what;
    /* Records came, or wait to be taken: the fetcher is awake (the next empty queue arms again). */
    if (r->taken_since_empty || r->held_since_ms || r->phase != PHASE_RUNNING || !r->rk ||
        rd_kafka_queue_length(r->queue) > 0)
        return;
    if (router_fetch_wake_one(r))
        evtimer_add(r->fetch_wake, &FETCH_WAKE_TV);
}

int router_fetch_wake_init(struct router *r)
{
    r->prefetch_bytes = consumer_conf_number(r->rk, "queued.max.messages.kbytes", 65536) * 1024;
    r->prefetch_records = consumer_conf_number(r->rk, "queued.min.messages", 100000);
    r->fetch_wake = evtimer_new(r->eb, on_fetch_wake, r);
    return r->fetch_wake ? 0 : -1;
}

/* On the worker thread: the request wakes the broker thread; its answer is not needed. */
static void on_nudge_run(void *arg)
{
    struct router *r = arg;
    int64_t low, high;

    if (r->nudge_list)
        (void)rd_kafka_offsets_for_times(r->rk, r->nudge_list, NUDGE_TIMEOUT_MS);
    else
        (void)rd_kafka_query_watermark_offsets(r->rk, r->nudge_topic, r->nudge_partition, &low, &high,
                                               NUDGE_TIMEOUT_MS);
}

static void nudge_resumed(struct router *r);

static void on_nudge_done(void *arg)
{
    struct router *r = arg;

    r->nudging = 0;
    if (r->nudge_list) {
        rd_kafka_topic_partition_list_destroy(r->nudge_list);
        r->nudge_list = NULL;
    }
    if (r->resumed && r->phase == PHASE_RUNNING)
        nudge_resumed(r);
}

/* Hands the partitions resumed so far to the worker (one nudge at a time). */
static void nudge_resumed(struct router *r)
{
    r->nudge_list = r->resumed;
    r->resumed = NULL;
    r->nudging = 1;
    if (worker_submit(r->worker, on_nudge_run, on_nudge_done, r) != 0) {
        r->nudging = 0;
        rd_kafka_topic_partition_list_destroy(r->nudge_list);
        r->nudge_list = NULL;
    }
}

void router_fetch_wake_resumed(struct router *r, const char *topic, int32_t partition)
{
    if (!r->worker || !r->rk || r->phase != PHASE_RUNNING)
        return;
    if (!r->resumed && !(r->resumed = rd_kafka_topic_partition_list_new(8)))
        return;
    if (!rd_kafka_topic_partition_list_find(r->resumed, topic, partition))
        rd_kafka_topic_partition_list_add(r->resumed, topic, partition)->offset = -1;   /* latest */
    if (!r->nudging)
        nudge_resumed(r);
}

void router_fetch_wake_free(struct router *r)
{
    if (r->nudge_list)
        rd_kafka_topic_partition_list_destroy(r->nudge_list);
    if (r->resumed)
        rd_kafka_topic_partition_list_destroy(r->resumed);
    r->nudge_list = r->resumed = NULL;
}

static void router_fetch_nudge(struct router *r, const rd_kafka_message_t *rkm)
{
    const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : NULL;

    r->nudge_bytes = 0;
    r->nudge_records = 0;
    if (r->nudging || !r->worker || r->phase != PHASE_RUNNING || !topic || strlen(topic) >= sizeof r->nudge_topic)
        return;
    memcpy(r->nudge_topic, topic, strlen(topic) + 1);
    r->nudge_partition = rkm->partition;
    r->nudging = 1;
    if (worker_submit(r->worker, on_nudge_run, on_nudge_done, r) != 0)
        r->nudging = 0;
}

void router_fetch_wake_took(struct router *r, const rd_kafka_message_t *rkm)
{
    uint64_t bytes = rkm->len + (rkm->key ? rkm->key_len : 0);

    r->taken_since_empty++;
    r->taken_bytes += bytes;
    r->nudge_records++;
    r->nudge_bytes += bytes;
    if (r->nudge_bytes >= r->prefetch_bytes / 4 || r->nudge_records >= r->prefetch_records / 4)
        router_fetch_nudge(r, rkm);
}

void router_fetch_wake_empty(struct router *r)
{
    int was_full = r->taken_bytes >= r->prefetch_bytes / 2 || r->taken_since_empty >= r->prefetch_records / 2;

    r->taken_bytes = 0;
    r->taken_since_empty = 0;
    if (was_full && r->fetch_wake && r->phase == PHASE_RUNNING && !evtimer_pending(r->fetch_wake, NULL))
        evtimer_add(r->fetch_wake, &FETCH_WAKE_TV);
}
