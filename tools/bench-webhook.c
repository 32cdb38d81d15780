/* bench-webhook: how fast the webhook sink delivers. It starts the project's mock Kafka and
 * HTTP receiver (tools/mock-kafka, tools/http-receiver, next to this program) as processes,
 * produces N records of about 300 bytes into a topic of 128 partitions (enough for the mock,
 * which keeps about 5 MiB per partition, to keep them all), then for each mode runs the router in this process with one
 * signed webhook sink and times the drain: from the first record delivered to the last.
 *
 * Usage: bench-webhook [--records N] [--partitions P] [--mode array|single|both]
 *                      [--array-size K] [--max-in-flight M]
 *
 * Prints, per mode, records/s and requests/s (counted by the receiver), and the CPU seconds
 * spent meanwhile by this process (router, sink, Kafka consumer), the receiver and the mock
 * Kafka: where the time goes. */
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

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <librdkafka/rdkafka.h>

#include "router/conf.h"
#include "router/log.h"
#include "router/router.h"

extern char **environ;

struct options {
    long records;
    int partitions;
    const char *mode;
    int array_size;
    int max_in_flight;
};

struct child {
    pid_t pid;
    const char *name;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of another process, from /proc/PID/stat (utime + stime). */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long utime = 0, stime = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
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

static size_t sink_body(char *p, size_t size, size_t n, void *arg)
{
    struct { char buf[256]; size_t len; } *b = arg;
    size_t len = size * n, take = len < sizeof b->buf - 1 - b->len ? len : sizeof b->buf - 1 - b->len;
    memcpy(b->buf + b->len, p, take);
    b->len += take;
    b->buf[b->len] = '\0';
    return len;
}

/* The receiver's request counter (GET /_control/stats); a blocking call is fine in a tool. */
static long receiver_requests(const char *url)
{
    struct { char buf[256]; size_t len; } body = { .len = 0 };
    char full[256];
    CURL *easy = curl_easy_init();
    const char *p;
    long n = -1;

    snprintf(full, sizeof full, "%s/_control/stats", url);
    curl_easy_setopt(easy, CURLOPT_URL, full);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, sink_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(easy) == CURLE_OK && (p = strstr(body.buf, "\"requests\":")))
        n = strtol(p + 11, NULL, 10);
    curl_easy_cleanup(easy);
    return n;
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
        int klen = snprintf(key, sizeof key, "k-%ld", i % 100000);
        int vlen = snprintf(value, sizeof value,
                            "{\"id\":\"k-%ld\",\"seq\":%ld,\"tier\":\"%s\",\"name\":\"Customer %ld\","
                            "\"email\":\"customer%ld@example.com\",\"country\":\"DE\",\"plan\":\"business\","
                            "\"address\":{\"street\":\"Hauptstrasse %ld\",\"city\":\"Berlin\",\"zip\":\"10115\"},"
                            "\"score\":%ld.5,\"active\":true}",
                            i % 100000, i, i % 10 == 0 ? "gold" : "basic", i, i % 100000, i % 300, i % 1000);
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
};

#define STALL_LIMIT_S 60

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

static int bench_mode(const char *dir, const char *brokers, const char *url, const struct options *o, long available,
                      int single, struct child *rcv, struct child *kafka)
{
    char path[PATH_MAX], sinks[1024], err[1024];
    struct cfg_errors errs = { 0 };
    struct event_base *eb = event_base_new();
    struct run run = { .target = available };
    struct event *tick = NULL;
    struct timeval every = { 0, 20000 };
    struct conf *conf;
    double cpu0, rcpu0, kcpu0, secs;
    long req0, req1;
    FILE *f;
    int rc = -1;

    snprintf(sinks, sizeof sinks, "%s/sinks-%s", dir, single ? "single" : "array");
    mkdir(sinks, 0755);
    snprintf(path, sizeof path, "%s/hook.json", sinks);
    if (!(f = fopen(path, "w")))
        goto out;
    /* max_buffered_records is raised: with the default, the router pauses every partition once
     * the sink holds 100,000 records, and resumes only those whose own batches finish. */
    fprintf(f, "{ \"name\": \"bench\", \"type\": \"webhook\", \"topics\": [\"bench\"],\n"
               "  \"batch\": { \"max_records\": %d, \"max_bytes\": 8388608, \"linger_ms\": 5 }, \"max_buffered_records\": 10000000,\n"
               "  \"webhook\": { \"url\": \"%s/hook\", \"batch_format\": \"%s\", \"max_in_flight\": %d,\n"
               "               \"secret\": \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"allow_private_networks\": true } }\n",
            o->array_size, url, single ? "single" : "json_array", single ? o->max_in_flight : o->partitions);
    fclose(f);
    snprintf(path, sizeof path, "%s/sluice-%s.json", dir, single ? "single" : "array");
    if (!(f = fopen(path, "w")))
        goto out;
    fprintf(f, "{ \"kafka\": { \"bootstrap.servers\": \"%s\", \"group.id\": \"bench-%s-%d\", \"fetch.wait.max.ms\": \"50\",\n"
               "             \"session.timeout.ms\": \"6000\" },\n"
               "  \"commit_interval_ms\": 1000, \"sinks_dir\": \"%s\", \"log\": { \"level\": \"warn\" } }\n",
            brokers, single ? "single" : "array", (int)getpid(), sinks);
    fclose(f);
    if (!(conf = conf_load(path, &errs))) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        cfg_errors_clear(&errs);
        goto out;
    }
    log_min_level = getenv("BENCH_LOG") ? LOG_INFO : LOG_WARN;
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
    rcpu0 = proc_cpu_s(rcv->pid);
    kcpu0 = proc_cpu_s(kafka->pid);
    event_base_dispatch(eb);
    req1 = receiver_requests(url);
    secs = run.t_end - run.t_first;
    if (run.done > 0 && secs > 0) {
        double recs = (double)(available - (long)run.d_first);
        char label[32];
        if (single)
            snprintf(label, sizeof label, "single (%d in flight)", o->max_in_flight);
        else
            snprintf(label, sizeof label, "json_array x%d", o->array_size);
        printf("%s: %ld records in %.2f s: %.0f records/s, %.0f requests/s (%ld requests)\n",
               label, available, secs, recs / secs, (double)(req1 - req0) / secs, req1 - req0);
        printf("  CPU from start to drained (the ~3 s group join included): sluice %.2f s, receiver %.2f s, "
               "mock kafka %.2f s\n", self_cpu_s() - cpu0, proc_cpu_s(rcv->pid) - rcpu0, proc_cpu_s(kafka->pid) - kcpu0);
        rc = 0;
    }
    event_free(tick);
    router_free(run.router);
    conf_free(conf);
out:
    event_base_free(eb);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench-webhook [--records N] [--partitions P] [--mode array|single|both] "
                 "[--array-size K] [--max-in-flight M]\n");
}

int main(int argc, char **argv)
{
    struct options o = { .records = 1000000, .partitions = 128, .mode = "both", .array_size = 500, .max_in_flight = 32 };
    char self[PATH_MAX], bindir[1024], dir[] = "/tmp/bench-webhook.XXXXXX", tool[PATH_MAX], pfile[PATH_MAX],
         bfile[PATH_MAX], topic[64], brokers[512], port[32], url[128];
    struct child kafka = { 0 }, rcv = { 0 };
    long available = 0;
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
        else {
            usage(stderr);
            return 2;
        }
    }
    if (o.records < 1 || o.partitions < 1 || o.array_size < 1 || o.max_in_flight < 1 ||
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
        char *args[] = { tool, "--topic", topic, "--topic", "sluice.dlq:1", "--bootstrap-file", bfile, NULL };
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
    if (strcmp(o.mode, "single") != 0 && bench_mode(dir, brokers, url, &o, available, 0, &rcv, &kafka) != 0)
        rc = 1;
    if (strcmp(o.mode, "array") != 0 && bench_mode(dir, brokers, url, &o, available, 1, &rcv, &kafka) != 0)
        rc = 1;
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
