/* JSON read in place, over (text, length), with no tree and no allocation. Errors read
 * "<what> at byte N" (N counted from the start of the text). */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <stddef.h>

/** @brief Deepest nesting of arrays and objects json_check accepts (jansson's limit too). */
#define JSON_MAX_DEPTH 2048

/** @brief 1 when @p s[0..n) is valid UTF-8 (no overlongs, no surrogates), else 0. */
int json_utf8_valid(const char *s, size_t n);
/** @brief Offset of the first byte of @p s[0..n) that does not start a well-formed UTF-8
 * sequence, or @p n when all of it is valid: for errors that say where. */
size_t json_utf8_invalid_at(const char *s, size_t n);

/**
 * @brief Check that @p s[0..n) is one JSON text (RFC 8259: any value at the top, surrounding
 * whitespace allowed, \u0000 allowed) in UTF-8, without building a tree: for a sink that
 * forwards values as they are. @return 0, or -1 with what is wrong and its byte offset in
 * @p err ("unexpected character at byte 7").
 */
int json_check(const char *s, size_t n, char *err, size_t errlen);

#endif
