/* http-receiver: a small HTTP server for tests, on libevent's evhttp. It records every request
 * and answers the way a test asks it to: ok, an error status, 429 + Retry-After, slowly, or not
 * at all.
 *
 * Usage: http-receiver [--port N] [--port-file PATH] [--out FILE] [--control-token TOKEN]
 *                      [--mode JSON] [--token-path PATH] [--token-expires-in SECONDS]
 *
 *   --port N             port on 127.0.0.1 (default 0: the kernel picks a free one)
 *   --port-file PATH     write the port actually bound to PATH, atomically (tmp + rename)
 *   --out FILE           append one NDJSON line per request (see below), flushed per request
 *   --control-token T    /_control requests must carry "X-Control-Token: T" or
 *                        "Authorization: Bearer T" (401 otherwise)
 *   --mode JSON          the starting mode, same JSON as POST /_control (default {"mode":"ok"})
 *   --token-path PATH    an OAuth2 token endpoint at PATH: a POST there is answered 200
 *                        {"access_token":"token-N","token_type":"Bearer","expires_in":S}, N counting
 *                        from 1, whatever the mode (it uses up none of the mode's count); it is
 *                        recorded like any other request
 *   --token-expires-in S the expires_in of those tokens (default 3600; 0 leaves it out)
 *
 * It prints "PORT=<port>" on stdout once it listens, and exits 0 on SIGTERM or SIGINT.
 *
 * Every request whose path does not start with /_control is recorded, when it is answered, as
 *   {"seq":N,"method":"POST","path":"/hook","query":"a=1","headers":{"content-type":"..."},
 *    "body":"...","status":200,"received_ms":...,"answered_ms":...}
 * seq counts requests in arrival order from 1; "query" only appears when the URI has one;
 * header names are lower-cased, repeated headers joined with ", "; a body that is not UTF-8 is
 * given as "body":null plus "body_base64". A request still unanswered when the connection
 * goes away or the receiver stops is recorded with "status":null.
 *
 * Normal answer: 200 {"ok":true}. Control:
 *   POST /_control  {"mode":"ok"}
 *                   {"mode":"status","status":503,"count":5}     503 for the next 5 requests
 *                   {"mode":"retry_after","status":429,"retry_after":"2","count":3}
 *                   {"mode":"slow","delay_ms":2000,"count":-1}    answer after 2 s (a timer)
 *                   {"mode":"hang"}                               do not answer at all
 *     "count": how many requests the mode applies to before it falls back to ok; -1 (the
 *     default) means until the next change. "status" is accepted by every mode but hang
 *     (defaults: ok/slow 200, status 503, retry_after 429) and "retry_after" (string or number)
 *     by every mode but hang. A change of mode releases the requests held by "hang": they are
 *     answered the new mode's way without using up its count (if the new mode is hang again,
 *     they stay held).
 *   GET /_control        the current mode
 *   GET /_control/stats  {"requests":N,"answered":N,"pending":N}; requests counts what arrived
 *
 * Requests are never answered with sleep(): slow answers wait on an evtimer, held ones sit in
 * a list, and the loop keeps serving everyone else meanwhile. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "tools/common/tool_http.h"
#include "tools/common/tool_util.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/evp.h>

#define RETRY_AFTER_MAX 64

enum mode_kind { MODE_OK, MODE_STATUS, MODE_RETRY_AFTER, MODE_SLOW, MODE_HANG };

static const char *const mode_names[] = { "ok", "status", "retry_after", "slow", "hang" };

/* How to answer one request. */
struct answer {
    enum mode_kind kind;
    int status;
    char retry_after[RETRY_AFTER_MAX];   /* "" = no Retry-After header */
    long delay_ms;
};

struct mode {
    struct answer answer;
    long count;                          /* requests left; -1 = until changed */
};

struct receiver;

/* A request answered later (slow) or not yet (hang). */
struct pending {
    TAILQ_ENTRY(pending) link;
    struct receiver *rcv;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *timer;                 /* slow answers only */
    json_t *rec;                         /* the record to write once answered */
    struct answer answer;
    int held;                            /* waiting for a mode change (hang) */
};

TAILQ_HEAD(pending_list, pending);

struct receiver {
    struct event_base *eb;
    struct evhttp *http;
    FILE *out;
    const char *token;
    const char *token_path;          /* OAuth2 token endpoint, or NULL */
    long token_expires_in;
    unsigned long tokens_issued;
    struct mode mode;
    unsigned long requests;
    unsigned long answered;
    unsigned long npending;
    struct pending_list pending;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: http-receiver [--port N] [--port-file PATH] [--out FILE] "
                 "[--control-token TOKEN] [--mode JSON] [--token-path PATH] [--token-expires-in S]\n");
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses a mode object as POST /_control takes it; 0 on success. Unknown keys are errors, so
 * a typo in a test fails loudly instead of silently answering 200. */
static int mode_parse(const json_t *j, struct mode *m, char *err, size_t errlen)
{
    const char *key, *name;
    json_t *v;
    long n;

    if (!json_is_object(j)) {
        snprintf(err, errlen, "mode must be a JSON object");
        return -1;
    }
    memset(m, 0, sizeof *m);
    m->count = -1;
    v = json_object_get(j, "mode");
    if (!json_is_string(v)) {
        snprintf(err, errlen, "\"mode\" must be one of ok, status, retry_after, slow, hang");
        return -1;
    }
    name = json_string_value(v);
    for (n = 0; n < (long)(sizeof mode_names / sizeof mode_names[0]); n++)
        if (strcmp(name, mode_names[n]) == 0)
            break;
    if (n == (long)(sizeof mode_names / sizeof mode_names[0])) {
        snprintf(err, errlen, "unknown mode \"%.64s\"", name);
        return -1;
    }
    m->answer.kind = (enum mode_kind)n;
    m->answer.status = n == MODE_STATUS ? 503 : n == MODE_RETRY_AFTER ? 429 : 200;
    if (n == MODE_RETRY_AFTER)
        snprintf(m->answer.retry_after, sizeof m->answer.retry_after, "1");
    if (n == MODE_SLOW)
        m->answer.delay_ms = 1000;

    json_object_foreach((json_t *)j, key, v) {
        if (strcmp(key, "mode") == 0)
            continue;
        if (strcmp(key, "count") == 0) {
            if (!json_is_integer(v) || (json_integer_value(v) < 1 && json_integer_value(v) != -1)) {
                snprintf(err, errlen, "\"count\" must be -1 or a positive integer");
                return -1;
            }
            m->count = (long)json_integer_value(v);
        } else if (strcmp(key, "status") == 0 && m->answer.kind != MODE_HANG) {
            if (!json_is_integer(v) || json_integer_value(v) < 100 || json_integer_value(v) > 599) {
                snprintf(err, errlen, "\"status\" must be an integer 100..599");
                return -1;
            }
            m->answer.status = (int)json_integer_value(v);
        } else if (strcmp(key, "retry_after") == 0 && m->answer.kind != MODE_HANG) {
            if (json_is_string(v) && json_string_length(v) > 0 &&
                json_string_length(v) < RETRY_AFTER_MAX && strpbrk(json_string_value(v), "\r\n") == NULL)
                snprintf(m->answer.retry_after, sizeof m->answer.retry_after, "%s", json_string_value(v));
            else if (json_is_integer(v) && json_integer_value(v) >= 0)
                snprintf(m->answer.retry_after, sizeof m->answer.retry_after, "%lld",
                         (long long)json_integer_value(v));
            else {
                snprintf(err, errlen, "\"retry_after\" must be a short string or a number >= 0");
                return -1;
            }
        } else if (strcmp(key, "delay_ms") == 0 && m->answer.kind == MODE_SLOW) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3600000) {
                snprintf(err, errlen, "\"delay_ms\" must be an integer 0..3600000");
                return -1;
            }
            m->answer.delay_ms = (long)json_integer_value(v);
        } else {
            snprintf(err, errlen, "key \"%.64s\" is not valid for mode %s", key, name);
            return -1;
        }
    }
    return 0;
}

static json_t *mode_to_json(const struct mode *m)
{
    json_t *j = json_pack("{s:s, s:i}", "mode", mode_names[m->answer.kind], "count", (json_int_t)m->count);

    if (j == NULL)
        return NULL;
    if (m->answer.kind != MODE_HANG)
        json_object_set_new(j, "status", json_integer(m->answer.status));
    if (m->answer.retry_after[0] != '\0')
        json_object_set_new(j, "retry_after", json_string(m->answer.retry_after));
    if (m->answer.kind == MODE_SLOW)
        json_object_set_new(j, "delay_ms", json_integer(m->answer.delay_ms));
    return j;
}

/* The answer for the next request; uses up one of the mode's count. */
static struct answer mode_take(struct receiver *rcv)
{
    struct answer a = rcv->mode.answer;

    if (rcv->mode.count > 0 && --rcv->mode.count == 0) {
        memset(&rcv->mode, 0, sizeof rcv->mode);
        rcv->mode.answer.kind = MODE_OK;
        rcv->mode.answer.status = 200;
        rcv->mode.count = -1;
    }
    return a;
}

static void send_json(struct evhttp_request *req, int status, json_t *body, const char *retry_after)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    evhttp_add_header(oh, "Content-Type", "application/json");
    if (retry_after != NULL && retry_after[0] != '\0')
        evhttp_add_header(oh, "Retry-After", retry_after);
    if (buf != NULL && text != NULL)
        evbuffer_add_printf(buf, "%s\n", text);
    evhttp_send_reply(req, status, NULL, buf);
    if (buf != NULL)
        evbuffer_free(buf);
    free(text);
}

/* Appends one record to the output file; flushed so a test reading it sees every answered
 * request (the line is written before the answer is sent). */
static void record_write(struct receiver *rcv, json_t *rec, int status)
{
    char *line;

    json_object_set_new(rec, "status", status > 0 ? json_integer(status) : json_null());
    json_object_set_new(rec, "answered_ms", json_integer(now_ms()));
    if (rcv->out == NULL)
        return;
    line = json_dumps(rec, JSON_COMPACT);
    if (line == NULL) {
        fprintf(stderr, "http-receiver: cannot encode a record\n");
        return;
    }
    if (fprintf(rcv->out, "%s\n", line) < 0 || fflush(rcv->out) != 0)
        fprintf(stderr, "http-receiver: writing the output file: %s\n", strerror(errno));
    free(line);
}

static void answer_now(struct receiver *rcv, struct evhttp_request *req, json_t *rec,
                       const struct answer *a)
{
    json_t *body = a->status >= 200 && a->status < 300
                       ? json_pack("{s:b}", "ok", 1)
                       : json_pack("{s:b, s:i}", "ok", 0, "status", a->status);

    record_write(rcv, rec, a->status);
    rcv->answered++;
    send_json(req, a->status, body, a->retry_after);
    json_decref(body);
}

static void pending_free(struct receiver *rcv, struct pending *p)
{
    TAILQ_REMOVE(&rcv->pending, p, link);
    rcv->npending--;
    if (p->timer != NULL)
        event_free(p->timer);
    json_decref(p->rec);
    free(p);
}

static void on_slow_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct receiver *rcv = p->rcv;

    (void)fd;
    (void)what;
    answer_now(rcv, p->req, p->rec, &p->answer);
    pending_free(rcv, p);
}

/* A connection is going away. Forget its requests that we still hold. A request the server
 * already detached from the connection (client EOF) belongs to nobody any more: free it. */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct receiver *rcv = arg;
    struct pending *p, *next;

    for (p = TAILQ_FIRST(&rcv->pending); p != NULL; p = next) {
        next = TAILQ_NEXT(p, link);
        if (p->evcon != evcon)
            continue;
        record_write(rcv, p->rec, 0);
        if (evhttp_request_get_connection(p->req) == NULL)
            evhttp_request_free(p->req);
        pending_free(rcv, p);
    }
}

/* Answers now, later (timer), or holds the request, as the answer says. */
static void dispatch(struct receiver *rcv, struct evhttp_request *req, json_t *rec,
                     const struct answer *a, struct pending *p)
{
    struct timeval tv;

    if (a->kind != MODE_SLOW && a->kind != MODE_HANG) {
        answer_now(rcv, req, rec, a);
        if (p != NULL) {
            p->rec = NULL;
            json_decref(rec);
            pending_free(rcv, p);
        } else {
            json_decref(rec);
        }
        return;
    }
    if (p == NULL) {
        p = calloc(1, sizeof *p);
        if (p == NULL) {
            fprintf(stderr, "http-receiver: out of memory, answering 500\n");
            answer_now(rcv, req, rec, &(struct answer){ .kind = MODE_STATUS, .status = 500 });
            json_decref(rec);
            return;
        }
        p->rcv = rcv;
        p->req = req;
        p->rec = rec;
        p->evcon = evhttp_request_get_connection(req);
        TAILQ_INSERT_TAIL(&rcv->pending, p, link);
        rcv->npending++;
        evhttp_connection_set_closecb(p->evcon, on_conn_close, rcv);
    }
    p->answer = *a;
    p->held = a->kind == MODE_HANG;
    if (a->kind == MODE_SLOW) {
        p->timer = evtimer_new(rcv->eb, on_slow_timer, p);
        tv.tv_sec = a->delay_ms / 1000;
        tv.tv_usec = (a->delay_ms % 1000) * 1000;
        if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
            fprintf(stderr, "http-receiver: cannot arm a timer, answering now\n");
            on_slow_timer(-1, 0, p);
        }
    }
}

/* After a mode change: answer the held requests the new mode's way, without using its count. */
static void release_held(struct receiver *rcv)
{
    struct pending *p, *next;

    if (rcv->mode.answer.kind == MODE_HANG)
        return;
    for (p = TAILQ_FIRST(&rcv->pending); p != NULL; p = next) {
        next = TAILQ_NEXT(p, link);
        if (p->held)
            dispatch(rcv, p->req, p->rec, &rcv->mode.answer, p);
    }
}

static json_t *headers_to_json(struct evkeyvalq *hdrs)
{
    json_t *obj = json_object();
    struct evkeyval *kv;

    if (obj == NULL)
        return NULL;
    TAILQ_FOREACH(kv, hdrs, next) {
        char name[256];
        json_t *old, *val;
        size_t i;

        for (i = 0; kv->key[i] != '\0' && i + 1 < sizeof name; i++)
            name[i] = (char)(kv->key[i] >= 'A' && kv->key[i] <= 'Z' ? kv->key[i] + 32 : kv->key[i]);
        name[i] = '\0';
        old = json_object_get(obj, name);
        if (old != NULL) {
            char *joined;

            if (asprintf(&joined, "%s, %s", json_string_value(old), kv->value) < 0)
                continue;
            val = json_string(joined);
            free(joined);
        } else {
            val = json_string(kv->value);
        }
        if (val == NULL)   /* not UTF-8: keep it visible rather than drop it silently */
            val = json_string("<invalid utf-8>");
        json_object_set_new(obj, name, val);
    }
    return obj;
}

static json_t *body_to_json(json_t *rec, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in);
    const char *data = len ? (const char *)evbuffer_pullup(in, -1) : "";
    json_t *s = json_stringn(data, len);
    unsigned char *b64;

    if (s != NULL)
        return json_object_set_new(rec, "body", s) == 0 ? rec : NULL;
    /* Not UTF-8: keep the exact bytes in base64 so a test can still compare them. */
    b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (b64 == NULL)
        return NULL;
    EVP_EncodeBlock(b64, (const unsigned char *)data, (int)len);
    json_object_set_new(rec, "body", json_null());
    json_object_set_new(rec, "body_base64", json_string((const char *)b64));
    free(b64);
    return rec;
}

static void control_error(struct evhttp_request *req, int status, const char *msg)
{
    json_t *body = json_pack("{s:s}", "error", msg);

    send_json(req, status, body, NULL);
    json_decref(body);
}

static void on_control(struct receiver *rcv, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    json_t *body = NULL, *doc = NULL;
    json_error_t jerr;
    struct mode m;
    char err[256];

    if (!tool_http_control_authorized(req, rcv->token)) {
        control_error(req, 401, "missing or wrong control token");
        return;
    }
    if (strcmp(path, "/_control/stats") == 0 && cmd == EVHTTP_REQ_GET) {
        body = json_pack("{s:I, s:I, s:I}", "requests", (json_int_t)rcv->requests,
                         "answered", (json_int_t)rcv->answered, "pending", (json_int_t)rcv->npending);
        send_json(req, 200, body, NULL);
    } else if (strcmp(path, "/_control") == 0 && cmd == EVHTTP_REQ_GET) {
        body = mode_to_json(&rcv->mode);
        send_json(req, 200, body, NULL);
    } else if (strcmp(path, "/_control") == 0 && (cmd == EVHTTP_REQ_POST || cmd == EVHTTP_REQ_PUT)) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);

        doc = json_loadb(len ? (const char *)evbuffer_pullup(in, -1) : "", len, 0, &jerr);
        if (doc == NULL) {
            snprintf(err, sizeof err, "bad JSON: %s", jerr.text);
            control_error(req, 400, err);
        } else if (mode_parse(doc, &m, err, sizeof err) != 0) {
            control_error(req, 400, err);
        } else {
            rcv->mode = m;
            body = json_pack("{s:b, s:o}", "ok", 1, "mode", mode_to_json(&rcv->mode));
            send_json(req, 200, body, NULL);
            release_held(rcv);
        }
    } else {
        control_error(req, 404, "control paths: GET/POST /_control, GET /_control/stats");
    }
    json_decref(body);
    json_decref(doc);
}

/* The OAuth2 token endpoint: a new token for every request, outside the modes. */
static void answer_token(struct receiver *rcv, struct evhttp_request *req, json_t *rec)
{
    char token[64];
    json_t *body;

    snprintf(token, sizeof token, "token-%lu", ++rcv->tokens_issued);
    body = json_pack("{s:s, s:s}", "access_token", token, "token_type", "Bearer");
    if (body != NULL && rcv->token_expires_in > 0)
        json_object_set_new(body, "expires_in", json_integer(rcv->token_expires_in));
    record_write(rcv, rec, 200);
    rcv->answered++;
    send_json(req, 200, body, NULL);
    json_decref(body);
    json_decref(rec);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct receiver *rcv = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct answer a;
    json_t *rec;

    if (path == NULL || path[0] == '\0')
        path = "/";
    if (strncmp(path, "/_control", 9) == 0) {
        on_control(rcv, req, path);
        return;
    }
    rcv->requests++;
    rec = json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)rcv->requests,
                    "method", tool_http_method_name(evhttp_request_get_command(req)), "path", path);
    if (rec != NULL && query != NULL)
        json_object_set_new(rec, "query", json_string(query));
    if (rec != NULL)
        json_object_set_new(rec, "headers", headers_to_json(evhttp_request_get_input_headers(req)));
    if (rec == NULL || body_to_json(rec, evhttp_request_get_input_buffer(req)) == NULL) {
        fprintf(stderr, "http-receiver: out of memory, answering 500\n");
        json_decref(rec);
        evhttp_send_reply(req, 500, NULL, NULL);
        return;
    }
    json_object_set_new(rec, "received_ms", json_integer(now_ms()));
    if (rcv->token_path != NULL && strcmp(path, rcv->token_path) == 0 &&
        evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        answer_token(rcv, req, rec);
        return;
    }
    a = mode_take(rcv);
    dispatch(rcv, req, rec, &a, NULL);   /* takes rec */
}

int main(int argc, char **argv)
{
    struct receiver rcv = { 0 };
    struct tool_http_server srv = { 0 };
    const char *port_file = NULL, *out_path = NULL, *mode_arg = NULL;
    long port = 0;
    char err[512];
    int rc = 1;

    TAILQ_INIT(&rcv.pending);
    rcv.mode.answer = (struct answer){ .kind = MODE_OK, .status = 200 };
    rcv.mode.count = -1;
    rcv.token_expires_in = 3600;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (val == NULL) {
            fprintf(stderr, "http-receiver: %s: missing value or unknown option\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--port") == 0) {
            if (tool_parse_long(val, 0, 65535, &port) != 0) {
                fprintf(stderr, "http-receiver: --port %s: must be 0..65535\n", val);
                return 2;
            }
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = val;
        } else if (strcmp(a, "--out") == 0) {
            out_path = val;
        } else if (strcmp(a, "--control-token") == 0) {
            rcv.token = val;
        } else if (strcmp(a, "--mode") == 0) {
            mode_arg = val;
        } else if (strcmp(a, "--token-path") == 0) {
            rcv.token_path = val;
        } else if (strcmp(a, "--token-expires-in") == 0) {
            if (tool_parse_long(val, 0, 100000000, &rcv.token_expires_in) != 0) {
                fprintf(stderr, "http-receiver: --token-expires-in %s: must be 0..100000000\n", val);
                return 2;
            }
        } else {
            fprintf(stderr, "http-receiver: %s: unknown option\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (mode_arg != NULL) {
        json_error_t jerr;
        json_t *doc = json_loads(mode_arg, 0, &jerr);
        int bad = doc == NULL || mode_parse(doc, &rcv.mode, err, sizeof err) != 0;

        if (doc == NULL)
            snprintf(err, sizeof err, "bad JSON: %s", jerr.text);
        json_decref(doc);
        if (bad) {
            fprintf(stderr, "http-receiver: --mode: %s\n", err);
            return 2;
        }
    }

    if (out_path != NULL && (rcv.out = fopen(out_path, "a")) == NULL) {
        fprintf(stderr, "http-receiver: %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    if (tool_http_server_start(&srv, "http-receiver", port, port_file, on_request, &rcv) != 0)
        goto out;
    rcv.eb = srv.eb;
    rcv.http = srv.http;
    if (tool_http_server_run(&srv) != 0)
        goto out;
    rc = 0;

out:
    /* Requests still held are recorded unanswered; evhttp_free then closes their connections
     * and frees them, so drop our list first. */
    while (!TAILQ_EMPTY(&rcv.pending)) {
        struct pending *p = TAILQ_FIRST(&rcv.pending);

        record_write(&rcv, p->rec, 0);
        pending_free(&rcv, p);
    }
    tool_http_server_free(&srv);
    if (rcv.out != NULL)
        fclose(rcv.out);
    return rc;
}
