/* libFuzzer target: the templates over records. The input is TEMPLATE 0x1E RECORD 0x1E RECORD ...,
 * a record being [KEY 0x1F] VALUE (without 0x1F it has no key; an empty value is a tombstone).
 * The template is compiled as an HTTP string template (sinks/template.h) and rendered in the
 * text, URL and header contexts; as a redis key template (sinks/redis_key.h); and as an HTTP
 * JSON body (the template when it is JSON, else a JSON string holding it), rendered per record
 * and, with {"$each": ...}, over the whole batch. Never a crash or a leak; a template that
 * compiles renders or says why; what it renders keeps the promises of the headers. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sinks/redis_key.h"
#include "sinks/template.h"

#define MAX_RECORDS 16
#define TOPIC "orders.v1"

#include "fuzz_check.h"

/* One record of the input, as the router would hand it over. */
struct frec {
    struct tpl_record tpl;      /* doc: parsed as the router parses values */
    struct sink_record sink;
    struct json_slice rj;       /* the redis sink's own reading of the value */
    int rj_ok;                  /* the value is JSON to json_read (or a tombstone) */
    char id[64];
};

/* A rendering that failed must say why; err is always terminated. */
static void check_reason(const char *err, size_t errlen)
{
    CHECK(memchr(err, '\0', errlen) != NULL);
    CHECK(err[0] != '\0');
}

static int has_braces(const char *s)
{
    return strpbrk(s, "{}") != NULL;
}

/* 1 when no string (value) of the JSON template holds a brace: it renders as itself. */
static int json_plain(const json_t *v)
{
    const char *key;
    json_t *kid;
    size_t i;

    if (json_is_string(v))
        return !memchr(json_string_value(v), '{', json_string_length(v)) &&
               !memchr(json_string_value(v), '}', json_string_length(v));
    if (json_is_object(v)) {
        if (json_object_get(v, "$each"))
            return 0;
        json_object_foreach((json_t *)v, key, kid)
            if (!json_plain(kid))
                return 0;
    }
    if (json_is_array(v))
        json_array_foreach(v, i, kid)
            if (!json_plain(kid))
                return 0;
    return 1;
}

/* 1 when the JSON document holds no number (whose text the two renderers may write apart). */
static int json_numberless(const json_t *v)
{
    const char *key;
    json_t *kid;
    size_t i;

    if (json_is_number(v))
        return 0;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, key, kid)
            if (!json_numberless(kid))
                return 0;
    if (json_is_array(v))
        json_array_foreach(v, i, kid)
            if (!json_numberless(kid))
                return 0;
    return 1;
}

/* The batch body must hold, where the template has {"$each": T}, the array of the elements. */
static void check_each_spliced(const json_t *tmpl, const json_t *out, json_t *const *elems, size_t n)
{
    const char *key;
    json_t *kid;
    size_t i;

    if (json_is_object(tmpl) && json_object_get(tmpl, "$each")) {
        CHECK(json_is_array(out) && json_array_size(out) == n);
        for (i = 0; i < n; i++)
            CHECK(json_equal(json_array_get(out, i), elems[i]));
        return;
    }
    if (json_is_object(tmpl)) {
        CHECK(json_is_object(out) && json_object_size(out) == json_object_size(tmpl));
        json_object_foreach((json_t *)tmpl, key, kid) {
            const json_t *o = json_object_get(out, key);
            CHECK(o != NULL);
            check_each_spliced(kid, o, elems, n);
        }
    } else if (json_is_array(tmpl)) {
        CHECK(json_is_array(out) && json_array_size(out) == json_array_size(tmpl));
        json_array_foreach(tmpl, i, kid)
            check_each_spliced(kid, json_array_get(out, i), elems, n);
    }
}

/* Literal text that a URL rendering keeps as it is and that holds no '%'. */
static int url_literal_plain(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '%')
            return 0;
    return 1;
}

static int is_upper_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static void check_url_output(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CHECK((unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f);
        if (p[i] == '%')
            CHECK(i + 2 < n && is_upper_hex(p[i + 1]) && is_upper_hex(p[i + 2]));
    }
}

static void fuzz_string_template(const char *text, struct frec *recs, size_t nrecs)
{
    static const enum tpl_escape escapes[] = { TPL_TEXT, TPL_URL, TPL_HEADER };
    char err[512];
    struct tpl *t = tpl_compile(text, err, sizeof err);
    unsigned fields;

    if (!t) {
        check_reason(err, sizeof err);
        return;
    }
    fields = tpl_fields(t);
    for (size_t r = 0; r < nrecs; r++) {
        for (size_t e = 0; e < sizeof escapes / sizeof escapes[0]; e++) {
            struct buf out = { 0 };
            int rc = tpl_render(t, &recs[r].tpl, escapes[e], &out, err, sizeof err);

            if (rc != 0) {
                check_reason(err, sizeof err);
                CHECK(fields != 0);   /* nothing to miss: only out of memory could fail */
                buf_free(&out);
                continue;
            }
            if (!has_braces(text))
                CHECK(out.len == strlen(text) && (out.len == 0 || memcmp(out.p, text, out.len) == 0));
            if (escapes[e] == TPL_HEADER && !strpbrk(text, "\r\n"))
                CHECK(out.len == 0 || (!memchr(out.p, '\r', out.len) && !memchr(out.p, '\n', out.len) &&
                                       !memchr(out.p, '\0', out.len)));
            if (escapes[e] == TPL_URL && url_literal_plain(text))
                check_url_output(out.p, out.len);
            buf_free(&out);
        }
    }
    tpl_free(t);
}

static void fuzz_redis_template(const char *text, struct frec *recs, size_t nrecs)
{
    char err[512], terr[512];
    struct redis_template *rt = redis_template_compile(text, err, sizeof err);
    struct tpl *t;

    if (!rt) {
        check_reason(err, sizeof err);
        return;
    }
    t = tpl_compile(text, terr, sizeof terr);
    for (size_t r = 0; r < nrecs; r++) {
        const struct frec *fr = &recs[r];
        struct buf out = { 0 };
        int rc;

        if (!fr->rj_ok)
            continue;   /* the sink refuses the value before it renders the key */
        err[0] = '\0';
        rc = redis_template_render(rt, &fr->sink, fr->sink.value ? &fr->rj : NULL, &out, err, sizeof err);
        if (rc != 0) {
            check_reason(err, sizeof err);
            CHECK(redis_template_uses_value(rt) || !fr->sink.key);
        } else {
            if (!has_braces(text))
                CHECK(out.len == strlen(text) && memcmp(out.p, text, out.len) == 0);
            /* The HTTP templates read the same fields the same way (paths, {key}, {topic},
             * {partition}); numbers aside, where text is written as it was or re-encoded. */
            if (t && fr->tpl.doc && json_numberless(fr->tpl.doc)) {
                struct buf tout = { 0 };
                if (tpl_render(t, &fr->tpl, TPL_TEXT, &tout, terr, sizeof terr) == 0)
                    CHECK(tout.len == out.len && (out.len == 0 || memcmp(tout.p, out.p, out.len) == 0));
                buf_free(&tout);
            }
        }
        buf_free(&out);
    }
    tpl_free(t);
    redis_template_free(rt);
}

static void fuzz_json_template(const char *bytes, size_t len, struct frec *recs, size_t nrecs)
{
    /* a body in the configuration: any JSON value, no duplicate keys, no NUL (the loader's flags) */
    json_t *tmpl = json_loadb(bytes, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    json_t *parsed[MAX_RECORDS];
    char *elems[MAX_RECORDS];
    size_t lens[MAX_RECORDS], n = 0;
    char err[512];
    struct tpl_json *t;
    int plain, each;

    if (!tmpl && !memchr(bytes, '\0', len))
        tmpl = json_stringn(bytes, len);   /* a string body, as the default "{$}" */
    if (!tmpl)
        return;
    t = tpl_json_compile(tmpl, err, sizeof err);
    if (!t) {
        check_reason(err, sizeof err);
        json_decref(tmpl);
        return;
    }
    plain = json_plain(tmpl);
    each = tpl_json_has_each(t);
    for (size_t r = 0; r < nrecs; r++) {
        struct buf out = { 0 };
        json_t *v;

        if (recs[r].sink.value && !recs[r].tpl.doc)
            continue;   /* not JSON: the router dead-letters it before the sink sees it */
        if (tpl_json_render(t, &recs[r].tpl, &out, err, sizeof err) != 0) {
            check_reason(err, sizeof err);
            CHECK(each || tpl_json_outer_fields(t) != 0);
            buf_free(&out);
            continue;
        }
        v = json_loadb(out.p, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        CHECK(v != NULL);
        if (plain)
            CHECK(json_equal(v, tmpl));
        if (each) {
            parsed[n] = v;
            elems[n] = buf_steal(&out, &lens[n]);
            CHECK(elems[n] != NULL);
            n++;
        } else {
            json_decref(v);
        }
        buf_free(&out);
    }
    if (each) {
        /* The body of one request for the batch: only batch fields outside $each. */
        char id[64];
        struct tpl_record batch = { .topic = TOPIC, .partition = 2, .offset = -1, .timestamp_ms = -1, .id = id };
        struct buf out = { 0 };

        snprintf(id, sizeof id, "fuzz:%s:2:41-%zu", TOPIC, 41 + nrecs);
        if (tpl_json_render_batch(t, &batch, (const char *const *)elems, lens, n, &out, err, sizeof err) != 0) {
            check_reason(err, sizeof err);
            CHECK(tpl_json_outer_fields(t) & ~(TPL_F_BATCH | TPL_F_ID));
        } else {
            json_t *v = json_loadb(out.p, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            CHECK(v != NULL);
            check_each_spliced(tmpl, v, parsed, n);
            json_decref(v);
        }
        buf_free(&out);
        for (size_t i = 0; i < n; i++) {
            free(elems[i]);
            json_decref(parsed[i]);
        }
    }
    tpl_json_free(t);
    json_decref(tmpl);
}

/* Splits the records part into recs; returns their count. */
static size_t records_parse(const uint8_t *p, const uint8_t *end, struct frec *recs)
{
    char why[256];
    size_t n = 0;

    while (p <= end && n < MAX_RECORDS) {
        const uint8_t *stop = memchr(p, 0x1e, (size_t)(end - p));
        const uint8_t *sep, *value;
        struct frec *fr = &recs[n];
        size_t vlen;

        if (!stop)
            stop = end;
        memset(fr, 0, sizeof *fr);
        sep = memchr(p, 0x1f, (size_t)(stop - p));
        value = sep ? sep + 1 : p;
        vlen = (size_t)(stop - value);
        fr->sink.topic = fr->tpl.topic = TOPIC;
        fr->sink.partition = fr->tpl.partition = (int32_t)(n % 3);
        fr->sink.offset = fr->tpl.offset = 41 + (int64_t)n;
        fr->sink.timestamp_ms = fr->tpl.timestamp_ms = n == 1 ? -1 : 1700000000123 + (int64_t)n;
        if (sep) {
            fr->sink.key = fr->tpl.key = (const char *)p;
            fr->sink.key_len = fr->tpl.key_len = (size_t)(sep - p);
        }
        if (vlen) {
            fr->sink.value = (const char *)value;
            fr->sink.value_len = vlen;
            fr->tpl.doc = json_loadb((const char *)value, vlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            fr->rj_ok = json_read((const char *)value, vlen, &fr->rj, why, sizeof why) == 0;
        } else {
            fr->rj_ok = 1;
        }
        snprintf(fr->id, sizeof fr->id, "fuzz:%s:%d:%lld", TOPIC, (int)fr->sink.partition, (long long)fr->sink.offset);
        fr->tpl.id = fr->id;
        n++;
        p = stop + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct frec recs[MAX_RECORDS];
    const uint8_t *sep = memchr(data, 0x1e, size);
    size_t tlen = sep ? (size_t)(sep - data) : size, nrecs = 0;
    char *text = malloc(tlen + 1);

    if (!text)
        return 0;
    memcpy(text, data, tlen);
    text[tlen] = '\0';   /* a template from the configuration is a C string */
    if (sep)
        nrecs = records_parse(sep + 1, data + size, recs);
    fuzz_string_template(text, recs, nrecs);
    fuzz_redis_template(text, recs, nrecs);
    fuzz_json_template((const char *)data, tlen, recs, nrecs);
    for (size_t i = 0; i < nrecs; i++)
        json_decref(recs[i].tpl.doc);
    free(text);
    return 0;
}
