/* The admin API's GET /metrics (also served by the health listener), in Prometheus' text format. */
#ifndef SLUICE_ADMIN_METRICS_H
#define SLUICE_ADMIN_METRICS_H

#include <stdio.h>

#include <jansson.h>

#include "admin.h"
#include "http_server.h"

struct router;

/* What /metrics reads; everything but the router may be NULL (not configured or not served). */
struct admin_metrics_sources {
    struct router *router;
    const struct admin_config_view *config;   /* sink files set aside, reloads */
    json_t *group;                            /* GET /group's view of the control topic (borrowed) */
    const struct http_server *admin_srv, *health_srv;
};

/** @brief Writes every family to @p out. */
void admin_metrics_render(const struct admin_metrics_sources *src, FILE *out);

#endif
