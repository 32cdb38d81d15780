/* The redis sink's connection: one hiredis connection on the loop, requests pipelined on it
 * (their replies come in the order they were sent), our own timers for connect and command
 * timeouts (hiredis 0.14 has none), reconnection with full-jitter backoff, names resolved with
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
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "redis_int.h"
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
    return rs->ac && rs->state == CONN_READY && !(rs->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
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

/* Drops the connection (ours to free): sent requests get their NULL replies from hiredis
 * (retried), waiting ones are failed, and a reconnect is scheduled. */
static void conn_drop(struct redis_sink *rs, const char *why)
{
    redisAsyncContext *ac = rs->ac;

    snprintf(rs->last_error, sizeof rs->last_error, "%s", why);
    rs->ac = NULL;
    rs->state = CONN_IDLE;
    rs->script_reloading = 0;
    evtimer_del(rs->connect_timer);
    evtimer_del(rs->command_timer);
    if (rs->dns_req) {
        struct evdns_getaddrinfo_request *dr = rs->dns_req;
        rs->dns_req = NULL;
        evdns_getaddrinfo_cancel(dr);
    }
    if (ac)
        redisAsyncFree(ac);   /* runs the pending callbacks with NULL (deferred inside a callback) */
    pending_fail_all(rs, rs->last_error);
    reconnect_schedule(rs);
}

/* A connection attempt or connection that hiredis ends itself (it frees the context): record
 * why, fail what waits, and schedule a reconnect. */
static void conn_lost(struct redis_sink *rs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_lost(struct redis_sink *rs, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rs->last_error, sizeof rs->last_error, fmt, ap);
    va_end(ap);
    rs->ac = NULL;
    rs->state = CONN_IDLE;
    rs->script_reloading = 0;
    evtimer_del(rs->command_timer);
    evtimer_del(rs->connect_timer);
    pending_fail_all(rs, rs->last_error);
    reconnect_schedule(rs);
}

void on_command_timeout(evutil_socket_t fd, short what, void *arg)
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

void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct redis_sink *rs = arg;
    char why[128];

    (void)fd;
    (void)what;
    if (rs->state == CONN_READY || rs->state == CONN_IDLE)
        return;
    snprintf(why, sizeof why, "no connection within connect_timeout_ms (%lld ms)", rs->connect_timeout_ms);
    conn_drop(rs, why);
}

void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_connect(arg);
}

/* Every reply, or NULL when the connection went away first. */
static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct redis_req *req = privdata;
    struct redis_sink *rs = req->rs;
    const redisReply *reply = r;
    char msg[512];

    (void)ac;
    req_list_remove(&rs->inflight, req);
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
            break;   /* the connection is going: its disconnect callback handles it */
        if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(msg, sizeof msg, "%s: %s",
                     req->kind == REQ_AUTH ? "AUTH" : req->kind == REQ_SELECT ? "SELECT" : "SCRIPT LOAD", reply->str);
            /* LOADING after a restart passes; a wrong password or a refused SELECT does not */
            sink_log(&rs->super, strncmp(reply->str, "LOADING", 7) == 0 || strncmp(reply->str, "BUSY", 4) == 0
                     ? LOG_WARN : LOG_ERROR, "redis %s:%d: %s",
                     rs->url.host, rs->url.port, msg);
            free(req);
            if (rs->ac == ac)
                conn_drop(rs, msg);
            return;
        }
        if (req->kind == REQ_SCRIPT) {
            if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
                free(req);
                if (rs->ac == ac)
                    conn_drop(rs, "SCRIPT LOAD: unexpected reply");
                return;
            }
            memcpy(rs->sha, reply->str, 40);
            rs->sha[40] = '\0';
            rs->script_reloading = 0;
            if (rs->state == CONN_HANDSHAKE && rs->ac == ac) {
                rs->state = CONN_READY;
                evtimer_del(rs->connect_timer);
                sink_log(&rs->super, rs->failures ? LOG_WARN : LOG_INFO, "connected to redis %s:%d db %d%s",
                         rs->url.host, rs->url.port, rs->url.db, rs->failures ? " again" : "");
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

/* Sends one request now; on failure to queue it (the context is going), fails it. */
static void req_send(struct redis_sink *rs, struct redis_req *req, const char *cmd, size_t len)
{
    int was_idle = rs->inflight.head == NULL;

    req->sent_ms = mono_ms();
    if (redisAsyncFormattedCommand(rs->ac, on_reply, req, cmd, len) != REDIS_OK) {
        req_fail(rs, req, "cannot send to redis (connection closing)");
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

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis_sink *rs = ac->data;

    if (rs->stopped || ac != rs->ac)
        return;   /* ours: conn_drop already took care */
    rs->count.disconnects++;
    /* hiredis frees the context after this callback */
    conn_lost(rs, "connection lost: %s", status == REDIS_OK ? "closed" : ac->errstr);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct redis_sink *rs = ac->data;
    struct redis_req *req;

    if (rs->stopped || ac != rs->ac)
        return;
    if (status != REDIS_OK) {
        conn_lost(rs, "cannot connect: %s", ac->errstr);   /* hiredis frees it after this callback */
        return;
    }
    rs->state = CONN_HANDSHAKE;
    redisEnableKeepAlive(&ac->c);
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
    /* not from inside hiredis' connect callback: the connect timer drops it on the next turn */
    {
        snprintf(rs->last_error, sizeof rs->last_error, "out of memory");
        evtimer_add(rs->connect_timer, &ZERO_TV);
    }
}

static void connect_to(struct redis_sink *rs, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, rs->url.port);

    if (!ac || ac->err) {
        conn_lost(rs, "cannot connect: %s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        return;
    }
    ac->data = rs;
    if (redisLibeventAttach(ac, rs->super.eb) != REDIS_OK) {
        redisAsyncFree(ac);
        conn_lost(rs, "cannot watch the connection");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rs->ac = ac;
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
