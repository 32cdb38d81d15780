/* The growable byte buffer (see buf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "decimal.h"

void buf_init(struct buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

int buf_grow(struct buf *b, size_t more)
{
    size_t need, want;
    char *p;

    if (b->oom)
        return -1;
    if (more > SIZE_MAX - 1 - b->len || (b->max && b->len + more > b->max)) {
        b->oom = 1;
        return -1;
    }
    need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    want = b->cap ? b->cap : 256;
    while (want < need)
        want = want > SIZE_MAX / 2 ? need : want * 2;
    /* a capped buffer never holds more than its cap (and the NUL) */
    if (b->max && want > b->max + 1)
        want = b->max + 1;
    if (!(p = realloc(b->p, want))) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = want;
    return 0;
}

int buf_adds(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_add_i64(struct buf *b, int64_t v)
{
    size_t n = decimal_len(v);

    if (buf_reserve(b, n) != 0)
        return -1;
    b->len = (size_t)(decimal_put(b->p + b->len, v) - b->p);
    b->p[b->len] = '\0';
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    int n;

    /* one vsnprintf for the usual short text, two when it does not fit in small */
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return -1;
    }
    if ((size_t)n < sizeof small)
        return buf_add(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->p)
        b->p[0] = '\0';
}

char *buf_steal(struct buf *b, size_t *len)
{
    char *p;

    if (b->oom || buf_reserve(b, 0) != 0) {
        buf_free(b);
        return NULL;
    }
    b->p[b->len] = '\0';          /* also when nothing was added */
    p = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
