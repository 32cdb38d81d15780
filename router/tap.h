/* A live tap of a sink (GET /sinks/NAME/tap): the records of each batch as the sink will write
 * them and the target's answer, streamed as NDJSON to every client watching. Each client has its
 * own bound (the bytes its connection may hold unsent): a slow client loses events, counted and
 * told, and never slows the router. A sink nobody taps has no tap (one NULL pointer). */
#ifndef SLUICE_ROUTER_TAP_H
#define SLUICE_ROUTER_TAP_H

#include <stddef.h>
#include <stdint.h>

#include "http_server.h"
#include "sinks/sink.h"

#define TAP_CLIENTS_MAX 8                /* clients of one sink at once; more get 503 */
#define TAP_CLIENT_UNSENT_MAX (1u << 20)   /* bytes one client may leave unread before it loses events */
#define TAP_VALUE_MAX 4096               /* bytes of a key or value shown; the rest is counted as "truncated" */

struct tap;
struct router_delivery;

struct tap_filter {
    long long limit;                     /* stop after this many records; 0: no limit */
    int32_t partition;                   /* -1: all */
};

/** @brief "ok", "retry", "failed", "fenced". */
const char *tap_result_name(enum sink_result result);

/**
 * @brief Start streaming to @p req for the sink named @p sink, whose tap is *@p slot (made when
 * NULL, freed and set back to NULL when its last client goes). On failure the caller still owns
 * @p req and answers it. @return 0, -1 (out of memory or connection gone) or -2 (too many clients).
 */
int tap_attach(struct tap **slot, const char *sink, struct http_server_req *req, const struct tap_filter *filter);

/** @brief A batch's first attempt is handed to @p sk: its records go to the clients. */
void tap_records(struct tap *tap, struct sink *sk, const struct sink_batch *b);

/** @brief The verdict of an attempt (as kept for GET /sinks/NAME/debug). */
void tap_delivery(struct tap *tap, const struct router_delivery *d);

/**
 * @brief Cut what looks like a credential out of @p s in place (never longer): the values after
 * "Authorization:" (the rest of the line), "Bearer ", "password=", "token=", "secret=", and
 * whsec_ secrets become "[redacted]" (or '*'s when shorter). A target's answer may echo them.
 */
void tap_redact(char *s);

/** @brief End every client's stream with an "end" event saying @p reason, and free the tap. */
void tap_close(struct tap *tap, const char *reason);

/**
 * @brief The record as the sink would send it: the sink's own description (then *@p owned is
 * set: the caller frees it), its prepared bytes when they are text, else its value
 * (*@p mapped = 0). @return the bytes (NULL for a tombstone) and their length in *@p len.
 */
const char *tap_record_shown(struct sink *sk, const struct sink_record *e, size_t *len, char **owned, int *mapped);

#endif
