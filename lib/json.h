/* One JSON reader for the whole program: it works on the text itself (text, length), builds no
 * tree and allocates nothing except where a caller unescapes into its own struct buf. A value
 * is a slice of the text; json_read checks a whole text (RFC 8259, UTF-8, any value at the top,
 * \u0000 allowed, at most JSON_MAX_DEPTH deep) and gives its top value; the other functions
 * take slices json_read gave (or slices of them) and trust that the text was checked. Errors
 * read "<what> at byte N", N counted from the start of the text. */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "jsonpath.h"

/** @brief Deepest nesting of arrays and objects the reader accepts (jansson's limit too). */
#define JSON_MAX_DEPTH 2048

enum json_kind { JK_NONE, JK_STRING, JK_NUMBER, JK_TRUE, JK_FALSE, JK_NULL, JK_OBJECT, JK_ARRAY };

/* A value in a checked text: its type and its text as written (a string's with its quotes, a
 * number's exactly). JK_NONE (p NULL): no value, as a lookup that found nothing gives. */
struct json_slice {
    enum json_kind kind;
    const char *p;
    size_t n;
};

/* The members of an object or the elements of an array, in order. */
struct json_iter {
    const char *p, *end;
    int object;
};

/** @brief 1 when @p s[0..n) is valid UTF-8 (no overlongs, no surrogates), else 0. */
int json_utf8_valid(const char *s, size_t n);
/** @brief Offset of the first byte of @p s[0..n) that does not start a well-formed UTF-8
 * sequence, or @p n when all of it is valid: for errors that say where. */
size_t json_utf8_invalid_at(const char *s, size_t n);

/**
 * @brief Check that @p s[0..n) is one JSON text (surrounding white space allowed) and give its
 * value in @p root (may be NULL). @return 0, or -1 with what is wrong and its byte offset in
 * @p err ("unexpected character at byte 7").
 */
int json_read(const char *s, size_t n, struct json_slice *root, char *err, size_t errlen);

/** @brief json_read without the value: for a sink that forwards values as they are. */
int json_check(const char *s, size_t n, char *err, size_t errlen);

/** @brief Start iterating @p v; an iterator over a value that is no object or array is empty. */
void json_iter_init(struct json_iter *it, const struct json_slice *v);
/**
 * @brief The next member (its name in @p name, a string slice; may be NULL) or element (@p name
 * untouched) in @p value. @return 1, or 0 at the end.
 */
int json_iter_next(struct json_iter *it, struct json_slice *name, struct json_slice *value);

/** @brief The element at @p index of the array @p v, or a JK_NONE slice. */
struct json_slice json_at(const struct json_slice *v, size_t index);
/** @brief The member named @p name of the object @p v (the last when repeated, as jansson):
 * 1 with its name as written in @p key (may be NULL) and its value in @p value, else 0. */
int json_member(const struct json_slice *v, const char *name, size_t len, struct json_slice *key,
                struct json_slice *value);
/** @brief The value of that member, or a JK_NONE slice. */
struct json_slice json_get(const struct json_slice *v, const char *name, size_t len);

/** @brief The value at @p path in @p doc, or a JK_NONE slice. */
struct json_slice json_lookup(const struct json_slice *doc, const struct jsonpath *path);
/**
 * @brief json_lookup of @p npaths paths at once, in one walk of @p doc: out[i] for paths[i]
 * (JK_NONE when absent).
 */
void json_lookup_many(const struct json_slice *doc, const struct jsonpath *const *paths, size_t npaths,
                      struct json_slice *out);

/** @brief 1 when the string slice @p s, unescaped, is @p name[0..len). */
int json_string_equals(const struct json_slice *s, const char *name, size_t len);
/** @brief Append the characters of the string slice @p s, unescaped (\u0000 gives a NUL byte,
 * surrogate pairs one UTF-8 sequence). @return 0, or -1 out of memory. */
int json_unescape(struct buf *out, const struct json_slice *s);
/** @brief Append the text of @p v without the white space between its tokens; 0 or -1. */
int json_compact(struct buf *out, const struct json_slice *v);
/** @brief json_compact at @p out, which has room for v->n bytes; returns the end of what it
 * wrote (no NUL). */
char *json_compact_to(char *out, const struct json_slice *v);

/** @brief A number slice that is an integer within int64_t into @p out: 0, else -1. */
int json_number_i64(const struct json_slice *v, int64_t *out);
/** @brief A number slice as the nearest double (strtod: may be +-HUGE_VAL, or 0 when tiny): 0,
 * else -1 (no number). */
int json_number_double(const struct json_slice *v, double *out);

/** @brief "a string", "a number", "a boolean", "null", "an object", "an array" (for messages). */
const char *json_kind_name(enum json_kind type);

#endif
