/* The webhook sink: pushes records to an HTTP endpoint (a SaaS tool's receiver, an app's own
 * endpoint), one record per request or a batch per request, signed the Standard Webhooks way.
 *
 * Each record is carried as {"id", "topic", "partition", "offset", "key", "value",
 * "timestamp"}; the value is the record's JSON as it was produced (checked, not parsed; a line
 * break between tokens becomes a space, so that an element is one line). The id is
 * "<sink>:<topic>:<partition>:<offset>": the same on every retry and after a restart, so a
 * receiver that dedupes on it gets each record once. A request's webhook-id (and
 * Idempotency-Key) is that id for one record, or "<sink>:<topic>:<partition>:<first>-<last>"
 * for a batch: the same on every retry and, as the sink asks for SINK_F_STABLE_BATCHES, on the
 * re-sent batch after a restart or rebalance (the router cuts it at the same offsets).
 *
 * With a secret, webhook-signature is "v1," + base64(HMAC-SHA256(key, id.timestamp.body)),
 * computed when the request goes on the wire (webhook-timestamp is that moment: a request
 * that waited behind a rate limit or an open circuit is not stale when it arrives). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "http_engine.h"
#include "lib/decimal.h"
#include "lib/json.h"
#include "template.h"
#include "webhook_element.h"
#include "webhook_sign.h"

enum webhook_format { WEBHOOK_SINGLE, WEBHOOK_JSON_ARRAY, WEBHOOK_NDJSON };

static const char *const webhook_formats[] = { "single", "json_array", "ndjson", NULL };

struct webhook_sink {
    struct http_sink_base base;
    char *url;
    json_t *headers;
    int batch_format;
    char *secret;
    /* made by start */
    unsigned char key[WEBHOOK_WHSEC_MAX];
    int keylen;
    struct webhook_signer *signer;
    char **header_lines;
    size_t nheader_lines;
    int has_content_type;
    struct http_engine *eng;
    struct http_attempt *attempts;
    struct webhook_names names;        /* the escaped sink name and topic of the elements */
};

/* A record of a one-record-per-request sink, ready to go: its body. (Batches are written
 * straight from the records into the request's body: no copy per record.) */
struct webhook_rec {
    struct http_rec http;       /* first: the engine's per-record progress */
    size_t len;
    char json[];
};

#define W(field) offsetof(struct webhook_sink, field)

static const struct cfg_opt webhook_opts[] = {
    { .name = "url", .type = CFG_T_STR, .offset = W(url), .flags = CFG_REQUIRED,
      .help = "Where to POST: http:// or https://" },
    CFG_JSON("headers", W(headers), "Extra request headers, an object of name: value strings"),
    CFG_ENUM("batch_format", "\"single\"", webhook_formats, W(batch_format),
             "\"single\": one record per request; \"json_array\": a batch as a JSON array; "
             "\"ndjson\": a batch as one JSON object per line"),
    { .name = "secret", .type = CFG_T_STR, .offset = W(secret), .flags = CFG_SECRET,
      .help = "Standard Webhooks signing secret, whsec_<base64> (use \"${NAME}\"); unset: unsigned" },
    HTTP_ENGINE_OPTS,
    CFG_END
};

#undef W


/* ---- Standard Webhooks signatures (webhook_sign.h) ---- */

int webhook_whsec_decode(const char *secret, unsigned char *key, size_t keymax)
{
    size_t n, pad = 0;
    unsigned char tmp[WEBHOOK_WHSEC_MAX + 3];
    int len;

    if (strncmp(secret, "whsec_", 6) == 0)
        secret += 6;
    n = strlen(secret);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof tmp)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = secret[i];
        if (c == '=' && i >= n - 2) {
            pad++;
            continue;
        }
        if (pad || !(isalnum((unsigned char)c) || c == '+' || c == '/'))
            return -1;
    }
    len = EVP_DecodeBlock(tmp, (const unsigned char *)secret, (int)n);
    if (len < 0 || (size_t)len < pad)
        return -1;
    len -= (int)pad;
    if (len == 0 || (size_t)len > keymax)
        return -1;
    memcpy(key, tmp, (size_t)len);
    OPENSSL_cleanse(tmp, sizeof tmp);
    return len;
}

struct webhook_signer {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;              /* keyed once; each signature re-initialises it with that key */
};

struct webhook_signer *webhook_signer_new(const unsigned char *key, size_t keylen)
{
    struct webhook_signer *sg = calloc(1, sizeof *sg);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };

    if (!sg || !(sg->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) || !(sg->ctx = EVP_MAC_CTX_new(sg->mac)) ||
        !EVP_MAC_init(sg->ctx, key, keylen, params)) {
        webhook_signer_free(sg);
        return NULL;
    }
    return sg;
}

void webhook_signer_free(struct webhook_signer *sg)
{
    if (!sg)
        return;
    EVP_MAC_CTX_free(sg->ctx);
    EVP_MAC_free(sg->mac);
    free(sg);
}

int webhook_signer_sign(struct webhook_signer *sg, const char *id, long long timestamp, const char *body, size_t bodylen,
                     char *out, size_t outlen)
{
    unsigned char digest[32];
    char ts[32], b64[64];
    size_t dlen = 0;

    snprintf(ts, sizeof ts, ".%lld.", timestamp);
    if (!EVP_MAC_init(sg->ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(sg->ctx, (const unsigned char *)id, strlen(id)) ||
        !EVP_MAC_update(sg->ctx, (const unsigned char *)ts, strlen(ts)) ||
        !EVP_MAC_update(sg->ctx, (const unsigned char *)body, bodylen) ||
        !EVP_MAC_final(sg->ctx, digest, &dlen, sizeof digest) || dlen != sizeof digest)
        return -1;
    EVP_EncodeBlock((unsigned char *)b64, digest, (int)dlen);
    return (size_t)snprintf(out, outlen, "v1,%s", b64) < outlen ? 0 : -1;
}

int webhook_signature(const unsigned char *key, size_t keylen, const char *id, long long timestamp,
                      const char *body, size_t bodylen, char *out, size_t outlen)
{
    struct webhook_signer *sg = webhook_signer_new(key, keylen);
    int rc = sg ? webhook_signer_sign(sg, id, timestamp, body, bodylen, out, outlen) : -1;

    webhook_signer_free(sg);
    return rc;
}

/* ---- checks ---- */

static int header_name_valid(const char *name)
{
    if (!*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *p))
            return 0;
    return 1;
}

/* Shared by both sink types through their own copies: an object of header strings. */
static int webhook_check_headers(const json_t *headers, char *err, size_t errlen)
{
    const char *name;
    json_t *v;

    if (!headers)
        return 0;
    if (!json_is_object(headers)) {
        snprintf(err, errlen, "expected an object of \"Header-Name\": \"value\" strings");
        return -1;
    }
    json_object_foreach((json_t *)headers, name, v) {
        if (!header_name_valid(name)) {
            snprintf(err, errlen, "\"%.100s\" is not a valid header name", name);
            return -1;
        }
        if (!json_is_string(v) || strpbrk(json_string_value(v), "\r\n")) {
            snprintf(err, errlen, "header %.100s: the value must be a string without line breaks", name);
            return -1;
        }
    }
    return 0;
}

static int webhook_warn(struct sink *sk, char *msg, size_t msglen, const char **key)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;

    *key = "url";
    return http_engine_url_warning(&ws->base.http, ws->url, "url", msg, msglen);
}

static int webhook_check(struct sink *sk, struct sink_check *c)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;
    unsigned char tmp[WEBHOOK_WHSEC_MAX];
    char err[512];

    if (http_engine_check_url(&ws->base.http, ws->url, "url", err, sizeof err) != 0)
        sink_check_problem(c, "url", "%s", err);
    if (ws->secret && webhook_whsec_decode(ws->secret, tmp, sizeof tmp) < 0)
        sink_check_problem(c, "secret", "must be whsec_ followed by the base64 of the key (as Standard Webhooks issues it)");
    OPENSSL_cleanse(tmp, sizeof tmp);
    if (webhook_check_headers(ws->headers, err, sizeof err) != 0)
        sink_check_problem(c, "headers", "%s", err);
    /* A batch's webhook-id names its offsets: it must cover the same ones when re-sent. */
    if (ws->batch_format != WEBHOOK_SINGLE)
        sk->flags |= SINK_F_STABLE_BATCHES;
    return c->problems ? -1 : 0;
}

/* ---- records ---- */

/* An element of a body, for one record:
 *   {"id":"<sink>:<topic>:<partition>:<offset>","topic":"<topic>","partition":P,"offset":O,
 *    "key":"<key>"|null,"value":<value as produced>|null,"timestamp":T|null}
 * Its exact length is known before it is written (prepare counts it against batch.max_bytes;
 * write reserves it), so a batch's body is one allocation and each record is copied once. */

int webhook_names_set(struct webhook_names *n, const char *sink, const char *topic)
{
    long long len;

    if (!n->name_esc.p || n->name_esc.len == 0) {
        if (tpl_json_escaped_len(sink, strlen(sink)) < 0)
            return -1;
        buf_reset(&n->name_esc);
        buf_reserve(&n->name_esc, (size_t)tpl_json_escaped_len(sink, strlen(sink)));
        if (n->name_esc.oom)
            return -1;
        n->name_esc.len = (size_t)(tpl_json_escape_to(n->name_esc.p, sink, strlen(sink)) - n->name_esc.p);
    }
    if (n->topic && strcmp(n->topic, topic) == 0)
        return 0;
    free(n->topic);
    n->topic = NULL;
    buf_reset(&n->topic_esc);
    if ((len = tpl_json_escaped_len(topic, strlen(topic))) < 0)
        return -1;
    buf_reserve(&n->topic_esc, (size_t)len);
    if (n->topic_esc.oom || !(n->topic = strdup(topic)))
        return -1;
    n->topic_esc.len = (size_t)(tpl_json_escape_to(n->topic_esc.p, topic, strlen(topic)) - n->topic_esc.p);
    return 0;
}

void webhook_names_free(struct webhook_names *n)
{
    buf_free(&n->name_esc);
    buf_free(&n->topic_esc);
    free(n->topic);
    n->topic = NULL;
}

size_t webhook_element_len(const struct webhook_names *n, const struct sink_record *rec, size_t key_esc)
{
    size_t pd = decimal_len(rec->partition), od = decimal_len(rec->offset);

    return LIT_LEN("{\"id\":\"") + n->name_esc.len + 1 + n->topic_esc.len + 1 + pd + 1 + od + 1 +
           LIT_LEN(",\"topic\":\"") + n->topic_esc.len + 1 +
           LIT_LEN(",\"partition\":") + pd +
           LIT_LEN(",\"offset\":") + od +
           LIT_LEN(",\"key\":") + (rec->key ? key_esc + 2 : 4) +
           LIT_LEN(",\"value\":") + (rec->value ? rec->value_len : 4) +
           LIT_LEN(",\"timestamp\":") + (rec->timestamp_ms >= 0 ? decimal_len(rec->timestamp_ms) : 4) + 1;
}

char *webhook_element_write(const struct webhook_names *n, const struct sink_record *rec, char *out)
{
    char *part, *off;
    size_t part_len, off_len;

    PUT_LIT(out, "{\"id\":\"");
    memcpy(out, n->name_esc.p, n->name_esc.len);
    out += n->name_esc.len;
    *out++ = ':';
    memcpy(out, n->topic_esc.p, n->topic_esc.len);
    out += n->topic_esc.len;
    *out++ = ':';
    part = out;
    out = decimal_put(out, rec->partition);
    part_len = (size_t)(out - part);
    *out++ = ':';
    off = out;
    out = decimal_put(out, rec->offset);
    off_len = (size_t)(out - off);
    PUT_LIT(out, "\",\"topic\":\"");
    memcpy(out, n->topic_esc.p, n->topic_esc.len);
    out += n->topic_esc.len;
    /* the partition and offset again: copies of the id's digits */
    PUT_LIT(out, "\",\"partition\":");
    memcpy(out, part, part_len);
    out += part_len;
    PUT_LIT(out, ",\"offset\":");
    memcpy(out, off, off_len);
    out += off_len;
    PUT_LIT(out, ",\"key\":");
    out = tpl_json_quote_to(out, rec->key, rec->key_len);
    PUT_LIT(out, ",\"value\":");
    if (rec->value) {
        /* Byte for byte, on one line (for ndjson): in valid JSON a raw CR or LF can only be
         * whitespace between tokens, so a space may replace it. */
        char *at = out, *q;
        memcpy(out, rec->value, rec->value_len);
        out += rec->value_len;
        for (q = at; (q = memchr(q, '\n', (size_t)(out - q))); q++)
            *q = ' ';
        for (q = at; (q = memchr(q, '\r', (size_t)(out - q))); q++)
            *q = ' ';
    } else {
        PUT_LIT(out, "null");
    }
    PUT_LIT(out, ",\"timestamp\":");
    if (rec->timestamp_ms >= 0)
        out = decimal_put(out, rec->timestamp_ms);
    else
        PUT_LIT(out, "null");
    *out++ = '}';
    return out;
}

/* The record's element length, or -1 with the reason it cannot be sent. The value is checked
 * here, not parsed by the router: a tree per record would cost more than all the rest of the
 * sink's work. */
static long long element_check(struct webhook_sink *ws, const struct sink_record *rec, char *err, size_t errlen)
{
    long long key_esc = 0;

    if (webhook_names_set(&ws->names, ws->base.super.name, rec->topic) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (rec->key && (key_esc = tpl_json_escaped_len(rec->key, rec->key_len)) < 0) {
        snprintf(err, errlen, "key is not valid UTF-8");
        return -1;
    }
    if (rec->value && sink_value_json(rec->value, rec->value_len, NULL, err, errlen) != 0)
        return -1;
    return (long long)webhook_element_len(&ws->names, rec, (size_t)key_esc);
}

static int webhook_prepare(struct sink *sk, struct sink_record *rec, char *err, size_t errlen)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;
    struct webhook_rec *wr;
    long long len = element_check(ws, rec, err, errlen);

    if (len < 0)
        return -1;
    /* With a separator (',' or '\n'): a batch's body is the sum of its records' lengths. */
    rec->prepared_len = (size_t)len + 1;
    if (ws->batch_format != WEBHOOK_SINGLE)
        return 0;
    if (!(wr = malloc(sizeof *wr + (size_t)len + 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    wr->http.state = HTTP_REC_PENDING;
    wr->http.key_hash = http_key_hash(rec->key, rec->key_len);
    wr->len = (size_t)(webhook_element_write(&ws->names, rec, wr->json) - wr->json);
    wr->json[wr->len] = '\0';
    rec->prepared = wr;
    return 0;
}

static void webhook_release(struct sink *sk, struct sink_record *rec)
{
    (void)sk;
    free(rec->prepared);
    rec->prepared = NULL;
}

/* ---- requests ---- */

/* Right before the request goes out: timestamp and signature for this attempt. Without both,
 * the attempt fails (retryable): a receiver that verifies would reject it anyway, and one that
 * does not must never get an unsigned request from a sink configured to sign. */
static int webhook_sign(struct http_request *req, void *arg, char *err, size_t errlen)
{
    struct webhook_sink *ws = arg;
    long long now = (long long)time(NULL);
    char line[256];
    size_t len;
    const char *body = http_request_body_data(req, &len);

    snprintf(line, sizeof line, "webhook-timestamp: %lld", now);
    if (http_request_late_header(req, line) != 0) {
        snprintf(err, errlen, "cannot add the webhook-timestamp header (out of memory); not sent");
        return -1;
    }
    if (!ws->signer)
        return 0;
    memcpy(line, "webhook-signature: ", 19);
    if (webhook_signer_sign(ws->signer, http_request_id(req), now, body, len, line + 19, sizeof line - 19) != 0 ||
        http_request_late_header(req, line) != 0) {
        snprintf(err, errlen, "cannot sign the request (HMAC-SHA256 or out of memory); not sent unsigned");
        return -1;
    }
    return 0;
}

static struct http_request *webhook_request(struct webhook_sink *ws, const char *id, char *body, size_t len,
                                            http_done_fn done, void *arg)
{
    struct http_request *req = http_request_new("POST", ws->url, done, arg);
    char line[512];

    if (!req) {
        free(body);
        return NULL;
    }
    http_request_body(req, body, len);
    if (http_request_set_id(req, id) != 0)
        goto fail;
    if (!ws->has_content_type &&
        http_request_header(req, ws->batch_format == WEBHOOK_NDJSON
                                     ? "Content-Type: application/x-ndjson" : "Content-Type: application/json") != 0)
        goto fail;
    for (size_t i = 0; i < ws->nheader_lines; i++)
        if (http_request_header(req, ws->header_lines[i]) != 0)
            goto fail;
    snprintf(line, sizeof line, "webhook-id: %s", id);
    if (http_request_header(req, line) != 0)
        goto fail;
    snprintf(line, sizeof line, "Idempotency-Key: %s", id);
    if (http_request_header(req, line) != 0)
        goto fail;
    http_request_before_send(req, webhook_sign, ws);
    return req;
fail:
    http_request_free(req);
    return NULL;
}

static struct http_request *webhook_make_single(void *ctx, struct sink_batch *b, size_t i, http_done_fn done, void *arg)
{
    struct webhook_sink *ws = ctx;
    const struct sink_record *rec = &b->records[i];
    const struct webhook_rec *wr = rec->prepared;
    struct buf id = { 0 };
    struct http_request *req;
    char *body = malloc(wr->len + 1);

    if (!body)
        return NULL;
    memcpy(body, wr->json, wr->len + 1);
    buf_printf(&id, "%s:%s:%" PRId32 ":%" PRId64, ws->base.super.name, rec->topic, rec->partition, rec->offset);
    if (id.oom) {
        free(body);
        return NULL;
    }
    req = webhook_request(ws, id.p, body, wr->len, done, arg);
    buf_free(&id);
    return req;
}

static void webhook_write(struct sink *sk, struct sink_batch *b)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;
    struct http_request *req;
    struct buf body = { 0 };
    char id[512], *text;
    size_t len;

    if (ws->batch_format == WEBHOOK_SINGLE) {
        http_fanout_start(ws->eng, b, webhook_make_single, ws, &ws->attempts);
        return;
    }
    /* prepared_len is an element and its separator: the body in one allocation, each
     * element written in place. */
    if (webhook_names_set(&ws->names, sk->name, b->topic) != 0) {
        sink_batch_done(b, SINK_RETRY, "out of memory");
        return;
    }
    buf_reserve(&body, b->bytes + 2);
    if (body.oom) {
        sink_batch_done(b, SINK_RETRY, "out of memory");
        return;
    }
    if (ws->batch_format == WEBHOOK_JSON_ARRAY)
        body.p[body.len++] = '[';
    for (size_t i = 0; i < b->count; i++) {
        const struct sink_record *rec = &b->records[i];
        char *end;
        if (ws->batch_format == WEBHOOK_JSON_ARRAY && i > 0)
            body.p[body.len++] = ',';
        /* Never past what prepare counted (the key and value are the same bytes). */
        if (body.len + rec->prepared_len > body.cap) {
            buf_free(&body);
            sink_batch_done(b, SINK_RETRY, "internal error: an element is longer than counted");
            return;
        }
        end = webhook_element_write(&ws->names, rec, body.p + body.len);
        body.len = (size_t)(end - body.p);
        if (ws->batch_format == WEBHOOK_NDJSON)
            body.p[body.len++] = '\n';
    }
    if (ws->batch_format == WEBHOOK_JSON_ARRAY)
        body.p[body.len++] = ']';
    body.p[body.len] = '\0';
    snprintf(id, sizeof id, "%s:%s:%" PRId32 ":%" PRId64 "-%" PRId64, sk->name, b->topic, b->partition,
             b->records[0].offset, b->records[b->count - 1].offset);
    if (!(text = buf_steal(&body, &len)) || !(req = webhook_request(ws, id, text, len, NULL, NULL))) {
        sink_batch_done(b, SINK_RETRY, "out of memory");
        return;
    }
    http_batch_send(ws->eng, b, req, &ws->attempts);
}

/* ---- life ---- */

static int webhook_start(struct sink *sk, char *err, size_t errlen)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;
    const char *name;
    json_t *v;

    if (ws->secret && (ws->keylen = webhook_whsec_decode(ws->secret, ws->key, sizeof ws->key)) < 0) {
        snprintf(err, errlen, "secret: not a whsec_ secret");
        return -1;
    }
    if (ws->keylen > 0 && !(ws->signer = webhook_signer_new(ws->key, (size_t)ws->keylen))) {
        snprintf(err, errlen, "cannot set up HMAC-SHA256 (OpenSSL)");
        return -1;
    }
    if (ws->headers) {
        ws->header_lines = calloc(json_object_size(ws->headers) + 1, sizeof *ws->header_lines);
        if (!ws->header_lines)
            goto oom;
        json_object_foreach(ws->headers, name, v) {
            if (asprintf(&ws->header_lines[ws->nheader_lines], "%s: %s", name, json_string_value(v)) < 0) {
                ws->header_lines[ws->nheader_lines] = NULL;
                goto oom;
            }
            ws->nheader_lines++;
            if (strcasecmp(name, "content-type") == 0)
                ws->has_content_type = 1;
        }
    }
    if (!(ws->eng = http_engine_for_sink(sk, &ws->base.http, err, errlen)))
        return -1;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int webhook_ready(struct sink *sk, char *why, size_t whylen)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;
    return ws->eng ? http_engine_ready(ws->eng, why, whylen) : 0;
}

static void webhook_stop(struct sink *sk)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;

    http_engine_free(ws->eng);      /* no callback after this */
    ws->eng = NULL;
    http_attempts_free(&ws->attempts);
}

static void webhook_destroy(struct sink *sk)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;

    webhook_stop(sk);
    for (size_t i = 0; i < ws->nheader_lines; i++)
        free(ws->header_lines[i]);
    free(ws->header_lines);
    ws->header_lines = NULL;
    ws->nheader_lines = 0;
    webhook_signer_free(ws->signer);
    ws->signer = NULL;
    webhook_names_free(&ws->names);
    OPENSSL_cleanse(ws->key, sizeof ws->key);
}

const struct sink_ops sink_webhook_ops = {
    .type = "webhook",
    .size = sizeof(struct webhook_sink),
    .opts = webhook_opts,
    .flags = 0,                       /* values are checked as JSON by prepare, never parsed */
    .help = "POSTs records to an HTTP endpoint, signed (Standard Webhooks) and idempotent, at least once",
    .check = webhook_check,
    .warn = webhook_warn,
    .start = webhook_start,
    .prepare = webhook_prepare,
    .release = webhook_release,
    .write = webhook_write,
    .stop = webhook_stop,
    .destroy = webhook_destroy,
    .ready = webhook_ready,
};
