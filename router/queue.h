/* The router: shared records, a sink's queue per partition, deferred callbacks (queue.c). */
#ifndef SLUICE_ROUTER_QUEUE_H
#define SLUICE_ROUTER_QUEUE_H

#include "engine.h"

int sink_can_deliver(struct sink *sk, char *why, size_t whylen);
void deferred_unlink(struct deferred *d);
void router_defer(struct router *r, int64_t delay_ms, void (*fn)(struct router *r, void *arg),
                  void (*drop)(void *arg), void *arg);
struct rtopic *router_topic(struct router *r, const char *name);
struct rpart *router_part(struct router *r, const char *topic, int32_t partition);
struct router_record *record_new(rd_kafka_message_t *rkm);
/* Bytes of every record alive, counted once, with what each sink made of it (queue.c). */
size_t records_held_bytes(void);
void record_count(struct router_record *rec);
void record_unref(struct router_record *rec);
json_t *record_doc(struct router_record *rec);
void entry_fill(struct sink_record *e, struct router_record *rec, const char *topic);
/* Records waiting for their schema in their partition, in offset order. rpart_wait_drop lets go
 * of them all (they are read from Kafka again: the caller seeks back) and returns the offset of
 * the first, or OFFSET_UNKNOWN when none waited. */
void rpart_wait_push(struct rpart *rp, struct router_record *rec);
struct router_record *rpart_wait_pop(struct rpart *rp);
int64_t rpart_wait_drop(struct rpart *rp);
size_t entry_bytes(const struct sink_record *e);
int spart_enqueue(struct spart *sp, const struct sink_record *e);
void spart_queue_fit(struct spart *sp);
void batch_free(struct router_batch *b);
void spart_drop_queue(struct spart *sp);
void spart_drop_waiting_batch(struct spart *sp);
void router_sink_sparts(struct router *r, size_t k, void (*fn)(struct spart *sp, void *arg), void *arg);

#endif
