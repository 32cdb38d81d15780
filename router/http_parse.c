/* The HTTP/1.1 request head parser of http_server.h: resumable, strict, bounded. Each call scans
 * only the bytes it has not seen (memchr for the line end from h->pos), so a head sent one byte
 * at a time, or a header line that never ends, costs time linear in its length until a cap
 * stops it. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_server.h"
#include "lib/uri.h"

static const char *const reject_names[HTTP_REJECT_COUNT] = {
    [HTTP_REJECT_HEADERS_TOO_LARGE] = "headers_too_large",
    [HTTP_REJECT_REQUEST_LINE_TOO_LONG] = "request_line_too_long",
    [HTTP_REJECT_TOO_MANY_HEADERS] = "too_many_headers",
    [HTTP_REJECT_REQUEST_TIMEOUT] = "request_timeout",
    [HTTP_REJECT_TOO_MANY_CONNECTIONS] = "too_many_connections",
    [HTTP_REJECT_BODY_TOO_LARGE] = "body_too_large",
    [HTTP_REJECT_BAD_REQUEST] = "bad_request",
};

const char *http_reject_name(enum http_reject reason)
{
    return (unsigned)reason < HTTP_REJECT_COUNT ? reject_names[reason] : "?";
}

void http_head_reset(struct http_head *h)
{
    /* The fields array is only read up to nfields: no need to clear it for every request. */
    h->pos = h->line = h->len = 0;
    h->have_request_line = 0;
    h->method = HTTP_OTHER;
    h->target = h->query = 0;
    h->minor_version = 1;
    h->content_length = -1;
    h->flags = 0;
    h->nfields = 0;
    h->status = 0;
    h->reject = HTTP_REJECT_BAD_REQUEST;
}

static int head_fail(struct http_head *h, int status, enum http_reject reject)
{
    h->status = status;
    h->reject = reject;
    return -1;
}

/* RFC 9110 token characters (methods, header names). */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Does the comma-separated list @p v hold token @p tok (case-insensitive)? */
static int list_has(const char *v, const char *tok)
{
    size_t n = strlen(tok);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        if (strncasecmp(v, tok, n) == 0 && (v[n] == '\0' || v[n] == ',' || v[n] == ' ' || v[n] == '\t'))
            return 1;
        while (*v && *v != ',')
            v++;
    }
    return 0;
}

/* "METHOD SP origin-form SP HTTP/1.x", single spaces, nothing else. */
static int parse_request_line(struct http_head *h, char *buf, size_t start, size_t end)
{
    size_t i = start, m, t;

    while (i < end && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == start || i >= end || buf[i] != ' ')
        return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
    m = i - start;
    if (m == 3 && memcmp(buf + start, "GET", 3) == 0)
        h->method = HTTP_GET;
    else if (m == 4 && memcmp(buf + start, "POST", 4) == 0)
        h->method = HTTP_POST;
    else
        h->method = HTTP_OTHER;
    t = ++i;
    if (i >= end || buf[i] != '/')    /* origin-form only: no proxy forms, no "*" */
        return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
    while (i < end && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f) {
        if (buf[i] == '?' && !h->query) {
            buf[i] = '\0';
            h->query = (uint16_t)(i + 1);
        }
        i++;
    }
    if (i >= end || buf[i] != ' ')
        return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
    buf[i++] = '\0';
    h->target = (uint16_t)t;
    if (end - i != 8 || memcmp(buf + i, "HTTP/", 5) != 0 || buf[i + 6] != '.' ||
        buf[i + 5] < '0' || buf[i + 5] > '9' || buf[i + 7] < '0' || buf[i + 7] > '9')
        return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
    if (buf[i + 5] != '1' || (buf[i + 7] != '0' && buf[i + 7] != '1'))
        return head_fail(h, 505, HTTP_REJECT_BAD_REQUEST);
    h->minor_version = buf[i + 7] - '0';
    h->have_request_line = 1;
    return 0;
}

/* Content-Length: digits only, one header only (a second one, even equal, is refused). */
static int parse_content_length(struct http_head *h, const char *v)
{
    long long n = 0;

    if (h->content_length >= 0 || !*v)
        return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
        if (n > 99999999999LL)       /* far over any body limit; stops the overflow */
            return head_fail(h, 413, HTTP_REJECT_BODY_TOO_LARGE);
        n = n * 10 + (*v - '0');
    }
    h->content_length = n;
    return 0;
}

/* "name: value" with OWS trimmed; no folding, no space before the colon, no control bytes. */
static int parse_field(struct http_head *h, char *buf, size_t start, size_t end, const struct http_limits *lim)
{
    size_t i = start, v, e;
    const char *name, *value;

    if (h->nfields >= lim->max_headers || h->nfields >= HTTP_FIELDS_MAX)
        return head_fail(h, 431, HTTP_REJECT_TOO_MANY_HEADERS);
    while (i < end && is_tchar((unsigned char)buf[i]))
        i++;
    if (i == start || i >= end || buf[i] != ':')
        return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
    buf[i] = '\0';
    v = i + 1;
    while (v < end && (buf[v] == ' ' || buf[v] == '\t'))
        v++;
    e = end;
    while (e > v && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
        e--;
    for (size_t k = v; k < e; k++)
        if (((unsigned char)buf[k] < 0x20 && buf[k] != '\t') || buf[k] == 0x7f)
            return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
    buf[e] = '\0';
    h->fields[h->nfields].name = (uint16_t)start;
    h->fields[h->nfields].value = (uint16_t)v;
    h->nfields++;
    name = buf + start;
    value = buf + v;
    if (strcasecmp(name, "content-length") == 0)
        return parse_content_length(h, value);
    if (strcasecmp(name, "transfer-encoding") == 0)
        h->flags |= HTTP_HEAD_CHUNKED;
    else if (strcasecmp(name, "connection") == 0) {
        if (list_has(value, "close"))
            h->flags |= HTTP_HEAD_CLOSE;
        if (list_has(value, "keep-alive"))
            h->flags |= HTTP_HEAD_KEEP_ALIVE;
    } else if (strcasecmp(name, "expect") == 0 && strcasecmp(value, "100-continue") == 0)
        h->flags |= HTTP_HEAD_CONTINUE;
    else if (strcasecmp(name, "host") == 0) {
        if (h->flags & HTTP_HEAD_HOST)
            return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
        h->flags |= HTTP_HEAD_HOST;
    }
    return 0;
}

/* One complete line [start, end), its line end already cut off. */
static int head_line(struct http_head *h, char *buf, size_t start, size_t end, const struct http_limits *lim)
{
    if (!h->have_request_line) {
        if (end - start > lim->max_request_line)
            return head_fail(h, 414, HTTP_REJECT_REQUEST_LINE_TOO_LONG);
        if (start == end)     /* empty lines before a request are ignored (RFC 9112 2.2) */
            return 0;
        return parse_request_line(h, buf, start, end);
    }
    if (start != end)
        return parse_field(h, buf, start, end, lim);
    /* The empty line: the head is complete. */
    h->len = h->pos;
    if (h->minor_version == 1 && !(h->flags & HTTP_HEAD_HOST))
        return head_fail(h, 400, HTTP_REJECT_BAD_REQUEST);
    if (h->flags & HTTP_HEAD_CHUNKED)
        return head_fail(h, 501, HTTP_REJECT_BAD_REQUEST);
    if (h->content_length > (long long)lim->max_body)
        return head_fail(h, 413, HTTP_REJECT_BODY_TOO_LARGE);
    return 1;
}

int http_head_feed(struct http_head *h, char *buf, size_t len, const struct http_limits *lim)
{
    size_t cap = lim->max_head_bytes < HTTP_HEAD_BYTES_MAX ? lim->max_head_bytes : HTTP_HEAD_BYTES_MAX;

    if (h->status)
        return -1;
    if (len > cap)        /* the caller's contract; offsets must fit in 16 bits */
        len = cap;
    while (h->pos < len) {
        char *nl = memchr(buf + h->pos, '\n', len - h->pos);
        size_t end;
        int rc;

        if (!nl) {
            h->pos = len;
            break;
        }
        end = (size_t)(nl - buf);
        h->pos = end + 1;
        *nl = '\0';
        if (end > h->line && buf[end - 1] == '\r')
            buf[--end] = '\0';
        /* A bare CR elsewhere is refused by the line's own checks (control byte). */
        rc = head_line(h, buf, h->line, end, lim);
        h->line = h->pos;
        if (rc != 0)
            return rc;
    }
    /* The line in progress. +1: its last byte may be the CR of a line that is just long enough. */
    if (!h->have_request_line && h->pos - h->line > lim->max_request_line + 1)
        return head_fail(h, 414, HTTP_REJECT_REQUEST_LINE_TOO_LONG);
    if (len >= cap)
        return head_fail(h, h->have_request_line ? 431 : 414,
                         h->have_request_line ? HTTP_REJECT_HEADERS_TOO_LARGE : HTTP_REJECT_REQUEST_LINE_TOO_LONG);
    return 0;
}

const char *http_head_field(const struct http_head *h, const char *buf, const char *name)
{
    for (size_t i = 0; i < h->nfields; i++)
        if (strcasecmp(buf + h->fields[i].name, name) == 0)
            return buf + h->fields[i].value;
    return NULL;
}

char *http_query_param(const char *query, const char *name)
{
    return uri_query_param(query, name);
}
