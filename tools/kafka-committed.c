/* kafka-committed: prints a consumer group's committed offset and the log end offset of every
 * partition of a topic, one "partition committed end" line each (-1: nothing committed), so
 * tests and operators can check what sluice committed.
 *   kafka-committed -b BROKERS -g GROUP -t TOPIC */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

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
    int opt, rc = 1;

    while ((opt = getopt(argc, argv, "b:g:t:")) != -1) {
        switch (opt) {
        case 'b': brokers = optarg; break;
        case 'g': group = optarg; break;
        case 't': topic = optarg; break;
        default: break;
        }
    }
    if (!brokers || !group || !topic) {
        fprintf(stderr, "usage: kafka-committed -b BROKERS -g GROUP -t TOPIC\n");
        return 2;
    }
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
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
    for (int i = 0; i < list->cnt; i++) {
        int64_t low = -1, high = -1;
        rd_kafka_query_watermark_offsets(rk, topic, list->elems[i].partition, &low, &high, 10000);
        printf("%" PRId32 " %" PRId64 " %" PRId64 "\n", list->elems[i].partition,
               list->elems[i].offset < 0 ? (int64_t)-1 : list->elems[i].offset, high);
    }
    rc = 0;
out:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}
