/* RESP for the redis sink (see redis_resp.h): bulk strings written into a struct buf. No I/O here. */
#include <stdlib.h>
#include <string.h>

#include "redis_resp.h"

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

int resp_put_bulk(struct buf *b, const void *data, size_t n)
{
    char *o;

    if (buf_reserve(b, n + 26) != 0)
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

int resp_put_bulk_int(struct buf *b, long long v)
{
    char text[24];
    return resp_put_bulk(b, text, redis_fmt_int(text, v));
}
