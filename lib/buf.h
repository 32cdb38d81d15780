/* One growable byte buffer for the whole program (redis commands, postgres rows and SQL, HTTP
 * bodies and templates, configuration text), with an optional cap as curl's
 * curlx_dyn_init(s, toobig): a buffer that input can grow says how far.
 *
 * A zeroed struct buf is an empty buffer without a cap. Growth that fails (out of memory, or
 * past the cap) sets oom and returns -1; oom stays set until buf_reset or buf_free, so a caller
 * that appends many pieces may check once at the end. Text added with buf_add* is followed by a
 * NUL (not counted in len), so p is a C string whenever it is not NULL. */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *p;
    size_t len, cap;
    size_t max;                     /* the most len may reach; 0: no cap */
    int oom;                        /* a growth failed (out of memory or over max) */
};

/** @brief An empty buffer whose length may not pass @p max bytes (0: no cap). */
void buf_init(struct buf *b, size_t max);
/** @brief Grow so that @p more bytes and a NUL fit after len: the slow half of buf_reserve. */
int buf_grow(struct buf *b, size_t more);

/** @brief Room for @p more bytes and a NUL after len; 0, or -1 (oom set, contents kept). */
static inline int buf_reserve(struct buf *b, size_t more)
{
    if (b->cap - b->len > more)     /* inline: the hot paths append small pieces to warm buffers */
        return 0;
    return buf_grow(b, more);
}

/** @brief Append @p n bytes of @p data (NULL: leave them for the caller to fill); 0 or -1. */
static inline int buf_add(struct buf *b, const void *data, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n && data)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/** @brief Append the C string @p s; 0 or -1. */
int buf_adds(struct buf *b, const char *s);
/** @brief Append a decimal integer (no printf: it runs for every record); 0 or -1. */
int buf_add_i64(struct buf *b, int64_t v);
/** @brief Append printf-formatted text; 0 or -1. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** @brief Empty the buffer for reuse, keeping its memory and cap; clears oom. */
void buf_reset(struct buf *b);
/** @brief Hand the text over (NUL-terminated; "" when empty) and reset the buffer; NULL, with
 * the buffer freed, when oom. @p len may be NULL. */
char *buf_steal(struct buf *b, size_t *len);
/** @brief Release the memory; the buffer is empty and keeps its cap. */
void buf_free(struct buf *b);

#endif
