/* JSON read in place (see json.h): one checking pass over the text (iterative, an explicit
 * stack of brackets, SWAR fast paths for strings: it runs over every record of the webhook,
 * redis and postgres sinks), then walks over the checked text that can skip values without
 * checking them again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* The type of the checked value that starts at @p p. */
static enum json_kind kind_at(const char *p)
{
    switch (*p) {
    case '"': return JK_STRING;
    case '{': return JK_OBJECT;
    case '[': return JK_ARRAY;
    case 't': return JK_TRUE;
    case 'f': return JK_FALSE;
    case 'n': return JK_NULL;
    default: return JK_NUMBER;
    }
}

static int json_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Past white space; compact text (the usual case) pays one comparison: every JSON space is
 * at most ' '. */
static inline __attribute__((always_inline)) const unsigned char *json_skip_space(const unsigned char *p,
                                                                               const unsigned char *end)
{
    if (p < end && *p <= ' ')
        while (p < end && json_is_space(*p))
            p++;
    return p;
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
 * character, not the start of a multi-byte UTF-8 sequence): sixteen at a time with SSE2 (a
 * signed compare below 0x20 flags control characters and bytes above 0x7f at once), then eight
 * at a time with the usual SWAR tests, the first byte that needs attention found from the
 * lowest flag (a borrow can only raise false flags above a true one). */
static inline __attribute__((always_inline)) const unsigned char *json_plain_run(const unsigned char *p,
                                                                              const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

#ifdef __SSE2__
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hits = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                                 _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                                    _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
        unsigned mask = (unsigned)_mm_movemask_epi8(hits);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
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

int json_read(const char *s, size_t n, struct json_slice *root, char *err, size_t errlen)
{
    const unsigned char *start = (const unsigned char *)s, *p = start, *end = start + n;
    unsigned char open[JSON_MAX_DEPTH];   /* '[' or '{' per level */
    size_t depth = 0;
    const char *problem = NULL;
    int want_value = 1;                        /* else: a ',' or a closing bracket */

    /* UTF-8 is checked inside strings, the only place JSON allows bytes above 0x7f. */
    for (;;) {
        p = json_skip_space(p, end);
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
                p = json_skip_space(p, end);
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
        p = json_skip_space(p, end);
key:    /* an object's member: "name" : value */
        if (p >= end || *p != '"') {
            problem = "expected a member name";
            break;
        }
        if ((problem = json_check_string(&p, end)))
            break;
        p = json_skip_space(p, end);
        if (p >= end || *p != ':') {
            problem = "expected ':'";
            break;
        }
        p++;
        want_value = 1;
    }
    if (!problem) {
        if (root) {
            /* the value is the text without the white space around it */
            const unsigned char *first = start, *last = end;
            while (json_is_space(*first))
                first++;
            while (json_is_space(last[-1]))
                last--;
            *root = (struct json_slice){ kind_at((const char *)first), (const char *)first, (size_t)(last - first) };
        }
        return 0;
    }
    snprintf(err, errlen, "%s at byte %zu", problem, (size_t)(p - start));
    return -1;
}

int json_check(const char *s, size_t n, char *err, size_t errlen)
{
    return json_read(s, n, NULL, err, errlen);
}

/* ---- walking a checked text ---- */

static const char *skip_space(const char *p, const char *end)
{
    return (const char *)json_skip_space((const unsigned char *)p, (const unsigned char *)end);
}

/* Past the closing quote of the checked string whose opening quote is at @p p: only '"' and
 * '\\' matter, eight bytes at a time. */
static inline __attribute__((always_inline)) const char *skip_string(const char *p, const char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

    p++;
    while (p < end) {
        if (end - p >= 8) {
            uint64_t x, quote, backslash, flags;
            memcpy(&x, p, 8);
            quote = x ^ (ones * '"');
            backslash = x ^ (ones * '\\');
            flags = (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) & highs;
            if (!flags) {
                p += 8;
                continue;
            }
            p += __builtin_ctzll(flags) >> 3;
        }
        if (*p == '"')
            return p + 1;
        p += *p == '\\' ? 2 : 1;
    }
    return end;
}

/* Bytes that end a number or a literal (1), and bytes that matter inside an array or object
 * being skipped (2): the quote and the brackets. */
static const unsigned char json_byte_class[256] = {
    [','] = 1, [']'] = 3, ['}'] = 3, [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
    ['"'] = 2, ['['] = 2, ['{'] = 2,
};

/* Past the checked value that starts at @p p. */
static const char *skip_value(const char *p, const char *end)
{
    size_t depth = 0;

    if (p < end && *p != '"' && *p != '[' && *p != '{') {
        /* a number or a literal: up to the next delimiter */
        while (p < end && !(json_byte_class[(unsigned char)*p] & 1))
            p++;
        return p;
    }
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = skip_string(p, end);
        } else {
            p++;
            if (c == '[' || c == '{')
                depth++;
            else if (--depth == 0)   /* a closing bracket */
                return p;
        }
        if (depth == 0)
            return p;
        while (p < end && !(json_byte_class[(unsigned char)*p] & 2))
            p++;
    }
    return end;
}

void json_iter_init(struct json_iter *it, const struct json_slice *v)
{
    if (v->kind == JK_OBJECT || v->kind == JK_ARRAY) {
        it->p = v->p + 1;
        it->end = v->p + v->n - 1;   /* the closing bracket */
        it->object = v->kind == JK_OBJECT;
    } else {
        it->p = it->end = NULL;
        it->object = 0;
    }
}

int json_iter_next(struct json_iter *it, struct json_slice *name, struct json_slice *value)
{
    const char *p = it->p, *end = it->end, *q;
    enum json_kind kind;

    /* compact text (most records) takes the tests of one byte at each step */
    if (p < end && (*p == ',' || json_is_space((unsigned char)*p))) {
        p = skip_space(p, end);
        if (p < end && *p == ',')
            p = skip_space(p + 1, end);
    }
    if (p >= end)
        return 0;
    if (it->object) {
        q = skip_string(p, end);
        if (name)
            *name = (struct json_slice){ JK_STRING, p, (size_t)(q - p) };
        p = q < end && *q == ':' ? q + 1 : skip_space(q, end) + 1;
        if (p < end && json_is_space((unsigned char)*p))
            p = skip_space(p, end);
        if (p >= end)
            return 0;
    }
    kind = kind_at(p);
    q = kind == JK_STRING ? skip_string(p, end) : skip_value(p, end);
    *value = (struct json_slice){ kind, p, (size_t)(q - p) };
    it->p = q;
    return 1;
}

struct json_slice json_at(const struct json_slice *v, size_t index)
{
    struct json_slice item, none = { 0 };
    struct json_iter it;

    if (v->kind != JK_ARRAY)
        return none;
    json_iter_init(&it, v);
    while (json_iter_next(&it, NULL, &item))
        if (index-- == 0)
            return item;
    return none;
}

static int escaped_equals(const char *p, const char *end, const char *name, size_t len);

/* Whether the member name @p s (a string slice) is @p name: by length first, as an escape
 * never decodes to more bytes than it takes; the names of records rarely hold escapes. */
static inline int name_equals(const struct json_slice *s, const char *name, size_t len)
{
    const char *p = s->p + 1;
    size_t raw = s->n - 2;

    if (raw == len)
        return (len == 0 || (p[0] == name[0] && memcmp(p, name, len) == 0)) && !memchr(p, '\\', raw);
    return raw > len && memchr(p, '\\', raw) && escaped_equals(p, p + raw, name, len);
}

int json_member(const struct json_slice *v, const char *name, size_t len, struct json_slice *key,
                struct json_slice *value)
{
    struct json_slice k, item;
    struct json_iter it;
    int found = 0;

    if (v->kind != JK_OBJECT)
        return 0;
    json_iter_init(&it, v);
    while (json_iter_next(&it, &k, &item)) {
        if (name_equals(&k, name, len)) {
            /* the last of repeated names wins, as in jansson and so the router */
            if (key)
                *key = k;
            *value = item;
            found = 1;
        }
    }
    return found;
}

struct json_slice json_get(const struct json_slice *v, const char *name, size_t len)
{
    struct json_slice found = { 0 };

    json_member(v, name, len, NULL, &found);
    return found;
}

struct json_slice json_lookup(const struct json_slice *doc, const struct jsonpath *path)
{
    const struct jsonpath_step *steps = jsonpath_steps(path);
    struct json_slice v = *doc;

    for (size_t i = 0, n = jsonpath_nsteps(path); i < n && v.kind != JK_NONE; i++)
        v = steps[i].key ? json_get(&v, steps[i].key, steps[i].key_len) : json_at(&v, steps[i].index);
    return v;
}

/* A path's steps, fetched once per lookup rather than per member. */
struct lookup_path {
    const struct jsonpath_step *steps;
    size_t nsteps;
};

/* @p v is where the paths in @p active (indices into @p paths) are after @p depth steps. */
static void lookup_walk(const struct json_slice *v, const struct lookup_path *paths, const size_t *active,
                        size_t nactive, size_t depth, struct json_slice *out)
{
    size_t next[nactive], nnext, going = 0, index = 0;   /* nactive >= 1 */
    struct json_slice name, item;
    struct json_iter it;

    for (size_t i = 0; i < nactive; i++) {
        if (paths[active[i]].nsteps == depth)
            out[active[i]] = *v;
        else
            going++;
    }
    if (!going || (v->kind != JK_OBJECT && v->kind != JK_ARRAY))
        return;
    json_iter_init(&it, v);
    while (json_iter_next(&it, &name, &item)) {
        nnext = 0;
        for (size_t i = 0; i < nactive; i++) {
            const struct lookup_path *path = &paths[active[i]];
            const struct jsonpath_step *step;
            if (path->nsteps <= depth)
                continue;
            step = &path->steps[depth];
            if (it.object ? step->key && name_equals(&name, step->key, step->key_len)
                          : !step->key && step->index == index)
                next[nnext++] = active[i];
        }
        /* A repeated name replaces the earlier member whole: forget what the earlier one gave
         * to the paths through it. */
        for (size_t i = 0; i < nnext; i++)
            out[next[i]] = (struct json_slice){ 0 };
        if (nnext)
            lookup_walk(&item, paths, next, nnext, depth + 1, out);
        index++;
    }
}

void json_lookup_many(const struct json_slice *doc, const struct jsonpath *const *paths, size_t npaths,
                      struct json_slice *out)
{
    struct lookup_path steps[npaths ? npaths : 1];
    size_t all[npaths ? npaths : 1];

    for (size_t i = 0; i < npaths; i++) {
        steps[i].steps = jsonpath_steps(paths[i]);
        steps[i].nsteps = jsonpath_nsteps(paths[i]);
        all[i] = i;
        out[i] = (struct json_slice){ 0 };
    }
    if (npaths)
        lookup_walk(doc, steps, all, npaths, 0, out);
}

/* ---- strings ---- */

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The checked escape at @p p (at its backslash) as UTF-8 in @p o (its length in *olen); returns
 * how many bytes of text it took. */
static size_t decode_escape(const char *p, char o[4], size_t *olen)
{
    static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
    const char *e;
    long u, lo;

    if (p[1] != 'u') {
        e = memchr(from, p[1], 5);
        o[0] = e ? to[e - from] : p[1];   /* else " \ / */
        *olen = 1;
        return 2;
    }
    u = json_u_escape((const unsigned char *)p + 2);
    if (u >= 0xd800 && u <= 0xdbff) {
        lo = json_u_escape((const unsigned char *)p + 8);
        *olen = put_utf8(o, (uint32_t)(0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00)));
        return 12;
    }
    *olen = put_utf8(o, (uint32_t)u);
    return 6;
}

/* The slow half of json_string_equals: a name with escapes, decoded as it is compared. */
static int escaped_equals(const char *p, const char *end, const char *name, size_t len)
{
    size_t i = 0;

    while (p < end) {
        char o[4];
        size_t olen;
        if (*p != '\\') {
            if (i >= len || name[i] != *p)
                return 0;
            i++;
            p++;
            continue;
        }
        p += decode_escape(p, o, &olen);
        if (len - i < olen || memcmp(name + i, o, olen) != 0)
            return 0;
        i += olen;
    }
    return i == len;
}

int json_string_equals(const struct json_slice *s, const char *name, size_t len)
{
    return s->kind == JK_STRING && name_equals(s, name, len);
}

int json_unescape(struct buf *out, const struct json_slice *s)
{
    const char *p = s->p + 1, *end = s->p + s->n - 1;

    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        char o[4];
        size_t olen;

        if (!bs)
            return buf_add(out, p, (size_t)(end - p));
        if (buf_add(out, p, (size_t)(bs - p)) != 0)
            return -1;
        p = bs + decode_escape(bs, o, &olen);
        if (buf_add(out, o, olen) != 0)
            return -1;
    }
    return 0;
}

char *json_compact_to(char *out, const struct json_slice *v)
{
    const char *p = v->p, *end = v->p + v->n, *run = p;

    if (v->kind == JK_OBJECT || v->kind == JK_ARRAY) {
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
            } else if (json_is_space((unsigned char)*p)) {
                memcpy(out, run, (size_t)(p - run));
                out += p - run;
                p = skip_space(p, end);
                run = p;
            } else {
                p++;
            }
        }
    }
    memcpy(out, run, (size_t)(end - run));
    return out + (end - run);
}

int json_compact(struct buf *out, const struct json_slice *v)
{
    if (buf_reserve(out, v->n) != 0)
        return -1;
    out->len = (size_t)(json_compact_to(out->p + out->len, v) - out->p);
    out->p[out->len] = '\0';
    return 0;
}

/* ---- numbers ---- */

int json_number_i64(const struct json_slice *v, int64_t *out)
{
    const char *p = v->p, *end = v->p + v->n;
    int negative = 0;
    uint64_t u = 0, limit;

    if (v->kind != JK_NUMBER)
        return -1;
    if (*p == '-') {
        negative = 1;
        p++;
    }
    limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || u > (limit - (uint64_t)(*p - '0')) / 10)
            return -1;   /* a fraction, an exponent, or out of range */
        u = u * 10 + (uint64_t)(*p - '0');
    }
    *out = negative ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

int json_number_double(const struct json_slice *v, double *out)
{
    char text[512];   /* strtod needs a terminated copy; longer numbers are refused, not cut */

    if (v->kind != JK_NUMBER || v->n >= sizeof text)
        return -1;
    memcpy(text, v->p, v->n);
    text[v->n] = '\0';
    *out = strtod(text, NULL);
    return 0;
}

const char *json_kind_name(enum json_kind type)
{
    switch (type) {
    case JK_STRING: return "a string";
    case JK_NUMBER: return "a number";
    case JK_TRUE:
    case JK_FALSE: return "a boolean";
    case JK_NULL: return "null";
    case JK_OBJECT: return "an object";
    case JK_ARRAY: return "an array";
    default: return "nothing";
    }
}
