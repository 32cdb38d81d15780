/* The HTTP engine shared by the webhook and http sinks (see http_engine.h). Everything runs on
 * the sink's event loop: curl tells us which sockets to watch (on_curl_socket) and when to
 * wake it (on_curl_timer_set); libevent calls back, we hand the event to
 * curl_multi_socket_action, collect finished transfers, classify them, and start what the
 * gates (in-flight cap, Retry-After, token bucket, breaker, park, OAuth token) let through. */
#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "http_engine.h"
#include "http_engine_int.h"
#include "lib/clock.h"
#include "lib/log.h"

/* ---- curl callbacks ---- */

static size_t on_curl_write(char *data, size_t size, size_t n, void *arg)
{
    struct http_request *req = arg;
    size_t len = size * n;

    if (req->resp.len < req->resp_keep) {
        size_t take = req->resp_keep - req->resp.len;
        buf_add(&req->resp, data, len < take ? len : take);
        req->resp_truncated |= len > take;
    } else if (len) {
        req->resp_truncated = 1;
    }
    return len;   /* the rest is read and dropped */
}

static size_t on_curl_header(char *data, size_t size, size_t n, void *arg)
{
    struct http_request *req = arg;
    size_t len = size * n;

    if (len > 12 && strncasecmp(data, "retry-after:", 12) == 0) {
        size_t v = len - 12;
        if (v >= sizeof req->retry_after)
            v = sizeof req->retry_after - 1;
        memcpy(req->retry_after, data + 12, v);
        req->retry_after[v] = '\0';
    }
    return len;
}

/* The SSRF guard: curl is about to connect to @p addr (the address actually used, after DNS;
 * a reused connection was checked when it was opened). */
static curl_socket_t on_curl_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct http_request *req = arg;
    struct http_engine *eng = req->eng;
    enum http_addr_kind kind;
    char text[INET6_ADDRSTRLEN] = "?";

    (void)purpose;
    kind = http_addr_classify(&addr->addr);
    if (kind != HTTP_ADDR_PUBLIC && !eng->conf.allow_private_networks) {
        if (addr->family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&addr->addr)->sin_addr, text, sizeof text);
        else if (addr->family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr->addr)->sin6_addr, text, sizeof text);
        snprintf(req->refused, sizeof req->refused,
                 "refused to connect to %s (%s resolves to it): a %s address; the SSRF guard allows only "
                 "public destinations unless \"allow_private_networks\": true", text, req->host,
                 http_addr_kind_name(kind));
        eng->stats.refused++;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static void engine_collect(struct http_engine *eng);
static void engine_pump(struct http_engine *eng);

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct sock_ctx *sc = arg;
    struct http_engine *eng = sc->eng;   /* sc may be freed inside the socket action */
    int running, flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);

    curl_multi_socket_action(eng->multi, fd, flags, &running);
    engine_collect(eng);
    engine_pump(eng);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct http_engine *eng = userp;
    struct sock_ctx *sc = socketp;
    short kind;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            event_free(sc->ev);
            *sc->pprev = sc->next;
            if (sc->next)
                sc->next->pprev = sc->pprev;
            free(sc);
            curl_multi_assign(eng->multi, s, NULL);
        }
        return 0;
    }
    kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!sc) {
        if (!(sc = calloc(1, sizeof *sc)))
            return -1;
        sc->eng = eng;
        if (!(sc->ev = event_new(eng->eb, s, kind, on_socket_event, sc))) {
            free(sc);
            return -1;
        }
        sc->next = eng->socks;
        if (sc->next)
            sc->next->pprev = &sc->next;
        sc->pprev = &eng->socks;
        eng->socks = sc;
        curl_multi_assign(eng->multi, s, sc);
    } else {
        event_del(sc->ev);
        event_assign(sc->ev, eng->eb, s, kind, on_socket_event, sc);
    }
    return event_add(sc->ev, NULL);
}

/* curl alone drives this timer: deleting it elsewhere could lose the timeout of a transfer
 * added from a completion handler. */
static int on_curl_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_engine *eng = userp;
    struct timeval tv = ms_to_tv(timeout_ms);

    (void)multi;
    if (timeout_ms < 0)
        return evtimer_del(eng->curl_timer);
    return evtimer_add(eng->curl_timer, &tv);
}

static void on_curl_timer(evutil_socket_t fd, short what, void *arg)
{
    struct http_engine *eng = arg;
    int running;

    (void)fd;
    (void)what;
    curl_multi_socket_action(eng->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    engine_collect(eng);
    engine_pump(eng);
}

/* ---- starting and finishing requests ---- */

static void engine_finish(struct http_engine *eng, struct http_request *req, CURLcode code, long status);

static CURL *engine_easy(struct http_engine *eng)
{
    if (eng->npool > 0) {
        CURL *easy = eng->pool[--eng->npool];
        curl_easy_reset(easy);
        return easy;
    }
    return curl_easy_init();
}

static void engine_easy_release(struct http_engine *eng, CURL *easy)
{
    if (eng->npool == eng->pool_cap) {
        size_t cap = eng->pool_cap ? eng->pool_cap * 2 : 16;
        CURL **pool = realloc(eng->pool, cap * sizeof *pool);
        if (!pool) {
            curl_easy_cleanup(easy);
            return;
        }
        eng->pool = pool;
        eng->pool_cap = cap;
    }
    eng->pool[eng->npool++] = easy;
}

static int engine_wire_headers(struct http_request *req)
{
    struct curl_slist *l;

    for (int pass = 0; pass < 2; pass++)
        for (l = pass ? req->late : req->headers; l; l = l->next) {
            struct curl_slist *w = curl_slist_append(req->wire, l->data);
            if (!w)
                return -1;
            req->wire = w;
        }
    /* No "Expect: 100-continue" round trip before large bodies. */
    if (!(l = curl_slist_append(req->wire, "Expect:")))
        return -1;
    req->wire = l;
    return 0;
}

void http_engine_start(struct http_engine *eng, struct http_request *req)
{
    CURL *easy = engine_easy(eng);
    CURLcode code = CURLE_ABORTED_BY_CALLBACK;   /* the before-send hook refused */
    char line[8192];

    http_request_clear_attempt(req);
    if (!easy)
        goto fail;
    req->easy = easy;
    if (req->before && req->before(req, req->before_arg, req->errbuf, sizeof req->errbuf) != 0)
        goto fail_ready;
    if (eng->oauth && !req->bypass && eng->token) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", eng->token);
        req->token_gen = eng->token_gen;
        if (http_request_late_header(req, line) != 0)
            goto fail;
    }
    if (engine_wire_headers(req) != 0)
        goto fail;
    curl_easy_setopt(easy, CURLOPT_URL, req->url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)eng->conf.timeout_ms);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_PROXY, "");        /* no proxy from the environment: the guard checks the target */
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, eng->conf.tls_verify ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, eng->conf.tls_verify ? 2L : 0L);
    if (eng->conf.ca_file)
        curl_easy_setopt(easy, CURLOPT_CAINFO, eng->conf.ca_file);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "sluice");
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_curl_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, req);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_curl_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->errbuf);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->wire);
    if (strcmp(req->method, "GET") == 0 && !req->body) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body || strcmp(req->method, "POST") == 0) {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        }
    }
    if (curl_multi_add_handle(eng->multi, easy) != CURLM_OK)
        goto fail;
    req->on_wire = 1;
    TAILQ_INSERT_TAIL(&eng->on_wire, req, link);
    if (!req->bypass)
        eng->nwire++;
    eng->stats.requests++;
    return;
fail:
    snprintf(req->errbuf, sizeof req->errbuf, "cannot start the request (out of memory)");
    code = CURLE_OUT_OF_MEMORY;
fail_ready:
    if (easy) {
        req->easy = NULL;
        engine_easy_release(eng, easy);
    }
    engine_finish(eng, req, code, 0);
}

static void engine_collect(struct http_engine *eng)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(eng->multi, &left))) {
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        struct http_request *req;
        char *priv = NULL;
        long status = 0;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        req = (struct http_request *)priv;
        if (code == CURLE_OK)
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(eng->multi, easy);
        req->easy = NULL;
        engine_easy_release(eng, easy);
        TAILQ_REMOVE(&eng->on_wire, req, link);
        req->on_wire = 0;
        if (!req->bypass)
            eng->nwire--;
        engine_finish(eng, req, code, status);
    }
}

/* One line saying what went wrong, for logs and dead letters: the host (never the path, which
 * may carry a secret), the status and the start of the body. */
void http_engine_result_error(struct http_engine *eng, struct http_request *req, CURLcode code, long status,
                              char *out, size_t outlen)
{
    if (req->refused[0]) {
        snprintf(out, outlen, "%s", req->refused);
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        snprintf(out, outlen, "%s %s: no complete answer within %lld ms (timeout_ms)", req->method, req->host,
                 eng->conf.timeout_ms);
    } else if (code != CURLE_OK) {
        snprintf(out, outlen, "%s %s: %s%s%s", req->method, req->host, curl_easy_strerror(code),
                 req->errbuf[0] ? ": " : "", req->errbuf);
    } else {
        char shown[ERROR_BODY_SHOWN + 1];
        size_t n = req->resp.len < ERROR_BODY_SHOWN ? req->resp.len : ERROR_BODY_SHOWN;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)req->resp.p[i];
            shown[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        }
        shown[n] = '\0';
        while (n > 0 && shown[n - 1] == ' ')
            shown[--n] = '\0';
        snprintf(out, outlen, "HTTP %ld from %s %s%s%s", status, req->method, req->host, n ? ": " : "", shown);
    }
}

static void engine_park(struct http_engine *eng, struct http_request *req, const char *error)
{
    struct timeval every = { PARK_LOG_EVERY_S, 0 };

    TAILQ_INSERT_HEAD(&eng->queue, req, link);
    req->queued = 1;
    eng->nqueued++;
    if (!eng->parked) {
        eng->parked = 1;
        eng->parked_at_ms = mono_ms();
        snprintf(eng->park_reason, sizeof eng->park_reason, "%s", error);
        event_add(eng->park_timer, &every);
    }
    LOG_AS(LOG_ERROR, eng->who, "PARKED: %s; the endpoint is gone, so nothing more is sent and nothing is "
             "dead-lettered: %zu request(s) held, their partitions pause; fix the url and restart sluice",
             error, eng->nqueued);
}

static void on_park_timer(evutil_socket_t fd, short what, void *arg)
{
    struct http_engine *eng = arg;

    (void)fd;
    (void)what;
    LOG_AS(LOG_ERROR, eng->who, "PARKED for %" PRId64 " s: %s; %zu request(s) held; fix the url and restart sluice",
             (mono_ms() - eng->parked_at_ms) / 1000, eng->park_reason, eng->nqueued);
}

static void engine_finish(struct http_engine *eng, struct http_request *req, CURLcode code, long status)
{
    int64_t now = mono_ms(), delay;
    int transport_failed = code != CURLE_OK;
    /* The SSRF guard's refusal is a verdict on the destination, not a network fault: retrying
     * cannot help, and it says nothing about the server's health (the breaker). */
    int refused = req->refused[0] != '\0';
    enum http_class cls = refused ? HTTP_PERMANENT : http_classify(transport_failed, status);
    struct http_result res;
    char error[1024];
    int change = 0;

    if (req->bypass) {
        http_oauth_token_done(eng, req, code, status);
        return;
    }
    if (eng->responses_by_class && !refused)
        eng->responses_by_class[transport_failed || status < 100 || status > 599 ? 0 : status / 100]++;
    error[0] = '\0';
    if (cls != HTTP_OK)
        http_engine_result_error(eng, req, code, status, error, sizeof error);
    /* Retry-After on any answer we retry (408, 429, 5xx): the server says when it can take more. */
    if (cls == HTTP_RETRY && status != 0 && req->retry_after[0] &&
        http_retry_after_parse(req->retry_after, time(NULL), &delay) == 0) {
        if (delay > RETRY_AFTER_CAP_MS)
            delay = RETRY_AFTER_CAP_MS;
        if (now + delay > eng->not_before_ms)
            eng->not_before_ms = now + delay;
        LOG_AS(LOG_WARN, eng->who, "HTTP %ld from %s: sending nothing for %" PRId64 " ms (Retry-After)",
                 status, req->host, delay);
    }
    if (status == 429 && eng->limited) {
        http_bucket_slow_down(&eng->bucket, now);
        LOG_AS(LOG_WARN, eng->who, "HTTP 429 from %s: rate lowered to %.2f requests/s (configured %.2f)",
                 req->host, eng->bucket.rate, eng->bucket.configured);
    }
    if (!refused)
        change = http_breaker_record(&eng->breaker, cls == HTTP_RETRY && status != 429, now);
    if (change > 0)
        LOG_AS(LOG_ERROR, eng->who, "circuit open after %u consecutive failures (last: %s): holding requests "
                 "for %" PRId64 " ms, then one probe", eng->breaker.failures, error, eng->breaker.cooldown_ms);
    else if (change < 0)
        LOG_AS(LOG_INFO, eng->who, "circuit closed: %s answered again", req->host);
    if (status == 401 && eng->oauth && !req->auth_retried) {
        /* The token may have been revoked or expired early: fetch a new one, resend once. */
        req->auth_retried = 1;
        if (req->token_gen == eng->token_gen && eng->token) {
            free(eng->token);
            eng->token = NULL;
            LOG_AS(LOG_WARN, eng->who, "HTTP 401 from %s: fetching a new OAuth2 token and sending again", req->host);
        }
        TAILQ_INSERT_HEAD(&eng->queue, req, link);
        req->queued = 1;
        eng->nqueued++;
        return;
    }
    if (cls == HTTP_GONE && eng->conf.on_gone == HTTP_GONE_PARK) {
        eng->stats.gone++;
        engine_park(eng, req, error);
        return;
    }
    if (cls == HTTP_GONE)
        cls = HTTP_PERMANENT;
    switch (cls) {
    case HTTP_OK: eng->stats.ok++; break;
    case HTTP_RETRY: eng->stats.retried++; break;
    default: eng->stats.permanent++; break;
    }
    res = (struct http_result){ .cls = cls, .status = status, .error = error,
                                .body = req->resp.p ? req->resp.p : "", .body_len = req->resp.len,
                                .body_truncated = req->resp_truncated, .refused = refused };
    req->done(req, &res, req->arg);   /* the callee owns req now */
}

/* ---- the gates ---- */

static void engine_pump(struct http_engine *eng)
{
    int64_t wait = -1, w, now;
    struct http_request *req;

    if (eng->pumping || eng->freeing)
        return;
    eng->pumping = 1;
    while (!TAILQ_EMPTY(&eng->queue) && !eng->parked && eng->nwire < (size_t)eng->conf.max_in_flight) {
        now = mono_ms();
        if (eng->oauth && (!eng->token || (eng->token_expires_ms && now >= eng->token_expires_ms))) {
            if (eng->token_fetching)
                break;                     /* its completion pumps again */
            if (now < eng->token_retry_ms) {
                wait = eng->token_retry_ms - now;
                break;
            }
            http_oauth_token_fetch(eng);
            continue;
        }
        if (now < eng->not_before_ms) {
            wait = eng->not_before_ms - now;
            break;
        }
        if (eng->limited && (w = http_bucket_wait(&eng->bucket, now)) > 0) {
            wait = w;
            break;
        }
        w = http_breaker_allow(&eng->breaker, now);
        if (w != 0) {
            if (w > 0)
                wait = w;
            break;                         /* w < 0: the probe's completion pumps again */
        }
        if (eng->limited)
            http_bucket_take(&eng->bucket, now);
        req = TAILQ_FIRST(&eng->queue);
        TAILQ_REMOVE(&eng->queue, req, link);
        req->queued = 0;
        eng->nqueued--;
        http_engine_start(eng, req);
    }
    if (wait >= 0) {
        struct timeval tv = ms_to_tv(wait);
        evtimer_del(eng->pump_timer);
        evtimer_add(eng->pump_timer, &tv);
    }
    eng->pumping = 0;
}

static void on_pump_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine_pump(arg);
}

void http_engine_submit(struct http_engine *eng, struct http_request *req)
{
    req->eng = eng;
    TAILQ_INSERT_TAIL(&eng->queue, req, link);
    req->queued = 1;
    eng->nqueued++;
    engine_pump(eng);
}

/* ---- life ---- */

struct http_engine *http_engine_new(struct event_base *eb, const char *who, const struct http_engine_conf *conf,
                                    char *err, size_t errlen)
{
    struct http_engine *eng = calloc(1, sizeof *eng);

    if (!eng) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(eng);
        snprintf(err, errlen, "libcurl cannot initialise");
        return NULL;
    }
    snprintf(eng->who, sizeof eng->who, "%s", who);
    eng->eb = eb;
    eng->conf = *conf;
    eng->conf.ca_file = NULL;
    TAILQ_INIT(&eng->queue);
    TAILQ_INIT(&eng->on_wire);
    if ((conf->ca_file && !(eng->conf.ca_file = strdup(conf->ca_file))) || !(eng->multi = curl_multi_init()) ||
        !(eng->curl_timer = evtimer_new(eng->eb, on_curl_timer, eng)) ||
        !(eng->pump_timer = evtimer_new(eng->eb, on_pump_timer, eng)) ||
        !(eng->park_timer = event_new(eng->eb, -1, EV_PERSIST, on_park_timer, eng))) {
        snprintf(err, errlen, "out of memory");
        http_engine_free(eng);
        return NULL;
    }
    curl_multi_setopt(eng->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(eng->multi, CURLMOPT_SOCKETDATA, eng);
    curl_multi_setopt(eng->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer_set);
    curl_multi_setopt(eng->multi, CURLMOPT_TIMERDATA, eng);
    curl_multi_setopt(eng->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(eng->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conf->max_in_flight);
    curl_multi_setopt(eng->multi, CURLMOPT_MAXCONNECTS, (long)conf->max_in_flight + 4);
    if (conf->rate_per_second > 0) {
        eng->limited = 1;
        http_bucket_init(&eng->bucket, (double)conf->rate_per_second, (double)conf->rate_burst, mono_ms());
    }
    http_breaker_init(&eng->breaker, (unsigned)conf->breaker_failures, conf->breaker_cooldown_ms);
    if (!conf->tls_verify)
        LOG_AS(LOG_WARN, eng->who, "tls_verify is off: any certificate is accepted, so anyone on the path can read and change the requests");
    return eng;
}

struct http_engine *http_engine_for_sink(struct sink *sk, const struct http_engine_conf *conf, char *err,
                                         size_t errlen)
{
    char who[160];
    struct http_engine *eng;

    sink_subject(sk, who, sizeof who);
    if ((eng = http_engine_new(sk->eb, who, conf, err, errlen)))
        eng->responses_by_class = sk->http_responses;
    return eng;
}

void http_engine_free(struct http_engine *eng)
{
    struct http_request *req;

    if (!eng)
        return;
    eng->freeing = 1;
    while ((req = TAILQ_FIRST(&eng->on_wire))) {
        TAILQ_REMOVE(&eng->on_wire, req, link);
        curl_multi_remove_handle(eng->multi, req->easy);
        curl_easy_cleanup(req->easy);
        http_request_free(req);
    }
    while ((req = TAILQ_FIRST(&eng->queue))) {
        TAILQ_REMOVE(&eng->queue, req, link);
        http_request_free(req);
    }
    for (size_t i = 0; i < eng->npool; i++)
        curl_easy_cleanup(eng->pool[i]);
    free(eng->pool);
    if (eng->multi)
        curl_multi_cleanup(eng->multi);   /* may still report sockets removed: eng is valid */
    while (eng->socks) {
        struct sock_ctx *sc = eng->socks;
        eng->socks = sc->next;
        event_free(sc->ev);
        free(sc);
    }
    if (eng->curl_timer)
        event_free(eng->curl_timer);
    if (eng->pump_timer)
        event_free(eng->pump_timer);
    if (eng->park_timer)
        event_free(eng->park_timer);
    free(eng->conf.ca_file);
    free(eng->token_url);
    http_secret_free(eng->client_id);
    http_secret_free(eng->client_secret);
    free(eng->scope);
    free(eng->audience);
    http_secret_free(eng->token);
    free(eng);
    curl_global_cleanup();
}

const struct http_engine_conf *http_engine_config(const struct http_engine *eng)
{
    return &eng->conf;
}

const struct http_engine_stats *http_engine_stats(const struct http_engine *eng)
{
    return &eng->stats;
}

int http_engine_ready(const struct http_engine *eng, char *why, size_t whylen)
{
    if (eng->parked) {
        snprintf(why, whylen, "parked: %s", eng->park_reason);
        return 0;
    }
    if (eng->breaker.state == BREAKER_OPEN) {
        snprintf(why, whylen, "circuit open after %u consecutive failures", eng->breaker.failures);
        return 0;
    }
    if (eng->oauth && !eng->token && eng->token_failures > 0) {
        snprintf(why, whylen, "no OAuth2 token (%u failed requests)", eng->token_failures);
        return 0;
    }
    return 1;
}
