/* What the command-line tools that talk to Kafka themselves (`sluice dlq`, `sluice ctl`) share:
 * a reader of whole topics (assigned partitions, no group) and a producer, both configured from
 * the main file's kafka section. They block: no loop runs in those tools. */
#ifndef SLUICE_ROUTER_KAFKA_CLI_H
#define SLUICE_ROUTER_KAFKA_CLI_H

#include <stddef.h>
#include <librdkafka/rdkafka.h>

struct conf;

#define KAFKA_CLI_TIMEOUT_MS 30000

/** @brief A consumer for reading topics from their start, without a group's commits. */
rd_kafka_t *kafka_cli_reader_new(const struct conf *conf, char *err, size_t errlen);

/**
 * @brief Every record of @p topic, from each partition's start to its end as of now, to @p fn.
 * A topic that does not exist is empty. @return 0, or -1 with @p err.
 */
int kafka_cli_read_topic(rd_kafka_t *rk, const char *topic, void (*fn)(void *arg, const rd_kafka_message_t *m),
                         void *arg, char *err, size_t errlen);

/** @brief An idempotent producer; @p on_delivery gets @p opaque as its opaque. */
rd_kafka_t *kafka_cli_producer_new(const struct conf *conf,
                                   void (*on_delivery)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                                   void *opaque, char *err, size_t errlen);

#endif
