/* The router: assignment and revocation of partitions (rebalance.c). */
#ifndef SLUICE_ROUTER_REBALANCE_H
#define SLUICE_ROUTER_REBALANCE_H

#include "engine.h"

void rpart_free(struct rpart *rp);
void assign_job_free(struct assign_job *job);
size_t router_revoking_in_flight(struct router *r);
void router_revoke_finish(struct router *r);
void on_revoke_timeout(evutil_socket_t fd, short what, void *arg);
void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions,
                  void *opaque);

#endif
