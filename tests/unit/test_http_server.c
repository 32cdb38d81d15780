/* router/http_parse.c and router/http_server.c: the parser over bytes (caps, strictness, the same
 * result however the bytes are split), and the server over loopback sockets (keep-alive,
 * pipelining, 405, 100-continue, the deadline, the connection cap, a reply after the client left,
 * a streamed answer). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <event2/event.h>

#include "router/admin_route.h"
#include "router/http_server.h"

static const struct http_limits limits = { 64, 256, 8, 1024, 300, 4 };

/* Parses @p text in one go into @p h (and a copy of it in @p buf). */
static int parse(const char *text, struct http_head *h, char *buf)
{
    size_t len = strlen(text);
    memcpy(buf, text, len);
    http_head_reset(h);
    return http_head_feed(h, buf, len > limits.max_head_bytes ? limits.max_head_bytes : len, &limits);
}

static void test_parse_get(void **state)
{
    struct http_head h;
    char buf[512];
    (void)state;
    assert_int_equal(parse("GET /metrics?token=a%20b&x=1 HTTP/1.1\r\nHost: x\r\nAuthorization:  Bearer t \r\n\r\nrest", &h, buf), 1);
    assert_int_equal(h.method, HTTP_GET);
    assert_string_equal(buf + h.target, "/metrics");
    assert_string_equal(buf + h.query, "token=a%20b&x=1");
    assert_string_equal(http_head_field(&h, buf, "authorization"), "Bearer t");
    assert_null(http_head_field(&h, buf, "cookie"));
    assert_memory_equal(buf + h.len, "rest", 4);
    assert_int_equal(h.content_length, -1);
    char *tok = http_query_param(buf + h.query, "token");
    assert_string_equal(tok, "a b");
    free(tok);
    assert_null(http_query_param(buf + h.query, "tok"));
    assert_null(http_query_param("token=%zz", "token"));
    assert_null(http_query_param("token=%00", "token"));
    assert_null(http_query_param("token=%4", "token"));
}

static void test_parse_post_and_flags(void **state)
{
    struct http_head h;
    char buf[512];
    (void)state;
    assert_int_equal(parse("POST /reload HTTP/1.0\nContent-Length: 12\nConnection: Keep-Alive\nExpect: 100-continue\n\n", &h, buf), 1);
    assert_int_equal(h.method, HTTP_POST);
    assert_int_equal(h.minor_version, 0);
    assert_int_equal(h.content_length, 12);
    assert_true(h.flags & HTTP_HEAD_KEEP_ALIVE);
    assert_true(h.flags & HTTP_HEAD_CONTINUE);
    assert_int_equal(parse("PUT / HTTP/1.1\r\nHost: x\r\nConnection: a, close\r\n\r\n", &h, buf), 1);
    assert_int_equal(h.method, HTTP_OTHER);
    assert_true(h.flags & HTTP_HEAD_CLOSE);
    assert_int_equal(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", &h, buf), 1);   /* leading empty lines */
}

static void expect_refused(const char *text, int status, enum http_reject reject)
{
    struct http_head h;
    char buf[1024];
    assert_int_equal(parse(text, &h, buf), -1);
    assert_int_equal(h.status, status);
    assert_int_equal(h.reject, reject);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    expect_refused("GET / HTTP/1.1\r\n\r\n", 400, HTTP_REJECT_BAD_REQUEST);                   /* no Host */
    expect_refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, HTTP_REJECT_BAD_REQUEST);
    expect_refused("GET  / HTTP/1.1\r\n", 400, HTTP_REJECT_BAD_REQUEST);
    expect_refused("GET http://x/ HTTP/1.1\r\n", 400, HTTP_REJECT_BAD_REQUEST);
    expect_refused("GET / HTTP/2.0\r\n", 505, HTTP_REJECT_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1 \r\n", 400, HTTP_REJECT_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, HTTP_REJECT_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, HTTP_REJECT_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", 400, HTTP_REJECT_BAD_REQUEST);
    expect_refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400, HTTP_REJECT_BAD_REQUEST);
    expect_refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, HTTP_REJECT_BAD_REQUEST);
    expect_refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n", 413, HTTP_REJECT_BODY_TOO_LARGE);
    expect_refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n", 413, HTTP_REJECT_BODY_TOO_LARGE);
    expect_refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501, HTTP_REJECT_BAD_REQUEST);
}

static void test_parse_caps(void **state)
{
    char text[600];
    struct http_head h;
    char buf[600];
    (void)state;
    /* Request line: 64 bytes pass, 65 do not, whether or not the line has ended. */
    snprintf(text, sizeof text, "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(strchr(text, '\r') - text, 64);
    assert_int_equal(parse(text, &h, buf), 1);
    snprintf(text, sizeof text, "GET /%s HTTP/1.1\r\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    expect_refused(text, 414, HTTP_REJECT_REQUEST_LINE_TOO_LONG);
    memset(text, 'a', 100);
    memcpy(text, "GET /", 5);
    text[100] = '\0';
    expect_refused(text, 414, HTTP_REJECT_REQUEST_LINE_TOO_LONG);
    /* Header lines: 8 pass, the 9th does not. */
    strcpy(text, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 7; i++)
        strcat(text, "A: b\r\n");
    assert_int_equal(parse(text, &h, buf), 0);
    strcat(text, "A: b\r\n");
    expect_refused(text, 431, HTTP_REJECT_TOO_MANY_HEADERS);
    /* Head bytes: a line that never ends stops at 256. */
    strcpy(text, "GET / HTTP/1.1\r\nX: ");
    memset(text + strlen(text), 'a', 400);
    text[419] = '\0';
    expect_refused(text, 431, HTTP_REJECT_HEADERS_TOO_LARGE);
}

/* Fed in pieces, the parser gives what it gives in one go, and scans each byte once. */
static void test_parse_resumes(void **state)
{
    static const char *const texts[] = {
        "GET /a?b HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n",
        "POST /sinks/x/replay HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{}\n",
        "GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n",
    };
    (void)state;
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        struct http_head whole, part;
        char a[512], b[512];
        size_t len = strlen(texts[t]) < limits.max_head_bytes ? strlen(texts[t]) : limits.max_head_bytes;
        int rw = parse(texts[t], &whole, a), rp = 0;
        http_head_reset(&part);
        for (size_t n = 1; n <= len && rp == 0; n++) {
            size_t before = part.pos;
            b[n - 1] = texts[t][n - 1];
            rp = http_head_feed(&part, b, n, &limits);
            assert_true(part.pos >= before && part.pos <= n);   /* never goes back */
        }
        assert_int_equal(rp, rw);
        assert_int_equal(part.status, whole.status);
        assert_int_equal(part.len, whole.len);
        assert_int_equal(part.nfields, whole.nfields);
    }
}

static void test_route(void **state)
{
    struct admin_route rt;
    struct admin_replay rp;
    char err[256];
    (void)state;
    admin_route(HTTP_POST, "/healthz", &rt);
    assert_int_equal(rt.ep, ADMIN_EP_HEALTHZ);
    admin_route(HTTP_POST, "/metrics", &rt);
    assert_int_equal(rt.ep, ADMIN_EP_NOT_FOUND);
    admin_route(HTTP_GET, "/", &rt);
    assert_true(admin_route_query_token(&rt));
    admin_route(HTTP_POST, "/sinks/alpha/replay", &rt);
    assert_int_equal(rt.ep, ADMIN_EP_SINK_REPLAY);
    assert_string_equal(rt.sink, "alpha");
    admin_route(HTTP_GET, "/sinks/alpha/tap", &rt);
    assert_int_equal(rt.ep, ADMIN_EP_SINK_TAP);
    assert_string_equal(rt.sink, "alpha");
    assert_false(admin_route_query_token(&rt));
    admin_route(HTTP_POST, "/sinks/alpha/tap", &rt);
    assert_int_equal(rt.ep, ADMIN_EP_SINK_BAD_ACTION);
    admin_route(HTTP_GET, "/sinks/alpha/pause", &rt);
    assert_int_equal(rt.ep, ADMIN_EP_SINK_BAD_ACTION);
    admin_route(HTTP_GET, "/sinks/", &rt);
    assert_int_equal(rt.ep, ADMIN_EP_NO_SINK);
    assert_int_equal(admin_replay_parse("{\"offset\": 5, \"topic\": \"t\", \"partition\": 2}", 43, &rp, err, sizeof err), 0);
    assert_int_equal(rp.at, 5);
    assert_string_equal(rp.topic, "t");
    assert_int_equal(rp.partition, 2);
    assert_int_equal(admin_replay_parse("{\"timestamp_ms\": 7}", 19, &rp, err, sizeof err), 0);
    assert_true(rp.by_time);
    assert_int_equal(admin_replay_parse("", 0, &rp, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected {\"offset\": N}"));
    assert_int_equal(admin_replay_parse("[1]", 3, &rp, err, sizeof err), -1);
    assert_string_equal(err, "body must be a JSON object");
    assert_int_equal(admin_replay_parse("{", 1, &rp, err, sizeof err), -1);
    assert_non_null(strstr(err, "body is not JSON"));
}

/* ---- the server over loopback ---- */

struct fixture {
    struct event_base *eb;
    struct http_server *srv;
    struct http_server_req *held;       /* a request the handler keeps (path "/hold") */
    struct http_server_req *stream;     /* a streamed answer (path "/stream") */
    int stream_closed;                  /* times its closed callback ran */
    int calls;
};

static void on_stream_closed(struct http_server_req *req, void *arg)
{
    struct fixture *f = arg;
    assert_ptr_equal(req, f->stream);
    f->stream_closed++;
}

static void on_request(struct http_server_req *req, void *arg)
{
    struct fixture *f = arg;
    size_t len;
    const char *body = http_server_req_body(req, &len);
    char out[256];

    f->calls++;
    if (strcmp(http_server_req_path(req), "/hold") == 0) {
        f->held = req;
        return;
    }
    if (strcmp(http_server_req_path(req), "/stream") == 0) {
        f->stream = req;
        assert_int_equal(http_server_stream_start(req, "application/x-ndjson", on_stream_closed, f), 0);
        assert_int_equal(http_server_stream_write(req, "{\"a\":1}\n", 8), 0);
        return;
    }
    snprintf(out, sizeof out, "%s %zu %s", http_server_req_path(req), len, body);
    http_server_reply(req, 200, "text/plain", out, strlen(out));
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    f->eb = event_base_new();
    f->srv = http_server_new(f->eb, "127.0.0.1:0", "test", &limits, on_request, f, err, sizeof err);
    assert_non_null(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    http_server_free(f->srv);
    if (f->held)
        http_server_reply(f->held, 200, "text/plain", "", 0);   /* orphaned: only freed */
    if (f->stream)
        http_server_stream_end(f->stream);                       /* orphaned: only freed */
    event_base_free(f->eb);
    free(f);
    return 0;
}

static int client(struct fixture *f)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)http_server_port(f->srv)) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    event_base_loop(f->eb, EVLOOP_NONBLOCK);   /* accept it */
    return fd;
}

/* Runs the loop until the client has @p want bytes containing @p until (or the connection
 * closed, when @p until is NULL), for at most @p ms. Returns what it read. */
static char *exchange(struct fixture *f, int fd, const char *send_text, const char *until, int ms, int *closed)
{
    static char got[8192];
    size_t n = 0;
    struct timespec t0, t;

    if (send_text)
        assert_int_equal(send(fd, send_text, strlen(send_text), 0), (ssize_t)strlen(send_text));
    *closed = 0;
    got[0] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        ssize_t r;
        event_base_loop(f->eb, EVLOOP_NONBLOCK);
        while ((r = recv(fd, got + n, sizeof got - 1 - n, 0)) > 0) {
            n += (size_t)r;
            got[n] = '\0';
        }
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
            *closed = 1;
            return got;
        }
        if (until && strstr(got, until))
            return got;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
            return got;
        usleep(1000);
    }
}

static void test_server_keepalive_pipelining(void **state)
{
    struct fixture *f = *state;
    int fd = client(f), closed;
    char *got = exchange(f, fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiPUT /c HTTP/1.1\r\nHost: x\r\n\r\n",
                         "405", 2000, &closed);
    assert_false(closed);
    assert_non_null(strstr(got, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n/a 0 HTTP/1.1 200"));
    assert_non_null(strstr(got, "/b 2 hi"));
    assert_non_null(strstr(got, "HTTP/1.1 405 Method Not Allowed"));
    assert_non_null(strstr(got, "Allow: GET, POST"));
    assert_int_equal(f->calls, 2);
    got = exchange(f, fd, "GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 2000, &closed);
    assert_true(closed);
    assert_non_null(strstr(got, "Connection: close\r\n\r\n/d 0 "));
    close(fd);
}

static void test_server_continue_and_errors(void **state)
{
    struct fixture *f = *state;
    int fd = client(f), closed;
    char *got = exchange(f, fd, "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", "100 Continue", 2000, &closed);
    assert_non_null(strstr(got, "HTTP/1.1 100 Continue\r\n\r\n"));
    got = exchange(f, fd, "abc", "/e 3 abc", 2000, &closed);
    assert_non_null(strstr(got, "/e 3 abc"));
    got = exchange(f, fd, "GET / HTTP/1.1\r\nHost: x\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, 2000, &closed);
    assert_true(closed);
    assert_non_null(strstr(got, "HTTP/1.1 431 Request Header Fields Too Large"));
    assert_int_equal(http_server_rejected(f->srv)[HTTP_REJECT_HEADERS_TOO_LARGE], 1);
    close(fd);
}

static void test_server_deadline_and_cap(void **state)
{
    struct fixture *f = *state;
    int fds[5], closed;
    char *got;

    for (int i = 0; i < 4; i++)
        fds[i] = client(f);
    assert_int_equal(http_server_connections(f->srv), 4);
    send(fds[0], "GET / HTT", 9, 0);
    fds[4] = client(f);                           /* over the cap: the oldest still sending goes */
    assert_int_equal(http_server_rejected(f->srv)[HTTP_REJECT_TOO_MANY_CONNECTIONS], 1);
    assert_int_equal(http_server_connections(f->srv), 4);
    exchange(f, fds[0], NULL, NULL, 500, &closed);
    assert_true(closed);
    got = exchange(f, fds[1], "GET /x HTTP/1.1\r\n", NULL, 2000, &closed);   /* then never finished */
    assert_true(closed);
    assert_non_null(strstr(got, "HTTP/1.1 408 Request Timeout"));
    assert_true(http_server_rejected(f->srv)[HTTP_REJECT_REQUEST_TIMEOUT] >= 1);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
}

static void test_server_reply_after_client_left(void **state)
{
    struct fixture *f = *state;
    int fd = client(f), closed;

    exchange(f, fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 100, &closed);
    assert_non_null(f->held);
    close(fd);
    for (int i = 0; i < 20 && http_server_connections(f->srv); i++) {
        event_base_loop(f->eb, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    /* While the request is held nothing is read, so the close shows only when the server frees
     * the connection (teardown); the held request stays valid and its reply only frees it. */
    assert_int_equal(http_server_connections(f->srv), 1);
}

/* A streamed answer: chunked, outlives the request deadline (300 ms here), ends with the last
 * chunk and the connection's close. */
static void test_server_stream(void **state)
{
    struct fixture *f = *state;
    int fd = client(f), closed;
    char *got = exchange(f, fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", "{\"a\":1}\n\r\n", 2000, &closed);

    assert_false(closed);
    assert_string_equal(got, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
                             "Connection: close\r\n\r\n8\r\n{\"a\":1}\n\r\n");
    got = exchange(f, fd, "ignored by a stream", NULL, 500, &closed);   /* past the deadline */
    assert_false(closed);
    assert_string_equal(got, "");
    assert_int_equal(http_server_stream_write(f->stream, "{\"b\":22}\n", 9), 0);
    assert_int_equal(http_server_stream_write(f->stream, "", 0), 0);      /* no chunk: it would end the body */
    assert_true(http_server_stream_unsent(f->stream) > 0);
    http_server_stream_end(f->stream);
    f->stream = NULL;
    got = exchange(f, fd, NULL, NULL, 2000, &closed);
    assert_true(closed);
    assert_string_equal(got, "9\r\n{\"b\":22}\n\r\n0\r\n\r\n");
    assert_int_equal(f->stream_closed, 0);
    close(fd);
}

/* HTTP/1.0 has no chunks: the raw bytes, then the close, at once when all is written already. */
static void test_server_stream_http10(void **state)
{
    struct fixture *f = *state;
    int fd = client(f), closed;
    char *got = exchange(f, fd, "GET /stream HTTP/1.0\r\n\r\n", "{\"a\":1}\n", 2000, &closed);

    assert_false(closed);
    assert_string_equal(got, "HTTP/1.0 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n{\"a\":1}\n");
    http_server_stream_end(f->stream);
    f->stream = NULL;
    got = exchange(f, fd, NULL, NULL, 200, &closed);   /* before the 300 ms deadline */
    assert_true(closed);
    assert_string_equal(got, "");
    close(fd);
}

/* The client goes: the handler is told once, and its end only frees the request. */
static void test_server_stream_client_left(void **state)
{
    struct fixture *f = *state;
    int fd = client(f), closed;

    exchange(f, fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", "\r\n\r\n", 2000, &closed);
    assert_non_null(f->stream);
    close(fd);
    for (int i = 0; i < 200 && !f->stream_closed; i++) {
        event_base_loop(f->eb, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    assert_int_equal(f->stream_closed, 1);
    assert_int_equal(http_server_connections(f->srv), 0);
    assert_int_equal(http_server_stream_write(f->stream, "x", 1), -1);
    assert_int_equal(http_server_stream_unsent(f->stream), 0);
    http_server_stream_end(f->stream);
    f->stream = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_get),
        cmocka_unit_test(test_parse_post_and_flags),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_parse_caps),
        cmocka_unit_test(test_parse_resumes),
        cmocka_unit_test(test_route),
        cmocka_unit_test_setup_teardown(test_server_keepalive_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_continue_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_deadline_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_reply_after_client_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_stream_client_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_stream_http10, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
