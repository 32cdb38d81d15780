/* Replay by time: the lookup's answer becomes rewinds. The embedded Kafka cannot look offsets up
 * by time (it answers -1 for every real timestamp), so the planning is checked here on answers
 * written by hand: found offsets are rewound to, -1 and per-partition errors are left alone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>

#include "router/router.h"

static void test_found_offsets_become_targets(void **state)
{
    (void)state;
    rd_kafka_topic_partition_list_t *found = rd_kafka_topic_partition_list_new(4);
    struct replay_target targets[4];
    size_t unmatched = 99, n;

    rd_kafka_topic_partition_list_add(found, "orders", 0)->offset = 120;
    rd_kafka_topic_partition_list_add(found, "orders", 1)->offset = -1;     /* every record older */
    rd_kafka_topic_partition_list_add(found, "orders", 2)->offset = 0;
    rd_kafka_topic_partition_t *bad = rd_kafka_topic_partition_list_add(found, "orders", 3);
    bad->offset = 55;
    bad->err = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;

    n = replay_plan_from_times(found, 0, targets, &unmatched);
    assert_int_equal(n, 2);
    assert_int_equal(unmatched, 2);
    assert_string_equal(targets[0].topic, "orders");
    assert_int_equal(targets[0].partition, 0);
    assert_int_equal(targets[0].offset, 120);
    assert_int_equal(targets[1].partition, 2);
    assert_int_equal(targets[1].offset, 0);
    rd_kafka_topic_partition_list_destroy(found);
}

static void test_failed_lookup_rewinds_nothing(void **state)
{
    (void)state;
    rd_kafka_topic_partition_list_t *found = rd_kafka_topic_partition_list_new(2);
    struct replay_target targets[2];
    size_t unmatched = 0;

    rd_kafka_topic_partition_list_add(found, "a", 0)->offset = 10;
    rd_kafka_topic_partition_list_add(found, "b", 5)->offset = 20;
    assert_int_equal(replay_plan_from_times(found, RD_KAFKA_RESP_ERR__TIMED_OUT, targets, &unmatched), 0);
    assert_int_equal(unmatched, 2);
    rd_kafka_topic_partition_list_destroy(found);
}

static void test_empty_lookup(void **state)
{
    (void)state;
    rd_kafka_topic_partition_list_t *found = rd_kafka_topic_partition_list_new(0);
    struct replay_target targets[1];
    size_t unmatched = 7;
    assert_int_equal(replay_plan_from_times(found, 0, targets, &unmatched), 0);
    assert_int_equal(unmatched, 0);
    rd_kafka_topic_partition_list_destroy(found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found_offsets_become_targets),
        cmocka_unit_test(test_failed_lookup_rewinds_nothing),
        cmocka_unit_test(test_empty_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
