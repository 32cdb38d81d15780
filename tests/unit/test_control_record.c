/* The group's control topic (router/control_record.c): each kind of record parsed, the values
 * sluice writes read back, bad records refused with a reason; and the group replay marks of the
 * commit metadata (router/cuts.c, cuts_replay_mark). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "router/control_record.h"
#include "router/cuts.h"

static int parse(const char *key, const char *value, struct control_record *rec, char *err)
{
    return control_record_parse(key, strlen(key), value, value ? strlen(value) : 0, rec, err, 256);
}

static void test_kinds(void **state)
{
    struct control_record rec;
    char err[256];
    (void)state;

    assert_int_equal(parse("pause/customers-db", "{\"paused\": true, \"at_ms\": 5, \"by\": \"ops@h\"}", &rec, err), 0);
    assert_int_equal(rec.kind, CONTROL_PAUSE);
    assert_string_equal(rec.name, "customers-db");
    assert_int_equal(rec.paused, 1);
    assert_int_equal(rec.at_ms, 5);
    assert_string_equal(rec.by, "ops@h");

    assert_int_equal(parse("replay/s", "{\"timestamp_ms\": 1764979200000, \"topic\": \"events\", \"partition\": 3}", &rec, err), 0);
    assert_int_equal(rec.kind, CONTROL_REPLAY);
    assert_int_equal(rec.offset, -1);
    assert_int_equal(rec.timestamp_ms, 1764979200000LL);
    assert_string_equal(rec.topic, "events");
    assert_int_equal(rec.partition, 3);

    assert_int_equal(parse("replica/vm-12", "{\"admin\": \"http://10.0.0.7:9644\", \"pid\": 12, \"heartbeat_ms\": 1000}", &rec, err), 0);
    assert_int_equal(rec.kind, CONTROL_REPLICA);
    assert_string_equal(rec.admin, "http://10.0.0.7:9644");
    assert_int_equal(rec.heartbeat_ms, 1000);

    assert_int_equal(parse("replica/vm-12", NULL, &rec, err), 0);
    assert_int_equal(rec.tombstone, 1);
}

static void test_refused(void **state)
{
    struct control_record rec;
    char err[256];
    static const char *const bad[][2] = {
        { "other/x", "{}" },
        { "pause/", "{\"paused\": true}" },
        { "pause/a b", "{\"paused\": true}" },
        { "pause/x", "{\"paused\": 1}" },
        { "pause/x", "[true]" },
        { "pause/x", "{\"paused\": true, \"paused\": false}" },
        { "replay/x", "{}" },
        { "replay/x", "{\"offset\": 1, \"timestamp_ms\": 2}" },
        { "replay/x", "{\"offset\": -1}" },
        { "replay/x", "{\"offset\": 1, \"partition\": 4294967296}" },
        { "replica/x", "{\"heartbeat_ms\": 0}" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(parse(bad[i][0], bad[i][1], &rec, err), -1);
        assert_true(err[0] != '\0');
    }
}

static void test_round_trip(void **state)
{
    struct control_record rec = { .kind = CONTROL_REPLAY, .at_ms = 9, .offset = 42, .timestamp_ms = -1,
                                  .partition = 2 }, back;
    char key[160], err[256], *value;
    int n;
    (void)state;

    strcpy(rec.name, "held");
    strcpy(rec.topic, "events");
    n = control_record_key(&rec, key, sizeof key);
    assert_int_equal(n, (int)strlen("replay/held"));
    assert_non_null(value = control_record_value(&rec));
    assert_int_equal(control_record_parse(key, (size_t)n, value, strlen(value), &back, err, sizeof err), 0);
    assert_int_equal(back.offset, 42);
    assert_int_equal(back.partition, 2);
    assert_string_equal(back.topic, "events");
    free(value);
}

static int64_t mark(const char *metadata, const char *sink)
{
    rd_kafka_topic_partition_t tp;
    memset(&tp, 0, sizeof tp);
    tp.metadata = (void *)metadata;
    tp.metadata_size = strlen(metadata);
    return cuts_replay_mark(&tp, sink);
}

static void test_replay_marks(void **state)
{
    (void)state;
    assert_int_equal(mark("sluice1 sinks:a,b;replayed:a@17,b.x@4", "a"), 17);
    assert_int_equal(mark("sluice1 sinks:a,b;replayed:a@17,b.x@4", "b.x"), 4);
    assert_int_equal(mark("sluice1 sinks:a,b;replayed:a@17,b.x@4", "b"), -1);
    assert_int_equal(mark("sluice1 a=1-5;sinks:a;replayed:a@", "a"), -1);
    assert_int_equal(mark("sluice1 sinks:a;replayed:a@1x", "a"), -1);
    assert_int_equal(mark("sluice1 sinks:a;replayed:a@99999999999999999999", "a"), -1);
    assert_int_equal(mark("sluice1 sinks:a", "a"), -1);
    assert_int_equal(mark("other replayed:a@1", "a"), -1);
    assert_int_equal(mark("sluice1 replayed:@1", ""), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_replay_marks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
