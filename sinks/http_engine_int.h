/* Private to the HTTP engine's files (http_engine.c: the transfers and their gates;
 * http_request.c: building a request; http_oauth.c: OAuth2 client credentials). The sinks see
 * only http_engine.h. */
#ifndef SLUICE_HTTP_ENGINE_INT_H
#define SLUICE_HTTP_ENGINE_INT_H

#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "http_engine.h"
#include "lib/buf.h"

#define RESPONSE_KEEP 1024            /* bytes of a response body kept for messages */
#define TOKEN_RESPONSE_MAX (64 * 1024)
#define RETRY_AFTER_CAP_MS 3600000    /* a server asking for more than an hour is capped */
#define PARK_LOG_EVERY_S 60
#define ERROR_BODY_SHOWN 300          /* bytes of a response body in an error line */

/* ---- requests ---- */

struct http_request {
    TAILQ_ENTRY(http_request) link;
    struct http_engine *eng;
    char *method, *url;
    char host[256];               /* for messages: never the path or query, which may hold secrets */
    struct curl_slist *headers;   /* fixed for every attempt */
    struct curl_slist *late;      /* this attempt only (before-send hook, token) */
    struct curl_slist *wire;      /* what curl sends: headers + late */
    char *body;
    size_t body_len;
    http_done_fn done;
    void *arg;
    http_before_fn before;
    void *before_arg;
    uintptr_t tag;
    char *id;                     /* the idempotency id, for the sink's before-send hook */
    int bypass;                   /* the token request: no gate applies */
    int auth_retried;             /* a 401 was answered once with a fresh token */
    uint64_t token_gen;
    int queued, on_wire;
    CURL *easy;
    struct buf resp;
    size_t resp_keep;
    int resp_truncated;           /* the body went past resp_keep */
    char retry_after[64];
    char refused[640];            /* why the SSRF guard refused the address */
    char errbuf[CURL_ERROR_SIZE];
};

TAILQ_HEAD(http_request_list, http_request);

struct sock_ctx {
    struct event *ev;
    struct http_engine *eng;
    struct sock_ctx *next, **pprev;
};

struct http_engine {
    char who[160];                /* the subject of its log lines: "sink:webhook:orders", "registry" */
    struct event_base *eb;
    struct http_engine_conf conf;
    uint64_t *responses_by_class;  /* the sink's http_responses, or NULL (the registry's engine) */
    CURLM *multi;
    struct event *curl_timer, *pump_timer, *park_timer;
    struct http_request_list queue, on_wire;
    size_t nqueued, nwire;        /* nwire counts requests under the in-flight cap */
    struct sock_ctx *socks;
    CURL **pool;
    size_t npool, pool_cap;
    int limited;
    struct http_bucket bucket;
    struct http_breaker breaker;
    int64_t not_before_ms;
    int parked;
    char park_reason[512];
    int64_t parked_at_ms;
    int pumping, freeing;
    struct http_engine_stats stats;
    /* OAuth2 client credentials */
    int oauth;
    char *token_url, *client_id, *client_secret, *scope, *audience;
    int client_auth_post;
    char *token;
    int64_t token_expires_ms;     /* 0: until a 401 */
    uint64_t token_gen;
    int token_fetching;
    int64_t token_retry_ms;
    unsigned token_failures;
};

/* http_request.c */
/** @brief Forget what the last attempt added and got (late headers, response, errors). */
void http_request_clear_attempt(struct http_request *req);

/* http_engine.c */
/** @brief Put @p req on the wire now (the gates were passed), or finish it at once on failure. */
void http_engine_start(struct http_engine *eng, struct http_request *req);
/** @brief One line saying what went wrong with @p req, for logs and dead letters. */
void http_engine_result_error(struct http_engine *eng, struct http_request *req, CURLcode code, long status,
                              char *out, size_t outlen);

/* http_oauth.c */
/** @brief Start fetching a token from token_url (its request bypasses every gate). */
void http_oauth_token_fetch(struct http_engine *eng);
/** @brief The token request finished: keep the token, or back off; frees @p req. */
void http_oauth_token_done(struct http_engine *eng, struct http_request *req, CURLcode code, long status);
/** @brief Wipe and free a secret string (NULL is fine). */
void http_secret_free(char *s);

#endif
