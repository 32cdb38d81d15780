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
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "http_engine.h"
#include "template.h"

enum webhook_format { WEBHOOK_SINGLE, WEBHOOK_JSON_ARRAY, WEBHOOK_NDJSON };

static const char *const webhook_formats[] = { "single", "json_array", "ndjson", NULL };

struct webhook_sink {
    struct http_sink_base base;
    char *url;
    json_t *headers;
    int batch_format;
    char *secret;
    /* made by start */
    unsigned char key[HTTP_WHSEC_MAX];
    int keylen;
    struct http_signer *signer;
    char **header_lines;
    size_t nheader_lines;
    int has_content_type;
    struct http_engine *eng;
    struct http_attempt *attempts;
    struct tbuf element, element_id;   /* prepare's scratch, reused from record to record */
};

/* A record, ready to go: its element of the body. */
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

static int webhook_check(struct sink *sk, char *err, size_t errlen, const char **key)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;
    unsigned char tmp[HTTP_WHSEC_MAX];

    if (http_engine_check_url(&ws->base.http, ws->url, "url", err, errlen) != 0) {
        *key = "url";
        return -1;
    }
    if (ws->secret && http_whsec_decode(ws->secret, tmp, sizeof tmp) < 0) {
        OPENSSL_cleanse(tmp, sizeof tmp);
        snprintf(err, errlen, "must be whsec_ followed by the base64 of the key (as Standard Webhooks issues it)");
        *key = "secret";
        return -1;
    }
    OPENSSL_cleanse(tmp, sizeof tmp);
    if (webhook_check_headers(ws->headers, err, errlen) != 0) {
        *key = "headers";
        return -1;
    }
    /* A batch's webhook-id names its offsets: it must cover the same ones when re-sent. */
    if (ws->batch_format != WEBHOOK_SINGLE)
        sk->flags |= SINK_F_STABLE_BATCHES;
    return 0;
}

/* ---- records ---- */

/* Appends "<sink>:<topic>:<partition>:<offset>", the record's id. */
static void record_id(struct tbuf *b, const char *sink, const char *topic, int32_t partition, int64_t offset)
{
    tbuf_adds(b, sink);
    tbuf_add(b, ":", 1);
    tbuf_adds(b, topic);
    tbuf_add(b, ":", 1);
    tbuf_add_i64(b, partition);
    tbuf_add(b, ":", 1);
    tbuf_add_i64(b, offset);
}

/* Empties a scratch buffer, keeping its memory for the next record. */
static void scratch_reset(struct tbuf *b)
{
    if (b->oom)
        tbuf_free(b);
    b->len = 0;
}

static int webhook_prepare(struct sink *sk, struct sink_record *rec, char *err, size_t errlen)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;
    struct tbuf *b = &ws->element, *id = &ws->element_id;
    struct webhook_rec *wr;
    char jerr[128];

    /* Built in the sink's scratch buffers (it runs for every record), then copied once. */
    scratch_reset(b);
    scratch_reset(id);
    tbuf_reserve_more(b, 2 * strlen(sk->name) + 3 * strlen(rec->topic) + rec->key_len + rec->value_len + 160);
    record_id(id, sk->name, rec->topic, rec->partition, rec->offset);
    tbuf_add(b, "{\"id\":", 6);
    if (id->oom || tpl_json_escape(b, id->p, id->len) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    tbuf_add(b, ",\"topic\":", 9);
    tpl_json_escape(b, rec->topic, strlen(rec->topic));
    tbuf_add(b, ",\"partition\":", 13);
    tbuf_add_i64(b, rec->partition);
    tbuf_add(b, ",\"offset\":", 10);
    tbuf_add_i64(b, rec->offset);
    tbuf_add(b, ",\"key\":", 7);
    if (!rec->key) {
        tbuf_add(b, "null", 4);
    } else if (tpl_json_escape(b, rec->key, rec->key_len) != 0) {
        snprintf(err, errlen, "key is not valid UTF-8");
        return -1;
    }
    tbuf_add(b, ",\"value\":", 9);
    if (!rec->value) {
        tbuf_add(b, "null", 4);
    } else {
        /* Checked here, not parsed by the router: a tree per record would cost more than all
         * the rest of the sink's work. Kept byte for byte, on one line (for ndjson): in valid
         * JSON a raw CR or LF can only be whitespace between tokens, so a space may replace it. */
        if (tpl_json_check(rec->value, rec->value_len, jerr, sizeof jerr) != 0) {
            snprintf(err, errlen, "value is not JSON: %s", jerr);
            return -1;
        }
        size_t at = b->len;
        tbuf_add(b, rec->value, rec->value_len);
        for (const char *brk = "\n\r"; *brk && !b->oom; brk++)
            for (char *q = b->p + at; (q = memchr(q, *brk, b->len - (size_t)(q - b->p))); q++)
                *q = ' ';
    }
    tbuf_add(b, ",\"timestamp\":", 13);
    if (rec->timestamp_ms >= 0)
        tbuf_add_i64(b, rec->timestamp_ms);
    else
        tbuf_add(b, "null", 4);
    tbuf_add(b, "}", 1);
    if (b->oom || !(wr = malloc(sizeof *wr + b->len + 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    wr->http.state = HTTP_REC_PENDING;
    wr->http.key_hash = http_key_hash(rec->key, rec->key_len);
    wr->len = b->len;
    memcpy(wr->json, b->p, b->len + 1);
    rec->prepared = wr;
    rec->prepared_len = wr->len + 1;
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
    if (http_signer_sign(ws->signer, http_request_id(req), now, body, len, line + 19, sizeof line - 19) != 0 ||
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
    struct tbuf id = { 0 };
    struct http_request *req;
    char *body = malloc(wr->len + 1);

    if (!body)
        return NULL;
    memcpy(body, wr->json, wr->len + 1);
    record_id(&id, ws->base.super.name, rec->topic, rec->partition, rec->offset);
    if (id.oom) {
        free(body);
        return NULL;
    }
    req = webhook_request(ws, id.p, body, wr->len, done, arg);
    tbuf_free(&id);
    return req;
}

static void webhook_write(struct sink *sk, struct sink_batch *b)
{
    struct webhook_sink *ws = (struct webhook_sink *)sk;
    struct http_request *req;
    struct tbuf body = { 0 };
    char id[512], *text;
    size_t len;

    if (ws->batch_format == WEBHOOK_SINGLE) {
        http_fanout_start(ws->eng, b, webhook_make_single, ws, &ws->attempts);
        return;
    }
    /* prepared_len is an element and its separator: the body in one allocation. */
    tbuf_reserve_more(&body, b->bytes + 2);
    if (ws->batch_format == WEBHOOK_JSON_ARRAY)
        tbuf_add(&body, "[", 1);
    for (size_t i = 0; i < b->count; i++) {
        const struct webhook_rec *wr = b->records[i].prepared;
        if (ws->batch_format == WEBHOOK_JSON_ARRAY && i > 0)
            tbuf_add(&body, ",", 1);
        tbuf_add(&body, wr->json, wr->len);
        if (ws->batch_format == WEBHOOK_NDJSON)
            tbuf_add(&body, "\n", 1);
    }
    if (ws->batch_format == WEBHOOK_JSON_ARRAY)
        tbuf_add(&body, "]", 1);
    snprintf(id, sizeof id, "%s:%s:%" PRId32 ":%" PRId64 "-%" PRId64, sk->name, b->topic, b->partition,
             b->records[0].offset, b->records[b->count - 1].offset);
    if (!(text = tbuf_steal(&body, &len)) || !(req = webhook_request(ws, id, text, len, NULL, NULL))) {
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

    if (ws->secret && (ws->keylen = http_whsec_decode(ws->secret, ws->key, sizeof ws->key)) < 0) {
        snprintf(err, errlen, "secret: not a whsec_ secret");
        return -1;
    }
    if (ws->keylen > 0 && !(ws->signer = http_signer_new(ws->key, (size_t)ws->keylen))) {
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
    if (!(ws->eng = http_engine_new(sk, &ws->base.http, err, errlen)))
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
    http_signer_free(ws->signer);
    ws->signer = NULL;
    tbuf_free(&ws->element);
    tbuf_free(&ws->element_id);
    OPENSSL_cleanse(ws->key, sizeof ws->key);
}

const struct sink_ops sink_webhook_ops = {
    .type = "webhook",
    .size = sizeof(struct webhook_sink),
    .opts = webhook_opts,
    .flags = 0,                       /* values are checked as JSON by prepare, never parsed */
    .help = "POSTs records to an HTTP endpoint, signed (Standard Webhooks) and idempotent, at least once",
    .check = webhook_check,
    .start = webhook_start,
    .prepare = webhook_prepare,
    .release = webhook_release,
    .write = webhook_write,
    .stop = webhook_stop,
    .destroy = webhook_destroy,
    .ready = webhook_ready,
};
