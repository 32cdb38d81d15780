/* sluice: the command line. run, check, dev; exit codes 0 (clean stop), 1 (runtime failure),
 * 2 (bad usage or bad configuration). */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "admin.h"
#include "conf.h"
#include "dev_registry.h"
#include "ctl_cli.h"
#include "dlq_cli.h"
#include "group.h"
#include "group_apply.h"
#include "router.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "sinks/sink.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
        "usage: sluice run   -c FILE [--dry-run]  run the router; a dry run prints each batch as JSON\n"
        "                                       instead of sending it, and commits nothing\n"
        "       sluice check -c FILE [--strict] [--env-optional]\n"
        "                                       validate FILE and every sink file; exit 2 when FILE has a\n"
        "                                       problem (a broken sink file is set aside, as run does), or\n"
        "                                       with --strict when any file has one\n"
        "       sluice check --sink FILE [-c MAIN] [--env-optional]\n"
        "                                       validate one sink file, alone or among MAIN's sinks\n"
        "       sluice dev   -c FILE [-p N] [--registry [HOST:]PORT [--registry-load DUMP]]\n"
        "                                       run on an embedded Kafka (N partitions per topic, default 4),\n"
        "                                       and with --registry an embedded Schema Registry too\n"
        "       sluice dlq   list|show|redrive -c FILE [filters]\n"
        "                                       the dead-letter topic: grouped, shown, re-driven\n"
        "                                       (sluice dlq --help)\n"
        "       sluice ctl   tap NAME -c FILE | --admin URL [--json]\n"
        "                                       a sink's records and its target's answers, live\n"
        "                                       (sluice ctl --help)\n"
        "       sluice reference                print the configuration reference (Markdown)\n"
        "       sluice version\n"
        "options: -c, --config FILE   the main configuration file (default: $SLUICE_CONFIG)\n"
        "         -p, --partitions N  (dev) partitions of each topic it creates\n"
        "         --registry [HOST:]PORT  (dev) serve a Schema Registry in the process on PORT (0: any;\n"
        "                             HOST default 127.0.0.1); registry.url points at it\n"
        "         --registry-load DUMP  (dev) start it with the schemas of DUMP (schema-registry's --dump)\n"
        "         -l, --log-level L   debug, info, warn or error (overrides log.level)\n"
        "         -n, --dry-run       (run, dev) show what would be sent, send nothing\n"
        "         --strict            (run, dev, check) a sink file with a problem refuses the whole\n"
        "                             configuration, as a broken main file does (for CI)\n"
        "         --sink FILE         (check) the one sink file to check\n"
        "         --env-optional      (check) an unset ${NAME} is no problem: the structure is checked\n"
        "                             without the secrets (nor any check of the value it would give)\n");
}

static int print_errors(struct cfg_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->msgs[i]);
    fprintf(stderr, "%zu problem%s found\n", errs->n, errs->n == 1 ? "" : "s");
    return EXIT_USAGE;
}

/* What `sluice dev` brings: its options. */
struct dev_opts {
    int partitions;
    const char *registry_listen;    /* "HOST:PORT" of the embedded Schema Registry, or NULL */
    const char *registry_load;      /* its starting state, or NULL */
};

/* The embedded Kafka of `sluice dev`: librdkafka's mock cluster, in this process. */
struct dev_kafka {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mcluster;
    int partitions;
};

static void dev_kafka_create_topics(struct dev_kafka *dk, struct conf *conf)
{
    /* Creating a topic that exists fails harmlessly: a reload may add topics. */
    rd_kafka_mock_topic_create(dk->mcluster, conf->dead_letter_topic, 1, 1);
    if (conf->redrive_topic)
        rd_kafka_mock_topic_create(dk->mcluster, conf->redrive_topic, dk->partitions, 1);
    for (size_t k = 0; k < conf->nsinks; k++)
        for (size_t t = 0; t < conf->sinks[k]->topics.n; t++)
            rd_kafka_mock_topic_create(dk->mcluster, conf->sinks[k]->topics.v[t], dk->partitions, 1);
    /* The mock answers an empty fetch only after fetch.wait.max.ms: keep it short here. */
    if (!json_object_get(conf->kafka, "fetch.wait.max.ms"))
        json_object_set_new(conf->kafka, "fetch.wait.max.ms", json_string("50"));
}

static int dev_kafka_start(struct dev_kafka *dk, int partitions)
{
    char errstr[512];
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();

    dk->partitions = partitions;
    rd_kafka_conf_set(kconf, "log_level", "3", errstr, sizeof errstr);
    dk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof errstr);
    if (!dk->rk) {
        rd_kafka_conf_destroy(kconf);
        LOG(LOG_ERROR, "embedded kafka: %s", errstr);
        return -1;
    }
    if (!(dk->mcluster = rd_kafka_mock_cluster_new(dk->rk, 1))) {
        LOG(LOG_ERROR, "embedded kafka: cannot start the mock cluster");
        return -1;
    }
    return 0;
}

static void dev_kafka_stop(struct dev_kafka *dk)
{
    if (dk->mcluster)
        rd_kafka_mock_cluster_destroy(dk->mcluster);
    if (dk->rk)
        rd_kafka_destroy(dk->rk);
}

/* The running process: the loop, the admin API, and the router of the current configuration.
 * A reload drains the current router (flush, acks, commit, close) and starts one for the new
 * configuration on the same loop; the admin API stays up throughout. */
struct app {
    struct event_base *eb;
    const char *file;
    const char *bootstrap;          /* sluice dev: the embedded Kafka */
    struct dev_kafka dk;
    struct dev_registry *dreg;      /* sluice dev --registry: registry.url points at it */
    struct conf_load_opts load_opts;
    struct conf *conf;
    struct admin_config_view config;    /* GET /sinks and /metrics: app->conf's invalid sinks */
    struct admin_invalid_sink *invalid;
    struct router *router;
    struct conf *next_conf;         /* a validated reload waiting for the drain */
    struct admin *admin;
    struct group *group;            /* control.topic: group-wide pause, resume, replay */
    int stopping;                   /* SIGTERM/SIGINT: leave once drained */
    int signals;
    int exit_code;
    int dry_run;                    /* print batches to stdout, send and commit nothing */
};

static void print_summary(struct router *router, struct conf *conf)
{
    for (size_t k = 0; k < conf->nsinks; k++) {
        const struct router_sink_stats *st = router_sink_stats(router, k);
        if (st)
            sink_log(conf->sinks[k], LOG_INFO,
                     "delivered=%" PRIu64 " dead_lettered=%" PRIu64 " filtered=%" PRIu64 " skipped=%" PRIu64
                     " retries=%" PRIu64 " batches=%" PRIu64, st->delivered, st->dead_lettered, st->filtered,
                     st->skipped, st->retries, st->batches);
    }
}

static void app_on_router_stopped(void *arg);

/* Every problem of each sink file set aside goes to the log (the admin API shows them too). */
static void log_invalid_sinks(const struct conf *conf, const char *when)
{
    for (size_t i = 0; i < conf->ninvalid; i++) {
        const struct conf_invalid_sink *inv = &conf->invalid[i];

        for (size_t m = 0; m < inv->nmessages; m++)
            LOG(LOG_ERROR, "%s: sink %s set aside: %s", when, inv->name, inv->messages[m]);
        LOG(LOG_WARN, "%s: sink %s (%s) is invalid and does not run; the other sinks do", when, inv->name,
            inv->file);
    }
    for (size_t i = 0; i < conf->warnings.n; i++)
        LOG(LOG_WARN, "%s: %s", when, conf->warnings.msgs[i]);
}

/* After a load (at the start or a reload): @p ok when it had no problem at all. */
static void app_config_loaded(struct app *app, int ok)
{
    app->config.last_reload_successful = ok;
    if (ok)
        app->config.last_reload_success_ms = wall_ms();
}

/* The admin API's view of app->conf's invalid sinks, rebuilt whenever app->conf changes. */
static void app_config_view(struct app *app)
{
    struct admin_invalid_sink *v = NULL;
    const struct conf *conf = app->conf;

    if (conf->ninvalid && (v = calloc(conf->ninvalid, sizeof *v)))
        for (size_t i = 0; i < conf->ninvalid; i++)
            v[i] = (struct admin_invalid_sink){ conf->invalid[i].name, conf->invalid[i].file,
                                                conf->invalid[i].messages, conf->invalid[i].nmessages };
    free(app->invalid);
    app->invalid = v;
    app->config.invalid = v;
    app->config.ninvalid = v ? conf->ninvalid : 0;
}

static const struct admin_config_view *app_config(void *arg)
{
    return &((struct app *)arg)->config;
}

/* @p carry (may be NULL): what the sinks kept from the previous router, see router_carry_take. */
static int app_router_start(struct app *app, struct conf *conf, const struct router_carry *carry,
                            char *err, size_t errlen)
{
    if (app->dk.mcluster)
        dev_kafka_create_topics(&app->dk, conf);
    if (app->dreg && conf_products_set_url(&conf->products, dev_registry_url(app->dreg)) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(app->router = router_new(app->eb, conf, app->bootstrap, err, errlen)))
        return -1;
    router_on_stopped(app->router, app_on_router_stopped, app);
    if (app->dry_run)
        router_set_dry_run(app->router, stdout);
    router_set_carry(app->router, carry);
    if (app->group)
        router_set_group(app->router, app->group);
    if (router_start(app->router, err, errlen) != 0) {
        router_free(app->router);
        app->router = NULL;
        return -1;
    }
    if (app->group)
        group_apply_pauses(app->group);   /* before any partition comes: the subscription is asynchronous */
    LOG(LOG_INFO, "running %zu sink(s)", conf->nsinks);
    return 0;
}

/* Next loop turn after a router finished its drain: free it, then stop or start the next. */
static void app_after_drain(evutil_socket_t fd, short what, void *arg)
{
    struct app *app = arg;
    struct router_carry *carry = NULL;
    char err[1024];
    (void)fd;
    (void)what;

    print_summary(app->router, app->conf);
    if (app->exit_code == 0)
        app->exit_code = router_exit_code(app->router);
    if (!app->stopping && app->next_conf)
        carry = router_carry_take(app->router);   /* refers to app->conf's sinks: freed after */
    router_free(app->router);
    app->router = NULL;
    if (app->stopping || !app->next_conf) {
        event_base_loopexit(app->eb, NULL);
        return;
    }
    if (app_router_start(app, app->next_conf, carry, err, sizeof err) == 0) {
        router_carry_free(carry);
        conf_free(app->conf);
        app->conf = app->next_conf;
        app->next_conf = NULL;
        app_config_view(app);
        LOG(LOG_INFO, "reloaded %s", app->file);
        return;
    }
    LOG(LOG_ERROR, "reload: the new configuration cannot start (%s); going back to the previous one", err);
    app_config_loaded(app, 0);
    app->config.reloads[ADMIN_RELOAD_FAILED]++;
    conf_free(app->next_conf);
    app->next_conf = NULL;
    if (app_router_start(app, app->conf, carry, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "the previous configuration cannot start either: %s", err);
        app->exit_code = 1;
        event_base_loopexit(app->eb, NULL);
    }
    router_carry_free(carry);
}

static void app_on_router_stopped(void *arg)
{
    struct app *app = arg;
    event_base_once(app->eb, -1, EV_TIMEOUT, app_after_drain, app, &ZERO_TV);
}

/* Validates the file again; on success the current router drains and the new one starts. On
 * refusal every problem is logged as `sluice check` prints it, whoever asked (@p trigger), and
 * written to @p msg for the admin API. */
static int app_reload(struct app *app, const char *trigger, char *msg, size_t msglen)
{
    struct cfg_errors errs = { 0 };
    struct conf *conf;
    size_t used = 0;

    if (app->stopping) {
        snprintf(msg, msglen, "shutting down");
        return -1;
    }
    if (!(conf = conf_load_with(app->file, &app->load_opts, &errs))) {
        for (size_t i = 0; i < errs.n; i++) {
            LOG(LOG_ERROR, "reload (%s) refused: %s", trigger, errs.msgs[i]);
            if (used < msglen)
                used += (size_t)snprintf(msg + used, msglen - used, "%s\n", errs.msgs[i]);
        }
        if (used < msglen)
            snprintf(msg + used, msglen - used, "%zu problem%s found; the running configuration is unchanged",
                     errs.n, errs.n == 1 ? "" : "s");
        LOG(LOG_ERROR, "reload (%s) refused: %zu problem%s in %s; the running configuration is unchanged",
            trigger, errs.n, errs.n == 1 ? "" : "s", app->file);
        cfg_errors_clear(&errs);
        app_config_loaded(app, 0);
        app->config.reloads[ADMIN_RELOAD_REFUSED]++;
        return -1;
    }
    cfg_errors_clear(&errs);
    log_invalid_sinks(conf, "reload");
    app_config_loaded(app, conf->ninvalid == 0);
    app->config.reloads[conf->ninvalid ? ADMIN_RELOAD_PARTIAL : ADMIN_RELOAD_APPLIED]++;
    if (app->next_conf)
        conf_free(app->next_conf);   /* a second reload before the first applied: the newest wins */
    app->next_conf = conf;
    LOG(LOG_INFO, "reload: %s is valid (%zu sinks, %zu set aside); draining the current pipeline", app->file,
        conf->nsinks, conf->ninvalid);
    if (conf->ninvalid)
        snprintf(msg, msglen, "reloading: %zu sink%s; %zu sink file%s set aside as invalid (GET /sinks)",
                 conf->nsinks, conf->nsinks == 1 ? "" : "s", conf->ninvalid, conf->ninvalid == 1 ? "" : "s");
    else
        snprintf(msg, msglen, "reloading: %zu sink%s", conf->nsinks, conf->nsinks == 1 ? "" : "s");
    if (app->router)
        router_shutdown(app->router);
    return 0;
}

static int app_reload_from_admin(void *arg, char *msg, size_t msglen)
{
    return app_reload(arg, "POST /reload", msg, msglen);
}

static void app_group_pause(void *arg, const char *sink, int paused)
{
    struct app *app = arg;
    if (app->router)
        router_group_pause(app->router, sink, paused);
}

static void app_group_replay(void *arg, const char *sink, const struct group_replay *cmd)
{
    struct app *app = arg;
    if (app->router)
        router_group_replay(app->router, sink, cmd);
}

/* The group's state is known: the consumer may join (a paused sink starts paused). */
static void app_group_caught_up(void *arg)
{
    struct app *app = arg;
    char err[512];

    if (!app->router || !router_subscribe_held(app->router))
        return;
    if (router_subscribe(app->router, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "cannot start: %s", err);
        app->exit_code = EXIT_RUNTIME;
        app->stopping = 1;
        router_shutdown(app->router);
    }
}

static json_t *app_group_view(void *arg)
{
    struct app *app = arg;
    return app->group ? group_view(app->group) : NULL;
}

static struct router *app_router(void *arg)
{
    return ((struct app *)arg)->router;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct app *app = arg;
    char msg[256];
    (void)what;

    if (sig == SIGHUP) {
        LOG(LOG_INFO, "SIGHUP: reloading %s", app->file);
        app_reload(app, "SIGHUP", msg, sizeof msg);   /* the log has the messages */
        return;
    }
    if (++app->signals > 1) {
        LOG(LOG_WARN, "second %s: stopping now without draining", strsignal((int)sig));
        app->exit_code = EXIT_RUNTIME;
        event_base_loopbreak(app->eb);
        return;
    }
    LOG(LOG_INFO, "%s: draining", strsignal((int)sig));
    app->stopping = 1;
    if (app->router)
        router_shutdown(app->router);
    else
        event_base_loopexit(app->eb, NULL);
}

/* Takes @p conf (a reload replaces and frees it). @p dev: sluice dev's options, NULL for run. */
static int command_run(struct conf *conf, const char *file, const struct dev_opts *dev, int dry_run, int strict)
{
    struct app app = { .file = file, .conf = conf, .dry_run = dry_run, .load_opts.isolate = !strict };
    struct event *signals[3] = { NULL, NULL, NULL };
    static const int signal_numbers[3] = { SIGTERM, SIGINT, SIGHUP };
    struct admin_hooks hooks = { .router = app_router, .config = app_config, .reload = app_reload_from_admin,
                                 .group = app_group_view, .arg = &app };
    struct group_hooks group_hooks = { .pause = app_group_pause, .replay = app_group_replay,
                                       .caught_up = app_group_caught_up, .arg = &app };
    struct http_limits limits = HTTP_LIMITS_DEFAULT;
    char err[1024];
    int rc = EXIT_RUNTIME;

    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    log_invalid_sinks(conf, "start");
    app_config_loaded(&app, conf->ninvalid == 0);
    app_config_view(&app);
    if (!(app.eb = event_base_new())) {
        LOG(LOG_ERROR, "cannot create the event loop");
        goto out;
    }
    if (dev) {
        if (dev_kafka_start(&app.dk, dev->partitions) != 0)
            goto out;
        app.bootstrap = rd_kafka_mock_cluster_bootstraps(app.dk.mcluster);
        if (dev->registry_listen) {
            app.load_opts.registry_given = 1;
            if (!(app.dreg = dev_registry_new(app.eb, dev->registry_listen, dev->registry_load, err, sizeof err))) {
                LOG(LOG_ERROR, "cannot start: %s", err);
                goto out;
            }
        }
        printf("sluice dev: embedded Kafka at %s\n", app.bootstrap);
        if (app.dreg)
            printf("sluice dev: embedded Schema Registry at %s\n", dev_registry_url(app.dreg));
        printf("  produce:  kcat -P -b %s -t %s -K:   (lines key:value)\n", app.bootstrap,
               conf->nsinks ? conf->sinks[0]->topics.v[0] : "TOPIC");
        printf("  stop:     Ctrl-C\n");
        fflush(stdout);
    }
    for (int i = 0; i < 3; i++) {
        signals[i] = evsignal_new(app.eb, signal_numbers[i], on_signal, &app);
        if (!signals[i] || evsignal_add(signals[i], NULL) != 0) {
            LOG(LOG_ERROR, "cannot watch signals");
            goto out;
        }
    }
    limits.max_connections = (unsigned)conf->admin_max_connections;
    limits.request_timeout_ms = (unsigned)conf->admin_request_timeout_ms;
    limits.max_head_bytes = (size_t)conf->admin_max_header_bytes;
    limits.max_headers = (size_t)conf->admin_max_headers;
    if (limits.max_request_line > limits.max_head_bytes)
        limits.max_request_line = limits.max_head_bytes;
    if (((conf->admin_listen && conf->admin_listen[0]) || (conf->health_listen && conf->health_listen[0])) &&
        !(app.admin = admin_new(app.eb, conf->admin_listen, conf->health_listen, conf->admin_token, &limits, &hooks,
                                err, sizeof err))) {
        LOG(LOG_ERROR, "cannot start: %s", err);
        goto out;
    }
    /* The admin API is up first: the group announces the port it bound. */
    if (conf->control_topic && !dry_run &&
        !(app.group = group_new(app.eb, conf, app.admin ? admin_port(app.admin) : -1, &group_hooks, err, sizeof err))) {
        LOG(LOG_ERROR, "cannot start: %s", err);
        goto out;
    }
    if (app_router_start(&app, conf, NULL, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "cannot start: %s", err);
        goto out;
    }
    event_base_dispatch(app.eb);
    rc = app.exit_code;
    LOG(LOG_INFO, "stopped (exit %d)", rc);
out:
    group_free(app.group);
    admin_free(app.admin);
    for (int i = 0; i < 3; i++)
        if (signals[i])
            event_free(signals[i]);
    router_free(app.router);
    if (app.next_conf)
        conf_free(app.next_conf);
    conf_free(app.conf);
    free(app.invalid);
    dev_registry_free(app.dreg);
    dev_kafka_stop(&app.dk);
    if (app.eb)
        event_base_free(app.eb);
    return rc;
}

/* --registry [HOST:]PORT into "HOST:PORT" (127.0.0.1 by default) in @p out; 0 or -1. */
static int registry_listen_parse(const char *arg, char *out, size_t outlen)
{
    const char *colon = strrchr(arg, ':'), *port = colon ? colon + 1 : arg;
    char *end;
    long n = strtol(port, &end, 10);

    if (!*port || *end || n < 0 || n > 65535 || port[strspn(port, "0123456789")] || (colon && colon == arg))
        return -1;
    return (size_t)snprintf(out, outlen, colon ? "%s" : "127.0.0.1:%s", arg) < outlen ? 0 : -1;
}

enum { OPT_REGISTRY = 256, OPT_REGISTRY_LOAD, OPT_STRICT, OPT_SINK, OPT_ENV_OPTIONAL };

/* sluice check: 0 when run would start (sink files set aside are listed), 2 otherwise. */
static int command_check(const char *file, const char *sink_file, const struct conf_load_opts *opts)
{
    struct cfg_errors errs = { 0 };
    struct conf *conf;
    size_t problems = 0;
    int rc;

    if (sink_file) {
        struct cfg_errors warnings = { 0 };
        if (conf_check_sink_file(sink_file, file, opts, &errs, &warnings) != 0) {
            for (size_t i = 0; i < warnings.n; i++)
                fprintf(stderr, "%s\n", warnings.msgs[i]);
            cfg_errors_clear(&warnings);
            rc = print_errors(&errs);
            cfg_errors_clear(&errs);
            return rc;
        }
        for (size_t i = 0; i < warnings.n; i++)
            fprintf(stderr, "%s\n", warnings.msgs[i]);
        cfg_errors_clear(&warnings);
        cfg_errors_clear(&errs);   /* messages dropped under --env-optional leave their array */
        printf("%s: ok%s\n", sink_file, opts->env_optional ? " (unset ${NAME} references not checked)" : "");
        return 0;
    }
    if (!(conf = conf_load_with(file, opts, &errs))) {
        rc = print_errors(&errs);
        cfg_errors_clear(&errs);
        return rc;
    }
    cfg_errors_clear(&errs);
    for (size_t i = 0; i < conf->ninvalid; i++) {
        for (size_t m = 0; m < conf->invalid[i].nmessages; m++)
            fprintf(stderr, "%s\n", conf->invalid[i].messages[m]);
        problems += conf->invalid[i].nmessages;
    }
    if (conf->ninvalid)
        fprintf(stderr, "%zu problem%s found: %zu sink file%s set aside (run starts without %s; --strict refuses)\n",
                problems, problems == 1 ? "" : "s", conf->ninvalid, conf->ninvalid == 1 ? "" : "s",
                conf->ninvalid == 1 ? "it" : "them");
    for (size_t i = 0; i < conf->warnings.n; i++)
        fprintf(stderr, "%s\n", conf->warnings.msgs[i]);
    printf("%s: ok (%zu sink%s", file, conf->nsinks, conf->nsinks == 1 ? "" : "s");
    if (conf->ninvalid)
        printf(", %zu set aside as invalid:", conf->ninvalid);
    for (size_t i = 0; i < conf->ninvalid; i++)
        printf(" %s", conf->invalid[i].name);
    printf(")\n");
    conf_free(conf);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "partitions", required_argument, NULL, 'p' },
        { "log-level", required_argument, NULL, 'l' },
        { "dry-run", no_argument, NULL, 'n' },
        { "registry", required_argument, NULL, OPT_REGISTRY },
        { "registry-load", required_argument, NULL, OPT_REGISTRY_LOAD },
        { "strict", no_argument, NULL, OPT_STRICT },
        { "sink", required_argument, NULL, OPT_SINK },
        { "env-optional", no_argument, NULL, OPT_ENV_OPTIONAL },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *command, *file = NULL, *level = NULL, *sink_file = NULL;
    struct conf_load_opts load = { 0 };
    struct cfg_errors errs = { 0 };
    struct conf *conf;
    struct dev_opts dev = { .partitions = 4 };
    char registry_listen[300];
    int opt, rc, dry_run = 0, strict = 0;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    command = argv[1];
    if (strcmp(command, "version") == 0 || strcmp(command, "--version") == 0) {
        printf("sluice 0.1.0 (librdkafka %s)\n", rd_kafka_version_str());
        return 0;
    }
    if (strcmp(command, "reference") == 0) {
        conf_print_reference(stdout);
        return 0;
    }
    if (strcmp(command, "help") == 0 || strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(command, "dlq") == 0)
        return dlq_cli_main(argc - 1, argv + 1);
    if (strcmp(command, "ctl") == 0)
        return ctl_cli_main(argc - 1, argv + 1);
    if (strcmp(command, "run") != 0 && strcmp(command, "check") != 0 && strcmp(command, "dev") != 0) {
        fprintf(stderr, "sluice: unknown command \"%s\"\n", command);
        usage(stderr);
        return EXIT_USAGE;
    }
    optind = 2;
    while ((opt = getopt_long(argc, argv, "c:p:l:nh", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c': file = optarg; break;
        case 'p':
            dev.partitions = atoi(optarg);
            if (dev.partitions < 1 || dev.partitions > 1000) {
                fprintf(stderr, "sluice: --partitions must be 1..1000\n");
                return EXIT_USAGE;
            }
            break;
        case 'l': level = optarg; break;
        case 'n': dry_run = 1; break;
        case OPT_REGISTRY:
            if (registry_listen_parse(optarg, registry_listen, sizeof registry_listen) != 0) {
                fprintf(stderr, "sluice: --registry wants [HOST:]PORT (PORT 0..65535; 0 picks a free one)\n");
                return EXIT_USAGE;
            }
            dev.registry_listen = registry_listen;
            break;
        case OPT_REGISTRY_LOAD: dev.registry_load = optarg; break;
        case OPT_STRICT: strict = 1; break;
        case OPT_SINK: sink_file = optarg; break;
        case OPT_ENV_OPTIONAL: load.env_optional = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (!file && !sink_file && (file = getenv("SLUICE_CONFIG")) && !file[0])
        file = NULL;
    if ((sink_file || load.env_optional) && strcmp(command, "check") != 0) {
        fprintf(stderr, "sluice %s: --sink and --env-optional go with check\n", command);
        return EXIT_USAGE;
    }
    if (sink_file && strict) {
        fprintf(stderr, "sluice check: --strict goes with -c alone (--sink always refuses a problem)\n");
        return EXIT_USAGE;
    }
    if ((!file && !sink_file) || optind != argc) {
        fprintf(stderr, "sluice %s: %s\n", command, file ? "unexpected argument" : "-c FILE (or SLUICE_CONFIG) is required");
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((dev.registry_listen || dev.registry_load) && strcmp(command, "dev") != 0) {
        fprintf(stderr, "sluice %s: --registry and --registry-load go with dev\n", command);
        return EXIT_USAGE;
    }
    if (dev.registry_load && !dev.registry_listen) {
        fprintf(stderr, "sluice dev: --registry-load needs --registry\n");
        return EXIT_USAGE;
    }
    load.registry_given = dev.registry_listen != NULL;
    load.isolate = !strict;
    if (strcmp(command, "check") == 0) {
        if (dry_run) {
            fprintf(stderr, "sluice: --dry-run goes with run or dev\n");
            return EXIT_USAGE;
        }
        return command_check(file, sink_file, &load);
    }
    if (!(conf = conf_load_with(file, &load, &errs))) {
        rc = print_errors(&errs);
        cfg_errors_clear(&errs);
        return rc;
    }
    cfg_errors_clear(&errs);
    log_min_level = (enum log_level)conf->log_level;
    log_format = (enum log_format)conf->log_format;
    if (level) {
        int parsed = log_level_parse(level);
        if (parsed < 0) {
            fprintf(stderr, "sluice: unknown log level \"%s\"\n", level);
            conf_free(conf);
            return EXIT_USAGE;
        }
        log_min_level = (enum log_level)parsed;
    }
    if (strcmp(command, "run") == 0 && !json_object_get(conf->kafka, "bootstrap.servers")) {
        fprintf(stderr, "%s: kafka[\"bootstrap.servers\"] is required for run (sluice dev brings its own Kafka)\n", file);
        conf_free(conf);
        return EXIT_USAGE;
    }
    if (conf->admin_token && !conf->admin_token[0] && conf->admin_listen && conf->admin_listen[0]) {
        fprintf(stderr, "%s: admin.token is set but empty (an empty ${NAME}?); set it, or leave it out to run the "
                "admin API without a token\n", file);
        conf_free(conf);
        return EXIT_USAGE;
    }
    return command_run(conf, file, strcmp(command, "dev") == 0 ? &dev : NULL, dry_run, strict);
}
