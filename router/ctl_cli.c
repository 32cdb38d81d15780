/* `sluice ctl tap NAME`: reads the NDJSON stream of GET /sinks/NAME/tap with libcurl, a line at a
 * time, and prints each event (or the line itself with --json). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "conf.h"
#include "ctl_cli.h"
#include "ctl_group.h"
#include "lib/buf.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define LINE_MAX_BYTES (1u << 20)   /* a tap line is far smaller (values are bounded); more is not a tap */

static void usage(FILE *out)
{
    fprintf(out,
        "usage: sluice ctl tap NAME [-c FILE | --admin URL] [--token T] [--json] [--limit N] [--partition P]\n"
        "       sluice ctl status|pause|resume|replay|reload ... (the whole group: sluice ctl status --help)\n"
        "  Streams sink NAME's records (as the sink writes them) and its target's answers, live,\n"
        "  from the replica behind the admin URL (default: http://<admin.listen of FILE>).\n"
        "  The token: --token, else $SLUICE_ADMIN_TOKEN, else admin.token of FILE.\n"
        "  --json prints the events as they come (one JSON object a line); --limit stops after N\n"
        "  records (once their batch has its verdict); --partition shows one partition.\n");
}

struct tap_reader {
    struct buf line;                 /* the part of a line received so far */
    int as_json;
    int ended;                       /* an "end" event came */
    long status;                     /* the answer's status, once known */
    struct buf error_body;           /* a refusal's body, for the message */
};

static const char *str(json_t *ev, const char *key)
{
    const char *s = json_string_value(json_object_get(ev, key));
    return s ? s : "";
}

static long long num(json_t *ev, const char *key)
{
    return (long long)json_integer_value(json_object_get(ev, key));
}

static void print_event(struct tap_reader *tr, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *ev;
    const char *kind;

    if (tr->as_json) {
        fwrite(line, 1, len, stdout);
        fputc('\n', stdout);
    }
    if (!(ev = json_loadb(line, len, 0, &jerr))) {
        if (!tr->as_json)
            printf("? %.*s\n", (int)len, line);
        return;
    }
    kind = str(ev, "event");
    if (strcmp(kind, "end") == 0)
        tr->ended = 1;
    if (tr->as_json) {
        json_decref(ev);
        return;
    }
    if (strcmp(kind, "record") == 0) {
        json_t *key = json_object_get(ev, "key"), *value = json_object_get(ev, "value");
        printf("record %s[%lld]@%lld key=%s %s%s", str(ev, "topic"), num(ev, "partition"), num(ev, "offset"),
               json_is_string(key) ? json_string_value(key) : "(none)",
               json_is_string(value) ? json_string_value(value) : "(tombstone)",
               json_object_get(ev, "as") ? " (record value)" : "");
        if (json_object_get(ev, "truncated"))
            printf(" ... (%lld more bytes)", num(ev, "truncated"));
        putchar('\n');
    } else if (strcmp(kind, "batch") == 0) {
        printf("batch  %s[%lld] %lld-%lld: %lld records, attempt %lld: %s in %lld ms", str(ev, "topic"),
               num(ev, "partition"), num(ev, "first_offset"), num(ev, "last_offset"), num(ev, "records"),
               num(ev, "attempt"), str(ev, "result"), num(ev, "duration_ms"));
        if (str(ev, "error")[0])
            printf(": %s", str(ev, "error"));
        if (str(ev, "detail")[0])
            printf(" (%s)", str(ev, "detail"));
        putchar('\n');
    } else if (strcmp(kind, "dropped") == 0) {
        printf("dropped %lld events: this client read too slowly\n", num(ev, "count"));
    } else if (strcmp(kind, "tap") == 0) {
        printf("tapping sink %s (sluice pid %lld); interrupt to stop\n", str(ev, "sink"), num(ev, "pid"));
    } else if (strcmp(kind, "end") == 0) {
        printf("end: %s\n", str(ev, "reason"));
    } else {
        printf("%.*s\n", (int)len, line);
    }
    json_decref(ev);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct tap_reader *tr = arg;
    size_t n = size * nmemb;

    if (tr->status != 200) {   /* a refusal: keep (a bounded part of) its body for the message */
        buf_add(&tr->error_body, data, n < 4096 - tr->error_body.len ? n : 4096 - tr->error_body.len);
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        if (data[i] != '\n') {
            if (buf_add(&tr->line, data + i, 1) != 0)
                return 0;    /* over LINE_MAX_BYTES: not a tap; curl stops with an error */
            continue;
        }
        print_event(tr, tr->line.p ? tr->line.p : "", tr->line.len);
        buf_reset(&tr->line);
    }
    fflush(stdout);
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct tap_reader *tr = arg;
    long long code;

    if (size * nmemb > 9 && strncmp(data, "HTTP/", 5) == 0 && sscanf(data, "HTTP/%*s %lld", &code) == 1)
        tr->status = (long)code;
    return size * nmemb;
}

/* The admin URL from the main file's admin.listen: a wildcard host is reached on loopback. */
static int admin_url_from(const struct conf *conf, char *url, size_t len)
{
    const char *listen = conf->admin_listen, *colon = listen ? strrchr(listen, ':') : NULL;
    size_t hostlen;

    if (!colon || strcmp(colon + 1, "0") == 0)
        return -1;
    hostlen = (size_t)(colon - listen);
    if (hostlen == 0 || (hostlen == 7 && strncmp(listen, "0.0.0.0", 7) == 0))
        snprintf(url, len, "http://127.0.0.1%s", colon);
    else if (hostlen == 2 && strncmp(listen, "::", 2) == 0)
        snprintf(url, len, "http://[::1]%s", colon);
    else
        snprintf(url, len, "http://%s", listen);
    return 0;
}

static int run_tap(const char *admin, const char *token, const char *sink, const char *query, int as_json)
{
    struct tap_reader tr = { .as_json = as_json };
    struct curl_slist *headers = NULL;
    struct buf url, auth;
    CURL *curl = curl_easy_init();
    char *name = curl ? curl_easy_escape(curl, sink, 0) : NULL;
    CURLcode rc;
    int exit_code = EXIT_RUNTIME;

    buf_init(&tr.line, LINE_MAX_BYTES);
    buf_init(&tr.error_body, 4096);
    buf_init(&url, 0);
    buf_init(&auth, 0);
    if (!name || buf_printf(&url, "%s/sinks/%s/tap%s", admin, name, query) != 0 ||
        (token && buf_printf(&auth, "Authorization: Bearer %s", token) != 0) ||
        (token && !(headers = curl_slist_append(NULL, auth.p)))) {
        fprintf(stderr, "sluice ctl: out of memory\n");
        goto out;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url.p);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &tr);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &tr);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    rc = curl_easy_perform(curl);   /* banned-ok: sluice ctl is a command-line tool; no loop runs */
    if (tr.status != 200 && tr.status != 0) {
        fprintf(stderr, "sluice ctl: %s answered %ld: %.*s\n", admin, tr.status, (int)tr.error_body.len,
                tr.error_body.p ? tr.error_body.p : "");
    } else if (rc != CURLE_OK) {
        fprintf(stderr, "sluice ctl: %s: %s\n", admin, tr.line.oom ? "a line over 1 MiB: not a tap" : curl_easy_strerror(rc));
    } else if (!tr.ended) {
        fprintf(stderr, "sluice ctl: the stream ended without an end event (the connection was cut)\n");
    } else {
        exit_code = 0;
    }
out:
    curl_slist_free_all(headers);
    curl_free(name);
    if (curl)
        curl_easy_cleanup(curl);
    buf_free(&url);
    buf_free(&auth);
    buf_free(&tr.line);
    buf_free(&tr.error_body);
    return exit_code;
}

int ctl_cli_main(int argc, char **argv)
{
    static const struct option longs[] = {
        { "config", required_argument, NULL, 'c' }, { "admin", required_argument, NULL, 'a' }, { "token", required_argument, NULL, 't' },
        { "json", no_argument, NULL, 'j' }, { "limit", required_argument, NULL, 'n' },
        { "partition", required_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *file = NULL, *admin = NULL, *token = NULL, *sink;
    char url[512], query[64] = "", *end;
    struct conf *conf = NULL;
    long long limit = 0, partition = -1;
    int as_json = 0, c, rc = 0;

    static const char *const subs[] = { "tap", "status", "pause", "resume", "replay", "reload", NULL };
    int sub;

    if ((sub = cli_subcommand(argc, argv, "sluice ctl", subs, usage, &rc)) < 0)
        return rc;
    if (sub > 0)
        return ctl_group_main(subs[sub], argc, argv);
    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 'a': admin = optarg; break;
        case 't': token = optarg; break;
        case 'j': as_json = 1; break;
        case 'n':
            limit = strtoll(optarg, &end, 10);
            if (*end || limit < 1) {
                fprintf(stderr, "sluice ctl: --limit wants a number from 1\n");
                return EXIT_USAGE;
            }
            break;
        case 'p':
            partition = strtoll(optarg, &end, 10);
            if (*end || partition < 0 || partition > INT32_MAX) {
                fprintf(stderr, "sluice ctl: --partition wants a number from 0\n");
                return EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || (!file && !admin)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    sink = argv[optind];
    if (!token)
        token = getenv("SLUICE_ADMIN_TOKEN");
    if (file && (!admin || !token)) {
        struct cfg_errors errs = { 0 };
        if (!(conf = conf_load(file, &errs))) {
            for (size_t i = 0; i < errs.n; i++)
                fprintf(stderr, "%s\n", errs.msgs[i]);
            cfg_errors_clear(&errs);
            return EXIT_USAGE;
        }
        if (!admin) {
            if (admin_url_from(conf, url, sizeof url) != 0) {
                fprintf(stderr, "sluice ctl: %s has no admin.listen with a fixed port; give --admin URL\n", file);
                conf_free(conf);
                return EXIT_USAGE;
            }
            admin = url;
        }
        if (!token)
            token = conf->admin_token;
    }
    if (limit && partition >= 0)
        snprintf(query, sizeof query, "?limit=%lld&partition=%lld", limit, partition);
    else if (limit)
        snprintf(query, sizeof query, "?limit=%lld", limit);
    else if (partition >= 0)
        snprintf(query, sizeof query, "?partition=%lld", partition);
    rc = run_tap(admin, token && token[0] ? token : NULL, sink, query, as_json);
    conf_free(conf);
    return rc;
}
