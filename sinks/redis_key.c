/* The redis sink's pure parts: connection URL, JSON read in place, key template.
 * No I/O here. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis_key.h"

/* ---- URL ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A percent-decoded copy of [s, s+n); NULL on a bad escape or out of memory. */
static char *url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static int parse_uint(const char *s, size_t n, long max, long *out)
{
    long v = 0;

    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int redis_url_parse(const char *text, struct redis_url *url, char *err, size_t errlen)
{
    const char *p, *auth_end, *at, *host, *host_end, *port = NULL;
    size_t port_len = 0;
    long v;

    memset(url, 0, sizeof *url);
    url->port = 6379;
    if (strncasecmp(text, "rediss://", 9) == 0) {
        snprintf(err, errlen, "TLS (rediss://) is not supported: use redis:// (a TLS tunnel can front it)");
        return -1;
    }
    if (strncasecmp(text, "redis://", 8) != 0) {
        snprintf(err, errlen, "must look like redis://[user:password@]host[:port][/db]");
        return -1;
    }
    p = text + 8;
    auth_end = p + strcspn(p, "/?#");
    if (strpbrk(p, "?#")) {
        snprintf(err, errlen, "query parameters and fragments are not supported in the URL");
        return -1;
    }
    /* The last '@' ends the user information, so a password may hold an (encoded or not) '@'. */
    at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    host = p;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            snprintf(err, errlen, "the user information needs a password: redis://:PASSWORD@host or "
                     "redis://USER:PASSWORD@host");
            return -1;
        }
        if (colon > p && !(url->user = url_decode(p, (size_t)(colon - p)))) {
            snprintf(err, errlen, "bad percent-encoding in the user name");
            goto fail;
        }
        if (!(url->password = url_decode(colon + 1, (size_t)(at - colon - 1)))) {
            snprintf(err, errlen, "bad percent-encoding in the password");
            goto fail;
        }
        host = at + 1;
    }
    if (*host == '[') {
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end) {
            snprintf(err, errlen, "unterminated [ in the host");
            goto fail;
        }
        url->host = strndup(host + 1, (size_t)(host_end - host - 1));
        host_end++;
    } else {
        host_end = host;
        while (host_end < auth_end && *host_end != ':')
            host_end++;
        url->host = strndup(host, (size_t)(host_end - host));
    }
    if (!url->host) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (url->host[0] == '\0') {
        snprintf(err, errlen, "the URL has no host");
        goto fail;
    }
    if (host_end < auth_end) {
        if (*host_end != ':') {
            snprintf(err, errlen, "unexpected text after the host");
            goto fail;
        }
        port = host_end + 1;
        port_len = (size_t)(auth_end - port);
        if (parse_uint(port, port_len, 65535, &v) != 0 || v == 0) {
            snprintf(err, errlen, "the port must be 1..65535");
            goto fail;
        }
        url->port = (int)v;
    }
    if (*auth_end == '/' && auth_end[1] != '\0') {
        const char *db = auth_end + 1;
        if (parse_uint(db, strlen(db), 1000000, &v) != 0) {
            snprintf(err, errlen, "the database (after the /) must be a number, as in redis://host:6379/0");
            goto fail;
        }
        url->db = (int)v;
    }
    return 0;
fail:
    redis_url_free(url);
    return -1;
}

void redis_url_free(struct redis_url *url)
{
    free(url->host);
    free(url->user);
    if (url->password) {
        /* a secret: do not leave it in freed memory */
        volatile char *s = url->password;
        while (*s)
            *s++ = '\0';
        free(url->password);
    }
    memset(url, 0, sizeof *url);
}

/* ---- JSON read in place ---- */

#define RJ_MAX_DEPTH 1024

struct rj_parser {
    const char *p, *start, *end;
    int depth;
    char *err;
    size_t errlen;
};

static int rj_fail(struct rj_parser *j, const char *what)
{
    snprintf(j->err, j->errlen, "value is not JSON: %s at byte %zu", what, (size_t)(j->p - j->start));
    return -1;
}

static void rj_ws(struct rj_parser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = *out = 0;   /* *out set on failure too: the decoders of checked text ignore the result */
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

/* At the opening quote; moves past the closing one. Checks escapes, surrogate pairs and UTF-8. */
static int rj_scan_string(struct rj_parser *j)
{
    const unsigned char *p = (const unsigned char *)j->p + 1, *end = (const unsigned char *)j->end;

    for (;;) {
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            break;
        j->p = (const char *)p;
        if (*p == '"') {
            j->p++;
            return 0;
        }
        if (*p == '\\') {
            unsigned u, lo;
            if (p + 1 >= end)
                break;
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;
            case 'u':
                if (end - p < 6 || hex4((const char *)p + 2, &u) != 0)
                    return rj_fail(j, "bad \\u escape");
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return rj_fail(j, "lone low surrogate in a \\u escape");
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4((const char *)p + 8, &lo) != 0 ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return rj_fail(j, "lone high surrogate in a \\u escape");
                    p += 12;
                } else {
                    p += 6;
                }
                continue;
            default:
                return rj_fail(j, "bad escape in a string");
            }
        }
        if (*p < 0x20)
            return rj_fail(j, "control character in a string");
        {
            /* UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF */
            unsigned c = *p, cp;
            size_t len;
            if (c >= 0xC2 && c <= 0xDF)
                len = 2, cp = c & 0x1F;
            else if (c >= 0xE0 && c <= 0xEF)
                len = 3, cp = c & 0x0F;
            else if (c >= 0xF0 && c <= 0xF4)
                len = 4, cp = c & 0x07;
            else
                return rj_fail(j, "invalid UTF-8");
            if ((size_t)(end - p) < len)
                return rj_fail(j, "invalid UTF-8");
            for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xC0) != 0x80)
                    return rj_fail(j, "invalid UTF-8");
                cp = cp << 6 | (p[i] & 0x3Fu);
            }
            if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
                return rj_fail(j, "invalid UTF-8");
            p += len;
        }
    }
    j->p = j->end;
    return rj_fail(j, "unterminated string");
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int rj_scan_number(struct rj_parser *j)
{
    const char *p = j->p, *end = j->end;

    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p))
            p++;
    } else {
        j->p = p;
        return rj_fail(j, "bad number");
    }
    if (p < end && *p == '.') {
        if (++p >= end || !is_digit(*p)) {
            j->p = p;
            return rj_fail(j, "bad number");
        }
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p)) {
            j->p = p;
            return rj_fail(j, "bad number");
        }
        while (p < end && is_digit(*p))
            p++;
    }
    j->p = p;
    return 0;
}

static int rj_scan_value(struct rj_parser *j, struct rj_value *v, struct rj_doc *members);

static int rj_add_member(struct rj_doc *doc, const struct rj_value *key, const struct rj_value *value)
{
    if (doc->nmembers == doc->cap) {
        size_t cap = doc->cap ? doc->cap * 2 : 32;
        struct rj_member *m = realloc(doc->members, cap * sizeof *m);
        if (!m)
            return -2;
        doc->members = m;
        doc->cap = cap;
    }
    doc->members[doc->nmembers].key = *key;
    doc->members[doc->nmembers].value = *value;
    doc->nmembers++;
    return 0;
}

/* At '{'; records the members in @p doc when not NULL (the top level). */
static int rj_scan_object(struct rj_parser *j, struct rj_doc *doc)
{
    int rc;

    j->p++;
    rj_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        struct rj_value key, value;
        rj_ws(j);
        if (j->p >= j->end || *j->p != '"')
            return rj_fail(j, "expected a member name");
        key.type = RJ_STRING;
        key.p = j->p;
        if ((rc = rj_scan_string(j)) != 0)
            return rc;
        key.n = (size_t)(j->p - key.p);
        rj_ws(j);
        if (j->p >= j->end || *j->p != ':')
            return rj_fail(j, "expected ':'");
        j->p++;
        rj_ws(j);
        if ((rc = rj_scan_value(j, &value, NULL)) != 0)
            return rc;
        if (doc && (rc = rj_add_member(doc, &key, &value)) != 0)
            return rc;
        rj_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return 0;
        }
        return rj_fail(j, "expected ',' or '}'");
    }
}

static int rj_scan_array(struct rj_parser *j)
{
    int rc;

    j->p++;
    rj_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return 0;
    }
    for (;;) {
        struct rj_value item;
        rj_ws(j);
        if ((rc = rj_scan_value(j, &item, NULL)) != 0)
            return rc;
        rj_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return 0;
        }
        return rj_fail(j, "expected ',' or ']'");
    }
}

static int rj_scan_literal(struct rj_parser *j, const char *lit, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return rj_fail(j, "unexpected character");
    j->p += n;
    return 0;
}

static int rj_scan_value(struct rj_parser *j, struct rj_value *v, struct rj_doc *members)
{
    int rc;

    if (j->p >= j->end)
        return rj_fail(j, "unexpected end");
    v->p = j->p;
    switch (*j->p) {
    case '"':
        v->type = RJ_STRING;
        rc = rj_scan_string(j);
        break;
    case '{':
        v->type = RJ_OBJECT;
        if (++j->depth > RJ_MAX_DEPTH)
            return rj_fail(j, "nested too deep");
        rc = rj_scan_object(j, members);
        j->depth--;
        break;
    case '[':
        v->type = RJ_ARRAY;
        if (++j->depth > RJ_MAX_DEPTH)
            return rj_fail(j, "nested too deep");
        rc = rj_scan_array(j);
        j->depth--;
        break;
    case 't':
        v->type = RJ_TRUE;
        rc = rj_scan_literal(j, "true", 4);
        break;
    case 'f':
        v->type = RJ_FALSE;
        rc = rj_scan_literal(j, "false", 5);
        break;
    case 'n':
        v->type = RJ_NULL;
        rc = rj_scan_literal(j, "null", 4);
        break;
    default:
        if (*j->p != '-' && !is_digit(*j->p))
            return rj_fail(j, "unexpected character");
        v->type = RJ_NUMBER;
        rc = rj_scan_number(j);
        break;
    }
    v->n = (size_t)(j->p - v->p);
    return rc;
}

int rj_parse(struct rj_doc *doc, const char *text, size_t n, char *err, size_t errlen)
{
    struct rj_parser j = { text, text, text + n, 0, err, errlen };
    int rc;

    doc->nmembers = 0;
    rj_ws(&j);
    if ((rc = rj_scan_value(&j, &doc->root, doc)) != 0) {
        if (rc == -2)
            snprintf(err, errlen, "out of memory");
        return rc;
    }
    rj_ws(&j);
    if (j.p != j.end)
        return rj_fail(&j, "unexpected text after the value");
    if (doc->root.type != RJ_OBJECT)
        doc->nmembers = 0;
    return 0;
}

void rj_doc_free(struct rj_doc *doc)
{
    free(doc->members);
    memset(doc, 0, sizeof *doc);
}

const char *rj_type_name(enum rj_type type)
{
    switch (type) {
    case RJ_STRING: return "a string";
    case RJ_NUMBER: return "a number";
    case RJ_TRUE:
    case RJ_FALSE: return "a boolean";
    case RJ_NULL: return "null";
    case RJ_OBJECT: return "an object";
    default: return "an array";
    }
}

static void put_utf8(char *o, size_t *len, unsigned cp)
{
    if (cp < 0x80) {
        o[(*len)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*len)++] = (char)(0xC0 | cp >> 6);
        o[(*len)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        o[(*len)++] = (char)(0xE0 | cp >> 12);
        o[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*len)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        o[(*len)++] = (char)(0xF0 | cp >> 18);
        o[(*len)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*len)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* The string was checked by rj_parse: every escape here is well formed. */
int rj_string_append(struct buf *out, const struct rj_value *v)
{
    const char *p = v->p + 1, *end = v->p + v->n - 1;

    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        char o[4];
        size_t len = 0;
        unsigned u, lo;

        if (!bs)
            return buf_add(out, p, (size_t)(end - p));
        if (buf_add(out, p, (size_t)(bs - p)) != 0)
            return -1;
        switch (bs[1]) {
        case 'b': o[len++] = '\b'; break;
        case 'f': o[len++] = '\f'; break;
        case 'n': o[len++] = '\n'; break;
        case 'r': o[len++] = '\r'; break;
        case 't': o[len++] = '\t'; break;
        case 'u':
            hex4(bs + 2, &u);
            if (u >= 0xD800 && u <= 0xDBFF) {
                hex4(bs + 8, &lo);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                bs += 6;
            }
            put_utf8(o, &len, u);
            bs += 4;
            break;
        default: o[len++] = bs[1]; break;   /* " \ / */
        }
        if (buf_add(out, o, len) != 0)
            return -1;
        p = bs + 2;
    }
    return 0;
}

/* Copies the JSON text of @p v without the white space between tokens. */
int rj_json_append(struct buf *out, const struct rj_value *v)
{
    const char *p = v->p, *end = v->p + v->n, *run = p;

    if (v->type != RJ_OBJECT && v->type != RJ_ARRAY)
        return buf_add(out, v->p, v->n);
    if (buf_reserve(out, v->n) != 0)
        return -1;
    while (p < end) {
        if (*p == '"') {
            for (p++; *p != '"'; p++)
                if (*p == '\\')
                    p++;
            p++;
        } else if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
            buf_add(out, run, (size_t)(p - run));   /* reserved above: cannot fail */
            while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
                p++;
            run = p;
        } else {
            p++;
        }
    }
    return buf_add(out, run, (size_t)(p - run));
}

int rj_text_append(struct buf *out, const struct rj_value *v)
{
    if (v->type == RJ_STRING)
        return rj_string_append(out, v);
    return rj_json_append(out, v);
}

/* Whether a member name (a string value) equals @p name. */
static int rj_key_equals(const struct rj_value *key, const char *name, size_t len)
{
    struct buf decoded = { 0 };
    int eq;

    if (!memchr(key->p + 1, '\\', key->n - 2))
        return key->n - 2 == len && memcmp(key->p + 1, name, len) == 0;
    if (rj_string_append(&decoded, key) != 0)
        return 0;
    eq = decoded.len == len && memcmp(decoded.p, name, len) == 0;
    buf_free(&decoded);
    return eq;
}

const struct rj_member *rj_doc_member(const struct rj_doc *doc, const char *name, size_t len)
{
    for (size_t i = doc->nmembers; i-- > 0;)
        if (rj_key_equals(&doc->members[i].key, name, len))
            return &doc->members[i];
    return NULL;
}

const struct rj_value *rj_doc_get(const struct rj_doc *doc, const char *name, size_t len)
{
    const struct rj_member *m = rj_doc_member(doc, name, len);
    return m ? &m->value : NULL;
}

/* ---- key template ---- */

/* One step of a path: a member name, or an array index when name is NULL. */
struct path_step {
    char *name;
    size_t len;
    size_t index;
};

enum seg_kind { SEG_TEXT, SEG_KEY, SEG_TOPIC, SEG_PARTITION, SEG_PATH };

struct seg {
    enum seg_kind kind;
    char *text;                  /* SEG_TEXT: the literal; SEG_PATH: the path as written */
    size_t len;
    struct path_step *steps;     /* SEG_PATH */
    size_t nsteps;
};

struct redis_template {
    size_t nsegs;
    int uses_value;
    struct seg segs[];
};

void redis_template_free(struct redis_template *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nsegs; i++) {
        for (size_t k = 0; k < t->segs[i].nsteps; k++)
            free(t->segs[i].steps[k].name);
        free(t->segs[i].steps);
        free(t->segs[i].text);
    }
    free(t);
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
}

/* The syntax of the router's paths: $, .name, ["odd key"], [index]. */
static int path_compile(struct seg *s, char *err, size_t errlen)
{
    const char *expr = s->text, *p = expr + 1;
    size_t len = strlen(expr);

    if (!(s->steps = calloc(len + 1, sizeof *s->steps))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    while (*p) {
        struct path_step *step = &s->steps[s->nsteps];
        const char *start;
        if (*p == '.') {
            start = ++p;
            while (is_name_char(*p))
                p++;
            if (p == start) {
                snprintf(err, errlen, "{%s}: empty field name at position %zu", expr, (size_t)(start - expr));
                return -1;
            }
            step->len = (size_t)(p - start);
            step->name = strndup(start, step->len);
        } else if (p[0] == '[' && p[1] == '"') {
            const char *end;
            start = p + 2;
            if (!(end = strstr(start, "\"]"))) {
                snprintf(err, errlen, "{%s}: unterminated [\"...\"]", expr);
                return -1;
            }
            step->len = (size_t)(end - start);
            step->name = strndup(start, step->len);
            p = end + 2;
        } else if (*p == '[') {
            char *end;
            unsigned long long idx = strtoull(p + 1, &end, 10);
            if (end == p + 1 || *end != ']' || !is_digit(p[1])) {
                snprintf(err, errlen, "{%s}: expected an index like [0] at position %zu", expr, (size_t)(p - expr));
                return -1;
            }
            step->index = (size_t)idx;
            p = end + 1;
            s->nsteps++;
            continue;
        } else {
            snprintf(err, errlen, "{%s}: unexpected '%c' at position %zu (paths look like $.a.b, $.items[0], "
                     "$[\"odd key\"])", expr, *p, (size_t)(p - expr));
            return -1;
        }
        if (!step->name) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->nsteps++;
    }
    return 0;
}

/* End of a {...} placeholder starting after its '{': the first '}' outside ["..."]. */
static const char *placeholder_end(const char *p)
{
    while (*p && *p != '}') {
        if (p[0] == '[' && p[1] == '"') {
            const char *q = strstr(p + 2, "\"]");
            if (!q)
                return NULL;
            p = q + 2;
        } else {
            p++;
        }
    }
    return *p == '}' ? p : NULL;
}

struct redis_template *redis_template_compile(const char *text, char *err, size_t errlen)
{
    size_t len = strlen(text);
    struct redis_template *t = calloc(1, sizeof *t + (len + 1) * sizeof t->segs[0]);
    struct buf lit = { 0 };
    const char *p = text;

    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (len == 0) {
        snprintf(err, errlen, "the key template is empty");
        goto fail;
    }
    for (;;) {
        int flush = *p == '\0' || (*p == '{' && p[1] != '{');
        if (flush && lit.len) {
            struct seg *s = &t->segs[t->nsegs++];
            s->kind = SEG_TEXT;
            s->len = lit.len;
            if (!(s->text = strndup(lit.p, lit.len)))
                goto oom;
            buf_reset(&lit);
        }
        if (*p == '\0')
            break;
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            if (buf_add(&lit, p, 1) != 0)
                goto oom;
            p += 2;
        } else if (*p == '}') {
            snprintf(err, errlen, "unmatched '}' at position %zu (write }} for a literal brace)", (size_t)(p - text));
            goto fail;
        } else if (*p == '{') {
            const char *end = placeholder_end(p + 1);
            struct seg *s = &t->segs[t->nsegs];
            if (!end) {
                snprintf(err, errlen, "unterminated '{' at position %zu (write {{ for a literal brace)", (size_t)(p - text));
                goto fail;
            }
            s->len = (size_t)(end - p - 1);
            if (!(s->text = strndup(p + 1, s->len)))
                goto oom;
            t->nsegs++;
            if (strcmp(s->text, "key") == 0) {
                s->kind = SEG_KEY;
            } else if (strcmp(s->text, "topic") == 0) {
                s->kind = SEG_TOPIC;
            } else if (strcmp(s->text, "partition") == 0) {
                s->kind = SEG_PARTITION;
            } else if (s->text[0] == '$') {
                s->kind = SEG_PATH;
                if (path_compile(s, err, errlen) != 0)
                    goto fail;
                t->uses_value = 1;
            } else {
                snprintf(err, errlen, "unknown placeholder {%s}: use {key}, {topic}, {partition} or a path "
                         "into the value such as {$.id}", s->text);
                goto fail;
            }
            p = end + 1;
        } else {
            if (buf_add(&lit, p, 1) != 0)
                goto oom;
            p++;
        }
    }
    buf_free(&lit);
    return t;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    buf_free(&lit);
    redis_template_free(t);
    return NULL;
}

int redis_template_uses_value(const struct redis_template *t)
{
    return t->uses_value;
}

/* The child of @p parent (checked JSON) at @p step, or 0 when there is none. */
static int rj_child(const struct rj_value *parent, const struct path_step *step, struct rj_value *out)
{
    char err[8];
    struct rj_parser j = { parent->p + 1, parent->p, parent->p + parent->n, 0, err, sizeof err };
    size_t index = 0;
    int found = 0;

    if (parent->type != (step->name ? RJ_OBJECT : RJ_ARRAY))
        return 0;
    for (;;) {
        struct rj_value key = { 0 }, value;
        rj_ws(&j);
        if (*j.p == '}' || *j.p == ']')
            return found;
        if (step->name) {
            key.type = RJ_STRING;
            key.p = j.p;
            rj_scan_string(&j);
            key.n = (size_t)(j.p - key.p);
            rj_ws(&j);
            j.p++;   /* ':' */
            rj_ws(&j);
        }
        if (rj_scan_value(&j, &value, NULL) != 0)
            return 0;
        if (step->name ? rj_key_equals(&key, step->name, step->len) : index++ == step->index) {
            *out = value;   /* the last of repeated names wins, as when the router parses */
            found = 1;
            if (!step->name)
                return 1;
        }
        rj_ws(&j);
        if (*j.p == ',')
            j.p++;
    }
}

static const struct rj_value *path_get(const struct seg *s, const struct rj_doc *doc, struct rj_value *tmp)
{
    const struct rj_value *v = &doc->root;

    for (size_t i = 0; i < s->nsteps; i++) {
        const struct path_step *step = &s->steps[i];
        if (i == 0 && step->name && doc->root.type == RJ_OBJECT) {
            if (!(v = rj_doc_get(doc, step->name, step->len)))
                return NULL;
            continue;
        }
        if (!rj_child(v, step, tmp))
            return NULL;
        v = tmp;
    }
    return v;
}

int redis_template_render(const struct redis_template *t, const struct sink_record *rec, const struct rj_doc *doc,
                          struct buf *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->nsegs; i++) {
        const struct seg *s = &t->segs[i];
        const struct rj_value *v;
        struct rj_value tmp;
        char num[24];
        int rc = 0;

        switch (s->kind) {
        case SEG_TEXT:
            rc = buf_add(out, s->text, s->len);
            break;
        case SEG_KEY:
            if (!rec->key) {
                snprintf(err, errlen, "key template: the record has no key to fill {key}");
                return -1;
            }
            rc = buf_add(out, rec->key, rec->key_len);
            break;
        case SEG_TOPIC:
            rc = buf_add(out, rec->topic, strlen(rec->topic));
            break;
        case SEG_PARTITION:
            rc = buf_add(out, num, redis_fmt_int(num, rec->partition));
            break;
        case SEG_PATH:
            if (!doc) {
                snprintf(err, errlen, "key template: a tombstone has no value to fill {%s}", s->text);
                return -1;
            }
            if (!(v = path_get(s, doc, &tmp))) {
                snprintf(err, errlen, "key template: %s is missing", s->text);
                return -1;
            }
            if (v->type == RJ_OBJECT || v->type == RJ_ARRAY || v->type == RJ_NULL) {
                snprintf(err, errlen, "key template: %s is %s, not a string, number or boolean", s->text,
                         rj_type_name(v->type));
                return -1;
            }
            rc = rj_text_append(out, v);
            break;
        }
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}
