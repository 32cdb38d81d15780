/* The offset tracker of DESIGN.md. For each (sink, topic, partition) it keeps next: every
 * offset below it is finished in that sink (applied, skipped by a filter, or dead-lettered).
 * Offsets in Kafka have gaps (compaction, transaction markers), so next is not "last + 1" but
 * "the lowest offset handed to the sink and not finished yet", or one past the highest handed
 * when nothing is outstanding. A sink is never handed an offset below its next, nor one it has
 * already been handed: a rewind of the consumer for one sink is invisible to the others.
 * The position committed to Kafka for a partition is the minimum next over its sinks. */
#ifndef SLUICE_OFFSETS_H
#define SLUICE_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#define OFFSET_UNKNOWN (-1)

struct offsets_partition;

/** @brief Track a newly assigned partition read by @p nsinks sinks (indices 0..nsinks-1). */
struct offsets_partition *offsets_partition_new(const char *topic, int32_t partition, size_t nsinks);
void offsets_partition_free(struct offsets_partition *op);

const char *offsets_partition_topic(const struct offsets_partition *op);
int32_t offsets_partition_id(const struct offsets_partition *op);

/** @brief Sink @p sink reads this partition from @p next (OFFSET_UNKNOWN: from wherever the
 * consumer starts). A sink that never joins does not hold the committed position back. */
void offsets_sink_join(struct offsets_partition *op, size_t sink, int64_t next);

/** @brief 1 when @p offset must be handed to @p sink (it becomes outstanding), 0 when the sink
 * already has it (below next, or handed before). Offsets must be offered in increasing order. */
int offsets_accept(struct offsets_partition *op, size_t sink, int64_t offset);

/** @brief The outstanding @p offset is finished in @p sink (acknowledged in any order). */
void offsets_done(struct offsets_partition *op, size_t sink, int64_t offset);

/** @brief next of @p sink, or OFFSET_UNKNOWN. */
int64_t offsets_next(const struct offsets_partition *op, size_t sink);

/** @brief One past the highest offset handed to @p sink since it joined or was rewound (its
 * next when none was), or OFFSET_UNKNOWN: a record above it means the log has a gap there. */
int64_t offsets_handed_end(const struct offsets_partition *op, size_t sink);
/** @brief How many offsets of @p sink are outstanding. */
size_t offsets_outstanding(const struct offsets_partition *op, size_t sink);

/** @brief Forget what @p sink has outstanding and restart it at @p next (a parked or fenced
 * sink, a replay): the consumer must be rewound to at most @p next for it to catch up. */
void offsets_rewind(struct offsets_partition *op, size_t sink, int64_t next);

/** @brief The position to commit: the minimum next over the joined sinks that know theirs,
 * OFFSET_UNKNOWN when none does. */
int64_t offsets_commit_position(const struct offsets_partition *op);

#endif
