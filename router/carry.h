/* The router: the handover of sinks that stay across a reload (carry.c). */
#ifndef SLUICE_ROUTER_CARRY_H
#define SLUICE_ROUTER_CARRY_H

#include "engine.h"

void router_note_positions(struct router *r, const struct rpart *rp);
int router_apply_carry(struct router *r);
int64_t router_carried_next(struct router *r, size_t k, const char *topic, int32_t partition, int take);

#endif
