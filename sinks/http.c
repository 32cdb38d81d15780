/* The http sink: calls a SaaS API the way its documentation asks. method, url, headers and
 * body are templates over the record (template.h): fields by JSON path, percent-encoded where
 * they land in the URL, JSON values where they land in the body. Without $each in the body,
 * each record is one request (rendered when the record arrives, so a record the template
 * cannot render is dead-lettered at once with the reason); with {"$each": ...} somewhere in the
 * body, one request carries a whole batch (batch.max_records bounds it), and several records
 * of one key in a batch collapse to the last (an upsert touches a row once).
 *
 * Authentication: a bearer token, HTTP Basic, any header, or OAuth2 client credentials (the
 * engine fetches the token, caches it until it expires and fetches it again once on a 401).
 * Tombstones are skipped, sent through the same templates, or sent as a DELETE to delete_url.
 * Delivery is at least once; {id} ("<sink>:<topic>:<partition>:<offset>", or
 * "...:<first>-<last>" for a batch, which the router re-sends with the same offsets after a
 * restart: SINK_F_STABLE_BATCHES) and the optional idempotency_header let an API that supports
 * idempotency keys drop the repeats. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "http_engine.h"
#include "template.h"

enum http_tombstones { TOMB_SKIP, TOMB_SEND, TOMB_DELETE };
enum http_auth_type { AUTH_NONE, AUTH_BEARER, AUTH_BASIC, AUTH_HEADER, AUTH_OAUTH2 };

static const char *const tombstone_modes[] = { "skip", "send", "delete", NULL };
static const char *const auth_types[] = { "none", "bearer", "basic", "header", "oauth2", NULL };
static const char *const client_auths[] = { "basic", "post", NULL };

/* Fields a template may use when it is rendered once for a whole batch. */
#define BATCH_FIELDS (TPL_F_BATCH | TPL_F_ID)

struct header_tpl {
    char *name;
    struct tpl *value;
};

struct http_sink {
    struct http_sink_base base;
    char *method;
    char *url;
    json_t *headers;
    json_t *body;
    char *content_type;
    int tombstones;
    char *delete_method;
    char *delete_url;
    char *idempotency_header;
    int collapse_keys;
    struct {
        int type;
        char *token;
        char *username, *password;
        char *header, *value;
        char *token_url, *client_id, *client_secret, *scope, *audience;
        int client_auth;
    } auth;
    /* compiled by check (or start) */
    int compiled;
    struct tpl *method_t, *url_t, *delete_method_t, *delete_url_t;
    struct header_tpl *header_t;
    size_t nheader_t;
    struct tpl_json *body_t;
    int batch_mode;
    /* made by start */
    char *auth_line;            /* secret */
    struct http_engine *eng;
    struct http_attempt *attempts;
};

/* A record, rendered. */
struct http_prep {
    struct http_rec http;       /* first: the engine's per-record progress */
    char *method, *url;         /* per-record mode */
    char *body;                 /* per-record: the body; batch mode: this record's element */
    size_t body_len;
    char **headers;             /* rendered "Name: value" lines */
    size_t nheaders;
    int skipped;                /* a tombstone left out */
};

#define H(field) offsetof(struct http_sink, field)

static const struct cfg_opt http_auth_opts[] = {
    CFG_ENUM("type", "\"none\"", auth_types, H(auth.type),
             "none, bearer (token), basic (username, password), header (header, value), "
             "oauth2 (client credentials: token_url, client_id, client_secret)"),
    { .name = "token", .type = CFG_T_STR, .offset = H(auth.token), .flags = CFG_SECRET,
      .help = "bearer: the token (use \"${NAME}\")" },
    CFG_STR("username", NULL, H(auth.username), "basic: the user name"),
    { .name = "password", .type = CFG_T_STR, .offset = H(auth.password), .flags = CFG_SECRET,
      .help = "basic: the password (use \"${NAME}\")" },
    CFG_STR("header", NULL, H(auth.header), "header: the header's name (X-Api-Key, ...)"),
    { .name = "value", .type = CFG_T_STR, .offset = H(auth.value), .flags = CFG_SECRET,
      .help = "header: its value (use \"${NAME}\")" },
    CFG_STR("token_url", NULL, H(auth.token_url), "oauth2: the token endpoint"),
    CFG_STR("client_id", NULL, H(auth.client_id), "oauth2: the client id"),
    { .name = "client_secret", .type = CFG_T_STR, .offset = H(auth.client_secret), .flags = CFG_SECRET,
      .help = "oauth2: the client secret (use \"${NAME}\")" },
    CFG_STR("scope", NULL, H(auth.scope), "oauth2: scope to ask for (optional)"),
    CFG_STR("audience", NULL, H(auth.audience), "oauth2: audience to ask for (optional; Auth0 and others)"),
    CFG_ENUM("client_auth", "\"basic\"", client_auths, H(auth.client_auth),
             "oauth2: send the client id and secret as HTTP Basic (\"basic\") or in the form (\"post\")"),
    CFG_END
};

static const struct cfg_opt http_opts[] = {
    CFG_STR("method", "\"POST\"", H(method), "HTTP method, a template (\"PATCH\", \"{$.op}\")"),
    { .name = "url", .type = CFG_T_STR, .offset = H(url), .flags = CFG_REQUIRED,
      .help = "URL template; placeholders are percent-encoded (https://api.example.com/contacts/{$.id})" },
    CFG_JSON("headers", H(headers), "Extra headers, an object of name: template"),
    CFG_JSON("body", H(body),
             "JSON template of the body; {\"$each\": T} inside it makes one request per batch "
             "(default: \"{$}\", the record's value; none for GET, HEAD and DELETE)"),
    CFG_STR("content_type", "\"application/json\"", H(content_type), "Content-Type of the body"),
    CFG_ENUM("tombstones", "\"skip\"", tombstone_modes, H(tombstones),
             "A record with a null value: \"skip\" it, \"send\" it through the templates, or "
             "\"delete\": delete_method to delete_url"),
    CFG_STR("delete_method", "\"DELETE\"", H(delete_method), "tombstones \"delete\": the method, a template"),
    CFG_STR("delete_url", NULL, H(delete_url), "tombstones \"delete\": the URL template"),
    CFG_STR("idempotency_header", NULL, H(idempotency_header),
            "Send the record's (or batch's) stable id in this header (Idempotency-Key, ...)"),
    CFG_BOOL("collapse_keys", "true", H(collapse_keys),
             "With $each: several records of one key in a batch are sent once, the last one"),
    CFG_SECTION("auth", http_auth_opts, "How to authenticate"),
    HTTP_ENGINE_OPTS,
    CFG_END
};

#undef H

/* ---- compiling ---- */

static void http_uncompile(struct http_sink *hs)
{
    tpl_free(hs->method_t);
    tpl_free(hs->url_t);
    tpl_free(hs->delete_method_t);
    tpl_free(hs->delete_url_t);
    hs->method_t = hs->url_t = hs->delete_method_t = hs->delete_url_t = NULL;
    for (size_t i = 0; i < hs->nheader_t; i++) {
        free(hs->header_t[i].name);
        tpl_free(hs->header_t[i].value);
    }
    free(hs->header_t);
    hs->header_t = NULL;
    hs->nheader_t = 0;
    tpl_json_free(hs->body_t);
    hs->body_t = NULL;
    hs->compiled = 0;
}

static int header_name_valid(const char *name)
{
    if (!*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *p))
            return 0;
    return 1;
}

/* The URL template with each placeholder replaced by "x", to check its scheme and host. */
static char *url_probe(const char *tmpl)
{
    struct buf b = { 0 };

    for (const char *p = tmpl; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            buf_add(&b, p, 1);
            p += 2;
        } else if (p[0] == '{' && strchr(p, '}')) {
            buf_add(&b, "x", 1);
            p = strchr(p, '}') + 1;
        } else {
            buf_add(&b, p++, 1);
        }
    }
    return buf_steal(&b, NULL);
}

static int compile_str(const char *text, struct tpl **out, char *err, size_t errlen)
{
    char terr[512];

    if (!(*out = tpl_compile(text, terr, sizeof terr))) {
        snprintf(err, errlen, "%s", terr);
        return -1;
    }
    return 0;
}

static int method_is_bodyless(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 || strcmp(method, "DELETE") == 0;
}

static int http_compile(struct http_sink *hs, char *err, size_t errlen, const char **key)
{
    const char *name;
    char *probe;
    json_t *v;
    int rc;

    http_uncompile(hs);
    *key = "method";
    if (compile_str(hs->method, &hs->method_t, err, errlen) != 0)
        return -1;
    *key = "url";
    if (compile_str(hs->url, &hs->url_t, err, errlen) != 0)
        return -1;
    if (!(probe = url_probe(hs->url))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rc = http_engine_check_url(&hs->base.http, probe, "url", err, errlen);
    free(probe);
    if (rc != 0)
        return -1;
    *key = "body";
    if (hs->body || !(tpl_fields(hs->method_t) == 0 && method_is_bodyless(hs->method))) {
        json_t *def = hs->body ? NULL : json_string("{$}");
        char terr[512];
        hs->body_t = tpl_json_compile(hs->body ? hs->body : def, terr, sizeof terr);
        json_decref(def);
        if (!hs->body_t) {
            snprintf(err, errlen, "%s", terr);
            return -1;
        }
        hs->batch_mode = tpl_json_has_each(hs->body_t);
    }
    *key = "headers";
    if (hs->headers) {
        if (!json_is_object(hs->headers)) {
            snprintf(err, errlen, "expected an object of \"Header-Name\": \"template\" strings");
            return -1;
        }
        if (!(hs->header_t = calloc(json_object_size(hs->headers) + 1, sizeof *hs->header_t))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        json_object_foreach(hs->headers, name, v) {
            struct header_tpl *h = &hs->header_t[hs->nheader_t];
            if (!header_name_valid(name)) {
                snprintf(err, errlen, "\"%.100s\" is not a valid header name", name);
                return -1;
            }
            if (!json_is_string(v)) {
                snprintf(err, errlen, "header %.100s: expected a string", name);
                return -1;
            }
            if (!(h->name = strdup(name)) || compile_str(json_string_value(v), &h->value, err, errlen) != 0) {
                if (!h->name)
                    snprintf(err, errlen, "out of memory");
                else
                    hs->nheader_t++;
                return -1;
            }
            hs->nheader_t++;
            if (hs->batch_mode && (tpl_fields(h->value) & ~BATCH_FIELDS)) {
                snprintf(err, errlen, "header %.100s: with $each in the body one request carries a batch, so "
                         "headers may only use {topic}, {partition} and {id}", name);
                return -1;
            }
        }
    }
    if (hs->batch_mode) {
        if (tpl_fields(hs->method_t) & ~BATCH_FIELDS) {
            *key = "method";
            snprintf(err, errlen, "with $each in the body one request carries a batch: the method may only use "
                     "{topic}, {partition} and {id}");
            return -1;
        }
        if (tpl_fields(hs->url_t) & ~BATCH_FIELDS) {
            *key = "url";
            snprintf(err, errlen, "with $each in the body one request carries a batch: the url may only use "
                     "{topic}, {partition} and {id}");
            return -1;
        }
        if (tpl_json_outer_fields(hs->body_t) & ~BATCH_FIELDS) {
            *key = "body";
            snprintf(err, errlen, "outside $each the body is rendered once per batch: use record fields inside "
                     "the $each template only ({topic}, {partition} and {id} are allowed outside)");
            return -1;
        }
    }
    if (hs->tombstones == TOMB_DELETE) {
        *key = "delete_url";
        if (hs->batch_mode) {
            *key = "tombstones";
            snprintf(err, errlen, "\"delete\" sends one request per tombstone, which a body with $each "
                     "(one request per batch) cannot do: use \"skip\" or \"send\"");
            return -1;
        }
        if (!hs->delete_url) {
            snprintf(err, errlen, "tombstones \"delete\" needs delete_url");
            return -1;
        }
        if (compile_str(hs->delete_url, &hs->delete_url_t, err, errlen) != 0)
            return -1;
        if (!(probe = url_probe(hs->delete_url))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        rc = http_engine_check_url(&hs->base.http, probe, "delete_url", err, errlen);
        free(probe);
        if (rc != 0)
            return -1;
        *key = "delete_method";
        if (compile_str(hs->delete_method, &hs->delete_method_t, err, errlen) != 0)
            return -1;
    }
    if (hs->idempotency_header && !header_name_valid(hs->idempotency_header)) {
        *key = "idempotency_header";
        snprintf(err, errlen, "not a valid header name");
        return -1;
    }
    hs->compiled = 1;
    return 0;
}

static int http_check_auth(struct http_sink *hs, char *err, size_t errlen)
{
    switch (hs->auth.type) {
    case AUTH_BEARER:
        if (!hs->auth.token || !hs->auth.token[0]) {
            snprintf(err, errlen, "type bearer needs \"token\"");
            return -1;
        }
        if (strpbrk(hs->auth.token, "\r\n")) {
            snprintf(err, errlen, "token holds a line break");
            return -1;
        }
        return 0;
    case AUTH_BASIC:
        if (!hs->auth.username || !hs->auth.password) {
            snprintf(err, errlen, "type basic needs \"username\" and \"password\"");
            return -1;
        }
        return 0;
    case AUTH_HEADER:
        if (!hs->auth.header || !header_name_valid(hs->auth.header) || !hs->auth.value) {
            snprintf(err, errlen, "type header needs \"header\" (a header name) and \"value\"");
            return -1;
        }
        if (strpbrk(hs->auth.value, "\r\n")) {
            snprintf(err, errlen, "value holds a line break");
            return -1;
        }
        return 0;
    case AUTH_OAUTH2:
        if (!hs->auth.token_url || !hs->auth.client_id || !hs->auth.client_secret) {
            snprintf(err, errlen, "type oauth2 needs \"token_url\", \"client_id\" and \"client_secret\"");
            return -1;
        }
        return http_engine_check_url(&hs->base.http, hs->auth.token_url, "token_url", err, errlen);
    default:
        return 0;
    }
}

static int http_warn(struct sink *sk, char *msg, size_t msglen, const char **key)
{
    struct http_sink *hs = (struct http_sink *)sk;
    char *probe = url_probe(hs->url);   /* the template with sample values: its host is real */
    int warn = probe && http_engine_url_warning(&hs->base.http, probe, "url", msg, msglen);

    free(probe);
    *key = "url";
    return warn;
}

static int http_check(struct sink *sk, struct sink_check *c)
{
    struct http_sink *hs = (struct http_sink *)sk;
    const char *key = NULL;
    char err[512];

    /* The templates hang together (a body with $each limits the headers): their first problem,
     * and the authentication's apart. */
    if (http_compile(hs, err, sizeof err, &key) != 0)
        sink_check_problem(c, key, "%s", err);
    if (http_check_auth(hs, err, sizeof err) != 0)
        sink_check_problem(c, "auth", "%s", err);
    if (c->problems)
        return -1;
    /* A batch's id names its offsets: it must cover the same ones when re-sent. */
    if (hs->batch_mode)
        sk->flags |= SINK_F_STABLE_BATCHES;
    return 0;
}

/* ---- records ---- */

static void prep_free(struct http_prep *p)
{
    if (!p)
        return;
    free(p->method);
    free(p->url);
    free(p->body);
    for (size_t i = 0; i < p->nheaders; i++)
        free(p->headers[i]);
    free(p->headers);
    free(p);
}

static int method_valid(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 20)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((m[i] >= 'A' && m[i] <= 'Z') || (m[i] >= 'a' && m[i] <= 'z')))
            return 0;
    return 1;
}

static char *render_str(const struct tpl *t, const struct tpl_record *rec, enum tpl_escape esc, const char *what,
                        char *err, size_t errlen)
{
    struct buf b = { 0 };
    char terr[512];

    if (tpl_render(t, rec, esc, &b, terr, sizeof terr) != 0) {
        snprintf(err, errlen, "%s: %s", what, terr);
        buf_free(&b);
        return NULL;
    }
    {
        char *text = buf_steal(&b, NULL);
        if (!text)
            snprintf(err, errlen, "out of memory");
        return text;
    }
}

/* Renders method, url and headers over @p rec into @p p (per-record mode, or per batch). */
static int render_request(struct http_sink *hs, const struct tpl_record *rec, int as_delete,
                          struct http_prep *p, char *err, size_t errlen)
{
    if (!(p->method = render_str(as_delete ? hs->delete_method_t : hs->method_t, rec, TPL_TEXT, "method", err, errlen)))
        return -1;
    if (!method_valid(p->method)) {
        snprintf(err, errlen, "method: \"%.40s\" is not an HTTP method", p->method);
        return -1;
    }
    if (!(p->url = render_str(as_delete ? hs->delete_url_t : hs->url_t, rec, TPL_URL, "url", err, errlen)))
        return -1;
    if (hs->nheader_t && !(p->headers = calloc(hs->nheader_t, sizeof *p->headers))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < hs->nheader_t; i++) {
        struct buf b = { 0 };
        char terr[512];
        buf_printf(&b, "%s: ", hs->header_t[i].name);
        if (tpl_render(hs->header_t[i].value, rec, TPL_HEADER, &b, terr, sizeof terr) != 0) {
            snprintf(err, errlen, "header %s: %s", hs->header_t[i].name, terr);
            buf_free(&b);
            return -1;
        }
        if (!(p->headers[i] = buf_steal(&b, NULL))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        p->nheaders++;
    }
    return 0;
}

static int http_prepare(struct sink *sk, struct sink_record *rec, char *err, size_t errlen)
{
    struct http_sink *hs = (struct http_sink *)sk;
    struct http_prep *p = calloc(1, sizeof *p);
    struct buf body = { 0 };
    char id[512], terr[512];
    struct tpl_record tr = {
        .topic = rec->topic, .partition = rec->partition, .offset = rec->offset, .key = rec->key,
        .key_len = rec->key_len, .timestamp_ms = rec->timestamp_ms, .doc = rec->doc, .id = id,
    };
    int tomb = rec->value == NULL;

    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->http.key_hash = http_key_hash(rec->key, rec->key_len);
    snprintf(id, sizeof id, "%s:%s:%" PRId32 ":%" PRId64, sk->name, rec->topic, rec->partition, rec->offset);
    if (tomb && hs->tombstones == TOMB_SKIP) {
        p->skipped = 1;
        p->http.state = HTTP_REC_DONE;
        goto done;
    }
    if (!hs->batch_mode && render_request(hs, &tr, tomb && hs->tombstones == TOMB_DELETE, p, err, errlen) != 0)
        goto fail;
    if (hs->body_t && !(tomb && hs->tombstones == TOMB_DELETE)) {
        if (tpl_json_render(hs->body_t, &tr, &body, terr, sizeof terr) != 0) {
            snprintf(err, errlen, "%s", terr);
            buf_free(&body);
            goto fail;
        }
        if (!(p->body = buf_steal(&body, &p->body_len))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
done:
    rec->prepared = p;
    rec->prepared_len = p->body_len + (p->url ? strlen(p->url) : 0) + 1;
    return 0;
fail:
    prep_free(p);
    return -1;
}

static void http_release(struct sink *sk, struct sink_record *rec)
{
    (void)sk;
    prep_free(rec->prepared);
    rec->prepared = NULL;
}

/* ---- requests ---- */

static struct http_request *http_request_build(struct http_sink *hs, const char *method, const char *url,
                                               char *body, size_t body_len, char **headers, size_t nheaders,
                                               const char *id, http_done_fn done, void *arg)
{
    struct http_request *req = http_request_new(method, url, done, arg);
    struct buf line = { 0 };
    int has_ct = 0;

    if (!req) {
        free(body);
        return NULL;
    }
    if (body)
        http_request_body(req, body, body_len);
    if (http_request_set_id(req, id) != 0)
        goto fail;
    for (size_t i = 0; i < nheaders; i++) {
        if (strncasecmp(headers[i], "content-type:", 13) == 0)
            has_ct = 1;
        if (http_request_header(req, headers[i]) != 0)
            goto fail;
    }
    if (body && !has_ct) {
        buf_printf(&line, "Content-Type: %s", hs->content_type);
        if (line.oom || http_request_header(req, line.p) != 0)
            goto fail;
        buf_free(&line);
    }
    if (hs->idempotency_header) {
        buf_printf(&line, "%s: %s", hs->idempotency_header, id);
        if (line.oom || http_request_header(req, line.p) != 0)
            goto fail;
        buf_free(&line);
    }
    if (hs->auth_line && http_request_header(req, hs->auth_line) != 0)
        goto fail;
    return req;
fail:
    buf_free(&line);
    http_request_free(req);
    return NULL;
}

static struct http_request *http_make_one(void *ctx, struct sink_batch *b, size_t i, http_done_fn done, void *arg)
{
    struct http_sink *hs = ctx;
    const struct sink_record *rec = &b->records[i];
    const struct http_prep *p = rec->prepared;
    char id[512], *body = NULL;

    snprintf(id, sizeof id, "%s:%s:%" PRId32 ":%" PRId64, hs->base.super.name, rec->topic, rec->partition, rec->offset);
    if (p->body && !(body = malloc(p->body_len + 1)))
        return NULL;
    if (body)
        memcpy(body, p->body, p->body_len + 1);
    return http_request_build(hs, p->method, p->url, body, p->body_len, p->headers, p->nheaders, id, done, arg);
}

/* 1 when a later record of the batch has the same key (the earlier one is left out). */
static int superseded(struct sink_batch *b, size_t i, uint32_t *slots, size_t nslots)
{
    const struct sink_record *rec = &b->records[i];
    uint32_t h = ((const struct http_prep *)rec->prepared)->http.key_hash;
    size_t mask = nslots - 1, s = h & mask;

    if (!rec->key)
        return 0;   /* no entity to collapse on */
    while (slots[s]) {
        const struct sink_record *o = &b->records[slots[s] - 1];
        if (o->key_len == rec->key_len && memcmp(o->key, rec->key, rec->key_len) == 0)
            return 1;
        s = (s + 1) & mask;
    }
    slots[s] = (uint32_t)(i + 1);
    return 0;
}

static void http_write_batch(struct http_sink *hs, struct sink_batch *b)
{
    const char **elems = calloc(b->count ? b->count : 1, sizeof *elems);
    size_t *lens = calloc(b->count ? b->count : 1, sizeof *lens), n = 0, nslots = 16;
    uint8_t *take = calloc(b->count ? b->count : 1, 1);
    uint32_t *slots = NULL;
    struct http_prep outer = { 0 };
    struct http_request *req = NULL;
    struct buf body = { 0 };
    char id[512], err[1024], *text;
    size_t len;
    struct tpl_record tr = { .topic = b->topic, .partition = b->partition, .offset = -1, .timestamp_ms = -1, .id = id };

    while (nslots < 2 * b->count)
        nslots *= 2;
    if (!elems || !lens || !take || !(slots = calloc(nslots, sizeof *slots))) {
        sink_batch_done(b, SINK_RETRY, "out of memory");
        goto out;
    }
    for (size_t k = b->count; k-- > 0;) {
        const struct http_prep *p = b->records[k].prepared;
        take[k] = !p->skipped && !(hs->collapse_keys && superseded(b, k, slots, nslots));
    }
    for (size_t k = 0; k < b->count; k++) {
        const struct http_prep *p = b->records[k].prepared;
        if (take[k]) {
            elems[n] = p->body;
            lens[n++] = p->body_len;
        }
    }
    if (n == 0) {
        sink_batch_note(b, "nothing to send: %zu tombstone(s) skipped", b->count);
        sink_batch_done(b, SINK_OK, NULL);
        goto out;
    }
    snprintf(id, sizeof id, "%s:%s:%" PRId32 ":%" PRId64 "-%" PRId64, hs->base.super.name, b->topic, b->partition,
             b->records[0].offset, b->records[b->count - 1].offset);
    err[0] = '\0';
    if (tpl_json_render_batch(hs->body_t, &tr, elems, lens, n, &body, err, sizeof err) != 0 ||
        render_request(hs, &tr, 0, &outer, err, sizeof err) != 0) {
        sink_batch_done(b, SINK_FAIL, err);
        goto out;
    }
    if (!(text = buf_steal(&body, &len)) ||
        !(req = http_request_build(hs, outer.method, outer.url, text, len, outer.headers, outer.nheaders, id, NULL, NULL))) {
        sink_batch_done(b, SINK_RETRY, "out of memory");
        goto out;
    }
    http_batch_send(hs->eng, b, req, &hs->attempts);
out:
    buf_free(&body);
    free(outer.method);
    free(outer.url);
    for (size_t i = 0; i < outer.nheaders; i++)
        free(outer.headers[i]);
    free(outer.headers);
    free(elems);
    free(lens);
    free(take);
    free(slots);
}

static void http_write(struct sink *sk, struct sink_batch *b)
{
    struct http_sink *hs = (struct http_sink *)sk;

    if (hs->batch_mode)
        http_write_batch(hs, b);
    else
        http_fanout_start(hs->eng, b, http_make_one, hs, &hs->attempts);
}

/* ---- life ---- */

static int http_start(struct sink *sk, char *err, size_t errlen)
{
    struct http_sink *hs = (struct http_sink *)sk;
    const char *key = NULL;
    struct buf line = { 0 }, cred = { 0 };
    char *b64 = NULL;

    if (!hs->compiled) {   /* not checked by the configuration's loader (a test's own sink) */
        if (http_compile(hs, err, errlen, &key) != 0 || http_check_auth(hs, err, errlen) != 0)
            return -1;
        if (hs->batch_mode)
            sk->flags |= SINK_F_STABLE_BATCHES;
    }
    switch (hs->auth.type) {
    case AUTH_BEARER:
        buf_printf(&line, "Authorization: Bearer %s", hs->auth.token);
        break;
    case AUTH_BASIC:
        buf_printf(&cred, "%s:%s", hs->auth.username, hs->auth.password);
        if (!cred.oom && (b64 = http_base64((unsigned char *)cred.p, cred.len)))
            buf_printf(&line, "Authorization: Basic %s", b64);
        else
            line.oom = 1;
        break;
    case AUTH_HEADER:
        buf_printf(&line, "%s: %s", hs->auth.header, hs->auth.value);
        break;
    default:
        break;
    }
    if (cred.p)
        OPENSSL_cleanse(cred.p, cred.len);
    buf_free(&cred);
    if (b64)
        OPENSSL_cleanse(b64, strlen(b64));
    free(b64);
    if (line.oom) {
        buf_free(&line);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    hs->auth_line = line.p;   /* NULL when there is no static auth header */
    if (!(hs->eng = http_engine_for_sink(sk, &hs->base.http, err, errlen)))
        return -1;
    if (hs->auth.type == AUTH_OAUTH2) {
        struct http_oauth_conf oc = {
            .token_url = hs->auth.token_url, .client_id = hs->auth.client_id,
            .client_secret = hs->auth.client_secret, .scope = hs->auth.scope, .audience = hs->auth.audience,
            .client_auth_post = hs->auth.client_auth == 1,
        };
        if (http_engine_set_oauth(hs->eng, &oc, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int http_ready(struct sink *sk, char *why, size_t whylen)
{
    struct http_sink *hs = (struct http_sink *)sk;
    return hs->eng ? http_engine_ready(hs->eng, why, whylen) : 0;
}

static void http_stop(struct sink *sk)
{
    struct http_sink *hs = (struct http_sink *)sk;

    http_engine_free(hs->eng);      /* no callback after this */
    hs->eng = NULL;
    http_attempts_free(&hs->attempts);
}

static void http_destroy(struct sink *sk)
{
    struct http_sink *hs = (struct http_sink *)sk;

    http_stop(sk);
    http_uncompile(hs);
    if (hs->auth_line) {
        OPENSSL_cleanse(hs->auth_line, strlen(hs->auth_line));
        free(hs->auth_line);
        hs->auth_line = NULL;
    }
}

const struct sink_ops sink_http_ops = {
    .type = "http",
    .size = sizeof(struct http_sink),
    .opts = http_opts,
    .flags = SINK_F_JSON,
    .help = "Calls a SaaS HTTP API per record or per batch, with templates, auth and a rate limit, at least once",
    .check = http_check,
    .warn = http_warn,
    .start = http_start,
    .prepare = http_prepare,
    .release = http_release,
    .write = http_write,
    .stop = http_stop,
    .destroy = http_destroy,
    .ready = http_ready,
};
