#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "admin.h"
#include "admin_metrics.h"
#include "admin_route.h"
#include "http_server.h"
#include "router.h"
#include "status_page.h"
#include "tap.h"
#include "lib/log.h"

#define DEBUG_DELIVERIES 32

struct admin {
    struct http_server *srv;            /* the admin API, or NULL */
    struct http_server *health_srv;     /* the health listener, or NULL */
    unsigned char token_digest[SHA256_DIGEST_LENGTH];
    int has_token;
    struct admin_hooks hooks;
};

/* Every answer ends here: it frees @p req. */
static void reply_text(struct http_server_req *req, int code, const char *type, const char *body)
{
    http_server_reply_header(req, "Cache-Control", "no-store");
    http_server_reply(req, code, type, body, strlen(body));
}

/* Steals @p doc. */
static void reply_json(struct http_server_req *req, int code, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text) {
        reply_text(req, 500, "text/plain", "out of memory\n");
        return;
    }
    reply_text(req, code, "application/json", text);
    free(text);
}

static void reply_error(struct http_server_req *req, int code, const char *message)
{
    reply_json(req, code, json_pack("{s:s}", "error", message));
}

/* The token is compared as SHA-256 digests with CRYPTO_memcmp: constant time, and the length of
 * the real token does not leak either. */
static int admin_authorized(const struct admin *a, struct http_server_req *req, int allow_query)
{
    const char *auth = http_server_req_header(req, "Authorization");
    const char *given = NULL;
    char *from_query = NULL;
    unsigned char digest[SHA256_DIGEST_LENGTH];

    if (!a->has_token)
        return 1;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)   /* the scheme is case-insensitive (RFC 9110) */
        given = auth + 7;
    if (!given && allow_query)
        given = from_query = http_query_param(http_server_req_query(req), "token");
    if (!given)
        return 0;
    SHA256((const unsigned char *)given, strlen(given), digest);
    free(from_query);
    return CRYPTO_memcmp(digest, a->token_digest, sizeof digest) == 0;
}

const char *admin_reload_result_name(enum admin_reload_result r)
{
    static const char *const names[] = { "applied", "partial", "refused", "failed" };
    return (unsigned)r < ADMIN_RELOAD_RESULTS ? names[r] : "unknown";
}

static void on_metrics(struct admin *a, struct http_server_req *req)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    struct admin_metrics_sources src = {
        .router = a->hooks.router(a->hooks.arg),
        .config = a->hooks.config ? a->hooks.config(a->hooks.arg) : NULL,
        .group = a->hooks.group ? a->hooks.group(a->hooks.arg) : NULL,
        .admin_srv = a->srv,
        .health_srv = a->health_srv,
    };

    if (out) {
        admin_metrics_render(&src, out);
        fclose(out);
    }
    json_decref(src.group);
    if (!out) {
        reply_text(req, 500, "text/plain", "out of memory\n");
        return;
    }
    reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", text);
    free(text);
}

/* ---- /sinks ---- */

struct positions_ctx {
    json_t *sinks;          /* array, one per sink index, each with a "positions" array */
};

static void on_partition_positions(void *arg, const struct router_partition_view *pv)
{
    struct positions_ctx *pc = arg;
    for (size_t k = 0; k < json_array_size(pc->sinks); k++) {
        json_t *pos;
        if (!pv->reads[k])
            continue;
        pos = json_pack("{s:s, s:i, s:I, s:I, s:I}", "topic", pv->topic, "partition", (int)pv->partition,
                        "next", (json_int_t)pv->next[k], "committed", (json_int_t)pv->committed,
                        "high_watermark", (json_int_t)pv->high_watermark);
        if (pos && pv->high_watermark >= 0 && pv->next[k] >= 0)
            json_object_set_new(pos, "lag", json_integer(pv->high_watermark > pv->next[k] ? pv->high_watermark - pv->next[k] : 0));
        json_array_append_new(json_object_get(json_array_get(pc->sinks, k), "positions"), pos);
    }
}

static const char *sink_state_name(const struct router_sink_view *v)
{
    if (v->paused)
        return "paused";
    if (v->parked)
        return "parked";
    if (v->resyncing)
        return "resyncing";
    if (v->degraded)
        return "degraded";
    return "running";
}

static json_t *sink_json(const struct router_sink_view *v)
{
    json_t *topics = json_array();
    const struct router_sink_stats *st = v->stats;

    for (size_t t = 0; t < v->sk->topics.n; t++)
        json_array_append_new(topics, json_string(v->sk->topics.v[t]));
    return json_pack("{s:s, s:s, s:s?, s:s?, s:o, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:[]}",
        "name", v->sk->name, "type", v->sk->type, "owner", v->sk->owner, "description", v->sk->description,
        "topics", topics, "state", sink_state_name(v),
        "parked", v->parked ? json_pack("{s:s, s:I}", "reason", v->park_reason, "for_ms", (json_int_t)v->parked_ms)
                            : json_null(),
        "loss", st->records_lost ? json_pack("{s:I, s:s}", "records", (json_int_t)st->records_lost, "last", v->last_loss)
                                 : json_null(),
        "delivered", (json_int_t)st->delivered, "dead_lettered", (json_int_t)st->dead_lettered,
        "filtered", (json_int_t)st->filtered, "skipped", (json_int_t)st->skipped,
        "retries", (json_int_t)st->retries, "batches", (json_int_t)st->batches,
        "in_flight", (json_int_t)st->in_flight, "buffered", (json_int_t)v->buffered,
        "fenced", (json_int_t)st->fenced, "buffered_bytes", (json_int_t)v->buffered_bytes,
        "parks", (json_int_t)st->parks, "records_lost", (json_int_t)st->records_lost,
        "oversized", (json_int_t)st->oversized,
        "last_error", v->last_error_ms ? json_pack("{s:s, s:I}", "message", v->last_error, "at_ms", (json_int_t)v->last_error_ms)
                                       : json_null(),
        "positions");
}

/* A sink file set aside: the same fields a client reads of a running sink, and its messages. */
static json_t *invalid_sink_json(const struct admin_invalid_sink *inv)
{
    json_t *messages = json_array();

    for (size_t i = 0; i < inv->nmessages; i++)
        json_array_append_new(messages, json_string(inv->messages[i]));
    return json_pack("{s:s, s:s, s:s, s:o, s:[], s:I, s:I, s:n, s:[]}", "name", inv->name, "state", "invalid",
                     "file", inv->file, "messages", messages, "topics", "delivered", (json_int_t)0,
                     "dead_lettered", (json_int_t)0, "last_error", "positions");
}

static json_t *registry_json(struct router *r)
{
    struct router_registry_view rv;

    if (router_registry_view(r, &rv) != 0)
        return json_null();
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "state", rv.state, "error", rv.error, "cached_schemas",
                     (json_int_t)rv.cached, "cached_bytes", (json_int_t)rv.cached_bytes, "fetching",
                     (json_int_t)rv.fetching, "records_waiting", (json_int_t)rv.waiting_records);
}

static json_t *contract_json(const struct router_topic_view *tv)
{
    json_t *rules;

    if (!tv->has_contract || !(rules = json_object()))
        return json_null();
    for (size_t k = 0; k < tv->ncontract_rules; k++)
        json_object_set_new(rules, tv->contract_rules[k].rule, json_integer((json_int_t)tv->contract_rules[k].violations));
    return json_pack("{s:s, s:I, s:o, s:s?, s:s?}", "kind", tv->contract_kind, "valid", (json_int_t)tv->contract_valid,
                     "violations", rules, "last_violation", tv->last_violation[0] ? tv->last_violation : NULL,
                     "held", tv->contract_held[0] ? tv->contract_held : NULL);
}

static json_t *topics_json(struct router *r)
{
    json_t *topics = json_object();

    for (size_t i = 0; topics && i < router_format_topic_count(r); i++) {
        struct router_topic_view tv;
        router_format_topic_view(r, i, &tv);
        json_object_set_new(topics, tv.name,
                            json_pack("{s:s, s:s, s:I, s:I, s:s?, s:I, s:o}", "value_format", tv.value_format, "key_format",
                                      tv.key_format, "decoded", (json_int_t)tv.decoded, "decode_failures",
                                      (json_int_t)tv.decode_failures, "last_decode_error",
                                      tv.last_decode_error[0] ? tv.last_decode_error : NULL, "records_waiting",
                                      (json_int_t)tv.waiting_records, "contract", contract_json(&tv)));
    }
    return topics ? topics : json_null();
}

static void on_sinks(struct admin *a, struct http_server_req *req)
{
    struct router *r = a->hooks.router(a->hooks.arg);
    const struct admin_config_view *cv = a->hooks.config ? a->hooks.config(a->hooks.arg) : NULL;
    struct positions_ctx pc = { json_array() };
    char why[256] = "";
    int ready = router_ready(r, why, sizeof why);

    for (size_t k = 0; k < router_sink_count(r); k++) {
        struct router_sink_view v;
        router_sink_view(r, k, &v);
        json_array_append_new(pc.sinks, sink_json(&v));
    }
    router_partitions_foreach(r, on_partition_positions, &pc);
    /* after the positions: those index the running sinks */
    for (size_t k = 0; cv && k < cv->ninvalid; k++)
        json_array_append_new(pc.sinks, invalid_sink_json(&cv->invalid[k]));
    reply_json(req, 200, json_pack("{s:s, s:b, s:s, s:o, s:o, s:o}", "group", router_group(r), "ready", ready,
                                   "not_ready_because", ready ? "" : why, "sinks", pc.sinks,
                                   "registry", registry_json(r), "topics", topics_json(r)));
}

static void on_sink_debug(struct admin *a, struct http_server_req *req, size_t k)
{
    struct router *r = a->hooks.router(a->hooks.arg);
    struct router_delivery deliveries[DEBUG_DELIVERIES];
    size_t n = router_sink_deliveries(r, k, deliveries, DEBUG_DELIVERIES);
    struct router_sink_view v;
    json_t *list = json_array();

    router_sink_view(r, k, &v);
    for (size_t i = 0; i < n; i++) {
        const struct router_delivery *d = &deliveries[i];
        json_array_append_new(list, json_pack("{s:I, s:I, s:s, s:i, s:I, s:I, s:I, s:I, s:i, s:s, s:s, s:s}",
            "at_ms", (json_int_t)d->at_ms, "duration_ms", (json_int_t)d->duration_ms, "topic", d->topic,
            "partition", (int)d->partition, "first_offset", (json_int_t)d->first_offset,
            "last_offset", (json_int_t)d->last_offset, "records", (json_int_t)d->count,
            "bytes", (json_int_t)d->bytes, "attempt", (int)d->attempt, "result", tap_result_name(d->result),
            "error", d->error, "detail", d->detail));
    }
    reply_json(req, 200, json_pack("{s:s, s:s, s:o}", "name", v.sk->name, "type", v.sk->type, "deliveries", list));
}

/* A number parameter of the query: 0 when absent, -1 when not a number in [min, max]. */
static int query_number(const char *query, const char *name, long long min, long long max, long long *out)
{
    char *text = http_query_param(query, name), *end;
    long long v;

    if (!text)
        return 0;
    v = strtoll(text, &end, 10);
    if (!text[0] || *end || v < min || v > max) {
        free(text);
        return -1;
    }
    free(text);
    *out = v;
    return 1;
}

static void on_sink_tap(struct admin *a, struct http_server_req *req, size_t k)
{
    struct router *r = a->hooks.router(a->hooks.arg);
    const char *query = http_server_req_query(req);
    struct tap_filter filter = { 0, -1 };
    struct router_sink_view v;
    long long partition = -1;
    int rc;

    if (query_number(query, "limit", 1, 1000000000LL, &filter.limit) < 0 ||
        query_number(query, "partition", 0, INT32_MAX, &partition) < 0) {
        reply_error(req, 400, "limit must be a number from 1, partition a number from 0");
        return;
    }
    filter.partition = (int32_t)partition;
    router_sink_view(r, k, &v);
    rc = tap_attach(router_sink_tap(r, k), v.sk->name, req, &filter);
    if (rc == -2)
        reply_error(req, 503, "too many clients tap this sink already");
    else if (rc != 0)
        reply_error(req, 500, "out of memory");
}

static void on_replay_time_answer(void *arg, int rewound, size_t unmatched, const char *error)
{
    struct http_server_req *req = arg;
    if (rewound < 0 || error) {
        reply_error(req, 502, error ? error : "the time lookup failed");
        return;
    }
    reply_json(req, 200, json_pack("{s:i, s:I}", "partitions_rewound", rewound,
                                   "partitions_without_records_after", (json_int_t)unmatched));
}

static void on_sink_replay(struct admin *a, struct http_server_req *req, size_t k)
{
    struct router *r = a->hooks.router(a->hooks.arg);
    struct admin_replay rp;
    char err[256];
    size_t len;
    const char *body = http_server_req_body(req, &len);
    int rewound;

    if (admin_replay_parse(body, len, &rp, err, sizeof err) != 0) {
        reply_error(req, 400, err);
        return;
    }
    if (rp.by_time) {
        /* Answered when Kafka has told the offsets for that time. */
        if (router_sink_replay_time(r, k, rp.topic[0] ? rp.topic : NULL, rp.partition, rp.at, -1,
                                    on_replay_time_answer, req, err, sizeof err) != 0)
            reply_error(req, 400, err);
        return;
    }
    rewound = router_sink_replay(r, k, rp.topic[0] ? rp.topic : NULL, rp.partition, rp.at, -1, err, sizeof err);
    if (rewound < 0) {
        reply_error(req, 400, err);
        return;
    }
    reply_json(req, 200, json_pack("{s:i}", "partitions_rewound", rewound));
}

static void on_reload(struct admin *a, struct http_server_req *req)
{
    char msg[8192] = "";
    if (!a->hooks.reload) {
        reply_error(req, 501, "reload is not available");
        return;
    }
    if (a->hooks.reload(a->hooks.arg, msg, sizeof msg) != 0) {
        reply_error(req, 400, msg);
        return;
    }
    reply_json(req, 200, json_pack("{s:s}", "status", msg[0] ? msg : "reloaded"));
}

static void on_readyz(struct router *r, struct http_server_req *req)
{
    char why[256] = "";

    if (router_ready(r, why, sizeof why))
        reply_text(req, 200, "text/plain", "ready\n");
    else {
        char body[300];
        snprintf(body, sizeof body, "not ready: %s\n", why);
        reply_text(req, 503, "text/plain", body);
    }
}

/* The health listener: the probes and the scrape, never a token, nothing else. */
static void on_health_request(struct http_server_req *req, void *arg)
{
    struct admin *a = arg;
    struct admin_route rt;
    struct router *r = a->hooks.router(a->hooks.arg);

    admin_route(http_server_req_method(req), http_server_req_path(req), &rt);
    if (rt.ep == ADMIN_EP_HEALTHZ)
        reply_text(req, 200, "text/plain", "ok\n");
    else if (rt.ep != ADMIN_EP_READYZ && rt.ep != ADMIN_EP_METRICS)
        reply_error(req, 404, "not found: this listener serves GET /healthz, /readyz and /metrics");
    else if (!r)
        reply_text(req, 503, "text/plain", "restarting the pipeline\n");
    else if (rt.ep == ADMIN_EP_READYZ)
        on_readyz(r, req);
    else
        on_metrics(a, req);
}

static void on_request(struct http_server_req *req, void *arg)
{
    struct admin *a = arg;
    struct admin_route rt;
    struct router *r = a->hooks.router(a->hooks.arg);
    int k = -1;

    admin_route(http_server_req_method(req), http_server_req_path(req), &rt);
    if (rt.ep == ADMIN_EP_HEALTHZ) {
        reply_text(req, 200, "text/plain", "ok\n");
        return;
    }
    if (!r) {
        reply_text(req, 503, "text/plain", "restarting the pipeline\n");
        return;
    }
    if (!admin_authorized(a, req, admin_route_query_token(&rt))) {
        http_server_reply_header(req, "WWW-Authenticate", "Bearer realm=\"sluice\"");
        reply_error(req, 401, "a valid bearer token is required");
        return;
    }
    if (rt.sink[0] && (k = router_sink_find(r, rt.sink)) < 0) {
        reply_error(req, 404, "no such sink");
        return;
    }
    switch (rt.ep) {
    case ADMIN_EP_STATUS_PAGE:
        reply_text(req, 200, "text/html; charset=utf-8", status_page_html);
        break;
    case ADMIN_EP_READYZ:
        on_readyz(r, req);
        break;
    case ADMIN_EP_METRICS:
        on_metrics(a, req);
        break;
    case ADMIN_EP_SINKS:
        on_sinks(a, req);
        break;
    case ADMIN_EP_RELOAD:
        on_reload(a, req);
        break;
    case ADMIN_EP_GROUP: {
        json_t *view = a->hooks.group ? a->hooks.group(a->hooks.arg) : NULL;
        if (view)
            reply_json(req, 200, view);
        else
            reply_error(req, 404, "no control topic: set control.topic for group-wide operations");
        break;
    }
    case ADMIN_EP_SINK_DEBUG:
        on_sink_debug(a, req, (size_t)k);
        break;
    case ADMIN_EP_SINK_PAUSE:
        router_sink_pause(r, (size_t)k);
        reply_json(req, 200, json_pack("{s:s, s:s}", "name", rt.sink, "state", "paused"));
        break;
    case ADMIN_EP_SINK_RESUME:
        router_sink_resume(r, (size_t)k);
        reply_json(req, 200, json_pack("{s:s, s:s}", "name", rt.sink, "state", "running"));
        break;
    case ADMIN_EP_SINK_REPLAY:
        on_sink_replay(a, req, (size_t)k);
        break;
    case ADMIN_EP_SINK_TAP:
        on_sink_tap(a, req, (size_t)k);
        break;
    case ADMIN_EP_SINK_BAD_ACTION:
        reply_error(req, 404, "unknown action; GET debug or tap, POST pause, resume or replay");
        break;
    case ADMIN_EP_NO_SINK:
        reply_error(req, 404, "no such sink");
        break;
    default:
        reply_error(req, 404, "not found");
        break;
    }
}

/* "host:port" with the port bound (tests read it for "host:0"). */
static void log_listening(const char *what, const char *listen, int port)
{
    const char *colon = strrchr(listen, ':');
    LOG(LOG_INFO, "%s listening on %.*s:%d", what, colon ? (int)(colon - listen) : (int)strlen(listen), listen, port);
}

struct admin *admin_new(struct event_base *eb, const char *listen, const char *health_listen, const char *token,
                        const struct http_limits *limits, const struct admin_hooks *hooks,
                        char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof *a);

    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->hooks = *hooks;
    if (listen && listen[0] && token && !token[0]) {
        /* Set, but to nothing (an empty ${NAME}): running without the protection it asked for
         * would be worse than not starting. (Without the admin API it protects nothing.) */
        snprintf(err, errlen, "admin.token is set but empty; unset it to run the admin API without a token");
        goto fail;
    }
    if (token) {
        SHA256((const unsigned char *)token, strlen(token), a->token_digest);
        a->has_token = 1;
    }
    if (listen && listen[0]) {
        if (!(a->srv = http_server_new(eb, listen, "admin", limits, on_request, a, err, errlen)))
            goto fail;
        if (!a->has_token)
            LOG(LOG_WARN, "admin API on %s has no token: whoever reaches it can pause and replay sinks", listen);
        log_listening("admin API", listen, admin_port(a));
    }
    if (health_listen && health_listen[0]) {
        if (!(a->health_srv = http_server_new(eb, health_listen, "health", limits, on_health_request, a, err, errlen)))
            goto fail;
        log_listening("health listener", health_listen, admin_health_port(a));
    }
    return a;
fail:
    admin_free(a);
    return NULL;
}

int admin_port(const struct admin *a)
{
    return a->srv ? http_server_port(a->srv) : -1;
}

int admin_health_port(const struct admin *a)
{
    return a->health_srv ? http_server_port(a->health_srv) : -1;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    http_server_free(a->srv);
    http_server_free(a->health_srv);
    free(a);
}
