/* RESP for the redis sink: a growable byte buffer and the bulk strings of a command. */
#ifndef SLUICE_REDIS_RESP_H
#define SLUICE_REDIS_RESP_H

#include <stddef.h>

/* ---- buffers ---- */

/* A growable byte buffer. */
struct rbuf {
    char *p;
    size_t len, cap;
};

/** @brief Make room for @p more bytes; 0, or -1 when out of memory (the buffer is unchanged). */
int rbuf_reserve(struct rbuf *b, size_t more);
/** @brief Append @p n bytes; 0 or -1 (out of memory). */
int rbuf_put(struct rbuf *b, const void *data, size_t n);
/** @brief Append one RESP bulk string ("$<n>\r\n<data>\r\n"); 0 or -1. */
int rbuf_put_bulk(struct rbuf *b, const void *data, size_t n);
/** @brief Append one RESP bulk string holding the decimal @p v; 0 or -1. */
int rbuf_put_bulk_int(struct rbuf *b, long long v);
/** @brief Write the decimal @p v to @p out (room for 21 bytes); returns its length. */
size_t redis_fmt_int(char *out, long long v);
void rbuf_free(struct rbuf *b);

#endif
