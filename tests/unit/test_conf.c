/* Loading the configuration: every problem with its file, line, column and path; a valid
 * configuration with inline sinks and a sinks_dir. Fixtures are in fixtures/conf/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "router/conf.h"
#include "sinks/sink.h"
#include "conf_expect.h"

#define SECRET "s3cr3t-Value"
#define FIX "fixtures/conf/"

static void test_syntax_error(void **state)
{
    (void)state;
    EXPECT_ERRORS(FIX "syntax.json",
                  FIX "syntax.json:5:3: JSON syntax error: unexpected token near ']'");
    EXPECT_ERRORS(FIX "dup_key.json",
                  FIX "dup_key.json:2:35: JSON syntax error: duplicate object key near '\"level\"'");
    EXPECT_ERRORS(FIX "not_object.json", FIX "not_object.json:1:1: expected an object");
    EXPECT_ERRORS(FIX "no-such-file.json",
                  FIX "no-such-file.json: cannot open: No such file or directory");
}

static void test_unknown_key(void **state)
{
    (void)state;
    EXPECT_ERRORS(FIX "unknown_key.json",
                  FIX "unknown_key.json:2:23: dead_leter_topic: unknown key \"dead_leter_topic\"; "
                      "did you mean \"dead_letter_topic\"?",
                  FIX "unknown_key.json:8:17: sinks[0].batchh: unknown key \"batchh\"; "
                      "did you mean \"batch\"?",
                  FIX "unknown_key.json:9:44: sinks[0].file.fsynk: unknown key \"fsynk\"; "
                      "did you mean \"fsync\"?");
}

static void test_wrong_type(void **state)
{
    (void)state;
    EXPECT_ERRORS(FIX "wrong_type.json",
                  FIX "wrong_type.json:2:26: shutdown_timeout_ms: expected an integer",
                  FIX "wrong_type.json:3:25: commit_interval_ms: expected an integer",
                  FIX "wrong_type.json:4:24: admin.listen: expected a string",
                  FIX "wrong_type.json:5:21: log.level: must be one of debug, info, warn, error; "
                      "did you mean \"info\"?",
                  FIX "wrong_type.json:5:38: log.format: expected one of logfmt, json",
                  FIX "wrong_type.json:7:46: sinks[0].topics: expected an array of strings",
                  FIX "wrong_type.json:7:93: sinks[0].file.fsync: expected true or false");
}

static void test_missing_required(void **state)
{
    (void)state;
    /* a missing key points at the object that lacks it */
    EXPECT_ERRORS(FIX "missing_required.json",
                  FIX "missing_required.json:3:5: sinks[0]: missing required key \"name\"",
                  FIX "missing_required.json:6:15: sinks[0].file: missing required key \"path\"",
                  FIX "missing_required.json:8:5: sinks[1]: missing required key \"type\"");
}

static void test_unknown_sink_type(void **state)
{
    struct cfg_errors errs = { 0 };

    (void)state;
    assert_null(conf_load(FIX "unknown_type.json", &errs));
    assert_int_equal(errs.n, 3);
    assert_string_equal(errs.msgs[0], FIX "unknown_type.json:3:28: sinks[0].type: "
                                          "unknown sink type \"fiel\"; did you mean \"file\"?");
    /* the list of known types grows with the sinks: only its beginning is fixed */
    assert_memory_equal(errs.msgs[1],
                        FIX "unknown_type.json:4:28: sinks[1].type: unknown sink type "
                            "\"smoke-signals\" (known types: ",
                        strlen(FIX "unknown_type.json:4:28: sinks[1].type: unknown sink type "
                                   "\"smoke-signals\" (known types: "));
    assert_non_null(strstr(errs.msgs[1], "file"));
    /* the other options of a sink of unknown type are still checked */
    assert_string_equal(errs.msgs[2], FIX "unknown_type.json:4:88: sinks[1].batch.max_records: "
                                          "must be 1..1000000");
    cfg_errors_clear(&errs);
}

static void test_duplicate_name(void **state)
{
    (void)state;
    EXPECT_ERRORS(FIX "dup/main.json",
                  FIX "dup/sinks.d/orders.json:2:11: name: duplicate sink name \"orders\" "
                      "(first declared at " FIX "dup/main.json:4)");
}

static void test_no_topics(void **state)
{
    (void)state;
    EXPECT_ERRORS(FIX "no_topics.json",
                  FIX "no_topics.json:3:46: sinks[0].topics: a sink needs at least one topic",
                  FIX "no_topics.json:4:5: sinks[1]: missing required key \"topics\"",
                  FIX "no_topics.json:5:53: sinks[2].topics[1]: must not be empty");
}

static void test_out_of_range(void **state)
{
    (void)state;
    EXPECT_ERRORS(FIX "range/main.json",
                  FIX "range/sinks.d/x.json:3:29: batch.max_records: must be 1..1000000",
                  FIX "range/sinks.d/x.json:3:45: batch.max_bytes: must be 1..1073741824",
                  FIX "range/sinks.d/x.json:3:70: batch.linger_ms: must be 0..600000",
                  FIX "range/sinks.d/x.json:4:27: max_buffered_records: must be 1..100000000");
    EXPECT_ERRORS(FIX "missing_dir/main.json",
                  FIX "missing_dir/main.json:1:16: sinks_dir: cannot open directory \""
                      FIX "missing_dir/does-not-exist\": No such file or directory");
}

static void test_backoff(void **state)
{
    (void)state;
    /* the second sink keeps the default max_backoff_ms: the message points at its "retry" */
    EXPECT_ERRORS(FIX "backoff.json",
                  FIX "backoff.json:5:64: sinks[0].retry.max_backoff_ms: "
                      "must be at least retry.initial_backoff_ms (5000)",
                  FIX "backoff.json:8:16: sinks[1].retry.max_backoff_ms: "
                      "must be at least retry.initial_backoff_ms (60000)");
}

static void test_kafka(void **state)
{
    (void)state;
    EXPECT_ERRORS(FIX "kafka.json",
                  FIX "kafka.json:3:25: kafka[\"bootstrap.server\"]: No such configuration property: "
                      "\"bootstrap.server\"; did you mean \"bootstrap.servers\"?",
                  FIX "kafka.json:4:27: kafka[\"enable.auto.commit\"]: is managed by sluice "
                      "(offsets are committed only after every sink acknowledged)",
                  FIX "kafka.json:5:33: kafka[\"enable.auto.offset.store\"]: is managed by sluice "
                      "(offsets are committed only after every sink acknowledged)",
                  FIX "kafka.json:6:27: kafka[\"session.timeout.ms\"]: Invalid value for "
                      "configuration property \"session.timeout.ms\"",
                  FIX "kafka.json:9:26: kafka[\"bootstrap.servers\"]: "
                      "expected a string, number or boolean");
}

static void test_env_missing(void **state)
{
    struct cfg_errors errs = { 0 };

    (void)state;
    setenv("SLUICE_TEST_SECRET", SECRET, 1);
    unsetenv("SLUICE_TEST_UNSET_VAR");
    assert_null(conf_load(FIX "env/missing.json", &errs));
    assert_int_equal(errs.n, 5);
    assert_string_equal(errs.msgs[0], FIX "env/missing.json:3:26: kafka[\"bootstrap.servers\"]: "
                                          "environment variable SLUICE_TEST_UNSET_VAR is not set");
    /* librdkafka repeats the value it refuses: not this one */
    assert_string_equal(errs.msgs[1], FIX "env/missing.json:4:14: kafka.debug: Invalid value "
                                          "\"***\" for configuration property \"debug\"");
    assert_string_equal(errs.msgs[2], FIX "env/missing.json:8:21: log.level: "
                                          "must be one of debug, info, warn, error");
    assert_memory_equal(errs.msgs[3], FIX "env/missing.json:11:28: sinks[1].type: unknown sink "
                                          "type \"***\" (known types: ",
                        strlen(FIX "env/missing.json:11:28: sinks[1].type: unknown sink "
                                   "type \"***\" (known types: "));
    assert_string_equal(errs.msgs[4], FIX "env/missing.json:11:64: sinks[1].topics[0]: malformed "
                                          "environment reference: write ${NAME}, or $${ for a "
                                          "literal ${");
    for (size_t i = 0; i < errs.n; i++) {
        assert_null(strstr(errs.msgs[i], SECRET));
        assert_null(strstr(errs.msgs[i], "s3cr3t"));
    }
    cfg_errors_clear(&errs);
    unsetenv("SLUICE_TEST_SECRET");
}

static void test_env_substituted(void **state)
{
    struct cfg_errors errs = { 0 };
    struct conf *conf;

    (void)state;
    setenv("SLUICE_TEST_TOKEN", SECRET, 1);
    setenv("SLUICE_TEST_BROKERS", "10.0.0.1:9092,10.0.0.2:9092", 1);
    setenv("SLUICE_TEST_SUFFIX", "v1", 1);
    conf = conf_load(FIX "env/ok.json", &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_message("%s\n", errs.msgs[i]);
    assert_non_null(conf);
    assert_int_equal(errs.n, 0);
    assert_string_equal(conf->admin_token, SECRET);
    assert_string_equal(json_string_value(json_object_get(conf->kafka, "bootstrap.servers")),
                        "10.0.0.1:9092,10.0.0.2:9092");
    assert_string_equal(json_string_value(json_object_get(conf->kafka, "group.id")), "orders-sync");
    /* "$${" is a literal "${", and a "$" alone is just a "$" */
    assert_string_equal(conf->dead_letter_topic, "dlq-${HOME}-v1$");
    conf_free(conf);
    unsetenv("SLUICE_TEST_TOKEN");
    unsetenv("SLUICE_TEST_BROKERS");
    unsetenv("SLUICE_TEST_SUFFIX");
}

static void test_defaults(void **state)
{
    struct cfg_errors errs = { 0 };
    struct conf *conf = conf_load(FIX "minimal.json", &errs);

    (void)state;
    assert_non_null(conf);
    assert_int_equal(errs.n, 0);
    assert_string_equal(conf->file, FIX "minimal.json");
    assert_int_equal(json_object_size(conf->kafka), 1);
    assert_string_equal(json_string_value(json_object_get(conf->kafka, "group.id")), "sluice");
    assert_string_equal(conf->admin_listen, "127.0.0.1:9644");
    assert_null(conf->admin_token);
    assert_string_equal(conf->dead_letter_topic, "sluice.dlq");
    assert_null(conf->sinks_dir);
    assert_int_equal(conf->log_level, LOG_INFO);
    assert_int_equal(conf->log_format, 0);
    assert_int_equal(conf->shutdown_timeout_ms, 10000);
    assert_int_equal(conf->commit_interval_ms, 1000);
    assert_int_equal(conf->nsinks, 0);
    conf_free(conf);
}

static void test_valid(void **state)
{
    struct cfg_errors errs = { 0 };
    struct conf *conf;
    struct sink *sk;

    (void)state;
    setenv("SLUICE_TEST_TOKEN", "tok-123", 1);
    conf = conf_load(FIX "valid/main.json", &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_message("%s\n", errs.msgs[i]);
    assert_non_null(conf);
    assert_int_equal(errs.n, 0);

    /* kafka: every value a string, group.id added */
    assert_int_equal(json_object_size(conf->kafka), 4);
    assert_string_equal(json_string_value(json_object_get(conf->kafka, "bootstrap.servers")),
                        "127.0.0.1:9092");
    assert_string_equal(json_string_value(json_object_get(conf->kafka, "session.timeout.ms")),
                        "6000");
    assert_string_equal(json_string_value(json_object_get(conf->kafka, "enable.partition.eof")),
                        "false");
    assert_string_equal(json_string_value(json_object_get(conf->kafka, "group.id")), "sluice");
    assert_string_equal(conf->admin_listen, "127.0.0.1:9644");
    assert_string_equal(conf->admin_token, "tok-123");
    assert_string_equal(conf->sinks_dir, FIX "valid/sinks.d");
    assert_int_equal(conf->log_level, LOG_DEBUG);

    /* inline sinks first, then the files in name order (README.md and dot files skipped) */
    assert_int_equal(conf->nsinks, 3);
    sk = conf->sinks[0];
    assert_ptr_equal(sk->ops, sink_ops_find("file"));
    assert_string_equal(sk->name, "inline-orders");
    assert_string_equal(sk->type, "file");
    assert_int_equal(sk->topics.n, 2);
    assert_string_equal(sk->topics.v[0], "orders.v1");
    assert_string_equal(sk->topics.v[1], "orders.v2");
    assert_int_equal(sk->batch.max_records, 100);
    assert_int_equal(sk->batch.max_bytes, 1048576);
    assert_int_equal(sk->batch.linger_ms, 10);
    assert_int_equal(sk->retry.max_attempts, 10);
    assert_int_equal(sk->retry.initial_backoff_ms, 100);
    assert_int_equal(sk->retry.max_backoff_ms, 30000);
    assert_null(sk->filter);
    assert_int_equal(sk->on_failure, SINK_ON_FAILURE_DEAD_LETTER);
    assert_int_equal(sk->max_buffered_records, 100000);
    assert_string_equal(sk->conf_file, FIX "valid/main.json");
    assert_string_equal(sk->conf_path, "sinks[0]");

    sk = conf->sinks[1];
    assert_string_equal(sk->name, "audit");
    assert_string_equal(sk->conf_file, FIX "valid/sinks.d/a-audit.json");
    assert_string_equal(sk->conf_path, "");
    assert_int_equal(sk->batch.max_records, 500);

    sk = conf->sinks[2];
    assert_string_equal(sk->name, "customers");
    assert_string_equal(sk->conf_file, FIX "valid/sinks.d/b-customers.json");
    assert_int_equal(sk->retry.max_attempts, 3);
    assert_int_equal(sk->retry.initial_backoff_ms, 50);
    assert_int_equal(sk->retry.max_backoff_ms, 50);
    assert_int_equal(sk->on_failure, SINK_ON_FAILURE_BLOCK);
    assert_non_null(sk->filter);
    assert_string_equal(json_string_value(json_object_get(sk->filter, "equals")), "active");
    conf_free(conf);
    unsetenv("SLUICE_TEST_TOKEN");
}

static void test_free_partial(void **state)
{
    const struct sink_ops *ops = sink_ops_find("file");
    struct sink *sk;

    (void)state;
    conf_free(NULL);
    conf_sink_free(NULL);
    assert_non_null(ops);
    sk = calloc(1, ops->size);
    assert_non_null(sk);
    sk->ops = ops;
    sk->name = strdup("half-built");
    sk->filter = json_object();
    conf_sink_free(sk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_unknown_sink_type),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_no_topics),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_kafka),
        cmocka_unit_test(test_env_missing),
        cmocka_unit_test(test_env_substituted),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_free_partial),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
