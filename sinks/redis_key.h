/* The redis sink's pure parts, kept apart from its I/O so that unit tests reach them: the
 * connection URL, the text a JSON value (read in place by lib/json.h: no DOM, no allocation,
 * the sink's hot path) is stored as, and the key template. */
#ifndef SLUICE_REDIS_KEY_H
#define SLUICE_REDIS_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/json.h"
#include "redis_resp.h"
#include "sink.h"

/* ---- URL ---- */

/* redis://[user[:password]@]host[:port][/db], rediss:// for TLS; user and password may be
 * percent-encoded. A user without a password takes it from the password option. */
struct redis_url {
    int tls;               /* rediss:// */
    char *host;            /* without the brackets of an IPv6 literal */
    int port;              /* 6379 when absent */
    int db;                /* 0 when absent */
    char *user;            /* NULL when absent */
    char *password;        /* NULL when absent */
};

/**
 * @brief Parse @p text into @p url. The reason of a failure never quotes the password.
 * @return 0, or -1 with the reason in @p err (and nothing to free).
 */
int redis_url_parse(const char *text, struct redis_url *url, char *err, size_t errlen);
void redis_url_free(struct redis_url *url);

/* ---- values as Redis stores them ---- */

/**
 * @brief Append the text a value (of a text json_read checked) is stored as in Redis: a
 * string's characters (unescaped, unquoted), a number exactly as written, true, false, null,
 * and objects and arrays as their JSON text without insignificant white space. 0 or -1 (out of
 * memory).
 */
int redis_text_append(struct buf *out, const struct json_slice *v);

/* ---- key template ---- */

/* A key template: literal text with {key} (the record key), {topic}, {partition} and {$.path}
 * (a field of the JSON value: $.a.b, $.items[0], $["odd key"]) filled per record; {{ and }}
 * are literal braces. */
struct redis_template;

/** @brief Compile @p text; NULL with the reason in @p err. */
struct redis_template *redis_template_compile(const char *text, char *err, size_t errlen);
/** @brief 1 when the template reads fields of the value (a tombstone cannot fill it). */
int redis_template_uses_value(const struct redis_template *t);
/**
 * @brief Append the key of @p rec to @p out; @p doc is its parsed value (NULL for a tombstone).
 * @return 0, or -1 with the reason (a missing or non-scalar field, no record key) in @p err.
 */
int redis_template_render(const struct redis_template *t, const struct sink_record *rec, const struct json_slice *doc,
                          struct buf *out, char *err, size_t errlen);
void redis_template_free(struct redis_template *t);

#endif
