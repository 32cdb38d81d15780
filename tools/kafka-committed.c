/* kafka-committed: prints a consumer group's committed offset and the log end offset of every
 * partition of a topic, one "partition committed end" line each (-1: nothing committed), so
 * tests and operators can check what sluice committed.
 *   kafka-committed -b BROKERS -g GROUP -t TOPIC [-m] [-r]
 * -m adds the commit's metadata after the third field, to the end of the line ("-": none;
 * bytes outside printable ASCII as '?'). -r commits the committed offsets again without metadata, as a sluice before "start" left
 * them (for the upgrade test; the group must have no member then); the lines show the commit
 * as it was before. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

/* Polls until the group gave this consumer an assignment (30 s at most). */
static rd_kafka_resp_err_t await_assignment(rd_kafka_t *rk)
{
    for (int i = 0; i < 300; i++) {
        rd_kafka_topic_partition_list_t *assigned = NULL;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        int n;
        if (m)
            rd_kafka_message_destroy(m);
        if (rd_kafka_assignment(rk, &assigned))
            continue;
        n = assigned->cnt;
        rd_kafka_topic_partition_list_destroy(assigned);
        if (n > 0)
            return RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    return RD_KAFKA_RESP_ERR__TIMED_OUT;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *group = NULL, *topic = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t err;
    char errstr[512];
    int opt, rc = 1, show_metadata = 0, strip_metadata = 0;

    while ((opt = getopt(argc, argv, "b:g:t:mr")) != -1) {
        switch (opt) {
        case 'b': brokers = optarg; break;
        case 'g': group = optarg; break;
        case 't': topic = optarg; break;
        case 'm': show_metadata = 1; break;
        case 'r': strip_metadata = 1; break;
        default: break;
        }
    }
    if (!brokers || !group || !topic) {
        fprintf(stderr, "usage: kafka-committed -b BROKERS -g GROUP -t TOPIC [-m] [-r]\n");
        return 2;
    }
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        /* with -r it joins the group: should its leaving go unnoticed, the next member waits less */
        rd_kafka_conf_set(conf, "session.timeout.ms", "6000", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka-committed: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr))) {
        fprintf(stderr, "kafka-committed: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "kafka-committed: metadata of %s: %s\n", topic,
                rd_kafka_err2str(err ? err : md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(list, topic, md->topics[0].partitions[i].id);
    if ((err = rd_kafka_committed(rk, list, 10000))) {
        fprintf(stderr, "kafka-committed: %s\n", rd_kafka_err2str(err));
        goto out;
    }
    if (strip_metadata) {
        rd_kafka_topic_partition_list_t *again = rd_kafka_topic_partition_list_new(list->cnt);
        rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
        /* A commit must come from a member of the group: join it first. */
        err = rd_kafka_subscribe(rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err || (err = await_assignment(rk))) {
            fprintf(stderr, "kafka-committed: joining the group: %s\n", rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(again);
            goto out;
        }
        for (int i = 0; i < list->cnt; i++)
            if (list->elems[i].offset >= 0)
                rd_kafka_topic_partition_list_add(again, topic, list->elems[i].partition)->offset = list->elems[i].offset;
        err = again->cnt ? rd_kafka_commit(rk, again, 0) : RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_topic_partition_list_destroy(again);
        if (err) {
            fprintf(stderr, "kafka-committed: commit without metadata: %s\n", rd_kafka_err2str(err));
            goto out;
        }
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t low = -1, high = -1;
        rd_kafka_query_watermark_offsets(rk, topic, tp->partition, &low, &high, 10000);
        printf("%" PRId32 " %" PRId64 " %" PRId64, tp->partition, tp->offset < 0 ? (int64_t)-1 : tp->offset, high);
        if (show_metadata) {
            putchar(' ');
            if (!tp->metadata_size)
                putchar('-');
            for (size_t k = 0; k < tp->metadata_size; k++) {
                unsigned char c = ((const unsigned char *)tp->metadata)[k];
                putchar(c >= ' ' && c < 127 ? c : '?');
            }
        }
        putchar('\n');
    }
    rc = 0;
out:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (strip_metadata)
        rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
