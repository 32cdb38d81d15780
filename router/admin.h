/* The admin API: an HTTP server on the event loop for operators and their monitoring.
 *   GET  /healthz                 alive (no token needed)
 *   GET  /readyz                  consumer joined and every sink able to deliver (or paused)
 *   GET  /metrics                 Prometheus text format
 *   GET  /sinks                   JSON: every sink's type, topics, state, positions, last error
 *   GET  /sinks/NAME/debug        JSON: the sink's last deliveries
 *   POST /sinks/NAME/pause|resume
 *   POST /sinks/NAME/replay       {"offset": N} or {"timestamp_ms": T}, optional "topic", "partition"
 *   POST /reload                  re-read the configuration (as SIGHUP does)
 *   GET  /                        a status page for people
 * Everything but /healthz needs "Authorization: Bearer TOKEN" when admin.token is set (the status
 * page also takes ?token=, which its script then sends as that header). It runs on http_server.h,
 * which bounds what each client can make it hold (README, Security).
 *
 * The health listener (health.listen) is a second server on the same loop for probes and scrapes:
 * GET /healthz, /readyz and /metrics only, never a token, 404 for everything else. It exists so a
 * kubelet or Prometheus can reach those three on the pod's address while the admin API stays on
 * 127.0.0.1 behind its token. */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "http_server.h"

struct router;
struct admin;

/* A sink file the configuration set aside (conf.h's conf_invalid_sink, seen from here). */
struct admin_invalid_sink {
    const char *name;
    const char *file;
    char *const *messages;
    size_t nmessages;
};

/* What a reload came to: applied (every file valid), partial (applied with sink files set
 * aside), refused (the main file broken: nothing changed), failed (valid, but the new pipeline
 * could not start: the previous one runs again). */
enum admin_reload_result { ADMIN_RELOAD_APPLIED, ADMIN_RELOAD_PARTIAL, ADMIN_RELOAD_REFUSED, ADMIN_RELOAD_FAILED,
                           ADMIN_RELOAD_RESULTS };
const char *admin_reload_result_name(enum admin_reload_result r);

/* The configuration's health: what GET /sinks and /metrics show beside the running sinks. */
struct admin_config_view {
    const struct admin_invalid_sink *invalid;
    size_t ninvalid;
    int last_reload_successful;     /* the last load (start or reload) had no problem at all */
    int64_t last_reload_success_ms; /* unix ms of the last such load; 0: none yet */
    uint64_t reloads[ADMIN_RELOAD_RESULTS];   /* reloads by result (admin_reload_result_name) */
};

struct admin_hooks {
    struct router *(*router)(void *arg);          /* the router now (a reload replaces it) */
    /* The configuration's health now (NULL: nothing set aside, never reloaded). */
    const struct admin_config_view *(*config)(void *arg);
    /* Reload the configuration; 0 when applied, else -1 with every problem in msg. */
    int (*reload)(void *arg, char *msg, size_t msglen);
    /* GET /group: this replica and the group's control topic (group_view); NULL: no control topic. */
    json_t *(*group)(void *arg);
    void *arg;
};

/** @brief Listen on @p listen ("host:port") for the admin API and on @p health_listen for the
 * health listener, each with @p limits on each client (http_server.h); either may be NULL or ""
 * (not served). @p token may be NULL (no authentication); the health listener never asks for it. */
struct admin *admin_new(struct event_base *eb, const char *listen, const char *health_listen, const char *token,
                        const struct http_limits *limits, const struct admin_hooks *hooks,
                        char *err, size_t errlen);

/** @brief The port the admin API bound (for "host:0"), or -1 when it is not served. */
int admin_port(const struct admin *a);

/** @brief The port the health listener bound, or -1 when it is not served. */
int admin_health_port(const struct admin *a);

void admin_free(struct admin *a);

#endif
