/* The router: one libevent loop that consumes Kafka, routes each record to the sinks of its
 * topic (filter, map, batch per partition), hands batches to the sinks, retries, dead-letters,
 * tracks offsets and commits the minimum every sink has finished. */
#ifndef SLUICE_ROUTER_H
#define SLUICE_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <event2/event.h>

#include "metrics.h"
#include "sinks/sink.h"

struct conf;
struct router;

/* Counters per sink; read by the shutdown summary (and the admin API later). */
struct router_sink_stats {
    uint64_t delivered;       /* records applied in the target */
    uint64_t dead_lettered;   /* records sent to the dead-letter topic */
    uint64_t filtered;        /* records the sink's filter left out */
    uint64_t skipped;         /* records below the sink's next (it already had them) */
    uint64_t retries;         /* batch attempts that failed and were retried */
    uint64_t batches;         /* batches applied */
    uint64_t bytes;           /* bytes of records applied */
    uint64_t records_failed;  /* records in batch attempts that failed (retried or not) */
    uint64_t records_retried; /* records in batch attempts that failed and are tried again */
    uint64_t fenced;          /* batches refused by the position compare-and-set */
    uint64_t parks;           /* times the router parked the sink */
    uint64_t records_lost;    /* offsets deleted by retention before the sink got them */
    uint64_t oversized;       /* records over max_record_bytes (dead-lettered) */
    uint64_t positions_beyond_end; /* partitions where its position lay past the log end */
    uint64_t in_flight;       /* gauge: batches handed to the sink, verdict not processed */
    struct histogram latency;       /* seconds from the record's Kafka timestamp to the ack */
    struct histogram batch_records; /* records per applied batch */
};

/* What the admin API shows of a sink. */
struct router_sink_view {
    const struct sink *sk;
    const struct router_sink_stats *stats;
    int paused;                    /* by an operator */
    int parked;                    /* by the router (buffer full too long, or on_failure block) */
    const char *park_reason;       /* "" when not parked */
    const char *last_loss;         /* the last range lost to retention; "" when none */
    int64_t parked_ms;             /* how long it has been parked */
    size_t buffered;               /* records queued or in flight */
    size_t buffered_bytes;
    size_t resyncing;              /* partitions reloading their stored position (fenced) */
    const char *last_error;        /* "" when none */
    int64_t last_error_ms;         /* unix ms, 0 when none */
};

/* One delivery attempt, kept in a ring per sink for GET /sinks/NAME/debug. */
struct router_delivery {
    int64_t at_ms;                 /* unix ms when the verdict came */
    int64_t duration_ms;
    char topic[128];
    int32_t partition;
    int64_t first_offset, last_offset;
    size_t count, bytes;
    unsigned attempt;
    enum sink_result result;
    char error[256];
    char detail[512];              /* what the sink said of it (sink_batch_note) */
};

/* What the admin API shows of a partition; next[k] is OFFSET_UNKNOWN (-1) for sinks not reading it. */
struct router_partition_view {
    const char *topic;
    int32_t partition;
    const char *state;             /* "loading", "active", "revoking" */
    int paused;                    /* by backpressure */
    int64_t committed;             /* last committed by sluice, -1 if none */
    int64_t consumed;              /* one past the highest offset consumed */
    int64_t high_watermark;        /* -1 when not known yet */
    const int64_t *next;           /* per sink index */
    const uint8_t *reads;          /* per sink index: 1 when the sink reads this topic */
};

/**
 * @brief Build a router for @p conf (borrowed; must outlive the router) on @p eb.
 * @p bootstrap_override, when set, replaces kafka bootstrap.servers (sluice dev).
 */
struct router *router_new(struct event_base *eb, struct conf *conf, const char *bootstrap_override,
                          char *err, size_t errlen);

/** @brief Dry run (before router_start): no sink is started (nothing is opened, created or
 * connected) and none reads stored positions; batches are printed to @p out as JSON lines instead
 * of written, dead letters are printed instead of produced, nothing is committed, and the
 * consumer uses its own group ("<group.id>.dry-run") so it takes no partition from the real one. */
void router_set_dry_run(struct router *r, FILE *out);

/** @brief Start the sinks and the consumer. 0, or -1 with the reason. */
int router_start(struct router *r, char *err, size_t errlen);

/** @brief Begin a drain: stop consuming, flush batches, wait for acks up to the shutdown
 * timeout, commit, close the consumer; then the loop exits. Safe to call twice. */
void router_shutdown(struct router *r);

/** @brief Call @p fn once the drain begun by router_shutdown is over, instead of leaving the
 * loop. @p fn must not free the router from inside the call (defer it to the next loop turn). */
void router_on_stopped(struct router *r, void (*fn)(void *arg), void *arg);

/** @brief 0 after a clean stop, 1 after a runtime failure. */
int router_exit_code(const struct router *r);

const struct router_sink_stats *router_sink_stats(const struct router *r, size_t sink_index);

/** @brief The sink's index by name, or -1. */
int router_sink_find(const struct router *r, const char *name);
size_t router_sink_count(const struct router *r);
void router_sink_view(const struct router *r, size_t sink_index, struct router_sink_view *view);

/** @brief Up to @p max recent deliveries of a sink, newest first; returns how many. */
size_t router_sink_deliveries(const struct router *r, size_t sink_index, struct router_delivery *out, size_t max);

/** @brief Calls @p fn for every assigned partition. */
void router_partitions_foreach(struct router *r, void (*fn)(void *arg, const struct router_partition_view *pv), void *arg);

/** @brief 1 when the consumer has joined its group and every sink can deliver (or is paused). */
int router_ready(const struct router *r, char *why, size_t whylen);

/** @brief Pause a sink: it drops what it has queued, keeps its positions and takes no record
 * until resumed; the other sinks go on. */
int router_sink_pause(struct router *r, size_t sink_index);

/** @brief Resume a paused sink: the consumer rewinds its partitions to the sink's positions and
 * the other sinks skip what they already have. */
int router_sink_resume(struct router *r, size_t sink_index);

/**
 * @brief Re-deliver to one sink from @p offset (per partition, or every partition of @p topic
 * when @p partition is -1, or of every topic when @p topic is NULL). Only rewinds: an offset at
 * or above the sink's position changes nothing for that partition.
 * @return how many partitions were rewound, or -1 with the reason.
 */
int router_sink_replay(struct router *r, size_t sink_index, const char *topic, int32_t partition,
                       int64_t offset, char *err, size_t errlen);

/* One rewind planned from a time lookup. */
struct replay_target {
    const char *topic;             /* borrowed from the lookup's result list */
    int32_t partition;
    int64_t offset;
};

/**
 * @brief From the answer of an offsets-for-times lookup (@p found, with @p err for the whole
 * call), the rewinds to make: partitions that have a record at or after the time are rewound to
 * it; a partition without one (offset -1: every record is older) or with an error is left alone
 * and counted in @p unmatched. @p out has room for found->cnt targets. Returns how many.
 */
size_t replay_plan_from_times(const void *found, int err, struct replay_target *out, size_t *unmatched);

typedef void (*router_replay_done_fn)(void *arg, int rewound, size_t unmatched, const char *error);

/**
 * @brief Like router_sink_replay, from the first record at or after @p timestamp_ms: Kafka is
 * asked for the offsets (on the worker thread, the lookup blocks), then @p done runs on the loop.
 * @return 0 when the lookup started, -1 with the reason.
 */
int router_sink_replay_time(struct router *r, size_t sink_index, const char *topic, int32_t partition,
                            int64_t timestamp_ms, router_replay_done_fn done, void *arg, char *err, size_t errlen);

/* What sinks keep across a reload (see router_carry_take). */
struct router_carry;

/**
 * @brief After the drain of a reload (before router_free): what the next router needs to keep
 * each sink that stays, by name: positions of the non-transactional sinks (a transactional sink
 * reads its own from the target), operator pause, park, counters, last error, recent deliveries.
 * Refers to the sinks of this router's configuration, which must outlive its use. NULL for a dry
 * run or when out of memory (the sinks then start afresh, at the committed offsets).
 */
struct router_carry *router_carry_take(struct router *r);

/** @brief Before router_start: @p carry (borrowed, read by router_start only) is applied to the
 * sinks of the same name and type; pause and positions always, the rest when their options are
 * unchanged. */
void router_set_carry(struct router *r, const struct router_carry *carry);
void router_carry_free(struct router_carry *carry);

/** @brief Process metrics: loop stalls (turns late by more than 100 ms) and the worst lateness. */
void router_loop_stats(const struct router *r, uint64_t *stalls, double *worst_s);

/** @brief The consumer group and member id ("" before joining). */
const char *router_group(const struct router *r);
void router_free(struct router *r);

#endif
