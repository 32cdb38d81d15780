/* JSON read in place (see json.h). So far: the checker that was template.c's tpl_json_check,
 * moved here unchanged (its SWAR fast paths included: it is the webhook sink's hot path) as the
 * first piece of the one reader; the readers of redis_key.c, postgres_map.c and cfg.c are to
 * follow onto it. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence at @p p (no overlong form, no surrogate, at most
 * U+10FFFF), or 0 when there is none. */
static size_t utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = *p, need;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) <= need)
        return 0;
    for (unsigned i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need + 1;
}

size_t json_utf8_invalid_at(const char *s, size_t n)
{
    const unsigned char *start = (const unsigned char *)s, *p = start, *end = p + n;

    while (p < end) {
        uint64_t eight;
        size_t len;

        /* ASCII runs (most of JSON) eight bytes at a time. */
        if (end - p >= 8 && (memcpy(&eight, p, 8), (eight & 0x8080808080808080ull) == 0)) {
            p += 8;
            continue;
        }
        if (!(len = utf8_seq_len(p, end)))
            return (size_t)(p - start);
        p += len;
    }
    return n;
}

int json_utf8_valid(const char *s, size_t n)
{
    return json_utf8_invalid_at(s, n) == n;
}

/* ---- checking a text without a tree ---- */

static int json_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The 4 hex digits of a \u escape at @p p (at least 4 bytes there), or -1. */
static long json_u_escape(const unsigned char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Past the ASCII bytes of a string that need no attention (not '"', not '\\', not a control
 * character, not the start of a multi-byte UTF-8 sequence): eight at a time with the usual SWAR
 * tests, the first byte that needs attention found from the lowest flag (a borrow can only
 * raise false flags above a true one). */
static inline __attribute__((always_inline)) const unsigned char *json_plain_run(const unsigned char *p,
                                                                              const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

    while (end - p >= 8) {
        uint64_t x, quote, backslash, flags;
        memcpy(&x, p, 8);
        quote = x ^ (ones * '"');
        backslash = x ^ (ones * '\\');
        flags = (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | (x - ones * 0x20) | x) & highs;
        if (flags)
            return p + (__builtin_ctzll(flags) >> 3);
        p += 8;
    }
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    return p;
}

/* A string from its opening quote at @p *pp; leaves *pp after the closing one, or at the
 * problem (a backslash for a bad escape), which it returns. Checks the UTF-8 too. */
static const char *json_scan_string(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp + 1, *esc;
    const char *problem = NULL;
    long u, lo;
    size_t len;

    while (!problem) {
        p = json_plain_run(p, end);
        if (p >= end) {
            problem = "unterminated string";
        } else if (*p == '"') {
            *pp = p + 1;
            return NULL;
        } else if (*p < 0x20) {
            problem = "control character in a string";
        } else if (*p >= 0x80) {
            if ((len = utf8_seq_len(p, end)))
                p += len;
            else
                problem = "not valid UTF-8";
        } else if (end - p >= 2 && p[1] && strchr("\"\\/bfnrt", p[1])) {
            p += 2;
        } else if (end - p < 6 || p[1] != 'u') {
            problem = end - p < 2 ? "unterminated string" : "invalid escape in a string";
        } else if ((u = json_u_escape(p + 2)) < 0) {
            problem = "invalid \\u escape in a string";
        } else if (u >= 0xdc00 && u <= 0xdfff) {
            problem = "lone low surrogate in a \\u escape";
        } else if (u < 0xd800 || u > 0xdbff) {
            p += 6;
        } else {
            esc = p + 6;
            lo = end - esc >= 6 && esc[0] == '\\' && esc[1] == 'u' ? json_u_escape(esc + 2) : -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                problem = "high surrogate without its low half in a \\u escape";
            else
                p += 12;
        }
    }
    *pp = p;
    return problem;
}

/* A string at @p *pp: the common case (plain ASCII up to the closing quote) inline, the rest in
 * json_scan_string. */
static inline __attribute__((always_inline)) const char *json_check_string(const unsigned char **pp,
                                                                    const unsigned char *end)
{
    const unsigned char *q = json_plain_run(*pp + 1, end);

    if (q < end && *q == '"') {
        *pp = q + 1;
        return NULL;
    }
    return json_scan_string(pp, end);
}

/* A number at @p *pp (RFC 8259 grammar); leaves *pp after it. */
static const char *json_scan_number(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;

    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return "invalid number";
    }
    if (p < end && *p == '.') {
        if (++p >= end || *p < '0' || *p > '9')
            return "invalid number";
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return "invalid number";
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    *pp = p;
    return NULL;
}

int json_check(const char *s, size_t n, char *err, size_t errlen)
{
    const unsigned char *start = (const unsigned char *)s, *p = start, *end = start + n;
    unsigned char open[JSON_MAX_DEPTH];   /* '[' or '{' per level */
    size_t depth = 0;
    const char *problem = NULL;
    int want_value = 1;                        /* else: a ',' or a closing bracket */

    /* UTF-8 is checked inside strings, the only place JSON allows bytes above 0x7f. */
    for (;;) {
        while (p < end && json_is_space(*p))
            p++;
        if (want_value) {
            if (p >= end) {
                problem = "unexpected end of the text";
                break;
            }
            if (*p == '[' || *p == '{') {
                if (depth == JSON_MAX_DEPTH) {
                    problem = "nested too deep";
                    break;
                }
                open[depth++] = *p++;
                while (p < end && json_is_space(*p))
                    p++;
                if (p < end && *p == (open[depth - 1] == '[' ? ']' : '}')) {
                    p++;
                    depth--;
                    want_value = 0;
                    continue;
                }
                if (open[depth - 1] == '{')
                    goto key;
                continue;
            }
            if (*p == '"')
                problem = json_check_string(&p, end);
            else if (*p == '-' || (*p >= '0' && *p <= '9'))
                problem = json_scan_number(&p, end);
            else if (end - p >= 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "null", 4) == 0))
                p += 4;
            else if (end - p >= 5 && memcmp(p, "false", 5) == 0)
                p += 5;
            else
                problem = *p >= 0x80 && !utf8_seq_len(p, end) ? "not valid UTF-8" : "unexpected character";
            if (problem)
                break;
            want_value = 0;
            continue;
        }
        if (depth == 0) {
            if (p < end)
                problem = "text after the value";
            break;
        }
        if (p < end && *p == (open[depth - 1] == '[' ? ']' : '}')) {
            p++;
            depth--;
            continue;
        }
        if (p >= end || *p != ',') {
            problem = p >= end ? "unexpected end of the text" : "expected ',' or a closing bracket";
            break;
        }
        p++;
        want_value = 1;
        if (open[depth - 1] == '[')
            continue;
        while (p < end && json_is_space(*p))
            p++;
key:    /* an object's member: "name" : value */
        if (p >= end || *p != '"') {
            problem = "expected a member name";
            break;
        }
        if ((problem = json_check_string(&p, end)))
            break;
        while (p < end && json_is_space(*p))
            p++;
        if (p >= end || *p != ':') {
            problem = "expected ':'";
            break;
        }
        p++;
        want_value = 1;
    }
    if (!problem)
        return 0;
    snprintf(err, errlen, "%s at byte %zu", problem, (size_t)(p - start));
    return -1;
}
