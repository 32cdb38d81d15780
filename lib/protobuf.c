/* The Protobuf wire walker: one record to proto3 JSON with a compiled schema (protobuf_int.h).
 *
 * Each message is walked twice. The scan checks every tag, wire type and length against the
 * bytes left and notes, per field, the first and the last occurrence and how many there were
 * (a scratch of slots, one per field and one per oneof, pushed per nesting level). The print then
 * goes through the fields in declaration order: a singular field prints its last occurrence
 * (last one wins; an embedded message that occurs twice is not merged, the last one prints), a
 * repeated field every occurrence from its first, packed or not, and a oneof only its member that
 * came last. Nothing is allocated from a length read on the wire. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/protobuf_int.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* Per field of a message being printed: where it occurred (offsets of its tags). For the slot
 * after the fields that stands for a oneof, count is the index + 1 of the member seen last. */
struct slot {
    size_t first, last, count;
};

/* One value as the wire holds it: a number (varint, fixed) or a slice of the record. */
struct wire_value {
    uint64_t u;
    size_t off, len;
    int wt;
};

struct walk {
    const struct pb_schema *s;
    const uint8_t *v;
    struct buf *out;
    char *err;
    size_t errlen;
    struct slot *slots;
    size_t nslots, capslots;
};

static int bad(struct walk *w, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct walk *w, size_t at, const char *fmt, ...)
{
    char where[32];
    size_t room;
    va_list ap;
    int n, m;

    if (w->errlen == 0)
        return -1;
    m = snprintf(where, sizeof where, " at byte %zu", at);
    /* the offset always fits: a long reason (long type names) is cut instead */
    room = w->errlen > (size_t)m ? w->errlen - (size_t)m : 1;
    va_start(ap, fmt);
    n = vsnprintf(w->err, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= room)
        n = (int)room - 1;
    snprintf(w->err + n, w->errlen - (size_t)n, "%s", where);
    return -1;
}

static int get_varint(struct walk *w, size_t *p, size_t end, uint64_t *v)
{
    size_t at = *p;
    uint64_t x = 0;

    *v = 0;
    for (unsigned shift = 0;; shift += 7) {
        uint8_t b;
        if (*p >= end)
            return bad(w, at, "truncated varint");
        b = w->v[(*p)++];
        if (shift == 63 && b > 1)
            return bad(w, at, "varint longer than 10 bytes or over 64 bits");
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *v = x;
    return 0;
}

static int get_fixed(struct walk *w, size_t *p, size_t end, unsigned n, uint64_t *v)
{
    uint64_t x = 0;

    *v = 0;
    if (end - *p < n)
        return bad(w, *p, "truncated fixed%u (%zu bytes left)", n * 8, end - *p);
    for (unsigned i = 0; i < n; i++)
        x |= (uint64_t)w->v[*p + i] << (8 * i);
    *p += n;
    *v = x;
    return 0;
}

static int read_tag(struct walk *w, size_t *p, size_t end, uint32_t *number, int *wt)
{
    size_t at = *p;
    uint64_t tag;

    *number = 0;
    *wt = 0;
    if (get_varint(w, p, end, &tag) != 0)
        return -1;
    if (tag >> 3 == 0 || tag >> 3 > 536870911)
        return bad(w, at, "invalid field number %llu", (unsigned long long)(tag >> 3));
    if ((tag & 7) > WT_I32)
        return bad(w, at, "invalid wire type %u", (unsigned)(tag & 7));
    *number = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    return 0;
}

/* The value after a tag of wire type @p wt (not a group). */
static int read_value(struct walk *w, int wt, size_t *p, size_t end, struct wire_value *val)
{
    size_t at = *p;

    val->wt = wt;
    val->u = 0;
    val->off = val->len = 0;
    switch (wt) {
    case WT_VARINT: return get_varint(w, p, end, &val->u);
    case WT_I64: return get_fixed(w, p, end, 8, &val->u);
    case WT_I32: return get_fixed(w, p, end, 4, &val->u);
    default:
        if (get_varint(w, p, end, &val->u) != 0)
            return -1;
        if (val->u > end - *p)
            return bad(w, at, "length %llu past the end of the message (%zu bytes left)",
                    (unsigned long long)val->u, end - *p);
        val->off = *p;
        val->len = (size_t)val->u;
        *p += val->len;
        return 0;
    }
}

/* An unknown field: skipped, groups to their end-group tag. */
static int skip_field(struct walk *w, int wt, uint32_t number, size_t tagpos, size_t *p, size_t end, int depth)
{
    struct wire_value val;

    if (wt == WT_EGROUP)
        return bad(w, tagpos, "end-group tag for field %u without its start", number);
    if (wt != WT_SGROUP)
        return read_value(w, wt, p, end, &val);
    if (depth >= PB_MAX_DEPTH)
        return bad(w, tagpos, "groups nested deeper than %d", PB_MAX_DEPTH);
    for (;;) {
        size_t at = *p;
        uint32_t inner;
        int iwt;
        if (*p >= end)
            return bad(w, tagpos, "group of field %u without its end-group tag", number);
        if (read_tag(w, p, end, &inner, &iwt) != 0)
            return -1;
        if (iwt == WT_EGROUP) {
            if (inner != number)
                return bad(w, at, "end-group tag for field %u inside the group of field %u", inner, number);
            return 0;
        }
        if (skip_field(w, iwt, inner, at, p, end, depth + 1) != 0)
            return -1;
    }
}

static int wire_type_of(int type)
{
    switch (type) {
    case PB_DOUBLE: case PB_FIXED64: case PB_SFIXED64: return WT_I64;
    case PB_FLOAT: case PB_FIXED32: case PB_SFIXED32: return WT_I32;
    case PB_STRING: case PB_BYTES: case PB_MESSAGE: return WT_LEN;
    default: return WT_VARINT;
    }
}

static int push_slots(struct walk *w, size_t n)
{
    if (n == 0)
        return 0;                       /* a message without fields or oneofs */
    if (w->nslots + n > w->capslots) {
        size_t cap = w->capslots ? w->capslots : 64;
        struct slot *p;
        while (cap < w->nslots + n)
            cap *= 2;
        if (!(p = realloc(w->slots, cap * sizeof *p)))
            return bad(w, 0, "out of memory");
        w->slots = p;
        w->capslots = cap;
    }
    memset(w->slots + w->nslots, 0, n * sizeof *w->slots);
    w->nslots += n;
    return 0;
}

/* Checks the message at [start, end) and notes where each field occurs in slots[base..]. */
static int scan(struct walk *w, const struct pb_message *m, size_t start, size_t end, size_t base, int depth)
{
    size_t p = start;

    while (p < end) {
        size_t tagpos = p, i;
        const struct pb_field *f;
        struct wire_value val;
        struct slot *sl;
        uint32_t number;
        int wt, want;

        if (read_tag(w, &p, end, &number, &wt) != 0)
            return -1;
        if (!(f = pb_field_find(m, number))) {
            if (skip_field(w, wt, number, tagpos, &p, end, depth + 1) != 0)
                return -1;
            continue;
        }
        want = wire_type_of(f->type);
        if (wt != want && !(wt == WT_LEN && (f->flags & PB_REPEATED)))   /* packed */
            return bad(w, tagpos, "field %s (%u) has wire type %d, expected %d", f->name, number, wt, want);
        if (read_value(w, wt, &p, end, &val) != 0)
            return -1;
        i = (size_t)(f - m->fields);
        sl = &w->slots[base + i];
        if (!sl->count)
            sl->first = tagpos;
        sl->last = tagpos;
        sl->count++;
        if (f->oneof >= 0)
            w->slots[base + m->nfields + (size_t)f->oneof].count = i + 1;
    }
    return 0;
}

/* ---- printing values ---- */

static void add_u64(struct buf *out, uint64_t v)
{
    char tmp[24];
    size_t n = sizeof tmp;

    do
        tmp[--n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    buf_add(out, tmp + n, sizeof tmp - n);
}

/* JSON string contents (no quotes) of UTF-8 text already checked. */
static void add_escaped(struct buf *out, const uint8_t *s, size_t n)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        char esc[8];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_add(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': buf_add(out, "\\\"", 2); break;
        case '\\': buf_add(out, "\\\\", 2); break;
        case '\n': buf_add(out, "\\n", 2); break;
        case '\r': buf_add(out, "\\r", 2); break;
        case '\t': buf_add(out, "\\t", 2); break;
        case '\b': buf_add(out, "\\b", 2); break;
        case '\f': buf_add(out, "\\f", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_add(out, esc, 6);
        }
    }
    buf_add(out, s + run, n - run);
}

static int add_string(struct walk *w, const struct wire_value *val, const char *what)
{
    if (!json_utf8_valid((const char *)w->v + val->off, val->len))
        return bad(w, val->off, "%s: string is not valid UTF-8", what);
    buf_add(w->out, "\"", 1);
    add_escaped(w->out, w->v + val->off, val->len);
    buf_add(w->out, "\"", 1);
    return 0;
}

static void add_base64(struct buf *out, const uint8_t *s, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o;

    if (buf_add(out, NULL, (n + 2) / 3 * 4) != 0)
        return;
    o = out->p + out->len - (n + 2) / 3 * 4;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *o++ = abc[x >> 18];
        *o++ = abc[(x >> 12) & 63];
        *o++ = i + 1 < n ? abc[(x >> 6) & 63] : '=';
        *o++ = i + 2 < n ? abc[x & 63] : '=';
    }
}

/* The shortest text that reads back as the same float or double; the non-finite as strings. */
static void add_real(struct buf *out, double d, int is_float)
{
    char tmp[40];

    if (isnan(d)) {
        buf_adds(out, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        buf_adds(out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (is_float ? strtof(tmp, NULL) == (float)d : strtod(tmp, NULL) == d)
            break;
    }
    buf_adds(out, tmp);
}

static void add_enum(struct walk *w, int32_t target, int32_t number)
{
    const struct pb_enum *e = &w->s->enums[target];
    size_t lo = 0, hi = e->nvalues;

    if (e->null_value) {
        buf_adds(w->out, "null");
        return;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->values[mid].number == number) {
            buf_add(w->out, "\"", 1);
            buf_adds(w->out, e->values[mid].name);   /* an identifier: nothing to escape */
            buf_add(w->out, "\"", 1);
            return;
        }
        if (e->values[mid].number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    buf_add_i64(w->out, number);        /* a number with no name prints as the number */
}

/* Integers, with the 64-bit ones quoted when @p quote64 (proto3 JSON) and bare in map keys. */
static void add_integer(struct buf *out, int type, uint64_t u, int quote64)
{
    int wide = type == PB_INT64 || type == PB_UINT64 || type == PB_FIXED64 || type == PB_SFIXED64 ||
        type == PB_SINT64;

    if (wide && quote64)
        buf_add(out, "\"", 1);
    switch (type) {
    case PB_INT32: case PB_SFIXED32: buf_add_i64(out, (int32_t)(uint32_t)u); break;
    case PB_UINT32: case PB_FIXED32: add_u64(out, (uint32_t)u); break;
    case PB_SINT32: buf_add_i64(out, (int32_t)((uint32_t)u >> 1 ^ (0u - ((uint32_t)u & 1)))); break;
    case PB_INT64: case PB_SFIXED64: buf_add_i64(out, (int64_t)u); break;
    case PB_SINT64: buf_add_i64(out, (int64_t)(u >> 1 ^ (0 - (u & 1)))); break;
    default: add_u64(out, u); break;                /* uint64, fixed64 */
    }
    if (wide && quote64)
        buf_add(out, "\"", 1);
}

/* One scalar (not a message) of field @p f. */
static int add_scalar(struct walk *w, const struct pb_field *f, const struct wire_value *val)
{
    float fl;
    double d;
    uint32_t u32;

    switch (f->type) {
    case PB_BOOL: buf_adds(w->out, val->u ? "true" : "false"); return 0;
    case PB_ENUM: add_enum(w, f->target, (int32_t)(uint32_t)val->u); return 0;
    case PB_FLOAT:
        u32 = (uint32_t)val->u;
        memcpy(&fl, &u32, sizeof fl);
        add_real(w->out, fl, 1);
        return 0;
    case PB_DOUBLE:
        memcpy(&d, &val->u, sizeof d);
        add_real(w->out, d, 0);
        return 0;
    case PB_STRING: return add_string(w, val, f->name);
    case PB_BYTES:
        buf_add(w->out, "\"", 1);
        add_base64(w->out, w->v + val->off, val->len);
        buf_add(w->out, "\"", 1);
        return 0;
    default:
        add_integer(w->out, f->type, val->u, 1);
        return 0;
    }
}

/* proto3 implicit presence: a scalar equal to its default is not printed. */
static int is_default(const struct wire_value *val)
{
    return val->wt == WT_LEN ? val->len == 0 : val->u == 0;
}

static int emit_message(struct walk *w, int32_t mi, size_t start, size_t end, int depth);

/* The value of a map entry's key as a JSON string. */
static int add_map_key(struct walk *w, const struct pb_field *f, const struct wire_value *val)
{
    if (f->type == PB_STRING)
        return add_string(w, val, f->name);
    buf_add(w->out, "\"", 1);
    if (f->type == PB_BOOL)
        buf_adds(w->out, val->u ? "true" : "false");
    else
        add_integer(w->out, f->type, val->u, 0);
    buf_add(w->out, "\"", 1);
    return 0;
}

/* Reads the occurrence whose tag is at @p tagpos. */
static int value_at(struct walk *w, size_t tagpos, size_t end, struct wire_value *val)
{
    uint32_t number;
    int wt;

    return read_tag(w, &tagpos, end, &number, &wt) != 0 ? -1 : read_value(w, wt, &tagpos, end, val);
}

/* A field's value (the member's key already written): a message, scalar, array or map. Sets
 * *printed to 0 when there is nothing to print (a default scalar, an empty packed array). */
static int emit_field(struct walk *w, const struct pb_field *f, struct slot sl, size_t end, int depth, int *printed);

/* A singular field, or a map entry's key or value, absent: its default. */
static int emit_default(struct walk *w, const struct pb_field *f, size_t at, int depth)
{
    struct wire_value zero = { 0, at, 0, wire_type_of(f->type) };

    if (f->type == PB_MESSAGE)
        return emit_message(w, f->target, at, at, depth + 1);
    return add_scalar(w, f, &zero);
}

static int emit_map_entry(struct walk *w, int32_t mi, const struct wire_value *entry, int depth)
{
    const struct pb_message *m = &w->s->msgs[mi];
    const struct pb_field *fk = pb_field_find(m, 1), *fv = pb_field_find(m, 2);
    size_t base = w->nslots, end = entry->off + entry->len;
    struct slot sk, sv;
    struct wire_value val;
    int rc = -1, printed;

    if (depth > PB_MAX_DEPTH)
        return bad(w, entry->off, "messages nested deeper than %d", PB_MAX_DEPTH);
    if (push_slots(w, m->nfields + m->noneofs) != 0 || scan(w, m, entry->off, end, base, depth) != 0)
        goto out;
    sk = w->slots[base + (size_t)(fk - m->fields)];
    sv = w->slots[base + (size_t)(fv - m->fields)];
    val = (struct wire_value){ 0, end, 0, WT_LEN };     /* a missing key is its default */
    if (sk.count && value_at(w, sk.last, end, &val) != 0)
        goto out;
    if (add_map_key(w, fk, &val) != 0)
        goto out;
    buf_add(w->out, ":", 1);
    if (sv.count)
        rc = emit_field(w, fv, sv, end, depth, &printed);
    else
        rc = emit_default(w, fv, end, depth);
    if (rc == 0 && sv.count && !printed)
        rc = emit_default(w, fv, end, depth);     /* a value written as its default */
out:
    w->nslots = base;
    return rc;
}

static int emit_element(struct walk *w, const struct pb_field *f, const struct wire_value *val, size_t *n, int depth)
{
    if ((*n)++)
        buf_add(w->out, ",", 1);
    if (f->type == PB_MESSAGE)
        return emit_message(w, f->target, val->off, val->off + val->len, depth + 1);
    return add_scalar(w, f, val);
}

/* The elements of a packed occurrence. */
static int emit_packed(struct walk *w, const struct pb_field *f, const struct wire_value *val, size_t *n, int depth)
{
    int wt = wire_type_of(f->type);
    unsigned size = wt == WT_I64 ? 8 : 4;
    size_t p = val->off, end = val->off + val->len;
    struct wire_value el;

    if (wt == WT_LEN)
        return emit_element(w, f, val, n, depth);
    if (wt != WT_VARINT && val->len % size)
        return bad(w, val->off, "packed field %s: %zu bytes is not a multiple of %u", f->name, val->len, size);
    while (p < end) {
        if (read_value(w, wt, &p, end, &el) != 0 || emit_element(w, f, &el, n, depth) != 0)
            return -1;
    }
    return 0;
}

/* The next occurrence of repeated field @p f at or after *p: 1 (in @p val), 0 at the end, -1. */
static int next_occurrence(struct walk *w, const struct pb_field *f, size_t *p, size_t end, int depth,
        struct wire_value *val)
{
    while (*p < end) {
        size_t tagpos = *p;
        uint32_t number;
        int wt;
        if (read_tag(w, p, end, &number, &wt) != 0)
            return -1;
        if (number == f->number)
            return read_value(w, wt, p, end, val) != 0 ? -1 : 1;
        if (skip_field(w, wt, number, tagpos, p, end, depth + 1) != 0)
            return -1;
    }
    return 0;
}

static int emit_field(struct walk *w, const struct pb_field *f, struct slot sl, size_t end, int depth, int *printed)
{
    struct wire_value val;
    size_t p = sl.first, seen = 0, n = 0;
    int found;

    *printed = 1;
    if (!(f->flags & PB_REPEATED)) {
        if (value_at(w, sl.last, end, &val) != 0)
            return -1;
        if (f->type == PB_MESSAGE)
            return emit_message(w, f->target, val.off, val.off + val.len, depth + 1);
        if (!(f->flags & PB_PRESENCE) && is_default(&val)) {
            *printed = 0;
            return 0;
        }
        return add_scalar(w, f, &val);
    }
    buf_add(w->out, f->flags & PB_MAP ? "{" : "[", 1);
    while (seen++ < sl.count && (found = next_occurrence(w, f, &p, end, depth, &val)) != 0) {
        if (found < 0)
            return -1;
        if (f->flags & PB_MAP) {
            if (n++)
                buf_add(w->out, ",", 1);
            if (emit_map_entry(w, f->target, &val, depth + 1) != 0)
                return -1;
        } else if (val.wt == WT_LEN && f->type != PB_MESSAGE && f->type != PB_STRING && f->type != PB_BYTES) {
            if (emit_packed(w, f, &val, &n, depth) != 0)
                return -1;
        } else if (emit_element(w, f, &val, &n, depth) != 0) {
            return -1;
        }
    }
    buf_add(w->out, f->flags & PB_MAP ? "}" : "]", 1);
    *printed = n > 0;
    return 0;
}

static int emit_object(struct walk *w, const struct pb_message *m, size_t base, size_t end, int depth)
{
    int first = 1;

    buf_add(w->out, "{", 1);
    for (size_t i = 0; i < m->nfields; i++) {
        struct slot sl = w->slots[base + i];
        const struct pb_field *f = &m->fields[i];
        size_t mark = w->out->len;
        int printed;

        if (!sl.count)
            continue;
        if (f->oneof >= 0 && w->slots[base + m->nfields + (size_t)f->oneof].count != i + 1)
            continue;                   /* another member of its oneof came later */
        if (!first)
            buf_add(w->out, ",", 1);
        buf_add(w->out, f->key, f->key_len);
        if (emit_field(w, f, sl, end, depth, &printed) != 0)
            return -1;
        if (!printed && !w->out->oom) {
            w->out->len = mark;
            w->out->p[mark] = '\0';
        } else {
            first = 0;
        }
    }
    buf_add(w->out, "}", 1);
    return 0;
}

/* The last value of the scalar field @p number of a well-known type (0 when absent). */
static int wkt_number(struct walk *w, const struct pb_message *m, size_t base, uint32_t number, size_t end,
        uint64_t *u)
{
    const struct pb_field *f = pb_field_find(m, number);
    struct slot sl;
    struct wire_value val;

    *u = 0;
    if (!f || !(sl = w->slots[base + (size_t)(f - m->fields)]).count)
        return 0;
    if (value_at(w, sl.last, end, &val) != 0)
        return -1;
    *u = val.u;
    return 0;
}

static void add_fraction(struct buf *out, int32_t nanos)
{
    char tmp[16];

    if (nanos == 0)
        return;
    if (nanos % 1000000 == 0)
        snprintf(tmp, sizeof tmp, ".%03d", (int)(nanos / 1000000));
    else if (nanos % 1000 == 0)
        snprintf(tmp, sizeof tmp, ".%06d", (int)(nanos / 1000));
    else
        snprintf(tmp, sizeof tmp, ".%09d", (int)nanos);
    buf_adds(out, tmp);
}

/* RFC 3339 in UTC; days to the civil date by the proleptic Gregorian calendar's 400-year eras. */
static void add_timestamp(struct buf *out, int64_t seconds, int32_t nanos)
{
    int64_t days = seconds / 86400, secs = seconds % 86400, era, year;
    unsigned doe, yoe, doy, mp, day, month;
    char tmp[40];

    if (secs < 0) {
        secs += 86400;
        days--;
    }
    days += 719468;                     /* from 1970-01-01 to 0000-03-01 */
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = (unsigned)(days - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    day = doy - (153 * mp + 2) / 5 + 1;
    month = mp < 10 ? mp + 3 : mp - 9;
    year = (int64_t)yoe + era * 400 + (month <= 2);
    snprintf(tmp, sizeof tmp, "\"%04d-%02u-%02uT%02d:%02d:%02d", (int)year, month, day, (int)(secs / 3600),
            (int)(secs / 60 % 60), (int)(secs % 60));
    buf_adds(out, tmp);
    add_fraction(out, nanos);
    buf_adds(out, "Z\"");
}

/* The singular string or bytes field @p number of a well-known type; len 0 when absent. */
static int wkt_slice(struct walk *w, const struct pb_message *m, size_t base, uint32_t number, size_t end,
        struct wire_value *val)
{
    const struct pb_field *f = pb_field_find(m, number);
    struct slot sl;

    *val = (struct wire_value){ 0, end, 0, WT_LEN };
    if (!f || !(sl = w->slots[base + (size_t)(f - m->fields)]).count)
        return 0;
    return value_at(w, sl.last, end, val);
}

/* Any: {"@type": url, the fields of the packed message}, or {"@type": url, "value": ...} when that
 * message is a well-known type. The type must be in the schema (files or built in). */
static int emit_any(struct walk *w, const struct pb_message *m, size_t base, size_t end, int depth)
{
    struct wire_value url, packed;
    const char *slash;
    char name[512];
    size_t mark, n;
    int32_t target;

    if (wkt_slice(w, m, base, 1, end, &url) != 0 || wkt_slice(w, m, base, 2, end, &packed) != 0)
        return -1;
    if (url.len == 0 && packed.len == 0) {
        buf_adds(w->out, "{}");
        return 0;
    }
    slash = memrchr(w->v + url.off, '/', url.len);
    n = slash ? url.len - (size_t)(slash + 1 - (const char *)(w->v + url.off)) : url.len;
    if (n == 0 || n + 2 > sizeof name)
        return bad(w, url.off, "google.protobuf.Any type_url without a type name");
    name[0] = '.';
    memcpy(name + 1, w->v + url.off + url.len - n, n);
    name[n + 1] = '\0';
    if (memchr(name, '\0', n + 1) || (target = pb_schema_find(w->s, name)) < 0)
        return bad(w, url.off, "google.protobuf.Any holds a type the schema does not have");
    buf_adds(w->out, "{\"@type\":");
    if (add_string(w, &url, "google.protobuf.Any.type_url") != 0)
        return -1;
    if (w->s->msgs[target].wkt) {
        buf_adds(w->out, ",\"value\":");
        if (emit_message(w, target, packed.off, packed.off + packed.len, depth + 1) != 0)
            return -1;
        buf_add(w->out, "}", 1);
        return 0;
    }
    mark = w->out->len;
    if (emit_message(w, target, packed.off, packed.off + packed.len, depth + 1) != 0)
        return -1;
    if (w->out->oom)
        return 0;
    if (w->out->len == mark + 2) {      /* "{}": no fields */
        w->out->p[mark] = '}';
        w->out->len = mark + 1;
        w->out->p[w->out->len] = '\0';
    } else {
        w->out->p[mark] = ',';          /* the message's members follow "@type" */
    }
    return 0;
}

/* FieldMask: its paths in lowerCamel, joined by commas, as one string. */
static int emit_field_mask(struct walk *w, const struct pb_message *m, size_t base, size_t end, int depth)
{
    const struct pb_field *f = pb_field_find(m, 1);
    struct wire_value val;
    size_t p, seen = 0;
    int found;

    buf_add(w->out, "\"", 1);
    if (f && f->type == PB_STRING && w->slots[base + (size_t)(f - m->fields)].count) {
        struct slot sl = w->slots[base + (size_t)(f - m->fields)];
        for (p = sl.first; seen < sl.count && (found = next_occurrence(w, f, &p, end, depth, &val)) != 0; seen++) {
            const uint8_t *s = w->v + val.off;
            if (found < 0)
                return -1;
            if (!json_utf8_valid((const char *)s, val.len))
                return bad(w, val.off, "google.protobuf.FieldMask path is not valid UTF-8");
            if (seen)
                buf_add(w->out, ",", 1);
            for (size_t i = 0; i < val.len; i++) {
                uint8_t c = s[i];
                if (c == '_' && i + 1 < val.len && s[i + 1] >= 'a' && s[i + 1] <= 'z')
                    c = (uint8_t)(s[++i] - 'a' + 'A');
                add_escaped(w->out, &c, 1);
            }
        }
    }
    buf_add(w->out, "\"", 1);
    return 0;
}

static int emit_wkt(struct walk *w, const struct pb_message *m, size_t base, size_t start, size_t end, int depth)
{
    uint64_t u1, u2;
    int64_t seconds;
    int32_t nanos;
    int printed;

    switch (m->wkt) {
    case PB_WKT_TIMESTAMP:
    case PB_WKT_DURATION:
        if (wkt_number(w, m, base, 1, end, &u1) != 0 || wkt_number(w, m, base, 2, end, &u2) != 0)
            return -1;
        seconds = (int64_t)u1;
        nanos = (int32_t)(uint32_t)u2;
        if (m->wkt == PB_WKT_TIMESTAMP) {
            if (seconds < -62135596800 || seconds > 253402300799 || nanos < 0 || nanos > 999999999)
                return bad(w, start, "Timestamp out of range (seconds %lld, nanos %d)", (long long)seconds, (int)nanos);
            add_timestamp(w->out, seconds, nanos);
            return 0;
        }
        if (seconds < -315576000000 || seconds > 315576000000 || nanos < -999999999 || nanos > 999999999 ||
                (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0))
            return bad(w, start, "Duration out of range (seconds %lld, nanos %d)", (long long)seconds, (int)nanos);
        buf_adds(w->out, seconds < 0 || nanos < 0 ? "\"-" : "\"");
        add_u64(w->out, seconds < 0 ? 0 - (uint64_t)seconds : (uint64_t)seconds);
        add_fraction(w->out, nanos < 0 ? -nanos : nanos);
        buf_adds(w->out, "s\"");
        return 0;
    case PB_WKT_WRAPPER:
        if (m->nfields != 1 || m->fields[0].type == PB_MESSAGE)
            return bad(w, start, "%s is not a wrapper", m->full_name + 1);
        if (!w->slots[base].count)
            return emit_default(w, &m->fields[0], end, depth);
        if (emit_field(w, &m->fields[0], w->slots[base], end, depth, &printed) != 0)
            return -1;
        return printed ? 0 : emit_default(w, &m->fields[0], end, depth);
    case PB_WKT_EMPTY:
        buf_adds(w->out, "{}");
        return 0;
    case PB_WKT_STRUCT:
    case PB_WKT_LIST:
        /* one map (Struct.fields) or repeated Value (ListValue.values): an object or an array */
        if (m->nfields != 1 || !(m->fields[0].flags & PB_REPEATED))
            return bad(w, start, "%s is not the well-known type", m->full_name + 1);
        if (!w->slots[base].count) {
            buf_adds(w->out, m->wkt == PB_WKT_STRUCT ? "{}" : "[]");
            return 0;
        }
        return emit_field(w, &m->fields[0], w->slots[base], end, depth, &printed);
    case PB_WKT_VALUE: {
        size_t member = m->noneofs ? w->slots[base + m->nfields].count : 0;
        const struct pb_field *f;
        struct wire_value val;
        double d;
        if (!member) {
            buf_adds(w->out, "null");   /* no kind set */
            return 0;
        }
        f = &m->fields[member - 1];
        if (f->type == PB_DOUBLE) {
            if (value_at(w, w->slots[base + member - 1].last, end, &val) != 0)
                return -1;
            memcpy(&d, &val.u, sizeof d);
            if (!isfinite(d))
                return bad(w, start, "google.protobuf.Value holds a number that is not finite");
        }
        return emit_field(w, f, w->slots[base + member - 1], end, depth, &printed);
    }
    case PB_WKT_ANY:
        return emit_any(w, m, base, end, depth);
    case PB_WKT_FIELD_MASK:
        return emit_field_mask(w, m, base, end, depth);
    default:
        return bad(w, start, "%s is not supported yet", m->full_name + 1);
    }
}

static int emit_message(struct walk *w, int32_t mi, size_t start, size_t end, int depth)
{
    const struct pb_message *m = &w->s->msgs[mi];
    size_t base = w->nslots;
    int rc;

    if (depth > PB_MAX_DEPTH)
        return bad(w, start, "messages nested deeper than %d", PB_MAX_DEPTH);
    if (push_slots(w, m->nfields + m->noneofs) != 0)
        return -1;
    rc = scan(w, m, start, end, base, depth);
    if (rc == 0)
        rc = m->wkt ? emit_wkt(w, m, base, start, end, depth) : emit_object(w, m, base, end, depth);
    w->nslots = base;
    return rc;
}

int pb_decode_json(const struct pb_schema *s, const int32_t *idx, size_t nidx,
        const uint8_t *value, size_t len, size_t start, struct buf *out, char *err, size_t errlen)
{
    struct walk w = { .s = s, .v = value, .out = out, .err = err, .errlen = errlen };
    const struct pb_message *m = NULL;
    int32_t mi = -1;
    int rc;

    if (start > len)
        return bad(&w, len, "payload starts past the end of the value");
    if (nidx == 0)
        return bad(&w, start, "no message index");
    for (size_t i = 0; i < nidx; i++) {
        size_t n = i == 0 ? s->ntop : m->nnested;
        if (idx[i] < 0 || (size_t)idx[i] >= n) {
            if (i == 0)
                return bad(&w, start, "message index %d out of range (the schema has %zu top-level messages)",
                        (int)idx[i], n);
            return bad(&w, start, "message index %d out of range (%s has %zu nested types)", (int)idx[i],
                    m->full_name + 1, n);
        }
        mi = i == 0 ? s->top[idx[i]] : m->nested[idx[i]];
        m = &s->msgs[mi];
    }
    rc = emit_message(&w, mi, start, len, 0);
    free(w.slots);
    if (rc == 0 && out->oom)
        return bad(&w, start, "decoded JSON is larger than the output cap (or out of memory)");
    return rc;
}
