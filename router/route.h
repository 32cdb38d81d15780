/* The router: one record to the sinks of its topic (route.c). */
#ifndef SLUICE_ROUTER_ROUTE_H
#define SLUICE_ROUTER_ROUTE_H

#include "engine.h"

void router_route(struct router *r, rd_kafka_message_t *rkm);

/* registry_update_fn: a schema arrived (or is known missing): the records waiting for one go on. */
void router_on_registry_update(void *arg);

#endif
