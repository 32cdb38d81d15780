/* Kafka for the command-line tools (kafka_cli.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "conf.h"
#include "conf_kafka.h"
#include "kafka_cli.h"

/* A consumer for reading topics from their start, without a group's commits. */
rd_kafka_t *kafka_cli_reader_new(const struct conf *conf, char *err, size_t errlen)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char group[64];

    if (conf_kafka_apply_standalone(kc, conf->kafka, 0, err, errlen) != 0) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    snprintf(group, sizeof group, "sluice-cli-%ld", (long)getpid());   /* never joined: assign only */
    if (rd_kafka_conf_set(kc, "group.id", group, err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "enable.auto.commit", "false", err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "enable.partition.eof", "true", err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "log_level", "3", err, errlen) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, errlen);
    if (!rk)
        rd_kafka_conf_destroy(kc);
    return rk;
}

int kafka_cli_read_topic(rd_kafka_t *rk, const char *topic, void (*fn)(void *arg, const rd_kafka_message_t *m),
                         void *arg, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_topic_partition_list_t *assign = NULL;
    int64_t *ends = NULL;
    size_t left = 0;
    int rc = -1, nparts = 0;
    rd_kafka_resp_err_t kerr;

    if (!rkt) {
        snprintf(err, errlen, "%s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    kerr = rd_kafka_metadata(rk, 0, rkt, &md, KAFKA_CLI_TIMEOUT_MS);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
        snprintf(err, errlen, "metadata of %s: %s", topic, rd_kafka_err2str(kerr));
        goto out;
    }
    if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rc = 0;   /* nothing was ever dead-lettered (or re-driven) */
        goto out;
    }
    nparts = md->topics[0].partition_cnt;
    assign = rd_kafka_topic_partition_list_new(nparts);
    if (!(ends = calloc((size_t)nparts + 1, sizeof *ends)))
        abort();
    for (int p = 0; p < nparts; p++) {
        int32_t id = md->topics[0].partitions[p].id;
        int64_t low, high;
        kerr = rd_kafka_query_watermark_offsets(rk, topic, id, &low, &high, KAFKA_CLI_TIMEOUT_MS);
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "watermarks of %s [%" PRId32 "]: %s", topic, id, rd_kafka_err2str(kerr));
            goto out;
        }
        ends[p] = high;
        if (high > low) {
            rd_kafka_topic_partition_list_add(assign, topic, id)->offset = low;
            left++;
        }
    }
    if (left == 0) {
        rc = 0;
        goto out;
    }
    if ((kerr = rd_kafka_assign(rk, assign)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "assign %s: %s", topic, rd_kafka_err2str(kerr));
        goto out;
    }
    while (left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, KAFKA_CLI_TIMEOUT_MS);   /* banned-ok: a command-line tool, no loop */
        if (!m) {
            snprintf(err, errlen, "reading %s: nothing came for %d s with %zu partition(s) unfinished", topic,
                     KAFKA_CLI_TIMEOUT_MS / 1000, left);
            goto out;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* The end, also when the last offsets hold nothing to deliver (transaction markers,
             * compacted away): waiting for the high watermark's record would wait forever. */
            for (int p = 0; p < nparts; p++)
                if (md->topics[0].partitions[p].id == m->partition && ends[p] >= 0) {
                    ends[p] = -1;
                    left--;
                }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            snprintf(err, errlen, "reading %s: %s", topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        }
        for (int p = 0; p < nparts; p++)
            if (md->topics[0].partitions[p].id == m->partition && m->offset + 1 >= ends[p] && ends[p] >= 0) {
                ends[p] = -1;   /* this partition is read to its end */
                left--;
            }
        if (strcmp(rd_kafka_topic_name(m->rkt), topic) == 0)
            fn(arg, m);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(rk, NULL);
    rc = 0;
out:
    free(ends);
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

rd_kafka_t *kafka_cli_producer_new(const struct conf *conf,
                                   void (*on_delivery)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                                   void *opaque, char *err, size_t errlen)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    const char *name;
    json_t *value;
    char ignored[256];

    json_object_foreach(conf->kafka, name, value)   /* the connection's properties; consumer-only ones are refused */
        rd_kafka_conf_set(kc, name, json_string_value(value), ignored, sizeof ignored);
    rd_kafka_conf_set(kc, "enable.idempotence", "true", ignored, sizeof ignored);
    rd_kafka_conf_set(kc, "log_level", "3", ignored, sizeof ignored);
    rd_kafka_conf_set_opaque(kc, opaque);
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, errlen);
    if (!rk)
        rd_kafka_conf_destroy(kc);
    return rk;
}
