/* The dead-letter topic: records a sink cannot take are produced there with headers saying
 * why, which sink, and where they came from; the original key, value and timestamp are kept
 * untouched. The producer's delivery reports wake the event loop through a pipe. */
#ifndef SLUICE_DLQ_H
#define SLUICE_DLQ_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

struct dlq;

/* What one dead letter says about its record. */
struct dlq_letter {
    const char *sink;         /* NULL: a letter of the record, before any sink (decode) */
    const char *stage;        /* header sluice.stage: "decode", "contract"; NULL: "sink" */
    const char *rule;         /* a contract's rule: headers sluice.rule, __rule.name, __rule.mode; NULL: none */
    int has_schema_id;        /* 1: header sluice.schema.id = schema_id */
    uint32_t schema_id;
    const char *reason;
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *value;        /* NULL for a tombstone */
    size_t value_len;
    int64_t timestamp_ms;     /* -1: none */
    /* A loss marker, not a record: offsets [offset, lost_end) of the topic were deleted by
     * retention before the sink got them (header sluice.lost.end). 0: an ordinary letter. */
    int64_t lost_end;
};

/* Called on the loop once the letter is stored in Kafka (ok = 1), or failed for good (ok = 0). */
typedef void (*dlq_done_fn)(void *arg, int ok, const char *error);

/** @brief A producer for @p topic with the consumer's connection properties @p kafka. */
struct dlq *dlq_new(struct event_base *eb, const json_t *kafka, const char *topic, char *err, size_t errlen);

/** @brief Send one letter; @p done runs on the loop when Kafka has it (retried until then). */
int dlq_send(struct dlq *dlq, const struct dlq_letter *letter, dlq_done_fn done, void *arg);

/** @brief Letters sent and not yet acknowledged. */
size_t dlq_pending(const struct dlq *dlq);

/** @brief Letters Kafka acknowledged, and produce attempts that failed (each retried). */
void dlq_counts(const struct dlq *dlq, uint64_t *stored, uint64_t *produce_errors);

/** @brief Flush with a bound, then free; pending letters' callbacks are not called. */
void dlq_free(struct dlq *dlq, int timeout_ms);

#endif
