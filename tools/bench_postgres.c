/* bench_postgres: how fast the postgres sink writes, against a plain COPY of the same rows.
 *
 * Usage: bench_postgres CONNINFO [--records N] [--partitions P] [--batch B] [--connections C]
 *                                [--depth D] [--linger MS] [--repeat R]
 *
 * 1. Starts an embedded Kafka (librdkafka's mock cluster, in this process, as `sluice dev`
 *    does) and produces N records (~250-byte JSON, distinct keys) into P partitions of topic
 *    bench, N more with the same keys and new values into topic bench2, and N more into bench3
 *    whose odd records carry new values again and whose even records repeat bench2's unchanged,
 *    all of them before the clock starts (64 partitions keep 1,000,000 such records: the mock
 *    keeps about 5 MiB per partition).
 * 2. Each run: the router, in this process, drains bench through one postgres sink in upsert
 *    mode into the empty table bench_accounts (8 columns, primary key id): every key is new
 *    (the insert path). It COPYs the same rows into an empty copy of the table (same indexes),
 *    and drains bench in mode insert into another empty copy (the append path). Then it drains
 *    bench2 into the full table: every key exists, every row changes (the update path, which is
 *    what keeping a table in step mostly is), and bench3: every key exists, half of the rows
 *    change. Each drain is timed from the first batch applied to the last.
 * Prints rows/s of each, each path's ratio to the COPY of the same run, and the server CPU of
 * the COPY over the path's (the ratio the server's own work sets, less swayed by whatever else
 * runs on the machine). Meant to be run by tools/bench-postgres.sh, which starts a PostgreSQL
 * server on loopback. */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "lib/log.h"
#include "router/conf.h"
#include "router/router.h"

struct opts {
    const char *conninfo;
    long records;
    int partitions;
    int batch;
    int connections;
    int depth;
    int linger_ms;
    int repeat;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds used so far by this process, and by every process named "postgres" (the server:
 * the backends doing the work, and its background processes). */
static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds the machine spent so far (from /proc/stat): in processes (user, nice, system,
 * irq, softirq), and taken by the hypervisor for other machines (steal). */
static double cpu_machine_steal(double *steal)
{
    unsigned long long v[8] = { 0 };
    FILE *f = fopen("/proc/stat", "r");
    double hz = (double)sysconf(_SC_CLK_TCK), total = 0;

    *steal = 0;
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7]) == 8) {
        total = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
        *steal = (double)v[7] / hz;
    }
    if (f)
        fclose(f);
    return total;
}

static double cpu_machine(void)
{
    double steal;
    return cpu_machine_steal(&steal);
}

static double cpu_steal(void)
{
    double steal;
    cpu_machine_steal(&steal);
    return steal;
}

/* The postgres processes come and go (a drain's backends exit after it): a plain sum over the
 * live ones would drop an exited backend's CPU and could go down. So each call adds what every
 * live process used since the previous call (all of it for one not seen before), and the total
 * only grows. */
static double cpu_postgres(void)
{
    static struct { long pid; double cpu; } seen[4096];
    static size_t nseen;
    static double total;
    DIR *d = opendir("/proc");
    struct dirent *e;
    long hz = sysconf(_SC_CLK_TCK);

    while (d && (e = readdir(d))) {
        char path[300], buf[1024], *p;
        unsigned long utime, stime;
        FILE *f;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        if (fgets(buf, sizeof buf, f) && strstr(buf, "(postgres)") && (p = strrchr(buf, ')')) &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2) {
            long pid = atol(e->d_name);
            double cpu = (double)(utime + stime) / (double)hz;
            size_t i = 0;
            while (i < nseen && seen[i].pid != pid)
                i++;
            if (i == nseen && nseen < sizeof seen / sizeof seen[0]) {
                seen[nseen].pid = pid;
                seen[nseen++].cpu = 0;
            }
            if (i < nseen && cpu >= seen[i].cpu) {   /* a smaller value: the pid was reused */
                total += cpu - seen[i].cpu;
                seen[i].cpu = cpu;
            } else if (i < nseen) {
                total += cpu;
                seen[i].cpu = cpu;
            }
        }
        fclose(f);
    }
    if (d)
        closedir(d);
    return total;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_postgres: %s: %s\n", what, why);
    exit(1);
}

/* Record i of generation g: the fields, shared by the JSON value and the COPY row. */
struct account {
    char id[32], name[48], email[64], plan[16], country[4], signup[32], notes[96];
    double balance;
    int active;
};

/* Generation 2 is the mixed update: its even records repeat generation 1 unchanged. */
static void account_make(long i, int g, struct account *a)
{
    static const char *const plans[] = { "free", "pro", "team", "enterprise" };
    static const char *const countries[] = { "DE", "FR", "US", "JP", "BR", "IN" };
    if (g == 2 && i % 2 == 0)
        g = 1;
    snprintf(a->id, sizeof a->id, "acct-%08ld", i);
    snprintf(a->name, sizeof a->name, "Customer %08ld gen %d", i, g);
    snprintf(a->email, sizeof a->email, "customer.%08ld@example.com", i);
    snprintf(a->plan, sizeof a->plan, "%s", plans[(i + g) % 4]);
    snprintf(a->country, sizeof a->country, "%s", countries[i % 6]);
    snprintf(a->signup, sizeof a->signup, "2024-%02ld-%02ldT10:%02ld:%02ldZ", i % 12 + 1, i % 28 + 1, i % 60, (i + g) % 60);
    snprintf(a->notes, sizeof a->notes, "account note %ld: lorem ipsum dolor sit amet, consectetur elit", i * 7 + g);
    a->balance = (double)((i * 37 + g * 11) % 1000000) / 100.0;
    a->active = (i + g) % 3 != 0;
}

static int account_json(const struct account *a, char *out, size_t outlen)
{
    return snprintf(out, outlen,
                    "{\"id\":\"%s\",\"name\":\"%s\",\"email\":\"%s\",\"plan\":\"%s\",\"balance\":%.2f,"
                    "\"country\":\"%s\",\"active\":%s,\"signup\":\"%s\",\"notes\":\"%s\"}",
                    a->id, a->name, a->email, a->plan, a->balance, a->country, a->active ? "true" : "false",
                    a->signup, a->notes);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double sorted[16];
    memcpy(sorted, v, (size_t)n * sizeof *v);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        *(int *)opaque = 1;
}

static double produce(const char *bootstrap, const char *topic, long n, int g, size_t *bytes)
{
    char errstr[512], value[512];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_t *rk;
    int failed = 0;
    double t0 = now_s();

    rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_conf_set(kc, "linger.ms", "50", errstr, sizeof errstr);
    rd_kafka_conf_set(kc, "batch.num.messages", "10000", errstr, sizeof errstr);
    rd_kafka_conf_set(kc, "queue.buffering.max.messages", "500000", errstr, sizeof errstr);
    rd_kafka_conf_set(kc, "compression.codec", "none", errstr, sizeof errstr);
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_conf_set_opaque(kc, &failed);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof errstr)))
        die("producer", errstr);
    *bytes = 0;
    for (long i = 0; i < n; i++) {
        struct account a;
        char key[32];
        int len;
        account_make(i, g, &a);
        len = account_json(&a, value, sizeof value);
        snprintf(key, sizeof key, "%s", a.id);
        *bytes += (size_t)len;
        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                 RD_KAFKA_V_VALUE(value, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 120000);
    rd_kafka_destroy(rk);
    if (failed)
        die("produce", "some records were not delivered");
    return now_s() - t0;
}

static PGresult *sql(PGconn *pg, const char *text)
{
    PGresult *res = PQexec(pg, text);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        die(text, PQerrorMessage(pg));
    return res;
}

static void sql_do(PGconn *pg, const char *text)
{
    PQclear(sql(pg, text));
}

static long sql_count(PGconn *pg, const char *text)
{
    PGresult *res = sql(pg, text);
    long n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* ---- the drain ---- */

struct drain {
    struct router *router;
    struct event *tick;
    long target;
    uint64_t start_delivered;
    double t0, t1;
    double self0, self1, pg0, pg1, all0, all1, steal0, steal1;   /* CPU seconds at t0 and t1 */
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct drain *d = arg;
    const struct router_sink_stats *st = router_sink_stats(d->router, 0);
    (void)fd;
    (void)what;

    if (!st)
        return;
    if (d->t0 == 0 && st->delivered > 0) {
        d->t0 = now_s();
        d->start_delivered = st->delivered;
        d->self0 = cpu_self();
        d->pg0 = cpu_postgres();
        d->all0 = cpu_machine();
        d->steal0 = cpu_steal();
    }
    if (d->t1 == 0 && st->delivered >= (uint64_t)d->target) {
        d->t1 = now_s();
        d->self1 = cpu_self();
        d->pg1 = cpu_postgres();
        d->all1 = cpu_machine();
        d->steal1 = cpu_steal();
        router_shutdown(d->router);
    }
    if (st->dead_lettered > 0)
        die("drain", "records were dead-lettered; see the log");
}

/* Drains @p topic into @p table: upsert mode on the key id, or, with @p insert_mode, an append
 * (id from the record key; positions in their own table, as this topic was drained before). */
static double drain(const struct opts *o, const char *dir, const char *bootstrap, const char *topic,
                    const char *group, const char *table, int insert_mode, long *rows, double *server_cpu)
{
    char path[512], err[1024];
    struct cfg_errors errs = { 0 };
    struct conf *conf;
    struct event_base *eb = event_base_new();
    struct drain d = { .target = o->records };
    struct timeval every = { 0, 5000 };
    FILE *f;

    snprintf(path, sizeof path, "%s/bench.json", dir);
    if (!(f = fopen(path, "w")))
        die(path, "cannot write");
    fprintf(f,
            "{ \"kafka\": { \"bootstrap.servers\": \"%s\", \"group.id\": \"%s\", \"fetch.wait.max.ms\": \"50\",\n"
            "    \"session.timeout.ms\": \"6000\" },\n"
            "  \"log\": { \"level\": \"warn\" },\n"
            "  \"sinks\": [ { \"name\": \"bench\", \"type\": \"postgres\", \"topics\": [\"%s\"],\n"
            "    \"batch\": { \"max_records\": %d, \"max_bytes\": 16777216, \"linger_ms\": %d },\n"
            "    \"max_buffered_records\": 1000000,\n"
            "    \"postgres\": { \"conninfo\": \"%s\", \"table\": \"%s\", %s\n"
            "      \"offsets_table\": \"%s\","
            "      \"max_connections\": %d, \"pipeline_depth\": %d,\n"
            "      \"columns\": { %s\"name\": \"$.name\", \"email\": \"$.email\", \"plan\": \"$.plan\",\n"
            "        \"balance\": \"$.balance\", \"country\": \"$.country\", \"active\": \"$.active\",\n"
            "        \"signup\": \"$.signup\", \"notes\": \"$.notes\" } } } ] }\n",
            bootstrap, group, topic, o->batch, o->linger_ms, o->conninfo, table,
            insert_mode ? "\"mode\": \"insert\"," : "\"key_columns\": [\"id\"],",
            insert_mode ? "bench_log_offsets" : "bench_offsets", o->connections, o->depth,
            insert_mode ? "\"id\": \"@key\", " : "");
    fclose(f);
    if (!(conf = conf_load(path, &errs))) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        die("configuration", "refused");
    }
    log_min_level = LOG_WARN;
    if (!(d.router = router_new(eb, conf, NULL, err, sizeof err)))
        die("router", err);
    if (router_start(d.router, err, sizeof err) != 0)
        die("router start", err);
    d.tick = event_new(eb, -1, EV_PERSIST, on_tick, &d);
    event_add(d.tick, &every);
    event_base_dispatch(eb);
    *rows = (long)(router_sink_stats(d.router, 0)->delivered - d.start_delivered);
    event_free(d.tick);
    router_free(d.router);
    conf_free(conf);
    event_base_free(eb);
    if (d.t1 == 0)
        die("drain", "stopped before every record was applied");
    *server_cpu = d.pg1 - d.pg0;
    printf("  drain: %.2f s; CPU: sluice process %.2f s (router, sink, consumer and the embedded Kafka), "
           "postgres %.2f s, the rest of the machine %.2f s (+%.2f s stolen by the hypervisor)\n", d.t1 - d.t0,
           d.self1 - d.self0, d.pg1 - d.pg0, (d.all1 - d.all0) - (d.self1 - d.self0) - (d.pg1 - d.pg0),
           d.steal1 - d.steal0);
    fflush(stdout);
    return d.t1 - d.t0;
}

/* ---- COPY ---- */

static double copy_rows(PGconn *pg, long n, int g)
{
    size_t cap = (size_t)n * 300 + 1, len = 0;
    char *buf = malloc(cap);
    PGresult *res;
    double t0;

    if (!buf)
        die("copy", "out of memory");
    for (long i = 0; i < n; i++) {
        struct account a;
        account_make(i, g, &a);
        len += (size_t)snprintf(buf + len, cap - len, "%s\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\n", a.id, a.name, a.email,
                                a.plan, a.balance, a.country, a.active ? "true" : "false", a.signup, a.notes);
    }
    t0 = now_s();
    res = PQexec(pg, "COPY bench_copy (id, name, email, plan, balance, country, active, signup, notes) FROM STDIN");
    if (PQresultStatus(res) != PGRES_COPY_IN)
        die("copy", PQerrorMessage(pg));
    PQclear(res);
    for (size_t off = 0; off < len; off += 1 << 20) {
        size_t chunk = len - off < (1u << 20) ? len - off : (1u << 20);
        if (PQputCopyData(pg, buf + off, (int)chunk) != 1)
            die("copy", PQerrorMessage(pg));
    }
    if (PQputCopyEnd(pg, NULL) != 1)
        die("copy", PQerrorMessage(pg));
    res = PQgetResult(pg);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die("copy", PQerrorMessage(pg));
    PQclear(res);
    while ((res = PQgetResult(pg)))
        PQclear(res);
    free(buf);
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        { "records", required_argument, NULL, 'n' }, { "partitions", required_argument, NULL, 'p' },
        { "batch", required_argument, NULL, 'b' }, { "connections", required_argument, NULL, 'c' },
        { "linger", required_argument, NULL, 'l' },
        { "depth", required_argument, NULL, 'd' }, { "repeat", required_argument, NULL, 'r' },
        { NULL, 0, NULL, 0 },
    };
    struct opts o = { .records = 1000000, .partitions = 64, .batch = 1000, .connections = 2, .depth = 4, .linger_ms = 10,
                      .repeat = 3 };
    char dir[] = "/tmp/bench-postgres.XXXXXX", errstr[512], group[64];
    rd_kafka_conf_t *kc;
    rd_kafka_t *mock_rk;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstrap;
    size_t bytes;
    double t_produce, t_drain;
    double insert_rates[16], update_rates[16], mixed_rates[16], append_rates[16], copy_rates[16];
    double insert_ratios[16], update_ratios[16], mixed_ratios[16], append_ratios[16];
    /* Server CPU of COPY over the path's, for as many rows: what the ratios would be if the
     * server had the machine to itself (the rates swing with the machine's other work). */
    double insert_cpu[16], update_cpu[16], mixed_cpu[16], append_cpu[16], copy_cpu;
    long rows;
    PGconn *pg;
    int opt;

    while ((opt = getopt_long(argc, argv, "n:p:b:c:d:l:r:", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'n': o.records = atol(optarg); break;
        case 'p': o.partitions = atoi(optarg); break;
        case 'b': o.batch = atoi(optarg); break;
        case 'c': o.connections = atoi(optarg); break;
        case 'd': o.depth = atoi(optarg); break;
        case 'l': o.linger_ms = atoi(optarg); break;
        case 'r': o.repeat = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: bench_postgres CONNINFO [--records N] [--partitions P] [--batch B] "
                            "[--connections C] [--depth D] [--linger MS] [--repeat R]\n");
            return 2;
        }
    }
    if (optind != argc - 1 || o.records < 1 || o.partitions < 1 || o.batch < 1 || o.connections < 1 ||
        o.repeat < 1 || o.repeat > 15) {
        fprintf(stderr, "usage: bench_postgres CONNINFO [options]\n");
        return 2;
    }
    o.conninfo = argv[optind];
    evthread_use_pthreads();
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");

    pg = PQconnectdb(o.conninfo);
    if (PQstatus(pg) != CONNECTION_OK)
        die("connect", PQerrorMessage(pg));
    sql_do(pg, "SET client_min_messages = warning");
    sql_do(pg, "DROP TABLE IF EXISTS bench_accounts, bench_copy, bench_offsets");
    sql_do(pg, "CREATE TABLE bench_accounts (id text PRIMARY KEY, name text, email text, plan text, balance numeric(12,2), "
               "country text, active boolean, signup timestamptz, notes text)");
    sql_do(pg, "CREATE TABLE bench_copy (LIKE bench_accounts INCLUDING ALL)");
    sql_do(pg, "DROP TABLE IF EXISTS bench_log, bench_log_offsets");
    sql_do(pg, "CREATE TABLE bench_log (LIKE bench_accounts INCLUDING ALL)");
    /* No autovacuum: it would start at random points and its CPU would count for whichever
     * path ran then (the vacuum debt of the update paths is not measured). */
    sql_do(pg, "ALTER TABLE bench_accounts SET (autovacuum_enabled = off)");
    sql_do(pg, "ALTER TABLE bench_copy SET (autovacuum_enabled = off)");
    sql_do(pg, "ALTER TABLE bench_log SET (autovacuum_enabled = off)");
    sql_do(pg, "CREATE TABLE bench_offsets (sink text NOT NULL, topic text NOT NULL, \"partition\" integer NOT NULL, "
               "next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), "
               "PRIMARY KEY (sink, topic, \"partition\"))");

    /* The embedded Kafka, as in `sluice dev`. */
    kc = rd_kafka_conf_new();
    rd_kafka_conf_set(kc, "log_level", "3", errstr, sizeof errstr);
    if (!(mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof errstr)))
        die("mock cluster", errstr);
    if (!(mc = rd_kafka_mock_cluster_new(mock_rk, 1)))
        die("mock cluster", "cannot start");
    bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    rd_kafka_mock_topic_create(mc, "bench", o.partitions, 1);
    rd_kafka_mock_topic_create(mc, "bench2", o.partitions, 1);
    rd_kafka_mock_topic_create(mc, "bench3", o.partitions, 1);
    rd_kafka_mock_topic_create(mc, "sluice.dlq", 1, 1);

    t_produce = produce(bootstrap, "bench", o.records, 0, &bytes);
    t_produce += produce(bootstrap, "bench2", o.records, 1, &bytes);
    t_produce += produce(bootstrap, "bench3", o.records, 2, &bytes);
    printf("produced %ld records (%.0f bytes each on average) into %d partitions, and as many with the same "
           "keys and new values into %d more, and as many again with half of them unchanged, in %.1f s\n",
           o.records, (double)bytes / (double)o.records, o.partitions, o.partitions, t_produce);
    fflush(stdout);

    /* Drains and COPY alternate, so that whatever else runs on the machine weighs on each. */
    for (int r = 0; r < o.repeat; r++) {
        double t_copy_r;
        sql_do(pg, "TRUNCATE bench_accounts, bench_copy, bench_log");
        sql_do(pg, "DELETE FROM bench_offsets");
        sql_do(pg, "DROP TABLE IF EXISTS bench_log_offsets");
        printf("run %d:\n insert path (every key new):\n", r + 1);
        snprintf(group, sizeof group, "bench-%ld-%d", (long)getpid(), r);
        t_drain = drain(&o, dir, bootstrap, "bench", group, "bench_accounts", 0, &rows, &insert_cpu[r]);
        if (sql_count(pg, "SELECT count(*) FROM bench_accounts") != o.records)
            die("check", "bench_accounts does not hold one row per record");
        insert_rates[r] = (double)rows / t_drain;
        {
            double pg0 = cpu_postgres(), all0 = cpu_machine(), self0 = cpu_self(), steal0 = cpu_steal();
            t_copy_r = copy_rows(pg, o.records, 0);
            pg0 = cpu_postgres() - pg0;
            copy_cpu = pg0;
            printf("  COPY: %.2f s; CPU: postgres %.2f s, the rest of the machine %.2f s (+%.2f s stolen)\n", t_copy_r,
                   pg0, (cpu_machine() - all0) - pg0 - (cpu_self() - self0), cpu_steal() - steal0);
        }
        if (sql_count(pg, "SELECT count(*) FROM bench_copy") != o.records)
            die("check", "bench_copy does not hold every row");
        copy_rates[r] = (double)o.records / t_copy_r;
        printf(" mode insert (append into an empty table):\n");
        snprintf(group, sizeof group, "bench1-%ld-%d", (long)getpid(), r);
        t_drain = drain(&o, dir, bootstrap, "bench", group, "bench_log", 1, &rows, &append_cpu[r]);
        if (sql_count(pg, "SELECT count(*) FROM bench_log") != o.records)
            die("check", "bench_log does not hold one row per record");
        append_rates[r] = (double)rows / t_drain;
        printf(" update path (every key exists, new values):\n");
        snprintf(group, sizeof group, "bench2-%ld-%d", (long)getpid(), r);
        t_drain = drain(&o, dir, bootstrap, "bench2", group, "bench_accounts", 0, &rows, &update_cpu[r]);
        if (sql_count(pg, "SELECT count(*) FROM bench_accounts WHERE name LIKE '% gen 1'") != o.records ||
            sql_count(pg, "SELECT count(*) FROM bench_accounts") != o.records)
            die("check", "the update path did not update every row in place");
        update_rates[r] = (double)rows / t_drain;
        printf(" update path, half unchanged (every key exists; odd records new values, even ones the same):\n");
        snprintf(group, sizeof group, "bench3-%ld-%d", (long)getpid(), r);
        t_drain = drain(&o, dir, bootstrap, "bench3", group, "bench_accounts", 0, &rows, &mixed_cpu[r]);
        if (sql_count(pg, "SELECT count(*) FROM bench_accounts WHERE name LIKE '% gen 2'") != o.records / 2 ||
            sql_count(pg, "SELECT count(*) FROM bench_accounts WHERE name LIKE '% gen 1'") != o.records - o.records / 2)
            die("check", "the mixed update path did not leave odd records at generation 2, even ones at 1");
        mixed_rates[r] = (double)rows / t_drain;
        insert_ratios[r] = insert_rates[r] / copy_rates[r];
        update_ratios[r] = update_rates[r] / copy_rates[r];
        mixed_ratios[r] = mixed_rates[r] / copy_rates[r];
        append_ratios[r] = append_rates[r] / copy_rates[r];
        insert_cpu[r] = copy_cpu / insert_cpu[r];
        update_cpu[r] = copy_cpu / update_cpu[r];
        mixed_cpu[r] = copy_cpu / mixed_cpu[r];
        append_cpu[r] = copy_cpu / append_cpu[r];
        printf("  sluice upsert: insert path %.0f rows/s, update path %.0f, half unchanged %.0f; mode insert %.0f; "
               "COPY %.0f rows/s; ratios to COPY %.2f, %.2f, %.2f; %.2f\n", insert_rates[r], update_rates[r],
               mixed_rates[r], append_rates[r], copy_rates[r], insert_ratios[r], update_ratios[r], mixed_ratios[r],
               append_ratios[r]);
        printf("  server CPU of COPY over each path's (same rows): %.2f, %.2f, %.2f; %.2f\n", insert_cpu[r],
               update_cpu[r], mixed_cpu[r], append_cpu[r]);
        fflush(stdout);
    }

    printf("\n%ld records per drain, batch %d, %d connections x depth %d, %d partitions, median of %d run(s):\n",
           o.records, o.batch, o.connections, o.depth, o.partitions, o.repeat);
    printf("sluice upsert, update path (keys exist): %.0f rows/s, ratio to COPY %.2f (runs:",
           median(update_rates, o.repeat), median(update_ratios, o.repeat));
    for (int r = 0; r < o.repeat; r++)
        printf(" %.2f", update_ratios[r]);
    printf(")\nsluice upsert, update path, half unchanged: %.0f rows/s, ratio to COPY %.2f (runs:",
           median(mixed_rates, o.repeat), median(mixed_ratios, o.repeat));
    for (int r = 0; r < o.repeat; r++)
        printf(" %.2f", mixed_ratios[r]);
    printf(")\nsluice mode insert (append): %.0f rows/s, ratio to COPY %.2f (runs:", median(append_rates, o.repeat),
           median(append_ratios, o.repeat));
    for (int r = 0; r < o.repeat; r++)
        printf(" %.2f", append_ratios[r]);
    printf(")\nsluice upsert, insert path (keys new): %.0f rows/s, ratio to COPY %.2f (runs:",
           median(insert_rates, o.repeat), median(insert_ratios, o.repeat));
    for (int r = 0; r < o.repeat; r++)
        printf(" %.2f", insert_ratios[r]);
    printf(")\nplain COPY into an empty copy of the table: %.0f rows/s\n", median(copy_rates, o.repeat));
    printf("server CPU of COPY over each path's, medians: insert path %.2f, update path %.2f, half unchanged %.2f, "
           "mode insert %.2f\n", median(insert_cpu, o.repeat), median(update_cpu, o.repeat), median(mixed_cpu, o.repeat),
           median(append_cpu, o.repeat));

    PQfinish(pg);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mock_rk);
    snprintf(errstr, sizeof errstr, "%s/bench.json", dir);
    unlink(errstr);
    rmdir(dir);
    return 0;
}
