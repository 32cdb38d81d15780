#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_kafka.h"
#include "dlq.h"
#include "lib/log.h"

/* A letter's copy of everything it sends, owned until Kafka acknowledges it, so that a retry
 * can produce it again without the original record. */
struct dlq_job {
    struct dlq *dlq;
    char *sink, *reason, *topic;
    int32_t partition;
    int64_t offset, timestamp_ms;
    void *key, *value;
    size_t key_len, value_len;
    int tombstone;
    int64_t lost_end;
    char stage[16];
    char *rule;                    /* NULL: none */
    int has_schema_id;
    uint32_t schema_id;
    size_t cut_from;               /* original value size when the value was cut; 0: whole */
    unsigned attempts;
    dlq_done_fn done;
    void *arg;
    struct event *retry_timer;
    struct dlq_job *prev, *next;   /* every job not yet acknowledged, to free them at close */
};

struct dlq {
    rd_kafka_t *rk;
    char *topic;
    struct event_base *eb;
    int wake_fds[2];
    struct event *wake_ev;
    size_t pending;
    uint64_t stored;               /* letters Kafka acknowledged */
    uint64_t produce_errors;       /* produce calls refused and delivery reports with an error */
    struct dlq_job *jobs;
    int closing;                   /* in dlq_free: callbacks no longer run */
};

static int dlq_produce(struct dlq_job *job);

/* What is kept of a value too large for the dead-letter topic: enough to recognise the record,
 * which stays whole at its source offset (the headers say where). */
#define DLQ_CUT_VALUE_BYTES 65536

/* A letter Kafka refuses as too large would be retried forever and hold the sink's commits:
 * send the start of its value instead, marked with sluice.truncated. Returns 0 when cut. */
static int dlq_job_cut(struct dlq_job *job)
{
    if (job->cut_from || job->tombstone || job->value_len <= DLQ_CUT_VALUE_BYTES)
        return -1;
    LOG(LOG_WARN, "dead-letter topic %s: the letter of %s [%" PRId32 "] @%" PRId64
        " (%zu bytes) is too large: sending its first %d bytes, marked sluice.truncated",
        job->dlq->topic, job->topic, job->partition, job->offset, job->value_len, DLQ_CUT_VALUE_BYTES);
    job->cut_from = job->value_len;
    job->value_len = DLQ_CUT_VALUE_BYTES;
    return 0;
}

static void dlq_job_free(struct dlq_job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        job->dlq->jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    if (job->retry_timer)
        event_free(job->retry_timer);
    free(job->sink);
    free(job->rule);
    free(job->reason);
    free(job->topic);
    free(job->key);
    free(job->value);
    free(job);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    struct dlq_job *job = arg;
    (void)fd;
    (void)what;
    if (dlq_produce(job) != 0) {
        struct timeval tv = { 1, 0 };
        evtimer_add(job->retry_timer, &tv);
    }
}

/* Delivery reports come here from rd_kafka_poll, on the loop. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct dlq_job *job = rkm->_private;
    struct dlq *dlq = job->dlq;
    (void)rk;
    (void)opaque;

    if (dlq->closing)
        return;
    if ((rkm->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || rkm->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) &&
        dlq_job_cut(job) == 0 && dlq_produce(job) == 0)
        return;
    if (rkm->err) {
        /* The letter must not be lost: the source offset stays unfinished until it lands. */
        struct timeval tv = { 1, 0 };
        dlq->produce_errors++;
        job->attempts++;
        if (job->attempts == 1 || job->attempts % 30 == 0)
            LOG(LOG_ERROR, "dead-letter topic %s: cannot store the letter of %s [%" PRId32 "] @%" PRId64 ": %s; retrying",
                dlq->topic, job->topic, job->partition, job->offset, rd_kafka_err2str(rkm->err));
        if (!job->retry_timer)
            job->retry_timer = evtimer_new(dlq->eb, on_retry_timer, job);
        evtimer_add(job->retry_timer, &tv);
        return;
    }
    dlq->pending--;
    dlq->stored++;
    job->done(job->arg, 1, NULL);
    dlq_job_free(job);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct dlq *dlq = arg;
    char drain[64];
    (void)what;
    while (read(fd, drain, sizeof drain) > 0)
        ;
    while (rd_kafka_poll(dlq->rk, 0) > 0)
        ;
}

static int dlq_produce(struct dlq_job *job)
{
    char partition[16], offset[24], timestamp[24], lost_end[24], cut_from[24], schema_id[24];
    rd_kafka_resp_err_t err;
    rd_kafka_headers_t *headers = rd_kafka_headers_new(8);

    snprintf(partition, sizeof partition, "%" PRId32, job->partition);
    snprintf(offset, sizeof offset, "%" PRId64, job->offset);
    snprintf(timestamp, sizeof timestamp, "%" PRId64, job->timestamp_ms);
    snprintf(lost_end, sizeof lost_end, "%" PRId64, job->lost_end);
    if (job->sink)
        rd_kafka_header_add(headers, "sluice.sink", -1, job->sink, -1);
    rd_kafka_header_add(headers, "sluice.stage", -1, job->stage, -1);
    rd_kafka_header_add(headers, "sluice.reason", -1, job->reason, -1);
    if (job->rule) {
        /* Confluent's rule headers too, so its tooling reads the letter (DlqAction's). */
        rd_kafka_header_add(headers, "sluice.rule", -1, job->rule, -1);
        rd_kafka_header_add(headers, "__rule.name", -1, job->rule, -1);
        rd_kafka_header_add(headers, "__rule.mode", -1, "READ", -1);
    }
    if (job->has_schema_id) {
        snprintf(schema_id, sizeof schema_id, "%" PRIu32, job->schema_id);
        rd_kafka_header_add(headers, "sluice.schema.id", -1, schema_id, -1);
    }
    rd_kafka_header_add(headers, "sluice.topic", -1, job->topic, -1);
    rd_kafka_header_add(headers, "sluice.partition", -1, partition, -1);
    rd_kafka_header_add(headers, "sluice.offset", -1, offset, -1);
    rd_kafka_header_add(headers, "sluice.timestamp", -1, timestamp, -1);
    if (job->lost_end > 0)
        rd_kafka_header_add(headers, "sluice.lost.end", -1, lost_end, -1);
    if (job->cut_from) {
        snprintf(cut_from, sizeof cut_from, "%zu", job->cut_from);
        rd_kafka_header_add(headers, "sluice.truncated", -1, cut_from, -1);
    }
    err = rd_kafka_producev(job->dlq->rk,
        RD_KAFKA_V_TOPIC(job->dlq->topic),
        RD_KAFKA_V_KEY(job->key, job->key_len),
        RD_KAFKA_V_VALUE((job->tombstone ? NULL : job->value), (job->tombstone ? 0 : job->value_len)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_TIMESTAMP(job->timestamp_ms > 0 ? job->timestamp_ms : 0),
        RD_KAFKA_V_HEADERS(headers),   /* owned by the message once produced */
        RD_KAFKA_V_OPAQUE(job),
        RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(headers);
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && dlq_job_cut(job) == 0)
            return dlq_produce(job);
        job->dlq->produce_errors++;
        LOG(LOG_WARN, "dead-letter topic %s: produce: %s", job->dlq->topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static void *memdup_or_null(const void *p, size_t len)
{
    void *copy;
    if (!p)
        return NULL;
    copy = malloc(len ? len : 1);
    if (copy)
        memcpy(copy, p, len);
    return copy;
}

int dlq_send(struct dlq *dlq, const struct dlq_letter *letter, dlq_done_fn done, void *arg)
{
    struct dlq_job *job = calloc(1, sizeof *job);

    if (!job)
        return -1;
    job->dlq = dlq;
    job->sink = letter->sink ? strdup(letter->sink) : NULL;
    snprintf(job->stage, sizeof job->stage, "%s", letter->stage ? letter->stage : "sink");
    job->rule = letter->rule ? strdup(letter->rule) : NULL;
    job->has_schema_id = letter->has_schema_id;
    job->schema_id = letter->schema_id;
    job->reason = strdup(letter->reason);
    job->topic = strdup(letter->topic);
    job->partition = letter->partition;
    job->offset = letter->offset;
    job->timestamp_ms = letter->timestamp_ms;
    job->key = memdup_or_null(letter->key, letter->key_len);
    job->key_len = letter->key ? letter->key_len : 0;
    job->value = memdup_or_null(letter->value, letter->value_len);
    job->value_len = letter->value ? letter->value_len : 0;
    job->tombstone = letter->value == NULL;
    job->lost_end = letter->lost_end;
    job->done = done;
    job->arg = arg;
    if ((letter->sink && !job->sink) || (letter->rule && !job->rule) || !job->reason || !job->topic || (letter->key && !job->key) || (letter->value && !job->value)) {
        dlq_job_free(job);
        return -1;
    }
    job->next = dlq->jobs;
    if (dlq->jobs)
        dlq->jobs->prev = job;
    dlq->jobs = job;
    dlq->pending++;
    if (dlq_produce(job) != 0) {
        struct timeval tv = { 1, 0 };
        job->retry_timer = evtimer_new(dlq->eb, on_retry_timer, job);
        evtimer_add(job->retry_timer, &tv);
    }
    return 0;
}

size_t dlq_pending(const struct dlq *dlq)
{
    return dlq->pending;
}

void dlq_counts(const struct dlq *dlq, uint64_t *stored, uint64_t *produce_errors)
{
    *stored = dlq->stored;
    *produce_errors = dlq->produce_errors;
}

struct dlq *dlq_new(struct event_base *eb, const json_t *kafka, const char *topic, char *err, size_t errlen)
{
    struct dlq *dlq = calloc(1, sizeof *dlq);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *name;
    json_t *value;
    char errstr[512];

    if (!dlq) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    dlq->eb = eb;
    dlq->wake_fds[0] = dlq->wake_fds[1] = -1;
    /* The consumer's connection properties (brokers, security, client id) apply to the
     * producer too; consumer-only ones are left out. */
    json_object_foreach((json_t *)kafka, name, value) {
        if (conf_kafka_consumer_only(name))
            continue;
        if (rd_kafka_conf_set(conf, name, json_string_value(value), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            continue;
    }
    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof errstr);
    /* One request in flight: a failed one is retried before any later one goes out. The
     * idempotent producer otherwise takes a later success as proof that earlier sequences were
     * stored, which only a broker checking sequences makes true (librdkafka's mock cluster does
     * not: letters were lost there). Dead letters are few; their latency matters little. */
    if (!json_object_get(kafka, "max.in.flight.requests.per.connection") && !json_object_get(kafka, "max.in.flight"))
        rd_kafka_conf_set(conf, "max.in.flight.requests.per.connection", "1", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, log_kafka);
    dlq->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!dlq->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "dead-letter producer: %s", errstr);
        goto fail;
    }
    if (!(dlq->topic = strdup(topic)) || pipe2(dlq->wake_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "dead-letter producer: out of resources");
        goto fail;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(dlq->rk);
    rd_kafka_queue_io_event_enable(q, dlq->wake_fds[1], "1", 1);
    rd_kafka_queue_destroy(q);
    dlq->wake_ev = event_new(eb, dlq->wake_fds[0], EV_READ | EV_PERSIST, on_wake, dlq);
    if (!dlq->wake_ev || event_add(dlq->wake_ev, NULL) != 0) {
        snprintf(err, errlen, "dead-letter producer: cannot watch its queue");
        goto fail;
    }
    return dlq;
fail:
    dlq_free(dlq, 0);
    return NULL;
}

void dlq_free(struct dlq *dlq, int timeout_ms)
{
    if (!dlq)
        return;
    if (dlq->rk) {
        rd_kafka_queue_t *q = rd_kafka_queue_get_main(dlq->rk);
        rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
        rd_kafka_queue_destroy(q);
        /* Shutdown only: the loop has stopped routing, waiting here delays nothing else. */
        dlq->closing = 1;
        rd_kafka_flush(dlq->rk, timeout_ms);
        rd_kafka_destroy(dlq->rk);
    }
    while (dlq->jobs)
        dlq_job_free(dlq->jobs);
    if (dlq->wake_ev)
        event_free(dlq->wake_ev);
    if (dlq->wake_fds[0] >= 0) {
        close(dlq->wake_fds[0]);
        close(dlq->wake_fds[1]);
    }
    free(dlq->topic);
    free(dlq);
}
