/* http-attack: hostile HTTP clients for tests/integration/test_admin_limits.sh. Each client sends
 * what its mode says as fast as the socket takes it (or one byte per --interval-ms), reads
 * whatever comes back, and ends when the server closes the connection. It reports how each
 * client ended: the status of the answer it got (0: none), and when.
 *
 *   http-attack --port P --mode MODE [--clients N] [--interval-ms MS] [--limit-ms MS]
 *               [--ready-file PATH]
 *
 * Modes:
 *   header        a header line that never ends ("X-Big: aaaa..."), in 64 KiB writes
 *   headers       100,000 header lines "X-H: v"
 *   request-line  a request line of 1 MiB ("GET /aaaa... HTTP/1.1")
 *   slow          a valid request, one byte per --interval-ms (default 1000), never finished
 *                 in time; with --clients N (default 1) at once
 *
 * Prints one line: clients=N closed=N open=N reset=N status_XXX=N... max_ms=MS sent=BYTES
 * ("closed": the server closed the connection; "open": still open at --limit-ms, default 60000;
 * "reset": closed with an RST; sent: bytes the clients wrote in all). Exit 0 when it ran.
 * --ready-file: written once every client's connection is established (the kernel queues them in
 * order, so a connection opened after that is accepted after all of them). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "tools/common/tool_util.h"

#define MAX_CLIENTS 10000
#define STATUSES 600

struct payload {
    const char *prefix, *pattern, *suffix;
    long long pattern_bytes;          /* -1: the pattern repeats forever */
};

struct client {
    int fd;
    long long sent;
    int connected;
    int writing;                      /* still has bytes to send */
    int status;                       /* first answer's status, 0: none */
    int ended;                        /* 1 closed, 2 reset */
    long long end_ms;
    char line[16];                    /* the first bytes of the answer */
    size_t linelen;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bytes [off, off + cap) of the payload into buf; returns how many (0: all sent). */
static size_t payload_fill(const struct payload *p, long long off, char *buf, size_t cap)
{
    size_t n = 0, plen = strlen(p->prefix), patlen = strlen(p->pattern), slen = strlen(p->suffix);

    while (n < cap) {
        long long o = off + (long long)n;
        if (o < (long long)plen)
            buf[n++] = p->prefix[o];
        else if (p->pattern_bytes < 0 || o - (long long)plen < p->pattern_bytes)
            buf[n++] = p->pattern[(o - (long long)plen) % (long long)patlen];
        else if (o - (long long)plen - p->pattern_bytes < (long long)slen)
            buf[n++] = p->suffix[o - (long long)plen - p->pattern_bytes];
        else
            break;
    }
    return n;
}

static int client_connect(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void client_end(struct client *c, int how, long long start)
{
    c->ended = how;
    c->end_ms = now_ms() - start;
    close(c->fd);
    c->fd = -1;
}

static void client_read(struct client *c, long long start)
{
    char buf[65536];
    ssize_t n;

    while ((n = recv(c->fd, buf, sizeof buf, 0)) > 0) {
        size_t take = (size_t)n < sizeof c->line - 1 - c->linelen ? (size_t)n : sizeof c->line - 1 - c->linelen;
        memcpy(c->line + c->linelen, buf, take);
        c->linelen += take;
        c->line[c->linelen] = '\0';
        if (!c->status && c->linelen >= 12 && strncmp(c->line, "HTTP/1.", 7) == 0)
            c->status = atoi(c->line + 9);
        if (c->status)
            c->writing = 0;           /* answered: stop sending, wait for the close */
    }
    if (n == 0)
        client_end(c, 1, start);
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        client_end(c, 2, start);
}

int main(int argc, char **argv)
{
    static const struct payload header = { "GET /healthz HTTP/1.1\r\nHost: attack\r\nX-Big: ", "a", "", -1 };
    static const struct payload headers = { "GET /healthz HTTP/1.1\r\nHost: attack\r\n", "X-H: v\r\n", "\r\n", 8LL * 100000 };
    static const struct payload request_line = { "GET /", "a", " HTTP/1.1\r\nHost: attack\r\n\r\n", 1LL << 20 };
    static const struct payload slow = { "GET /healthz HTTP/1.1\r\nHost: attack\r\nX-Slow: ", "s", "\r\n\r\n", 100000 };
    const struct payload *p = NULL;
    long port = 0, nclients = 1, interval = 1000, limit = 60000, nconnected = 0;
    const char *ready_file = NULL;
    long long start, next_tick, total_sent = 0, max_ms = 0;
    int counts[STATUSES] = { 0 }, closed = 0, open = 0, reset = 0, paced = 0;
    struct client *cl;
    struct pollfd *pfd;
    struct rlimit rl;
    char *buf = malloc(65536);

    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--port") == 0 && tool_parse_long(v, 1, 65535, &port) == 0)
            continue;
        if (strcmp(k, "--clients") == 0 && tool_parse_long(v, 1, MAX_CLIENTS, &nclients) == 0)
            continue;
        if (strcmp(k, "--interval-ms") == 0 && tool_parse_long(v, 1, 60000, &interval) == 0)
            continue;
        if (strcmp(k, "--limit-ms") == 0 && tool_parse_long(v, 1, 3600000, &limit) == 0)
            continue;
        if (strcmp(k, "--ready-file") == 0) {
            ready_file = v;
            continue;
        }
        if (strcmp(k, "--mode") == 0) {
            p = strcmp(v, "header") == 0 ? &header : strcmp(v, "headers") == 0 ? &headers
              : strcmp(v, "request-line") == 0 ? &request_line : strcmp(v, "slow") == 0 ? &slow : NULL;
            paced = strcmp(v, "slow") == 0;
            if (p)
                continue;
        }
        fprintf(stderr, "http-attack: bad argument %s %s\n", k, v);
        return 2;
    }
    if (!p || !port || !buf || (argc - 1) % 2) {
        fprintf(stderr, "usage: http-attack --port P --mode header|headers|request-line|slow "
                        "[--clients N] [--interval-ms MS] [--limit-ms MS]\n");
        return 2;
    }
    /* A thousand clients need more descriptors than the usual soft limit of 1024. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    cl = calloc((size_t)nclients, sizeof *cl);
    pfd = calloc((size_t)nclients, sizeof *pfd);
    if (!cl || !pfd)
        return 1;
    start = now_ms();
    for (long i = 0; i < nclients; i++) {
        if ((cl[i].fd = client_connect((int)port)) < 0) {
            fprintf(stderr, "http-attack: connect: %s\n", strerror(errno));
            return 1;
        }
        cl[i].writing = 1;
    }
    next_tick = start;
    for (;;) {
        long long now = now_ms();
        int live = 0, tick = paced && now >= next_tick, timeout;
        if (tick)
            next_tick += interval;
        for (long i = 0; i < nclients; i++) {
            struct client *c = &cl[i];
            pfd[i].fd = c->fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
            if (c->fd < 0)
                continue;
            live++;
            if (!c->connected) {
                pfd[i].events |= POLLOUT;
                continue;
            }
            if (c->writing && (!paced || tick)) {
                size_t n = payload_fill(p, c->sent, buf, paced ? 1 : 65536);
                ssize_t w = n ? send(c->fd, buf, n, MSG_NOSIGNAL) : 0;
                if (n == 0)
                    c->writing = 0;
                else if (w > 0) {
                    c->sent += w;
                    total_sent += w;
                } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN && errno != EINTR)
                    c->writing = 0;   /* the server closed: the read side tells how */
                if (!paced && c->writing)
                    pfd[i].events |= POLLOUT;
            }
        }
        if (live == 0 || now - start >= limit)
            break;
        timeout = paced ? (int)(next_tick - now > 0 ? next_tick - now : 0) : 100;
        if (poll(pfd, (nfds_t)nclients, timeout) < 0 && errno != EINTR)
            return 1;
        for (long i = 0; i < nclients; i++) {
            struct client *c = &cl[i];
            if (c->fd >= 0 && !c->connected && (pfd[i].revents & POLLOUT)) {
                int err = 0;
                socklen_t len = sizeof err;
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
                    fprintf(stderr, "http-attack: connect: %s\n", strerror(err ? err : errno));
                    return 1;
                }
                c->connected = 1;
                if (++nconnected == nclients && ready_file) {
                    char err2[256];
                    if (tool_write_file_atomic(ready_file, "connected", err2, sizeof err2) != 0) {
                        fprintf(stderr, "http-attack: %s\n", err2);
                        return 1;
                    }
                }
            }
            if (c->fd >= 0 && (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
                client_read(c, start);
        }
    }
    for (long i = 0; i < nclients; i++) {
        struct client *c = &cl[i];
        if (c->fd >= 0) {
            open++;
            close(c->fd);
            continue;
        }
        closed += c->ended == 1;
        reset += c->ended == 2;
        if (c->status > 0 && c->status < STATUSES)
            counts[c->status]++;
        else
            counts[0]++;
        if (c->end_ms > max_ms)
            max_ms = c->end_ms;
    }
    printf("clients=%ld closed=%d reset=%d open=%d", nclients, closed, reset, open);
    for (int s = 0; s < STATUSES; s++)
        if (counts[s])
            printf(" status_%d=%d", s, counts[s]);
    printf(" max_ms=%lld sent=%lld\n", max_ms, total_sent);
    free(cl);
    free(pfd);
    free(buf);
    return 0;
}
