/* `sluice ctl status|pause|resume|replay|reload`: the whole group at once (README, "Running a
 * group"). The replicas and the group's state come from the control topic (control.topic), read
 * whole; pause, resume and replay are written there, and every replica applies them when it reads
 * them, including one that starts or takes partitions over later; each replica's admin API (the
 * address it announced) is then asked whether it has read the record. Reload and the per-replica
 * part of status go to each admin API. Blocking calls throughout: a command-line tool, no loop. */
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "conf.h"
#include "control_record.h"
#include "ctl_group.h"
#include "kafka_cli.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "sinks/sink.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define ANSWER_MAX (8u << 20)        /* an admin API's answer; more is not one */

struct replica {
    struct control_record rec;       /* its last announcement */
    int live;                        /* announced within 3 heartbeats */
};

struct ctl_state {
    struct replica *replicas;
    size_t nreplicas;
    json_t *sinks;                   /* name -> {"paused", "replay": {...}} as the topic says */
    int64_t end;                     /* the topic's end as read */
};

struct ctl_opts {
    const char *file, *token;
    int as_json;
    long long wait_ms;
    int64_t offset, timestamp_ms;
    const char *topic;
    long long partition;
};

/* ---- reading the control topic ---- */

static void on_control_record(void *arg, const rd_kafka_message_t *m)
{
    struct ctl_state *st = arg;
    struct control_record rec;
    char err[256];
    json_t *s;
    size_t i;

    st->end = m->offset + 1;
    if (control_record_parse(m->key, m->key_len, m->payload, m->len, &rec, err, sizeof err) != 0)
        return;
    if (rec.kind == CONTROL_REPLICA) {
        for (i = 0; i < st->nreplicas && strcmp(st->replicas[i].rec.name, rec.name) != 0; i++)
            ;
        if (rec.tombstone) {
            if (i < st->nreplicas)
                st->replicas[i] = st->replicas[--st->nreplicas];
            return;
        }
        if (i == st->nreplicas) {
            struct replica *v = realloc(st->replicas, (st->nreplicas + 1) * sizeof *v);
            if (!v)
                return;
            st->replicas = v;
            st->nreplicas++;
        }
        st->replicas[i].rec = rec;
        return;
    }
    if (rec.tombstone)
        return;
    if (!(s = json_object_get(st->sinks, rec.name))) {
        s = json_object();
        json_object_set_new(st->sinks, rec.name, s);
    }
    if (rec.kind == CONTROL_PAUSE) {
        json_object_set_new(s, "paused", json_boolean(rec.paused));
        json_object_set_new(s, "paused_at_ms", json_integer(rec.at_ms));
    } else {
        json_t *r = json_pack("{s:I, s:I, s:s}", "id", (json_int_t)m->offset, "at_ms", (json_int_t)rec.at_ms, "by", rec.by);
        json_object_set_new(r, rec.offset >= 0 ? "offset" : "timestamp_ms",
                            json_integer(rec.offset >= 0 ? rec.offset : rec.timestamp_ms));
        if (rec.topic[0])
            json_object_set_new(r, "topic", json_string(rec.topic));
        if (rec.partition >= 0)
            json_object_set_new(r, "partition", json_integer(rec.partition));
        json_object_set_new(s, "replay", r);
    }
}

static int read_state(const struct conf *conf, struct ctl_state *st)
{
    char err[512];
    rd_kafka_t *rk = kafka_cli_reader_new(conf, err, sizeof err);
    int64_t now = wall_ms();

    st->sinks = json_object();
    if (!rk || kafka_cli_read_topic(rk, conf->control_topic, on_control_record, st, err, sizeof err) != 0) {
        fprintf(stderr, "sluice ctl: cannot read the control topic %s: %s\n", conf->control_topic, err);
        if (rk)
            rd_kafka_destroy(rk);
        free(st->replicas);
        json_decref(st->sinks);
        memset(st, 0, sizeof *st);
        return -1;
    }
    rd_kafka_destroy(rk);
    for (size_t i = 0; i < st->nreplicas; i++)
        st->replicas[i].live = now - st->replicas[i].rec.at_ms < 3 * st->replicas[i].rec.heartbeat_ms;
    return 0;
}

static void state_free(struct ctl_state *st)
{
    free(st->replicas);
    json_decref(st->sinks);
}

/* ---- the admin APIs ---- */

static size_t on_answer(char *data, size_t size, size_t nmemb, void *arg)
{
    return buf_add(arg, data, size * nmemb) == 0 ? size * nmemb : 0;
}

/* One request to a replica's admin API: its status (0: not reached, @p err says why), the body in @p body. */
static long admin_call(const char *base, const char *method, const char *path, const char *token, struct buf *body,
                       char *err, size_t errlen)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    char url[768], auth[512];
    long status = 0;
    CURLcode rc;

    buf_reset(body);
    if (!curl) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    snprintf(url, sizeof url, "%s%s", base, path);
    if (token && token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append(NULL, auth);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    rc = curl_easy_perform(curl);   /* banned-ok: sluice ctl is a command-line tool; no loop runs */
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return status;
}

static json_t *admin_json(const char *base, const char *path, const char *token, char *err, size_t errlen)
{
    struct buf body;
    json_error_t jerr;
    json_t *j = NULL;
    long status;

    buf_init(&body, ANSWER_MAX);
    status = admin_call(base, "GET", path, token, &body, err, errlen);
    if (status == 200 && !(j = json_loadb(body.p ? body.p : "", body.len, 0, &jerr)))
        snprintf(err, errlen, "%s: not JSON: %s", path, jerr.text);
    else if (status != 200 && status != 0)
        snprintf(err, errlen, "%s answered %ld: %.200s", path, status, body.p ? body.p : "");
    buf_free(&body);
    return j;
}

/* ---- the commands ---- */

static const char *who(void)
{
    static char by[CONTROL_NAME_MAX];
    struct passwd *pw = getpwuid(getuid());
    char host[64] = "?";

    gethostname(host, sizeof host - 1);
    snprintf(by, sizeof by, "%.40s@%.60s", pw ? pw->pw_name : "?", host);
    return by;
}

static void on_written(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    int64_t *offset = opaque;
    (void)rk;
    *offset = m->err ? -2 - (int64_t)m->err : m->offset;
}

/* Writes @p rec to the control topic; its offset, or -1 with the reason said. */
static int64_t write_record(const struct conf *conf, const struct control_record *rec)
{
    char err[512], key[CONTROL_NAME_MAX + 16], *value = control_record_value(rec);
    int64_t offset = -1;
    rd_kafka_t *rk = kafka_cli_producer_new(conf, on_written, &offset, err, sizeof err);
    int keylen = control_record_key(rec, key, sizeof key);

    if (!rk || !value || keylen < 0) {
        fprintf(stderr, "sluice ctl: %s\n", rk ? "out of memory" : err);
        goto out;
    }
    if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(conf->control_topic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_KEY(key, (size_t)keylen), RD_KAFKA_V_VALUE(value, strlen(value)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_flush(rk, KAFKA_CLI_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR || offset < 0) {
        fprintf(stderr, "sluice ctl: cannot write to the control topic %s: %s\n", conf->control_topic,
                offset < -1 ? rd_kafka_err2str((rd_kafka_resp_err_t)(-2 - offset)) : "not acknowledged in time");
        offset = -1;
    }
out:
    free(value);
    if (rk)
        rd_kafka_destroy(rk);
    return offset;
}

/* Waits until every live replica has read the control topic past @p offset; prints each. 0 when
 * all did. */
static int confirm(const struct ctl_state *st, int64_t offset, const struct ctl_opts *o, const char *what)
{
    int64_t deadline = mono_ms() + o->wait_ms;
    size_t live = 0, confirmed = 0;
    char err[512];

    for (size_t i = 0; i < st->nreplicas; i++) {
        const struct replica *rp = &st->replicas[i];
        int done = 0;
        if (!rp->live)
            continue;
        live++;
        err[0] = '\0';
        while (!done && rp->rec.admin[0]) {
            json_t *g = admin_json(rp->rec.admin, "/group", o->token, err, sizeof err);
            done = g && json_integer_value(json_object_get(g, "next_offset")) > offset;
            json_decref(g);
            if (done || mono_ms() >= deadline)
                break;
            usleep(200 * 1000);   /* banned-ok: sluice ctl is a command-line tool; no loop runs */
        }
        if (done) {
            confirmed++;
            printf("  %-40s %s: %s\n", rp->rec.name, rp->rec.admin, what);
        } else {
            printf("  %-40s %s: not confirmed (%s); it applies the record when it reads it\n", rp->rec.name,
                   rp->rec.admin[0] ? rp->rec.admin : "(no admin API)",
                   err[0] ? err : rp->rec.admin[0] ? "did not read it in time" : "cannot be asked");
        }
    }
    printf("%zu of %zu live replica(s) confirmed\n", confirmed, live);
    return confirmed == live ? 0 : EXIT_RUNTIME;
}

static int sink_known(const struct conf *conf, const char *name)
{
    for (size_t k = 0; k < conf->nsinks; k++)
        if (strcmp(conf->sinks[k]->name, name) == 0)
            return 1;
    for (size_t k = 0; k < conf->ninvalid; k++)
        if (strcmp(conf->invalid[k].name, name) == 0)
            return 1;
    return 0;
}

static int cmd_control(const struct conf *conf, const char *sub, const char *sink, const struct ctl_opts *o)
{
    struct control_record rec = { .at_ms = wall_ms(), .offset = -1, .timestamp_ms = -1, .partition = -1 };
    struct ctl_state st = { 0 };
    int64_t offset;
    int rc;

    if (!sink_known(conf, sink)) {
        fprintf(stderr, "sluice ctl: %s declares no sink \"%s\"\n", conf->file, sink);
        return EXIT_USAGE;
    }
    snprintf(rec.name, sizeof rec.name, "%s", sink);
    snprintf(rec.by, sizeof rec.by, "%s", who());
    if (strcmp(sub, "replay") == 0) {
        rec.kind = CONTROL_REPLAY;
        rec.offset = o->offset;
        rec.timestamp_ms = o->timestamp_ms;
        rec.partition = (int32_t)o->partition;
        snprintf(rec.topic, sizeof rec.topic, "%s", o->topic ? o->topic : "");
    } else {
        rec.kind = CONTROL_PAUSE;
        rec.paused = strcmp(sub, "pause") == 0;
    }
    if ((offset = write_record(conf, &rec)) < 0)
        return EXIT_RUNTIME;
    printf("%s of sink %s written to %s at offset %" PRId64 "\n", sub, sink, conf->control_topic, offset);
    if (read_state(conf, &st) != 0)
        return EXIT_RUNTIME;
    rc = confirm(&st, offset, o, strcmp(sub, "replay") == 0 ? "read it (replaying its partitions)"
                                 : rec.paused ? "paused" : "resumed");
    state_free(&st);
    return rc;
}

static int cmd_reload(const struct conf *conf, const struct ctl_opts *o)
{
    struct ctl_state st = { 0 };
    struct buf body;
    size_t live = 0, ok = 0;
    char err[512];

    if (read_state(conf, &st) != 0)
        return EXIT_RUNTIME;
    buf_init(&body, ANSWER_MAX);
    for (size_t i = 0; i < st.nreplicas; i++) {
        const struct replica *rp = &st.replicas[i];
        long status;
        if (!rp->live)
            continue;
        live++;
        err[0] = '\0';
        status = rp->rec.admin[0] ? admin_call(rp->rec.admin, "POST", "/reload", o->token, &body, err, sizeof err) : 0;
        ok += status == 200;
        printf("  %-40s %s: %s%.*s\n", rp->rec.name, rp->rec.admin[0] ? rp->rec.admin : "(no admin API)",
               status == 200 ? "" : status ? "refused: " : "not reached: ",
               status ? (int)body.len : (int)strlen(err), status ? (body.p ? body.p : "") : err);
    }
    buf_free(&body);
    state_free(&st);
    printf("%zu of %zu live replica(s) reloading\n", ok, live);
    return ok == live && live > 0 ? 0 : EXIT_RUNTIME;
}

static int cmd_status(const struct conf *conf, const struct ctl_opts *o)
{
    struct ctl_state st = { 0 };
    json_t *out = json_object(), *replicas = json_array();
    size_t live = 0, reached = 0;
    char err[512];
    const char *name;
    json_t *s;

    if (read_state(conf, &st) != 0) {
        json_decref(out);
        json_decref(replicas);
        return EXIT_RUNTIME;
    }
    if (!o->as_json) {
        printf("control topic %s: %zu replica(s) announced\n", conf->control_topic, st.nreplicas);
        json_object_foreach(st.sinks, name, s) {
            json_t *replay = json_object_get(s, "replay");
            printf("  sink %s:%s", name, json_is_true(json_object_get(s, "paused")) ? " paused by the group" : " not paused by the group");
            if (replay)
                printf("; replay %" JSON_INTEGER_FORMAT " from %s %" JSON_INTEGER_FORMAT,
                       json_integer_value(json_object_get(replay, "id")),
                       json_object_get(replay, "offset") ? "offset" : "timestamp_ms",
                       json_integer_value(json_object_get(replay, json_object_get(replay, "offset") ? "offset" : "timestamp_ms")));
            putchar('\n');
        }
    }
    for (size_t i = 0; i < st.nreplicas; i++) {
        const struct replica *rp = &st.replicas[i];
        json_t *sinks = NULL, *group = NULL, *entry;
        err[0] = '\0';
        live += rp->live;
        if (rp->live && rp->rec.admin[0] && (group = admin_json(rp->rec.admin, "/group", o->token, err, sizeof err)))
            sinks = admin_json(rp->rec.admin, "/sinks", o->token, err, sizeof err);
        reached += sinks != NULL;
        entry = json_pack("{s:s, s:s, s:s, s:I, s:b, s:I}", "replica", rp->rec.name, "admin", rp->rec.admin, "host",
                          rp->rec.host, "pid", (json_int_t)rp->rec.pid, "live", rp->live, "seen_ms_ago",
                          (json_int_t)(wall_ms() - rp->rec.at_ms));
        if (sinks)
            json_object_set(entry, "sinks", sinks);
        if (err[0])
            json_object_set_new(entry, "error", json_string(err));
        if (!o->as_json) {
            printf("replica %s (%s, pid %" PRId64 ") %s: ", rp->rec.name, rp->rec.admin[0] ? rp->rec.admin : "no admin API",
                   rp->rec.pid, rp->live ? "live" : "silent");
            if (!sinks) {
                printf("%s\n", rp->live ? (err[0] ? err : "cannot be asked") : "gone (no announcement for 3 heartbeats)");
            } else {
                size_t k;
                json_t *v;
                putchar('\n');
                json_array_foreach(sinks, k, v) {
                    json_t *positions = json_object_get(v, "positions");
                    printf("    %-30s %-10s %zu partition(s)\n", json_string_value(json_object_get(v, "name")),
                           json_string_value(json_object_get(v, "state")),
                           json_is_array(positions) ? json_array_size(positions) : json_is_object(positions) ? json_object_size(positions) : 0);
                }
            }
        }
        json_decref(sinks);
        json_decref(group);
        json_array_append_new(replicas, entry);
    }
    if (o->as_json) {
        json_object_set_new(out, "topic", json_string(conf->control_topic));
        json_object_set(out, "sinks", st.sinks);
        json_object_set(out, "replicas", replicas);
        char *text = json_dumps(out, JSON_INDENT(2));
        if (text)
            puts(text);
        free(text);
    } else {
        printf("%zu live replica(s), %zu answered\n", live, reached);
    }
    json_decref(replicas);
    json_decref(out);
    state_free(&st);
    return live > 0 && reached == live ? 0 : EXIT_RUNTIME;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: sluice ctl status  -c FILE [--json]\n"
        "       sluice ctl pause   NAME -c FILE\n"
        "       sluice ctl resume  NAME -c FILE\n"
        "       sluice ctl replay  NAME -c FILE (--offset N | --timestamp-ms T) [--topic T] [--partition P]\n"
        "       sluice ctl reload  -c FILE\n"
        "  The whole group, through the control topic of FILE (control.topic): pause, resume and\n"
        "  replay hold on every replica, also one that starts or takes partitions over later; each\n"
        "  live replica's admin API is asked whether it has read them (--wait-ms, default 30000).\n"
        "  The token: --token, else $SLUICE_ADMIN_TOKEN, else admin.token of FILE.\n");
}

int ctl_group_main(const char *sub, int argc, char **argv)
{
    static const struct option longs[] = {
        { "config", required_argument, NULL, 'c' }, { "token", required_argument, NULL, 't' },
        { "json", no_argument, NULL, 'j' }, { "wait-ms", required_argument, NULL, 'w' },
        { "offset", required_argument, NULL, 'o' }, { "timestamp-ms", required_argument, NULL, 's' },
        { "topic", required_argument, NULL, 'T' }, { "partition", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    struct ctl_opts o = { .wait_ms = 30000, .offset = -1, .timestamp_ms = -1, .partition = -1 };
    struct conf_load_opts load = { .isolate = 1 };
    struct cfg_errors errs = { 0 };
    struct conf *conf;
    int need_sink = strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0 || strcmp(sub, "replay") == 0;
    int c, rc;
    char *end;
    long long v = 0;

    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        if (c == 'w' || c == 'o' || c == 's' || c == 'p') {
            v = strtoll(optarg, &end, 10);
            if (*end || v < 0 || (c == 'p' && v > INT32_MAX)) {
                fprintf(stderr, "sluice ctl: %s wants a number from 0\n", argv[optind - 1]);
                return EXIT_USAGE;
            }
        }
        switch (c) {
        case 'c': o.file = optarg; break;
        case 't': o.token = optarg; break;
        case 'j': o.as_json = 1; break;
        case 'w': o.wait_ms = v; break;
        case 'o': o.offset = v; break;
        case 's': o.timestamp_ms = v; break;
        case 'T': o.topic = optarg; break;
        case 'p': o.partition = v; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (!o.file || optind != argc - need_sink || (strcmp(sub, "replay") == 0 && (o.offset < 0) == (o.timestamp_ms < 0))) {
        if (strcmp(sub, "replay") == 0 && (o.offset < 0) == (o.timestamp_ms < 0))
            fprintf(stderr, "sluice ctl replay: give exactly one of --offset and --timestamp-ms\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!(conf = conf_load_with(o.file, &load, &errs))) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        cfg_errors_clear(&errs);
        return EXIT_USAGE;
    }
    if (!conf->control_topic) {
        fprintf(stderr, "sluice ctl %s: %s has no control.topic: group-wide operations need one (README, "
                "\"Running a group\"); the admin API of each replica acts on that replica alone\n", sub, o.file);
        conf_free(conf);
        return EXIT_USAGE;
    }
    if (!o.token)
        o.token = getenv("SLUICE_ADMIN_TOKEN");
    if (!o.token)
        o.token = conf->admin_token;
    if (strcmp(sub, "status") == 0)
        rc = cmd_status(conf, &o);
    else if (strcmp(sub, "reload") == 0)
        rc = cmd_reload(conf, &o);
    else
        rc = cmd_control(conf, sub, argv[optind], &o);
    conf_free(conf);
    return rc;
}
