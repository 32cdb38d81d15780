/* The loader's isolation of sink files (issue 15): a broken file of sinks_dir set aside with its
 * messages while the others load; one sink file checked alone or among a configuration's sinks;
 * --env-optional; masking of secret values only; a type's checks reported with the common ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "router/conf.h"
#include "sinks/sink.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/sluice-conf-iso.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    put("main.json", "{ \"sinks_dir\": \"sinks.d\" }\n");
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/sinks.d");
    if (mkdir(dir, 0700) != 0)
        return -1;
    put("a.json", "{ \"name\": \"a\", \"type\": \"file\", \"topics\": [\"t\"], \"owner\": \"team-a\",\n"
                  "  \"description\": \"all of t\", \"file\": { \"path\": \"/tmp/a\" } }\n");
    put("broken.json", "{ \"name\": \"b\", \"type\": \"file\" \"topics\": [\"t\"] }\n");
    put("c.json", "{ \"name\": \"a\", \"type\": \"file\", \"topics\": [\"t\"], \"file\": { \"path\": \"/tmp/c\" } }\n");
    put("d.json", "{ \"name\": \"d\", \"type\": \"file\", \"topics\": [\"t\"],\n"
                  "  \"file\": { \"path\": \"${SLUICE_ISO_UNSET}/d\" } }\n");
    dir[strlen(dir) - strlen("/sinks.d")] = '\0';
    unsetenv("SLUICE_ISO_UNSET");
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *path_of(const char *name)
{
    static char path[256];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void test_isolated(void **state)
{
    struct conf_load_opts opts = { .isolate = 1 };
    struct cfg_errors errs = { 0 };
    struct conf *conf;
    char want[512];

    (void)state;
    conf = conf_load_with(path_of("main.json"), &opts, &errs);
    assert_non_null(conf);
    assert_int_equal(errs.n, 0);
    assert_int_equal(conf->nsinks, 1);
    assert_string_equal(conf->sinks[0]->name, "a");
    assert_string_equal(conf->sinks[0]->owner, "team-a");
    assert_string_equal(conf->sinks[0]->description, "all of t");
    assert_int_equal(conf->ninvalid, 3);
    /* not JSON: the name cannot be read, the file's stands for it */
    assert_string_equal(conf->invalid[0].name, "broken.json");
    assert_int_equal(conf->invalid[0].nmessages, 1);
    snprintf(want, sizeof want, "%s/sinks.d/broken.json:1:38: JSON syntax error: '}' expected near '\"topics\"'", dir);
    assert_string_equal(conf->invalid[0].messages[0], want);
    /* its name is a running sink's: the file's name, so that each series names one sink */
    assert_string_equal(conf->invalid[1].name, "c.json");
    snprintf(want, sizeof want, "%s/sinks.d/c.json:1:11: name: duplicate sink name \"a\" (first declared at %s/sinks.d/a.json:1)",
             dir, dir);
    assert_string_equal(conf->invalid[1].messages[0], want);
    assert_string_equal(conf->invalid[2].name, "d");
    assert_int_equal(conf->invalid[2].nmessages, 1);   /* the unset variable, not the placeholder's checks */
    snprintf(want, sizeof want, "%s/sinks.d/d.json:2:21: file.path: environment variable SLUICE_ISO_UNSET is not set", dir);
    assert_string_equal(conf->invalid[2].messages[0], want);
    conf_free(conf);
}

static void test_strict(void **state)
{
    struct cfg_errors errs = { 0 };

    (void)state;
    assert_null(conf_load_with(path_of("main.json"), NULL, &errs));
    assert_int_equal(errs.n, 3);
    cfg_errors_clear(&errs);
}

static void test_check_sink_file(void **state)
{
    struct conf_load_opts env_optional = { .env_optional = 1 };
    struct cfg_errors errs = { 0 };
    char sink[256];

    (void)state;
    snprintf(sink, sizeof sink, "%s/sinks.d/a.json", dir);
    /* a.json lies in main.json's sinks_dir: it is not a duplicate of itself */
    assert_int_equal(conf_check_sink_file(sink, path_of("main.json"), NULL, &errs, NULL), 0);
    assert_int_equal(conf_check_sink_file(sink, NULL, NULL, &errs, NULL), 0);
    snprintf(sink, sizeof sink, "%s/sinks.d/c.json", dir);
    assert_int_equal(conf_check_sink_file(sink, NULL, NULL, &errs, NULL), 0);   /* alone: no duplicate */
    assert_int_equal(conf_check_sink_file(sink, path_of("main.json"), NULL, &errs, NULL), -1);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], "duplicate sink name \"a\" (first declared in "));
    cfg_errors_clear(&errs);
    snprintf(sink, sizeof sink, "%s/sinks.d/d.json", dir);
    assert_int_equal(conf_check_sink_file(sink, NULL, NULL, &errs, NULL), -1);
    cfg_errors_clear(&errs);
    assert_int_equal(conf_check_sink_file(sink, NULL, &env_optional, &errs, NULL), 0);
    assert_int_equal(errs.n, 0);
}

/* A webhook's secret left unset: under env_optional neither "not set" nor "not whsec_"; a
 * structural problem still is one. */
static void test_env_optional_secret(void **state)
{
    struct conf_load_opts env_optional = { .env_optional = 1 };
    struct cfg_errors errs = { 0 };

    (void)state;
    put("hook.json", "{ \"name\": \"h\", \"type\": \"webhook\", \"topics\": [\"t\"],\n"
                     "  \"webhook\": { \"url\": \"https://example.com/h\", \"secret\": \"${SLUICE_ISO_UNSET}\" } }\n");
    assert_int_equal(conf_check_sink_file(path_of("hook.json"), NULL, &env_optional, &errs, NULL), 0);
    assert_int_equal(conf_check_sink_file(path_of("hook.json"), NULL, NULL, &errs, NULL), -1);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], "webhook.secret: environment variable SLUICE_ISO_UNSET is not set"));
    cfg_errors_clear(&errs);
    put("hook.json", "{ \"name\": \"h\", \"type\": \"webhook\", \"topics\": [\"t\"], \"batch\": { \"max_records\": 0 },\n"
                     "  \"webhook\": { \"url\": \"ftp://example.com/h\", \"secret\": \"${SLUICE_ISO_UNSET}\" } }\n");
    assert_int_equal(conf_check_sink_file(path_of("hook.json"), NULL, &env_optional, &errs, NULL), -1);
    /* the common option and the type's own check, at once */
    assert_int_equal(errs.n, 2);
    assert_non_null(strstr(errs.msgs[0], ":1:78: batch.max_records: must be 1..1000000"));
    assert_non_null(strstr(errs.msgs[1], ":2:23: webhook.url: url must be an http:// or https:// URL"));
    cfg_errors_clear(&errs);
}

/* Only values of secret options are masked: a user name stays readable, even inside a word. */
static void test_masking(void **state)
{
    struct cfg_errors errs = { 0 };

    (void)state;
    setenv("SLUICE_ISO_USER", "text", 1);
    setenv("SLUICE_ISO_PASS", "plaintextual", 1);
    put("user.json", "{ \"kafka\": { \"sasl.username\": \"${SLUICE_ISO_USER}\", \"security.protocol\": \"plaintextual\" } }\n");
    assert_null(conf_load(path_of("user.json"), &errs));
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], "Invalid value \"plaintextual\""));
    cfg_errors_clear(&errs);
    put("pass.json", "{ \"kafka\": { \"sasl.password\": \"${SLUICE_ISO_PASS}\", \"security.protocol\": \"plaintextual\" } }\n");
    assert_null(conf_load(path_of("pass.json"), &errs));
    assert_int_equal(errs.n, 1);
    assert_null(strstr(errs.msgs[0], "plaintextual"));
    assert_non_null(strstr(errs.msgs[0], "Invalid value \"***\""));
    cfg_errors_clear(&errs);
    unsetenv("SLUICE_ISO_USER");
    unsetenv("SLUICE_ISO_PASS");
}

/* A key in the wrong place is named as such; a near name is suggested only when it is close for
 * its length ("ttl" is 2 edits from "url": no longer suggested). */
static void test_misplaced_and_suggested(void **state)
{
    struct cfg_errors errs = { 0 };

    (void)state;
    put("misplaced.json", "{ \"name\": \"r\", \"type\": \"redis\", \"topics\": [\"t\"], \"ttl_s\": 5,\n"
                          "  \"redis\": { \"url\": \"redis://h\", \"key\": \"k\", \"ttl\": 5, \"batch\": {} } }\n");
    assert_int_equal(conf_check_sink_file(path_of("misplaced.json"), NULL, NULL, &errs, NULL), -1);
    assert_int_equal(errs.n, 3);
    assert_non_null(strstr(errs.msgs[0], ":1:59: ttl_s: \"ttl_s\" is an option of the \"redis\" section, not of the sink itself"));
    assert_non_null(strstr(errs.msgs[1], ":2:53: redis.ttl: unknown key \"ttl\"; did you mean \"ttl_s\"?"));
    assert_non_null(strstr(errs.msgs[2], ":2:65: redis.batch: \"batch\" is an option of the sink itself, not of its \"redis\" section"));
    cfg_errors_clear(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolated),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_check_sink_file),
        cmocka_unit_test(test_env_optional_secret),
        cmocka_unit_test(test_masking),
        cmocka_unit_test(test_misplaced_and_suggested),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
