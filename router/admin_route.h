/* The admin API's request parsing, apart from the server and the router so that it can be fuzzed
 * and tested alone: which endpoint a method and path name, and the body of a replay. */
#ifndef SLUICE_ADMIN_ROUTE_H
#define SLUICE_ADMIN_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "http_server.h"

enum admin_endpoint {
    ADMIN_EP_HEALTHZ,           /* any method */
    ADMIN_EP_STATUS_PAGE,
    ADMIN_EP_READYZ,
    ADMIN_EP_METRICS,
    ADMIN_EP_SINKS,
    ADMIN_EP_RELOAD,
    ADMIN_EP_GROUP,             /* GET: this replica and the group's control topic */
    ADMIN_EP_SINK_DEBUG,        /* the sink's name is in route.sink */
    ADMIN_EP_SINK_PAUSE,
    ADMIN_EP_SINK_RESUME,
    ADMIN_EP_SINK_REPLAY,
    ADMIN_EP_SINK_TAP,          /* GET: a live stream of its records and verdicts */
    ADMIN_EP_SINK_BAD_ACTION,   /* a sink's path with an unknown action or method: 404 if the sink exists */
    ADMIN_EP_NO_SINK,           /* "/sinks/" with an empty or overlong name: 404 */
    ADMIN_EP_NOT_FOUND,
};

struct admin_route {
    enum admin_endpoint ep;
    char sink[256];
};

/** @brief Name the endpoint of @p method and @p path (not decoded, without the query). */
void admin_route(enum http_method method, const char *path, struct admin_route *route);

/** @brief Does the endpoint take the token from "?token=" too (the status page)? */
int admin_route_query_token(const struct admin_route *route);

/* POST /sinks/NAME/replay: {"offset": N} or {"timestamp_ms": T}, optional "topic", "partition". */
struct admin_replay {
    int by_time;                /* timestamp_ms given (then offset is not) */
    int64_t at;                 /* the offset or the timestamp */
    char topic[256];            /* "" when not given */
    int32_t partition;          /* -1 when not given */
};

/** @brief Parse a replay body of @p len bytes; 0, or -1 with the answer's message in @p err. */
int admin_replay_parse(const char *body, size_t len, struct admin_replay *rp, char *err, size_t errlen);

#endif
