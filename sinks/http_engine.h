/* The HTTP engine the webhook and http sinks share: libcurl's multi_socket interface on the
 * sink's libevent loop (sockets and timers on the loop, never a blocking transfer), keep-alive
 * reuse, HTTP/2 over TLS when the server offers it, a timeout per request, TLS verification.
 *
 * On top of the transfers it keeps, per sink:
 * - a FIFO of requests, at most max_in_flight of them on the wire;
 * - a token bucket (rate_limit) that every request, retries included, takes from; a 429 halves
 *   the rate, which then creeps back to the configured one;
 * - Retry-After (seconds or an HTTP date) on any retried answer (408, 429, 5xx): nothing is
 *   sent before it;
 * - a circuit breaker: after N consecutive failures (network error, timeout, 408, 5xx) it holds
 *   every request for a cool-down, then lets one probe through; while open, requests wait in
 *   the queue and burn no attempt;
 * - 410 Gone parks the engine (on_gone "park"): the request and all others are held, never
 *   answered, until the process restarts; a loud line is logged every minute;
 * - an SSRF guard on the address actually connected to (curl's open-socket hook): loopback,
 *   private, link-local and other non-public addresses are refused unless
 *   allow_private_networks; a refusal is permanent (dead letter with the reason) and does not
 *   count toward the circuit breaker;
 * - OAuth2 client credentials: a token fetched from token_url, added at send time, cached until
 *   it expires, and fetched again once when a request gets 401.
 *
 * A request's completion callback runs on the loop with the request's class (ok, retry,
 * permanent); the caller owns the request from then on. The pure parts (classification,
 * Retry-After, token bucket, breaker, address classes) are
 * exposed for the unit tests. */
#ifndef SLUICE_HTTP_ENGINE_H
#define SLUICE_HTTP_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

#include "sink.h"

/* ---- response classes ---- */

enum http_class {
    HTTP_OK,          /* 2xx */
    HTTP_RETRY,       /* network error, timeout, 408, 429, 5xx: try again later */
    HTTP_PERMANENT,   /* any other status: the request itself is wrong */
    HTTP_GONE,        /* 410: the endpoint is gone */
};

/** @brief Class of a transfer: @p transport_failed when no response arrived (connect error,
 * timeout), else by @p status. (A refusal by the SSRF guard is permanent: the engine decides
 * that before asking.) */
enum http_class http_classify(int transport_failed, long status);
const char *http_class_name(enum http_class cls);

/**
 * @brief Parse a Retry-After value: delta seconds ("120") or an HTTP date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", also RFC 850 and asctime forms), relative to @p now.
 * A date in the past gives 0. @return 0 with the delay in @p delay_ms, -1 when unparseable.
 */
int http_retry_after_parse(const char *value, time_t now, int64_t *delay_ms);

/* ---- token bucket (times in ms from any monotonic origin) ---- */

struct http_bucket {
    double configured;       /* requests per second asked for */
    double rate;             /* current rate: lower after a 429, recovers over time */
    double burst;            /* most tokens kept */
    double tokens;
    int64_t last_ms;
};

void http_bucket_init(struct http_bucket *b, double per_second, double burst, int64_t now_ms);
/** @brief 0 when a request may go now (a token is taken), else the ms until one is there. */
int64_t http_bucket_take(struct http_bucket *b, int64_t now_ms);
/** @brief The ms until a token is there, without taking it (0: one is there). */
int64_t http_bucket_wait(struct http_bucket *b, int64_t now_ms);
/** @brief A 429: halve the rate (not below a tenth of the configured one) and empty the bucket. */
void http_bucket_slow_down(struct http_bucket *b, int64_t now_ms);

/* ---- circuit breaker ---- */

enum http_breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct http_breaker {
    enum http_breaker_state state;
    unsigned failures;          /* consecutive */
    unsigned threshold;         /* failures that open it; 0: never */
    int64_t cooldown_ms;
    int64_t open_until_ms;
    int probe_in_flight;
};

void http_breaker_init(struct http_breaker *br, unsigned threshold, int64_t cooldown_ms);
/**
 * @brief May a request start now? 0: yes (in half-open state it becomes the probe);
 * > 0: not before that many ms; -1: wait for the probe's outcome.
 */
int64_t http_breaker_allow(struct http_breaker *br, int64_t now_ms);
/** @brief Record an outcome: @p failure 1 (counts), 0 (the server answered sensibly).
 * @return 1 when this outcome opened the breaker, -1 when it closed it, else 0. */
int http_breaker_record(struct http_breaker *br, int failure, int64_t now_ms);

/* ---- SSRF guard: address classes ---- */

enum http_addr_kind {
    HTTP_ADDR_PUBLIC,
    HTTP_ADDR_LOOPBACK,
    HTTP_ADDR_PRIVATE,        /* RFC 1918, unique local fc00::/7, shared 100.64/10 */
    HTTP_ADDR_LINK_LOCAL,     /* 169.254/16 (cloud metadata lives here), fe80::/10 */
    HTTP_ADDR_NON_PUBLIC,     /* unspecified, multicast, broadcast, documentation, reserved */
};

enum http_addr_kind http_addr_classify(const struct sockaddr *sa);
const char *http_addr_kind_name(enum http_addr_kind kind);
/** @brief The class of @p host when it is an IP literal (v4, or v6 with or without brackets);
 * -1 when it is a name. */
int http_host_literal_kind(const char *host, enum http_addr_kind *kind);

/* ---- base64 ---- */

/** @brief Base64 (standard alphabet, padded) of @p data into a new string. */
char *http_base64(const unsigned char *data, size_t len);

/* ---- configuration shared by the two sink types ---- */

enum http_order { HTTP_ORDER_KEY, HTTP_ORDER_PARTITION };
enum http_on_gone { HTTP_GONE_PARK, HTTP_GONE_DEAD_LETTER };

struct http_engine_conf {
    long long timeout_ms;
    long long max_in_flight;
    int allow_private_networks;
    int tls_verify;
    char *ca_file;
    int order;                       /* enum http_order */
    int on_gone;                     /* enum http_on_gone */
    long long rate_per_second;       /* 0: no limit */
    long long rate_burst;            /* 0: the rate (at least 1) */
    long long breaker_failures;      /* 0: no breaker */
    long long breaker_cooldown_ms;
};

/* Both sink types begin with this, so the shared option tables have one layout. */
struct http_sink_base {
    struct sink super;
    struct http_engine_conf http;
};

extern const struct cfg_opt http_rate_limit_opts[];
extern const struct cfg_opt http_breaker_opts[];
extern const char *const http_order_names[];
extern const char *const http_on_gone_names[];

#define HTTP_BASE_OFF(field) offsetof(struct http_sink_base, http.field)

/* The engine's options, to put in a sink type's table. */
#define HTTP_ENGINE_OPTS                                                                                  \
    CFG_INT("timeout_ms", "10000", 1, 3600000, HTTP_BASE_OFF(timeout_ms),                               \
            "Whole-request timeout; a request that takes longer is retried"),                           \
    CFG_INT("max_in_flight", "16", 1, 1024, HTTP_BASE_OFF(max_in_flight),                               \
            "Requests of this sink on the wire at once (over all partitions)"),                         \
    CFG_ENUM("order", "\"partition\"", http_order_names, HTTP_BASE_OFF(order),                          \
             "One request per record: \"partition\" one at a time, in offset order; \"key\" sends "    \
             "records of different keys of a batch in parallel (faster, but a retry can let a later "    \
             "record of the partition arrive first; per key, order holds)"),                            \
    CFG_BOOL("allow_private_networks", "false", HTTP_BASE_OFF(allow_private_networks),                  \
             "Allow loopback, private and link-local destinations (the SSRF guard refuses them)"),      \
    CFG_BOOL("tls_verify", "true", HTTP_BASE_OFF(tls_verify),                                           \
             "Verify the server's TLS certificate and name"),                                           \
    CFG_STR("ca_file", NULL, HTTP_BASE_OFF(ca_file), "CA bundle to verify servers with (default: the system's)"), \
    CFG_ENUM("on_gone", "\"park\"", http_on_gone_names, HTTP_BASE_OFF(on_gone),                         \
             "A 410 Gone: \"park\" holds everything until a restart, \"dead_letter\" treats it as any 4xx"), \
    CFG_SECTION("rate_limit", http_rate_limit_opts, "Token bucket over every request of the sink"),     \
    CFG_SECTION("circuit_breaker", http_breaker_opts, "Stop sending after consecutive failures")

/** @brief Checks shared by both types: @p url (named @p what in the message) is http(s), and a
 * literal non-public address needs allow_private_networks. */
/* 1 with a warning in @p msg when @p url's host is a name that looks cluster-internal (one label,
 * or under .svc, .cluster.local, .internal) and allow_private_networks is off: valid, but the
 * SSRF guard will likely refuse every request. */
int http_engine_url_warning(const struct http_engine_conf *conf, const char *url, const char *what, char *msg,
                            size_t msglen);
int http_engine_check_url(const struct http_engine_conf *conf, const char *url, const char *what,
                          char *err, size_t errlen);

/* ---- the engine ---- */

struct http_engine;
struct http_request;
struct http_attempt;           /* one attempt of a batch (the sink keeps a list of the open ones) */

struct http_result {
    enum http_class cls;
    long status;                     /* 0 when no response arrived */
    const char *error;               /* a line for logs and dead letters; "" when ok */
    const char *body;                /* the first bytes of the response body */
    size_t body_len;
    int body_truncated;              /* the body was longer than the request kept */
    int refused;                     /* never sent: the SSRF guard refused the address (error says why) */
};

typedef void (*http_done_fn)(struct http_request *req, const struct http_result *res, void *arg);
/* Called right before a request goes on the wire (sign it with the current time here).
 * Returns 0, or -1 with the reason in @p err: the attempt then fails as retryable and the
 * request is not sent (never unsigned). */
typedef int (*http_before_fn)(struct http_request *req, void *arg, char *err, size_t errlen);

struct http_engine_stats {
    uint64_t requests;               /* put on the wire */
    uint64_t ok, retried, permanent, gone;
    uint64_t refused;                /* by the SSRF guard */
    uint64_t token_fetches;
};

struct http_oauth_conf {
    const char *token_url, *client_id, *client_secret, *scope, *audience;
    int client_auth_post;            /* 1: id and secret in the form; 0: HTTP Basic */
};

/** @brief An engine on @p eb whose log lines have the subject @p who ("registry"). */
struct http_engine *http_engine_new(struct event_base *eb, const char *who, const struct http_engine_conf *conf,
                                    char *err, size_t errlen);
/** @brief An engine for the sink @p sk: on its loop, logging as the sink. */
struct http_engine *http_engine_for_sink(struct sink *sk, const struct http_engine_conf *conf, char *err,
                                         size_t errlen);
/** @brief Use OAuth2 client credentials for every request (strings are copied). */
int http_engine_set_oauth(struct http_engine *eng, const struct http_oauth_conf *oc, char *err, size_t errlen);
/** @brief Free the engine and every request it holds, without calling their callbacks. */
void http_engine_free(struct http_engine *eng);
void http_engine_submit(struct http_engine *eng, struct http_request *req);
const struct http_engine_stats *http_engine_stats(const struct http_engine *eng);
/** @brief 1 when it can send (not parked, breaker not open), else 0 with the reason. */
int http_engine_ready(const struct http_engine *eng, char *why, size_t whylen);

/** @brief A request; @p method and @p url are copied. NULL when out of memory. */
struct http_request *http_request_new(const char *method, const char *url, http_done_fn done, void *arg);
/** @brief Add a header line "Name: value" (copied). -1 when out of memory. */
int http_request_header(struct http_request *req, const char *line);
/** @brief The body, taken over (freed with the request). */
void http_request_body(struct http_request *req, char *body, size_t len);
/** @brief From a before-send hook: a header for this attempt only. */
int http_request_late_header(struct http_request *req, const char *line);
void http_request_before_send(struct http_request *req, http_before_fn fn, void *arg);
const char *http_request_body_data(const struct http_request *req, size_t *len);
/** @brief The idempotency id of the request (for a before-send hook that signs it). */
int http_request_set_id(struct http_request *req, const char *id);
const char *http_request_id(const struct http_request *req);
const char *http_request_url(const struct http_request *req);
const char *http_request_method(const struct http_request *req);
/** @brief Keep up to @p max bytes of the response body (default 1024: enough for messages). */
void http_request_keep_body(struct http_request *req, size_t max);
/** @brief The URL's host, for messages (never its path or query, which may hold secrets). */
const char *http_request_host(const struct http_request *req);
/** @brief A number of the caller's kept with the request (http_attempt.c: the record's index). */
void http_request_set_tag(struct http_request *req, uintptr_t tag);
uintptr_t http_request_tag(const struct http_request *req);
/** @brief Replace the callback given to http_request_new. */
void http_request_set_done(struct http_request *req, http_done_fn done, void *arg);
/** @brief The engine's configuration, as given to http_engine_new. */
const struct http_engine_conf *http_engine_config(const struct http_engine *eng);
void http_request_free(struct http_request *req);

/* ---- one attempt of a batch, one request per record ---- */

/* The sink's prepared data of each record must begin with this: the record's progress across
 * attempts of the same batch (the router keeps the batch's records between retries). */
enum http_rec_state { HTTP_REC_PENDING, HTTP_REC_SENDING, HTTP_REC_DONE };

struct http_rec {
    uint8_t state;
    uint32_t key_hash;
};

uint32_t http_key_hash(const char *key, size_t len);

/* Builds the request of record @p index with @p done and @p arg as its callback (NULL: out of
 * memory; the attempt then ends in retry). */
typedef struct http_request *(*http_fanout_make_fn)(void *ctx, struct sink_batch *b, size_t index,
                                                    http_done_fn done, void *arg);

/**
 * @brief Send the records of @p b that are not done yet, one request each, in parallel up to
 * max_in_flight but never two of one key at once (order "key") or one at a time ("partition").
 * A 2xx marks a record done; a permanent failure rejects it (dead letter with the status and
 * the start of the body) and marks it done; after a retryable failure no new request starts and
 * the attempt ends SINK_RETRY once the ones in flight are back, so the next attempt sends only
 * what is not done. Ends with sink_batch_done. @p list is the sink's list of open attempts
 * (freed by http_attempts_free at stop).
 */
void http_fanout_start(struct http_engine *eng, struct sink_batch *b, http_fanout_make_fn make, void *ctx,
                       struct http_attempt **list);
/** @brief Free every open attempt of @p list (after http_engine_free: no callback comes). */
void http_attempts_free(struct http_attempt **list);

/* A whole batch in one request: ends the batch with its outcome (2xx: SINK_OK; retry:
 * SINK_RETRY; permanent: SINK_FAIL with the status and the start of the body). */
void http_batch_send(struct http_engine *eng, struct sink_batch *b, struct http_request *req,
                     struct http_attempt **list);

#endif
