/* The router: one libevent loop that consumes Kafka, routes each record to the sinks of its
 * topic (filter, map, batch per partition), hands batches to the sinks, retries, dead-letters,
 * tracks offsets and commits the minimum every sink has finished. */
#ifndef SLUICE_ROUTER_H
#define SLUICE_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <event2/event.h>

#include "control.h"
#include "stats.h"
#include "sinks/sink.h"

struct conf;
struct router;

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

/** @brief The consumer properties sluice sets where librdkafka's defaults do not suit it (the
 * kafka section overrides each): name and value pairs, ended by a NULL name. */
extern const char *const router_consumer_defaults[][2];

struct group;
/** @brief Before router_start: the group's control topic (group.h); the consumer subscribes once
 * it has been read to its end (router_subscribe). */
void router_set_group(struct router *r, const struct group *g);

/** @brief Subscribe the consumer (router_start does, unless it waits for the group). */
int router_subscribe(struct router *r, char *err, size_t errlen);

/** @brief 1 while the subscription waits for the group's control topic. */
int router_subscribe_held(const struct router *r);

/** @brief Begin a drain: stop consuming, flush batches, wait for acks up to the shutdown
 * timeout, commit, close the consumer; then the loop exits. Safe to call twice. */
void router_shutdown(struct router *r);

/** @brief Call @p fn once the drain begun by router_shutdown is over, instead of leaving the
 * loop. @p fn must not free the router from inside the call (defer it to the next loop turn). */
void router_on_stopped(struct router *r, void (*fn)(void *arg), void *arg);

/** @brief 0 after a clean stop, 1 after a runtime failure. */
int router_exit_code(const struct router *r);

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

void router_free(struct router *r);

#endif
