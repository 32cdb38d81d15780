/* schema-registry: a Confluent-compatible Schema Registry for tests, on libevent's evhttp. It
 * serves the REST API the real serializers and deserializers call, keeps its state in memory
 * (optionally loaded from and dumped to a file, so fixtures keep their exact ids), and answers
 * the way a test asks: ok, slowly, never, by closing the connection, or with an error status.
 *
 * Usage: schema-registry [--port N] [--port-file PATH] [--out FILE] [--control-token TOKEN]
 *                        [--user U --password P] [--bearer T] [--load FILE] [--dump FILE]
 *                        [--mode JSON]
 *
 *   --port, --port-file, --out, --control-token, --mode: as tools/http-receiver
 *   --user U --password P  registry requests need "Authorization: Basic base64(U:P)"
 *   --bearer T             registry requests need "Authorization: Bearer T" (with --user too,
 *                          either is accepted); otherwise 401 {"error_code":401,...}
 *   --load FILE            start from a state dump (below)
 *   --dump FILE            write the state dump there after every new registration and at exit
 *
 * It prints "PORT=<port>" on stdout once it listens, and exits 0 on SIGTERM or SIGINT.
 *
 * Registry API: lib/schema_api.h (this tool adds the transport, the modes, the request log,
 * authentication ({"error_code":401,...}) and the test control below).
 *
 * State dump (--load, --dump, GET /_dump): see lib/schema_store.h.
 *
 * Test control (need the --control-token when one is given; never recorded in --out):
 *   POST /_control {"mode":"ok"} | {"mode":"slow","delay_ms":N} | {"mode":"hang"} |
 *                  {"mode":"down"} | {"mode":"status","status":503,"retry_after":2}
 *                  each with an optional "count": n requests, then back to ok (-1 = until changed)
 *     hang holds requests unanswered until the mode changes (they are then served the new
 *     mode's way; one whose client has gone is logged unanswered); at most 1024 are held or
 *     delayed at once, more get 503; down closes each request's connection at once without
 *     an answer.
 *   GET /_control   the mode;   GET /_stats   {"requests":N,"by_path":{"/schemas/ids/1":2,...}}
 *   GET /_dump      the state dump
 *
 * --out gets one NDJSON line per registry request when it is answered (or given up):
 *   {"seq":N,"method":"GET","path":"/schemas/ids/1","query":"subject=x","auth":true,
 *    "status":200}    "query" only when there is one; "auth": an Authorization header came;
 *   "status": null when the request was never answered (hang, down, client gone). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "lib/schema_api.h"
#include "lib/schema_store.h"
#include "tools/common/tool_http.h"
#include "tools/common/tool_util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/evp.h>

#define BODY_MAX (8L * 1024 * 1024)     /* a register body; descriptors stay far below */
#define HEADERS_MAX (64L * 1024)
#define STATS_PATHS_MAX 1024
#define PENDING_MAX 1024                 /* requests held or delayed at once; more get 503 */             /* distinct paths counted; the rest under "(other)" */
#define RETRY_AFTER_MAX 32

enum mode_kind { MODE_OK, MODE_SLOW, MODE_HANG, MODE_DOWN, MODE_STATUS };

static const char *const mode_names[] = { "ok", "slow", "hang", "down", "status" };

struct mode {
    enum mode_kind kind;
    int status;
    long delay_ms;
    char retry_after[RETRY_AFTER_MAX];
    long count;                          /* requests left; -1 = until changed */
};

struct registry;

/* A request answered later (slow), not yet (hang) or never (down). */
struct pending {
    TAILQ_ENTRY(pending) link;
    struct registry *reg;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *timer;
    json_t *rec;
    int held;
};

TAILQ_HEAD(pending_list, pending);

struct registry {
    struct event_base *eb;
    struct evhttp *http;
    FILE *out;
    const char *control_token;
    char *basic_auth;                    /* "Basic ..." expected, or NULL */
    char *bearer_auth;                   /* "Bearer ..." expected, or NULL */
    struct schema_store state;
    const char *dump_path;               /* written after each change, or NULL */
    json_t *by_path;                     /* request counts per path */
    unsigned long requests;
    unsigned long npending;
    struct mode mode;
    struct pending_list pending;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: schema-registry [--port N] [--port-file PATH] [--out FILE] "
                 "[--control-token T] [--user U --password P] [--bearer T] [--load FILE] "
                 "[--dump FILE] [--mode JSON]\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Modes */

static int mode_parse(const json_t *j, struct mode *m, char *err, size_t errlen)
{
    const char *key, *name;
    json_t *v;
    size_t n;

    memset(m, 0, sizeof *m);
    m->count = -1;
    v = json_object_get(j, "mode");
    if (!json_is_object(j) || !json_is_string(v)) {
        snprintf(err, errlen, "want {\"mode\": ok|slow|hang|down|status, ...}");
        return -1;
    }
    name = json_string_value(v);
    for (n = 0; n < sizeof mode_names / sizeof mode_names[0]; n++)
        if (strcmp(name, mode_names[n]) == 0)
            break;
    if (n == sizeof mode_names / sizeof mode_names[0]) {
        snprintf(err, errlen, "unknown mode \"%.64s\"", name);
        return -1;
    }
    m->kind = (enum mode_kind)n;
    m->status = m->kind == MODE_STATUS ? 503 : 200;
    m->delay_ms = m->kind == MODE_SLOW ? 1000 : 0;
    json_object_foreach((json_t *)j, key, v) {
        if (strcmp(key, "mode") == 0)
            continue;
        if (strcmp(key, "count") == 0 && json_is_integer(v) &&
            (json_integer_value(v) >= 1 || json_integer_value(v) == -1)) {
            m->count = (long)json_integer_value(v);
        } else if (strcmp(key, "status") == 0 && m->kind == MODE_STATUS && json_is_integer(v) &&
                   json_integer_value(v) >= 100 && json_integer_value(v) <= 599) {
            m->status = (int)json_integer_value(v);
        } else if (strcmp(key, "retry_after") == 0 && m->kind == MODE_STATUS && json_is_integer(v) &&
                   json_integer_value(v) >= 0 && json_integer_value(v) <= 86400) {
            snprintf(m->retry_after, sizeof m->retry_after, "%lld", (long long)json_integer_value(v));
        } else if (strcmp(key, "delay_ms") == 0 && m->kind == MODE_SLOW && json_is_integer(v) &&
                   json_integer_value(v) >= 0 && json_integer_value(v) <= 3600000) {
            m->delay_ms = (long)json_integer_value(v);
        } else {
            snprintf(err, errlen, "key \"%.64s\" is not valid for mode %s (or out of range: count -1 "
                     "or >= 1, status 100..599, retry_after 0..86400, delay_ms 0..3600000)", key, name);
            return -1;
        }
    }
    return 0;
}

static json_t *mode_to_json(const struct mode *m)
{
    json_t *j = json_pack("{s:s, s:I}", "mode", mode_names[m->kind], "count", (json_int_t)m->count);

    if (j != NULL && m->kind == MODE_STATUS)
        json_object_set_new(j, "status", json_integer(m->status));
    if (j != NULL && m->retry_after[0] != '\0')
        json_object_set_new(j, "retry_after", json_string(m->retry_after));
    if (j != NULL && m->kind == MODE_SLOW)
        json_object_set_new(j, "delay_ms", json_integer(m->delay_ms));
    return j;
}

/* The mode for the next request; uses up one of its count. */
static struct mode mode_take(struct registry *reg)
{
    struct mode m = reg->mode;

    if (reg->mode.count > 0 && --reg->mode.count == 0)
        reg->mode = (struct mode){ .kind = MODE_OK, .status = 200, .count = -1 };
    return m;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP */

static void send_reply(struct evhttp_request *req, const struct schema_api_reply *rp, const char *retry_after)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();
    size_t len;
    char *text = schema_api_reply_text(rp, &len);

    evhttp_add_header(oh, "Content-Type", SCHEMA_API_CONTENT_TYPE);
    if (retry_after != NULL && retry_after[0] != '\0')
        evhttp_add_header(oh, "Retry-After", retry_after);
    if (buf != NULL && text != NULL)
        evbuffer_add(buf, text, len);
    evhttp_send_reply(req, rp->status, NULL, buf);
    if (buf != NULL)
        evbuffer_free(buf);
    free(text);
}

/* Writes the dump to --dump's file (atomically) when there is one; complains on stderr. */
static void state_save(const struct registry *reg)
{
    json_t *doc;
    char *text, err[512];

    if (reg->dump_path == NULL)
        return;
    doc = schema_store_dump(&reg->state);
    text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    if (text == NULL || tool_write_file_atomic(reg->dump_path, text, err, sizeof err) != 0)
        fprintf(stderr, "schema-registry: --dump %s: %s\n", reg->dump_path, text ? err : "out of memory");
    free(text);
    json_decref(doc);
}

/* Appends the request's record with its status (0: never answered), flushed at once so a test
 * reading the file sees every answered request. */
static void record_write(struct registry *reg, json_t *rec, int status)
{
    char *line;

    if (reg->out == NULL || rec == NULL)
        return;
    json_object_set_new(rec, "status", status > 0 ? json_integer(status) : json_null());
    line = json_dumps(rec, JSON_COMPACT);
    if (line == NULL || fprintf(reg->out, "%s\n", line) < 0 || fflush(reg->out) != 0)
        fprintf(stderr, "schema-registry: writing the --out file failed\n");
    free(line);
}

static int authorized(const struct registry *reg, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");

    if (reg->basic_auth == NULL && reg->bearer_auth == NULL)
        return 1;
    return h != NULL && ((reg->basic_auth != NULL && strcmp(h, reg->basic_auth) == 0) ||
                         (reg->bearer_auth != NULL && strcmp(h, reg->bearer_auth) == 0));
}

/* Answers one registry request now: the injected status, 401, or the registry's own answer. */
static void serve(struct registry *reg, struct evhttp_request *req, json_t *rec, const struct mode *m)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    struct schema_api_reply rp = { 0 };

    if (m->kind == MODE_STATUS)
        schema_api_error(&rp, m->status, m->status == 401 ? 401 : m->status * 100 + 1,
                         "status %d set by /_control", m->status);
    else if (!authorized(reg, req))
        schema_api_error(&rp, 401, 401, "Unauthorized");
    else
        schema_api_answer(&reg->state, tool_http_method_name(evhttp_request_get_command(req)), path ? path : "/",
                          uri ? evhttp_uri_get_query(uri) : NULL, body, len, &rp);
    if (rp.changed)
        state_save(reg);
    record_write(reg, rec, rp.status);
    send_reply(req, &rp, m->kind == MODE_STATUS ? m->retry_after : NULL);
    schema_api_reply_clear(&rp);
}

static void pending_free(struct pending *p)
{
    TAILQ_REMOVE(&p->reg->pending, p, link);
    p->reg->npending--;
    if (p->timer != NULL)
        event_free(p->timer);
    json_decref(p->rec);
    free(p);
}

/* A connection is going away: its requests we still hold are recorded unanswered. One the
 * server already detached from the connection (client EOF) belongs to nobody: free it. */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct registry *reg = arg;
    struct pending *p, *next;

    for (p = TAILQ_FIRST(&reg->pending); p != NULL; p = next) {
        next = TAILQ_NEXT(p, link);
        if (p->evcon != evcon)
            continue;
        record_write(reg, p->rec, 0);
        if (evhttp_request_get_connection(p->req) == NULL)
            evhttp_request_free(p->req);
        pending_free(p);
    }
}

/* "down": the connection is freed from a timer, outside evhttp's own callbacks; freeing it
 * calls on_conn_close, which records the request unanswered and frees p. */
static void on_down_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;

    (void)fd;
    (void)what;
    evhttp_connection_free(p->evcon);
}

/* True when the client has closed the connection. evhttp does not read a connection while its
 * request waits for an answer, so a client that gave up on a held or slow request goes unseen
 * until we look. */
static int client_gone(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    char c;
    ssize_t n;

    if (fd < 0)
        return 1;
    n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void on_slow_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;

    if (client_gone(p->evcon)) {
        on_down_timer(fd, what, arg);
        return;
    }
    serve(p->reg, p->req, p->rec, &(struct mode){ .kind = MODE_OK });
    pending_free(p);
}

static const struct mode mode_client_gone = { .kind = MODE_DOWN, .count = -1 };

/* Answers, delays, holds or drops a request as the mode says. p is its pending entry when it
 * was held already (then the mode's count is not used again), else NULL. */
static void dispatch(struct registry *reg, struct evhttp_request *req, json_t *rec, const struct mode *m,
                     struct pending *p)
{
    struct timeval tv = { 0, 0 };

    if (p != NULL && m->kind != MODE_HANG && client_gone(p->evcon))
        m = &mode_client_gone;   /* a released request nobody waits for */
    if (m->kind == MODE_OK || m->kind == MODE_STATUS) {
        serve(reg, req, rec, m);
        if (p != NULL)
            pending_free(p);   /* frees rec */
        else
            json_decref(rec);
        return;
    }
    if (p == NULL) {
        p = reg->npending < PENDING_MAX ? calloc(1, sizeof *p) : NULL;
        if (p == NULL) {   /* too many held (or out of memory): refuse rather than grow */
            serve(reg, req, rec, &(struct mode){ .kind = MODE_STATUS, .status = 503 });
            json_decref(rec);
            return;
        }
        p->reg = reg;
        p->req = req;
        p->rec = rec;
        p->evcon = evhttp_request_get_connection(req);
        TAILQ_INSERT_TAIL(&reg->pending, p, link);
        reg->npending++;
        evhttp_connection_set_closecb(p->evcon, on_conn_close, reg);
    }
    p->held = m->kind == MODE_HANG;
    if (m->kind == MODE_HANG)
        return;
    tv.tv_sec = m->delay_ms / 1000;
    tv.tv_usec = (m->delay_ms % 1000) * 1000;
    p->timer = evtimer_new(reg->eb, m->kind == MODE_SLOW ? on_slow_timer : on_down_timer, p);
    if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
        fprintf(stderr, "schema-registry: cannot arm a timer, answering 500\n");
        dispatch(reg, req, rec, &(struct mode){ .kind = MODE_STATUS, .status = 500 }, p);
    }
}

/* After a mode change: the held requests go the new mode's way, without using its count. */
static void release_held(struct registry *reg)
{
    struct pending *p, *next;

    if (reg->mode.kind == MODE_HANG)
        return;
    for (p = TAILQ_FIRST(&reg->pending); p != NULL; p = next) {
        next = TAILQ_NEXT(p, link);
        if (p->held)
            dispatch(reg, p->req, p->rec, &reg->mode, p);
    }
}

static void on_control(struct registry *reg, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    struct schema_api_reply rp = { 0 };
    json_error_t jerr;
    json_t *doc = NULL;
    struct mode m;
    char err[512];

    if (!tool_http_control_authorized(req, reg->control_token)) {
        schema_api_error(&rp, 401, 401, "missing or wrong control token");
    } else if (strcmp(path, "/_stats") == 0 && cmd == EVHTTP_REQ_GET) {
        schema_api_json(&rp, json_pack("{s:I, s:O}", "requests", (json_int_t)reg->requests, "by_path", reg->by_path));
    } else if (strcmp(path, "/_dump") == 0 && cmd == EVHTTP_REQ_GET) {
        schema_api_json(&rp, schema_store_dump(&reg->state));
    } else if (strcmp(path, "/_control") == 0 && cmd == EVHTTP_REQ_GET) {
        schema_api_json(&rp, mode_to_json(&reg->mode));
    } else if (strcmp(path, "/_control") == 0 && cmd == EVHTTP_REQ_POST) {
        doc = json_loadb(len ? (const char *)evbuffer_pullup(in, -1) : "", len, 0, &jerr);
        if (doc == NULL)
            schema_api_error(&rp, 400, 400, "bad JSON: %s", jerr.text);
        else if (mode_parse(doc, &m, err, sizeof err) != 0)
            schema_api_error(&rp, 400, 400, "%s", err);
        else {
            reg->mode = m;
            schema_api_json(&rp, json_pack("{s:b, s:o}", "ok", 1, "mode", mode_to_json(&reg->mode)));
        }
    } else {
        schema_api_error(&rp, 404, 404, "control paths: GET/POST /_control, GET /_stats, GET /_dump");
    }
    send_reply(req, &rp, NULL);
    if (doc != NULL && rp.status == 200)
        release_held(reg);
    schema_api_reply_clear(&rp);
    json_decref(doc);
}

static void stats_count(struct registry *reg, const char *path)
{
    json_t *n = json_object_get(reg->by_path, path);

    if (n == NULL && json_object_size(reg->by_path) >= STATS_PATHS_MAX)
        path = "(other)";
    n = json_object_get(reg->by_path, path);
    json_object_set_new(reg->by_path, path, json_integer(n ? json_integer_value(n) + 1 : 1));
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct registry *reg = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct mode m;
    json_t *rec;

    if (path == NULL || path[0] == '\0')
        path = "/";
    if (strncmp(path, "/_control", 9) == 0 || strcmp(path, "/_stats") == 0 || strcmp(path, "/_dump") == 0) {
        on_control(reg, req, path);
        return;
    }
    reg->requests++;
    stats_count(reg, path);
    rec = json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)reg->requests,
                    "method", tool_http_method_name(evhttp_request_get_command(req)), "path", path);
    if (rec != NULL && query != NULL)
        json_object_set_new(rec, "query", json_string(query));
    if (rec != NULL)
        json_object_set_new(rec, "auth", json_boolean(evhttp_find_header(evhttp_request_get_input_headers(req),
                                                                         "Authorization") != NULL));
    m = mode_take(reg);
    dispatch(reg, req, rec, &m, NULL);   /* takes rec */
}

/* "Basic base64(user:password)", or NULL when out of memory. */
static char *basic_auth_header(const char *user, const char *password)
{
    size_t len = strlen(user) + 1 + strlen(password);
    char *plain = malloc(len + 1), *header = malloc(6 + 4 * ((len + 2) / 3) + 1);

    if (plain == NULL || header == NULL || len > 4096) {
        free(plain);
        free(header);
        return NULL;
    }
    memcpy(plain, user, strlen(user));
    plain[strlen(user)] = ':';
    memcpy(plain + strlen(user) + 1, password, strlen(password) + 1);
    memcpy(header, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)header + 6, (const unsigned char *)plain, (int)len);
    free(plain);
    return header;
}

int main(int argc, char **argv)
{
    struct registry reg = { 0 };
    struct tool_http_server srv = { 0 };
    const char *port_file = NULL, *out_path = NULL, *mode_arg = NULL, *load_path = NULL;
    const char *user = NULL, *password = NULL, *bearer = NULL;
    long port = 0;
    char err[512];
    int rc = 1;

    TAILQ_INIT(&reg.pending);
    reg.mode = (struct mode){ .kind = MODE_OK, .status = 200, .count = -1 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (val == NULL) {
            fprintf(stderr, "schema-registry: %s: missing value or unknown option\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--port") == 0 && tool_parse_long(val, 0, 65535, &port) == 0)
            continue;
        else if (strcmp(a, "--port-file") == 0)
            port_file = val;
        else if (strcmp(a, "--out") == 0)
            out_path = val;
        else if (strcmp(a, "--control-token") == 0)
            reg.control_token = val;
        else if (strcmp(a, "--mode") == 0)
            mode_arg = val;
        else if (strcmp(a, "--user") == 0)
            user = val;
        else if (strcmp(a, "--password") == 0)
            password = val;
        else if (strcmp(a, "--bearer") == 0)
            bearer = val;
        else if (strcmp(a, "--load") == 0)
            load_path = val;
        else if (strcmp(a, "--dump") == 0)
            reg.dump_path = val;
        else {
            fprintf(stderr, "schema-registry: %s %s: unknown option or bad value\n", a, val);
            usage(stderr);
            return 2;
        }
    }
    if ((user == NULL) != (password == NULL)) {
        fprintf(stderr, "schema-registry: --user and --password go together\n");
        return 2;
    }
    if (mode_arg != NULL) {
        json_error_t jerr;
        json_t *doc = json_loads(mode_arg, 0, &jerr);
        int bad = doc == NULL || mode_parse(doc, &reg.mode, err, sizeof err) != 0;

        if (doc == NULL)
            snprintf(err, sizeof err, "bad JSON: %s", jerr.text);
        json_decref(doc);
        if (bad) {
            fprintf(stderr, "schema-registry: --mode: %s\n", err);
            return 2;
        }
    }

    reg.by_path = json_object();
    if (user != NULL)
        reg.basic_auth = basic_auth_header(user, password);
    if (bearer != NULL && asprintf(&reg.bearer_auth, "Bearer %s", bearer) < 0)
        reg.bearer_auth = NULL;
    if (schema_store_init(&reg.state) != 0 || reg.by_path == NULL ||
        (user != NULL && reg.basic_auth == NULL) || (bearer != NULL && reg.bearer_auth == NULL)) {
        fprintf(stderr, "schema-registry: out of memory (or --user/--password over 4096 bytes)\n");
        goto out;
    }
    if (load_path != NULL && schema_store_load(&reg.state, load_path, err, sizeof err) != 0) {
        fprintf(stderr, "schema-registry: --load %s\n", err);
        goto out;
    }
    if (out_path != NULL && (reg.out = fopen(out_path, "a")) == NULL) {
        fprintf(stderr, "schema-registry: %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    state_save(&reg);
    if (tool_http_server_start(&srv, "schema-registry", port, port_file, on_request, &reg) != 0)
        goto out;
    reg.eb = srv.eb;
    reg.http = srv.http;
    evhttp_set_max_body_size(reg.http, BODY_MAX);
    evhttp_set_max_headers_size(reg.http, HEADERS_MAX);
    if (tool_http_server_run(&srv) != 0)
        goto out;
    state_save(&reg);
    rc = 0;

out:
    /* Requests still held are recorded unanswered; evhttp_free then closes their connections
     * and frees them, so drop our list first. */
    while (!TAILQ_EMPTY(&reg.pending)) {
        record_write(&reg, TAILQ_FIRST(&reg.pending)->rec, 0);
        pending_free(TAILQ_FIRST(&reg.pending));
    }
    tool_http_server_free(&srv);
    if (reg.out != NULL)
        fclose(reg.out);
    schema_store_free(&reg.state);
    json_decref(reg.by_path);
    free(reg.basic_auth);
    free(reg.bearer_auth);
    return rc;
}
