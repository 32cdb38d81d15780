/* hiredis' RESP reader with the reply objects in an arena of the reader's (issue 17): its
 * default functions make two mallocs per value (the object and its string), so an HKEYS reply
 * of 11 fields cost 23 mallocs and as many frees, a quarter of the sink's CPU on the optimistic
 * route. Here one reply's objects are carved from a block the reader keeps, and released at
 * once when the reply has been delivered. Same redisReply trees, same parser. */
#ifndef SLUICE_REDIS_REPLY_H
#define SLUICE_REDIS_REPLY_H

#include <hiredis/hiredis.h>

/** @brief A reader whose replies live in its arena; NULL when out of memory. */
redisReader *redis_reply_reader_new(void);
/** @brief Free @p r and its arena (a reply being built with it). NULL is fine. */
void redis_reply_reader_free(redisReader *r);
/** @brief The reply redisReaderGetReply gave is done with: its memory is reused by the next
 * one. Call it after each reply (and never free one with freeReplyObject). */
void redis_reply_release(redisReader *r);

#endif
