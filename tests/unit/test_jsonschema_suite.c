/* lib/jsonschema.c against the official JSON Schema Test Suite (Debian's json-schema-test-suite,
 * draft7, plus optional/format). A test group is skipped only when its schema is refused as
 * "not supported" (a keyword, a remote $ref) or "unsupported format"; every other case must get the suite's
 * verdict. The suite's directory comes from JSON_SCHEMA_TEST_SUITE (the draft7 directory) or
 * the Debian default; a missing suite fails the test (tools/setup.sh installs it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "lib/jsonschema.h"

#define DEFAULT_SUITE "/usr/share/json-schema-test-suite/tests/draft7"

struct tally {
    int groups, tests, wrong, skipped;
    char skipped_list[16384];
    size_t skipped_len;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_file(const char *dir, const char *name, struct tally *t)
{
    char path[1024], err[512];
    json_error_t jerr;
    json_t *groups, *group;
    size_t gi;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    groups = json_load_file(path, 0, &jerr);
    if (!groups)
        fail_msg("%s: %s", path, jerr.text);
    json_array_foreach(groups, gi, group) {
        const char *description = json_string_value(json_object_get(group, "description"));
        struct jsonschema *s = jsonschema_compile(json_object_get(group, "schema"), err, sizeof err);
        json_t *test;
        size_t ti;

        if (!s) {
            if (!strstr(err, "not supported") && !strstr(err, "unsupported format")) {
                printf("WRONG %s: \"%s\": compile failed: %s\n", name, description, err);
                t->wrong++;
                continue;
            }
            t->skipped++;
            t->skipped_len += (size_t)snprintf(t->skipped_list + t->skipped_len,
                                               sizeof t->skipped_list - t->skipped_len, "  %s:%s  [%s]\n", name,
                                               description, err);
            if (t->skipped_len >= sizeof t->skipped_list)
                t->skipped_len = sizeof t->skipped_list - 1;
            continue;
        }
        t->groups++;
        json_array_foreach(json_object_get(group, "tests"), ti, test) {
            struct jsonschema_violation v;
            int expected = json_is_true(json_object_get(test, "valid"));
            int got = jsonschema_validate(s, json_object_get(test, "data"), &v);
            t->tests++;
            if (got != expected) {
                printf("WRONG %s: \"%s\" / \"%s\": expected %d, got %d (%s)\n", name, description,
                       json_string_value(json_object_get(test, "description")), expected, got, v.reason);
                t->wrong++;
            } else if (got == 0) {
                assert_true(v.reason[0] != '\0' && v.keyword[0] != '\0' && v.path[0] == '$');
                assert_null(strchr(v.reason, '\n'));
            }
        }
        jsonschema_free(s);
    }
    json_decref(groups);
}

/* Every *.json of @p dir in name order; returns how many files ran. */
static int run_dir(const char *dir, const char *label, struct tally *t)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char *names[256];
    int n = 0;

    if (!d)
        fail_msg("%s: the JSON Schema Test Suite is missing (tools/setup.sh installs json-schema-test-suite)", dir);
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    for (int i = 0; i < n; i++) {
        run_file(dir, names[i], t);
        free(names[i]);
    }
    printf("%s: %d groups, %d tests run, %d groups skipped:\n%.*s", label, t->groups, t->tests, t->skipped,
           (int)t->skipped_len, t->skipped_list);
    return n;
}

static const char *suite_dir(void)
{
    const char *dir = getenv("JSON_SCHEMA_TEST_SUITE");
    return dir && *dir ? dir : DEFAULT_SUITE;
}

static void test_draft7(void **state)
{
    static struct tally t;   /* the skipped list is large */
    (void)state;
    memset(&t, 0, sizeof t);
    assert_true(run_dir(suite_dir(), "draft7", &t) >= 30);
    assert_int_equal(t.wrong, 0);
    assert_true(t.tests > 350);   /* the suite ran, not a stub of it */
}

static void test_draft7_formats(void **state)
{
    static struct tally t;
    char dir[1024];
    (void)state;
    memset(&t, 0, sizeof t);
    snprintf(dir, sizeof dir, "%s/optional/format", suite_dir());
    assert_true(run_dir(dir, "draft7/optional/format", &t) >= 5);
    assert_int_equal(t.wrong, 0);
    assert_true(t.tests > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draft7),
        cmocka_unit_test(test_draft7_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
