/* The router's side of the group's control topic (group.h): pauses and replays asked for the
 * whole group, applied here, and to each partition this replica is assigned later. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "conf.h"
#include "cuts.h"
#include "engine.h"
#include "group.h"
#include "group_apply.h"
#include "queue.h"
#include "lib/clock.h"
#include "lib/log.h"

void router_set_group(struct router *r, const struct group *g)
{
    r->group = g;
}

int router_subscribe_held(const struct router *r)
{
    return r->subscribe_held;
}

void router_group_pause(struct router *r, const char *sink, int paused)
{
    int k = router_sink_find(r, sink);

    if (k < 0)
        return;   /* not a sink of this configuration: nothing to hold here */
    if (paused)
        router_sink_pause(r, (size_t)k);
    else
        router_sink_resume(r, (size_t)k);
}

static void on_group_replay_time(void *arg, int rewound, size_t unmatched, const char *error)
{
    (void)arg;
    if (error)
        LOG(LOG_WARN, "group replay: the time lookup failed: %s", error);
    else
        LOG(LOG_INFO, "group replay: %d partition(s) rewound, %zu with no record at or after the time", rewound,
            unmatched);
}

/* Applies @p cmd to sink @p k, in one partition (@p topic, @p partition) or in all it asks for. */
static void replay_apply(struct router *r, size_t k, const struct group_replay *cmd, const char *topic,
                         int32_t partition)
{
    char err[256];
    const char *t = topic ? topic : cmd->topic[0] ? cmd->topic : NULL;
    int32_t p = topic ? partition : cmd->partition;
    int rc;

    if (cmd->topic[0] && !router_topic(r, cmd->topic)) {
        sink_log(r->conf->sinks[k], LOG_WARN, "group replay %" PRId64 ": not a topic of this sink: %s", cmd->id,
                 cmd->topic);
        return;
    }
    if (cmd->offset >= 0)
        rc = router_sink_replay(r, k, t, p, cmd->offset, cmd->id, err, sizeof err);
    else
        rc = router_sink_replay_time(r, k, t, p, cmd->timestamp_ms, cmd->id, on_group_replay_time, NULL, err,
                                     sizeof err);
    if (rc < 0)
        sink_log(r->conf->sinks[k], LOG_WARN, "group replay %" PRId64 ": %s", cmd->id, err);
}

void router_group_replay(struct router *r, const char *sink, const struct group_replay *cmd)
{
    int k = router_sink_find(r, sink);

    if (k >= 0)
        replay_apply(r, (size_t)k, cmd, NULL, -1);
}

void rpart_group_replays(struct rpart *rp, const rd_kafka_topic_partition_t *tp)
{
    struct router *r = rp->r;

    if (!r->group || r->dry_run)
        return;
    for (size_t s = 0; s < rp->rt->nsinks; s++) {
        struct spart *sp = rp->sparts[rp->rt->sinks[s]];
        const struct group_replay *cmd = group_sink_replay(r->group, sp->sk->name);
        if (!cmd || (cmd->topic[0] && strcmp(cmd->topic, rp->rt->name) != 0) ||
            (cmd->partition >= 0 && cmd->partition != rp->partition))
            continue;
        if (cuts_replay_mark(tp, sp->sk->name) == cmd->id) {
            sp->replay_id = sp->replay_announced = cmd->id;   /* applied by an earlier owner */
            continue;
        }
        if (wall_ms() - cmd->at_ms > GROUP_REPLAY_MAX_AGE_MS)
            continue;
        sink_log(sp->sk, LOG_INFO, "%s [%" PRId32 "]: group replay %" PRId64 " not applied here yet: applying it",
                 rp->rt->name, rp->partition, cmd->id);
        replay_apply(r, sp->sink_index, cmd, rp->rt->name, rp->partition);
    }
}
