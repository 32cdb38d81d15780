/* RESP for the redis sink (see redis_resp.h): the growable buffer its commands are built in,
 * and bulk strings written into it. No I/O here. */
#include <stdlib.h>
#include <string.h>

#include "redis_resp.h"

int rbuf_reserve(struct rbuf *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->cap - b->len >= more)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap - b->len < more)
        cap *= 2;
    if (!(p = realloc(b->p, cap)))
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int rbuf_put(struct rbuf *b, const void *data, size_t n)
{
    if (rbuf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

/* snprintf costs more than the rest of a small bulk string: the hot path formats by hand. */
size_t redis_fmt_int(char *out, long long v)
{
    char tmp[24];
    size_t n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

int rbuf_put_bulk(struct rbuf *b, const void *data, size_t n)
{
    char *o;

    if (rbuf_reserve(b, n + 26) != 0)
        return -1;
    o = b->p + b->len;
    *o++ = '$';
    o += redis_fmt_int(o, (long long)n);
    *o++ = '\r';
    *o++ = '\n';
    if (n)
        memcpy(o, data, n);
    o += n;
    *o++ = '\r';
    *o++ = '\n';
    b->len = (size_t)(o - b->p);
    return 0;
}

int rbuf_put_bulk_int(struct rbuf *b, long long v)
{
    char text[24];
    return rbuf_put_bulk(b, text, redis_fmt_int(text, v));
}

void rbuf_free(struct rbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
