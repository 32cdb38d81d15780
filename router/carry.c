/* The router: the handover of sinks that stay across a reload. */
#include <stdlib.h>
#include <string.h>

#include "carry.h"
#include "conf.h"
#include "engine.h"
#include "offsets.h"
#include "lib/log.h"

struct carry_sink {
    const struct sink *sk;      /* of the previous configuration, alive until the next router started */
    struct sink_state state;    /* a copy: operator pause, park, counters, errors, recent deliveries */
};

struct router_carry {
    struct carry_sink *sinks;
    size_t nsinks;
    struct carry_position *positions;
    size_t npositions, cap;
};

void router_carry_free(struct router_carry *carry)
{
    if (!carry)
        return;
    for (size_t i = 0; i < carry->npositions; i++) {
        free(carry->positions[i].sink);
        free(carry->positions[i].topic);
    }
    free(carry->positions);
    free(carry->sinks);
    free(carry);
}

static void carry_note(struct router_carry *carry, const char *sink, const char *topic, int32_t partition, int64_t next)
{
    struct carry_position *cp;

    for (size_t i = 0; i < carry->npositions; i++) {
        cp = &carry->positions[i];
        if (cp->partition == partition && strcmp(cp->sink, sink) == 0 && strcmp(cp->topic, topic) == 0) {
            cp->next = next;
            return;
        }
    }
    if (carry->npositions == carry->cap) {
        size_t cap = carry->cap ? 2 * carry->cap : 16;
        struct carry_position *more = realloc(carry->positions, cap * sizeof *more);
        if (!more)
            return;   /* the sink then starts at the committed offset: at least once, as before */
        carry->positions = more;
        carry->cap = cap;
    }
    cp = &carry->positions[carry->npositions];
    cp->sink = strdup(sink);
    cp->topic = strdup(topic);
    if (!cp->sink || !cp->topic) {
        free(cp->sink);
        free(cp->topic);
        return;
    }
    cp->partition = partition;
    cp->next = next;
    carry->npositions++;
}

/* Transactional sinks read their positions from the target on assignment; the others have them
 * only here, in memory: without this a kept webhook or http sink would start again at the
 * committed offset, which any slower or paused sink holds back, and send those records twice. */
void router_note_positions(struct router *r, const struct rpart *rp)
{
    if (!r->leaving && !(r->leaving = calloc(1, sizeof *r->leaving)))
        return;
    for (size_t i = 0; i < rp->rt->nsinks; i++) {
        size_t k = rp->rt->sinks[i];
        const struct sink *sk = r->conf->sinks[k];
        int64_t next = offsets_next(rp->op, k);
        if (!(sk->ops->flags & SINK_F_TRANSACTIONAL) && next != OFFSET_UNKNOWN)
            carry_note(r->leaving, sk->name, rp->rt->name, rp->partition, next);
    }
}

struct router_carry *router_carry_take(struct router *r)
{
    struct router_carry *carry;

    if (r->dry_run)
        return NULL;
    /* Partitions not revoked (the consumer's close failed or timed out) still hold theirs. */
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            if (rp && rp->state != RPART_LOADING)
                router_note_positions(r, rp);
        }
    if (!(carry = r->leaving) && !(carry = calloc(1, sizeof *carry)))
        return NULL;
    r->leaving = NULL;
    if (r->conf->nsinks && !(carry->sinks = calloc(r->conf->nsinks, sizeof *carry->sinks))) {
        router_carry_free(carry);
        return NULL;
    }
    for (size_t k = 0; k < r->conf->nsinks; k++) {
        const struct sink *sk = r->conf->sinks[k];
        if (!sk->state)
            continue;
        carry->sinks[carry->nsinks].sk = sk;
        carry->sinks[carry->nsinks].state = *sk->state;
        carry->nsinks++;
    }
    return carry;
}

void router_set_carry(struct router *r, const struct router_carry *carry)
{
    r->arriving = carry;
}

/* Before the sinks start: a sink of the previous configuration with the same name and type keeps
 * its operator pause and its positions (what it already finished is not sent again); when its
 * options are unchanged too, it also keeps its park, counters, last error and recent deliveries. */
int router_apply_carry(struct router *r)
{
    const struct router_carry *carry = r->arriving;

    r->arriving = NULL;
    if (!carry)
        return 0;
    for (size_t k = 0; k < r->conf->nsinks; k++) {
        struct sink *sk = r->conf->sinks[k];
        struct sink_state *st = sk->state;
        const struct carry_sink *cs = NULL;
        size_t positions = 0;
        int same;

        for (size_t i = 0; i < carry->nsinks && !cs; i++)
            if (strcmp(carry->sinks[i].sk->name, sk->name) == 0 && carry->sinks[i].sk->ops == sk->ops)
                cs = &carry->sinks[i];
        if (!cs)
            continue;
        same = conf_sink_same(cs->sk, sk);
        st->paused = cs->state.paused;
        if (same) {
            st->stats = cs->state.stats;
            st->stats.in_flight = 0;
            memcpy(sk->http_responses, cs->sk->http_responses, sizeof sk->http_responses);
            st->parked = cs->state.parked;
            st->parked_since_ms = cs->state.parked_since_ms;
            st->park_streak = cs->state.park_streak;
            memcpy(st->park_reason, cs->state.park_reason, sizeof st->park_reason);
            memcpy(st->last_loss, cs->state.last_loss, sizeof st->last_loss);
            memcpy(st->last_error, cs->state.last_error, sizeof st->last_error);
            st->last_error_ms = cs->state.last_error_ms;
            memcpy(st->deliveries, cs->state.deliveries, sizeof st->deliveries);
            st->ndeliveries = cs->state.ndeliveries;
        }
        for (size_t i = 0; i < carry->npositions; i++) {
            const struct carry_position *cp = &carry->positions[i];
            struct carry_position *joins;
            if (strcmp(cp->sink, sk->name) != 0)
                continue;
            if (!(joins = realloc(r->joins, (r->njoins + 1) * sizeof *joins)))
                return -1;
            r->joins = joins;
            joins[r->njoins] = *cp;
            joins[r->njoins].sink = NULL;   /* the carry keeps its strings; matched by index here */
            if (!(joins[r->njoins].topic = strdup(cp->topic)))
                return -1;
            joins[r->njoins].sink_index = k;
            r->njoins++;
            positions++;
        }
        sink_log(sk, LOG_INFO, "kept across the reload (%s options)%s%s; positions of %zu partition(s)",
                 same ? "same" : "changed", st->paused ? "; still paused" : "", st->parked ? "; still parked" : "",
                 positions);
    }
    return 0;
}

/* The position a kept sink carried for this partition; with @p take, once: a later assignment
 * of the same partition (after a rebalance) goes by the committed offset again. Without it, only
 * a look (an assignment still deciding where its new sinks begin). */
int64_t router_carried_next(struct router *r, size_t k, const char *topic, int32_t partition, int take)
{
    for (size_t i = 0; i < r->njoins; i++) {
        struct carry_position *cp = &r->joins[i];
        if (cp->sink_index == k && cp->partition == partition && cp->next != OFFSET_UNKNOWN &&
            strcmp(cp->topic, topic) == 0) {
            int64_t next = cp->next;
            if (take)
                cp->next = OFFSET_UNKNOWN;
            return next;
        }
    }
    return OFFSET_UNKNOWN;
}
