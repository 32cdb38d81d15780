/* mock-kafka: librdkafka's mock cluster as a process of its own, for tests and demos.
 *
 * Usage: mock-kafka [--brokers N] [--topic NAME[:PARTITIONS]]... [--bootstrap-file PATH]
 *                   [--control PATH] [--exit-on-eof]
 *
 *   --brokers N          brokers in the cluster (default 1); their ids are 1..N
 *   --topic NAME:P       create topic NAME with P partitions (default 1), replication factor 1
 *   --bootstrap-file F   write the bootstrap string ("127.0.0.1:port,...") to F, atomically
 *                        (written to F.tmp.PID, then renamed), once every topic exists
 *   --control PATH       read fault-injection commands from the FIFO at PATH (created, mode 0600,
 *                        and removed at exit when it did not exist)
 *   --exit-on-eof        also stop when stdin reaches end of file
 *
 * On start it prints "BROKERS=<bootstrap>" on stdout. It runs until SIGTERM or SIGINT (or
 * stdin EOF with --exit-on-eof), then destroys the cluster and exits 0. Bad usage exits 2, a
 * failure to start exits 1. The brokers listen on 127.0.0.1 with ports the kernel picks
 * (librdkafka 2.0.2 has no fixed-port setting), so scripts read the bootstrap file.
 *
 * Control interface: a FIFO, so a shell can drive it with no extra tool:
 *     printf 'broker-down 1\n' > "$fifo"
 * One command per line; words separated by blanks. For every line it prints one reply on
 * stdout, numbered from 1 in the order the lines arrived, so a script can wait for its answer:
 *     CONTROL <n> OK <command as read>
 *     CONTROL <n> ERR <reason>
 * Commands:
 *     ping                                  does nothing; checks the interface
 *     broker-down ID | broker-up ID          take a broker's listener down / up again
 *     broker-rtt ID MS                       add MS milliseconds to every answer of a broker
 *     push-errors APIKEY ERR COUNT           the next COUNT requests of APIKEY fail with ERR
 *     clear-errors APIKEY                    forget the errors pushed for APIKEY
 *     create-topic NAME PARTITIONS           create a topic (replication factor 1)
 *     partition-leader TOPIC PARTITION ID    move a partition's leader to broker ID
 *     coordinator GROUP ID                   make broker ID the coordinator of a group
 * APIKEY is a number or a request name (Produce, Fetch, ListOffsets, Metadata, OffsetCommit,
 * OffsetFetch, FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, ...).
 * ERR is a number or a librdkafka error name with or without its prefix
 * (REBALANCE_IN_PROGRESS, RD_KAFKA_RESP_ERR_NOT_COORDINATOR, 27, ...).
 *
 * The FIFO is opened read-write, so writers that come and go never make it report end of file:
 * the process sleeps in poll() until a signal, a command, or stdin has something. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/common/tool_util.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_TOPICS 64
#define CONTROL_LINE_MAX 1024

struct topic_spec {
    char *name;
    int partitions;
};

struct options {
    int brokers;
    struct topic_spec topics[MAX_TOPICS];
    int topic_count;
    const char *bootstrap_file;
    const char *control_path;
    int exit_on_eof;
};

struct control {
    int fd;
    int created;              /* we made the FIFO, so we remove it */
    unsigned long seq;        /* lines answered so far */
    char buf[CONTROL_LINE_MAX];
    size_t len;
    int discarding;           /* inside an over-long line: drop bytes up to its newline */
};

static const struct {
    const char *name;
    int16_t key;
} api_keys[] = {
    { "Produce", 0 },          { "Fetch", 1 },           { "ListOffsets", 2 },
    { "Metadata", 3 },         { "OffsetCommit", 8 },    { "OffsetFetch", 9 },
    { "FindCoordinator", 10 }, { "JoinGroup", 11 },      { "Heartbeat", 12 },
    { "LeaveGroup", 13 },      { "SyncGroup", 14 },      { "DescribeGroups", 15 },
    { "ListGroups", 16 },      { "ApiVersions", 18 },    { "CreateTopics", 19 },
    { "InitProducerId", 22 },  { "AddPartitionsToTxn", 24 }, { "AddOffsetsToTxn", 25 },
    { "EndTxn", 26 },          { "TxnOffsetCommit", 28 },
};

static void usage(FILE *out)
{
    fprintf(out, "usage: mock-kafka [--brokers N] [--topic NAME[:PARTITIONS]]... "
                 "[--bootstrap-file PATH] [--control FIFO] [--exit-on-eof]\n");
}

static int parse_topic(const char *arg, struct topic_spec *ts, char *err, size_t errlen)
{
    /* Kafka topic names cannot hold ':', so the last one separates the partition count. */
    const char *colon = strrchr(arg, ':');
    long parts = 1;
    char *name;

    if (colon != NULL && tool_parse_long(colon + 1, 1, 100000, &parts) != 0) {
        snprintf(err, errlen, "--topic %s: partitions must be 1..100000", arg);
        return -1;
    }
    name = colon ? strndup(arg, (size_t)(colon - arg)) : strdup(arg);
    if (name == NULL || name[0] == '\0') {
        snprintf(err, errlen, "--topic %s: empty topic name", arg);
        free(name);
        return -1;
    }
    ts->name = name;
    ts->partitions = (int)parts;
    return 0;
}

static int parse_args(int argc, char **argv, struct options *opt, char *err, size_t errlen)
{
    long v;

    opt->brokers = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--exit-on-eof") == 0) {
            opt->exit_on_eof = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (val == NULL) {
            snprintf(err, errlen, "%s: missing value or unknown option", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--brokers") == 0) {
            if (tool_parse_long(val, 1, 64, &v) != 0) {
                snprintf(err, errlen, "--brokers %s: must be 1..64", val);
                return -1;
            }
            opt->brokers = (int)v;
        } else if (strcmp(a, "--topic") == 0) {
            if (opt->topic_count == MAX_TOPICS) {
                snprintf(err, errlen, "at most %d --topic options", MAX_TOPICS);
                return -1;
            }
            if (parse_topic(val, &opt->topics[opt->topic_count], err, errlen) != 0)
                return -1;
            opt->topic_count++;
        } else if (strcmp(a, "--bootstrap-file") == 0) {
            opt->bootstrap_file = val;
        } else if (strcmp(a, "--control") == 0) {
            opt->control_path = val;
        } else {
            snprintf(err, errlen, "%s: unknown option", a);
            return -1;
        }
    }
    return 0;
}

static int control_open(struct control *ctl, const char *path, char *err, size_t errlen)
{
    struct stat st;

    ctl->fd = -1;
    if (mkfifo(path, 0600) == 0) {
        ctl->created = 1;
    } else if (errno != EEXIST) {
        snprintf(err, errlen, "mkfifo %s: %s", path, strerror(errno));
        return -1;
    }
    if (stat(path, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        snprintf(err, errlen, "%s: exists and is not a FIFO", path);
        goto fail;
    }
    /* O_RDWR (Linux): we count as a writer ourselves, so the FIFO never signals EOF/POLLHUP
     * when a script's `printf > fifo` closes; poll() then stays asleep instead of spinning. */
    ctl->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (ctl->fd < 0) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (ctl->created)
        unlink(path);
    ctl->created = 0;
    return -1;
}

static int parse_api_key(const char *s, int16_t *out)
{
    long v;

    if (tool_parse_long(s, 0, INT16_MAX, &v) == 0) {
        *out = (int16_t)v;
        return 0;
    }
    for (size_t i = 0; i < sizeof api_keys / sizeof api_keys[0]; i++) {
        if (strcasecmp(s, api_keys[i].name) == 0) {
            *out = api_keys[i].key;
            return 0;
        }
    }
    return -1;
}

static int parse_err_code(const char *s, rd_kafka_resp_err_t *out)
{
    static const char prefix[] = "RD_KAFKA_RESP_ERR_";
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    long v;

    if (tool_parse_long(s, -200, 1000, &v) == 0) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    if (strncasecmp(s, prefix, sizeof prefix - 1) == 0)
        s += sizeof prefix - 1;
    rd_kafka_get_err_descs(&descs, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        if (descs[i].name != NULL && strcasecmp(s, descs[i].name) == 0) {
            *out = descs[i].code;
            return 0;
        }
    }
    return -1;
}

/* Runs one command; 0 when done, -1 with the reason in err. */
static int control_exec(rd_kafka_mock_cluster_t *mc, char **w, int n, char *err, size_t errlen)
{
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    long id, v, cnt;
    int16_t api;

#define NEED(k) do { if (n != (k)) { snprintf(err, errlen, "%s takes %d argument(s)", w[0], (k) - 1); return -1; } } while (0)
#define NUM(s, lo, hi, out) do { if (tool_parse_long((s), (lo), (hi), (out)) != 0) { \
            snprintf(err, errlen, "%s: bad number '%s'", w[0], (s)); return -1; } } while (0)

    if (strcmp(w[0], "ping") == 0) {
        NEED(1);
    } else if (strcmp(w[0], "broker-down") == 0 || strcmp(w[0], "broker-up") == 0) {
        NEED(2);
        NUM(w[1], 0, INT32_MAX, &id);
        rerr = w[0][7] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)id)
                              : rd_kafka_mock_broker_set_up(mc, (int32_t)id);
    } else if (strcmp(w[0], "broker-rtt") == 0) {
        NEED(3);
        NUM(w[1], 0, INT32_MAX, &id);
        NUM(w[2], 0, 3600000, &v);
        rerr = rd_kafka_mock_broker_set_rtt(mc, (int32_t)id, (int)v);
    } else if (strcmp(w[0], "push-errors") == 0) {
        rd_kafka_resp_err_t code, *codes;

        NEED(4);
        if (parse_api_key(w[1], &api) != 0) {
            snprintf(err, errlen, "push-errors: unknown API key '%s'", w[1]);
            return -1;
        }
        if (parse_err_code(w[2], &code) != 0) {
            snprintf(err, errlen, "push-errors: unknown error code '%s'", w[2]);
            return -1;
        }
        NUM(w[3], 1, 100000, &cnt);
        codes = malloc((size_t)cnt * sizeof *codes);
        if (codes == NULL) {
            snprintf(err, errlen, "push-errors: out of memory");
            return -1;
        }
        for (long i = 0; i < cnt; i++)
            codes[i] = code;
        rd_kafka_mock_push_request_errors_array(mc, api, (size_t)cnt, codes);
        free(codes);
    } else if (strcmp(w[0], "clear-errors") == 0) {
        NEED(2);
        if (parse_api_key(w[1], &api) != 0) {
            snprintf(err, errlen, "clear-errors: unknown API key '%s'", w[1]);
            return -1;
        }
        rd_kafka_mock_clear_request_errors(mc, api);
    } else if (strcmp(w[0], "create-topic") == 0) {
        NEED(3);
        NUM(w[2], 1, 100000, &v);
        rerr = rd_kafka_mock_topic_create(mc, w[1], (int)v, 1);
    } else if (strcmp(w[0], "partition-leader") == 0) {
        NEED(4);
        NUM(w[2], 0, INT32_MAX, &v);
        NUM(w[3], 0, INT32_MAX, &id);
        rerr = rd_kafka_mock_partition_set_leader(mc, w[1], (int32_t)v, (int32_t)id);
    } else if (strcmp(w[0], "coordinator") == 0) {
        NEED(3);
        NUM(w[2], 0, INT32_MAX, &id);
        rerr = rd_kafka_mock_coordinator_set(mc, "group", w[1], (int32_t)id);
    } else {
        snprintf(err, errlen, "unknown command '%s'", w[0]);
        return -1;
    }
#undef NEED
#undef NUM
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "%s: %s", w[0], rd_kafka_err2str(rerr));
        return -1;
    }
    return 0;
}

static void control_reply(struct control *ctl, int ok, const char *text)
{
    ctl->seq++;
    printf("CONTROL %lu %s %s\n", ctl->seq, ok ? "OK" : "ERR", text);
    fflush(stdout);
}

static void control_line(struct control *ctl, rd_kafka_mock_cluster_t *mc, char *line)
{
    char copy[CONTROL_LINE_MAX], err[256];
    char *w[8], *save = NULL, *tok;
    int n = 0;

    line[strcspn(line, "\r")] = '\0';
    snprintf(copy, sizeof copy, "%s", line);
    for (tok = strtok_r(line, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        if (n == (int)(sizeof w / sizeof w[0])) {
            control_reply(ctl, 0, "too many words");
            return;
        }
        w[n++] = tok;
    }
    if (n == 0 || w[0][0] == '#')
        return;   /* blank lines and comments get no reply, so they never shift the numbering */
    if (control_exec(mc, w, n, err, sizeof err) != 0)
        control_reply(ctl, 0, err);
    else
        control_reply(ctl, 1, copy);
}

/* Reads what the FIFO holds and runs every complete line. */
static void control_read(struct control *ctl, rd_kafka_mock_cluster_t *mc)
{
    char chunk[4096];
    ssize_t got;

    while ((got = read(ctl->fd, chunk, sizeof chunk)) > 0) {
        for (ssize_t i = 0; i < got; i++) {
            char c = chunk[i];

            if (c == '\n') {
                if (ctl->discarding)
                    control_reply(ctl, 0, "line too long");
                else {
                    ctl->buf[ctl->len] = '\0';
                    control_line(ctl, mc, ctl->buf);
                }
                ctl->len = 0;
                ctl->discarding = 0;
            } else if (!ctl->discarding) {
                if (ctl->len + 1 >= sizeof ctl->buf)
                    ctl->discarding = 1;
                else
                    ctl->buf[ctl->len++] = c;
            }
        }
    }
}

int main(int argc, char **argv)
{
    struct options opt = { 0 };
    struct control ctl = { .fd = -1 };
    rd_kafka_mock_cluster_t *mc = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf = NULL;
    char err[512];
    const char *bootstraps;
    sigset_t mask;
    int sfd = -1, rc = 1, stop = 0;

    if (parse_args(argc, argv, &opt, err, sizeof err) != 0) {
        fprintf(stderr, "mock-kafka: %s\n", err);
        usage(stderr);
        rc = 2;
        goto out;
    }

    /* Block the stop signals before librdkafka starts its threads, so they inherit the mask
     * and the signals can only be taken through the signalfd below. SIGPIPE is ignored in
     * case a control writer or a client vanishes. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        perror("mock-kafka: sigprocmask");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("mock-kafka: signalfd");
        goto out;
    }

    /* The handle only hosts the mock cluster; it never produces. */
    conf = rd_kafka_conf_new();
    /* log_level 4 (warning) hides the notice that this handle has no bootstrap.servers:
     * true, and meaningless here. */
    if (rd_kafka_conf_set(conf, "client.id", "mock-kafka", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "4", err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "mock-kafka: %s\n", err);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL) {
        fprintf(stderr, "mock-kafka: rd_kafka_new: %s\n", err);
        goto out;
    }
    conf = NULL;   /* rd_kafka_new took it */

    mc = rd_kafka_mock_cluster_new(rk, opt.brokers);
    if (mc == NULL) {
        fprintf(stderr, "mock-kafka: cannot create a mock cluster of %d broker(s)\n", opt.brokers);
        goto out;
    }
    for (int i = 0; i < opt.topic_count; i++) {
        rd_kafka_resp_err_t rerr =
            rd_kafka_mock_topic_create(mc, opt.topics[i].name, opt.topics[i].partitions, 1);
        if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "mock-kafka: topic %s: %s\n", opt.topics[i].name, rd_kafka_err2str(rerr));
            goto out;
        }
    }
    if (opt.control_path != NULL && control_open(&ctl, opt.control_path, err, sizeof err) != 0) {
        fprintf(stderr, "mock-kafka: %s\n", err);
        goto out;
    }

    /* Announce only once topics and the control FIFO exist: the file means "ready". */
    bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    printf("BROKERS=%s\n", bootstraps);
    fflush(stdout);
    if (opt.bootstrap_file != NULL &&
        tool_write_file_atomic(opt.bootstrap_file, bootstraps, err, sizeof err) != 0) {
        fprintf(stderr, "mock-kafka: %s\n", err);
        goto out;
    }

    while (!stop) {
        struct pollfd pfd[3];
        int nfds = 0, ctl_i = -1, in_i = -1;

        pfd[nfds++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        if (ctl.fd >= 0) {
            ctl_i = nfds;
            pfd[nfds++] = (struct pollfd){ .fd = ctl.fd, .events = POLLIN };
        }
        if (opt.exit_on_eof) {
            in_i = nfds;
            pfd[nfds++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
        }
        if (poll(pfd, (nfds_t)nfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("mock-kafka: poll");
            goto out;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;

            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                fprintf(stderr, "mock-kafka: signal %u, stopping\n", si.ssi_signo);
            stop = 1;
        }
        if (ctl_i >= 0 && (pfd[ctl_i].revents & (POLLIN | POLLHUP | POLLERR)))
            control_read(&ctl, mc);
        if (in_i >= 0 && pfd[in_i].revents) {
            char drain[512];
            ssize_t got = read(STDIN_FILENO, drain, sizeof drain);

            /* Anything but data (EOF, an error, a closed or invalid fd) means stop: otherwise
             * poll would report the same condition again at once and the loop would spin. */
            if (got <= 0 && !(got < 0 && (errno == EINTR || errno == EAGAIN))) {
                fprintf(stderr, "mock-kafka: stdin closed, stopping\n");
                stop = 1;
            }
        }
    }
    rc = 0;

out:
    if (mc != NULL)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    if (ctl.fd >= 0)
        close(ctl.fd);
    if (ctl.created)
        unlink(opt.control_path);
    if (sfd >= 0)
        close(sfd);
    for (int i = 0; i < opt.topic_count; i++)
        free(opt.topics[i].name);
    return rc;
}
