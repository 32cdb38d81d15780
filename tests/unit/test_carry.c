/* The reload handover (router/carry.c, conf_sink_same in router/conf.c): a sink that stays
 * (same name and type) keeps its operator pause and, when not transactional, its positions; the
 * rest of its state (park, counters, last error, deliveries) only when its options are the same.
 * Two configurations from fixtures/carry/, routers built by hand: no Kafka, no loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/carry.h"
#include "router/conf.h"
#include "router/engine.h"
#include "router/offsets.h"

#define FIX "fixtures/carry/"

static struct conf *load(const char *file)
{
    struct cfg_errors errs = { 0 };
    struct conf *conf = conf_load(file, &errs);

    for (size_t i = 0; i < errs.n; i++)
        print_message("%s\n", errs.msgs[i]);
    cfg_errors_clear(&errs);
    assert_non_null(conf);
    return conf;
}

static size_t sink_index(const struct conf *conf, const char *name)
{
    for (size_t k = 0; k < conf->nsinks; k++)
        if (strcmp(conf->sinks[k]->name, name) == 0)
            return k;
    fail_msg("no sink %s", name);
    return 0;
}

static struct sink_state *state_of(const struct conf *conf, const char *name)
{
    return conf->sinks[sink_index(conf, name)]->state;
}

/* A router over @p conf with a zeroed state per sink, reading one topic, "orders". */
struct side {
    struct router r;
    struct sink_state *st;
    size_t *sinks;
    struct rtopic rt;
};

static void side_init(struct side *s, struct conf *conf)
{
    memset(s, 0, sizeof *s);
    s->r.conf = conf;
    s->st = calloc(conf->nsinks, sizeof *s->st);
    s->sinks = calloc(conf->nsinks, sizeof *s->sinks);
    assert_non_null(s->st);
    assert_non_null(s->sinks);
    for (size_t k = 0; k < conf->nsinks; k++) {
        conf->sinks[k]->state = &s->st[k];
        s->st[k].r = &s->r;
        s->st[k].index = k;
        s->sinks[k] = k;
    }
    s->rt.name = "orders";
    s->rt.sinks = s->sinks;
    s->rt.nsinks = conf->nsinks;
}

static void side_free(struct side *s)
{
    for (size_t k = 0; k < s->r.conf->nsinks; k++)
        s->r.conf->sinks[k]->state = NULL;
    for (size_t i = 0; i < s->r.njoins; i++)
        free(s->r.joins[i].topic);
    free(s->r.joins);
    router_carry_free(s->r.leaving);
    free(s->st);
    free(s->sinks);
}

/* A partition of "orders" where every sink of @p s has finished up to @p next. */
static void part_init(struct side *s, struct rpart *rp, int32_t partition, int64_t next)
{
    memset(rp, 0, sizeof *rp);
    rp->r = &s->r;
    rp->rt = &s->rt;
    rp->partition = partition;
    rp->state = RPART_ACTIVE;
    rp->op = offsets_partition_new("orders", partition, s->r.conf->nsinks);
    assert_non_null(rp->op);
    for (size_t k = 0; k < s->r.conf->nsinks; k++)
        offsets_sink_join(rp->op, k, next);
}

static void test_same_options(void **state)
{
    struct conf *old = load(FIX "old.json"), *new = load(FIX "new.json");

    (void)state;
    assert_true(conf_sink_same(old->sinks[sink_index(old, "keep")], new->sinks[sink_index(new, "keep")]));
    assert_true(conf_sink_same(old->sinks[sink_index(old, "ledger")], new->sinks[sink_index(new, "ledger")]));
    /* a common option (batch.max_records), the type's own (webhook.url), the type itself */
    assert_false(conf_sink_same(old->sinks[sink_index(old, "tuned")], new->sinks[sink_index(new, "tuned")]));
    assert_false(conf_sink_same(old->sinks[sink_index(old, "own")], new->sinks[sink_index(new, "own")]));
    assert_false(conf_sink_same(old->sinks[sink_index(old, "retyped")], new->sinks[sink_index(new, "retyped")]));
    conf_free(old);
    conf_free(new);
}

static void test_carry_by_name_and_type(void **state)
{
    struct conf *old = load(FIX "old.json"), *new = load(FIX "new.json");
    struct side a, b;
    struct rpart p0, p1, *parts[2] = { &p0, &p1 };
    struct router_carry *carry;
    const char *names[] = { "keep", "tuned", "own", "retyped", "ledger", "gone" };

    (void)state;
    side_init(&a, old);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        struct sink_state *st = state_of(old, names[i]);
        st->paused = 1;
        st->parked = 1;
        snprintf(st->park_reason, sizeof st->park_reason, "slow %s", names[i]);
        st->stats.delivered = 5;
        st->stats.in_flight = 2;
        snprintf(st->last_error, sizeof st->last_error, "boom");
        st->ndeliveries = 3;
    }
    /* partition 1 was revoked during the drain (noted then); partition 0 is still held */
    part_init(&a, &p1, 1, 70);
    router_note_positions(&a.r, &p1);
    part_init(&a, &p0, 0, 40);
    a.rt.parts = parts;
    a.rt.nparts = 2;
    parts[1] = NULL;
    a.r.topics = &a.rt;
    a.r.ntopics = 1;
    carry = router_carry_take(&a.r);
    assert_non_null(carry);
    assert_null(a.r.leaving);

    side_init(&b, new);
    router_set_carry(&b.r, carry);
    assert_int_equal(router_apply_carry(&b.r), 0);
    assert_null(b.r.arriving);   /* read once, at start */

    /* same options: all of it, but nothing is in flight in the new router */
    struct sink_state *keep = state_of(new, "keep");
    assert_int_equal(keep->paused, 1);
    assert_int_equal(keep->parked, 1);
    assert_string_equal(keep->park_reason, "slow keep");
    assert_int_equal(keep->stats.delivered, 5);
    assert_int_equal(keep->stats.in_flight, 0);
    assert_string_equal(keep->last_error, "boom");
    assert_int_equal(keep->ndeliveries, 3);
    /* changed options: the pause and the positions only */
    for (size_t i = 0; i < 2; i++) {
        struct sink_state *st = state_of(new, i ? "own" : "tuned");
        assert_int_equal(st->paused, 1);
        assert_int_equal(st->parked, 0);
        assert_int_equal(st->stats.delivered, 0);
        assert_string_equal(st->last_error, "");
        assert_int_equal(st->ndeliveries, 0);
    }
    /* another type under the same name, or a new name: a new sink */
    assert_int_equal(state_of(new, "retyped")->paused, 0);
    assert_int_equal(state_of(new, "fresh")->paused, 0);
    /* transactional: paused and counters kept, positions read from its target instead */
    assert_int_equal(state_of(new, "ledger")->paused, 1);
    assert_int_equal(state_of(new, "ledger")->stats.delivered, 5);

    /* positions, by the new index of the sink, taken once each */
    size_t k = sink_index(new, "keep"), t = sink_index(new, "tuned");
    assert_int_equal(router_carried_next(&b.r, k, "orders", 0, 0), 40);   /* a look leaves it */
    assert_int_equal(router_carried_next(&b.r, k, "orders", 0, 1), 40);
    assert_int_equal(router_carried_next(&b.r, k, "orders", 0, 1), OFFSET_UNKNOWN);
    assert_int_equal(router_carried_next(&b.r, k, "orders", 1, 1), 70);
    assert_int_equal(router_carried_next(&b.r, t, "orders", 1, 1), 70);
    assert_int_equal(router_carried_next(&b.r, t, "payments", 0, 1), OFFSET_UNKNOWN);
    assert_int_equal(router_carried_next(&b.r, sink_index(new, "retyped"), "orders", 0, 1), OFFSET_UNKNOWN);
    assert_int_equal(router_carried_next(&b.r, sink_index(new, "fresh"), "orders", 0, 1), OFFSET_UNKNOWN);
    assert_int_equal(router_carried_next(&b.r, sink_index(new, "ledger"), "orders", 0, 1), OFFSET_UNKNOWN);

    router_carry_free(carry);
    offsets_partition_free(p0.op);
    offsets_partition_free(p1.op);
    side_free(&a);
    side_free(&b);
    conf_free(old);
    conf_free(new);
}

/* A partition noted twice (revoked, assigned again, revoked again) keeps its last position; a
 * dry run hands nothing over; no carry at all leaves the new router as it is. */
static void test_carry_edges(void **state)
{
    struct conf *old = load(FIX "old.json"), *new = load(FIX "new.json");
    struct side a, b;
    struct rpart p;
    struct router_carry *carry;

    (void)state;
    side_init(&a, old);
    part_init(&a, &p, 3, 10);
    router_note_positions(&a.r, &p);
    offsets_partition_free(p.op);
    part_init(&a, &p, 3, 25);
    router_note_positions(&a.r, &p);
    offsets_partition_free(p.op);

    a.r.dry_run = stdout;
    assert_null(router_carry_take(&a.r));
    a.r.dry_run = NULL;
    carry = router_carry_take(&a.r);
    assert_non_null(carry);

    side_init(&b, new);
    assert_int_equal(router_apply_carry(&b.r), 0);   /* none set */
    assert_int_equal(b.r.njoins, 0);
    router_set_carry(&b.r, carry);
    assert_int_equal(router_apply_carry(&b.r), 0);
    assert_int_equal(router_carried_next(&b.r, sink_index(new, "keep"), "orders", 3, 1), 25);

    router_carry_free(carry);
    side_free(&a);
    side_free(&b);
    conf_free(old);
    conf_free(new);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_options),
        cmocka_unit_test(test_carry_by_name_and_type),
        cmocka_unit_test(test_carry_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
