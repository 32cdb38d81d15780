/* The router's side of the group's control topic (group_apply.c). */
#ifndef SLUICE_ROUTER_GROUP_APPLY_H
#define SLUICE_ROUTER_GROUP_APPLY_H

#include <librdkafka/rdkafka.h>

struct router;
struct rpart;
struct group_replay;

/** @brief The group paused (@p paused 1) or resumed sink @p sink (ignored when not one here). */
void router_group_pause(struct router *r, const char *sink, int paused);

/** @brief A new group-wide replay of sink @p sink: applied to the partitions assigned here. */
void router_group_replay(struct router *r, const char *sink, const struct group_replay *cmd);

/** @brief A partition just assigned (@p tp with its committed metadata): each group replay that
 * its commits do not mark as applied is applied to it. */
void rpart_group_replays(struct rpart *rp, const rd_kafka_topic_partition_t *tp);

#endif
