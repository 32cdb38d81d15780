/* The main file's "kafka" section: librdkafka properties, each handed to librdkafka itself to
 * check (its own words in the message, a "did you mean" from its property table), the ones sluice
 * manages refused. */
#ifndef SLUICE_ROUTER_CONF_KAFKA_H
#define SLUICE_ROUTER_CONF_KAFKA_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>

struct conf;
struct conf_ctx;
struct cfg_doc;

/** @brief Check conf->kafka (as read from @p doc) property by property; problems go to @p ctx. */
void conf_kafka_load(struct conf_ctx *ctx, const struct cfg_doc *doc, struct conf *conf);

/** @brief 1 when librdkafka property @p name holds a credential (its value is never shown). */
int conf_kafka_secret(const char *name);

/** @brief 1 when librdkafka property @p name is for consumers only (a producer is not given it). */
int conf_kafka_consumer_only(const char *name);

/** @brief The main file's kafka section (@p kafka) into @p kc for a client of its own that is no
 * member of the group: group.id and enable.auto.* are left out, and for a @p producer the
 * consumer-only properties. 0, or -1 with librdkafka's reason in @p err. */
int conf_kafka_apply_standalone(rd_kafka_conf_t *kc, const json_t *kafka, int producer, char *err, size_t errlen);

#endif
