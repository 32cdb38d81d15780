/* Loading the configuration: the main file, its inline sinks and one file per sink in sinks_dir.
 * Every problem is collected with its location (not only the first one); a configuration with
 * any problem is not returned at all. Values taken from the environment never reach a message. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "conf.h"
#include "conf_kafka.h"
#include "conf_src.h"
#include "filter.h"
#include "../sinks/sink.h"
#include "lib/buf.h"


/* What conf_load allocates: struct conf first, so conf_free finds the rest from it. */
struct conf_main {
    struct conf conf;
    json_t *sinks;      /* the inline sink objects, only while loading */
};

/* ------------------------------------------------------------------------------------------ */
/* Option tables                                                                               */

static const char *const conf_log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const conf_log_formats[] = { "logfmt", "json", NULL };
static const char *const conf_on_failure[] = { "dead_letter", "block", NULL };
static const char *const conf_sink_start[] = { "earliest", "committed", "latest", NULL };   /* enum sink_start */

static int conf_nonempty_validate(const json_t *value, char *err, size_t errlen)
{
    if (json_string_length(value) > 0)
        return 0;
    snprintf(err, errlen, "must not be empty");
    return -1;
}

static int conf_sink_name_validate(const json_t *value, char *err, size_t errlen)
{
    const char *s = json_string_value(value);
    size_t n = strlen(s);

    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') {
            n = 0;
            break;
        }
    }
    if (n >= 1 && n <= 100)
        return 0;
    snprintf(err, errlen, "must be 1..100 characters of A-Z a-z 0-9 . _ -");
    return -1;
}

static int conf_topics_validate(const json_t *value, char *err, size_t errlen)
{
    if (json_array_size(value) > 0)
        return 0;
    snprintf(err, errlen, "a sink needs at least one topic");
    return -1;
}

#define M(field) offsetof(struct conf_main, conf.field)

static const struct cfg_opt conf_admin_opts[] = {
    CFG_STR("listen", "\"127.0.0.1:9644\"", M(admin_listen), "Address of the admin HTTP API, host:port"),
    { .name = "token", .type = CFG_T_STR, .offset = M(admin_token), .flags = CFG_SECRET,
      .help = "Bearer token the admin API requires; unset: no token (use \"${NAME}\")" },
    CFG_INT("max_connections", "256", 1, 100000, M(admin_max_connections),
            "Connections open at once; at the limit a new one closes the oldest still sending its request"),
    CFG_INT("request_timeout_ms", "10000", 100, 600000, M(admin_request_timeout_ms),
            "Time a client has to send a whole request (from connecting, or from the previous answer) and to read the answer; over it: 408"),
    CFG_INT("max_header_bytes", "16384", 1024, 65535, M(admin_max_header_bytes),
            "Request line and headers together; over it: 431 (a request line over 8192 bytes: 414)"),
    CFG_INT("max_headers", "64", 1, 100, M(admin_max_headers), "Header lines of a request; over it: 431"),
    CFG_END
};

static const struct cfg_opt conf_health_opts[] = {
    { .name = "listen", .type = CFG_T_STR, .offset = M(health_listen),
      .help = "Address (host:port) of the health listener: GET /healthz, /readyz and /metrics without a token, "
              "for probes and scrapes (the admin API's limits apply); unset: not served. In a container: \"0.0.0.0:9645\"" },
    CFG_END
};

static const struct cfg_opt conf_control_opts[] = {
    { .name = "topic", .type = CFG_T_STR, .offset = M(control_topic), .validate = conf_nonempty_validate,
      .help = "The group's control topic (compacted, one partition; created when missing): `sluice ctl` pauses, "
              "resumes and replays sinks in every replica through it, and each replica announces its admin API "
              "there; unset: pause, resume and replay act on one replica, through its admin API" },
    { .name = "advertise", .type = CFG_T_STR, .offset = M(control_advertise), .validate = conf_nonempty_validate,
      .help = "The admin API's address as other hosts reach it (host:port or a URL), announced on the control topic; "
              "default: admin.listen, a wildcard host replaced by this host's name. In Kubernetes: \"${POD_IP}:9644\"" },
    CFG_INT("heartbeat_ms", "10000", 500, 600000, M(control_heartbeat_ms),
            "How often a replica announces itself; `sluice ctl` counts one silent for 3 of them as gone"),
    CFG_END
};

static const struct cfg_opt conf_log_opts[] = {
    CFG_ENUM("level", "\"info\"", conf_log_levels, M(log_level), "Lowest level written"),
    CFG_ENUM("format", "\"logfmt\"", conf_log_formats, M(log_format), "Format of each log line"),
    CFG_END
};

static const struct cfg_opt conf_opts[] = {
    { .name = "kafka", .type = CFG_T_JSON, .def = "{\"group.id\": \"sluice\"}", .offset = M(kafka),
      .help = "librdkafka consumer properties (strings, numbers or booleans); group.id defaults "
              "to \"sluice\"; offset commits are managed by sluice" },
    CFG_SECTION("admin", conf_admin_opts, "The admin HTTP API"),
    CFG_SECTION("health", conf_health_opts, "The health listener for probes and scrapes"),
    CFG_SECTION("control", conf_control_opts, "Group-wide operations (`sluice ctl`) through a control topic"),
    { .name = "dead_letter_topic", .type = CFG_T_STR, .def = "\"sluice.dlq\"",
      .offset = M(dead_letter_topic), .validate = conf_nonempty_validate,
      .help = "Kafka topic that receives records no sink could apply" },
    { .name = "redrive_topic", .type = CFG_T_STR, .offset = M(redrive_topic), .validate = conf_nonempty_validate,
      .help = "Kafka topic of dead letters re-driven by `sluice dlq redrive`: read by every sink, each record "
              "applied only by the sink it names; unset: no re-drive" },
    { .name = "sinks_dir", .type = CFG_T_STR, .offset = M(sinks_dir),
      .validate = conf_nonempty_validate,
      .help = "Directory of sink files (*.json, one sink each), relative to this file" },
    { .name = "sinks", .type = CFG_T_JSON, .def = "[]", .offset = offsetof(struct conf_main, sinks),
      .help = "Sinks declared inline: an array of sink objects" },
    CFG_SECTION("log", conf_log_opts, "Logging"),
    CFG_INT("shutdown_timeout_ms", "10000", 0, 600000, M(shutdown_timeout_ms),
            "How long a stop waits for in-flight batches"),
    CFG_INT("commit_interval_ms", "1000", 10, 60000, M(commit_interval_ms),
            "How often finished offsets are committed to Kafka"),
    CFG_INT("max_buffered_bytes", "67108864", 65536, 68719476736LL, M(max_buffered_bytes),
            "Memory the router may hold for all sinks together (each record counted once, what each "
            "sink made of it on top); when reached, a sink over its even share pauses its partitions"),
    CFG_SECTION("registry", conf_registry_opts, "The Schema Registry that topics with a \"confluent\" format are read with"),
    { .name = "topics", .type = CFG_T_JSON, .def = "{}", .offset = M(products.topics_json),
      .help = "Per topic name, how its records are encoded: an object of `topics.<name>` sections "
              "(see below); a topic not listed has JSON values and keys as bytes" },
    CFG_END
};

#undef M
#define S(field) offsetof(struct sink, field)

static const struct cfg_opt conf_batch_opts[] = {
    CFG_INT("max_records", "500", 1, 1000000, S(batch.max_records), "Records per batch at most"),
    CFG_INT("max_bytes", "1048576", 1, 1073741824, S(batch.max_bytes), "Bytes per batch at most"),
    CFG_INT("linger_ms", "10", 0, 600000, S(batch.linger_ms),
            "How long a partial batch waits for more records"),
    CFG_END
};

static const struct cfg_opt conf_retry_opts[] = {
    CFG_INT("max_attempts", "10", 1, 1000000, S(retry.max_attempts),
            "Attempts of a batch before it fails"),
    CFG_INT("initial_backoff_ms", "100", 1, 3600000, S(retry.initial_backoff_ms),
            "Backoff before the first retry"),
    CFG_INT("max_backoff_ms", "30000", 1, 86400000, S(retry.max_backoff_ms),
            "Longest backoff between retries"),
    CFG_END
};

static const struct cfg_opt conf_sink_opts[] = {
    { .name = "name", .type = CFG_T_STR, .offset = S(name), .flags = CFG_REQUIRED,
      .validate = conf_sink_name_validate, .help = "Unique name of the sink (A-Z a-z 0-9 . _ -)" },
    { .name = "type", .type = CFG_T_STR, .offset = S(type), .flags = CFG_REQUIRED,
      .help = "Sink type; its options go in a section of the same name" },
    { .name = "topics", .type = CFG_T_STRLIST, .offset = S(topics), .flags = CFG_REQUIRED,
      .validate = conf_topics_validate, .help = "Kafka topics the sink reads" },
    CFG_SECTION("batch", conf_batch_opts, "Batching"),
    CFG_SECTION("retry", conf_retry_opts, "Retries of failed batches"),
    CFG_JSON("filter", S(filter), "Only records that pass this filter reach the sink"),
    CFG_ENUM("on_failure", "\"dead_letter\"", conf_on_failure, S(on_failure),
             "What a record the sink cannot take does after the last attempt: go to the dead-letter "
             "topic, or block (the sink is parked and retries; nothing is skipped)"),
    CFG_ENUM("start", "\"earliest\"", conf_sink_start, S(start),
             "Where the sink begins on a partition it has no position of its own in yet: the whole "
             "retained topic, the group's committed offset, or the log end"),
    CFG_INT("max_buffered_records", "100000", 1, 100000000, S(max_buffered_records),
            "Records held in memory for the sink (queued or in flight) before its partitions pause"),
    CFG_INT("max_buffered_bytes", "8388608", 1024, 17179869184LL, S(max_buffered_bytes),
            "Memory held for the sink before its partitions pause: keys, values, mapped forms, "
            "parsed JSON (as allocated) and bookkeeping of its queued and in-flight records"),
    CFG_INT("park_after_ms", "5000", 100, 3600000, S(park_after_ms),
            "How long the sink may hold a partition paused with a full buffer before it is parked "
            "(its records dropped from memory, its positions kept) so the other sinks go on"),
    CFG_INT("max_record_bytes", "1048576", 1, 1073741824, S(max_record_bytes),
            "A record whose key and value together are larger goes to the dead-letter topic"),
    { .name = "owner", .type = CFG_T_STR, .offset = S(owner), .validate = conf_nonempty_validate,
      .help = "Who answers for the sink (a team, a person): shown in GET /sinks and as the owner "
              "label of sluice_sink_info" },
    { .name = "description", .type = CFG_T_STR, .offset = S(description),
      .help = "What the sink is for, in a sentence (JSON has no comments): shown in GET /sinks" },
    CFG_END
};

#undef S

/* ------------------------------------------------------------------------------------------ */
/* Which values are secret (only those are masked in messages)                                 */

/* One step of a path as cfg_path_key/cfg_path_index write it: the member's key, or an index's
 * digits, into @p key; returns the rest of the path. */
static const char *conf_path_step(const char *p, char *key, size_t keylen)
{
    size_t o = 0;

    if (*p == '.')
        p++;
    if (p[0] == '[' && p[1] == '"') {
        for (p += 2; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (o + 1 < keylen)
                key[o++] = *p;
        }
        p += *p == '"';
        p += *p == ']';
    } else if (*p == '[') {
        for (p++; *p && *p != ']'; p++)
            if (o + 1 < keylen)
                key[o++] = *p;
        p += *p == ']';
    } else {
        for (; *p && *p != '.' && *p != '['; p++)
            if (o + 1 < keylen)
                key[o++] = *p;
    }
    key[o] = '\0';
    return p;
}


static int conf_table_secret(const struct cfg_opt *opts, const char *path)
{
    char key[256];
    const char *rest = conf_path_step(path, key, sizeof key);

    for (const struct cfg_opt *o = opts; o->name; o++) {
        if (strcmp(o->name, key) != 0)
            continue;
        if (o->type == CFG_T_SECTION)
            return conf_table_secret(o->section, rest);
        /* a free-form JSON option (headers, a filter) has no declared shape: keep it masked */
        return (o->flags & CFG_SECRET) || o->type == CFG_T_JSON;
    }
    return 1;   /* an unknown key: nothing says it is harmless */
}

/* A path inside the sink object @p obj. */
static int conf_sink_secret(const json_t *obj, const char *path)
{
    const char *type = json_string_value(json_object_get(obj, "type"));
    const struct sink_ops *ops = type ? sink_ops_find(type) : NULL;
    char key[256];
    const char *rest = conf_path_step(path, key, sizeof key);

    if (ops && strcmp(key, ops->type) == 0)
        return conf_table_secret(ops->opts, rest);
    return conf_table_secret(conf_sink_opts, path);
}

static int conf_sink_file_secret(const struct conf_src *src, const char *path)
{
    return conf_sink_secret(src->root, path);
}

static int conf_main_secret(const struct conf_src *src, const char *path)
{
    char key[256], sub[256];
    const char *rest = conf_path_step(path, key, sizeof key);

    if (strcmp(key, "kafka") == 0) {
        conf_path_step(rest, sub, sizeof sub);
        return conf_kafka_secret(sub);
    }
    if (strcmp(key, "sinks") == 0) {
        rest = conf_path_step(rest, sub, sizeof sub);
        return conf_sink_secret(json_array_get(json_object_get(src->root, "sinks"),
                                               strtoul(sub, NULL, 10)), rest);
    }
    if (strcmp(key, "topics") == 0) {
        rest = conf_path_step(rest, sub, sizeof sub);
        return conf_table_secret(conf_topic_opts, rest);
    }
    return conf_table_secret(conf_opts, path);
}

/* ------------------------------------------------------------------------------------------ */
/* Sinks                                                                                       */

static int conf_sinks_add(struct conf *conf, struct conf_ctx *ctx, struct sink *sk, int line)
{
    struct sink **v;
    int *lines;

    v = realloc(conf->sinks, (conf->nsinks + 1) * sizeof *v);
    if (!v)
        return -1;
    conf->sinks = v;
    lines = realloc(ctx->name_lines, (conf->nsinks + 1) * sizeof *lines);
    if (!lines)
        return -1;
    ctx->name_lines = lines;
    conf->sinks[conf->nsinks] = sk;
    ctx->name_lines[conf->nsinks] = line;
    conf->nsinks++;
    return 0;
}

static void conf_sink_type_unknown(struct conf_ctx *ctx, const struct cfg_doc *doc,
                                   const char *path, const char *type)
{
    const char *names[64], *hint;
    char known[512];
    size_t n = 0, o = 0;

    known[0] = '\0';
    for (size_t i = 0; sink_types[i]; i++) {
        if (n < sizeof names / sizeof *names)
            names[n++] = sink_types[i]->type;
        if (o < sizeof known)
            o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "",
                                  sink_types[i]->type);
    }
    hint = cfg_suggest(type, names, n);
    if (hint)
        conf_err(ctx, doc, path, "unknown sink type \"%s\"; did you mean \"%s\"?", type, hint);
    else
        conf_err(ctx, doc, path, "unknown sink type \"%s\" (known types: %s)", type, known);
}

/* Checks across the options of a sink, once each of them is in range. */
static void conf_sink_check(struct conf_ctx *ctx, const struct cfg_doc *doc, const char *path,
                            struct sink *sk)
{
    char sub[CFG_PATH_MAX], item[CFG_PATH_MAX], err[CONF_ERR_MAX];

    if (sk->retry.initial_backoff_ms > 0 && sk->retry.max_backoff_ms > 0 &&
        sk->retry.max_backoff_ms < sk->retry.initial_backoff_ms) {
        cfg_path_key(sub, sizeof sub, path, "retry");
        cfg_path_key(item, sizeof item, sub, "max_backoff_ms");
        conf_err(ctx, doc, item, "must be at least retry.initial_backoff_ms (%lld)",
                 sk->retry.initial_backoff_ms);
    }
    cfg_path_key(sub, sizeof sub, path, "topics");
    for (size_t i = 0; i < sk->topics.n; i++) {
        if (sk->topics.v[i][0] == '\0') {
            cfg_path_index(item, sizeof item, sub, i);
            conf_err(ctx, doc, item, "must not be empty");
        }
    }
    if (sk->filter) {
        err[0] = '\0';
        if (filter_validate(sk->filter, err, sizeof err) != 0) {
            cfg_path_key(sub, sizeof sub, path, "filter");
            conf_err(ctx, doc, sub, "%s", err[0] ? err : "invalid filter");
        }
    }
}

static int conf_table_has(const struct cfg_opt *opts, const char *key)
{
    for (const struct cfg_opt *o = opts; o->name; o++)
        if (strcmp(o->name, key) == 0)
            return 1;
    return 0;
}

/* Keys of @p obj (at @p path) that @p here does not know but @p there does: each is reported
 * as in the wrong place (better than a "did you mean" about a near name) and appended to
 * @p extra, NULL-terminated, so that cfg_apply does not report it again as unknown. */
static void conf_misplaced_keys(struct conf_ctx *ctx, const struct cfg_doc *doc, const char *path,
                                const json_t *obj, const struct cfg_opt *here, const struct cfg_opt *there,
                                const char *type, const char **extra, size_t *nextra)
{
    char kpath[CFG_PATH_MAX];
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)obj, key, value) {
        int known = conf_table_has(here, key);

        for (size_t i = 0; !known && i < *nextra; i++)
            known = strcmp(extra[i], key) == 0;
        if (known || !conf_table_has(there, key))
            continue;
        cfg_path_key(kpath, sizeof kpath, path, key);
        if (there == conf_sink_opts)
            conf_err(ctx, doc, kpath, "\"%s\" is an option of the sink itself, not of its \"%s\" section",
                     key, type);
        else
            conf_err(ctx, doc, kpath, "\"%s\" is an option of the \"%s\" section, not of the sink itself",
                     key, type);
        extra[(*nextra)++] = key;
    }
}

/* Builds one sink from @p obj at @p path of @p src; adds it to @p conf when its type is known. */
/* A sink type's check reports here: each problem at its option of the sink's section. */
struct sink_problems {
    struct sink_check check;    /* first: the sink sees only this */
    struct conf_ctx *ctx;
    const struct cfg_doc *doc;
    const char *section_path;
};

static void conf_sink_problem(struct sink_check *c, const char *key, const char *msg)
{
    struct sink_problems *p = (struct sink_problems *)c;
    char path[CFG_PATH_MAX];

    if (key)
        cfg_path_key(path, sizeof path, p->section_path, key);
    else
        snprintf(path, sizeof path, "%s", p->section_path);
    conf_err(p->ctx, p->doc, path, "%s", msg);
}

static void conf_sink_load(struct conf_ctx *ctx, struct conf_src *src, const json_t *obj,
                           const char *path, struct conf *conf)
{
    const struct cfg_doc *doc = &src->doc;
    const json_t *type = json_object_get(obj, "type"), *section = NULL;
    const struct sink_ops *ops = NULL;
    char tpath[CFG_PATH_MAX], spath[CFG_PATH_MAX], npath[CFG_PATH_MAX], err[CONF_ERR_MAX];
    const char **extra = NULL;
    struct sink *sk = NULL;
    size_t ntypes = 0, nextra = 0;
    int before, line, col;

    if (!json_is_object(obj)) {
        conf_err(ctx, doc, path, "expected an object");
        return;
    }
    cfg_path_key(tpath, sizeof tpath, path, "type");
    if (json_is_string(type)) {
        ops = sink_ops_find(json_string_value(type));
        if (!ops)
            conf_sink_type_unknown(ctx, doc, tpath, json_string_value(type));
    }
    /* without a known type, the common options are still checked (on a bare struct sink) so
     * that one pass reports every problem; any type's section is then left alone */
    while (sink_types[ntypes])
        ntypes++;
    /* room for the type names and for every key, should each be misplaced */
    extra = calloc(ntypes + 3 + json_object_size(obj) +
                   json_object_size(ops ? json_object_get(obj, ops->type) : NULL), sizeof *extra);
    sk = calloc(1, ops && ops->size > sizeof *sk ? ops->size : sizeof *sk);
    if (!extra || !sk) {
        conf_err(ctx, doc, path, "out of memory");
        goto fail;
    }
    sk->ops = ops;
    if (ops) {
        extra[nextra++] = ops->type;
        conf_misplaced_keys(ctx, doc, path, obj, conf_sink_opts, ops->opts, ops->type, extra, &nextra);
    } else {
        for (size_t i = 0; i < ntypes; i++)
            extra[nextra++] = sink_types[i]->type;
        if (json_is_string(type))
            extra[nextra++] = json_string_value(type);
    }
    ctx->nerr += cfg_apply(conf_sink_opts, obj, sk, doc, path, extra, ctx->errs);
    conf_sink_check(ctx, doc, path, sk);
    conf_src_drop_placeholders(ctx, src);   /* a placeholder's type or form is no problem */
    before = ctx->nerr;
    if (ops) {
        section = json_object_get(obj, ops->type);
        cfg_path_key(spath, sizeof spath, path, ops->type);
        if (section && !json_is_object(section)) {
            conf_err(ctx, doc, spath, "expected an object");
        } else {
            const char **moved = extra + nextra + 1;   /* after the top level's, NULL-terminated */
            size_t nmoved = 0;

            if (section)
                conf_misplaced_keys(ctx, doc, spath, section, ops->opts, conf_sink_opts, ops->type, moved,
                                    &nmoved);
            ctx->nerr += cfg_apply(ops->opts, section, sk, doc, spath, moved, ctx->errs);
        }
        conf_src_drop_placeholders(ctx, src);
    }
    /* A type's check reads its own section only, and may rely on each of those options being
     * valid: it runs whenever the section is, so its problems come with the common ones. */
    if (ops && ops->check && ctx->nerr == before) {
        struct sink_problems problems = { { conf_sink_problem, 0 }, ctx, doc, spath };
        const char *key = NULL;

        if (ops->check(sk, &problems.check) != 0 && problems.check.problems == 0)
            conf_err(ctx, doc, spath, "invalid options");
        else if (problems.check.problems == 0 && ops->warn && ops->warn(sk, err, sizeof err, &key)) {
            cfg_path_key(npath, sizeof npath, spath, key ? key : "");
            cfg_error(&conf->warnings, doc, key ? npath : spath, "%s", err);
        }
    }
    sk->conf_file = strdup(src->file);
    sk->conf_path = strdup(path);
    if (!sk->conf_file || !sk->conf_path) {
        conf_err(ctx, doc, path, "out of memory");
        goto fail;
    }
    if (!ops)
        goto fail;   /* checked, but nothing to run */
    cfg_path_key(npath, sizeof npath, path, "name");
    if (cfg_doc_locate(doc, npath, &line, &col) != 0)
        line = 0;
    for (size_t i = 0; sk->name && i < conf->nsinks; i++) {
        const struct sink *first = conf->sinks[i];

        if (!first->name || strcmp(first->name, sk->name) != 0)
            continue;
        if (ctx->name_lines[i] > 0)
            conf_err(ctx, doc, npath, "duplicate sink name \"%s\" (first declared at %s:%d)",
                     sk->name, first->conf_file, ctx->name_lines[i]);
        else
            conf_err(ctx, doc, npath, "duplicate sink name \"%s\" (first declared in %s)",
                     sk->name, first->conf_file);
        break;
    }
    if (conf_sinks_add(conf, ctx, sk, line) != 0) {
        conf_err(ctx, doc, path, "out of memory");
        goto fail;
    }
    sk = NULL;
fail:
    conf_sink_free(sk);
    free(extra);
}

static void conf_inline_sinks_load(struct conf_ctx *ctx, struct conf_src *src,
                                   struct conf_main *cm)
{
    char path[CFG_PATH_MAX];
    json_t *obj;
    size_t i;

    if (!json_is_array(cm->sinks)) {
        conf_err(ctx, &src->doc, "sinks", "expected an array of sink objects");
        return;
    }
    json_array_foreach(cm->sinks, i, obj) {
        cfg_path_index(path, sizeof path, "sinks", i);
        conf_sink_load(ctx, src, obj, path, &cm->conf);
    }
}

static int conf_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @p dir joined to the directory of @p file, unless it is absolute. */
static char *conf_dir_resolve(const char *file, const char *dir)
{
    const char *slash = strrchr(file, '/');
    char *out;
    size_t n;

    if (dir[0] == '/' || !slash)
        return strdup(dir);
    n = (size_t)(slash - file) + 1 + strlen(dir) + 1;
    out = malloc(n);
    if (out)
        snprintf(out, n, "%.*s/%s", (int)(slash - file), file, dir);
    return out;
}

/* The sink files of conf->sinks_dir (*.json, *.yaml, *.yml), in name order. */
static int conf_dir_list(struct conf_ctx *ctx, struct conf_src *main_src, struct conf *conf,
                         const char *shown_dir, char ***names, size_t *nnames)
{
    struct dirent *de;
    DIR *d;
    int rc = -1;

    d = opendir(conf->sinks_dir);
    if (!d) {
        conf_err(ctx, &main_src->doc, "sinks_dir", "cannot open directory \"%s\": %s", shown_dir,
                 strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (!conf_src_is_file_name(de->d_name))
            continue;
        if (conf_strv_push(names, nnames, strdup(de->d_name)) != 0) {
            conf_err(ctx, &main_src->doc, "sinks_dir", "out of memory");
            goto fail;
        }
    }
    if (*nnames)
        qsort(*names, *nnames, sizeof **names, conf_name_cmp);
    rc = 0;
fail:
    closedir(d);
    return rc;
}

/* Reads sink file @p path (named @p shown in messages) into @p conf; its problems go to ctx. */
static void conf_sink_file_load(struct conf_ctx *ctx, struct conf *conf, const char *path,
                                const char *shown, char **name)
{
    struct conf_src src;

    if (conf_src_open(ctx, &src, path, shown) == 0) {
        src.is_secret = conf_sink_file_secret;
        conf_env_walk(ctx, &src, src.root, "");
        conf_sink_load(ctx, &src, src.root, "", conf);
        if (name && json_is_string(json_object_get(src.root, "name")))
            *name = strdup(json_string_value(json_object_get(src.root, "name")));
    }
    conf_src_finish(ctx, &src);
    conf_src_free(&src);
}

/* The name an invalid sink file goes by: its own when readable, valid and not taken by another
 * sink (running or set aside), else the file's name, which is unique in the directory. */
static char *conf_invalid_name(const struct conf *conf, char *own, const char *file_name)
{
    char err[128];
    json_t *value = own ? json_string(own) : NULL;
    int usable = value && conf_sink_name_validate(value, err, sizeof err) == 0;

    json_decref(value);
    for (size_t i = 0; usable && i < conf->nsinks; i++)
        usable = strcmp(conf->sinks[i]->name, own) != 0;
    for (size_t i = 0; usable && i < conf->ninvalid; i++)
        usable = strcmp(conf->invalid[i].name, own) != 0;
    if (usable)
        return own;
    free(own);
    return strdup(file_name);
}

/* Sets a broken sink file aside with its messages (taken from @p errs). 0, or -1 out of memory. */
static int conf_invalid_add(struct conf *conf, char *name, const char *shown, struct cfg_errors *errs)
{
    struct conf_invalid_sink *v = realloc(conf->invalid, (conf->ninvalid + 1) * sizeof *v);
    char *file = strdup(shown);

    if (!v || !name || !file) {
        if (v)
            conf->invalid = v;
        free(name);
        free(file);
        return -1;
    }
    conf->invalid = v;
    v[conf->ninvalid++] = (struct conf_invalid_sink){ name, file, errs->msgs, errs->n };
    errs->msgs = NULL;
    errs->n = 0;
    return 0;
}

/* Loads one sink file of sinks_dir; @p shown_dir names the directory in messages. With
 * @p isolate, a file with any problem is set aside (conf->invalid) and the rest goes on. */
static void conf_dir_sink_load(struct conf_ctx *ctx, struct conf *conf, const char *shown_dir,
                               const char *name, int isolate)
{
    struct cfg_errors own = { 0 }, *outer = ctx->errs;
    char *path, *shown, *sink_name = NULL;
    size_t nsinks = conf->nsinks;
    int nerr = ctx->nerr;

    path = malloc(strlen(conf->sinks_dir) + strlen(name) + 2);
    shown = malloc(strlen(shown_dir) + strlen(name) + 2);
    if (!path || !shown) {
        conf_err(ctx, NULL, "", "%s/%s: out of memory", shown_dir, name);
        goto fail;
    }
    snprintf(path, strlen(conf->sinks_dir) + strlen(name) + 2, "%s/%s", conf->sinks_dir, name);
    snprintf(shown, strlen(shown_dir) + strlen(name) + 2, "%s/%s", shown_dir, name);
    if (!isolate) {
        conf_sink_file_load(ctx, conf, path, shown, NULL);
        goto fail;
    }
    ctx->errs = &own;
    conf_sink_file_load(ctx, conf, path, shown, &sink_name);
    ctx->errs = outer;
    if (own.n == 0 && ctx->nerr == nerr) {
        free(sink_name);
        goto fail;
    }
    ctx->nerr = nerr;
    while (conf->nsinks > nsinks)
        conf_sink_free(conf->sinks[--conf->nsinks]);
    if (own.n == 0)
        cfg_error(&own, NULL, "", "%s: invalid", shown);
    if (conf_invalid_add(conf, conf_invalid_name(conf, sink_name, name), shown, &own) != 0)
        conf_err(ctx, NULL, "", "%s: out of memory", shown);
fail:
    cfg_errors_clear(&own);
    free(path);
    free(shown);
}

/* ------------------------------------------------------------------------------------------ */
/* Public                                                                                      */

struct conf *conf_load(const char *file, struct cfg_errors *errs)
{
    return conf_load_with(file, NULL, errs);
}

struct conf *conf_load_with(const char *file, const struct conf_load_opts *opts, struct cfg_errors *errs)
{
    struct conf_ctx ctx = { .errs = errs, .env_optional = opts && opts->env_optional };
    struct conf_src src;
    struct conf_main *cm = NULL;
    struct conf *conf = NULL;
    char *shown_dir = NULL, *dir, **names = NULL;
    size_t first_msg, nnames = 0;
    int listed = 0;

    if (!errs || !file)
        return NULL;
    first_msg = errs->n;
    if (conf_src_open(&ctx, &src, file, file) != 0)
        goto fail;
    src.is_secret = conf_main_secret;
    conf_env_walk(&ctx, &src, src.root, "");
    cm = calloc(1, sizeof *cm);
    ctx.rk = rd_kafka_conf_new();
    if (!cm || !ctx.rk || !(cm->conf.file = strdup(file))) {
        conf_err(&ctx, NULL, "", "%s: out of memory", file);
        goto fail;
    }
    ctx.nerr += cfg_apply(conf_opts, src.root, cm, &src.doc, "", NULL, errs);
    conf_kafka_load(&ctx, &src.doc, &cm->conf);
    ctx.nerr += conf_products_load(&cm->conf.products, file, &src.doc, opts && opts->registry_given, errs);
    if (cm->conf.sinks_dir && cm->conf.sinks_dir[0]) {
        /* messages name the directory as written, not with values from the environment */
        shown_dir = conf_dir_resolve(file,
                                     conf_src_orig(&src, json_object_get(src.root, "sinks_dir")));
        dir = conf_dir_resolve(file, cm->conf.sinks_dir);
        free(cm->conf.sinks_dir);
        cm->conf.sinks_dir = dir;
        if (!dir || !shown_dir)
            conf_err(&ctx, &src.doc, "sinks_dir", "out of memory");
    }
    conf_inline_sinks_load(&ctx, &src, cm);
    if (cm->conf.sinks_dir && shown_dir)
        listed = conf_dir_list(&ctx, &src, &cm->conf, shown_dir, &names, &nnames) == 0;
    conf_src_finish(&ctx, &src);
    for (size_t i = 0; listed && i < nnames; i++)
        conf_dir_sink_load(&ctx, &cm->conf, shown_dir, names[i], opts && opts->isolate);
    json_decref(cm->sinks);
    cm->sinks = NULL;
    if (ctx.nerr == 0 && errs->n == first_msg) {
        conf = &cm->conf;
        cm = NULL;
    }
fail:
    if (cm)
        conf_free(&cm->conf);
    conf_src_free(&src);
    if (ctx.rk)
        rd_kafka_conf_destroy(ctx.rk);
    conf_strv_free(ctx.rk_names, ctx.rk_nnames);
    free(ctx.name_lines);
    free(shown_dir);
    conf_strv_free(names, nnames);
    return conf;
}

/* The sinks of @p conf read from @p file (same file by its real path) leave it. */
static void conf_sinks_drop_file(struct conf *conf, const char *file)
{
    char *want = realpath(file, NULL), *have;
    size_t keep = 0;

    for (size_t i = 0; want && i < conf->nsinks; i++) {
        have = realpath(conf->sinks[i]->conf_file, NULL);
        if (have && strcmp(have, want) == 0)
            conf_sink_free(conf->sinks[i]);
        else
            conf->sinks[keep++] = conf->sinks[i];
        free(have);
    }
    if (want)
        conf->nsinks = keep;
    free(want);
}

int conf_check_sink_file(const char *sink_file, const char *main_file, const struct conf_load_opts *opts,
                         struct cfg_errors *errs, struct cfg_errors *warnings)
{
    struct conf_load_opts main_opts = opts ? *opts : (struct conf_load_opts){ 0 };
    struct conf_ctx ctx = { .errs = errs, .env_optional = main_opts.env_optional };
    struct conf_main *cm = NULL;
    struct conf *conf;
    size_t first_msg = errs->n;
    int rc = -1;

    main_opts.isolate = 1;   /* other teams' broken files are theirs */
    if (main_file) {
        if (!(conf = conf_load_with(main_file, &main_opts, errs)))
            return -1;
        conf_sinks_drop_file(conf, sink_file);
    } else {
        if (!(cm = calloc(1, sizeof *cm))) {
            cfg_error(errs, NULL, "", "%s: out of memory", sink_file);
            return -1;
        }
        conf = &cm->conf;
    }
    /* duplicates are named by file alone: the lines of the main file's names are not kept */
    ctx.name_lines = calloc(conf->nsinks + 1, sizeof *ctx.name_lines);
    if (!ctx.name_lines)
        cfg_error(errs, NULL, "", "%s: out of memory", sink_file);
    else
        conf_sink_file_load(&ctx, conf, sink_file, sink_file, NULL);
    if (ctx.nerr == 0 && errs->n == first_msg)
        rc = 0;
    /* Only this file's warnings: the others are their teams'. */
    for (size_t i = 0; warnings && i < conf->warnings.n; i++)
        if (strncmp(conf->warnings.msgs[i], sink_file, strlen(sink_file)) == 0 &&
            conf->warnings.msgs[i][strlen(sink_file)] == ':')
            cfg_error(warnings, NULL, "", "%s", conf->warnings.msgs[i]);
    free(ctx.name_lines);
    conf_free(conf);
    return rc;
}

void conf_sink_free(struct sink *sk)
{
    if (!sk)
        return;
    if (sk->ops && sk->ops->destroy)
        sk->ops->destroy(sk);
    if (sk->ops)
        cfg_release(sk->ops->opts, sk);
    cfg_release(conf_sink_opts, sk);
    free(sk->conf_file);
    free(sk->conf_path);
    free(sk);
}

int conf_sink_same(const struct sink *a, const struct sink *b)
{
    /* Same ops: the type's own table then describes both. Its options and the common ones are
     * compared from the tables that loaded them, so an option added later is compared too;
     * secrets as well (compared, never printed). */
    return a->ops == b->ops && cfg_equal(conf_sink_opts, a, b) && cfg_equal(a->ops->opts, a, b);
}

void conf_free(struct conf *conf)
{
    struct conf_main *cm = (struct conf_main *)conf;

    if (!conf)
        return;
    for (size_t i = 0; i < conf->nsinks; i++)
        conf_sink_free(conf->sinks[i]);
    free(conf->sinks);
    for (size_t i = 0; i < conf->ninvalid; i++) {
        struct cfg_errors msgs = { conf->invalid[i].messages, conf->invalid[i].nmessages };

        cfg_errors_clear(&msgs);
        free(conf->invalid[i].name);
        free(conf->invalid[i].file);
    }
    free(conf->invalid);
    cfg_errors_clear(&conf->warnings);
    conf_products_free(&conf->products);
    cfg_release(conf_opts, cm);
    free(conf->file);
    free(cm);
}

void conf_print_reference(FILE *out)
{
    fputs("# sluice configuration reference\n\n"
          "Generated by `sluice reference` from the tables the configuration loader validates against;\n"
          "do not edit by hand. Every string may reference the environment as `${NAME}`.\n\n"
          "## Main file\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n", out);
    cfg_print_reference(conf_opts, "", out);
    fputs("\n## A topic (`topics.<name>`)\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n", out);
    cfg_print_reference(conf_topic_opts, "topics.<name>", out);
    fputs("\n## Every sink\n\nA sink file (or an entry of `sinks`) holds these keys, plus a section named after its\n"
          "type with that type's options.\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n", out);
    cfg_print_reference(conf_sink_opts, "", out);
    for (size_t i = 0; sink_types[i]; i++) {
        fprintf(out, "\n## Sink type `%s`\n\n%s.\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n",
                sink_types[i]->type, sink_types[i]->help ? sink_types[i]->help : "");
        cfg_print_reference(sink_types[i]->opts, sink_types[i]->type, out);
    }
}
