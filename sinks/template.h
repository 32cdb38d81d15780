/* Text for the HTTP sinks (built in a struct buf, lib/buf.h): JSON and URL escaping, and templates over a
 * record. A string template ("https://api.example.com/contacts/{$.id}?source={topic}") is
 * literal text with placeholders in braces; a JSON template is a JSON value whose strings may
 * hold placeholders, rendered into a new JSON value per record, with an optional {"$each": T}
 * node that becomes the array of T rendered over every record of a batch.
 *
 * Placeholders: {$} the whole value, {$.a.b} / {$.items[0]} / {$["odd key"]} a path into it,
 * {key}, {topic}, {partition}, {offset}, {timestamp} (ms), {id} (the record's idempotency id).
 * A trailing ? ({$.phone?}) makes a missing field null (or empty text) instead of an error.
 * {{ and }} stand for literal braces.
 *
 * Escaping follows where a value lands: inside a URL it is percent-encoded (RFC 3986: all but
 * A-Z a-z 0-9 - . _ ~); inside JSON it becomes a JSON value, so jansson escapes it; a string
 * node that is exactly one placeholder takes the field's JSON type (number, object, ...);
 * inside a header value, CR, LF and NUL are refused (no header injection). */
#ifndef SLUICE_TEMPLATE_H
#define SLUICE_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "lib/buf.h"

/** @brief Append @p s as a quoted JSON string. -1 (nothing appended) when not valid UTF-8. */
int tpl_json_escape(struct buf *b, const char *s, size_t n);

/** @brief Length of @p s JSON-escaped, without the quotes; -1 when not valid UTF-8. */
long long tpl_json_escaped_len(const char *s, size_t n);

/** @brief Write @p s JSON-escaped, without the quotes, at @p out, which has room for
 * tpl_json_escaped_len() bytes (UTF-8 checked beforehand); returns the end of what it wrote. */
char *tpl_json_escape_to(char *out, const char *s, size_t n);

/** @brief tpl_json_escape_to between quotes, or `null` when @p s is NULL; room for
 * tpl_json_escaped_len() + 2 bytes (4 for null). */
char *tpl_json_quote_to(char *out, const char *s, size_t n);

/** @brief Append @p s percent-encoded: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX. */
void tpl_url_escape(struct buf *b, const char *s, size_t n);

/* What a template may read of a record. */
struct tpl_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *key;          /* NULL: no key */
    size_t key_len;
    int64_t timestamp_ms;     /* -1: none */
    json_t *doc;              /* the value; NULL for a tombstone */
    const char *id;           /* the record's idempotency id; NULL: none */
};

/* Fields a template reads (tpl_fields), to refuse per-record fields where a whole batch is
 * rendered at once. */
#define TPL_F_VALUE     0x01u
#define TPL_F_KEY       0x02u
#define TPL_F_TOPIC     0x04u
#define TPL_F_PARTITION 0x08u
#define TPL_F_OFFSET    0x10u
#define TPL_F_TIMESTAMP 0x20u
#define TPL_F_ID        0x40u
#define TPL_F_BATCH     (TPL_F_TOPIC | TPL_F_PARTITION)   /* the same for every record of a batch */

enum tpl_escape {
    TPL_TEXT,     /* as is (the caller escapes: JSON strings through jansson) */
    TPL_URL,      /* placeholders percent-encoded, literal text as written */
    TPL_HEADER,   /* as is, but CR, LF and NUL make the rendering fail */
};

struct tpl;

/** @brief Compile a string template; NULL with the reason in @p err. */
struct tpl *tpl_compile(const char *text, char *err, size_t errlen);
void tpl_free(struct tpl *t);
/** @brief The TPL_F_* fields @p t reads. */
unsigned tpl_fields(const struct tpl *t);
/** @brief Append the rendering of @p t to @p out. -1 with the reason (a missing field...). */
int tpl_render(const struct tpl *t, const struct tpl_record *rec, enum tpl_escape esc,
               struct buf *out, char *err, size_t errlen);

struct tpl_json;

/** @brief Compile a JSON template (borrowed @p tmpl); NULL with the reason in @p err, which
 * names the JSON path of the bad string ("body.inputs[0].id: ..."). */
struct tpl_json *tpl_json_compile(const json_t *tmpl, char *err, size_t errlen);
void tpl_json_free(struct tpl_json *t);
/** @brief 1 when the template has an {"$each": ...} node. */
int tpl_json_has_each(const struct tpl_json *t);
/** @brief Fields read outside the $each node (with $each) or anywhere (without). */
unsigned tpl_json_outer_fields(const struct tpl_json *t);

/**
 * @brief Without $each: the template rendered over @p rec, as compact JSON text appended to
 * @p out. With $each: the element of one record (the $each node's template over @p rec).
 * -1 with the reason.
 */
int tpl_json_render(const struct tpl_json *t, const struct tpl_record *rec, struct buf *out,
                    char *err, size_t errlen);

/**
 * @brief With $each: the whole body, the part outside $each rendered over @p batch (topic and
 * partition) and the $each node replaced by the array of the @p n element texts (each already
 * rendered by tpl_json_render) in order. -1 with the reason.
 */
int tpl_json_render_batch(const struct tpl_json *t, const struct tpl_record *batch,
                          const char *const *elements, const size_t *lens, size_t n,
                          struct buf *out, char *err, size_t errlen);

#endif
