/* bench-webhook's parts (tools/bench-webhook.c): what the yardsticks of yardsticks.c share with
 * the sluice rounds. */
#ifndef SLUICE_BENCH_WEBHOOK_H
#define SLUICE_BENCH_WEBHOOK_H

#include <sys/types.h>

/* The Standard Webhooks spec's example secret: the sink and the bare client both sign with it. */
#define BENCH_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

#define STALL_LIMIT_S 60   /* a round without progress for this long gives up */

struct options {
    long records;
    int partitions;
    const char *mode;
    int array_size;
    int max_in_flight;
    int repeat;            /* json_array: sluice and the bare client this many times, alternating */
    const char *old;       /* another sluice binary to run as a process in each round, or NULL */
    int brokers;           /* brokers of the mock cluster; the partitions' leaders spread over them */
};

struct child {
    pid_t pid;
    const char *name;
};

double now_s(void);
/* CPU seconds of this process, all its threads. */
double self_cpu_s(void);
/* CPU seconds of another process, from /proc. */
double proc_cpu_s(pid_t pid);
/* Record i of the workload: its key and JSON value (also what the bare client's bodies carry). */
int record_key(long i, char *out, size_t outlen);
int record_value(long i, char *out, size_t outlen);

/* Posts records / array_size bodies of array_size records to URL/bare, keeping in_flight
 * requests in flight; prints and returns its records/s (0 on failure), and its CPU a record
 * (client and receiver) in *cpu_us. */
double bench_bare(const char *url, const struct options *o, int in_flight, const struct child *rcv, double *cpu_us);
/* Kafka alone: a plain consumer with the router's fetch settings takes the topic's @p available
 * records and drops them; prints and returns the CPU a record (its own and the mock Kafka's), 0
 * on failure. */
double bench_consume(const char *brokers, const struct options *o, long available, int round,
                     const struct child *kafka);

#endif
