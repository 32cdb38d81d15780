/* The redis sink's transport over TCP on a real loop, against a listener in the test: replies
 * split across reads and several in one read come out whole and in order; the owner may free
 * the transport inside its own event; a refused connect and a server's close say so; the TLS
 * settings name the file and the reason when a file cannot be used. (TLS connections are
 * tested against redis-server in tests/integration/test_redis_tls.sh.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "sinks/redis_transport.h"

/* ---- a listener that answers in two parts ---- */

struct peer {
    struct event_base *eb;
    evutil_socket_t listen_fd;
    struct event *accept_ev;
    struct bufferevent *server;     /* the accepted connection */
    const char *first, *second;     /* sent on accept, then when the client has sent a byte */
};

static void server_read(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    size_t len = strlen(p->second);

    evbuffer_drain(in, evbuffer_get_length(in));
    /* the first part went out before the client could answer it: write the second straight to
     * the socket (a few bytes: one call), then end the stream */
    assert_int_equal(send(fd, p->second, len, MSG_NOSIGNAL), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    bufferevent_disable(bev, EV_READ);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct peer *p = arg;
    evutil_socket_t c = accept(fd, NULL, NULL);

    (void)what;
    assert_true(c >= 0);
    evutil_make_socket_nonblocking(c);
    p->server = bufferevent_socket_new(p->eb, c, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(p->server, server_read, NULL, NULL, p);
    bufferevent_enable(p->server, EV_READ | EV_WRITE);
    bufferevent_write(p->server, p->first, strlen(p->first));
}

/* Listens on 127.0.0.1 at a free port; returns the port. */
static int peer_listen(struct peer *p)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->listen_fd >= 0);
    assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(p->listen_fd, 4), 0);
    assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *)&sin, &len), 0);
    p->accept_ev = event_new(p->eb, p->listen_fd, EV_READ | EV_PERSIST, on_accept, p);
    event_add(p->accept_ev, NULL);
    return ntohs(sin.sin_port);
}

static void peer_close(struct peer *p)
{
    if (p->server)
        bufferevent_free(p->server);
    event_free(p->accept_ev);
    close(p->listen_fd);
}

/* ---- the transport's owner ---- */

struct owner {
    struct event_base *eb;
    struct redis_transport *t;
    int opened, closed, was_open;
    char why[512];
    char replies[8][64];            /* "+OK", ":42", "$abc" */
    int nreplies;
    int free_after;                 /* free the transport inside the reply with this number (1-based) */
};

static void owner_open(void *arg)
{
    struct owner *o = arg;
    o->opened++;
}

static void owner_reply(void *arg, const redisReply *r)
{
    struct owner *o = arg;
    char *slot = o->replies[o->nreplies++];

    switch (r->type) {
    case REDIS_REPLY_STATUS: snprintf(slot, 64, "+%s", r->str); break;
    case REDIS_REPLY_INTEGER: snprintf(slot, 64, ":%lld", r->integer); break;
    case REDIS_REPLY_STRING: snprintf(slot, 64, "$%.*s", (int)r->len, r->str); break;
    default: snprintf(slot, 64, "?%d", r->type); break;
    }
    if (o->nreplies == 1)
        assert_int_equal(redis_transport_send(o->t, "*1\r\n$4\r\nPING\r\n", 14), 0);
    if (o->nreplies == o->free_after) {
        redis_transport_free(o->t);
        o->t = NULL;
        event_base_loopexit(o->eb, NULL);
    }
}

static void owner_close(void *arg, int was_open, const char *why)
{
    struct owner *o = arg;
    o->closed++;
    o->was_open = was_open;
    snprintf(o->why, sizeof o->why, "%s", why);
    redis_transport_free(o->t);   /* inside the event: allowed */
    o->t = NULL;
    event_base_loopexit(o->eb, NULL);
}

static const struct redis_transport_events owner_events = { owner_open, owner_reply, owner_close };

static void run_loop(struct event_base *eb)
{
    struct timeval limit = { 10, 0 };   /* a hang fails the test instead of blocking it */
    event_base_loopexit(eb, &limit);
    event_base_dispatch(eb);
}

/* Connects @p o to the listener of @p p (plain TCP) and runs the loop until the owner is done. */
static void run_against_peer(struct peer *p, struct owner *o)
{
    char err[256];
    int port = peer_listen(p);

    o->t = redis_transport_open(o->eb, "127.0.0.1", port, NULL, "127.0.0.1", &owner_events, o, err, sizeof err);
    assert_non_null(o->t);
    run_loop(o->eb);
}

static void test_replies_split_and_joined_come_whole_in_order(void **state)
{
    struct event_base *eb = event_base_new();
    struct peer p = { .eb = eb, .first = "+OK\r\n:4", .second = "2\r\n$3\r\nabc\r\n" };
    struct owner o = { .eb = eb };
    (void)state;

    run_against_peer(&p, &o);
    assert_int_equal(o.opened, 1);
    assert_int_equal(o.nreplies, 3);
    assert_string_equal(o.replies[0], "+OK");
    assert_string_equal(o.replies[1], ":42");
    assert_string_equal(o.replies[2], "$abc");
    assert_int_equal(o.closed, 1);
    assert_int_equal(o.was_open, 1);
    assert_string_equal(o.why, "connection lost: closed by the server");
    assert_null(o.t);
    peer_close(&p);
    event_base_free(eb);
}

static void test_free_inside_a_reply_stops_the_events(void **state)
{
    struct event_base *eb = event_base_new();
    /* two replies in one read: the owner frees the transport in the first */
    struct peer p = { .eb = eb, .first = "+OK\r\n+MORE\r\n", .second = "+LATE\r\n" };
    struct owner o = { .eb = eb, .free_after = 1 };
    (void)state;

    run_against_peer(&p, &o);
    assert_int_equal(o.nreplies, 1);
    assert_string_equal(o.replies[0], "+OK");
    assert_int_equal(o.closed, 0);
    peer_close(&p);
    event_base_free(eb);
}

static void test_refused_connect_says_so(void **state)
{
    struct event_base *eb = event_base_new();
    struct peer p = { .eb = eb };
    struct owner o = { .eb = eb };
    char err[256];
    int port;
    (void)state;

    port = peer_listen(&p);
    peer_close(&p);   /* nothing listens there now */
    o.t = redis_transport_open(eb, "127.0.0.1", port, NULL, "127.0.0.1", &owner_events, &o, err, sizeof err);
    assert_non_null(o.t);
    run_loop(eb);
    assert_int_equal(o.opened, 0);
    assert_int_equal(o.closed, 1);
    assert_int_equal(o.was_open, 0);
    assert_string_equal(o.why, "cannot connect: Connection refused");
    event_base_free(eb);
}

static void test_open_wants_an_address(void **state)
{
    struct event_base *eb = event_base_new();
    struct owner o = { .eb = eb };
    char err[256] = "";
    (void)state;

    assert_null(redis_transport_open(eb, "cache.internal", 6379, NULL, "cache.internal", &owner_events, &o, err,
                                     sizeof err));
    assert_string_equal(err, "cannot connect: cache.internal is not an IP address");
    event_base_free(eb);
}

/* ---- TLS settings ---- */

static void test_tls_files_named_with_the_reason(void **state)
{
    char err[512] = "", path[] = "/tmp/sluice-test-redis-tls-XXXXXX";
    struct redis_tls *tls;
    int fd;
    (void)state;

    assert_null(redis_tls_new("/nonexistent/ca.pem", NULL, NULL, err, sizeof err));
    assert_string_equal(err, "cannot load the CA certificates /nonexistent/ca.pem: No such file or directory");

    /* a file that holds no certificate */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    assert_null(redis_tls_new(path, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot load the CA certificates "));
    assert_non_null(strstr(err, path));
    assert_null(redis_tls_new(NULL, path, path, err, sizeof err));
    assert_non_null(strstr(err, "cannot load the client certificate "));
    unlink(path);

    /* no files: the system's CAs */
    tls = redis_tls_new(NULL, NULL, NULL, err, sizeof err);
    assert_non_null(tls);
    redis_tls_free(tls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_split_and_joined_come_whole_in_order),
        cmocka_unit_test(test_free_inside_a_reply_stops_the_events),
        cmocka_unit_test(test_refused_connect_says_so),
        cmocka_unit_test(test_open_wants_an_address),
        cmocka_unit_test(test_tls_files_named_with_the_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
