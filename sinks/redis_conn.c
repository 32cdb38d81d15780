/* The redis sink's connection: one transport (TCP or TLS, redis_transport.c) on the loop,
 * requests pipelined on it (their replies come in the order they were sent), timers for
 * connect and command timeouts, reconnection with full-jitter backoff, names resolved with
 * evdns so that a slow DNS never blocks the loop. What the replies mean is redis.c's. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/util.h>
#include <hiredis/hiredis.h>

#include "redis_int.h"
#include "redis_transport.h"
#include "lib/backoff.h"
#include "lib/clock.h"

void req_list_push(struct req_list *l, struct redis_req *req)
{
    req->next = NULL;
    if (l->tail)
        l->tail->next = req;
    else
        l->head = req;
    l->tail = req;
    l->count++;
}

struct redis_req *req_list_pop(struct req_list *l)
{
    struct redis_req *req = l->head;
    if (req) {
        l->head = req->next;
        if (!l->head)
            l->tail = NULL;
        l->count--;
        req->next = NULL;
    }
    return req;
}

void req_list_remove(struct req_list *l, struct redis_req *req)
{
    struct redis_req *prev = NULL;
    for (struct redis_req *it = l->head; it; prev = it, it = it->next) {
        if (it != req)
            continue;
        if (prev)
            prev->next = it->next;
        else
            l->head = it->next;
        if (l->tail == it)
            l->tail = prev;
        l->count--;
        it->next = NULL;
        return;
    }
}

/* ---- the connection ---- */

int conn_usable(const struct redis_sink *rs)
{
    return rs->transport && rs->state == CONN_READY;
}

/* Runs while connected, for the oldest command in flight (the handshake has connect_timeout_ms). */
static void command_timer_arm(struct redis_sink *rs)
{
    struct redis_req *head = rs->inflight.head;
    int64_t delay;
    struct timeval tv;

    if (!head || rs->state != CONN_READY) {
        evtimer_del(rs->command_timer);
        return;
    }
    delay = head->sent_ms + rs->command_timeout_ms - mono_ms();
    tv = ms_to_tv(delay > 0 ? delay : 0);
    evtimer_add(rs->command_timer, &tv);
}

/* Ends a request without a reply (never sent, or its connection is gone). */
static void req_fail(struct redis_sink *rs, struct redis_req *req, const char *why)
{
    if (!rs->stopped) {
        if (req->kind == REQ_BATCH) {
            req->batch->unreachable = 1;
            sink_batch_done(req->batch, SINK_RETRY, why);
        }
        else if (req->kind == REQ_LOAD)
            sink_positions_done(req->load, 0, why);
    }
    free(req);
}

static void pending_fail_all(struct redis_sink *rs, const char *why)
{
    struct redis_req *req;
    while ((req = req_list_pop(&rs->pending)))
        req_fail(rs, req, why);
}

static void reconnect_schedule(struct redis_sink *rs)
{
    int64_t delay;
    struct timeval tv;

    if (rs->stopped)
        return;
    rs->failures++;
    delay = backoff_full_jitter(rs->failures, rs->reconnect_min_ms, rs->reconnect_max_ms);
    if (rs->failures == 1 || rs->failures % 10 == 0)
        sink_log(&rs->super, LOG_WARN, "redis %s:%d: %s; reconnecting in %" PRId64 " ms (attempt %u)",
                 rs->url.host, rs->url.port, rs->last_error, delay, rs->failures);
    tv = ms_to_tv(delay);
    evtimer_add(rs->reconnect_timer, &tv);
}

static void req_answer(struct redis_sink *rs, struct redis_req *req, const redisReply *reply);

/* Drops the connection (always ours to free): sent requests get NULL replies (a batch is
 * retried and applied once), waiting ones are failed, and a reconnect is scheduled. */
static void conn_drop(struct redis_sink *rs, const char *why)
{
    struct redis_req *req;

    snprintf(rs->last_error, sizeof rs->last_error, "%s", why);
    redis_transport_free(rs->transport);   /* no event from it after this */
    rs->transport = NULL;
    rs->state = CONN_IDLE;
    rs->script_reloading = 0;
    evtimer_del(rs->connect_timer);
    evtimer_del(rs->command_timer);
    if (rs->dns_req) {
        struct evdns_getaddrinfo_request *dr = rs->dns_req;
        rs->dns_req = NULL;
        evdns_getaddrinfo_cancel(dr);
    }
    while ((req = req_list_pop(&rs->inflight)))
        req_answer(rs, req, NULL);
    pending_fail_all(rs, rs->last_error);
    reconnect_schedule(rs);
}

static void conn_lost(struct redis_sink *rs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_lost(struct redis_sink *rs, const char *fmt, ...)
{
    char why[sizeof rs->last_error];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    conn_drop(rs, why);
}

static void on_command_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct redis_sink *rs = arg;
    struct redis_req *head = rs->inflight.head;
    char why[128];

    (void)fd;
    (void)what;
    if (!head)
        return;
    if (mono_ms() - head->sent_ms < rs->command_timeout_ms) {
        command_timer_arm(rs);
        return;
    }
    rs->count.timeouts++;
    snprintf(why, sizeof why, "no reply within command_timeout_ms (%lld ms)", rs->command_timeout_ms);
    sink_log(&rs->super, LOG_WARN, "redis %s:%d: %s; dropping the connection (%zu commands in flight)",
             rs->url.host, rs->url.port, why, rs->inflight.count);
    conn_drop(rs, why);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct redis_sink *rs = arg;
    char why[128];

    (void)fd;
    (void)what;
    if (rs->state == CONN_READY || rs->state == CONN_IDLE)
        return;
    snprintf(why, sizeof why, "no connection within connect_timeout_ms (%lld ms)%s", rs->connect_timeout_ms,
             rs->state == CONN_CONNECTING && rs->url.tls ? " (TCP connect and TLS handshake)" : "");
    conn_drop(rs, why);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_connect(arg);
}

/* A request's reply, or NULL when the connection went away first; frees the request. */
static void req_answer(struct redis_sink *rs, struct redis_req *req, const redisReply *reply)
{
    char msg[512];

    if (rs->stopped) {
        free(req);
        return;
    }
    switch (req->kind) {
    case REQ_BATCH:
        rs->batches_in_flight--;
        batch_on_reply(rs, req->batch, reply);
        break;
    case REQ_LOAD:
        load_on_reply(rs, req->load, reply);
        break;
    case REQ_AUTH:
    case REQ_SELECT:
    case REQ_SCRIPT:
        if (!reply)
            break;   /* the connection is going: conn_drop handles it */
        if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(msg, sizeof msg, "%s: %s",
                     req->kind == REQ_AUTH ? "AUTH" : req->kind == REQ_SELECT ? "SELECT" : "SCRIPT LOAD", reply->str);
            /* LOADING after a restart passes; a wrong password or a refused SELECT does not */
            sink_log(&rs->super, strncmp(reply->str, "LOADING", 7) == 0 || strncmp(reply->str, "BUSY", 4) == 0
                     ? LOG_WARN : LOG_ERROR, "redis %s:%d: %s",
                     rs->url.host, rs->url.port, msg);
            free(req);
            conn_drop(rs, msg);
            return;
        }
        if (req->kind == REQ_SCRIPT) {
            if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
                free(req);
                conn_drop(rs, "SCRIPT LOAD: unexpected reply");
                return;
            }
            memcpy(rs->sha, reply->str, 40);
            rs->sha[40] = '\0';
            rs->script_reloading = 0;
            if (rs->state == CONN_HANDSHAKE) {
                rs->state = CONN_READY;
                evtimer_del(rs->connect_timer);
                sink_log(&rs->super, rs->failures ? LOG_WARN : LOG_INFO, "connected to redis %s:%d db %d%s%s",
                         rs->url.host, rs->url.port, rs->url.db, rs->url.tls ? " over TLS" : "",
                         rs->failures ? " again" : "");
                rs->failures = 0;
                rs->last_error[0] = '\0';
            }
        }
        break;
    }
    free(req);
    command_timer_arm(rs);
    conn_pump(rs);
}

/* Replies come in the order of the commands: each answers the oldest request in flight. */
static void on_transport_reply(void *arg, const redisReply *reply)
{
    struct redis_sink *rs = arg;
    struct redis_req *req = req_list_pop(&rs->inflight);

    if (!req) {
        conn_drop(rs, "a reply to no command: the connection is out of step");
        return;
    }
    req_answer(rs, req, reply);
}

/* Sends one request now; a request that cannot be queued fails. */
static void req_send(struct redis_sink *rs, struct redis_req *req, const char *cmd, size_t len)
{
    int was_idle = rs->inflight.head == NULL;

    req->sent_ms = mono_ms();
    if (!rs->transport || redis_transport_send(rs->transport, cmd, len) != 0) {
        req_fail(rs, req, rs->transport ? "out of memory" : "cannot send to redis (connection closing)");
        return;
    }
    req_list_push(&rs->inflight, req);
    if (req->kind == REQ_BATCH)
        rs->batches_in_flight++;
    if (was_idle)
        command_timer_arm(rs);
}

void req_send_argv(struct redis_sink *rs, struct redis_req *req, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);

    if (len < 0) {
        req_fail(rs, req, "out of memory");
        return;
    }
    req_send(rs, req, cmd, (size_t)len);
    free(cmd);
}

void req_start(struct redis_sink *rs, struct redis_req *req)
{
    char err[256];

    if (req->kind == REQ_BATCH) {
        if (batch_command(rs, req->batch, err, sizeof err) != 0) {
            req_fail(rs, req, err);
            return;
        }
        req_send(rs, req, rs->cmd.p, rs->cmd.len);
        /* a pipeline of large batches should not keep a large scratch buffer forever */
        if (rs->cmd.cap > (8u << 20)) {
            buf_free(&rs->cmd);
        }
    } else {
        struct sink_positions *load = req->load;
        size_t argc = 2 + load->count;
        const char **argv = calloc(argc, sizeof *argv);
        size_t *lens = calloc(argc, sizeof *lens);
        char *fields = malloc(load->count * (strlen(load->topic) + 16) + 1);
        size_t off = 0;

        if (!argv || !lens || !fields) {
            free(argv);
            free(lens);
            free(fields);
            req_fail(rs, req, "out of memory");
            return;
        }
        argv[0] = "HMGET";
        lens[0] = 5;
        argv[1] = rs->positions_key;
        lens[1] = strlen(rs->positions_key);
        for (size_t i = 0; i < load->count; i++) {
            int n = sprintf(fields + off, "%s:%" PRId32, load->topic, load->partitions[i]);
            argv[2 + i] = fields + off;
            lens[2 + i] = (size_t)n;
            off += (size_t)n + 1;
        }
        req_send_argv(rs, req, (int)argc, argv, lens);
        free(argv);
        free(lens);
        free(fields);
    }
}

/* Sends what waits, as far as the connection and max_in_flight allow. */
void conn_pump(struct redis_sink *rs)
{
    while (rs->pending.head && conn_usable(rs)) {
        struct redis_req *req = rs->pending.head;
        if (req->kind == REQ_BATCH && rs->batches_in_flight >= (size_t)rs->max_in_flight)
            break;
        req_start(rs, req_list_pop(&rs->pending));
    }
}


static void on_transport_close(void *arg, int was_open, const char *why)
{
    struct redis_sink *rs = arg;

    if (was_open)
        rs->count.disconnects++;
    conn_drop(rs, why);
}

/* Connected (with TLS: the server's certificate checked): authenticate, select, load the script. */
static void on_transport_open(void *arg)
{
    struct redis_sink *rs = arg;
    struct redis_req *req;

    rs->state = CONN_HANDSHAKE;
    if (rs->url.password) {
        const char *argv[] = { "AUTH", rs->url.user ? rs->url.user : rs->url.password, rs->url.password };
        size_t lens[] = { 4, strlen(argv[1]), strlen(rs->url.password) };
        if (!(req = calloc(1, sizeof *req)))
            goto oom;
        req->kind = REQ_AUTH;
        req->rs = rs;
        req_send_argv(rs, req, rs->url.user ? 3 : 2, argv, lens);
    }
    if (rs->url.db != 0) {
        char db[16];
        const char *argv[] = { "SELECT", db };
        size_t lens[] = { 6, (size_t)snprintf(db, sizeof db, "%d", rs->url.db) };
        if (!(req = calloc(1, sizeof *req)))
            goto oom;
        req->kind = REQ_SELECT;
        req->rs = rs;
        req_send_argv(rs, req, 2, argv, lens);
    }
    if (!(req = calloc(1, sizeof *req)))
        goto oom;
    req->kind = REQ_SCRIPT;
    req->rs = rs;
    script_send(rs, req);
    return;
oom:
    /* not from inside the transport's event: the connect timer drops it on the next turn */
    {
        snprintf(rs->last_error, sizeof rs->last_error, "out of memory");
        evtimer_add(rs->connect_timer, &ZERO_TV);
    }
}

static const struct redis_transport_events conn_events = {
    .on_open = on_transport_open,
    .on_reply = on_transport_reply,
    .on_close = on_transport_close,
};

static void connect_to(struct redis_sink *rs, const char *ip)
{
    char err[256];
    struct redis_transport *t = redis_transport_open(rs->super.eb, ip, rs->url.port, rs->url.tls ? rs->tls : NULL,
                                                     rs->url.host, &conn_events, rs, err, sizeof err);
    if (!t) {
        conn_lost(rs, "%s", err);
        return;
    }
    rs->transport = t;
    rs->state = CONN_CONNECTING;
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct redis_sink *rs = arg;
    char ip[INET6_ADDRSTRLEN] = "";

    if (result == EVUTIL_EAI_CANCEL)
        return;   /* stopped, or timed out: whoever cancelled moved on */
    rs->dns_req = NULL;
    if (result != 0 || !res) {
        if (res)
            evutil_freeaddrinfo(res);
        conn_lost(rs, "cannot resolve %s: %s", rs->url.host, evutil_gai_strerror(result));
        return;
    }
    if (res->ai_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip, sizeof ip);
    evutil_freeaddrinfo(res);
    connect_to(rs, ip);
}

/* One resolver per event loop, shared by every redis sink and never freed: a lookup cancelled
 * by stop() still delivers its EVUTIL_EAI_CANCEL later, from the loop, through the resolver,
 * which must therefore outlive any sink (a reload stops and frees sinks while the loop runs). */
struct dns_slot {
    struct event_base *eb;
    struct evdns_base *dns;
    struct dns_slot *next;
};
static struct dns_slot *dns_slots;

static struct evdns_base *resolver_for(struct event_base *eb)
{
    struct dns_slot *slot;

    for (slot = dns_slots; slot; slot = slot->next)
        if (slot->eb == eb)
            return slot->dns;
    if (!(slot = calloc(1, sizeof *slot)))
        return NULL;
    if (!(slot->dns = evdns_base_new(eb, EVDNS_BASE_INITIALIZE_NAMESERVERS))) {
        free(slot);
        return NULL;
    }
    slot->eb = eb;
    slot->next = dns_slots;
    dns_slots = slot;
    return slot->dns;
}

static int host_is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Starts a connection attempt: resolve (when the host is a name), connect, handshake. */
void conn_connect(struct redis_sink *rs)
{
    struct timeval tv = ms_to_tv(rs->connect_timeout_ms);

    if (rs->stopped || rs->state != CONN_IDLE)
        return;
    evtimer_add(rs->connect_timer, &tv);
    if (host_is_numeric(rs->url.host)) {
        connect_to(rs, rs->url.host);
        return;
    }
    {
        struct evdns_base *dns = resolver_for(rs->super.eb);
        struct evutil_addrinfo hints;
        struct evdns_getaddrinfo_request *dr;
        if (!dns) {
            conn_lost(rs, "cannot set up name resolution");
            return;
        }
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        rs->state = CONN_RESOLVING;
        /* may answer at once (a name in /etc/hosts): then it returns NULL and the state moved */
        dr = evdns_getaddrinfo(dns, rs->url.host, NULL, &hints, on_resolved, rs);
        if (dr && rs->state == CONN_RESOLVING)
            rs->dns_req = dr;
    }
}

/* ---- the connection's life, for the sink's start, stop and destroy ---- */

int conn_start(struct redis_sink *rs, char *err, size_t errlen)
{
    struct event_base *eb = rs->super.eb;

    /* start may follow a stop: a reload that fails starts the previous configuration again */
    if (!rs->reconnect_timer)
        rs->reconnect_timer = evtimer_new(eb, on_reconnect_timer, rs);
    if (!rs->connect_timer)
        rs->connect_timer = evtimer_new(eb, on_connect_timeout, rs);
    if (!rs->command_timer)
        rs->command_timer = evtimer_new(eb, on_command_timeout, rs);
    if (!rs->reconnect_timer || !rs->connect_timer || !rs->command_timer) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rs->failures = 0;
    rs->last_error[0] = '\0';
    rs->state = CONN_IDLE;
    conn_connect(rs);   /* asynchronous: batches wait for it, or retry */
    return 0;
}

/* After rs->stopped is set: no verdict from here on (the router settles what was in flight). */
void conn_stop(struct redis_sink *rs)
{
    struct redis_req *req;

    if (rs->reconnect_timer)
        evtimer_del(rs->reconnect_timer);
    if (rs->connect_timer)
        evtimer_del(rs->connect_timer);
    if (rs->command_timer)
        evtimer_del(rs->command_timer);
    if (rs->dns_req) {
        struct evdns_getaddrinfo_request *dr = rs->dns_req;
        rs->dns_req = NULL;
        evdns_getaddrinfo_cancel(dr);
    }
    redis_transport_free(rs->transport);
    rs->transport = NULL;
    while ((req = req_list_pop(&rs->inflight)))
        free(req);
    while ((req = req_list_pop(&rs->pending)))
        free(req);
    rs->batches_in_flight = 0;
    rs->state = CONN_IDLE;
}

void conn_release(struct redis_sink *rs)
{
    if (rs->reconnect_timer)
        event_free(rs->reconnect_timer);
    if (rs->connect_timer)
        event_free(rs->connect_timer);
    if (rs->command_timer)
        event_free(rs->command_timer);
    rs->reconnect_timer = rs->connect_timer = rs->command_timer = NULL;
}
