/* Allocation failures: every allocation the configuration loader and the filters make is failed
 * in turn (the Nth one, for N = 0, 1, 2, ... until a run makes no more), and each run must end
 * cleanly: a configuration or an error, never a crash, and no leak (ASan and valgrind check). The
 * test is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc so the calls of sluice's own
 * code come here. jansson's allocations are left alone: json_loadb itself frees an invalid
 * pointer when its allocator fails midway (jansson 2.14), which is not ours to test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "lib/avro.h"
#include "router/conf.h"
#include "router/filter.h"
#include "sinks/sink.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);

static long fail_at = -1;      /* the allocation to fail, counting from 0; -1: none */
static long allocations;

static int should_fail(void)
{
    return fail_at >= 0 && allocations++ == fail_at;
}

void *__wrap_malloc(size_t size)
{
    return should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return should_fail() ? NULL : __real_realloc(p, size);
}

/* Runs @p fn with the 0th, 1st, ... allocation failing until a run has fewer allocations than
 * the failure point, i.e. ran to its end untouched. Returns how many runs were made. */
static long sweep(int (*fn)(void))
{
    long n;
    for (n = 0;; n++) {
        allocations = 0;
        fail_at = n;
        fn();
        fail_at = -1;
        if (allocations <= n)
            break;
    }
    return n;
}

/* 1 when @p file loads, 0 when it is refused. */
static int load_config(const char *file)
{
    struct cfg_errors errs = { 0 };
    struct conf *conf = conf_load(file, &errs);
    int ok = conf != NULL;
    conf_free(conf);
    cfg_errors_clear(&errs);
    return ok;
}

static int load_valid_config(void)
{
    return load_config("fixtures/conf/valid/main.json");
}

static int load_broken_config(void)
{
    return !load_config("fixtures/conf/dup/main.json");
}

/* The YAML forms: libyaml's own allocations are not ours (a shared library), the reader's are. */
static int load_valid_yaml(void)
{
    return load_config("fixtures/yaml/valid/main.yaml");
}

static int load_broken_yaml(void)
{
    return !load_config("fixtures/yaml/bad/main.yaml");
}

/* The broken sink file set aside (its messages kept), then the same file checked alone against
 * the main file; 1 when both came out as without failures. */
static int load_isolated_config(void)
{
    struct conf_load_opts opts = { .isolate = 1, .env_optional = 1 };
    struct cfg_errors errs = { 0 };
    struct conf *conf = conf_load_with("fixtures/conf/dup/main.json", &opts, &errs);
    int ok = conf && conf->nsinks == 1 && conf->ninvalid == 1 && conf->invalid[0].nmessages == 1;

    conf_free(conf);
    cfg_errors_clear(&errs);
    ok &= conf_check_sink_file("fixtures/conf/dup/sinks.d/orders.json", "fixtures/conf/dup/main.json", &opts,
                               &errs, NULL) == -1 && errs.n == 1;
    cfg_errors_clear(&errs);
    return ok;
}

static int compile_filter(void)
{
    json_error_t jerr;
    json_t *spec = json_loads("{\"any\": [{\"path\": \"$.a.b[2]\", \"in\": [1, \"x\"]},"
                              " {\"not\": {\"path\": \"$[\\\"odd key\\\"]\", \"exists\": true}}]}", 0, &jerr);
    char err[256];
    struct filter *f = spec ? filter_compile(spec, err, sizeof err) : NULL;
    json_t *doc = json_loads("{\"a\": {\"b\": [0, 0, \"x\"]}}", 0, &jerr);
    int matched = f && doc ? filter_match(f, doc) : -1;
    filter_free(f);
    json_decref(spec);
    json_decref(doc);
    return matched;
}

/* An Avro schema with references, named types, recursion and logical types, then a datum
 * decoded into a fresh buffer: 1 when the JSON is right, 0 on a clean failure. */
static int compile_and_decode_avro(void)
{
    static const char ref[] = "{\"type\":\"enum\",\"name\":\"Tier\",\"namespace\":\"c\",\"symbols\":[\"A\",\"B\"]}";
    static const char schema[] =
        "{\"type\":\"record\",\"name\":\"N\",\"namespace\":\"c\",\"fields\":["
        "{\"name\":\"t\",\"type\":\"Tier\"},{\"name\":\"s\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
        "{\"name\":\"d\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":4,\"scale\":2}},"
        "{\"name\":\"next\",\"type\":[\"null\",\"N\"]}]}";
    static const uint8_t datum[] = { 2, 2, 2, 'x', 0, 4, 0x04, 0xce, 0 };
    struct avro_named_schema refs[] = { { ref, sizeof ref - 1 } };
    char err[256];
    struct avro_schema *s = avro_schema_compile(schema, sizeof schema - 1, refs, 1, err, sizeof err);
    struct buf out = { 0 };
    int ok = s && avro_decode_json(s, datum, sizeof datum, 0, NULL, &out, err, sizeof err) == 0 &&
             strcmp(out.p, "{\"t\":\"B\",\"s\":[\"x\"],\"d\":12.30,\"next\":null}") == 0;

    buf_free(&out);
    avro_schema_free(s);
    return ok;
}

static void test_config_loader_survives_every_allocation_failure(void **state)
{
    (void)state;
    setenv("SLUICE_TEST_TOKEN", "chaos-token", 1);
    assert_true(load_valid_config());          /* sanity: it loads without failures */
    long runs = sweep(load_valid_config);
    print_message("config loader: %ld allocation failure points\n", runs);
    assert_true(runs >= 20);                   /* the sweep really went through the loader */
    assert_true(load_valid_config());
}

static void test_config_errors_survive_every_allocation_failure(void **state)
{
    (void)state;
    assert_true(load_broken_config());
    assert_true(sweep(load_broken_config) >= 10);
}

static void test_yaml_config_survives_every_allocation_failure(void **state)
{
    (void)state;
    setenv("SLUICE_TEST_TOKEN", "chaos-token", 1);
    assert_true(load_valid_yaml());
    long runs = sweep(load_valid_yaml);
    print_message("YAML config loader: %ld allocation failure points\n", runs);
    assert_true(runs >= 20);
    assert_true(load_valid_yaml());
    assert_true(load_broken_yaml());
    assert_true(sweep(load_broken_yaml) >= 10);
}

static void test_isolated_sink_files_survive_every_allocation_failure(void **state)
{
    (void)state;
    assert_true(load_isolated_config());
    assert_true(sweep(load_isolated_config) >= 20);
    assert_true(load_isolated_config());
}

static void test_filters_survive_every_allocation_failure(void **state)
{
    (void)state;
    assert_int_equal(compile_filter(), 1);
    long runs = sweep(compile_filter);
    print_message("filter: %ld allocation failure points\n", runs);
    assert_true(runs >= 5);
    assert_int_equal(compile_filter(), 1);
}

static void test_avro_survives_every_allocation_failure(void **state)
{
    (void)state;
    assert_int_equal(compile_and_decode_avro(), 1);
    long runs = sweep(compile_and_decode_avro);
    print_message("avro: %ld allocation failure points\n", runs);
    assert_true(runs >= 5);
    assert_int_equal(compile_and_decode_avro(), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_loader_survives_every_allocation_failure),
        cmocka_unit_test(test_config_errors_survive_every_allocation_failure),
        cmocka_unit_test(test_yaml_config_survives_every_allocation_failure),
        cmocka_unit_test(test_isolated_sink_files_survive_every_allocation_failure),
        cmocka_unit_test(test_filters_survive_every_allocation_failure),
        cmocka_unit_test(test_avro_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
