/* CEL's functions in the subset: size(), the string predicates, matches() (RE2 syntax, run by
 * PCRE2 with the constructs RE2 lacks refused), and the type conversions. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cel_int.h"

#define REGEX_MATCH_LIMIT 100000 /* backtracking steps, so a pattern cannot stall the consumer */
#define REGEX_DEPTH_LIMIT 1000

static struct cel_value make_bool(int b) { struct cel_value v = { .kind = CEL_BOOL }; v.v.b = b; return v; }
static struct cel_value make_int(int64_t i) { struct cel_value v = { .kind = CEL_INT }; v.v.i = i; return v; }
static struct cel_value make_uint(uint64_t u) { struct cel_value v = { .kind = CEL_UINT }; v.v.u = u; return v; }
static struct cel_value make_double(double d) { struct cel_value v = { .kind = CEL_DOUBLE }; v.v.d = d; return v; }

static const char *const func_names[] = {
    "size", "startsWith", "endsWith", "contains", "matches", "int", "uint", "double", "string", "bytes", "bool", "dyn"
};

static struct cel_value no_overload(struct cel_eval *ev, int func, const struct cel_value *args, size_t nargs)
{
    if (nargs == 2)
        return cel_error(ev, "no matching overload for '%s' applied to (%s, %s)", func_names[func],
                         cel_kind_name(args[0].kind), cel_kind_name(args[1].kind));
    return cel_error(ev, "no matching overload for '%s' applied to (%s)", func_names[func], cel_kind_name(args[0].kind));
}

int cel_utf8_valid(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || i + len > n)
            return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* no overlong forms, no surrogates, nothing past U+10FFFF */
        static const uint32_t min_for_len[] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

size_t cel_utf8_length(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            count++;
    return count;
}

/* RE2 has neither backreferences nor lookaround; PCRE2 would accept them with another meaning
 * than the rule's author could have tested against another CEL implementation. */
static const char *re2_unsupported(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '\\') {
            if (p[i + 1] >= '1' && p[i + 1] <= '9')
                return "backreferences are not supported";
            i++;
        } else if (p[i] == '(' && p[i + 1] == '?' && i + 2 < n &&
                   (p[i + 2] == '=' || p[i + 2] == '!' || (p[i + 2] == '<' && i + 3 < n && (p[i + 3] == '=' || p[i + 3] == '!')))) {
            return "lookaround is not supported";
        }
    }
    return NULL;
}

void *cel_regex_compile(const char *pattern, size_t n, char *err, size_t errlen)
{
    const char *unsupported = re2_unsupported(pattern, n);
    if (unsupported) {
        snprintf(err, errlen, "invalid regex: %s", unsupported);
        return NULL;
    }
    int code;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, n, PCRE2_UTF | PCRE2_NO_UTF_CHECK, &code, &offset, NULL);
    if (!re) {
        PCRE2_UCHAR message[120];
        pcre2_get_error_message(code, message, sizeof message);
        snprintf(err, errlen, "invalid regex: %s at offset %zu", (const char *)message, (size_t)offset);
    }
    return re;
}

void cel_regex_free(void *regex)
{
    pcre2_code_free(regex);
}

/* @p compiled is the pattern compiled with the program when it was a literal, else NULL. */
static struct cel_value regex_match(struct cel_eval *ev, const struct cel_value *text, const struct cel_value *pattern,
                                    const void *compiled)
{
    char why[200];
    pcre2_code *re = (pcre2_code *)compiled;
    if (!re && !(re = cel_regex_compile(pattern->v.s.p, pattern->v.s.n, why, sizeof why)))
        return cel_error(ev, "%s", why);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    struct cel_value out;
    if (!md || !mc) {
        out = cel_error(ev, "out of memory");
    } else {
        pcre2_set_match_limit(mc, REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(mc, REGEX_DEPTH_LIMIT);
        int rc = pcre2_match(re, (PCRE2_SPTR)text->v.s.p, text->v.s.n, 0, PCRE2_NO_UTF_CHECK, md, mc);
        if (rc >= 0)
            out = make_bool(1);
        else if (rc == PCRE2_ERROR_NOMATCH)
            out = make_bool(0);
        else
            out = cel_error(ev, "regex evaluation failed (%s)", rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ? "match limit" : "error");
    }
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    if (re != compiled)
        pcre2_code_free(re);
    return out;
}

/* Both strings; the predicate on their bytes (UTF-8 makes that the code point answer). */
static struct cel_value string_predicate(struct cel_eval *ev, int func, const struct cel_value *a, const void *regex)
{
    if (a[0].kind != CEL_STRING || a[1].kind != CEL_STRING)
        return no_overload(ev, func, a, 2);
    const char *s = a[0].v.s.p, *t = a[1].v.s.p;
    size_t n = a[0].v.s.n, m = a[1].v.s.n;
    switch (func) {
    case F_STARTS_WITH: return make_bool(m <= n && (m == 0 || memcmp(s, t, m) == 0));
    case F_ENDS_WITH: return make_bool(m <= n && (m == 0 || memcmp(s + n - m, t, m) == 0));
    case F_CONTAINS: return make_bool(m == 0 || (n >= m && memmem(s, n, t, m) != NULL));
    default: return regex_match(ev, &a[0], &a[1], regex);
    }
}

/* The C string of a string value, copied to the arena for strtoll and friends. */
static char *c_string(struct cel_eval *ev, const struct cel_value *v)
{
    char *p = cel_arena_alloc(&ev->arena, v->v.s.n + 1);
    if (p) {
        memcpy(p, v->v.s.p, v->v.s.n);
        p[v->v.s.n] = '\0';
        if (strlen(p) != v->v.s.n)
            return NULL; /* an embedded NUL: not a number */
    }
    return p;
}

static struct cel_value to_int(struct cel_eval *ev, const struct cel_value *a)
{
    switch (a->kind) {
    case CEL_INT: return *a;
    case CEL_UINT: return a->v.u > INT64_MAX ? cel_error(ev, "int range error") : make_int((int64_t)a->v.u);
    case CEL_DOUBLE:
        if (!(a->v.d > -9223372036854775808.0 && a->v.d < 9223372036854775808.0))
            return cel_error(ev, "int range error");
        return make_int((int64_t)a->v.d);
    case CEL_STRING: {
        char *s = c_string(ev, a), *end;
        errno = 0;
        long long v = s && *s ? strtoll(s, &end, 10) : 0;
        if (!s || !*s || *end || errno || *s == ' ' || *s == '+')
            return cel_error(ev, "cannot convert string to int");
        return make_int(v);
    }
    default: return no_overload(ev, F_INT, a, 1);
    }
}

static struct cel_value to_uint(struct cel_eval *ev, const struct cel_value *a)
{
    switch (a->kind) {
    case CEL_UINT: return *a;
    case CEL_INT: return a->v.i < 0 ? cel_error(ev, "uint range error") : make_uint((uint64_t)a->v.i);
    case CEL_DOUBLE:
        if (!(a->v.d >= 0.0 && a->v.d < 18446744073709551616.0)) /* -0.5 too, as cel-go */
            return cel_error(ev, "uint range error");
        return make_uint((uint64_t)a->v.d);
    case CEL_STRING: {
        char *s = c_string(ev, a), *end;
        errno = 0;
        unsigned long long v = s && *s ? strtoull(s, &end, 10) : 0;
        if (!s || !*s || *end || errno || *s == '-' || *s == ' ' || *s == '+')
            return cel_error(ev, "cannot convert string to uint");
        return make_uint(v);
    }
    default: return no_overload(ev, F_UINT, a, 1);
    }
}

static struct cel_value to_double(struct cel_eval *ev, const struct cel_value *a)
{
    switch (a->kind) {
    case CEL_DOUBLE: return *a;
    case CEL_INT: return make_double((double)a->v.i);
    case CEL_UINT: return make_double((double)a->v.u);
    case CEL_STRING: {
        char *s = c_string(ev, a), *end;
        double v = s && *s ? strtod(s, &end) : 0;
        if (!s || !*s || *end || *s == ' ')
            return cel_error(ev, "cannot convert string to double");
        return make_double(v);
    }
    default: return no_overload(ev, F_DOUBLE, a, 1);
    }
}

static struct cel_value text_value(struct cel_eval *ev, const char *text)
{
    struct cel_value out = { .kind = CEL_STRING };
    size_t n = strlen(text);
    char *p = cel_arena_alloc(&ev->arena, n);
    if (!p)
        return cel_error(ev, "evaluation needs more than %u bytes", CEL_EVAL_BUDGET);
    memcpy(p, text, n);
    out.v.s.p = p;
    out.v.s.n = n;
    return out;
}

/* A double as the shortest text that reads back to it; exponent form as Go's 'g' (cel-go). */
static struct cel_value double_text(struct cel_eval *ev, double d)
{
    char buf[40];
    if (isnan(d))
        return text_value(ev, "NaN");
    if (isinf(d))
        return text_value(ev, d > 0 ? "+Inf" : "-Inf");
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(buf, sizeof buf, "%.*g", precision, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return text_value(ev, buf);
}

static struct cel_value to_string(struct cel_eval *ev, const struct cel_value *a)
{
    char buf[32];
    struct cel_value out;
    switch (a->kind) {
    case CEL_STRING: return *a;
    case CEL_BOOL: return text_value(ev, a->v.b ? "true" : "false");
    case CEL_INT: snprintf(buf, sizeof buf, "%" PRId64, a->v.i); return text_value(ev, buf);
    case CEL_UINT: snprintf(buf, sizeof buf, "%" PRIu64, a->v.u); return text_value(ev, buf);
    case CEL_DOUBLE: return double_text(ev, a->v.d);
    case CEL_BYTES:
        if (!cel_utf8_valid(a->v.s.p, a->v.s.n))
            return cel_error(ev, "invalid UTF-8 in bytes, cannot convert to string");
        out = *a;
        out.kind = CEL_STRING;
        return out;
    default: return no_overload(ev, F_STRING, a, 1);
    }
}

static struct cel_value to_bool(struct cel_eval *ev, const struct cel_value *a)
{
    static const char *const truths[] = { "1", "t", "true", "TRUE", "True" };
    static const char *const lies[] = { "0", "f", "false", "FALSE", "False" };
    if (a->kind == CEL_BOOL)
        return *a;
    if (a->kind != CEL_STRING)
        return no_overload(ev, F_BOOL, a, 1);
    for (size_t i = 0; i < 5; i++) {
        if (a->v.s.n == strlen(truths[i]) && memcmp(a->v.s.p, truths[i], a->v.s.n) == 0)
            return make_bool(1);
        if (a->v.s.n == strlen(lies[i]) && memcmp(a->v.s.p, lies[i], a->v.s.n) == 0)
            return make_bool(0);
    }
    return cel_error(ev, "cannot convert string to bool");
}

struct cel_value cel_call(struct cel_eval *ev, int func, const struct cel_value *args, size_t nargs, const void *regex)
{
    struct cel_value out;
    switch (func) {
    case F_SIZE:
        switch (args[0].kind) {
        case CEL_STRING: return make_int((int64_t)cel_utf8_length(args[0].v.s.p, args[0].v.s.n));
        case CEL_BYTES: return make_int((int64_t)args[0].v.s.n);
        case CEL_LIST: return make_int((int64_t)cel_list_size(&args[0]));
        case CEL_MAP: return make_int((int64_t)cel_map_size(&args[0]));
        default: return no_overload(ev, func, args, nargs);
        }
    case F_STARTS_WITH:
    case F_ENDS_WITH:
    case F_CONTAINS:
    case F_MATCHES:
        return string_predicate(ev, func, args, regex);
    case F_INT: return to_int(ev, args);
    case F_UINT: return to_uint(ev, args);
    case F_DOUBLE: return to_double(ev, args);
    case F_STRING: return to_string(ev, args);
    case F_BOOL: return to_bool(ev, args);
    case F_BYTES:
        if (args[0].kind != CEL_STRING && args[0].kind != CEL_BYTES)
            return no_overload(ev, func, args, nargs);
        out = args[0];
        out.kind = CEL_BYTES;
        return out;
    default: return args[0]; /* dyn() */
    }
}
