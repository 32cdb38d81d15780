/* One attempt of a batch over the HTTP engine: one request per record (in partition order, or
 * records of different keys in parallel) or the whole batch in one request; the attempt ends the
 * batch with the outcome. */
#include <stdlib.h>
#include <string.h>

#include "http_engine.h"

/* ---- attempts of a batch ---- */

uint32_t http_key_hash(const char *key, size_t len)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    if (!key)
        return 0x9e3779b9u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    return h;
}

enum attempt_kind { ATTEMPT_FANOUT, ATTEMPT_WHOLE };

struct http_attempt {
    struct http_attempt *next, **pprev;
    enum attempt_kind kind;
    struct http_engine *eng;
    struct sink_batch *b;
    http_fanout_make_fn make;
    void *ctx;
    size_t first;                 /* records before it are done */
    size_t inflight;
    size_t sent, rejected, retried;
    int failed;                   /* a retryable failure: start nothing new */
    int scanning, rescan;
    char *first_error;
    uint32_t *slots;              /* scratch hash set of record index + 1 */
    size_t nslots;
    uint32_t *used;               /* the slots filled by this scan, to clear only those */
    size_t nused;
};

static void attempt_link(struct http_attempt *a, struct http_attempt **list)
{
    a->next = *list;
    if (a->next)
        a->next->pprev = &a->next;
    a->pprev = list;
    *list = a;
}

static void attempt_free(struct http_attempt *a)
{
    *a->pprev = a->next;
    if (a->next)
        a->next->pprev = a->pprev;
    free(a->first_error);
    free(a->slots);
    free(a->used);
    free(a);
}

void http_attempts_free(struct http_attempt **list)
{
    while (*list)
        attempt_free(*list);
}

static struct http_rec *rec_of(struct sink_batch *b, size_t i)
{
    return (struct http_rec *)b->records[i].prepared;
}

static int same_key(const struct sink_record *x, const struct sink_record *y)
{
    if (!x->key || !y->key)
        return !x->key && !y->key;
    return x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0;
}

/* 1 when an earlier record of the same key is in the set (and so @p i must wait), after
 * putting @p i in it. */
static int fanout_key_seen(struct http_attempt *a, size_t i)
{
    struct sink_batch *b = a->b;
    size_t mask = a->nslots - 1, s = rec_of(b, i)->key_hash & mask;

    while (a->slots[s]) {
        size_t j = a->slots[s] - 1;
        if (rec_of(b, j)->key_hash == rec_of(b, i)->key_hash && same_key(&b->records[j], &b->records[i]))
            return 1;
        s = (s + 1) & mask;
    }
    a->slots[s] = (uint32_t)(i + 1);
    a->used[a->nused++] = (uint32_t)s;
    return 0;
}

static void fanout_on_done(struct http_request *req, const struct http_result *res, void *arg);

static void fanout_end(struct http_attempt *a)
{
    struct sink_batch *b = a->b;
    int all = a->first == b->count;

    sink_batch_note(b, "%zu request(s): %zu rejected, %zu to retry%s%s", a->sent, a->rejected, a->retried,
                    a->first_error ? "; first error: " : "", a->first_error ? a->first_error : "");
    if (all)
        sink_batch_done(b, SINK_OK, NULL);
    else
        sink_batch_done(b, SINK_RETRY, a->first_error ? a->first_error : "out of memory building a request");
    attempt_free(a);
}

static void fanout_submit(struct http_attempt *a, size_t i)
{
    struct http_request *req = a->make(a->ctx, a->b, i, fanout_on_done, a);

    if (!req) {
        a->failed = 1;
        return;
    }
    http_request_set_tag(req, i);
    rec_of(a->b, i)->state = HTTP_REC_SENDING;
    a->inflight++;
    a->sent++;
    http_engine_submit(a->eng, req);
}

static void fanout_scan(struct http_attempt *a)
{
    struct sink_batch *b = a->b;
    size_t limit = (size_t)http_engine_config(a->eng)->max_in_flight;

    a->scanning = 1;
    do {
        a->rescan = 0;
        while (a->first < b->count && rec_of(b, a->first)->state == HTTP_REC_DONE)
            a->first++;
        if (a->failed)
            continue;
        if (http_engine_config(a->eng)->order == HTTP_ORDER_PARTITION) {
            if (a->inflight == 0 && a->first < b->count)
                fanout_submit(a, a->first);
            continue;
        }
        for (size_t k = 0; k < a->nused; k++)   /* only what the last scan filled */
            a->slots[a->used[k]] = 0;
        a->nused = 0;
        for (size_t i = a->first; i < b->count && a->inflight < limit && !a->failed; i++) {
            struct http_rec *r = rec_of(b, i);
            if (r->state == HTTP_REC_DONE)
                continue;
            if (fanout_key_seen(a, i) || r->state == HTTP_REC_SENDING)
                continue;
            fanout_submit(a, i);
        }
    } while (a->rescan);
    a->scanning = 0;
    if (a->inflight == 0)
        fanout_end(a);
}

static void fanout_on_done(struct http_request *req, const struct http_result *res, void *arg)
{
    struct http_attempt *a = arg;
    size_t i = (size_t)http_request_tag(req);
    struct http_rec *r = rec_of(a->b, i);

    a->inflight--;
    switch (res->cls) {
    case HTTP_OK:
        r->state = HTTP_REC_DONE;
        break;
    case HTTP_PERMANENT:
    case HTTP_GONE:
        if (res->refused)
            sink_batch_refused(a->b, 1, res->error);
        /* Under on_failure block a record is never skipped: it is sent again with the batch's
         * retries (the router parks the sink meanwhile). */
        if (a->b->sink->on_failure != SINK_ON_FAILURE_BLOCK) {
            sink_batch_reject(a->b, i, res->error);
            r->state = HTTP_REC_DONE;
            a->rejected++;
            break;
        }
        /* fall through */
    case HTTP_RETRY:
        r->state = HTTP_REC_PENDING;
        a->failed = 1;
        a->retried++;
        if (!a->first_error)
            a->first_error = strdup(res->error);
        break;
    }
    http_request_free(req);
    if (a->scanning) {
        a->rescan = 1;
        return;
    }
    fanout_scan(a);
}

void http_fanout_start(struct http_engine *eng, struct sink_batch *b, http_fanout_make_fn make, void *ctx,
                       struct http_attempt **list)
{
    struct http_attempt *a = calloc(1, sizeof *a);
    size_t n = 16;

    while (n < 2 * b->count)
        n *= 2;
    if (!a || !(a->slots = calloc(n, sizeof *a->slots)) || !(a->used = calloc(b->count ? b->count : 1, sizeof *a->used))) {
        if (a)
            free(a->slots);
        free(a);
        sink_batch_done(b, SINK_RETRY, "out of memory");
        return;
    }
    a->kind = ATTEMPT_FANOUT;
    a->eng = eng;
    a->b = b;
    a->make = make;
    a->ctx = ctx;
    a->nslots = n;
    /* A record left "sending" by an attempt that ended early cannot be: every attempt waits for
     * its requests. Start from what is not done. */
    for (size_t i = 0; i < b->count; i++)
        if (rec_of(b, i)->state == HTTP_REC_SENDING)
            rec_of(b, i)->state = HTTP_REC_PENDING;
    attempt_link(a, list);
    fanout_scan(a);
}

static void whole_on_done(struct http_request *req, const struct http_result *res, void *arg)
{
    struct http_attempt *a = arg;
    struct sink_batch *b = a->b;

    sink_batch_note(b, "%s %s -> %s%s%s", http_request_method(req), http_request_host(req), http_class_name(res->cls),
                    res->error[0] ? ": " : "", res->error);
    switch (res->cls) {
    case HTTP_OK:
        sink_batch_done(b, SINK_OK, NULL);
        break;
    case HTTP_RETRY:
        sink_batch_done(b, SINK_RETRY, res->error);
        break;
    default:
        if (res->refused)
            sink_batch_refused(b, b->count, res->error);
        sink_batch_done(b, SINK_FAIL, res->error);
        break;
    }
    http_request_free(req);
    attempt_free(a);
}

void http_batch_send(struct http_engine *eng, struct sink_batch *b, struct http_request *req,
                     struct http_attempt **list)
{
    struct http_attempt *a = calloc(1, sizeof *a);

    if (!a) {
        http_request_free(req);
        sink_batch_done(b, SINK_RETRY, "out of memory");
        return;
    }
    a->kind = ATTEMPT_WHOLE;
    a->eng = eng;
    a->b = b;
    attempt_link(a, list);
    http_request_set_done(req, whole_on_done, a);
    http_engine_submit(eng, req);
}
