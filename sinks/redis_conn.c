/* The redis sink's connections: each one transport (TCP or TLS, redis_transport.c) on the
 * loop, requests pipelined on it (their replies come in the order they were sent), timers for
 * connect and command timeouts, reconnection with full-jitter backoff, names resolved with
 * evdns so that a slow DNS never blocks the loop. What the replies mean is redis.c's (and, for
 * the optimistic route, redis_tx.c's). */
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

int conn_usable(const struct redis_conn *c)
{
    return c->transport && c->state == CONN_READY;
}

/* Runs while connected, for the oldest command in flight (the handshake has connect_timeout_ms). */
static void command_timer_arm(struct redis_conn *c)
{
    struct redis_req *head = c->inflight.head;
    int64_t delay;
    struct timeval tv;

    if (!head || c->state != CONN_READY) {
        evtimer_del(c->command_timer);
        return;
    }
    delay = head->sent_ms + c->rs->command_timeout_ms - mono_ms();
    tv = ms_to_tv(delay > 0 ? delay : 0);
    evtimer_add(c->command_timer, &tv);
}

/* Ends a request without a reply (never sent, or its connection is gone). */
static void req_fail(struct redis_conn *c, struct redis_req *req, const char *why)
{
    if (!c->rs->stopped) {
        if (req->kind == REQ_TX)
            tx_release(req->tx);
        if (req->kind == REQ_BATCH || req->kind == REQ_TX) {
            req->batch->unreachable = 1;
            sink_batch_done(req->batch, SINK_RETRY, why);
        }
        else if (req->kind == REQ_LOAD)
            sink_positions_done(req->load, 0, why);
    }
    free(req);
}

static void pending_fail_all(struct redis_conn *c, const char *why)
{
    struct redis_req *req;
    while ((req = req_list_pop(&c->pending)))
        req_fail(c, req, why);
}

static void reconnect_schedule(struct redis_conn *c)
{
    int64_t delay;
    struct timeval tv;

    if (c->rs->stopped)
        return;
    c->failures++;
    delay = backoff_full_jitter(c->failures, c->rs->reconnect_min_ms, c->rs->reconnect_max_ms);
    if (c->failures == 1 || c->failures % 10 == 0)
        sink_log(&c->rs->super, LOG_WARN, "redis %s:%d: %s; reconnecting in %" PRId64 " ms (attempt %u)",
                 c->rs->url.host, c->rs->url.port, c->last_error, delay, c->failures);
    tv = ms_to_tv(delay);
    evtimer_add(c->reconnect_timer, &tv);
}

static void req_answer(struct redis_conn *c, struct redis_req *req, const redisReply *reply);

/* Drops the connection (always ours to free): sent requests get NULL replies (a batch is
 * retried and applied once), waiting ones are failed, and a reconnect is scheduled. */
static void conn_drop(struct redis_conn *c, const char *why)
{
    struct redis_req *req;

    snprintf(c->last_error, sizeof c->last_error, "%s", why);
    redis_transport_free(c->transport);   /* no event from it after this */
    c->transport = NULL;
    c->state = CONN_IDLE;
    c->script_reloading = 0;
    evtimer_del(c->connect_timer);
    evtimer_del(c->command_timer);
    if (c->dns_req) {
        struct evdns_getaddrinfo_request *dr = c->dns_req;
        c->dns_req = NULL;
        evdns_getaddrinfo_cancel(dr);
    }
    while ((req = req_list_pop(&c->inflight)))
        req_answer(c, req, NULL);
    pending_fail_all(c, c->last_error);
    reconnect_schedule(c);
}

static void conn_lost(struct redis_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_lost(struct redis_conn *c, const char *fmt, ...)
{
    char why[sizeof c->last_error];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    conn_drop(c, why);
}

static void on_command_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct redis_conn *c = arg;
    struct redis_req *head = c->inflight.head;
    char why[128];

    (void)fd;
    (void)what;
    if (!head)
        return;
    if (mono_ms() - head->sent_ms < c->rs->command_timeout_ms) {
        command_timer_arm(c);
        return;
    }
    c->rs->count.timeouts++;
    snprintf(why, sizeof why, "no reply within command_timeout_ms (%lld ms)", c->rs->command_timeout_ms);
    sink_log(&c->rs->super, LOG_WARN, "redis %s:%d: %s; dropping the connection (%zu commands in flight)",
             c->rs->url.host, c->rs->url.port, why, c->inflight.count);
    conn_drop(c, why);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct redis_conn *c = arg;
    char why[128];

    (void)fd;
    (void)what;
    if (c->state == CONN_READY || c->state == CONN_IDLE)
        return;
    snprintf(why, sizeof why, "no connection within connect_timeout_ms (%lld ms)%s", c->rs->connect_timeout_ms,
             c->state == CONN_CONNECTING && c->rs->url.tls ? " (TCP connect and TLS handshake)" : "");
    conn_drop(c, why);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_connect(arg);
}

/* A request's reply, or NULL when the connection went away first; frees the request. */
static void req_answer(struct redis_conn *c, struct redis_req *req, const redisReply *reply)
{
    char msg[512];

    if (c->rs->stopped) {
        free(req);
        return;
    }
    switch (req->kind) {
    case REQ_BATCH:
        c->batches_in_flight--;
        batch_on_reply(c, req->batch, reply);
        break;
    case REQ_LOAD:
        load_on_reply(c, req->load, reply);
        break;
    case REQ_TX:
        /* the step frees or reuses the request (the batch's next step) */
        tx_on_reply(c, req, reply);
        command_timer_arm(c);
        conn_pump(c);
        return;
    case REQ_IGNORE:
        break;
    case REQ_VERSION:
        /* only a definite "unknown" refuses: a server that hides COMMAND may still have it */
        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
            reply->element[0]->type == REDIS_REPLY_NIL) {
            snprintf(msg, sizeof msg, "the string shape needs Redis 6.2 or newer (SET ... GET, GETDEL), "
                     "and this server does not know GETDEL");
            sink_log(&c->rs->super, LOG_ERROR, "redis %s:%d: %s", c->rs->url.host, c->rs->url.port, msg);
            free(req);
            conn_drop(c, msg);
            return;
        }
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
            sink_log(&c->rs->super, strncmp(reply->str, "LOADING", 7) == 0 || strncmp(reply->str, "BUSY", 4) == 0
                     ? LOG_WARN : LOG_ERROR, "redis %s:%d: %s",
                     c->rs->url.host, c->rs->url.port, msg);
            free(req);
            conn_drop(c, msg);
            return;
        }
        if (req->kind == REQ_SCRIPT) {
            if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
                free(req);
                conn_drop(c, "SCRIPT LOAD: unexpected reply");
                return;
            }
            memcpy(c->rs->sha, reply->str, 40);
            c->rs->sha[40] = '\0';
            c->script_reloading = 0;
            if (c->state == CONN_HANDSHAKE) {
                c->state = CONN_READY;
                evtimer_del(c->connect_timer);
                char which[48] = "";
                if (c->rs->nconns > 1)
                    snprintf(which, sizeof which, " (connection %u of %zu)", c->index + 1, c->rs->nconns);
                sink_log(&c->rs->super, c->failures ? LOG_WARN : LOG_INFO, "connected to redis %s:%d db %d%s%s%s",
                         c->rs->url.host, c->rs->url.port, c->rs->url.db, c->rs->url.tls ? " over TLS" : "",
                         c->failures ? " again" : "", which);
                c->failures = 0;
                c->last_error[0] = '\0';
            }
        }
        break;
    }
    free(req);
    command_timer_arm(c);
    conn_pump(c);
}

/* Replies come in the order of the commands: each answers the oldest request in flight. */
static void on_transport_reply(void *arg, const redisReply *reply)
{
    struct redis_conn *c = arg;
    struct redis_req *req = c->inflight.head;

    if (!req) {
        conn_drop(c, "a reply to no command: the connection is out of step");
        return;
    }
    if (req->kind == REQ_TX && req->seen + 1 < req->replies) {
        /* a step of several commands: every reply but its last goes to it in place */
        tx_on_reply(c, req, reply);
        req->seen++;
        return;
    }
    req_answer(c, req_list_pop(&c->inflight), reply);
}

/* Sends one request now; a request that cannot be queued fails. */
static void req_send(struct redis_conn *c, struct redis_req *req, const char *cmd, size_t len)
{
    int was_idle = c->inflight.head == NULL;

    req->sent_ms = mono_ms();
    if (!c->transport || redis_transport_send(c->transport, cmd, len) != 0) {
        req_fail(c, req, c->transport ? "out of memory" : "cannot send to redis (connection closing)");
        return;
    }
    req_list_push(&c->inflight, req);
    if (req->kind == REQ_BATCH)
        c->batches_in_flight++;
    if (was_idle)
        command_timer_arm(c);
}

void req_send_cmds(struct redis_conn *c, struct redis_req *req, const char *cmd, size_t len, uint32_t n)
{
    req->replies = n;
    req->seen = 0;
    req_send(c, req, cmd, len);
}

void req_send_argv(struct redis_conn *c, struct redis_req *req, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);

    if (len < 0) {
        req_fail(c, req, "out of memory");
        return;
    }
    req_send(c, req, cmd, (size_t)len);
    free(cmd);
}

void req_start(struct redis_conn *c, struct redis_req *req)
{
    char err[256];

    if (req->kind == REQ_TX) {
        tx_start(c, req);
    } else if (req->kind == REQ_BATCH) {
        if (batch_command(c->rs, req->batch, err, sizeof err) != 0) {
            req_fail(c, req, err);
            return;
        }
        req_send(c, req, c->rs->cmd.p, c->rs->cmd.len);
        /* a pipeline of large batches should not keep a large scratch buffer forever */
        if (c->rs->cmd.cap > (8u << 20)) {
            buf_free(&c->rs->cmd);
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
            req_fail(c, req, "out of memory");
            return;
        }
        argv[0] = "HMGET";
        lens[0] = 5;
        argv[1] = c->rs->positions_key;
        lens[1] = strlen(c->rs->positions_key);
        for (size_t i = 0; i < load->count; i++) {
            int n = sprintf(fields + off, "%s:%" PRId32, load->topic, load->partitions[i]);
            argv[2 + i] = fields + off;
            lens[2 + i] = (size_t)n;
            off += (size_t)n + 1;
        }
        req_send_argv(c, req, (int)argc, argv, lens);
        free(argv);
        free(lens);
        free(fields);
    }
}

/* Room for @p req now: script batches up to max_in_flight, one tx batch at a time (a WATCH
 * of another batch between a WATCH and its EXEC would widen what that EXEC watches). */
static int conn_room(const struct redis_conn *c, const struct redis_req *req)
{
    if (req->kind == REQ_BATCH)
        return c->batches_in_flight < (size_t)c->rs->max_in_flight;
    if (req->kind == REQ_TX)
        return tx_room(c);
    return 1;
}

/* Sends what waits, as far as the connection and its room allow. */
void conn_pump(struct redis_conn *c)
{
    while (c->pending.head && conn_usable(c) && conn_room(c, c->pending.head))
        req_start(c, req_list_pop(&c->pending));
}

void conn_submit(struct redis_conn *c, struct redis_req *req)
{
    req->conn = c;
    if (conn_usable(c) && !c->pending.head && conn_room(c, req)) {
        req_start(c, req);
        return;
    }
    req_list_push(&c->pending, req);
}


static void on_transport_close(void *arg, int was_open, const char *why)
{
    struct redis_conn *c = arg;

    if (was_open)
        c->rs->count.disconnects++;
    conn_drop(c, why);
}

/* Connected (with TLS: the server's certificate checked): authenticate, select, load the script. */
static void on_transport_open(void *arg)
{
    struct redis_conn *c = arg;
    struct redis_req *req;

    c->state = CONN_HANDSHAKE;
    if (c->rs->url.password) {
        const char *argv[] = { "AUTH", c->rs->url.user ? c->rs->url.user : c->rs->url.password, c->rs->url.password };
        size_t lens[] = { 4, strlen(argv[1]), strlen(c->rs->url.password) };
        if (!(req = calloc(1, sizeof *req)))
            goto oom;
        req->kind = REQ_AUTH;
        req->rs = c->rs;
        req->conn = c;
        req_send_argv(c, req, c->rs->url.user ? 3 : 2, argv, lens);
    }
    if (c->rs->url.db != 0) {
        char db[16];
        const char *argv[] = { "SELECT", db };
        size_t lens[] = { 6, (size_t)snprintf(db, sizeof db, "%d", c->rs->url.db) };
        if (!(req = calloc(1, sizeof *req)))
            goto oom;
        req->kind = REQ_SELECT;
        req->rs = c->rs;
        req->conn = c;
        req_send_argv(c, req, 2, argv, lens);
    }
    if (c->rs->optimistic && c->rs->shape == SHAPE_STRING) {
        /* the string shape's route needs SET ... GET and GETDEL (Redis 6.2): an older server
         * would refuse every batch, so the connection is refused, with the reason, instead */
        const char *argv[] = { "COMMAND", "INFO", "GETDEL" };
        size_t lens[] = { 7, 4, 6 };
        if (!(req = calloc(1, sizeof *req)))
            goto oom;
        req->kind = REQ_VERSION;
        req->rs = c->rs;
        req->conn = c;
        req_send_argv(c, req, 3, argv, lens);
    }
    if (!(req = calloc(1, sizeof *req)))
        goto oom;
    req->kind = REQ_SCRIPT;
    req->rs = c->rs;
    req->conn = c;
    script_send(c, req);
    return;
oom:
    /* not from inside the transport's event: the connect timer drops it on the next turn */
    {
        snprintf(c->last_error, sizeof c->last_error, "out of memory");
        evtimer_add(c->connect_timer, &ZERO_TV);
    }
}

static const struct redis_transport_events conn_events = {
    .on_open = on_transport_open,
    .on_reply = on_transport_reply,
    .on_close = on_transport_close,
};

static void connect_to(struct redis_conn *c, const char *ip)
{
    char err[256];
    struct redis_transport *t = redis_transport_open(c->rs->super.eb, ip, c->rs->url.port, c->rs->url.tls ? c->rs->tls : NULL,
                                                     c->rs->url.host, &conn_events, c, err, sizeof err);
    if (!t) {
        conn_lost(c, "%s", err);
        return;
    }
    c->transport = t;
    c->state = CONN_CONNECTING;
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct redis_conn *c = arg;
    char ip[INET6_ADDRSTRLEN] = "";

    if (result == EVUTIL_EAI_CANCEL)
        return;   /* stopped, or timed out: whoever cancelled moved on */
    c->dns_req = NULL;
    if (result != 0 || !res) {
        if (res)
            evutil_freeaddrinfo(res);
        conn_lost(c, "cannot resolve %s: %s", c->rs->url.host, evutil_gai_strerror(result));
        return;
    }
    if (res->ai_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip, sizeof ip);
    evutil_freeaddrinfo(res);
    connect_to(c, ip);
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
void conn_connect(struct redis_conn *c)
{
    struct timeval tv = ms_to_tv(c->rs->connect_timeout_ms);

    if (c->rs->stopped || c->state != CONN_IDLE)
        return;
    evtimer_add(c->connect_timer, &tv);
    if (host_is_numeric(c->rs->url.host)) {
        connect_to(c, c->rs->url.host);
        return;
    }
    {
        struct evdns_base *dns = resolver_for(c->rs->super.eb);
        struct evutil_addrinfo hints;
        struct evdns_getaddrinfo_request *dr;
        if (!dns) {
            conn_lost(c, "cannot set up name resolution");
            return;
        }
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        c->state = CONN_RESOLVING;
        /* may answer at once (a name in /etc/hosts): then it returns NULL and the state moved */
        dr = evdns_getaddrinfo(dns, c->rs->url.host, NULL, &hints, on_resolved, c);
        if (dr && c->state == CONN_RESOLVING)
            c->dns_req = dr;
    }
}

/* ---- the connections' life, for the sink's start, stop and destroy ---- */

static int conn_start_one(struct redis_conn *c, char *err, size_t errlen)
{
    struct event_base *eb = c->rs->super.eb;

    /* start may follow a stop: a reload that fails starts the previous configuration again */
    if (!c->reconnect_timer)
        c->reconnect_timer = evtimer_new(eb, on_reconnect_timer, c);
    if (!c->connect_timer)
        c->connect_timer = evtimer_new(eb, on_connect_timeout, c);
    if (!c->command_timer)
        c->command_timer = evtimer_new(eb, on_command_timeout, c);
    if (!c->reconnect_timer || !c->connect_timer || !c->command_timer) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->failures = 0;
    c->last_error[0] = '\0';
    c->state = CONN_IDLE;
    conn_connect(c);   /* asynchronous: batches wait for it, or retry */
    return 0;
}

int conn_start(struct redis_sink *rs, char *err, size_t errlen)
{
    size_t n = rs->optimistic ? (size_t)rs->connections : 1;

    if (!rs->conns) {
        if (!(rs->conns = calloc(n, sizeof *rs->conns))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        rs->nconns = n;
        for (size_t i = 0; i < n; i++) {
            rs->conns[i].rs = rs;
            rs->conns[i].index = (unsigned)i;
        }
    }
    for (size_t i = 0; i < rs->nconns; i++)
        if (conn_start_one(&rs->conns[i], err, errlen) != 0)
            return -1;
    return 0;
}

/* After rs->stopped is set: no verdict from here on (the router settles what was in flight). */
static void conn_stop_one(struct redis_conn *c)
{
    struct redis_req *req;

    if (c->reconnect_timer)
        evtimer_del(c->reconnect_timer);
    if (c->connect_timer)
        evtimer_del(c->connect_timer);
    if (c->command_timer)
        evtimer_del(c->command_timer);
    if (c->dns_req) {
        struct evdns_getaddrinfo_request *dr = c->dns_req;
        c->dns_req = NULL;
        evdns_getaddrinfo_cancel(dr);
    }
    redis_transport_free(c->transport);
    c->transport = NULL;
    while ((req = req_list_pop(&c->inflight)))
        free(req);
    while ((req = req_list_pop(&c->pending)))
        free(req);
    c->batches_in_flight = 0;
    for (size_t i = 0; i < TX_SLOTS; i++)
        tx_release(c->tx[i]);
    c->state = CONN_IDLE;
}

void conn_stop(struct redis_sink *rs)
{
    for (size_t i = 0; i < rs->nconns; i++)
        conn_stop_one(&rs->conns[i]);
}

void conn_release(struct redis_sink *rs)
{
    for (size_t i = 0; i < rs->nconns; i++) {
        struct redis_conn *c = &rs->conns[i];
        if (c->reconnect_timer)
            event_free(c->reconnect_timer);
        if (c->connect_timer)
            event_free(c->connect_timer);
        if (c->command_timer)
            event_free(c->command_timer);
        for (size_t t = 0; t < TX_SLOTS; t++)
            tx_free(c->tx[t]);
    }
    free(rs->conns);
    rs->conns = NULL;
    rs->nconns = 0;
}
