/* The connections of http_server.h: one bufferevent each, read into a head buffer that grows up
 * to the cap, parsed by http_head_feed, a body of Content-Length bytes, one request at a time
 * (the next is read once the answer is written), keep-alive, one deadline timer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "http_server.h"
#include "lib/clock.h"
#include "lib/log.h"

#define HEAD_INITIAL 256             /* the head buffer starts here (a curl request fits) and doubles up to the cap */
#define LINGER_MS 1000               /* after an error answer: how long unread input is drained */
#define LINGER_BYTES (1u << 20)      /* ... and how much of it at most */
#define ACCEPT_PAUSE_MS 100          /* out of descriptors: stop accepting for this long */
#define ACCEPT_BATCH 32              /* accepts before the loop gets a turn (see on_accept) */

enum conn_state {
    CONN_HEAD,          /* reading the request line and headers */
    CONN_BODY,          /* reading Content-Length bytes */
    CONN_HANDLER,       /* the handler holds the request; nothing is read */
    CONN_WRITING,       /* the answer is being written */
    CONN_LINGER,        /* answered and closing: our side shut, the client's bytes drained */
    CONN_STREAMING,     /* a streamed answer: the handler writes when it likes; input is drained */
};

struct http_conn {
    struct http_server *srv;
    struct http_conn *prev, *next;   /* the server's list, oldest first */
    struct bufferevent *bev;
    struct event *timer;
    enum conn_state state;
    char *head;                      /* this request's bytes so far; moves to the request */
    size_t head_len, head_cap;
    struct http_head parsed;
    struct http_server_req *req;        /* the request being read or handled; owned here until the handler gets it */
    int close_after;                 /* close once the answer is written */
    unsigned served;                 /* requests answered on this connection */
    size_t lingered;
};

struct http_server_req {
    struct http_conn *conn;          /* NULL once the connection is gone: http_server_reply only frees */
    char *head;                      /* the head buffer (strings of parsed point into it) */
    struct http_head parsed;
    char *body;
    size_t body_len;
    struct evbuffer *headers;        /* extra answer headers, "Name: value\r\n" each */
    http_stream_closed_fn closed;    /* a streamed answer: told when the client goes */
    void *closed_arg;
};

struct http_server {
    struct event_base *eb;
    struct evconnlistener *listener;
    struct event *resume;            /* re-enables accepting after a pause */
    unsigned accepted;               /* since the last pause */
    struct http_limits lim;
    http_handler_fn handler;
    void *arg;
    char name[32];
    struct http_conn *first, *last;
    size_t nconns;
    uint64_t rejected[HTTP_REJECT_COUNT];
};

static const char *status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void request_free(struct http_server_req *req)
{
    if (!req)
        return;
    free(req->head);
    free(req->body);
    if (req->headers)
        evbuffer_free(req->headers);
    free(req);
}

static void conn_free(struct http_conn *c)
{
    struct http_server *srv = c->srv;

    if (c->req && c->state == CONN_STREAMING) {
        struct http_server_req *req = c->req;
        req->conn = NULL;            /* the handler holds it and ends it when told */
        if (req->closed)
            req->closed(req, req->closed_arg);
    } else if (c->req && c->state == CONN_HANDLER)
        c->req->conn = NULL;         /* the handler still holds it; its reply frees it */
    else
        request_free(c->req);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        srv->last = c->prev;
    srv->nconns--;
    if (c->timer)
        event_free(c->timer);
    if (c->bev)
        bufferevent_free(c->bev);    /* BEV_OPT_CLOSE_ON_FREE closes the socket */
    free(c->head);
    free(c);
}

static void conn_arm(struct http_conn *c, unsigned ms)
{
    struct timeval tv = ms_to_tv(ms);
    evtimer_add(c->timer, &tv);
}

/* Queue an answer the server makes itself (errors), always closing. */
static void conn_answer_and_close(struct http_conn *c, int status)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char body[96];
    int n = snprintf(body, sizeof body, "%d %s\n", status, status_text(status));

    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n\r\n%s", status, status_text(status), n, body);
    c->close_after = 1;
    c->state = CONN_WRITING;
    bufferevent_disable(c->bev, EV_READ);
    conn_arm(c, c->srv->lim.request_timeout_ms);
}

static void conn_reject(struct http_conn *c, int status, enum http_reject reason)
{
    c->srv->rejected[reason]++;
    /* Identical lines within 10 s are logged once (log.c), so a flood does not flood the log. */
    LOG(LOG_WARN, "%s: refused a client: %s (%d)", c->srv->name, http_reject_name(reason), status);
    conn_answer_and_close(c, status);
}

static void conn_process(struct http_conn *c);

/* The head is complete: the request takes its buffer; any bytes read past the head go back to
 * the input, where the body (or a pipelined request) is read from. */
static int conn_begin_request(struct http_conn *c)
{
    struct http_server_req *req = calloc(1, sizeof *req);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t extra = c->head_len - c->parsed.len;

    if (!req || (extra && evbuffer_prepend(in, c->head + c->parsed.len, extra) != 0)) {
        free(req);
        return -1;
    }
    req->conn = c;
    req->head = c->head;
    memcpy(&req->parsed, &c->parsed, sizeof c->parsed);
    c->head = NULL;
    c->head_len = c->head_cap = 0;
    c->req = req;
    c->state = CONN_BODY;
    if ((req->parsed.flags & HTTP_HEAD_CONTINUE) && req->parsed.minor_version == 1 &&
        req->parsed.content_length > 0 && evbuffer_get_length(in) == 0)
        evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
}

static void conn_dispatch(struct http_conn *c)
{
    struct http_server_req *req = c->req;

    c->state = CONN_HANDLER;
    evtimer_del(c->timer);           /* the handler's time is not the client's */
    bufferevent_disable(c->bev, EV_READ);
    if (req->parsed.method == HTTP_OTHER) {
        if (http_server_reply_header(req, "Allow", "GET, POST") == 0)
            http_server_reply(req, 405, "text/plain", "method not allowed\n", 19);
        else
            http_server_reply(req, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    c->srv->handler(req, c->srv->arg);
}

/* Read what the input holds into the head buffer, at most up to the cap. */
static int conn_read_head(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t cap = c->srv->lim.max_head_bytes, avail = evbuffer_get_length(in), want;

    want = avail < cap - c->head_len ? avail : cap - c->head_len;
    if (want == 0)
        return 0;
    if (c->head_len + want > c->head_cap) {
        size_t ncap = c->head_cap ? c->head_cap : HEAD_INITIAL;
        char *nhead;
        while (ncap < c->head_len + want)
            ncap *= 2;
        if (ncap > cap)
            ncap = cap;
        if (!(nhead = realloc(c->head, ncap)))
            return -1;
        c->head = nhead;
        c->head_cap = ncap;
    }
    evbuffer_remove(in, c->head + c->head_len, want);
    c->head_len += want;
    return 0;
}

/* Advance as far as the bytes at hand allow. */
static void conn_process(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int rc;

    if (c->state == CONN_HEAD) {
        if (conn_read_head(c) != 0) {
            conn_answer_and_close(c, 500);
            return;
        }
        if (c->head_len == 0)
            return;
        rc = http_head_feed(&c->parsed, c->head, c->head_len, &c->srv->lim);
        if (rc < 0) {
            conn_reject(c, c->parsed.status, c->parsed.reject);
            return;
        }
        if (rc == 0)
            return;
        if (conn_begin_request(c) != 0) {
            conn_answer_and_close(c, 500);
            return;
        }
    }
    if (c->state == CONN_BODY) {
        struct http_server_req *req = c->req;
        size_t need = req->parsed.content_length > 0 ? (size_t)req->parsed.content_length : 0;
        if (evbuffer_get_length(in) < need)
            return;
        if (!(req->body = malloc(need + 1))) {
            conn_answer_and_close(c, 500);
            return;
        }
        evbuffer_remove(in, req->body, need);
        req->body[need] = '\0';
        req->body_len = need;
        conn_dispatch(c);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (c->state == CONN_LINGER || c->state == CONN_STREAMING) {
        size_t n = evbuffer_get_length(in);
        if (c->state == CONN_STREAMING) {   /* nothing a client sends matters now */
            evbuffer_drain(in, n);
            return;
        }
        c->lingered += n;
        evbuffer_drain(in, n);
        if (c->lingered > LINGER_BYTES)
            conn_free(c);
        return;
    }
    conn_process(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;

    (void)bev;
    if (c->state != CONN_WRITING)
        return;                      /* a 100 Continue went out */
    if (c->close_after) {
        /* Shut our side and drain the client's unread bytes for a moment: closing with them
         * unread would send a reset that can destroy the answer before the client reads it. */
        c->state = CONN_LINGER;
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        bufferevent_enable(c->bev, EV_READ);
        conn_arm(c, LINGER_MS);
        return;
    }
    c->state = CONN_HEAD;
    http_head_reset(&c->parsed);
    bufferevent_enable(c->bev, EV_READ);
    conn_arm(c, c->srv->lim.request_timeout_ms);
    conn_process(c);                 /* a pipelined request may be waiting */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;                      /* EOF or error: the client is gone */
    conn_free(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state == CONN_HEAD && c->head_len == 0 && c->served > 0) {
        conn_free(c);                /* idle between keep-alive requests: just close */
        return;
    }
    if (c->state == CONN_HEAD || c->state == CONN_BODY) {
        conn_reject(c, 408, HTTP_REJECT_REQUEST_TIMEOUT);
        return;
    }
    if (c->state == CONN_WRITING)    /* the client does not read its answer */
        c->srv->rejected[HTTP_REJECT_REQUEST_TIMEOUT]++;
    conn_free(c);
}

/* At the cap, the oldest connection still sending its request makes room: slow clients cannot
 * lock others out, they only push each other out. */
static int server_make_room(struct http_server *srv)
{
    for (struct http_conn *c = srv->first; c; c = c->next) {
        if (c->state == CONN_HEAD || c->state == CONN_BODY || c->state == CONN_LINGER) {
            if (c->state != CONN_LINGER)
                srv->rejected[HTTP_REJECT_TOO_MANY_CONNECTIONS]++;
            conn_free(c);
            return 0;
        }
    }
    return -1;
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *sa, int socklen, void *arg)
{
    struct http_server *srv = arg;
    struct http_conn *c;

    (void)sa;
    (void)socklen;
    /* libevent accepts the whole backlog in one callback, and frees a closed connection's
     * bufferevent only later in the loop: a burst of thousands would pile up before anything is
     * freed, and starve the clients already connected. Every few accepts, let the loop run. */
    if (++srv->accepted >= ACCEPT_BATCH) {
        srv->accepted = 0;
        evconnlistener_disable(listener);
        event_active(srv->resume, EV_TIMEOUT, 1);
    }
    if (srv->nconns >= srv->lim.max_connections && server_make_room(srv) != 0) {
        srv->rejected[HTTP_REJECT_TOO_MANY_CONNECTIONS]++;
        evutil_closesocket(fd);
        return;
    }
    if (!(c = calloc(1, sizeof *c))) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = srv;
    c->prev = srv->last;
    if (srv->last)
        srv->last->next = c;
    else
        srv->first = c;
    srv->last = c;
    srv->nconns++;
    http_head_reset(&c->parsed);
    c->bev = bufferevent_socket_new(srv->eb, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(srv->eb, on_timer, c);
    if (!c->bev || !c->timer) {
        if (!c->bev)
            evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    /* Input is moved out as it comes; the watermark bounds what one read can pile up while a
     * body or a pipelined request waits. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, srv->lim.max_body + srv->lim.max_head_bytes);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ);
    conn_arm(c, srv->lim.request_timeout_ms);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(((struct http_server *)arg)->listener);
}

static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct http_server *srv = arg;
    struct timeval tv = ms_to_tv(ACCEPT_PAUSE_MS);
    int err = EVUTIL_SOCKET_ERROR();

    /* Out of descriptors: the pending connection stays in the backlog and the listener would be
     * readable again at once, a busy loop. Pause instead. */
    LOG(LOG_WARN, "%s: accept failed: %s; pausing %d ms", srv->name, evutil_socket_error_to_string(err), ACCEPT_PAUSE_MS);
    evconnlistener_disable(listener);
    evtimer_add(srv->resume, &tv);
}

struct http_server *http_server_new(struct event_base *eb, const char *listen, const char *name,
                                    const struct http_limits *lim, http_handler_fn handler, void *arg,
                                    char *err, size_t errlen)
{
    struct http_server *srv = calloc(1, sizeof *srv);
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
    char host[256], port[16];
    int rc;

    if (!srv) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    snprintf(srv->name, sizeof srv->name, "%s", name);
    srv->eb = eb;
    srv->lim = *lim;
    if (srv->lim.max_head_bytes > HTTP_HEAD_BYTES_MAX)
        srv->lim.max_head_bytes = HTTP_HEAD_BYTES_MAX;
    if (srv->lim.max_headers > HTTP_FIELDS_MAX)
        srv->lim.max_headers = HTTP_FIELDS_MAX;
    srv->handler = handler;
    srv->arg = arg;
    if (!colon || (size_t)(colon - listen) >= sizeof host || strlen(colon + 1) > 5 || !colon[1] ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || atol(colon + 1) > 65535) {
        snprintf(err, errlen, "%s.listen \"%s\": expected HOST:PORT", name, listen ? listen : "");
        goto fail;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    snprintf(port, sizeof port, "%s", colon + 1);
    if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai)) != 0) {
        snprintf(err, errlen, "%s.listen \"%s\": %s", name, listen, gai_strerror(rc));
        goto fail;
    }
    if (!(srv->resume = evtimer_new(eb, on_resume, srv)))
        goto oom;
    srv->listener = evconnlistener_new_bind(eb, on_accept, srv,
                                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                            1024, ai->ai_addr, (int)ai->ai_addrlen);
    if (!srv->listener) {
        snprintf(err, errlen, "%s: cannot listen on %s: %s", name, listen, strerror(errno));
        goto fail;
    }
    evconnlistener_set_error_cb(srv->listener, on_accept_error);
    freeaddrinfo(ai);
    return srv;
oom:
    snprintf(err, errlen, "%s: out of memory", name);
fail:
    if (ai)
        freeaddrinfo(ai);
    http_server_free(srv);
    return NULL;
}

int http_server_port(const struct http_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if (getsockname(evconnlistener_get_fd(srv->listener), (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

const uint64_t *http_server_rejected(const struct http_server *srv)
{
    return srv->rejected;
}

size_t http_server_connections(const struct http_server *srv)
{
    return srv->nconns;
}

void http_server_free(struct http_server *srv)
{
    if (!srv)
        return;
    while (srv->first)
        conn_free(srv->first);
    if (srv->listener)
        evconnlistener_free(srv->listener);
    if (srv->resume)
        event_free(srv->resume);
    free(srv);
}

enum http_method http_server_req_method(const struct http_server_req *req)
{
    return req->parsed.method;
}

const char *http_server_req_path(const struct http_server_req *req)
{
    return req->head + req->parsed.target;
}

const char *http_server_req_query(const struct http_server_req *req)
{
    return req->parsed.query ? req->head + req->parsed.query : NULL;
}

const char *http_server_req_header(const struct http_server_req *req, const char *name)
{
    return http_head_field(&req->parsed, req->head, name);
}

const char *http_server_req_body(const struct http_server_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : "";
}

int http_server_reply_header(struct http_server_req *req, const char *name, const char *value)
{
    if (!req->headers && !(req->headers = evbuffer_new()))
        return -1;
    return evbuffer_add_printf(req->headers, "%s: %s\r\n", name, value) < 0 ? -1 : 0;
}

void http_server_reply(struct http_server_req *req, int status, const char *content_type, const char *body, size_t len)
{
    struct http_conn *c = req->conn;
    struct evbuffer *out;
    int keep;

    if (!c) {
        request_free(req);
        return;
    }
    out = bufferevent_get_output(c->bev);
    keep = req->parsed.minor_version == 1 ? !(req->parsed.flags & HTTP_HEAD_CLOSE)
                                          : !!(req->parsed.flags & HTTP_HEAD_KEEP_ALIVE);
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s",
                        req->parsed.minor_version, status, status_text(status), content_type, len,
                        keep ? (req->parsed.minor_version == 0 ? "Connection: keep-alive\r\n" : "")
                             : "Connection: close\r\n");
    if (req->headers)
        evbuffer_add_buffer(out, req->headers);
    evbuffer_add(out, "\r\n", 2);
    evbuffer_add(out, body, len);
    c->req = NULL;
    request_free(req);
    c->served++;
    c->close_after = !keep;
    c->state = CONN_WRITING;
    conn_arm(c, c->srv->lim.request_timeout_ms);
}

int http_server_stream_start(struct http_server_req *req, const char *content_type,
                             http_stream_closed_fn closed, void *arg)
{
    struct http_conn *c = req->conn;
    struct evbuffer *out;

    if (!c)
        return -1;
    out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.%d 200 OK\r\nContent-Type: %s\r\n%sConnection: close\r\n",
                        req->parsed.minor_version, content_type,
                        req->parsed.minor_version == 1 ? "Transfer-Encoding: chunked\r\n" : "");
    if (req->headers)
        evbuffer_add_buffer(out, req->headers);
    evbuffer_add(out, "\r\n", 2);
    req->closed = closed;
    req->closed_arg = arg;
    c->state = CONN_STREAMING;
    c->served++;
    evtimer_del(c->timer);           /* a stream lasts as long as both sides like */
    /* libevent writes 16 KiB a loop turn by default: a busy loop would hold a stream's bytes
     * back from a client that reads as fast as it can, and count it slow. */
    bufferevent_set_max_single_write(c->bev, 1 << 20);
    bufferevent_enable(c->bev, EV_READ);   /* to see the client go */
    return 0;
}

int http_server_stream_write(struct http_server_req *req, const char *data, size_t len)
{
    struct evbuffer *out;

    if (!req->conn)
        return -1;
    if (len == 0)
        return 0;                    /* an empty chunk would end the body */
    out = bufferevent_get_output(req->conn->bev);
    if (req->parsed.minor_version == 1)
        evbuffer_add_printf(out, "%zx\r\n", len);
    evbuffer_add(out, data, len);
    if (req->parsed.minor_version == 1)
        evbuffer_add(out, "\r\n", 2);
    return 0;
}

size_t http_server_stream_unsent(const struct http_server_req *req)
{
    return req->conn ? evbuffer_get_length(bufferevent_get_output(req->conn->bev)) : 0;
}

void http_server_stream_end(struct http_server_req *req)
{
    struct http_conn *c = req->conn;

    if (c) {
        if (req->parsed.minor_version == 1)
            evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
        c->req = NULL;
        c->close_after = 1;
        c->state = CONN_WRITING;
        conn_arm(c, c->srv->lim.request_timeout_ms);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            on_write(c->bev, c);     /* nothing left to write (HTTP/1.0): no write callback would come */
    }
    request_free(req);
}
