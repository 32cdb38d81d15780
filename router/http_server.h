/* A small, strict HTTP/1.1 server on the event loop, for sluice's own listeners (the admin API,
 * a health listener). It bounds what one client can make it hold: the request line, the header
 * bytes and lines, the body (Content-Length only; Transfer-Encoding is refused), the time to send
 * a whole request, and the number of connections. Over a cap the client gets 414/431/413/408 (or
 * is closed, for the connection cap), the connection is closed, and a counter by reason moves.
 *
 * Why not libevent's evhttp (2.1): over its header limit it answers 413, it cannot tell a long
 * request line from large headers, it counts no header lines, it has only an idle timeout (a
 * client that keeps sending is never idle), no connection cap and no hook to count rejections;
 * and its line reader searches the whole buffer again on every read. Adding all of that around it
 * would leave the parser, the part that matters, out of our hands and out of the fuzzer's.
 *
 * http_head_feed (http_parse.c) is the parser: a pure function over bytes, kept resumable so
 * that each byte is scanned once however the request is split across reads. */
#ifndef SLUICE_HTTP_SERVER_H
#define SLUICE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#define HTTP_FIELDS_MAX 100          /* upper bound of http_limits.max_headers (a fixed array per connection) */
#define HTTP_HEAD_BYTES_MAX 65535    /* upper bound of http_limits.max_head_bytes (offsets are 16 bits) */

struct http_limits {
    size_t max_request_line;         /* bytes of the request line (without CRLF); over: 414 */
    size_t max_head_bytes;           /* request line and header lines together; over: 431 */
    size_t max_headers;              /* header lines; over: 431 */
    size_t max_body;                 /* Content-Length; over: 413 */
    unsigned request_timeout_ms;     /* to send a whole request (and to read the answer); over: 408 */
    unsigned max_connections;        /* open at once; a new one evicts the oldest still sending */
};

#define HTTP_LIMITS_DEFAULT { 8192, 16384, 64, 65536, 10000, 256 }

/* Why a client was cut off; each has a counter (http_server_rejected). */
enum http_reject {
    HTTP_REJECT_HEADERS_TOO_LARGE,
    HTTP_REJECT_REQUEST_LINE_TOO_LONG,
    HTTP_REJECT_TOO_MANY_HEADERS,
    HTTP_REJECT_REQUEST_TIMEOUT,
    HTTP_REJECT_TOO_MANY_CONNECTIONS,
    HTTP_REJECT_BODY_TOO_LARGE,
    HTTP_REJECT_BAD_REQUEST,
    HTTP_REJECT_COUNT
};

/** @brief "headers_too_large", "request_line_too_long", ... (metric label values). */
const char *http_reject_name(enum http_reject reason);

enum http_method { HTTP_GET, HTTP_POST, HTTP_OTHER /* a well-formed method sluice does not serve */ };

#define HTTP_HEAD_CLOSE      0x1u    /* Connection: close */
#define HTTP_HEAD_KEEP_ALIVE 0x2u    /* Connection: keep-alive (HTTP/1.0) */
#define HTTP_HEAD_CONTINUE   0x4u    /* Expect: 100-continue */
#define HTTP_HEAD_HOST       0x8u    /* a Host header was seen */
#define HTTP_HEAD_CHUNKED    0x10u   /* Transfer-Encoding was seen (refused) */

/* Offsets into the head buffer of NUL-terminated strings: the buffer may move as it grows. */
struct http_field {
    uint16_t name, value;
};

/* The parser's state and result. Zero it (http_head_reset) before the first byte of a request. */
struct http_head {
    size_t pos;                      /* bytes scanned so far: the next call starts here */
    size_t line;                     /* start of the line being scanned */
    int have_request_line;
    size_t len;                      /* when complete: bytes of the head, its empty line included */
    enum http_method method;
    uint16_t target;                 /* the path (NUL-terminated, without the query) */
    uint16_t query;                  /* the text after '?', 0 when none */
    int minor_version;               /* HTTP/1.0 or HTTP/1.1 */
    long long content_length;        /* -1 when absent */
    unsigned flags;                  /* HTTP_HEAD_* */
    size_t nfields;
    struct http_field fields[HTTP_FIELDS_MAX];
    int status;                      /* on error: the status to answer (400, 414, 431, 501, 505) */
    enum http_reject reject;         /* on error: the counter it goes to */
};

void http_head_reset(struct http_head *h);

/**
 * @brief Scan the bytes of @p buf from h->pos to @p len: @p buf holds everything received of this
 * request so far (at most lim->max_head_bytes bytes; the caller appends, never rewrites). Line
 * ends are replaced by NULs in place.
 * @return 0: more bytes needed; 1: the head is complete (h->len bytes; what follows is body or
 * the next request); -1: refused, with h->status and h->reject set.
 */
int http_head_feed(struct http_head *h, char *buf, size_t len, const struct http_limits *lim);

/** @brief The value of header @p name (case-insensitive; the first one), or NULL. */
const char *http_head_field(const struct http_head *h, const char *buf, const char *name);

/**
 * @brief Percent-decode the value of parameter @p name in query string @p query ("a=1&b=%20")
 * ('+' is a space). @return a malloc'd string (the caller frees it), or NULL when absent, badly
 * encoded or holding a NUL.
 */
char *http_query_param(const char *query, const char *name);

struct http_server;
struct http_server_req;

/* Called once per complete request; the handler owns @p req until it calls http_server_reply, then or
 * later (from another callback), exactly once. */
typedef void (*http_handler_fn)(struct http_server_req *req, void *arg);

/**
 * @brief Listen on @p listen ("host:port", port 0 for any); @p name prefixes log lines ("admin").
 * @return the server, or NULL with the reason in @p err.
 */
struct http_server *http_server_new(struct event_base *eb, const char *listen, const char *name,
                                    const struct http_limits *lim, http_handler_fn handler, void *arg,
                                    char *err, size_t errlen);

/** @brief The port bound (for "host:0"), or -1. */
int http_server_port(const struct http_server *srv);

/** @brief Clients cut off so far, per enum http_reject. */
const uint64_t *http_server_rejected(const struct http_server *srv);

/** @brief Connections open now. */
size_t http_server_connections(const struct http_server *srv);

/** @brief Close every connection and stop listening. Requests still held by a handler stay
 * valid: their http_server_reply only frees them. */
void http_server_free(struct http_server *srv);

enum http_method http_server_req_method(const struct http_server_req *req);
/** @brief The path, not decoded, without the query. */
const char *http_server_req_path(const struct http_server_req *req);
/** @brief The query (after '?', not decoded), or NULL. */
const char *http_server_req_query(const struct http_server_req *req);
const char *http_server_req_header(const struct http_server_req *req, const char *name);
/** @brief The body (NUL-terminated; "" when none) and its length. */
const char *http_server_req_body(const struct http_server_req *req, size_t *len);

/** @brief Add a header to the answer (before http_server_reply); 0, or -1 when out of memory. */
int http_server_reply_header(struct http_server_req *req, const char *name, const char *value);

/** @brief Answer and free @p req (a request whose connection is gone is only freed). */
void http_server_reply(struct http_server_req *req, int status, const char *content_type, const char *body, size_t len);

/* A streamed answer (GET /sinks/NAME/tap): the head goes out at once, then the body in pieces
 * for as long as the handler likes, chunked (HTTP/1.1; an HTTP/1.0 client gets the raw bytes and
 * the end of the connection). The handler keeps the request until http_server_stream_end. */

/* The client went away: called once, from inside the server; the handler still owns @p req and
 * ends it (http_server_stream_end only frees it then). */
typedef void (*http_stream_closed_fn)(struct http_server_req *req, void *arg);

/** @brief Send the head (200, @p content_type); 0, or -1 when the connection is gone. */
int http_server_stream_start(struct http_server_req *req, const char *content_type,
                             http_stream_closed_fn closed, void *arg);

/** @brief Queue @p len bytes as one chunk; 0, or -1 when the connection is gone. */
int http_server_stream_write(struct http_server_req *req, const char *data, size_t len);

/** @brief Bytes queued and not yet taken by the client (what a slow client makes us hold). */
size_t http_server_stream_unsent(const struct http_server_req *req);

/** @brief End the body, close the connection once it is written, and free @p req. */
void http_server_stream_end(struct http_server_req *req);

#endif
