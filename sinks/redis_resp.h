/* RESP for the redis sink: the bulk strings of a command, appended to a struct buf (lib/buf.h).
 * Its own functions rather than buf_*: a bulk string is framed ("$<n>\r\n...\r\n") in one reserve. */
#ifndef SLUICE_REDIS_RESP_H
#define SLUICE_REDIS_RESP_H

#include <stddef.h>

#include "lib/buf.h"

/** @brief Append one RESP bulk string ("$<n>\r\n<data>\r\n"); 0 or -1. */
int resp_put_bulk(struct buf *b, const void *data, size_t n);
/** @brief Append one RESP bulk string holding the decimal @p v; 0 or -1. */
int resp_put_bulk_int(struct buf *b, long long v);
/** @brief Write the decimal @p v to @p out (room for 21 bytes); returns its length. */
size_t redis_fmt_int(char *out, long long v);

#endif
