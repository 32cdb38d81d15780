/* Waking librdkafka's fetcher when its queue has room again or ran dry (fetch_wake.c). */
#ifndef SLUICE_FETCH_WAKE_H
#define SLUICE_FETCH_WAKE_H

#include <librdkafka/rdkafka.h>

struct router;

/* Reads the consumer's prefetch limits and makes the timer; 0, or -1 out of memory. */
int router_fetch_wake_init(struct router *r);
/* Counts what the consume loop took from the queue; nudges the fetcher every quarter prefetch. */
void router_fetch_wake_took(struct router *r, const rd_kafka_message_t *rkm);
/* The consume loop found the queue empty (not held): arms the wake-up when it may be needed. */
void router_fetch_wake_empty(struct router *r);
/* A partition was resumed in librdkafka (backpressure ended): wakes its leader's thread. */
void router_fetch_wake_resumed(struct router *r, const char *topic, int32_t partition);
/* Frees the lists of partitions to wake; after the worker stopped. */
void router_fetch_wake_free(struct router *r);

#endif
