/* `sluice dlq` (dlq_cli.h): reads the dead-letter topic from its start to its end with a
 * consumer of its own (assigned partitions, no group commit), then lists, shows or re-drives. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "cli.h"
#include "conf.h"
#include "dlq_cli.h"
#include "kafka_cli.h"
#include "lib/json.h"
#include "sinks/sink.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

struct letter {
    int32_t dlq_partition;
    int64_t dlq_offset;
    char *key, *value;          /* copies; NULL for none */
    size_t key_len, value_len;
    char *sink, *stage, *reason, *rule, *topic;   /* headers; NULL when absent */
    char *redrive_sink, *redrive_letter;          /* on the redrive topic: whose, and which letter */
    int32_t partition;          /* of the original record; -1 unknown */
    int64_t offset;
};

struct letters {
    struct letter *v;
    size_t n, cap;
};

struct dlq_filter {
    const char *sink, *stage, *reason, *topic;
    int32_t partition;          /* -1: any */
    int64_t from, to;           /* original offsets, inclusive; -1: open */
    long limit;                 /* 0: no limit */
};

static void usage(FILE *out)
{
    fprintf(out,
        "usage: sluice dlq list    -c FILE [filters] [--json]  letters grouped by sink, stage and cause\n"
        "                          (the rule broken, or the reason with its numbers taken out)\n"
        "       sluice dlq show    -c FILE [filters]           the letters, one JSON object a line\n"
        "       sluice dlq redrive -c FILE [filters] [--dry-run]\n"
        "                          send the chosen letters back to their sink through redrive_topic;\n"
        "                          a letter already re-driven to that sink is not sent again\n"
        "filters: --sink NAME       letters of that sink (for redrive: also the sink that gets letters\n"
        "                           of the decode and contract stages, which belong to no sink)\n"
        "         --stage STAGE     sink, decode, contract, loss ...\n"
        "         --reason TEXT     letters whose reason contains TEXT\n"
        "         --topic T [--partition P] [--offsets A-B]  by the original record's place\n"
        "         --limit N         at most N letters\n");
}

static char *dup_bytes(const void *p, size_t len)
{
    char *s = malloc(len + 1);

    if (!s)
        abort();   /* a command-line tool: out of memory ends it */
    if (len)
        memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static char *header_dup(rd_kafka_headers_t *hdrs, const char *name)
{
    const void *v;
    size_t len;

    if (!hdrs || rd_kafka_header_get_last(hdrs, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !v)
        return NULL;
    return dup_bytes(v, len);
}

static void letter_free(struct letter *l)
{
    free(l->key);
    free(l->value);
    free(l->sink);
    free(l->stage);
    free(l->reason);
    free(l->rule);
    free(l->topic);
    free(l->redrive_sink);
    free(l->redrive_letter);
}

static void letters_free(struct letters *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        letter_free(&ls->v[i]);
    free(ls->v);
    memset(ls, 0, sizeof *ls);
}

static void letter_take(struct letters *ls, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs = NULL;
    struct letter *l;
    char *text;

    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? ls->cap * 2 : 256;
        if (!(ls->v = realloc(ls->v, ls->cap * sizeof *ls->v)))
            abort();
    }
    l = &ls->v[ls->n++];
    memset(l, 0, sizeof *l);
    l->dlq_partition = m->partition;
    l->dlq_offset = m->offset;
    if (m->key) {
        l->key = dup_bytes(m->key, m->key_len);
        l->key_len = m->key_len;
    }
    if (m->payload) {
        l->value = dup_bytes(m->payload, m->len);
        l->value_len = m->len;
    }
    rd_kafka_message_headers(m, &hdrs);
    l->sink = header_dup(hdrs, "sluice.sink");
    l->stage = header_dup(hdrs, "sluice.stage");
    l->reason = header_dup(hdrs, "sluice.reason");
    l->rule = header_dup(hdrs, "sluice.rule");
    l->topic = header_dup(hdrs, "sluice.topic");
    l->redrive_sink = header_dup(hdrs, REDRIVE_HEADER_SINK);
    l->redrive_letter = header_dup(hdrs, REDRIVE_HEADER_LETTER);
    text = header_dup(hdrs, "sluice.partition");
    l->partition = text ? (int32_t)strtol(text, NULL, 10) : -1;
    free(text);
    text = header_dup(hdrs, "sluice.offset");
    l->offset = text ? strtoll(text, NULL, 10) : -1;
    free(text);
}

/* Keeps one record of the dead-letter or redrive topic (kafka_cli_read_topic's callback). */
static void on_letter(void *arg, const rd_kafka_message_t *m)
{
    letter_take(arg, m);
}

static int matches(const struct letter *l, const struct dlq_filter *f, int sink_is_target)
{
    if (f->sink && !(l->sink ? strcmp(l->sink, f->sink) == 0 : sink_is_target))
        return 0;
    if (f->stage && (!l->stage || strcmp(l->stage, f->stage) != 0))
        return 0;
    if (f->reason && (!l->reason || !strstr(l->reason, f->reason)))
        return 0;
    if (f->topic && (!l->topic || strcmp(l->topic, f->topic) != 0))
        return 0;
    if (f->partition >= 0 && l->partition != f->partition)
        return 0;
    if (f->from >= 0 && l->offset < f->from)
        return 0;
    if (f->to >= 0 && l->offset > f->to)
        return 0;
    return 1;
}

/* Bytes as a JSON string when they are UTF-8 text, else {"base64": ...}. */
static json_t *bytes_json(const char *p, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out;
    size_t o = 0;
    json_t *j;

    if (!p)
        return json_null();
    if (json_utf8_valid(p, len) && !memchr(p, '\0', len))
        return json_stringn(p, len);
    if (!(out = malloc(len / 3 * 4 + 5)))
        abort();
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)(unsigned char)p[i + 1] << 8;
        if (i + 2 < len)
            v |= (unsigned char)p[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    j = json_pack("{s:s%}", "base64", out, o);
    free(out);
    return j;
}

static json_t *letter_json(const struct letter *l)
{
    return json_pack("{s:{s:i, s:I}, s:s?, s:s?, s:s?, s:s?, s:s?, s:i, s:I, s:o, s:o}", "letter", "partition",
                     (int)l->dlq_partition, "offset", (json_int_t)l->dlq_offset, "sink", l->sink, "stage", l->stage,
                     "rule", l->rule, "reason", l->reason, "topic", l->topic, "partition", (int)l->partition, "offset",
                     (json_int_t)l->offset, "key", bytes_json(l->key, l->key_len), "value",
                     bytes_json(l->value, l->value_len));
}

static void print_json_line(json_t *j)
{
    if (j) {
        json_dumpf(j, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        json_decref(j);
    }
}

/* One group of letters: same sink (or none), stage, topic and cause: the rule they broke, or
 * the reason with its numbers taken out (a row's values, an offset, a byte position), so that
 * one cause is one group. */
struct group {
    const struct letter *first;
    char *cause;
    size_t count;
    int64_t from, to;           /* original offsets seen */
};

static char *cause_of(const struct letter *l)
{
    const char *r = l->rule ? l->rule : l->reason ? l->reason : "";
    char *out = malloc(strlen(r) + 1), *o = out;

    if (!out)
        abort();
    while (*r) {
        if (*r >= '0' && *r <= '9') {
            *o++ = 'N';
            while (*r >= '0' && *r <= '9')
                r++;
        } else {
            *o++ = *r++;
        }
    }
    *o = '\0';
    return out;
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int by_count(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    return (x->count < y->count) - (x->count > y->count);
}

static int cmd_list(const struct letters *ls, const struct dlq_filter *f, int as_json)
{
    struct group *g = calloc(ls->n + 1, sizeof *g);
    size_t ng = 0, total = 0;

    if (!g)
        abort();
    for (size_t i = 0; i < ls->n; i++) {
        const struct letter *l = &ls->v[i];
        char *cause;
        size_t k;
        if (!matches(l, f, 0))
            continue;
        total++;
        cause = cause_of(l);
        for (k = 0; k < ng; k++)
            if (same_text(g[k].first->sink, l->sink) && same_text(g[k].first->stage, l->stage) &&
                same_text(g[k].cause, cause) && same_text(g[k].first->topic, l->topic))
                break;
        if (k == ng)
            g[ng++] = (struct group){ l, cause, 0, l->offset, l->offset };
        else
            free(cause);
        g[k].count++;
        if (l->offset < g[k].from)
            g[k].from = l->offset;
        if (l->offset > g[k].to)
            g[k].to = l->offset;
    }
    qsort(g, ng, sizeof *g, by_count);
    if (!as_json)
        printf("%zu letter%s in %zu group%s\n%7s  %-20s %-9s %-24s %s\n", total, total == 1 ? "" : "s", ng,
               ng == 1 ? "" : "s", "count", "sink", "stage", "topic [offsets]", "reason");
    for (size_t k = 0; k < ng; k++) {
        const struct letter *l = g[k].first;
        if (as_json) {
            print_json_line(json_pack("{s:I, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:I, s:I}", "count", (json_int_t)g[k].count,
                                      "sink", l->sink, "stage", l->stage, "topic", l->topic, "rule", l->rule, "reason",
                                      l->reason, "cause", g[k].cause, "first_offset", (json_int_t)g[k].from,
                                      "last_offset", (json_int_t)g[k].to));
            continue;
        }
        char where[160];
        snprintf(where, sizeof where, "%s [%" PRId64 "-%" PRId64 "]", l->topic ? l->topic : "-", g[k].from, g[k].to);
        printf("%7zu  %-20s %-9s %-24s %.160s\n", g[k].count, l->sink ? l->sink : "(topic)", l->stage ? l->stage : "-",
               where, l->reason ? l->reason : "-");
    }
    for (size_t k = 0; k < ng; k++)
        free(g[k].cause);
    free(g);
    return 0;
}

static int cmd_show(const struct letters *ls, const struct dlq_filter *f)
{
    long shown = 0;

    for (size_t i = 0; i < ls->n && (!f->limit || shown < f->limit); i++)
        if (matches(&ls->v[i], f, 0)) {
            print_json_line(letter_json(&ls->v[i]));
            shown++;
        }
    return 0;
}

/* Whether the configuration has sink @p name and it reads @p topic. */
static const char *sink_check(const struct conf *conf, const char *name, const char *topic)
{
    for (size_t k = 0; k < conf->nsinks; k++) {
        if (strcmp(conf->sinks[k]->name, name) != 0)
            continue;
        for (size_t t = 0; topic && t < conf->sinks[k]->topics.n; t++)
            if (strcmp(conf->sinks[k]->topics.v[t], topic) == 0)
                return NULL;
        return "the sink does not read the letter's topic";
    }
    return "no such sink in the configuration";
}

/* "partition:offset" of a letter, as the redrive topic's header keeps it. */
static void letter_id(char *out, size_t outlen, int32_t partition, int64_t offset)
{
    snprintf(out, outlen, "%" PRId32 ":%" PRId64, partition, offset);
}

/* Whether the redrive topic already holds letter @p id for @p sink (a re-drive run twice sends
 * nothing twice). */
static int already_sent(const struct letters *sent, const char *id, const char *sink)
{
    for (size_t i = 0; i < sent->n; i++)
        if (same_text(sent->v[i].redrive_letter, id) && same_text(sent->v[i].redrive_sink, sink))
            return 1;
    return 0;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    size_t *failed = opaque;

    (void)rk;
    if (m->err) {
        (*failed)++;
        fprintf(stderr, "sluice dlq: a re-driven record was not stored: %s\n", rd_kafka_err2str(m->err));
    }
}

static int cmd_redrive(const struct conf *conf, rd_kafka_t *reader, const struct letters *ls,
                       const struct dlq_filter *f, int dry_run)
{
    struct letters sent = { 0 };
    rd_kafka_t *producer = NULL;
    size_t chosen = 0, skipped = 0, refused = 0, failed = 0, produced = 0;
    char err[512], id[48];
    int rc = EXIT_RUNTIME;

    if (!conf->redrive_topic) {
        fprintf(stderr, "sluice dlq redrive: set \"redrive_topic\" in %s (and reload sluice) first: sluice reads "
                        "re-driven letters from it\n", conf->file);
        return EXIT_USAGE;
    }
    /* What was re-driven before, so that nothing is sent twice. */
    if (kafka_cli_read_topic(reader, conf->redrive_topic, on_letter, &sent, err, sizeof err) != 0) {
        fprintf(stderr, "sluice dlq redrive: %s\n", err);
        return EXIT_RUNTIME;
    }
    if (!dry_run && !(producer = kafka_cli_producer_new(conf, on_delivery, &failed, err, sizeof err))) {
        fprintf(stderr, "sluice dlq redrive: producer: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < ls->n && (!f->limit || (long)chosen < f->limit); i++) {
        const struct letter *l = &ls->v[i];
        const char *target = l->sink ? l->sink : f->sink, *why;
        if (!matches(l, f, 1))
            continue;
        chosen++;
        if (!target) {
            fprintf(stderr, "letter %" PRId32 ":%" PRId64 " (%s stage) belongs to no sink: give --sink\n", l->dlq_partition,
                    l->dlq_offset, l->stage ? l->stage : "?");
            refused++;
            continue;
        }
        if ((why = sink_check(conf, target, l->topic))) {
            fprintf(stderr, "letter %" PRId32 ":%" PRId64 " for %s: %s\n", l->dlq_partition, l->dlq_offset, target, why);
            refused++;
            continue;
        }
        letter_id(id, sizeof id, l->dlq_partition, l->dlq_offset);
        if (already_sent(&sent, id, target)) {
            skipped++;
            continue;
        }
        if (dry_run) {
            printf("would re-drive letter %s (%s [%" PRId32 "] @%" PRId64 ") to %s\n", id, l->topic ? l->topic : "?",
                   l->partition, l->offset, target);
            produced++;
            continue;
        }
        rd_kafka_headers_t *h = rd_kafka_headers_new(3);
        rd_kafka_header_add(h, REDRIVE_HEADER_SINK, -1, target, -1);
        rd_kafka_header_add(h, REDRIVE_HEADER_TOPIC, -1, l->topic ? l->topic : "", -1);
        rd_kafka_header_add(h, REDRIVE_HEADER_LETTER, -1, id, -1);
        /* Keyed as the record was: one key's re-driven records stay in one partition, in order. */
        rd_kafka_resp_err_t kerr = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(conf->redrive_topic),
                                                     RD_KAFKA_V_KEY(l->key, l->key_len),
                                                     RD_KAFKA_V_VALUE(l->value, l->value_len),
                                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                                     RD_KAFKA_V_END);
        if (kerr) {
            rd_kafka_headers_destroy(h);
            fprintf(stderr, "sluice dlq redrive: %s\n", rd_kafka_err2str(kerr));
            goto out;
        }
        produced++;
    }
    if (producer && rd_kafka_flush(producer, KAFKA_CLI_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "sluice dlq redrive: not every record was stored within %d s\n", KAFKA_CLI_TIMEOUT_MS / 1000);
        goto out;
    }
    printf("%s %zu letter%s to %s; %zu already re-driven, %zu refused (of %zu chosen)\n",
           dry_run ? "would re-drive" : "re-drove", produced - failed, produced - failed == 1 ? "" : "s",
           conf->redrive_topic, skipped, refused, chosen);
    rc = failed || refused ? EXIT_RUNTIME : 0;
out:
    if (producer)
        rd_kafka_destroy(producer);
    letters_free(&sent);
    return rc;
}

int dlq_cli_main(int argc, char **argv)
{
    static const struct option longs[] = {
        { "config", required_argument, NULL, 'c' }, { "sink", required_argument, NULL, 's' },
        { "stage", required_argument, NULL, 'S' },  { "reason", required_argument, NULL, 'r' },
        { "topic", required_argument, NULL, 't' },  { "partition", required_argument, NULL, 'p' },
        { "offsets", required_argument, NULL, 'o' }, { "limit", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },         { "dry-run", no_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 }
    };
    struct dlq_filter f = { .partition = -1, .from = -1, .to = -1 };
    const char *file = NULL, *sub;
    int as_json = 0, dry_run = 0, c, rc = 0;
    struct cfg_errors errs = { 0 };
    struct letters ls = { 0 };
    struct conf *conf;
    rd_kafka_t *reader;
    char err[512];

    static const char *const subs[] = { "list", "show", "redrive", NULL };

    if (cli_subcommand(argc, argv, "sluice dlq", subs, usage, &rc) < 0)
        return rc;
    sub = argv[1];
    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 's': f.sink = optarg; break;
        case 'S': f.stage = optarg; break;
        case 'r': f.reason = optarg; break;
        case 't': f.topic = optarg; break;
        case 'p': f.partition = (int32_t)strtol(optarg, NULL, 10); break;
        case 'o':
            if (sscanf(optarg, "%" SCNd64 "-%" SCNd64, &f.from, &f.to) != 2 || f.from < 0 || f.to < f.from) {
                fprintf(stderr, "sluice dlq: --offsets wants A-B with 0 <= A <= B\n");
                return EXIT_USAGE;
            }
            break;
        case 'n': f.limit = strtol(optarg, NULL, 10); break;
        case 'j': as_json = 1; break;
        case 'd': dry_run = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (!file || optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!(conf = conf_load(file, &errs))) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        cfg_errors_clear(&errs);
        return EXIT_USAGE;
    }
    if (!(reader = kafka_cli_reader_new(conf, err, sizeof err))) {
        fprintf(stderr, "sluice dlq: %s\n", err);
        conf_free(conf);
        return EXIT_RUNTIME;
    }
    if (kafka_cli_read_topic(reader, conf->dead_letter_topic, on_letter, &ls, err, sizeof err) != 0) {
        fprintf(stderr, "sluice dlq: %s\n", err);
        rc = EXIT_RUNTIME;
    } else if (strcmp(sub, "list") == 0) {
        rc = cmd_list(&ls, &f, as_json);
    } else if (strcmp(sub, "show") == 0) {
        rc = cmd_show(&ls, &f);
    } else {
        rc = cmd_redrive(conf, reader, &ls, &f, dry_run);
    }
    letters_free(&ls);
    rd_kafka_destroy(reader);
    conf_free(conf);
    return rc;
}
