/* What the admin API asks of the router (router/control.c): pause, resume and replay a sink,
 * and the views of sinks, partitions and the loop. */
#ifndef SLUICE_ROUTER_CONTROL_H
#define SLUICE_ROUTER_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "sinks/sink.h"

struct router;

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
    int degraded;                  /* it delivers, but sluice refused some of its records lately (SSRF) */
};

/* How long a refusal keeps a sink "degraded": long enough for a person to see it between two
 * looks at the status page, short enough to clear on its own once the cause is fixed. */
#define SINK_DEGRADED_MS (5 * 60 * 1000)

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

/* What the admin API shows of the Schema Registry client (registry.h). */
struct router_registry_view {
    const char *state;             /* "up", "down", "unauthorized" */
    char error[512];               /* the last error while not up; "" when up */
    uint64_t requests_ok, requests_not_found, requests_retried, requests_unauthorized, requests_failed;
    uint64_t evictions;
    size_t cached, cached_bytes;   /* schemas kept, and what they hold */
    size_t fetching;               /* ids being fetched */
    size_t waiting_records;        /* records waiting for a schema, over all partitions */
};

/* Violations of a topic's contract by one rule. */
struct contract_count {
    char rule[160];
    uint64_t violations;
};

/* What the admin API shows of a topic with a format or a contract (topics.<name>). */
struct router_topic_view {
    const char *name;
    const char *value_format, *key_format;
    uint64_t decoded, decode_failures;
    const char *last_decode_error; /* "" when none */
    size_t waiting_records;
    int has_contract;
    const char *contract_kind;     /* "json_schema" or "registry" */
    const char *contract_held;     /* why its records are held (a contract sluice cannot check); "" */
    uint64_t contract_valid;
    const struct contract_count *contract_rules;   /* violations by rule */
    size_t ncontract_rules;
    const char *last_violation;    /* "" when none */
};

const struct router_sink_stats *router_sink_stats(const struct router *r, size_t sink_index);

/** @brief The sink's index by name, or -1. */
int router_sink_find(const struct router *r, const char *name);
/** @brief Where sink @p sink_index keeps its live tap (tap.h): GET /sinks/NAME/tap attaches there. */
struct tap **router_sink_tap(struct router *r, size_t sink_index);
size_t router_sink_count(const struct router *r);
void router_sink_view(const struct router *r, size_t sink_index, struct router_sink_view *view);

/** @brief Up to @p max recent deliveries of a sink, newest first; returns how many. */
size_t router_sink_deliveries(const struct router *r, size_t sink_index, struct router_delivery *out, size_t max);

/** @brief Calls @p fn for every assigned partition. */
void router_partitions_foreach(struct router *r, void (*fn)(void *arg, const struct router_partition_view *pv), void *arg);

/** @brief 0 and the registry client's view, or -1 when no topic uses a registry. */
int router_registry_view(const struct router *r, struct router_registry_view *view);

/** @brief The topics that have a format (topics.<name>), by index below router_format_topic_count. */
size_t router_format_topic_count(const struct router *r);
void router_format_topic_view(const struct router *r, size_t index, struct router_topic_view *view);

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
 * or above the sink's position changes nothing for that partition. @p replay_id: a group-wide
 * replay's id (group.h), marked in the partitions it was applied to; -1 for one of this replica.
 * @return how many partitions were rewound, or -1 with the reason.
 */
int router_sink_replay(struct router *r, size_t sink_index, const char *topic, int32_t partition,
                       int64_t offset, int64_t replay_id, char *err, size_t errlen);

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
                            int64_t timestamp_ms, int64_t replay_id, router_replay_done_fn done, void *arg,
                            char *err, size_t errlen);

/** @brief Process metrics: loop stalls (turns late by more than 100 ms) and the worst lateness. */
void router_loop_stats(const struct router *r, uint64_t *stalls, double *worst_s);

/* What the group and the dead-letter producer did, for the metrics. Both restart at a reload
 * (a new consumer joins, a new producer starts). */
enum router_rebalance_kind {
    ROUTER_REBALANCE_ASSIGN, ROUTER_REBALANCE_REVOKE, ROUTER_REBALANCE_LOST, ROUTER_REBALANCE_ERROR,
    ROUTER_REBALANCE_KINDS
};
struct router_group_view {
    uint64_t rebalances[ROUTER_REBALANCE_KINDS];
    uint64_t dead_letters_stored;        /* acknowledged by Kafka */
    uint64_t dead_letter_produce_errors; /* failed attempts, each retried */
    size_t dead_letters_pending;         /* sent, not acknowledged yet */
};

/** @brief "assign", "revoke", "lost", "error" (metric label values). */
const char *router_rebalance_kind_name(enum router_rebalance_kind kind);

void router_group_view(const struct router *r, struct router_group_view *view);

/** @brief The consumer group and member id ("" before joining). */
const char *router_group(const struct router *r);

#endif
