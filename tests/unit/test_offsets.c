/* The offset tracker: out-of-order acks, many sinks on one topic, sinks on different topics,
 * gaps in offsets, rewinds, and a revoke in the middle of a batch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "router/offsets.h"

static void test_out_of_order_acks(void **state)
{
    (void)state;
    struct offsets_partition *op = offsets_partition_new("t", 0, 1);
    offsets_sink_join(op, 0, 10);
    for (int64_t o = 10; o < 15; o++)
        assert_int_equal(offsets_accept(op, 0, o), 1);
    assert_int_equal(offsets_next(op, 0), 10);
    offsets_done(op, 0, 13);
    offsets_done(op, 0, 11);
    assert_int_equal(offsets_next(op, 0), 10);       /* 10 is still outstanding */
    offsets_done(op, 0, 10);
    assert_int_equal(offsets_next(op, 0), 12);       /* 10, 11 done; 12 outstanding */
    offsets_done(op, 0, 14);
    offsets_done(op, 0, 12);
    assert_int_equal(offsets_next(op, 0), 15);
    assert_int_equal(offsets_outstanding(op, 0), 0);
    assert_int_equal(offsets_commit_position(op), 15);
    offsets_partition_free(op);
}

static void test_gaps_in_offsets(void **state)
{
    (void)state;
    struct offsets_partition *op = offsets_partition_new("compacted", 3, 1);
    offsets_sink_join(op, 0, OFFSET_UNKNOWN);
    assert_int_equal(offsets_commit_position(op), OFFSET_UNKNOWN);
    assert_int_equal(offsets_accept(op, 0, 100), 1);   /* the log starts at 100 */
    assert_int_equal(offsets_accept(op, 0, 107), 1);   /* 101..106 compacted away */
    assert_int_equal(offsets_next(op, 0), 100);
    offsets_done(op, 0, 100);
    assert_int_equal(offsets_next(op, 0), 107);
    offsets_done(op, 0, 107);
    assert_int_equal(offsets_next(op, 0), 108);
    offsets_partition_free(op);
}

static void test_many_sinks_one_topic(void **state)
{
    (void)state;
    struct offsets_partition *op = offsets_partition_new("orders", 1, 3);
    offsets_sink_join(op, 0, 50);
    offsets_sink_join(op, 1, 40);                       /* a transactional sink that stored 40 */
    offsets_sink_join(op, 2, 50);
    assert_int_equal(offsets_commit_position(op), 40);
    /* The consumer starts at 40: sinks 0 and 2 skip what they already have. */
    for (int64_t o = 40; o < 60; o++) {
        assert_int_equal(offsets_accept(op, 0, o), o >= 50);
        assert_int_equal(offsets_accept(op, 1, o), 1);
        assert_int_equal(offsets_accept(op, 2, o), o >= 50);
    }
    for (int64_t o = 50; o < 60; o++)
        offsets_done(op, 0, o);
    for (int64_t o = 40; o < 55; o++)
        offsets_done(op, 1, o);
    assert_int_equal(offsets_commit_position(op), 50);  /* sink 2 has acked nothing */
    for (int64_t o = 50; o < 58; o++)
        offsets_done(op, 2, o);
    assert_int_equal(offsets_commit_position(op), 55);  /* sink 1 is the slowest now */
    for (int64_t o = 55; o < 60; o++)
        offsets_done(op, 1, o);
    assert_int_equal(offsets_commit_position(op), 58);
    offsets_partition_free(op);
}

static void test_sinks_on_different_topics(void **state)
{
    (void)state;
    /* Sink 0 reads topic a, sink 1 reads topic b: each partition is held back only by its own. */
    struct offsets_partition *a = offsets_partition_new("a", 0, 2);
    struct offsets_partition *b = offsets_partition_new("b", 0, 2);
    offsets_sink_join(a, 0, 0);
    offsets_sink_join(b, 1, 0);
    assert_int_equal(offsets_accept(a, 1, 0), 0);      /* sink 1 does not read a */
    for (int64_t o = 0; o < 5; o++) {
        assert_int_equal(offsets_accept(a, 0, o), 1);
        assert_int_equal(offsets_accept(b, 1, o), 1);
    }
    for (int64_t o = 0; o < 5; o++)
        offsets_done(a, 0, o);
    assert_int_equal(offsets_commit_position(a), 5);
    assert_int_equal(offsets_commit_position(b), 0);
    offsets_done(b, 1, 0);
    assert_int_equal(offsets_commit_position(b), 1);
    offsets_partition_free(a);
    offsets_partition_free(b);
}

static void test_rewind_does_not_rehand(void **state)
{
    (void)state;
    struct offsets_partition *op = offsets_partition_new("t", 0, 2);
    offsets_sink_join(op, 0, 0);
    offsets_sink_join(op, 1, 0);
    for (int64_t o = 0; o < 10; o++) {
        offsets_accept(op, 0, o);
        offsets_accept(op, 1, o);
    }
    for (int64_t o = 0; o < 10; o++)
        offsets_done(op, 0, o);
    /* Sink 1 is parked: its outstanding records are dropped and it restarts at 3. */
    offsets_done(op, 1, 0);
    offsets_done(op, 1, 1);
    offsets_done(op, 1, 2);
    offsets_rewind(op, 1, 3);
    assert_int_equal(offsets_commit_position(op), 3);
    /* The consumer replays from 3: sink 0 already has 3..9 (some in flight again is impossible). */
    for (int64_t o = 3; o < 12; o++) {
        assert_int_equal(offsets_accept(op, 0, o), o >= 10);
        assert_int_equal(offsets_accept(op, 1, o), 1);
    }
    /* A second replay while sink 1 still has 3..11 outstanding hands it nothing twice. */
    for (int64_t o = 3; o < 12; o++)
        assert_int_equal(offsets_accept(op, 1, o), 0);
    offsets_partition_free(op);
}

static void test_revoke_mid_batch(void **state)
{
    (void)state;
    /* A batch 20..29 is in flight when the partition is revoked: only 10..19 were acked, so
     * the position committed is 20, and the next owner gets 20..29 again. */
    struct offsets_partition *op = offsets_partition_new("t", 2, 1);
    offsets_sink_join(op, 0, 10);
    for (int64_t o = 10; o < 30; o++)
        offsets_accept(op, 0, o);
    for (int64_t o = 10; o < 20; o++)
        offsets_done(op, 0, o);
    assert_int_equal(offsets_commit_position(op), 20);
    offsets_partition_free(op);     /* revoked: the late verdict of 20..29 is not applied */

    op = offsets_partition_new("t", 2, 1);
    offsets_sink_join(op, 0, 20);
    for (int64_t o = 18; o < 30; o++)
        assert_int_equal(offsets_accept(op, 0, o), o >= 20);
    offsets_done(op, 0, 25);                /* out of order within the redelivered batch */
    assert_int_equal(offsets_next(op, 0), 20);
    offsets_done(op, 0, 99);                /* never handed: ignored */
    assert_int_equal(offsets_outstanding(op, 0), 10);
    offsets_partition_free(op);
}

static void test_ring_grows_past_capacity(void **state)
{
    (void)state;
    struct offsets_partition *op = offsets_partition_new("t", 0, 1);
    offsets_sink_join(op, 0, 0);
    for (int64_t o = 0; o < 1000; o++)
        offsets_accept(op, 0, o);
    for (int64_t o = 0; o < 500; o++)
        offsets_done(op, 0, o);
    for (int64_t o = 1000; o < 3000; o++)   /* wraps around and grows with a moved head */
        offsets_accept(op, 0, o);
    assert_int_equal(offsets_outstanding(op, 0), 2500);
    for (int64_t o = 2999; o >= 500; o--)
        offsets_done(op, 0, o);
    assert_int_equal(offsets_next(op, 0), 3000);
    assert_int_equal(offsets_outstanding(op, 0), 0);
    offsets_partition_free(op);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_of_order_acks),
        cmocka_unit_test(test_gaps_in_offsets),
        cmocka_unit_test(test_many_sinks_one_topic),
        cmocka_unit_test(test_sinks_on_different_topics),
        cmocka_unit_test(test_rewind_does_not_rehand),
        cmocka_unit_test(test_revoke_mid_batch),
        cmocka_unit_test(test_ring_grows_past_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
