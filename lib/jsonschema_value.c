/* lib/jsonschema_value.c: what the JSON Schema validator asks of values: equality with numbers
 * by value, number order, code points, the formats, and the paths and snippets of its reasons. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/jsonschema_int.h"

static double number_of(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

int js_number_cmp(const json_t *a, const json_t *b)
{
    double x, y;

    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t i = json_integer_value(a), j = json_integer_value(b);
        return (i > j) - (i < j);
    }
    x = number_of(a);
    y = number_of(b);
    return (x > y) - (x < y);
}

int js_is_integer(const json_t *v)
{
    double d;

    if (json_is_integer(v))
        return 1;
    if (!json_is_real(v))
        return 0;
    d = json_real_value(v);
    return isfinite(d) && floor(d) == d;
}

int js_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return js_number_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!js_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    case JSON_OBJECT: {
        const char *key;
        json_t *va;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, key, va) {
            json_t *vb = json_object_get(b, key);
            if (!vb || !js_equal(va, vb))
                return 0;
        }
        return 1;
    }
    default:   /* true, false, null: same type is same value */
        return 1;
    }
}

size_t js_utf8_count(const char *s, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xC0) != 0x80;   /* every byte but a continuation starts one */
    return count;
}

/* ---- formats ---- */

static int digits(const char *s, size_t n, size_t at, size_t count, int *value)
{
    int v = 0;

    if (at + count > n)
        return 0;
    for (size_t i = at; i < at + count; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *value = v;
    return 1;
}

/* RFC 3339 full-date, YYYY-MM-DD with the month's real number of days. */
static int date_ok(const char *s, size_t n)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y = 0, m = 0, d = 0, leap;

    if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, n, 0, 4, &y) || !digits(s, n, 5, 2, &m) ||
        !digits(s, n, 8, 2, &d))
        return 0;
    if (m < 1 || m > 12 || d < 1)
        return 0;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap);
}

/* RFC 3339 full-time: HH:MM:SS[.frac](Z|+HH:MM|-HH:MM); second 60 is a leap second. */
static int time_ok(const char *s, size_t n)
{
    int h = 0, m = 0, sec = 0, oh = 0, om = 0;
    size_t i = 8;

    if (n < 9 || s[2] != ':' || s[5] != ':' || !digits(s, n, 0, 2, &h) || !digits(s, n, 3, 2, &m) ||
        !digits(s, n, 6, 2, &sec) || h > 23 || m > 59 || sec > 60)
        return 0;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z'))
        return 1;
    if (i + 6 != n || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':' || !digits(s, n, i + 1, 2, &oh) ||
        !digits(s, n, i + 4, 2, &om))
        return 0;
    return oh <= 23 && om <= 59;
}

static int date_time_ok(const char *s, size_t n)
{
    return n > 11 && (s[10] == 'T' || s[10] == 't') && date_ok(s, 10) && time_ok(s + 11, n - 11);
}

static int hex_at(const char *s, size_t i)
{
    return isxdigit((unsigned char)s[i]);
}

static int uuid_ok(const char *s, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!hex_at(s, i)) {
            return 0;
        }
    }
    return 1;
}

/* A practical address check, not RFC 5321's grammar: one '@'; a local part of printable ASCII
 * other than the specials ()<>[]:;@\\,\" and space, without a leading, trailing or doubled dot;
 * a domain of dot-separated labels of letters, digits and inner hyphens. Quoted local parts,
 * address literals and non-ASCII (idn-email) are refused. */
static int email_ok(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    size_t local, label = 0;

    if (!at)
        return 0;
    local = (size_t)(at - s);
    if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.')
        return 0;
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || strchr("()<>[]:;@\\,\"", c) || (c == '.' && s[i + 1] == '.'))
            return 0;
    }
    if (local + 1 == n || n - local - 1 > 253)
        return 0;
    for (size_t i = local + 1; i <= n; i++) {
        unsigned char c = i < n ? (unsigned char)s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return 0;
            label = 0;
        } else if (isalnum(c) || (c == '-' && label > 0)) {
            label++;
        } else {
            return 0;
        }
    }
    return 1;
}

static int uri_unreserved_or_sub(unsigned char c)
{
    return isalnum(c) || strchr("-._~!$&'()*+,;=", c) != NULL;
}

/* Characters of RFC 3986 from s[i] on while they are in the class, with %HH; -1 on a bad %. */
static long uri_run(const char *s, size_t n, size_t i, const char *extra)
{
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || !hex_at(s, i + 1) || !hex_at(s, i + 2))
                return -1;
            i += 3;
        } else if (c != 0 && (uri_unreserved_or_sub(c) || strchr(extra, c))) {
            i++;
        } else {
            break;
        }
    }
    return (long)i;
}

/* RFC 3986 "URI": scheme ":" hier-part [ "?" query ] [ "#" fragment ], absolute. */
static int uri_ok(const char *s, size_t n)
{
    size_t i = 0;
    long r;

    if (n == 0 || !isalpha((unsigned char)s[0]))
        return 0;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i == n || s[i] != ':')
        return 0;
    i++;
    if (i + 1 < n && s[i] == '/' && s[i + 1] == '/') {          /* authority */
        size_t start = i + 2, end = start, at;
        while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#')
            end++;
        at = start;
        for (size_t k = start; k < end; k++)
            if (s[k] == '@')
                at = k + 1;   /* the last '@' ends the userinfo */
        if (at > start && ((r = uri_run(s, at - 1, start, ":")) < 0 || (size_t)r != at - 1))
            return 0;
        if (at < end && s[at] == '[') {                          /* IP-literal */
            size_t k = at + 1;
            while (k < end && (hex_at(s, k) || s[k] == ':' || s[k] == '.' || s[k] == 'v' || s[k] == 'V'))
                k++;
            if (k >= end || s[k] != ']' || k == at + 1)
                return 0;
            at = k + 1;
        } else if ((r = uri_run(s, end, at, "")) < 0) {
            return 0;
        } else {
            at = (size_t)r;
        }
        if (at < end) {                                          /* ":" port */
            if (s[at] != ':')
                return 0;
            for (at++; at < end; at++)
                if (!isdigit((unsigned char)s[at]))
                    return 0;
        }
        i = end;
    }
    if ((r = uri_run(s, n, i, ":@/")) < 0)                       /* path */
        return 0;
    i = (size_t)r;
    if (i < n && s[i] == '?' && (r = uri_run(s, n, i + 1, ":@/?")) >= 0)
        i = (size_t)r;
    if (i < n && s[i] == '#' && (r = uri_run(s, n, i + 1, ":@/?")) >= 0)
        i = (size_t)r;
    return i == n;
}

int js_format_ok(enum js_format f, const char *s, size_t n)
{
    switch (f) {
    case JS_F_DATE_TIME: return date_time_ok(s, n);
    case JS_F_DATE: return date_ok(s, n);
    case JS_F_TIME: return time_ok(s, n);
    case JS_F_EMAIL: return email_ok(s, n);
    case JS_F_UUID: return uuid_ok(s, n);
    case JS_F_URI: return uri_ok(s, n);
    default: return 1;
    }
}

static const struct { const char *name, *noun; enum js_format format; } formats[] = {
    { "date-time", "a date-time", JS_F_DATE_TIME }, { "date", "a date", JS_F_DATE },
    { "time", "a time", JS_F_TIME }, { "email", "an email", JS_F_EMAIL },
    { "uuid", "a uuid", JS_F_UUID }, { "uri", "a URI", JS_F_URI },
};

enum js_format js_format_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(formats[i].name, name) == 0)
            return formats[i].format;
    return JS_F_NONE;
}

const char *js_format_noun(enum js_format f)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].format == f)
            return formats[i].noun;
    return "of the format";
}

/* ---- reasons ---- */

static int plain_name(const char *key)
{
    if (!*key || isdigit((unsigned char)key[0]))
        return 0;
    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '$')
            return 0;
    return 1;
}

/* Cut @p len bytes of UTF-8 back to a code point boundary (s[len] is the first byte left out). */
static size_t utf8_boundary(const char *s, size_t len)
{
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
        len--;
    return len;
}

size_t js_path_append(char *buf, size_t len, size_t size, const char *key, size_t index)
{
    char seg[256];
    int w;

    if (!key) {
        w = snprintf(seg, sizeof seg, "[%zu]", index);
    } else if (plain_name(key)) {
        w = snprintf(seg, sizeof seg, ".%s", key);
    } else {
        char quoted[200];
        js_quote(key, quoted, sizeof quoted, 60);
        w = snprintf(seg, sizeof seg, "[%s]", quoted);
    }
    if (w < 0)
        return len;
    if ((size_t)w >= sizeof seg)   /* a long name: the segment holds its start */
        w = (int)utf8_boundary(seg, sizeof seg - 1);
    if (len + (size_t)w >= size) {   /* cut, so a deep path still names its start */
        size_t room = utf8_boundary(seg, size - 1 - len);
        memcpy(buf + len, seg, room);
        buf[len + room] = '\0';
        return len + room;
    }
    memcpy(buf + len, seg, (size_t)w);
    buf[len + (size_t)w] = '\0';
    return len + (size_t)w;
}

struct snippet_buf {
    char *text;
    size_t len, size;
};

/* json_dump_callback's sink: keeps what fits, then stops the dump (a value may be megabytes). */
static int snippet_sink(const char *chunk, size_t n, void *data)
{
    struct snippet_buf *b = data;
    size_t room = b->size - b->len;

    memcpy(b->text + b->len, chunk, n < room ? n : room);
    b->len += n < room ? n : room;
    return b->len == b->size ? -1 : 0;
}

void js_value_snippet(const json_t *v, char *out, size_t outsize, size_t max)
{
    char text[512];
    struct snippet_buf b = { text, 0, sizeof text };
    size_t cut = 0, points = 0;

    /* Compact JSON escapes control characters, so the snippet is one line; 15 digits print
     * 1.005 as a person wrote it, not as 1.0049999999999999. */
    json_dump_callback(v, snippet_sink, &b, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    while (cut < b.len && points < max) {
        cut++;
        while (cut < b.len && ((unsigned char)text[cut] & 0xC0) == 0x80)
            cut++;
        points++;
    }
    if (cut < b.len)
        snprintf(out, outsize, "%.*s...", (int)cut, text);
    else
        snprintf(out, outsize, "%.*s", (int)b.len, text);
}

void js_quote(const char *s, char *out, size_t outsize, size_t max)
{
    size_t len = 0, points = 0;

    if (outsize < 16)
        return;
    out[len++] = '"';
    for (; *s && len + 12 < outsize; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c & 0xC0) != 0x80 && points++ == max) {
            memcpy(out + len, "...", 3);
            len += 3;
            break;
        }
        if (c == '"' || c == '\\')
            len += (size_t)snprintf(out + len, outsize - len, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)   /* a newline in a name must not split the reason */
            len += (size_t)snprintf(out + len, outsize - len, "\\u%04x", c);
        else
            out[len++] = (char)c;
    }
    out[len++] = '"';
    out[len] = '\0';
}
