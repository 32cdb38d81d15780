/* The router: one record to the sinks of its topic (route.c). */
#ifndef SLUICE_ROUTER_ROUTE_H
#define SLUICE_ROUTER_ROUTE_H

#include "engine.h"

void router_route(struct router *r, rd_kafka_message_t *rkm);

#endif
