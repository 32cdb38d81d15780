/* The interface between the router and a sink. A sink type is one sinks/<type>.c that exports
 * one const struct sink_ops. The router owns everything common to all sinks (filter, batching,
 * ordering, retries, dead letters, offsets); a sink only maps records and writes batches.
 *
 * Life of a batch: the router calls ops->write(sk, b) once per attempt. The sink does its I/O
 * on the event loop (never blocking) and ends the attempt with exactly one
 * sink_batch_done(b, result, error). Before SINK_OK it may mark single records as bad with
 * sink_batch_reject(): those go to the dead-letter topic, the others count as applied.
 * While a batch of a (sink, topic, partition) is in flight, the router sends no other batch of
 * that partition to that sink: records of one partition reach the target in offset order. */
#ifndef SLUICE_SINK_H
#define SLUICE_SINK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <jansson.h>

#include "lib/cfg.h"
#include "lib/json.h"
#include "lib/log.h"

struct sink;
struct sink_state;      /* router-private */
struct sink_batch_hooks; /* router-private */
struct sink_check;       /* where a check reports (below) */

/* One record as a sink sees it. Everything is borrowed from the router for the life of the
 * batch, except prepared, which belongs to the sink (freed by ops->release). */
struct sink_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *key;            /* NULL when the record has no key */
    size_t key_len;
    const char *value;          /* NULL for a tombstone */
    size_t value_len;
    int64_t timestamp_ms;       /* -1 when the record has none */
    json_t *doc;                /* SINK_F_JSON: the parsed value; NULL for a tombstone */
    void *prepared;             /* what ops->prepare made of the record */
    size_t prepared_len;        /* its size, counted against batch.max_bytes */

    /* router-private */
    char *reject_reason;
    void *origin;
};

struct sink_batch {
    struct sink *sink;
    const char *topic;
    int32_t partition;
    struct sink_record *records;  /* in offset order */
    size_t count;
    size_t bytes;
    /* Transactional sinks: the position the target must hold for this batch to apply
     * (compare-and-set; -1 when none was stored yet) and the one to store with it. */
    int64_t prev_next;
    int64_t next;
    unsigned attempt;             /* 1 on the first try */
    /* Set by the sink (and kept across attempts) when an attempt failed without a word from
     * the target about these records: the connection was lost (the batch may have been
     * applied) or never made. Such a batch is never dead-lettered for running out of
     * attempts; the sink is parked and the batch retried until the target settles it. */
    int unreachable;
    const struct sink_batch_hooks *hooks;   /* router-private */
};

enum sink_result {
    SINK_OK,      /* applied; records marked with sink_batch_reject go to the dead letters */
    SINK_RETRY,   /* transient failure: the whole batch is tried again after a backoff */
    SINK_FAIL,    /* permanent failure of every record: the batch goes to the dead letters */
    SINK_FENCED,  /* the stored position is not prev_next: another writer owns the partition */
};

/* Where sink_batch_done and sink_batch_note go: the router sets them on each batch it hands
 * over, so that sinks call sinks/sink.c and never into the router (Fluent Bit's
 * flb_output_return). */
struct sink_batch_hooks {
    void (*done)(struct sink_batch *b, enum sink_result result, const char *error);
    void (*note)(struct sink_batch *b, const char *fmt, va_list ap);
    void (*refused)(struct sink_batch *b, size_t records, const char *reason);
};

/* A request to read stored positions (transactional sinks), answered with sink_positions_done. */
struct sink_positions {
    const char *topic;
    const int32_t *partitions;
    size_t count;
    int64_t *next;                /* out, one per partition: -1 when none is stored */
    void *origin;                 /* router-private */
    /* router-private: where sink_positions_done goes */
    void (*done)(struct sink_positions *req, int ok, const char *error);
};

#define SINK_F_JSON          0x1u  /* the router parses values as JSON before prepare */
#define SINK_F_TRANSACTIONAL 0x2u  /* positions are stored in the target with the data */
/* A transactional sink that takes batches of 0 records, which only move its stored position
 * (over records at a partition's tail that were dead-lettered or filtered out, so that a
 * restart does not redo them). */
#define SINK_F_POSITION_BATCHES 0x4u
/* prepared is the text the sink sends (prepared_len bytes), shown as is by --dry-run. Without
 * it prepared is the sink's own structure, which the router never reads. */
#define SINK_F_PREPARED_TEXT 0x8u
/* A batch re-sent after a restart or rebalance covers the same offsets as the first time (its
 * id names them): the first batch of a newly assigned partition is not cut by linger before it
 * is full, and a batch cut by linger has its end recorded in the Kafka commit metadata before it
 * is sent. Costs a commit per linger-cut batch; a sink whose requests carry per-record ids only
 * does not need it. Set in struct sink's flags by the sink's check (it may depend on options). */
#define SINK_F_STABLE_BATCHES 0x10u

struct sink_ops {
    const char *type;                 /* the "type" in the sink's configuration */
    size_t size;                      /* sizeof the sink's struct, which begins with struct sink */
    const struct cfg_opt *opts;       /* the options of its section ("file": { ... }) */
    unsigned flags;
    const char *help;                 /* one line for the configuration reference */

    /* Checks across options once the table is applied: every problem it finds goes to
     * sink_check_problem with the section key it concerns, so that a person sees them all in one
     * `sluice check`. Returns 0 when it found none. Optional. */
    int (*check)(struct sink *sk, struct sink_check *c);
    /* Optional, after a successful check: 1 with a warning in @p msg (and the option in *key)
     * when valid options will likely not do what was meant (a webhook to a cluster-internal
     * name that the SSRF guard will refuse). `sluice check` prints it; `run` logs it. */
    int (*warn)(struct sink *sk, char *msg, size_t msglen, const char **key);
    /* Connects or opens; may start asynchronous work on sk->eb. */
    int (*start)(struct sink *sk, char *err, size_t errlen);
    /* Maps one record (filling prepared/prepared_len). -1: the record is bad (dead letter,
     * reason in err). Optional: without it a record's size is its key and value. */
    int (*prepare)(struct sink *sk, struct sink_record *rec, char *err, size_t errlen);
    void (*release)(struct sink *sk, struct sink_record *rec);
    /* Writes one batch; never blocks; ends with sink_batch_done(). */
    void (*write)(struct sink *sk, struct sink_batch *b);
    /* SINK_F_TRANSACTIONAL: reads stored positions; ends with sink_positions_done(). */
    void (*load_positions)(struct sink *sk, struct sink_positions *req);
    /* Stops I/O; calls no callback of the router afterwards. Optional. */
    void (*stop)(struct sink *sk);
    /* Frees what start made (the router frees the options). Optional. */
    void (*destroy)(struct sink *sk);
    /* 1 when the sink can deliver now (connected), else 0 with the reason; for /readyz.
     * Optional: without it a started sink counts as ready. */
    int (*ready)(struct sink *sk, char *why, size_t whylen);
    /* What would be sent for one prepared record, as text (malloc'd), for `sluice run --dry-run`.
     * Optional: without it the prepared bytes are shown under SINK_F_PREPARED_TEXT, else the
     * record's key and value as the sink would map them. */
    char *(*describe)(struct sink *sk, const struct sink_record *rec);
};

enum sink_on_failure { SINK_ON_FAILURE_DEAD_LETTER, SINK_ON_FAILURE_BLOCK };
/* Where a sink with no position of its own on a partition begins ("start"). */
enum sink_start { SINK_START_EARLIEST, SINK_START_COMMITTED, SINK_START_LATEST };

/* Common to every sink; the type's struct begins with it. Filled by the configuration loader. */
struct sink {
    const struct sink_ops *ops;
    unsigned flags;                 /* SINK_F_* of this instance, besides ops->flags (set by check) */
    char *name;
    char *type;
    struct cfg_strlist topics;
    struct {
        long long max_records;
        long long max_bytes;
        long long linger_ms;
    } batch;
    struct {
        long long max_attempts;
        long long initial_backoff_ms;
        long long max_backoff_ms;
    } retry;
    json_t *filter;
    int on_failure;                 /* enum sink_on_failure */
    int start;                      /* enum sink_start */
    long long max_buffered_records;
    long long max_buffered_bytes;
    long long park_after_ms;
    long long max_record_bytes;
    char *owner;                    /* who answers for the sink; NULL when unset */
    char *description;              /* what it is for; NULL when unset */
    char *conf_file;                /* where it was declared, for messages */
    char *conf_path;                /* its JSON path in that file ("sinks[1]", or "" for a sink file) */
    struct event_base *eb;          /* the loop, set before start */
    struct sink_state *state;       /* router-private */
    /* HTTP sinks (webhook, http): answers to delivery requests by status class, [k] for kxx
     * (1..5), [0] for attempts that got no answer (connection or timeout). For the metrics. */
    uint64_t http_responses[6];
};

/* The API for sinks (sinks/sink.c); the verdicts go on to the hooks the router set. */
void sink_batch_reject(struct sink_batch *b, size_t index, const char *reason);
void sink_batch_done(struct sink_batch *b, enum sink_result result, const char *error);
/* What this attempt sent and got, in a line (a statement summary, "POST /x -> 503: body..."),
 * shown by GET /sinks/NAME/debug. Optional; call before sink_batch_done. */
void sink_batch_note(struct sink_batch *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sink_positions_done(struct sink_positions *req, int ok, const char *error);
/* @p records of this attempt were never sent because a guard of sluice's own refused them (the
 * SSRF guard refused the destination's address): counted apart and shown as the sink's last
 * error, so a sink whose every record is refused does not look healthy. The records' verdict
 * (reject or fail) is given as usual. */
void sink_batch_refused(struct sink_batch *b, size_t records, const char *reason);

/* Where a sink type's check reports: the router fills in report (conf.c). */
struct sink_check {
    void (*report)(struct sink_check *c, const char *key, const char *msg);
    int problems;
};
/* One problem of the sink's section at option @p key (NULL: the section); returns -1 so that
 * a check can `return sink_check_problem(...)` where nothing more can be judged. */
int sink_check_problem(struct sink_check *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void sink_log(const struct sink *sk, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * @brief Read a record's value with json_read (@p root may be NULL). The one wording of every
 * sink for a value that is not JSON, as the router's: "value is not JSON: <reason> at byte N".
 * @return 0, or -1 with that in @p err.
 */
int sink_value_json(const char *text, size_t len, struct json_slice *root, char *err, size_t errlen);

/* The registry of sink types (sinks/sink.c). */
const struct sink_ops *sink_ops_find(const char *type);
extern const struct sink_ops *const sink_types[];   /* NULL-terminated */

#endif/** @brief The subject of a sink's log lines: "sink:<type>:<name>". */
void sink_subject(const struct sink *sk, char *out, size_t outlen);


