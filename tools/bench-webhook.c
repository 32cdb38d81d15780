/* bench-webhook: how fast the webhook sink delivers. It starts the project's mock Kafka and
 * HTTP receiver (tools/mock-kafka, tools/http-receiver, next to this program) as processes,
 * produces N records of about 300 bytes into a topic of 128 partitions (enough for the mock,
 * which keeps about 5 MiB per partition, to keep them all), then for each mode runs the router
 * in this process with one signed webhook sink and times the drain: from the first record
 * delivered to the last.
 *
 * Usage: bench-webhook [--records N] [--partitions P] [--mode array|single|both]
 *                      [--array-size K] [--max-in-flight M] [--repeat R] [--old SLUICE]
 *                      [--brokers B]
 *
 * Prints, per mode, records/s and requests/s (counted by the receiver), and the CPU seconds
 * spent meanwhile by this process (the router's event loop, librdkafka's threads), the receiver
 * and the mock Kafka: where the time goes. In json_array mode, R times (3 by default),
 * alternating: sluice, then a bare libcurl multi client (its own code, none of the sink's)
 * posting records / K bodies of K records, shaped and signed as the sink's, with as many
 * requests in flight as the sink had, to the same receiver; it prints each ratio sluice/bare
 * and their median (the target is >= 0.85, none under 0.70). Per sluice round it also prints
 * how much of the in-flight window the sink used and how many partitions had nothing to send
 * (one request per partition at a time: a partition with nothing consumed cannot fill a slot).
 * BENCH_TRACE=1 prints the sink's progress every 20 ms on stderr (stalls show as runs of the
 * same count), with the partitions by what they hold queued: none, less than a batch, one, more;
 * BENCH_KAFKA=', "name": "value"' adds consumer properties, to try them (BENCH_LOG=1 shows the
 * router's info lines, BENCH_LOG=debug librdkafka's debug lines too, e.g. with "debug": "fetch").
 * --old SLUICE runs another sluice binary (a previous build) and then this build's sluice (next
 * to this program) as processes in each json_array round too, before the router in this
 * process, each with the same files and its admin API on a free port (the drain timed from its
 * /sinks counters), and prints their ratios to the same round's bare client: before and after,
 * measured alike, from one run. Each round also prints the CPU a record of each side (all its
 * processes) and their ratio, bare/sluice: what the rate ratio comes to when the cores are the
 * limit of both. Then a plain librdkafka consumer with the router's fetch settings takes the
 * whole topic and drops it ("Kafka alone"): no sluice can spend less CPU a record than that
 * plus the bare client's, so with every core busy the round's ceiling is cores / (both) over
 * the bare client's rate; the median ceiling is printed with the ratios. --brokers B runs the
 * mock cluster with B brokers (1 by default), the partitions' leaders spread over them. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "lib/log.h"
#include "router/conf.h"
#include "router/control.h"
#include "router/router.h"
#include "tools/bench-webhook/bench_webhook.h"

extern char **environ;



/* How one sluice run is set up. */
struct mode_run {
    int single;            /* one record per request, else json_array */
    int index;             /* makes the consumer group new for each run */
};


double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of the calling thread: the router's event loop runs on it. */
static double thread_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of a process or thread, from /proc/WHO/stat (utime + stime); WHO is "PID" or
 * "PID/task/TID". */
static double proc_cpu_s_path(const char *who)
{
    char path[96], buf[2048], *p;
    unsigned long utime = 0, stime = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%s/stat", who);
    if (!(f = fopen(path, "r")))
        return 0;
    if (!fgets(buf, sizeof buf, f)) {
        fclose(f);
        return 0;
    }
    fclose(f);
    if (!(p = strrchr(buf, ')')))
        return 0;
    /* after ") " come state (field 3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double proc_cpu_s(pid_t pid)
{
    char who[32];
    snprintf(who, sizeof who, "%d", (int)pid);
    return proc_cpu_s_path(who);
}

static int spawn(struct child *c, const char *name, char *const argv[])
{
    int rc;
    posix_spawn_file_actions_t fa;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    rc = posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    c->name = name;
    if (rc != 0) {
        fprintf(stderr, "bench-webhook: cannot start %s: %s\n", argv[0], strerror(rc));
        c->pid = 0;
        return -1;
    }
    return 0;
}

static void stop(struct child *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGTERM);
        waitpid(c->pid, NULL, 0);
        c->pid = 0;
    }
}

/* Waits up to 10 s for @p path to hold a line; copies it into @p out. */
static int read_file_wait(const char *path, char *out, size_t outlen)
{
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            int ok = fgets(out, (int)outlen, f) != NULL;
            fclose(f);
            if (ok) {
                out[strcspn(out, "\r\n")] = '\0';
                return 0;
            }
        }
        usleep(10000);
    }
    return -1;
}

/* A whole answer (the admin API's /sinks). */
struct body_buf {
    char *p;
    size_t len, cap;
};

static size_t grow_body(char *p, size_t size, size_t n, void *arg)
{
    struct body_buf *b = arg;
    size_t len = size * n;
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
    b->p[b->len] = '\0';
    return len;
}

/* GET BASE + PATH into @p body (a blocking call is fine in a tool); 0 when answered. */
static int http_get(const char *base, const char *path, struct body_buf *body)
{
    char full[256];
    CURL *easy = curl_easy_init();
    int rc;

    snprintf(full, sizeof full, "%s%s", base, path);
    curl_easy_setopt(easy, CURLOPT_URL, full);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, grow_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, 10L);
    rc = curl_easy_perform(easy) == CURLE_OK && body->p ? 0 : -1;
    curl_easy_cleanup(easy);
    return rc;
}

/* The receiver's request counter (GET /_control/stats). */
static long receiver_requests(const char *url)
{
    struct body_buf body = { 0 };
    const char *p;
    long n = -1;

    if (http_get(url, "/_control/stats", &body) == 0 && (p = strstr(body.p, "\"requests\":")))
        n = strtol(p + 11, NULL, 10);
    free(body.p);
    return n;
}

/* Record i of the workload: its key and JSON value (also what the bare client's bodies carry). */
int record_key(long i, char *out, size_t outlen)
{
    return snprintf(out, outlen, "k-%ld", i % 100000);
}

int record_value(long i, char *out, size_t outlen)
{
    return snprintf(out, outlen,
                    "{\"id\":\"k-%ld\",\"seq\":%ld,\"tier\":\"%s\",\"name\":\"Customer %ld\","
                    "\"email\":\"customer%ld@example.com\",\"country\":\"DE\",\"plan\":\"business\","
                    "\"address\":{\"street\":\"Hauptstrasse %ld\",\"city\":\"Berlin\",\"zip\":\"10115\"},"
                    "\"score\":%ld.5,\"active\":true}",
                    i % 100000, i, i % 10 == 0 ? "gold" : "basic", i, i % 100000, i % 300, i % 1000);
}

static int produce(const char *brokers, const struct options *o, long *available)
{
    char errstr[512], key[32], value[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_t *rk;
    double t0 = now_s();

    rd_kafka_conf_set(kc, "bootstrap.servers", brokers, errstr, sizeof errstr);
    rd_kafka_conf_set(kc, "linger.ms", "20", errstr, sizeof errstr);
    rd_kafka_conf_set(kc, "queue.buffering.max.messages", "1000000", errstr, sizeof errstr);
    rd_kafka_conf_set(kc, "batch.num.messages", "10000", errstr, sizeof errstr);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof errstr))) {
        fprintf(stderr, "bench-webhook: producer: %s\n", errstr);
        return -1;
    }
    for (long i = 0; i < o->records; i++) {
        int klen = record_key(i, key, sizeof key);
        int vlen = record_value(i, value, sizeof value);
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("bench"), RD_KAFKA_V_PARTITION((int32_t)(i % o->partitions)),
                                        RD_KAFKA_V_KEY(key, (size_t)klen), RD_KAFKA_V_VALUE(value, (size_t)vlen),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        if (err) {
            fprintf(stderr, "bench-webhook: produce: %s\n", rd_kafka_err2str(err));
            rd_kafka_destroy(rk);
            return -1;
        }
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "bench-webhook: flush timed out\n");
        rd_kafka_destroy(rk);
        return -1;
    }
    printf("produced %ld records of ~%d bytes into %d partitions in %.1f s\n", o->records, 300, o->partitions,
           now_s() - t0);
    /* The mock keeps about 5 MiB per partition: count what is still there. */
    *available = 0;
    for (int p = 0; p < o->partitions; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, "bench", p, &lo, &hi, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            *available += hi - lo;
    }
    rd_kafka_destroy(rk);
    if (*available < o->records)
        printf("the mock kept %ld of them (its retention): use more partitions to bench all\n", *available);
    return 0;
}

struct run {
    struct router *router;
    long target;
    double t_first, t_end, t_progress;
    uint64_t d_first, d_last;
    int done;
    int trace;             /* BENCH_TRACE set: a line every tick on stderr, to see stalls */
    long batch;            /* records a batch */
    long ticks;            /* ticks since the first delivery, and sums over them: */
    double sum_in_flight, sum_empty;
};


/* BENCH_TRACE: how the partitions' queued records (consumed, not yet finished) spread. */
struct spread {
    int empty, partial, one, more;   /* 0, < 1 batch, 1-2 batches, more */
    long batch;
};

static void on_partition_view(void *arg, const struct router_partition_view *pv)
{
    struct spread *s = arg;
    int64_t queued = pv->next[0] >= 0 ? pv->consumed - pv->next[0] : 0;

    if (queued <= 0)
        s->empty++;
    else if (queued < s->batch)
        s->partial++;
    else if (queued < 2 * s->batch)
        s->one++;
    else
        s->more++;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct run *run = arg;
    const struct router_sink_stats *st = router_sink_stats(run->router, 0);
    (void)fd;
    (void)what;

    if (!st || run->done)
        return;
    if (run->t_progress == 0 || st->delivered != run->d_last) {
        run->t_progress = now_s();
        run->d_last = st->delivered;
    } else if (now_s() - run->t_progress > STALL_LIMIT_S) {
        fprintf(stderr, "bench-webhook: no progress for %d s at %" PRIu64 " of %ld records; giving up\n",
                STALL_LIMIT_S, st->delivered, run->target);
        run->done = -1;
        router_shutdown(run->router);
        return;
    }
    if (st->delivered > 0) {
        /* How much of the window the sink used, and why not more: partitions with nothing
         * consumed past what is finished cannot have a request in flight. */
        struct spread sp = { .batch = run->batch };
        router_partitions_foreach(run->router, on_partition_view, &sp);
        run->ticks++;
        run->sum_in_flight += (double)st->in_flight;
        run->sum_empty += sp.empty;
    }
    if (run->trace) {
        struct router_sink_view v;
        struct spread sp = { .batch = run->batch };
        router_sink_view(run->router, 0, &v);
        router_partitions_foreach(run->router, on_partition_view, &sp);
        fprintf(stderr, "trace %.3f delivered=%" PRIu64 " in_flight=%" PRIu64 " buffered=%zu partitions: "
                "empty=%d partial=%d one=%d more=%d\n", now_s(), st->delivered, st->in_flight, v.buffered,
                sp.empty, sp.partial, sp.one, sp.more);
    }
    if (st->delivered > 0 && run->t_first == 0) {
        run->t_first = now_s();
        run->d_first = st->delivered;
    }
    if ((long)(st->delivered + st->dead_lettered) >= run->target) {
        run->t_end = now_s();
        run->done = 1;
        if (st->dead_lettered)
            fprintf(stderr, "bench-webhook: %" PRIu64 " records dead-lettered\n", st->dead_lettered);
        router_shutdown(run->router);
    }
}

/* Writes the sink file and the main file of one sluice run into DIR (path of the main file in
 * @p path): the same for the router in this process and for another binary run as a process
 * (@p admin_port > 0: its admin API, which the bench polls). */
static int write_confs(const char *dir, const char *tag, const char *brokers, const char *url, const struct options *o,
                       int single, int index, int admin_port, char *path, size_t pathlen)
{
    char sinks[1024], admin[128] = "";
    FILE *f;

    snprintf(sinks, sizeof sinks, "%s/sinks-%s-%s", dir, tag, single ? "single" : "array");
    mkdir(sinks, 0755);
    snprintf(path, pathlen, "%s/hook.json", sinks);
    if (!(f = fopen(path, "w")))
        return -1;
    /* The sink's defaults but for the batch shape (and the max_in_flight the bare client gets
     * too) and buffers sized for it: two full batches for each of the 128 partitions, ~1.3 KB
     * a record as the sink counts them (the defaults, 100,000 records and 64 MiB, hold about
     * 50,000 of these: the batches then leave at ~270 records, cut by linger_ms). The consumer
     * runs on sluice's defaults. What an app team's sink file would say. */
    fprintf(f, "{ \"name\": \"bench\", \"type\": \"webhook\", \"topics\": [\"bench\"],\n"
               "  \"batch\": { \"max_records\": %d },\n"
               "  \"max_buffered_records\": 262144, \"max_buffered_bytes\": 268435456,\n"
               "  \"webhook\": { \"url\": \"%s/hook\", \"batch_format\": \"%s\", \"max_in_flight\": %d,\n"
               "               \"secret\": \"" BENCH_SECRET "\", \"allow_private_networks\": true } }\n",
            o->array_size, url, single ? "single" : "json_array", single ? o->max_in_flight : o->partitions);
    fclose(f);
    if (admin_port > 0)
        snprintf(admin, sizeof admin, "\"admin\": { \"listen\": \"127.0.0.1:%d\" }, ", admin_port);
    else
        snprintf(admin, sizeof admin, "\"admin\": { \"listen\": \"\" }, ");
    snprintf(path, pathlen, "%s/sluice-%s-%s.json", dir, tag, single ? "single" : "array");
    if (!(f = fopen(path, "w")))
        return -1;
    fprintf(f, "{ \"kafka\": { \"bootstrap.servers\": \"%s\", \"group.id\": \"bench-%s-%s-%d-%d\", \"session.timeout.ms\": \"6000\"%s },\n"
               "  %s\"commit_interval_ms\": 1000, \"sinks_dir\": \"%s\", \"log\": { \"level\": \"warn\" } }\n",
            brokers, tag, single ? "single" : "array", (int)getpid(), index,
            getenv("BENCH_KAFKA") ? getenv("BENCH_KAFKA") : "", admin, sinks);
    fclose(f);
    return 0;
}

/* Prints where a sluice round's CPU went; returns the CPU of all its processes (sluice, the
 * receiver, the mock Kafka) a record, in microseconds. */
static double print_sluice_cpu(double all, double loop, double rcv, double kafka, long records)
{
    printf("  CPU from start to drained (the ~3 s group join included): sluice %.2f s (event loop %.2f s, "
           "librdkafka threads %.2f s), receiver %.2f s, mock kafka %.2f s\n", all, loop, all - loop, rcv, kafka);
    return (all + rcv + kafka) / (double)records * 1e6;
}

static int bench_mode(const char *dir, const char *brokers, const char *url, const struct options *o, long available,
                      const struct mode_run *m, struct child *rcv, struct child *kafka, double *rate, double *cpu_us)
{
    int single = m->single;
    char path[PATH_MAX], err[1024];
    struct cfg_errors errs = { 0 };
    struct event_base *eb = event_base_new();
    struct run run = { .target = available, .trace = getenv("BENCH_TRACE") != NULL, .batch = o->array_size };
    struct event *tick = NULL;
    struct timeval every = { 0, 20000 };
    struct conf *conf;
    double cpu0, loop0, rcpu0, kcpu0, secs;
    long req0, req1;
    int rc = -1;

    if (write_confs(dir, "in", brokers, url, o, single, m->index, 0, path, sizeof path) != 0)
        goto out;
    if (!(conf = conf_load(path, &errs))) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        cfg_errors_clear(&errs);
        goto out;
    }
    log_min_level = !getenv("BENCH_LOG") ? LOG_WARN : strcmp(getenv("BENCH_LOG"), "debug") == 0 ? LOG_DEBUG : LOG_INFO;
    if (!(run.router = router_new(eb, conf, NULL, err, sizeof err)) || router_start(run.router, err, sizeof err) != 0) {
        fprintf(stderr, "bench-webhook: %s\n", err);
        if (run.router)
            router_free(run.router);
        conf_free(conf);
        goto out;
    }
    tick = event_new(eb, -1, EV_PERSIST, on_tick, &run);
    event_add(tick, &every);
    req0 = receiver_requests(url);
    cpu0 = self_cpu_s();
    loop0 = thread_cpu_s();
    rcpu0 = proc_cpu_s(rcv->pid);
    kcpu0 = proc_cpu_s(kafka->pid);
    event_base_dispatch(eb);
    req1 = receiver_requests(url);
    secs = run.t_end - run.t_first;
    if (run.done > 0 && secs > 0) {
        double recs = (double)(available - (long)run.d_first);
        char label[32];
        double loop = thread_cpu_s() - loop0, all = self_cpu_s() - cpu0;
        if (single)
            snprintf(label, sizeof label, "single (%d in flight)", o->max_in_flight);
        else
            snprintf(label, sizeof label, "json_array x%d", o->array_size);
        printf("sluice %s: %ld records in %.2f s: %.0f records/s, %.0f requests/s (%ld requests)\n", label,
               available, secs, recs / secs, (double)(req1 - req0) / secs, req1 - req0);
        *rate = recs / secs;
        if (run.ticks > 0)
            printf("  window: %.0f requests in flight on average (of %d allowed); %.0f of %d partitions on average "
                   "had nothing consumed past what was finished, so no request to send\n",
                   run.sum_in_flight / (double)run.ticks, o->partitions, run.sum_empty / (double)run.ticks,
                   o->partitions);
        *cpu_us = print_sluice_cpu(all, loop, proc_cpu_s(rcv->pid) - rcpu0, proc_cpu_s(kafka->pid) - kcpu0, available);
        rc = 0;
    }
    event_free(tick);
    router_free(run.router);
    conf_free(conf);
out:
    event_base_free(eb);
    return rc;
}

/* ---- another sluice binary (e.g. the previous build), run as a process in the same run ---- */

/* A free TCP port on 127.0.0.1 for its admin API (free now; the binary binds it a moment later). */
static int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* The first sink's delivered, dead_lettered and in_flight from GET /sinks; -1 when not answered. */
static int admin_sink_counts(const char *admin, long *delivered, long *dead, long *in_flight)
{
    struct body_buf body = { 0 };
    json_t *root = NULL, *sink;
    int rc = -1;

    if (http_get(admin, "/sinks", &body) == 0 && (root = json_loadb(body.p, body.len, 0, NULL)) &&
        (sink = json_array_get(json_object_get(root, "sinks"), 0))) {
        *delivered = (long)json_integer_value(json_object_get(sink, "delivered"));
        *dead = (long)json_integer_value(json_object_get(sink, "dead_lettered"));
        *in_flight = (long)json_integer_value(json_object_get(sink, "in_flight"));
        rc = 0;
    }
    json_decref(root);
    free(body.p);
    return rc;
}

/* Runs BINARY ("run -c" a main file written as for the router in this process, plus its admin
 * API on a free port) and times its drain the same way: from the first record delivered to
 * the last, from its own counters polled every 20 ms. Prints and returns its records/s. */
static int bench_process(const char *binary, const char *label, const char *dir, const char *brokers, const char *url,
                         const struct options *o, long available, int index, struct child *rcv, struct child *kafka,
                         double *rate, double *cpu_us)
{
    char path[PATH_MAX], admin[64], taskstat[64];
    int port = free_port();
    struct child proc = { 0 };
    double t_first = 0, t_end = 0, t_progress = 0, cpu0, rcpu0, kcpu0, sum_in_flight = 0, secs;
    long d_first = 0, d_last = -1, ticks = 0, req0, req1;
    int rc = -1;

    if (port <= 0 || write_confs(dir, label, brokers, url, o, 0, index, port, path, sizeof path) != 0)
        return -1;
    snprintf(admin, sizeof admin, "http://127.0.0.1:%d", port);
    req0 = receiver_requests(url);
    rcpu0 = proc_cpu_s(rcv->pid);
    kcpu0 = proc_cpu_s(kafka->pid);
    {
        char *args[] = { (char *)binary, "run", "-c", path, NULL };
        if (spawn(&proc, label, args) != 0)
            return -1;
    }
    snprintf(taskstat, sizeof taskstat, "%d/task/%d", (int)proc.pid, (int)proc.pid);
    cpu0 = 0;     /* a new process: all its CPU is this run's */
    for (;;) {
        long delivered = 0, dead = 0, in_flight = 0;
        int status;
        usleep(20000);
        if (waitpid(proc.pid, &status, WNOHANG) == proc.pid) {
            fprintf(stderr, "bench-webhook: %s exited before the drain ended\n", binary);
            proc.pid = 0;
            return -1;
        }
        if (admin_sink_counts(admin, &delivered, &dead, &in_flight) != 0)
            continue;           /* not listening yet */
        if (delivered != d_last) {
            t_progress = now_s();
            d_last = delivered;
        } else if (t_progress > 0 && now_s() - t_progress > STALL_LIMIT_S) {
            fprintf(stderr, "bench-webhook: %s: no progress for %d s at %ld of %ld records; giving up\n", binary,
                    STALL_LIMIT_S, delivered, available);
            break;
        }
        if (delivered > 0) {
            ticks++;
            sum_in_flight += (double)in_flight;
            if (t_first == 0) {
                t_first = now_s();
                d_first = delivered;
            }
        }
        if (delivered + dead >= available) {
            t_end = now_s();
            if (dead)
                fprintf(stderr, "bench-webhook: %ld records dead-lettered\n", dead);
            break;
        }
    }
    req1 = receiver_requests(url);
    secs = t_end - t_first;
    if (t_end > 0 && secs > 0) {
        double all = proc_cpu_s(proc.pid) - cpu0, loop = proc_cpu_s_path(taskstat);
        *rate = (double)(available - d_first) / secs;
        printf("%s sluice process (%s) json_array x%d: %ld records in %.2f s: %.0f records/s, %.0f requests/s "
               "(%ld requests)\n", label, binary, o->array_size, available, secs, *rate, (double)(req1 - req0) / secs, req1 - req0);
        if (ticks > 0)
            printf("  window: %.0f requests in flight on average (of %d allowed)\n", sum_in_flight / (double)ticks,
                   o->partitions);
        *cpu_us = print_sluice_cpu(all, loop, proc_cpu_s(rcv->pid) - rcpu0, proc_cpu_s(kafka->pid) - kcpu0, available);
        rc = 0;
    }
    stop(&proc);
    return rc;
}

#define MAX_REPEAT 25

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One binary's rounds against the bare client of the same rounds. */
struct series {
    const char *name;
    int n;
    double ratios[MAX_REPEAT], rates[MAX_REPEAT], cpu_ratios[MAX_REPEAT];
};

/* Adds a round (0 when a side failed: -1) and prints its ratios. The CPU ratio is the bare
 * round's CPU a record (client and receiver) over the sluice round's (sluice, receiver, mock
 * Kafka): what the rate ratio comes to when the machine's cores are the limit of both. */
static int series_add(struct series *sr, int round, double rate, double cpu_us, double bare_rate, double bare_cpu_us)
{
    if (rate <= 0 || bare_rate <= 0 || cpu_us <= 0)
        return -1;
    sr->ratios[sr->n] = rate / bare_rate;
    sr->rates[sr->n] = rate;
    sr->cpu_ratios[sr->n] = bare_cpu_us / cpu_us;
    printf("ratio %s/bare, run %d: %.2f (CPU a record: %s %.2f us, bare %.2f us; CPU ratio %.2f)\n", sr->name,
           round + 1, sr->ratios[sr->n], sr->name, cpu_us, bare_cpu_us, sr->cpu_ratios[sr->n]);
    sr->n++;
    return 0;
}

static void series_print(struct series *sr)
{
    int n = sr->n;

    if (n == 0)
        return;
    qsort(sr->ratios, (size_t)n, sizeof *sr->ratios, cmp_double);
    qsort(sr->rates, (size_t)n, sizeof *sr->rates, cmp_double);
    qsort(sr->cpu_ratios, (size_t)n, sizeof *sr->cpu_ratios, cmp_double);
    printf("ratio %s/bare: median %.2f of %d runs (min %.2f, max %.2f; target >= 0.85, none under 0.70); "
           "%s median %.0f records/s; CPU ratio median %.2f (%.2f-%.2f)\n", sr->name, sr->ratios[n / 2], n,
           sr->ratios[0], sr->ratios[n - 1], sr->name, sr->rates[n / 2], sr->cpu_ratios[n / 2], sr->cpu_ratios[0],
           sr->cpu_ratios[n - 1]);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench-webhook [--records N] [--partitions P] [--mode array|single|both] "
                 "[--array-size K] [--max-in-flight M] [--repeat R] [--old SLUICE] [--brokers B]\n");
}

int main(int argc, char **argv)
{
    struct options o = { .records = 1000000, .partitions = 128, .mode = "both", .array_size = 500, .max_in_flight = 32,
                         .repeat = 3, .brokers = 1 };
    char self[PATH_MAX], bindir[1024], dir[] = "/tmp/bench-webhook.XXXXXX", tool[PATH_MAX], pfile[PATH_MAX],
         bfile[PATH_MAX], topic[64], brokers[512], port[32], url[128];
    struct child kafka = { 0 }, rcv = { 0 };
    long available = 0;
    double single_rate = 0;
    ssize_t n;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--records") == 0)
            o.records = atol(v);
        else if (strcmp(a, "--partitions") == 0)
            o.partitions = atoi(v);
        else if (strcmp(a, "--mode") == 0)
            o.mode = v;
        else if (strcmp(a, "--array-size") == 0)
            o.array_size = atoi(v);
        else if (strcmp(a, "--max-in-flight") == 0)
            o.max_in_flight = atoi(v);
        else if (strcmp(a, "--repeat") == 0)
            o.repeat = atoi(v);
        else if (strcmp(a, "--old") == 0)
            o.old = v;
        else if (strcmp(a, "--brokers") == 0)
            o.brokers = atoi(v);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (o.records < 1 || o.partitions < 1 || o.array_size < 1 || o.max_in_flight < 1 || o.repeat < 1 ||
        o.repeat > MAX_REPEAT || o.brokers < 1 || o.brokers > 64 ||
        (strcmp(o.mode, "array") != 0 && strcmp(o.mode, "single") != 0 && strcmp(o.mode, "both") != 0)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    evthread_use_pthreads();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) < 0 || !mkdtemp(dir)) {
        perror("bench-webhook");
        return 1;
    }
    self[n] = '\0';
    snprintf(bindir, sizeof bindir, "%s", dirname(self));

    snprintf(tool, sizeof tool, "%s/mock-kafka", bindir);
    snprintf(bfile, sizeof bfile, "%s/bootstrap", dir);
    snprintf(topic, sizeof topic, "bench:%d", o.partitions);
    {
        char nbrokers[16];
        snprintf(nbrokers, sizeof nbrokers, "%d", o.brokers);
        char *args[] = { tool,    "--brokers",        nbrokers, "--topic", topic, "--topic", "sluice.dlq:1",
                         "--bootstrap-file", bfile, NULL };
        if (spawn(&kafka, "mock-kafka", args) != 0 || read_file_wait(bfile, brokers, sizeof brokers) != 0) {
            fprintf(stderr, "bench-webhook: mock-kafka did not start\n");
            goto out;
        }
    }
    snprintf(tool, sizeof tool, "%s/http-receiver", bindir);
    snprintf(pfile, sizeof pfile, "%s/port", dir);
    {
        char *args[] = { tool, "--port", "0", "--port-file", pfile, NULL };
        if (spawn(&rcv, "http-receiver", args) != 0 || read_file_wait(pfile, port, sizeof port) != 0) {
            fprintf(stderr, "bench-webhook: http-receiver did not start\n");
            goto out;
        }
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%s", port);
    if (produce(brokers, &o, &available) != 0)
        goto out;
    rc = 0;
    if (strcmp(o.mode, "single") != 0) {
        struct series now = { .name = "sluice" }, old = { .name = "old" }, proc = { .name = "new" };
        double ceilings[MAX_REPEAT], floor_us;
        int nceilings = 0;
        long ncores = sysconf(_SC_NPROCESSORS_ONLN);
        char new_bin[PATH_MAX];
        snprintf(new_bin, sizeof new_bin, "%s/sluice", bindir);
        /* Alternating runs, and the median: the machine is shared and one run can be unlucky. */
        for (int r = 0; r < o.repeat; r++) {
            struct mode_run m = { .single = 0, .index = r };
            double sink_rate = 0, bare_rate, old_rate = 0, sink_cpu = 0, bare_cpu = 0, old_cpu = 0, new_rate = 0,
                   new_cpu = 0;
            /* --old: that binary and this build's sluice, both as processes measured alike */
            if (o.old && (bench_process(o.old, "old", dir, brokers, url, &o, available, r, &rcv, &kafka, &old_rate,
                                        &old_cpu) != 0 ||
                          bench_process(new_bin, "new", dir, brokers, url, &o, available, r, &rcv, &kafka, &new_rate,
                                        &new_cpu) != 0))
                rc = 1;
            if (bench_mode(dir, brokers, url, &o, available, &m, &rcv, &kafka, &sink_rate, &sink_cpu) != 0)
                rc = 1;
            /* The same receiver, the same bodies, as many requests in flight as the sink had. */
            bare_rate = bench_bare(url, &o, o.partitions, &rcv, &bare_cpu);
            if (series_add(&now, r, sink_rate, sink_cpu, bare_rate, bare_cpu) != 0)
                rc = 1;
            /* The ceiling: a sluice doing nothing but consume and the bare client's work, on
             * every core, against the bare client's rate of this round. */
            if ((floor_us = bench_consume(brokers, &o, available, r, &kafka)) > 0 && bare_rate > 0 && bare_cpu > 0) {
                ceilings[nceilings] = (double)ncores / ((bare_cpu + floor_us) * 1e-6) / bare_rate;
                printf("ceiling, run %d: %.2f of the bare client (%ld cores / (bare %.2f us + Kafka alone %.2f us a "
                       "record), over the bare rate)\n", r + 1, ceilings[nceilings], ncores, bare_cpu, floor_us);
                nceilings++;
            }
            if (o.old) {
                series_add(&old, r, old_rate, old_cpu, bare_rate, bare_cpu);
                series_add(&proc, r, new_rate, new_cpu, bare_rate, bare_cpu);
            }
        }
        series_print(&old);
        series_print(&proc);
        series_print(&now);
        if (nceilings > 0) {
            qsort(ceilings, (size_t)nceilings, sizeof *ceilings, cmp_double);
            printf("ceiling on this machine: median %.2f of the bare client (%.2f-%.2f), the most any sluice "
                   "reaches here with the cores the limit\n", ceilings[nceilings / 2], ceilings[0],
                   ceilings[nceilings - 1]);
        }
    }
    if (strcmp(o.mode, "array") != 0) {
        struct mode_run m = { .single = 1, .index = o.repeat + 1 };
        double single_cpu = 0;
        if (bench_mode(dir, brokers, url, &o, available, &m, &rcv, &kafka, &single_rate, &single_cpu) != 0)
            rc = 1;
    }
out:
    stop(&rcv);
    stop(&kafka);
    {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench-webhook: could not remove %s\n", dir);
    }
    curl_global_cleanup();
    return rc;
}
