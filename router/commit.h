/* The router: commits, with the cuts of the batches in flight in their metadata (commit.c). */
#ifndef SLUICE_ROUTER_COMMIT_H
#define SLUICE_ROUTER_COMMIT_H

#include "engine.h"

void router_commit(struct router *r, const rd_kafka_topic_partition_list_t *only, int held_only);
void on_commit_result(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
                      void *opaque);
void on_commit_timer(evutil_socket_t fd, short what, void *arg);
void on_cut_commit(evutil_socket_t fd, short what, void *arg);

#endif
