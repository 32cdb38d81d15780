/* router/metrics.c: the process_* families read from /proc, and histograms as Prometheus shows them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "router/metrics.h"

/* Renders metrics_process into a string (the caller frees it). */
static char *render_process(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_non_null(out);
    metrics_process(out);
    fclose(out);
    return text;
}

/* The value of the sample line "NAME VALUE"; fails when absent. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, name, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    fail_msg("no sample %s in:\n%s", name, text);
    return -1;
}

static void test_process_fds_follow_the_process(void **state)
{
    struct rlimit saved, lim;
    char *before, *after;
    int fds[3];
    (void)state;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    lim = saved;
    lim.rlim_cur = saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 777 ? saved.rlim_max : 777;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);

    before = render_process();
    for (int i = 0; i < 3; i++)
        assert_true((fds[i] = open("/dev/null", O_RDONLY)) >= 0);
    after = render_process();
    assert_int_equal((long)sample(after, "process_open_fds"), (long)sample(before, "process_open_fds") + 3);
    assert_int_equal((long)sample(after, "process_max_fds"), (long)lim.rlim_cur);

    for (int i = 0; i < 3; i++)
        close(fds[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    free(before);
    free(after);
}

static void test_process_times(void **state)
{
    char *text = render_process();
    double start = sample(text, "process_start_time_seconds"), now = (double)time(NULL);
    (void)state;

    /* This test program started moments ago (clock ticks: 10 ms resolution). */
    assert_true(start <= now + 1 && start >= now - 60);
    assert_true(sample(text, "process_cpu_seconds_total") >= 0);
    assert_true(sample(text, "process_resident_memory_bytes") > 0);
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "# TYPE process_start_time_seconds gauge\n"));
    free(text);
}

static void test_histogram_cumulative(void **state)
{
    static const double bounds[] = { 0.01, 1, 10 };
    struct histogram h;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    (void)state;

    histogram_init(&h, bounds, 3);
    histogram_observe(&h, 0.01);    /* on a bound: counted in it */
    histogram_observe(&h, 0.5);
    histogram_observe(&h, 0.7);
    histogram_observe(&h, 1000);    /* above every bound: +Inf only */
    metrics_histogram(out, "x", "sink=\"a\"", &h);
    fclose(out);
    assert_string_equal(text,
        "x_bucket{sink=\"a\",le=\"0.01\"} 1\n"
        "x_bucket{sink=\"a\",le=\"1\"} 3\n"
        "x_bucket{sink=\"a\",le=\"10\"} 3\n"
        "x_bucket{sink=\"a\",le=\"+Inf\"} 4\n"
        "x_sum{sink=\"a\"} 1001.210000\n"
        "x_count{sink=\"a\"} 4\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_fds_follow_the_process),
        cmocka_unit_test(test_process_times),
        cmocka_unit_test(test_histogram_cumulative),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
