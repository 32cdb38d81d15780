/* The router: backpressure, the hold, park and unpark (flow.c). */
#ifndef SLUICE_ROUTER_FLOW_H
#define SLUICE_ROUTER_FLOW_H

#include "engine.h"

void router_update_hold(struct router *r);
void rpart_kafka_resume(struct rpart *rp);
void rpart_check_backpressure(struct rpart *rp);
void router_recheck_paused(struct router *r);
/* Whether the sink holds less than half of what it may (its limits and its share of the budget):
 * partitions it paused may resume. */
int sink_below_half(const struct sink *sk);
void spart_park(struct spart *sp, void *arg);
void spart_unpark(struct spart *sp, void *arg);
void sink_park(struct sink *sk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void router_check_parking(struct router *r);

#endif
