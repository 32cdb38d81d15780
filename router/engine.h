/* The router's private data model, shared by the files of router/ and by nothing else: the
 * router, its topics and partitions (rpart), each sink's share of a partition (spart), records
 * and batches. Each router/<module>.c declares what it offers the others in router/<module>.h
 * (librdkafka's rdkafka_int.h and rdkafka_partition.h are the model). */
#ifndef SLUICE_ROUTER_ENGINE_H
#define SLUICE_ROUTER_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "router.h"
#include "sinks/sink.h"

#define DELIVERY_RING 32           /* recent deliveries kept per sink for the debug view */
#define NO_REWIND INT64_MIN
#define REWIND_TO_NEXT (INT64_MIN + 1)   /* rewind to the sink's own next, as known then */
/* Stable batches (SINK_F_STABLE_BATCHES): the ends of batches cut by linger go into the commit
 * metadata of their partition as "sluice1 <sink>=<first>-<last>;...", within Kafka's default
 * offset.metadata.max.bytes. */
#define CUT_METADATA_TAG "sluice1 "
#define CUT_METADATA_MAX 4096

struct conf_topic;
struct group;
struct jsonschema;
struct registry;

/* A consumed record, shared by the sinks that take it; freed by the last one. */
struct router_record {
    rd_kafka_message_t *rkm;
    unsigned refs;
    int doc_state;              /* 0: not parsed yet, 1: parsed, -1: not JSON */
    json_t *doc;
    char *doc_error;
    /* What sinks see: the Kafka key and value, or their JSON when the topic's format decodes
     * them (decode.c); the Kafka bytes stay in rkm for dead letters. */
    const char *key, *value;
    size_t key_len, value_len;
    char *decoded_key, *decoded_value;  /* owned, when decoded */
    int has_schema_id;          /* the value is framed: schema_id is its registry id */
    uint32_t schema_id;
    /* A record of the redrive topic: only the sink it names applies it (-1: no sink of this
     * configuration), decoded and checked as a record of its original topic (NULL: plain JSON). */
    int redriven;
    long redrive_sink;
    const struct conf_topic *redrive_format;
    struct router_record *wait_next;    /* in its partition's queue of records waiting for a schema */
    size_t bytes;               /* what it holds, the parsed document aside (record_bytes) */
    size_t doc_bytes;           /* what jansson allocated for doc */
};

struct rpart;

/* One sink's share of one partition: its queue, its batch in flight, its stored position. */
struct spart {
    struct rpart *rp;
    size_t sink_index;
    struct sink *sk;
    struct sink_record *queue;  /* ring of records waiting for a batch, in offset order */
    size_t qhead, qcount, qcap, qbytes;
    struct router_batch *inflight;     /* at the sink, or waiting for its retry: at most one */
    struct event *linger_timer;
    int64_t stored;             /* transactional: the position the target holds (-1: none) */
    int resyncing;              /* fenced: reloading the stored position */
    int64_t rewind_to;          /* a rewind waiting for the batch in flight; NO_REWIND: none */
    int64_t lost_until;         /* records below this were reported lost (retention); -1: none */
    int beyond_end_reported;    /* its position was found past the log end (logged once) */
    /* SINK_F_STABLE_BATCHES: the first batch since the assignment is still to be cut (it waits
     * to be full, see spart_flush), the cut the commit metadata recorded for it (-1: none),
     * and since when it waits (monotonic ms, 0: not waiting). */
    int first_batch;
    int64_t recorded_first, recorded_last;
    int64_t first_wait_since_ms;
    int cut_overflow_reported;  /* a cut left out of the full metadata was logged */
    /* Whether the commits of the partition name this sink ("sinks:" in the metadata, cuts.c):
     * it then has a position there, and a restart does not treat it as new. A sink new to the
     * partition is named once its next reaches known_from (the group's committed offset when it
     * joined), and then for good. */
    int known;
    int64_t known_from;
    /* The group-wide replay applied here (group.h; -1: none), carried in the commit metadata
     * once the target holds what it rewound: replay_capture until the rewind has run, then the
     * stored position it replaced (OFFSET_UNKNOWN: nothing to wait for) until a batch moves it. */
    int64_t replay_id;
    int replay_capture;
    int64_t replay_saved_from;
    int64_t replay_announced;   /* the mark last put in a commit (one goes even without progress) */
};

enum rpart_state { RPART_LOADING, RPART_ACTIVE, RPART_REVOKING };

struct rtopic;

struct rpart {
    struct router *r;
    struct rtopic *rt;
    int32_t partition;
    enum rpart_state state;
    uint64_t generation;        /* distinguishes this assignment from a later one */
    struct offsets_partition *op;
    struct spart **sparts;      /* per sink index; NULL for sinks not reading the topic */
    int64_t committed;          /* last position sent in a commit; -1: none */
    int64_t fetched_end;        /* one past the highest offset consumed */
    int paused;                 /* by backpressure: no record of it is wanted now */
    int kafka_paused;           /* paused in librdkafka too (which drops what it prefetched) */
    int64_t paused_since_ms;    /* monotonic, while paused by backpressure */
    int took;                   /* a record of this assignment was taken: fetched_end is where the consumer is */
    int64_t wake_sought;        /* fetched_end when a fetch wake-up last sought it (router.c); 0: never */
    /* Records waiting for their schema from the registry, in offset order: while one waits,
     * every later record of the partition waits behind it (route.c). */
    struct router_record *wait_head, *wait_tail;
    size_t nwaiting;
    /* The commits of this partition name the sinks that have a position in it (cuts.c);
     * announce: one became known, or the last commit did not name them: commit even without
     * progress. */
    int names_sinks;
    int announce;
    int names_overflow_reported;
};

#define CONTRACT_RULES_MAX 32     /* rules counted apart per topic; the rest count as "other" */

struct rtopic {
    char *name;
    const struct conf_topic *format;    /* NULL: JSON values, keys as bytes */
    uint64_t decoded, decode_failures;  /* records of it decoded, and dead-lettered by the decode stage */
    char last_decode_error[512];
    const struct jsonschema *contract;  /* topics.<name>.contract, compiled; NULL: none */
    int contract_registry;              /* the contract is the registry's: each schema's rules */
    int redrive;                        /* the redrive topic: each record names its one sink */
    char contract_held[512];            /* why its records are held (a contract sluice cannot check) */
    uint64_t contract_valid;
    struct contract_count contract_rules[CONTRACT_RULES_MAX];
    size_t ncontract_rules;
    char last_violation[800];
    size_t *sinks;              /* indices of the sinks reading it */
    size_t nsinks;
    struct rpart **parts;       /* by partition id; NULL when not assigned */
    size_t nparts;
};

struct router_batch {
    struct sink_batch pub;      /* first: sinks see only this */
    struct router *r;
    struct spart *sp;           /* NULL once orphaned (its partition was revoked) */
    enum sink_result result;
    char *error;
    struct event *timer;        /* delivers the verdict on the loop, then waits for retries */
    int at_sink;                /* ops->write called, verdict not processed yet */
    int64_t started_ms;         /* monotonic, when this attempt was handed to the sink */
    char note[512];             /* sink_batch_note */
    int cut;                    /* cut by linger: its end is in every commit while it is in flight */
    int awaiting_commit;        /* its first write waits for a commit that carries its cut */
    struct router_batch *orphan_prev, *orphan_next;   /* in router->orphans while orphaned at a sink */
};

/* Router-private state of a sink. */
struct sink_state {
    struct router *r;
    size_t index;
    struct filter *filter;
    struct router_sink_stats stats;
    size_t buffered;            /* records queued or in flight, over all partitions */
    size_t buffered_bytes;      /* their keys, values and mapped forms */
    int paused;                 /* by an operator: takes no record, positions kept */
    /* Parked by the router: its buffer stayed full (target slow or down), or a record could not
     * be delivered under on_failure block. Like paused, but it comes back by itself. */
    int parked;
    char park_reason[400];
    int parked_by_registry;     /* parked because the registry refuses sluice's credentials */
    int parked_by_contract;     /* parked because a topic's contract has rules sluice cannot run */
    int64_t parked_since_ms;    /* monotonic */
    unsigned park_streak;       /* parks without a delivery in between: spaces the tries out */
    char last_loss[512];        /* the last range retention took from it, for the admin API */
    char last_error[512];
    int64_t last_error_ms;
    int64_t last_refused_ms;    /* monotonic, when sluice last refused to send one of its records */
    struct router_delivery deliveries[DELIVERY_RING];
    size_t ndeliveries;         /* ever recorded; the ring holds the last DELIVERY_RING */
    struct tap *tap;            /* GET /sinks/NAME/tap clients, NULL when nobody watches (tap.h) */
};

struct assign_job;              /* rebalance.c */

struct positions_req {
    struct sink_positions pub;
    struct router *r;
    struct assign_job *job;     /* NULL for a fenced sink's resync */
    struct spart *resync;
    uint64_t resync_generation;
    struct rtopic *rt;
    size_t sink_index;
    int32_t *partitions;
    int64_t *next;
    /* On the loop, once the sink answered: the assignment's handler (rebalance.c) or the
     * resync's (position.c). Frees req. */
    void (*done)(struct positions_req *req, int ok, const char *error);
};

enum router_phase { PHASE_RUNNING, PHASE_DRAINING, PHASE_COMMITTING, PHASE_CLOSING, PHASE_DONE };

struct router {
    struct event_base *eb;
    struct conf *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    int wake_fds[2];
    struct event *consume_ev;
    struct event *consume_more;    /* the next burst, after the loop has polled I/O */
    int64_t held_since_ms;         /* monotonic; 0 unless the router stopped taking records */
    struct event *fetch_wake;      /* wakes librdkafka's fetcher when its queue stays empty (router.c) */
    size_t wake_cursor;            /* where the next fetch wake-up looks for a partition */
    uint64_t taken_bytes;          /* bytes of values and keys taken since the queue was last empty */
    uint64_t taken_since_empty;    /* records taken since then */
    uint64_t prefetch_bytes;       /* the consumer's queued.max.messages.kbytes, in bytes */
    uint64_t prefetch_records;     /* its queued.min.messages */
    uint64_t nudge_bytes;          /* bytes of values and keys taken since the fetcher was last nudged */
    uint64_t nudge_records;        /* records taken since then */
    int nudging;                   /* a nudge is on the worker thread: the fields below are its */
    int32_t nudge_partition;
    char nudge_topic[256];         /* Kafka's longest topic name is 249 bytes */
    rd_kafka_topic_partition_list_t *nudge_list;   /* or these partitions' leaders (resumed ones) */
    rd_kafka_topic_partition_list_t *resumed;      /* resumed in librdkafka since: the next nudge's */
    struct event *commit_timer;
    struct event *cut_commit;      /* commits the cuts of batches held for it (one per loop pass) */
    struct event *phase_timer;     /* drain and commit deadlines */
    struct dlq *dlq;
    struct registry *registry;     /* NULL unless some topic's format needs it */
    struct worker *worker;
    struct rtopic *topics;
    size_t ntopics;
    uint64_t next_generation;
    struct assign_job *assigning;  /* unfinished assignment jobs */
    rd_kafka_topic_partition_list_t *revoking;   /* waiting for in-flight batches */
    int revoking_lost;
    struct event *revoke_timer;
    int cooperative;
    enum router_phase phase;
    size_t commits_in_flight;
    int exit_code;
    int sinks_started;
    struct event *tick;            /* stall detector */
    int64_t tick_expected_ms;
    uint64_t loop_stalls;
    double loop_worst_s;
    uint64_t rebalances[ROUTER_REBALANCE_KINDS];   /* on_rebalance calls by kind (control.h) */
    int64_t park_checked_ms;
    void (*on_stopped)(void *arg);
    void *on_stopped_arg;
    /* router_check_progress (router.c), for the files below it: a finished batch, dead letter or
     * commit may advance a revoke or a drain phase. */
    void (*check_progress)(struct router *r);
    FILE *dry_run;                 /* set: print instead of write, produce and commit */
    struct deferred *deferred;     /* callbacks waiting for a later loop turn */
    /* Reload: positions noted while this router drains, for the next one (router_carry_take),
     * and the positions handed over from the previous one, each used at its first assignment. */
    struct router_carry *leaving;
    struct carry_position *joins;
    size_t njoins;
    const struct router_carry *arriving;   /* set before router_start; read there only */
    /* Batches a sink still holds whose partition is gone: they keep Kafka messages alive, so
     * router_free releases them (after the sinks stopped) before destroying the consumer. */
    struct router_batch *orphans;
    /* The group's control topic (group.h), NULL without one; the subscription waits until it
     * was read to its end (subscribe_held), so that a paused sink starts paused. */
    const struct group *group;
    int subscribe_held;
};

/* A callback on a later loop turn that router_free can cancel (event_base_once cannot be): the
 * loop outlives a router when a reload replaces it. */
struct deferred {
    struct router *r;
    struct event *ev;
    void (*fn)(struct router *r, void *arg);
    void (*drop)(void *arg);       /* frees arg when cancelled */
    void *arg;
    struct deferred *prev, *next;
};

/* Paused by an operator or parked by the router: it takes no record, its positions are kept and
 * the consumer rewinds for it when it is back. */
static inline int sink_holds_off(const struct sink *sk)
{
    return sk->state->paused || sk->state->parked;
}

static inline const struct sink_record *spart_queued(const struct spart *sp, size_t i)
{
    return &sp->queue[(sp->qhead + i) % sp->qcap];
}

/* The position of one sink (by name) in one partition: every offset below it is finished there. */
struct carry_position {
    char *sink;
    char *topic;
    int32_t partition;
    int64_t next;
    size_t sink_index;          /* in the next router, once matched */
};

/* Work finished: advance a pending revoke and the drain phases, synchronously as before. */
static inline void router_progress(struct router *r)
{
    r->check_progress(r);
}

#endif
