/* The group's control topic, in a running sluice (README, "Running a group"): every replica reads
 * it from its start and keeps reading, so that what `sluice ctl` asks (pause, resume, replay a
 * sink) holds on every replica, including one that starts later or takes over partitions; and
 * each replica announces its admin API there, so that `sluice ctl` can reach all of them. It
 * outlives the routers of successive reloads. */
#ifndef SLUICE_ROUTER_GROUP_H
#define SLUICE_ROUTER_GROUP_H

#include <stdint.h>
#include <event2/event.h>
#include <jansson.h>

struct conf;
struct group;

/* A group-wide replay of one sink, from the control topic; id is the record's offset there. */
struct group_replay {
    int64_t id;
    int64_t offset, timestamp_ms;    /* exactly one is >= 0 */
    char topic[256];                 /* "" for all the sink's topics */
    int32_t partition;               /* -1 for all */
    int64_t at_ms;                   /* when it was asked (wall clock) */
};

/* A replay is applied to a partition that comes without its mark (cuts.c) only while younger
 * than this: an old one whose marks are gone with the group's offsets is not applied again. */
#define GROUP_REPLAY_MAX_AGE_MS (24LL * 3600 * 1000)

struct group_hooks {
    void (*pause)(void *arg, const char *sink, int paused);                  /* a pause/resume */
    void (*replay)(void *arg, const char *sink, const struct group_replay *); /* a new replay */
    void (*caught_up)(void *arg);    /* the topic was read to its end once: the state is known */
    void *arg;
};

/** @brief Start reading conf->control_topic and announcing this replica, whose admin API bound
 * @p admin_port (-1: none; it replaces a port 0 in admin.listen); NULL with @p err. */
struct group *group_new(struct event_base *eb, const struct conf *conf, int admin_port, const struct group_hooks *hooks,
                        char *err, size_t errlen);

/** @brief Say this replica left (a tombstone), then stop; waits at most 2 s (shutdown only). */
void group_free(struct group *g);

/** @brief 1 once the control topic was read to its end. */
int group_caught_up(const struct group *g);

/** @brief Why it is not caught up yet (for /readyz). */
const char *group_waiting_reason(const struct group *g);

/** @brief 1 paused, 0 resumed by the group, -1 the group never said. */
int group_sink_paused(const struct group *g, const char *sink);

/** @brief The sink's latest group-wide replay, NULL when none. */
const struct group_replay *group_sink_replay(const struct group *g, const char *sink);

/** @brief Calls hooks.pause for every sink the group paused (a new router after a reload). */
void group_apply_pauses(const struct group *g);

/** @brief GET /group: this replica, the control topic's state, the replicas it has seen. */
json_t *group_view(const struct group *g);

#endif
