/* The router's counters per sink and its ring of recent deliveries: public, read by the shutdown
 * summary, the admin API and the metrics; kept by router/ in its struct sink_state (engine.h). */
#ifndef SLUICE_ROUTER_STATS_H
#define SLUICE_ROUTER_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "sinks/sink.h"

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
    uint64_t refused_ssrf;    /* records never sent: the SSRF guard refused the destination */
    uint64_t in_flight;       /* gauge: batches handed to the sink, verdict not processed */
    struct histogram latency;       /* seconds from the record's Kafka timestamp to the ack */
    struct histogram batch_records; /* records per applied batch */
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

#endif
