/* Avro binary → plain JSON with a compiled schema (see avro.h). Every length and count is
 * checked against the bytes left before it is used, and the JSON goes straight into the
 * caller's buffer: no allocation per datum but that buffer's growth. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro.h"
#include "avro_int.h"
#include "json.h"

struct decoder {
    const struct avro_schema *s;
    const uint8_t *base, *p, *end;
    struct buf *out;
    char *err;
    size_t errlen;
    int iso;
    uint32_t zero_values_left;  /* AVRO_MAX_ZERO_SIZE_VALUES, counted down */
};

static int fail(struct decoder *d, const uint8_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct decoder *d, const uint8_t *at, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(d->err, d->errlen, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < d->errlen)
        snprintf(d->err + n, d->errlen - (size_t)n, " at byte %zu", (size_t)(at - d->base));
    return -1;
}

static size_t left(const struct decoder *d)
{
    return (size_t)(d->end - d->p);
}

/* A zigzag varint of at most 10 bytes (Avro's long). */
static int read_long(struct decoder *d, int64_t *v)
{
    const uint8_t *p = d->p;
    uint64_t u = 0;

    if (p < d->end && !(*p & 0x80)) {      /* one byte: most counts, indexes and small values */
        u = *p;
        d->p = p + 1;
    } else {
        for (unsigned i = 0;; i++, p++) {
            if (p >= d->end)
                return fail(d, d->p, "truncated varint");
            if (i == 9 && *p > 1)
                return fail(d, d->p, "varint overflows 64 bits");
            u |= (uint64_t)(*p & 0x7f) << (7 * i);
            if (!(*p & 0x80))
                break;
        }
        d->p = p + 1;
    }
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return 0;
}

static int read_int(struct decoder *d, int32_t *v)
{
    const uint8_t *at = d->p;
    int64_t l = 0;

    if (read_long(d, &l) != 0)
        return -1;
    if (l < INT32_MIN || l > INT32_MAX)
        return fail(d, at, "int %lld out of range", (long long)l);
    *v = (int32_t)l;
    return 0;
}

/* A length prefix (string, bytes, map key), checked against the bytes after it. */
static int read_length(struct decoder *d, const char *what, size_t *n)
{
    const uint8_t *at = d->p;
    int64_t l = 0;

    if (read_long(d, &l) != 0)
        return -1;
    if (l < 0)
        return fail(d, at, "negative %s length %lld", what, (long long)l);
    if ((uint64_t)l > left(d))
        return fail(d, at, "%s length %lld exceeds the %zu bytes left", what, (long long)l, left(d));
    *n = (size_t)l;
    return 0;
}

/* ---- JSON text ---- */

/* The JSON string of the UTF-8 text @p s[0..n), escaped. */
static void add_json_string(struct buf *out, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    buf_add(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = s[i];
        char esc[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };

        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        buf_add(out, s + run, i - run);
        run = i + 1;
        switch (ch) {
        case '"': case '\\': esc[1] = (char)ch; buf_add(out, esc, 2); break;
        case '\n': esc[1] = 'n'; buf_add(out, esc, 2); break;
        case '\r': esc[1] = 'r'; buf_add(out, esc, 2); break;
        case '\t': esc[1] = 't'; buf_add(out, esc, 2); break;
        case '\b': esc[1] = 'b'; buf_add(out, esc, 2); break;
        case '\f': esc[1] = 'f'; buf_add(out, esc, 2); break;
        default: buf_add(out, esc, 6); break;
        }
    }
    buf_add(out, s + run, n - run);
    buf_add(out, "\"", 1);
}

static int decode_string(struct decoder *d, const char *what)
{
    size_t n = 0, bad;

    if (read_length(d, what, &n) != 0)
        return -1;
    if ((bad = json_utf8_invalid_at((const char *)d->p, n)) != n)
        return fail(d, d->p + bad, "%s is not valid UTF-8", what);
    add_json_string(d->out, d->p, n);
    d->p += n;
    return 0;
}

static void add_base64(struct buf *out, const uint8_t *s, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o;
    char *q;

    if (buf_reserve(out, n / 3 * 4 + 6) != 0)
        return;
    q = out->p + out->len;
    o = 0;
    q[o++] = '"';
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

        q[o++] = alphabet[v >> 18];
        q[o++] = alphabet[(v >> 12) & 63];
        q[o++] = alphabet[(v >> 6) & 63];
        q[o++] = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);

        q[o++] = alphabet[v >> 18];
        q[o++] = alphabet[(v >> 12) & 63];
        q[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        q[o++] = '=';
    }
    q[o++] = '"';
    out->len += o;
    out->p[out->len] = '\0';
}

/* The shortest %g text that reads back to @p v: from 15 digits (6 for a float), the usual
 * case, up to 17 (9), which always does. */
static void add_real(struct buf *out, double v, int is_float)
{
    int most = is_float ? 9 : 17;
    char text[32];

    if (isnan(v) || isinf(v)) {
        buf_adds(out, isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    for (int digits = is_float ? 6 : 15; digits <= most; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (digits == most || (is_float ? strtof(text, NULL) == (float)v : strtod(text, NULL) == v))
            break;
    }
    buf_adds(out, text);
}

/* The unscaled two's-complement big-endian integer @p s[0..n) with @p scale digits after the
 * point, exactly (no double). */
static void add_decimal(struct buf *out, const uint8_t *s, size_t n, int32_t scale)
{
    uint32_t limbs[AVRO_DECIMAL_MAX_BYTES / 4 + 1];      /* magnitude, base 2^32, most significant first */
    char digits[AVRO_DECIMAL_MAX_BYTES * 3 + 16], *p = digits + sizeof digits;
    size_t nlimbs = (n + 3) / 4, ndigits, i;
    int negative = n > 0 && (s[0] & 0x80);
    uint64_t carry = 1;

    memset(limbs, 0, sizeof limbs);
    for (i = 0; i < n; i++) {
        size_t from_end = n - 1 - i;      /* byte i is bits 8*from_end.. of the value */
        uint8_t byte = negative ? (uint8_t)~s[i] : s[i];

        limbs[nlimbs - 1 - from_end / 4] |= (uint32_t)byte << (8 * (from_end % 4));
    }
    if (negative)   /* two's complement: the magnitude is the inverse plus one */
        for (i = nlimbs; i-- > 0 && carry;) {
            uint64_t sum = (uint64_t)limbs[i] + carry;

            limbs[i] = (uint32_t)sum;
            carry = sum >> 32;
        }
    /* Nine decimal digits per division by 10^9, least significant first. */
    for (size_t top = 0; top < nlimbs;) {
        uint64_t rem = 0;

        for (i = top; i < nlimbs; i++) {
            uint64_t cur = rem << 32 | limbs[i];

            limbs[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        while (top < nlimbs && limbs[top] == 0)
            top++;
        for (int k = 0; k < 9; k++) {
            *--p = (char)('0' + rem % 10);
            rem /= 10;
        }
    }
    while (p < digits + sizeof digits - 1 && *p == '0')
        p++;
    if (p == digits + sizeof digits)
        *--p = '0';
    ndigits = (size_t)(digits + sizeof digits - p);
    while (ndigits <= (size_t)scale) {     /* "0.05" needs a zero before the point */
        *--p = '0';
        ndigits++;
    }
    if (negative)
        buf_add(out, "-", 1);
    buf_add(out, p, ndigits - (size_t)scale);
    if (scale > 0) {
        buf_add(out, ".", 1);
        buf_add(out, p + ndigits - (size_t)scale, (size_t)scale);
    }
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void add_uuid(struct buf *out, const uint8_t *s)
{
    static const char hex[] = "0123456789abcdef";
    char text[38], *q = text;

    *q++ = '"';
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *q++ = '-';
        *q++ = hex[s[i] >> 4];
        *q++ = hex[s[i] & 15];
    }
    *q++ = '"';
    buf_add(out, text, sizeof text);
}

/* Proleptic Gregorian date of @p days since 1970-01-01 (the era arithmetic: 400-year cycles of
 * 146097 days, years starting in March so the leap day comes last). */
static void civil_date(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;

    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int64_t)yoe + era * 400 + (*month <= 2);
}

static int format_date(char *text, size_t size, int64_t days)
{
    int64_t year;
    unsigned month, day;

    civil_date(days, &year, &month, &day);
    if (year >= 0 && year <= 9999)
        return snprintf(text, size, "%04lld-%02u-%02u", (long long)year, month, day);
    return snprintf(text, size, "%+07lld-%02u-%02u", (long long)year, month, day);
}

/* ISO-8601 text of @p v units (@p per_second of them a second) since the epoch, with the
 * fraction's @p digits and a Z unless the timestamp is local. */
static void add_iso_timestamp(struct buf *out, int64_t v, int64_t per_second, int digits, int zulu)
{
    int64_t seconds = v / per_second, fraction = v % per_second, days, sod;
    char text[64];
    int n;

    if (fraction < 0) {
        fraction += per_second;
        seconds--;
    }
    days = seconds / 86400;
    sod = seconds % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    text[0] = '"';
    n = 1 + format_date(text + 1, sizeof text - 1, days);
    n += snprintf(text + n, sizeof text - (size_t)n, "T%02d:%02d:%02d.%0*lld%s\"", (int)(sod / 3600),
                  (int)(sod / 60 % 60), (int)(sod % 60), digits, (long long)fraction, zulu ? "Z" : "");
    buf_add(out, text, (size_t)n);
}

/* ---- values ---- */

/* How a value that takes no bytes is paid for: not at all (an array item, a record field, the
 * datum), by one byte (a union's index, a map's key), or already (inside such a value). */
enum zero_paid { ZERO_UNPAID, ZERO_ONE_BYTE, ZERO_CHARGED };

static int decode(struct decoder *d, uint32_t idx, int depth, enum zero_paid paid);

static int decode_long(struct decoder *d, const struct avro_node *n)
{
    int64_t v = 0;

    if (read_long(d, &v) != 0)
        return -1;
    if (d->iso) {
        switch (n->logical) {
        case AVRO_TIMESTAMP_MILLIS: add_iso_timestamp(d->out, v, 1000, 3, 1); return 0;
        case AVRO_TIMESTAMP_MICROS: add_iso_timestamp(d->out, v, 1000000, 6, 1); return 0;
        case AVRO_TIMESTAMP_NANOS: add_iso_timestamp(d->out, v, 1000000000, 9, 1); return 0;
        case AVRO_LOCAL_TIMESTAMP_MILLIS: add_iso_timestamp(d->out, v, 1000, 3, 0); return 0;
        case AVRO_LOCAL_TIMESTAMP_MICROS: add_iso_timestamp(d->out, v, 1000000, 6, 0); return 0;
        case AVRO_LOCAL_TIMESTAMP_NANOS: add_iso_timestamp(d->out, v, 1000000000, 9, 0); return 0;
        default: break;
        }
    }
    buf_add_i64(d->out, v);
    return 0;
}

static int decode_int(struct decoder *d, const struct avro_node *n)
{
    int32_t v = 0;
    char text[32];

    if (read_int(d, &v) != 0)
        return -1;
    if (d->iso && n->logical == AVRO_DATE) {
        text[0] = '"';
        int len = 1 + format_date(text + 1, sizeof text - 2, v);

        text[len++] = '"';
        buf_add(d->out, text, (size_t)len);
        return 0;
    }
    buf_add_i64(d->out, v);
    return 0;
}

static int decode_fixed(struct decoder *d, const struct avro_node *n)
{
    const uint8_t *s = d->p;

    if (n->size > left(d))
        return fail(d, d->p, "fixed of %u bytes exceeds the %zu bytes left", n->size, left(d));
    d->p += n->size;
    switch (n->logical) {
    case AVRO_DECIMAL: add_decimal(d->out, s, n->size, n->scale); break;
    case AVRO_UUID: add_uuid(d->out, s); break;
    case AVRO_DURATION:
        buf_adds(d->out, "{\"months\":");
        buf_add_i64(d->out, le32(s));
        buf_adds(d->out, ",\"days\":");
        buf_add_i64(d->out, le32(s + 4));
        buf_adds(d->out, ",\"milliseconds\":");
        buf_add_i64(d->out, le32(s + 8));
        buf_add(d->out, "}", 1);
        break;
    default: add_base64(d->out, s, n->size); break;
    }
    return 0;
}

static int decode_bytes(struct decoder *d, const struct avro_node *n)
{
    const uint8_t *at = d->p;
    size_t len = 0;

    if (read_length(d, "bytes", &len) != 0)
        return -1;
    if (n->logical == AVRO_DECIMAL) {
        if (len > AVRO_DECIMAL_MAX_BYTES)
            return fail(d, at, "decimal of %zu bytes is over the limit of %d", len, AVRO_DECIMAL_MAX_BYTES);
        add_decimal(d->out, d->p, len, n->scale);
    } else {
        add_base64(d->out, d->p, len);
    }
    d->p += len;
    return 0;
}

/* Arrays and maps: blocks of items, each a count (negative: its absolute value, then the
 * block's size in bytes), until a count of 0. */
static int decode_blocks(struct decoder *d, const struct avro_node *n, int depth)
{
    int map = n->kind == AVRO_MAP, zero = !map && d->s->nodes[n->child].zero_size, first = 1;
    const char *what = map ? "map" : "array";

    buf_add(d->out, map ? "{" : "[", 1);
    for (;;) {
        const uint8_t *at = d->p;
        int64_t count = 0, size = 0;

        if (read_long(d, &count) != 0)
            return -1;
        if (count == 0)
            break;
        if (count < 0) {
            if (count == INT64_MIN)
                return fail(d, at, "%s block count %lld out of range", what, (long long)count);
            count = -count;
            if (read_long(d, &size) != 0)
                return -1;
            if (size < 0 || (uint64_t)size > left(d))
                return fail(d, at, "%s block size %lld exceeds the %zu bytes left", what, (long long)size, left(d));
        }
        if (zero) {     /* checked here so a huge count fails at once; decode() charges them */
            if ((uint64_t)count > d->zero_values_left / d->s->nodes[n->child].zero_cost)
                return fail(d, at, "more than %u values that take no bytes", AVRO_MAX_ZERO_SIZE_VALUES);
        } else if ((uint64_t)count > left(d)) {
            return fail(d, at, "%s block count %lld exceeds the %zu bytes left", what, (long long)count, left(d));
        }
        for (; count > 0; count--) {
            if (!first)
                buf_add(d->out, ",", 1);
            first = 0;
            if (map) {
                if (decode_string(d, "map key") != 0)
                    return -1;
                buf_add(d->out, ":", 1);
            }
            if (decode(d, n->child, depth, map ? ZERO_ONE_BYTE : ZERO_UNPAID) != 0)
                return -1;
        }
        if (d->out->oom)
            return fail(d, d->p, "output too large for the buffer");
    }
    buf_add(d->out, map ? "}" : "]", 1);
    return 0;
}

static int decode(struct decoder *d, uint32_t idx, int depth, enum zero_paid paid)
{
    const struct avro_node *n = &d->s->nodes[idx];
    const uint8_t *at = d->p;

    if (n->zero_size && paid != ZERO_CHARGED) {
        uint32_t cost = n->zero_cost - (paid == ZERO_ONE_BYTE);

        if (cost > d->zero_values_left)
            return fail(d, at, "more than %u values that take no bytes", AVRO_MAX_ZERO_SIZE_VALUES);
        d->zero_values_left -= cost;
    }

    switch ((enum avro_kind)n->kind) {
    case AVRO_NULL:
        buf_add(d->out, "null", 4);
        return 0;
    case AVRO_BOOLEAN:
        if (d->p >= d->end)
            return fail(d, at, "truncated boolean");
        if (*d->p > 1)
            return fail(d, at, "invalid boolean byte 0x%02x", *d->p);
        buf_adds(d->out, *d->p++ ? "true" : "false");
        return 0;
    case AVRO_INT:
        return decode_int(d, n);
    case AVRO_LONG:
        return decode_long(d, n);
    case AVRO_FLOAT: {
        uint32_t bits;
        float f;

        if (left(d) < 4)
            return fail(d, at, "truncated float");
        bits = le32(d->p);
        memcpy(&f, &bits, 4);
        d->p += 4;
        add_real(d->out, f, 1);
        return 0;
    }
    case AVRO_DOUBLE: {
        uint64_t bits;
        double v;

        if (left(d) < 8)
            return fail(d, at, "truncated double");
        bits = (uint64_t)le32(d->p) | (uint64_t)le32(d->p + 4) << 32;
        memcpy(&v, &bits, 8);
        d->p += 8;
        add_real(d->out, v, 0);
        return 0;
    }
    case AVRO_BYTES:
        return decode_bytes(d, n);
    case AVRO_STRING:
        return decode_string(d, "string");
    case AVRO_FIXED:
        return decode_fixed(d, n);
    case AVRO_ENUM: {
        int32_t i = 0;

        if (read_int(d, &i) != 0)
            return -1;
        if (i < 0 || (uint32_t)i >= n->count)
            return fail(d, at, "enum index %d out of range (%u symbols)", i, n->count);
        const struct avro_slot *sym = &d->s->slots[n->first + (uint32_t)i];
        buf_add(d->out, d->s->text + sym->text_off, sym->text_len);
        return 0;
    }
    case AVRO_UNION: {
        int64_t i = 0;

        if (read_long(d, &i) != 0)
            return -1;
        if (i < 0 || (uint64_t)i >= n->count)
            return fail(d, at, "union branch %lld out of range (%u branches)", (long long)i, n->count);
        return decode(d, d->s->slots[n->first + (uint32_t)i].node, depth, ZERO_ONE_BYTE);
    }
    case AVRO_RECORD:
    case AVRO_ARRAY:
    case AVRO_MAP:
        break;
    }
    if (depth >= AVRO_MAX_DEPTH)
        return fail(d, at, "data nested deeper than %d levels", AVRO_MAX_DEPTH);
    if (n->kind != AVRO_RECORD)
        return decode_blocks(d, n, depth + 1);
    buf_add(d->out, "{", 1);
    for (uint32_t i = 0; i < n->count; i++) {
        const struct avro_slot *field = &d->s->slots[n->first + i];

        if (i)
            buf_add(d->out, ",", 1);
        buf_add(d->out, d->s->text + field->text_off, field->text_len);
        if (decode(d, field->node, depth + 1, n->zero_size ? ZERO_CHARGED : ZERO_UNPAID) != 0)
            return -1;
    }
    buf_add(d->out, "}", 1);
    return 0;
}

int avro_decode_json(const struct avro_schema *s, const uint8_t *value, size_t len, size_t start,
        const struct avro_decode_opts *opts, struct buf *out, char *err, size_t errlen)
{
    struct decoder d = { .s = s, .base = value, .p = value + start, .end = value + len, .out = out,
                         .err = err, .errlen = errlen, .iso = opts && opts->timestamps_iso,
                         .zero_values_left = AVRO_MAX_ZERO_SIZE_VALUES };
    size_t was = out->len;

    if (start > len) {
        snprintf(err, errlen, "the datum's start %zu is past the value's %zu bytes", start, len);
        return -1;
    }
    if (decode(&d, s->root, 0, ZERO_UNPAID) != 0)
        goto fail;
    if (d.p != d.end) {
        fail(&d, d.p, "%zu trailing bytes after the datum", left(&d));
        goto fail;
    }
    if (out->oom) {
        fail(&d, d.p, "output too large for the buffer");
        goto fail;
    }
    return 0;
fail:
    if (out->p) {   /* appends that failed left len alone: it is at least was */
        out->len = was;
        out->p[was] = '\0';
    }
    return -1;
}
