/* The Schema Registry client (registry.h). One entry per id: fetching, ready (compiled, in the
 * LRU list), unusable (compile error: kept, small) or missing (until missing_ttl_ms). A fetch
 * walks GET /schemas/ids/{id}, again with format=serialized for Protobuf (the registry gives the
 * FileDescriptorProto only when asked), then every reference through
 * GET /subjects/{subject}/versions/{version}, one request at a time. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "registry.h"
#include "lib/backoff.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "sinks/http_engine.h"

#define REGISTRY_BUCKETS 1024
#define REGISTRY_MAX_REFS 64          /* references of one schema, all levels together */
#define REGISTRY_MAX_ANSWER (16u << 20) /* one answer of the registry; a bigger schema is unusable */
#define REGISTRY_ENTRY_COST 256       /* what an entry costs besides its schema, for the bound */
#define REGISTRY_LOG "registry"

enum entry_state { ENTRY_FETCHING, ENTRY_READY, ENTRY_UNUSABLE, ENTRY_MISSING };

struct pending_ref {
    char *name, *subject;
    long long version;
};

struct fetch {
    struct registry_schema s;
    int serialized;               /* the id's own text was asked with format=serialized */
    struct pending_ref *todo;     /* references still to fetch, in the order found */
    size_t ntodo, itodo;
    size_t nrefs_cap;
    unsigned attempt;             /* failed tries of the current request */
    struct event *retry_timer;
    struct http_request *req;     /* on the wire; the engine owns it until its callback */
};

struct entry {
    uint32_t id;
    enum entry_state state;
    struct entry *hash_next;
    struct entry *lru_prev, *lru_next;   /* ready and unusable entries, most recent first */
    void *compiled;
    char *why;                    /* unusable or missing: the reason */
    int64_t missing_until_ms;
    size_t bytes;
    struct fetch *fetch;
    struct registry *reg;
};

struct registry {
    struct event_base *eb;
    struct http_engine *eng;
    char *base_url;               /* without a trailing '/' */
    char *auth_header;            /* "Authorization: ..." or NULL; secret */
    long long timeout_ms, cache_max_bytes, missing_ttl_ms, retry_initial_ms, retry_max_ms;
    registry_compile_fn compile;
    registry_release_fn release;
    registry_update_fn update;
    void *update_arg;
    struct entry *buckets[REGISTRY_BUCKETS];
    struct entry *lru_head, *lru_tail;
    size_t bytes;
    enum registry_state state;
    char last_error[512];
    struct registry_stats stats;
};

const char *registry_state_name(enum registry_state st)
{
    switch (st) {
    case REGISTRY_UP: return "up";
    case REGISTRY_DOWN: return "down";
    case REGISTRY_UNAUTHORIZED: return "unauthorized";
    }
    return "?";
}

/* ---- entries ---- */

static struct entry **bucket_of(struct registry *reg, uint32_t id)
{
    return &reg->buckets[(id * 2654435761u) % REGISTRY_BUCKETS];
}

static struct entry *entry_find(struct registry *reg, uint32_t id)
{
    for (struct entry *e = *bucket_of(reg, id); e; e = e->hash_next)
        if (e->id == id)
            return e;
    return NULL;
}

static void lru_unlink(struct registry *reg, struct entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else if (reg->lru_head == e)
        reg->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else if (reg->lru_tail == e)
        reg->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct registry *reg, struct entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = reg->lru_head;
    if (reg->lru_head)
        reg->lru_head->lru_prev = e;
    reg->lru_head = e;
    if (!reg->lru_tail)
        reg->lru_tail = e;
}

static void schema_clear(struct registry_schema *s)
{
    for (size_t i = 0; i < s->nrefs; i++) {
        free(s->refs[i].name);
        free(s->refs[i].subject);
        free(s->refs[i].text);
    }
    free(s->refs);
    free(s->text);
    json_decref(s->rule_set);
    memset(s, 0, sizeof *s);
}

static void fetch_free(struct fetch *f)
{
    if (!f)
        return;
    schema_clear(&f->s);
    for (size_t i = 0; i < f->ntodo; i++) {
        free(f->todo[i].name);
        free(f->todo[i].subject);
    }
    free(f->todo);
    if (f->retry_timer)
        event_free(f->retry_timer);
    if (f->req)
        http_request_free(f->req);
    free(f);
}

/* Unlinks @p e from the table and the LRU list and frees it (not while its request is on the
 * wire: callers only remove entries that are not fetching). */
static void entry_remove(struct registry *reg, struct entry *e)
{
    struct entry **pp = bucket_of(reg, e->id);

    while (*pp && *pp != e)
        pp = &(*pp)->hash_next;
    if (*pp)
        *pp = e->hash_next;
    lru_unlink(reg, e);
    reg->bytes -= e->bytes;
    if (e->state == ENTRY_READY) {
        reg->stats.cached--;
        reg->stats.cached_bytes -= e->bytes;
    }
    if (e->compiled && reg->release)
        reg->release(e->compiled);
    fetch_free(e->fetch);
    free(e->why);
    free(e);
}

/* Keeps the bound: the least recently used entries that are not @p keep go first. */
static void registry_trim(struct registry *reg, const struct entry *keep)
{
    struct entry *e = reg->lru_tail;

    while (e && reg->bytes > (size_t)reg->cache_max_bytes) {
        struct entry *prev = e->lru_prev;
        if (e != keep) {
            reg->stats.evictions++;
            entry_remove(reg, e);
        }
        e = prev;
    }
}

/* The entry leaves fetching as @p state; its size counts from now on. */
static void entry_settle(struct registry *reg, struct entry *e, enum entry_state state, size_t schema_bytes)
{
    fetch_free(e->fetch);
    e->fetch = NULL;
    e->state = state;
    e->bytes = REGISTRY_ENTRY_COST + schema_bytes + (e->why ? strlen(e->why) : 0);
    reg->bytes += e->bytes;
    if (state == ENTRY_READY) {
        reg->stats.cached++;
        reg->stats.cached_bytes += e->bytes;
    }
    reg->stats.fetching--;
    lru_push_front(reg, e);
    registry_trim(reg, e);
}

/* ---- requests ---- */

static void set_state(struct registry *reg, enum registry_state st, const char *error)
{
    if (error)
        snprintf(reg->last_error, sizeof reg->last_error, "%s", error);
    if (reg->state == st)
        return;
    if (st == REGISTRY_UP)
        LOG_AS(LOG_INFO, REGISTRY_LOG, "the registry answers again");
    reg->state = st;
}

/* Percent-encodes a subject for a path segment. */
static int add_segment(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            buf_add(b, s, 1);
        } else {
            char enc[3] = { '%', hex[c >> 4], hex[c & 15] };
            buf_add(b, enc, 3);
        }
    }
    return b->oom ? -1 : 0;
}

static void on_answer(struct http_request *req, const struct http_result *res, void *arg);

/* The request a fetch needs next: the id, the id serialized, or its next reference. */
static void fetch_send(struct entry *e)
{
    struct registry *reg = e->reg;
    struct fetch *f = e->fetch;
    struct http_request *req = NULL;
    struct buf url;

    buf_init(&url, 0);
    buf_adds(&url, reg->base_url);
    if (f->itodo < f->ntodo && f->s.text) {
        const struct pending_ref *r = &f->todo[f->itodo];
        buf_adds(&url, "/subjects/");
        add_segment(&url, r->subject);
        buf_printf(&url, "/versions/%lld", r->version);
        if (f->s.type == REGISTRY_PROTOBUF)
            buf_adds(&url, "?format=serialized");
    } else {
        buf_printf(&url, "/schemas/ids/%" PRIu32, e->id);
        if (f->serialized)
            buf_adds(&url, "?format=serialized");
    }
    if (!url.oom && (req = http_request_new("GET", url.p, on_answer, e)) &&
        http_request_header(req, "Accept: application/vnd.schemaregistry.v1+json, application/json") == 0 &&
        (!reg->auth_header || http_request_header(req, reg->auth_header) == 0)) {
        http_request_keep_body(req, REGISTRY_MAX_ANSWER);
        f->req = req;
        buf_free(&url);
        http_engine_submit(reg->eng, req);
        return;
    }
    /* Out of memory: try again later like a network error. */
    http_request_free(req);
    buf_free(&url);
    LOG_AS(LOG_ERROR, REGISTRY_LOG, "out of memory building a request for schema %" PRIu32, e->id);
    f->attempt++;
    {
        struct timeval tv = ms_to_tv(backoff_full_jitter(f->attempt, reg->retry_initial_ms, reg->retry_max_ms));
        evtimer_add(f->retry_timer, &tv);
    }
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fetch_send(arg);
}

static void entry_unusable(struct registry *reg, struct entry *e, enum entry_state state, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void entry_unusable(struct registry *reg, struct entry *e, enum entry_state state, const char *fmt, ...)
{
    char why[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    free(e->why);
    e->why = strdup(why);
    if (state == ENTRY_MISSING)
        e->missing_until_ms = mono_ms() + reg->missing_ttl_ms;
    LOG_AS(LOG_WARN, REGISTRY_LOG, "%s", why);
    entry_settle(reg, e, state, 0);
}

static void entry_compile(struct registry *reg, struct entry *e)
{
    struct fetch *f = e->fetch;
    char err[512];
    size_t bytes = 0;
    void *compiled;

    /* References were found parent first; dependencies go first. */
    for (size_t i = 0, j = f->s.nrefs ? f->s.nrefs - 1 : 0; i < j; i++, j--) {
        struct registry_ref t = f->s.refs[i];
        f->s.refs[i] = f->s.refs[j];
        f->s.refs[j] = t;
    }
    f->s.id = e->id;
    err[0] = '\0';
    compiled = reg->compile(&f->s, &bytes, err, sizeof err);
    if (!compiled) {
        entry_unusable(reg, e, ENTRY_UNUSABLE, "schema %" PRIu32 ": %s", e->id, err[0] ? err : "cannot be used");
        return;
    }
    e->compiled = compiled;
    LOG_AS(LOG_INFO, REGISTRY_LOG, "schema %" PRIu32 " (%s, %zu reference%s) ready", e->id,
                 f->s.type == REGISTRY_AVRO ? "AVRO" : f->s.type == REGISTRY_PROTOBUF ? "PROTOBUF" : "JSON",
                 f->s.nrefs, f->s.nrefs == 1 ? "" : "s");
    entry_settle(reg, e, ENTRY_READY, bytes + f->s.text_len);
}

static int ref_known(const struct fetch *f, const char *subject, long long version)
{
    for (size_t i = 0; i < f->ntodo; i++)
        if (f->todo[i].version == version && strcmp(f->todo[i].subject, subject) == 0)
            return 1;
    return 0;
}

/* Queues the references listed in @p refs (a "references" array). 0, or -1 with why. */
static int queue_refs(struct fetch *f, const json_t *refs, char *why, size_t whylen)
{
    size_t i;
    json_t *r;

    if (!refs || json_is_null(refs))
        return 0;
    if (!json_is_array(refs)) {
        snprintf(why, whylen, "\"references\" is not an array");
        return -1;
    }
    json_array_foreach(refs, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *subject = json_string_value(json_object_get(r, "subject"));
        json_t *version = json_object_get(r, "version");
        struct pending_ref *todo;

        if (!name || !subject || !json_is_integer(version)) {
            snprintf(why, whylen, "reference %zu lacks a name, subject or version", i);
            return -1;
        }
        if (ref_known(f, subject, json_integer_value(version)))
            continue;
        if (f->ntodo >= REGISTRY_MAX_REFS) {
            snprintf(why, whylen, "more than %d references", REGISTRY_MAX_REFS);
            return -1;
        }
        if (!(todo = realloc(f->todo, (f->ntodo + 1) * sizeof *todo))) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        f->todo = todo;
        todo[f->ntodo] = (struct pending_ref){ strdup(name), strdup(subject), json_integer_value(version) };
        if (!todo[f->ntodo].name || !todo[f->ntodo].subject) {
            free(todo[f->ntodo].name);
            free(todo[f->ntodo].subject);
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        f->ntodo++;
    }
    return 0;
}

static int parse_type(const json_t *answer, enum registry_schema_type *type, char *why, size_t whylen)
{
    const char *t = json_string_value(json_object_get(answer, "schemaType"));

    if (!t || strcmp(t, "AVRO") == 0)
        *type = REGISTRY_AVRO;     /* the registry leaves schemaType out for Avro */
    else if (strcmp(t, "PROTOBUF") == 0)
        *type = REGISTRY_PROTOBUF;
    else if (strcmp(t, "JSON") == 0)
        *type = REGISTRY_JSON;
    else {
        snprintf(why, whylen, "schema type \"%.40s\" is not supported", t);
        return -1;
    }
    return 0;
}

/* A 2xx answer for the fetch's current request. 0: the fetch goes on or is finished; -1: the
 * id is unusable (why). */
static int take_answer(struct entry *e, const struct http_result *res, char *why, size_t whylen)
{
    struct fetch *f = e->fetch;
    json_error_t jerr;
    json_t *answer;
    const char *text;
    enum registry_schema_type type;
    int rc = -1;

    if (res->body_truncated) {
        snprintf(why, whylen, "the registry's answer is over %u bytes", REGISTRY_MAX_ANSWER);
        return -1;
    }
    answer = json_loadb(res->body, res->body_len, 0, &jerr);
    if (!json_is_object(answer)) {
        snprintf(why, whylen, "the registry's answer is not a JSON object: %s", answer ? "" : jerr.text);
        goto out;
    }
    text = json_string_value(json_object_get(answer, "schema"));
    if (!text) {
        snprintf(why, whylen, "the registry's answer has no \"schema\"");
        goto out;
    }
    if (parse_type(answer, &type, why, whylen) != 0)
        goto out;
    if (f->itodo < f->ntodo && f->s.text) {
        struct pending_ref *r = &f->todo[f->itodo];
        struct registry_ref *ref;
        if (f->s.nrefs == f->nrefs_cap) {
            size_t cap = f->nrefs_cap ? f->nrefs_cap * 2 : 4;
            struct registry_ref *v = realloc(f->s.refs, cap * sizeof *v);
            if (!v) {
                snprintf(why, whylen, "out of memory");
                goto out;
            }
            f->s.refs = v;
            f->nrefs_cap = cap;
        }
        ref = &f->s.refs[f->s.nrefs];
        *ref = (struct registry_ref){ .name = r->name, .subject = r->subject, .version = r->version,
                                      .text = strdup(text), .text_len = strlen(text) };
        r->name = r->subject = NULL;   /* moved */
        f->s.nrefs++;
        f->itodo++;
        if (!ref->text) {
            snprintf(why, whylen, "out of memory");
            goto out;
        }
    } else {
        f->s.type = type;
        if (type == REGISTRY_PROTOBUF && !f->serialized) {
            f->serialized = 1;   /* the descriptor, not the .proto text */
            rc = 0;
            goto out;
        }
        if (!(f->s.text = strdup(text))) {
            snprintf(why, whylen, "out of memory");
            goto out;
        }
        f->s.text_len = strlen(text);
        /* The data contract's rules (Confluent 7.4+); the rules of referenced schemas do not run,
         * as in Confluent's clients. */
        json_decref(f->s.rule_set);
        f->s.rule_set = json_incref(json_object_get(answer, "ruleSet"));
    }
    rc = queue_refs(f, json_object_get(answer, "references"), why, whylen);
out:
    json_decref(answer);
    return rc;
}

/* The registry's error code from a JSON error body, or 0. */
static long error_code(const struct http_result *res)
{
    json_t *body = json_loadb(res->body, res->body_len, 0, NULL);
    long code = (long)json_integer_value(json_object_get(body, "error_code"));
    json_decref(body);
    return code;
}

static void on_result(struct entry *e, const struct http_result *res, char *why, size_t whylen, int referencing);

static void on_answer(struct http_request *req, const struct http_result *res, void *arg)
{
    struct entry *e = arg;
    struct registry *reg = e->reg;
    struct fetch *f = e->fetch;
    char why[512];
    int referencing = f->itodo < f->ntodo && f->s.text;

    f->req = NULL;
    why[0] = '\0';
    on_result(e, res, why, sizeof why, referencing);
    http_request_free(req);   /* res points into it */
    reg->update(reg->update_arg);
}

static void on_result(struct entry *e, const struct http_result *res, char *why, size_t whylen, int referencing)
{
    struct registry *reg = e->reg;
    struct fetch *f = e->fetch;

    if (res->cls == HTTP_OK) {
        reg->stats.requests_ok++;
        set_state(reg, REGISTRY_UP, NULL);
        f->attempt = 0;
        if (take_answer(e, res, why, whylen) != 0)
            entry_unusable(reg, e, ENTRY_UNUSABLE, "schema %" PRIu32 ": %s", e->id, why);
        else if (f->itodo < f->ntodo || !f->s.text)
            fetch_send(e);
        else
            entry_compile(reg, e);
        return;
    }
    if (res->status == 404) {
        long code = error_code(res);
        reg->stats.requests_not_found++;
        set_state(reg, REGISTRY_UP, NULL);
        if (referencing)
            entry_unusable(reg, e, ENTRY_MISSING,
                           "schema %" PRIu32 " references subject \"%s\" version %lld, which the registry does not have (%ld)",
                           e->id, f->todo[f->itodo].subject, f->todo[f->itodo].version, code ? code : 404);
        else
            entry_unusable(reg, e, ENTRY_MISSING, "schema %" PRIu32 " does not exist in the registry (%ld)", e->id,
                           code ? code : 404);
        return;
    }
    if (res->status == 401 || res->status == 403) {
        reg->stats.requests_unauthorized++;
        snprintf(why, whylen, "the registry refuses sluice's credentials (HTTP %ld): check registry.user, "
                                  "registry.password or registry.token", res->status);
        if (reg->state != REGISTRY_UNAUTHORIZED)
            LOG_AS(LOG_ERROR, REGISTRY_LOG, "%s", why);
        set_state(reg, REGISTRY_UNAUTHORIZED, why);
    } else {
        if (res->cls == HTTP_RETRY)
            reg->stats.requests_retried++;
        else
            reg->stats.requests_failed++;
        snprintf(why, whylen, "%s", res->error[0] ? res->error : "request failed");
        if (reg->state == REGISTRY_UP)
            LOG_AS(LOG_WARN, REGISTRY_LOG, "asking for schema %" PRIu32 " failed: %s; records that need it wait, and it is "
                                   "asked again with backoff", e->id, why);
        set_state(reg, REGISTRY_DOWN, why);
    }
    f->attempt++;
    {
        struct timeval tv = ms_to_tv(backoff_full_jitter(f->attempt, reg->retry_initial_ms, reg->retry_max_ms));
        evtimer_add(f->retry_timer, &tv);
    }
}

/* ---- the interface ---- */

enum registry_lookup registry_get(struct registry *reg, uint32_t id, void **compiled, char *why, size_t whylen)
{
    struct entry *e = entry_find(reg, id);

    if (e && e->state == ENTRY_MISSING && mono_ms() >= e->missing_until_ms) {
        entry_remove(reg, e);   /* believed long enough: ask again */
        e = NULL;
    }
    if (e) {
        switch (e->state) {
        case ENTRY_READY:
            if (reg->lru_head != e) {
                lru_unlink(reg, e);
                lru_push_front(reg, e);
            }
            *compiled = e->compiled;
            return REGISTRY_READY;
        case ENTRY_FETCHING:
            return REGISTRY_WAIT;
        case ENTRY_UNUSABLE:
        case ENTRY_MISSING:
            snprintf(why, whylen, "%s", e->why ? e->why : "schema cannot be used");
            return REGISTRY_UNUSABLE;
        }
    }
    if (!(e = calloc(1, sizeof *e)) || !(e->fetch = calloc(1, sizeof *e->fetch)) ||
        !(e->fetch->retry_timer = evtimer_new(reg->eb, on_retry_timer, e))) {
        if (e)
            free(e->fetch);
        free(e);
        LOG_AS(LOG_ERROR, REGISTRY_LOG, "out of memory looking up schema %" PRIu32, id);
        return REGISTRY_WAIT;   /* the next record asks again */
    }
    e->id = id;
    e->reg = reg;
    e->state = ENTRY_FETCHING;
    e->hash_next = *bucket_of(reg, id);
    *bucket_of(reg, id) = e;
    reg->stats.fetching++;
    fetch_send(e);
    return REGISTRY_WAIT;
}

enum registry_state registry_state(const struct registry *reg, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s", reg->state == REGISTRY_UP ? "" : reg->last_error);
    return reg->state;
}

const struct registry_stats *registry_stats(const struct registry *reg)
{
    return &reg->stats;
}

struct registry *registry_new(struct event_base *eb, const struct conf_registry *conf, registry_compile_fn compile,
                              registry_release_fn release, registry_update_fn update, void *update_arg, char *err,
                              size_t errlen)
{
    struct http_engine_conf hc = {
        .timeout_ms = conf->timeout_ms, .max_in_flight = 8, .allow_private_networks = 1,
        .tls_verify = conf->tls_verify, .ca_file = conf->ca_file, .order = HTTP_ORDER_KEY,
        .on_gone = HTTP_GONE_DEAD_LETTER,
    };
    struct registry *reg = calloc(1, sizeof *reg);
    size_t n;

    if (!reg || !conf->url || !(reg->base_url = strdup(conf->url))) {
        snprintf(err, errlen, conf->url ? "out of memory" : "no registry.url");
        free(reg);
        return NULL;
    }
    n = strlen(reg->base_url);
    while (n > 0 && reg->base_url[n - 1] == '/')
        reg->base_url[--n] = '\0';
    reg->eb = eb;
    reg->timeout_ms = conf->timeout_ms;
    reg->cache_max_bytes = conf->cache_max_bytes;
    reg->missing_ttl_ms = conf->missing_ttl_ms;
    reg->retry_initial_ms = conf->retry_initial_ms;
    reg->retry_max_ms = conf->retry_max_ms;
    reg->compile = compile;
    reg->release = release;
    reg->update = update;
    reg->update_arg = update_arg;
    if (conf->user) {
        struct buf cred;
        char *b64;
        buf_init(&cred, 0);
        buf_printf(&cred, "%s:%s", conf->user, conf->password ? conf->password : "");
        b64 = cred.oom ? NULL : http_base64((const unsigned char *)cred.p, cred.len);
        if (cred.p)
            OPENSSL_cleanse(cred.p, cred.len);
        buf_free(&cred);
        if (!b64 || asprintf(&reg->auth_header, "Authorization: Basic %s", b64) < 0)
            reg->auth_header = NULL;
        if (b64)
            OPENSSL_cleanse(b64, strlen(b64));
        free(b64);
        if (!reg->auth_header)
            goto oom;
    } else if (conf->token && asprintf(&reg->auth_header, "Authorization: Bearer %s", conf->token) < 0) {
        reg->auth_header = NULL;
        goto oom;
    }
    if (!(reg->eng = http_engine_new(eb, REGISTRY_LOG, &hc, err, errlen))) {
        registry_free(reg);
        return NULL;
    }
    return reg;
oom:
    snprintf(err, errlen, "out of memory");
    registry_free(reg);
    return NULL;
}

void registry_free(struct registry *reg)
{
    if (!reg)
        return;
    /* The engine first: it frees the requests on the wire without calling back. */
    http_engine_free(reg->eng);
    for (size_t b = 0; b < REGISTRY_BUCKETS; b++) {
        struct entry *e = reg->buckets[b];
        while (e) {
            struct entry *next = e->hash_next;
            if (e->fetch)
                e->fetch->req = NULL;
            if (e->compiled && reg->release)
                reg->release(e->compiled);
            fetch_free(e->fetch);
            free(e->why);
            free(e);
            e = next;
        }
    }
    if (reg->auth_header)
        OPENSSL_cleanse(reg->auth_header, strlen(reg->auth_header));
    free(reg->auth_header);
    free(reg->base_url);
    free(reg);
}
