/* The redis sink's pure parts, kept apart from its I/O so that unit tests reach them: the
 * connection URL, a JSON reader that works on the record's own bytes (no DOM, no allocation:
 * the sink's hot path), and the key template. */
#ifndef SLUICE_REDIS_KEY_H
#define SLUICE_REDIS_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "redis_resp.h"
#include "sink.h"

/* ---- URL ---- */

/* redis://[user:password@]host[:port][/db]; user and password may be percent-encoded. */
struct redis_url {
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

/* ---- JSON read in place ---- */

enum rj_type { RJ_STRING, RJ_NUMBER, RJ_TRUE, RJ_FALSE, RJ_NULL, RJ_OBJECT, RJ_ARRAY };

/* A value inside a JSON text: its type and raw text (a string's includes its quotes). */
struct rj_value {
    enum rj_type type;
    const char *p;
    size_t n;
};

struct rj_member {
    struct rj_value key;           /* always RJ_STRING */
    struct rj_value value;
};

/* A parsed record value: the top-level value, and when it is an object, its members in order. */
struct rj_doc {
    struct rj_value root;
    struct rj_member *members;     /* grown as needed; reused from one parse to the next */
    size_t nmembers, cap;
};

/**
 * @brief Check that @p text is one JSON value (RFC 8259, UTF-8; surrounding white space allowed)
 * and record its top level in @p doc.
 * @return 0, -1 with the reason (and the byte offset) in @p err, or -2 when out of memory.
 */
int rj_parse(struct rj_doc *doc, const char *text, size_t n, char *err, size_t errlen);
void rj_doc_free(struct rj_doc *doc);

/** @brief The member of the top-level object named @p name (the last one when repeated), or NULL. */
const struct rj_member *rj_doc_member(const struct rj_doc *doc, const char *name, size_t len);
/** @brief Its value, or NULL. */
const struct rj_value *rj_doc_get(const struct rj_doc *doc, const char *name, size_t len);

/**
 * @brief Append the text a value is stored as in Redis: a string's characters (unescaped,
 * unquoted), a number exactly as written, true, false, null, and objects and arrays as their
 * JSON text without insignificant white space. 0 or -1 (out of memory).
 */
int rj_text_append(struct buf *out, const struct rj_value *v);
/** @brief Append the value as JSON text (strings quoted, white space removed); 0 or -1. */
int rj_json_append(struct buf *out, const struct rj_value *v);
/** @brief Append a string value's characters, unescaped; 0 or -1. */
int rj_string_append(struct buf *out, const struct rj_value *v);
const char *rj_type_name(enum rj_type type);

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
int redis_template_render(const struct redis_template *t, const struct sink_record *rec, const struct rj_doc *doc,
                          struct buf *out, char *err, size_t errlen);
void redis_template_free(struct redis_template *t);

#endif
