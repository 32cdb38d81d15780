/* The live tap of tap.h: a sink's clients, each bounded by what its connection holds unsent. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "engine.h"
#include "tap.h"

struct tap_client {
    struct tap *tap;
    struct tap_client *prev, *next;
    struct http_server_req *req;
    struct tap_filter filter;
    long long records;                   /* records sent so far (for the limit) */
    int closing;                         /* the limit is reached: ends after its batch's verdict */
    uint64_t dropped;                    /* events lost since the last "dropped" event */
};

struct tap {
    struct tap **slot;                   /* the sink's pointer to this tap */
    char *sink;
    struct tap_client *clients;
    size_t nclients;
};

const char *tap_result_name(enum sink_result result)
{
    switch (result) {
    case SINK_OK: return "ok";
    case SINK_RETRY: return "retry";
    case SINK_FAIL: return "failed";
    case SINK_FENCED: return "fenced";
    }
    return "?";
}

const char *tap_record_shown(struct sink *sk, const struct sink_record *e, size_t *len, char **owned, int *mapped)
{
    *owned = sk->ops->describe ? sk->ops->describe(sk, e) : NULL;
    *mapped = 1;
    if (*owned) {
        *len = strlen(*owned);
        return *owned;
    }
    if ((sk->ops->flags & SINK_F_PREPARED_TEXT) && e->prepared && e->prepared_len) {
        *len = e->prepared_len;
        return e->prepared;
    }
    *mapped = 0;
    *len = e->value ? e->value_len : 0;
    return e->value;
}

/* The client goes: unlinked, its request ended; the tap goes with its last client. */
static void client_free(struct tap_client *cl)
{
    struct tap *tap = cl->tap;

    if (cl->prev)
        cl->prev->next = cl->next;
    else
        tap->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    tap->nclients--;
    http_server_stream_end(cl->req);
    free(cl);
    if (!tap->clients) {
        *tap->slot = NULL;
        free(tap->sink);
        free(tap);
    }
}

static void on_client_gone(struct http_server_req *req, void *arg)
{
    struct tap_client *cl = arg;
    (void)req;
    client_free(cl);
}

/* One line to one client, unless it holds too much unread: then the event is lost and counted,
 * and the count is told first once the client has caught up. Steals @p ev. */
static void client_send(struct tap_client *cl, json_t *ev, int always)
{
    char *line;

    if (!always && http_server_stream_unsent(cl->req) > TAP_CLIENT_UNSENT_MAX) {
        cl->dropped++;
        json_decref(ev);
        return;
    }
    if (cl->dropped) {
        char note[64];
        int n = snprintf(note, sizeof note, "{\"event\":\"dropped\",\"count\":%" PRIu64 "}\n", cl->dropped);
        http_server_stream_write(cl->req, note, (size_t)n);
        cl->dropped = 0;
    }
    line = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!line) {
        cl->dropped++;
        return;
    }
    http_server_stream_write(cl->req, line, strlen(line));
    http_server_stream_write(cl->req, "\n", 1);
    free(line);
}

static void client_end(struct tap_client *cl, const char *reason)
{
    /* sent whatever the client holds (a few bytes, once): it says what was lost and why it ends */
    client_send(cl, json_pack("{s:s, s:s}", "event", "end", "reason", reason), 1);
    client_free(cl);
}

int tap_attach(struct tap **slot, const char *sink, struct http_server_req *req, const struct tap_filter *filter)
{
    struct tap *tap = *slot;
    struct tap_client *cl;

    if (tap && tap->nclients >= TAP_CLIENTS_MAX)
        return -2;
    if (!(cl = calloc(1, sizeof *cl)))
        return -1;
    if (!tap) {
        if (!(tap = calloc(1, sizeof *tap)) || !(tap->sink = strdup(sink))) {
            free(tap);
            free(cl);
            return -1;
        }
        tap->slot = slot;
    }
    if (http_server_stream_start(req, "application/x-ndjson", on_client_gone, cl) != 0) {
        if (!tap->clients) {
            free(tap->sink);
            free(tap);
        }
        free(cl);
        return -1;
    }
    *slot = tap;
    cl->tap = tap;
    cl->req = req;
    cl->filter = *filter;
    cl->next = tap->clients;
    if (tap->clients)
        tap->clients->prev = cl;
    tap->clients = cl;
    tap->nclients++;
    client_send(cl, json_pack("{s:s, s:s, s:i, s:I, s:i}", "event", "tap", "sink", sink, "pid", (int)getpid(),
                              "limit", (json_int_t)filter->limit, "partition", (int)filter->partition), 1);
    return 0;
}

/* At most TAP_VALUE_MAX bytes, cut back to a UTF-8 character boundary; text that is not UTF-8
 * is named, not shown. */
static void set_bounded(json_t *ev, const char *field, const char *p, size_t len, size_t *truncated)
{
    size_t n = len;
    json_t *s;

    if (!p) {
        json_object_set_new(ev, field, json_null());
        return;
    }
    if (n > TAP_VALUE_MAX) {
        n = TAP_VALUE_MAX;
        while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
            n--;
        *truncated += len - n;
    }
    if (!(s = json_stringn(p, n))) {
        char what[64];
        snprintf(what, sizeof what, "(binary, %zu bytes)", len);
        s = json_string(what);
    }
    json_object_set_new(ev, field, s);
}

static json_t *record_event(struct sink *sk, const struct sink_record *e)
{
    json_t *ev = json_pack("{s:s, s:s, s:s, s:i, s:I}", "event", "record", "sink", sk->name, "topic", e->topic,
                           "partition", (int)e->partition, "offset", (json_int_t)e->offset);
    size_t truncated = 0, len;
    char *owned;
    int mapped;
    const char *shown;

    if (!ev)
        return NULL;
    shown = tap_record_shown(sk, e, &len, &owned, &mapped);
    set_bounded(ev, "key", e->key, e->key_len, &truncated);
    set_bounded(ev, "value", shown, len, &truncated);
    free(owned);
    if (!mapped)
        json_object_set_new(ev, "as", json_string("record value (the sink's mapped form is not text)"));
    if (truncated)
        json_object_set_new(ev, "truncated", json_integer((json_int_t)truncated));
    return ev;
}

void tap_records(struct tap *tap, struct sink *sk, const struct sink_batch *b)
{
    struct tap_client *cl;

    for (size_t i = 0; i < b->count; i++) {
        for (cl = tap->clients; cl; cl = cl->next) {
            if (cl->closing || (cl->filter.partition >= 0 && cl->filter.partition != b->partition))
                continue;
            client_send(cl, record_event(sk, &b->records[i]), 0);
            if (cl->filter.limit > 0 && ++cl->records >= cl->filter.limit)
                cl->closing = 1;
        }
    }
}

void tap_redact(char *s)
{
    /* "authorization:" runs to the end of its line (a scheme and its credentials); the others
     * to the next space, quote, comma or '&'. Bearer first, so that the header's scheme name is
     * not taken for its value. */
    static const char *const marks[] = { "bearer ", "authorization:", "whsec_", "password=", "token=", "secret=" };

    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
        size_t mlen = strlen(marks[m]);
        int whole_line = m == 1;
        for (char *p = s; (p = strcasestr(p, marks[m])) != NULL;) {
            char *v = p + mlen, *end;
            size_t len;
            if (m == 2)
                v = p;   /* the prefix is part of the secret */
            while (*v == ' ')
                v++;
            end = v;
            while (*end && *end != '"' && *end != '\n' && *end != '\r' &&
                   (whole_line || (!isspace((unsigned char)*end) && *end != ',' && *end != '&')))
                end++;
            len = (size_t)(end - v);
            if (len >= 10) {
                memcpy(v, "[redacted]", 10);
                memmove(v + 10, end, strlen(end) + 1);
                end = v + 10;
            } else {
                memset(v, '*', len);   /* shorter than the word: masked in place */
            }
            p = end > p ? end : p + 1;
        }
    }
}

void tap_delivery(struct tap *tap, const struct router_delivery *d)
{
    struct tap_client *cl, *next;
    char error[sizeof d->error], detail[sizeof d->detail];

    if (d->count == 0)
        return;   /* a position-only batch: bookkeeping, not a delivery */
    memcpy(error, d->error, sizeof error);
    memcpy(detail, d->detail, sizeof detail);
    tap_redact(error);
    tap_redact(detail);
    for (cl = tap->clients; cl; cl = next) {
        next = cl->next;
        if (cl->filter.partition >= 0 && cl->filter.partition != d->partition)
            continue;
        client_send(cl, json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:i, s:I, s:s, s:s, s:s, s:I}", "event", "batch",
                                  "sink", tap->sink,
                                  "topic", d->topic, "partition", (int)d->partition,
                                  "first_offset", (json_int_t)d->first_offset, "last_offset", (json_int_t)d->last_offset,
                                  "attempt", (int)d->attempt, "records", (json_int_t)d->count,
                                  "result", tap_result_name(d->result), "error", error, "detail", detail,
                                  "duration_ms", (json_int_t)d->duration_ms), 0);
        if (cl->closing && d->result != SINK_RETRY) {   /* its last record has its verdict */
            char reason[96];
            snprintf(reason, sizeof reason, "limit of %lld records reached", cl->filter.limit);
            client_end(cl, reason);
        }
    }
}

void tap_close(struct tap *tap, const char *reason)
{
    while (tap && tap->clients) {
        struct tap *still = tap->clients->next ? tap : NULL;   /* the last client frees the tap */
        client_end(tap->clients, reason);
        tap = still;
    }
}
