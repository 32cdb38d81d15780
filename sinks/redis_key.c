/* The redis sink's pure parts: connection URL, values as Redis stores them, key template.
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
        url->tls = 1;
        p = text + 9;
    } else if (strncasecmp(text, "redis://", 8) == 0) {
        p = text + 8;
    } else {
        snprintf(err, errlen, "must look like redis://[user[:password]@]host[:port][/db] (rediss:// for TLS)");
        return -1;
    }
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
        /* redis://USER@host: the password comes from the password option (a secret of its own) */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *user_end = colon ? colon : at;
        if (user_end == p && !colon) {
            snprintf(err, errlen, "the user information is empty: redis://USER@host, redis://:PASSWORD@host or "
                     "redis://USER:PASSWORD@host");
            return -1;
        }
        if (user_end > p && !(url->user = url_decode(p, (size_t)(user_end - p)))) {
            snprintf(err, errlen, "bad percent-encoding in the user name");
            goto fail;
        }
        if (colon && !(url->password = url_decode(colon + 1, (size_t)(at - colon - 1)))) {
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

/* ---- values as Redis stores them ---- */

int redis_text_append(struct buf *out, const struct json_slice *v)
{
    if (v->kind == JK_STRING)
        return json_unescape(out, v);
    return json_compact(out, v);
}

/* ---- key template ---- */

enum seg_kind { SEG_TEXT, SEG_KEY, SEG_TOPIC, SEG_PARTITION, SEG_PATH };

struct seg {
    enum seg_kind kind;
    char *text;                  /* SEG_TEXT: the literal; SEG_PATH: the path as written */
    size_t len;
    struct jsonpath *path;       /* SEG_PATH */
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
        jsonpath_free(t->segs[i].path);
        free(t->segs[i].text);
    }
    free(t);
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
                char why[256];
                s->kind = SEG_PATH;
                if (!(s->path = jsonpath_compile(s->text, why, sizeof why))) {
                    snprintf(err, errlen, "{%s}: %s", s->text, why);
                    goto fail;
                }
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

int redis_template_render(const struct redis_template *t, const struct sink_record *rec, const struct json_slice *doc,
                          struct buf *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->nsegs; i++) {
        const struct seg *s = &t->segs[i];
        struct json_slice v;
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
            v = json_lookup(doc, s->path);
            if (v.kind == JK_NONE) {
                snprintf(err, errlen, "key template: %s is missing", s->text);
                return -1;
            }
            if (v.kind == JK_OBJECT || v.kind == JK_ARRAY || v.kind == JK_NULL) {
                snprintf(err, errlen, "key template: %s is %s, not a string, number or boolean", s->text,
                         json_kind_name(v.kind));
                return -1;
            }
            rc = redis_text_append(out, &v);
            break;
        }
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}
