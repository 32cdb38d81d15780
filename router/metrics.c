#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics.h"

const double metrics_latency_bounds[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
                                         900, 3600, 21600 };   /* a parked sink's backlog can be hours old */
const size_t metrics_latency_nbounds = sizeof metrics_latency_bounds / sizeof metrics_latency_bounds[0];
const double metrics_batch_bounds[] = { 1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000 };
const size_t metrics_batch_nbounds = sizeof metrics_batch_bounds / sizeof metrics_batch_bounds[0];

void histogram_init(struct histogram *h, const double *bounds, size_t nbounds)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->nbounds = nbounds < HISTOGRAM_MAX_BUCKETS ? nbounds : HISTOGRAM_MAX_BUCKETS;
}

void histogram_observe(struct histogram *h, double value)
{
    for (size_t i = 0; i < h->nbounds; i++)
        if (value <= h->bounds[i]) {
            h->counts[i]++;
            break;
        }
    h->count++;
    h->sum += value;
}

void metrics_family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_histogram(FILE *out, const char *name, const char *labels, const struct histogram *h)
{
    uint64_t cumulative = 0;
    const char *sep = labels && labels[0] ? "," : "";

    for (size_t i = 0; i < h->nbounds; i++) {
        cumulative += h->counts[i];
        fprintf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels ? labels : "", sep, h->bounds[i],
                (unsigned long long)cumulative);
    }
    fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels ? labels : "", sep, (unsigned long long)h->count);
    fprintf(out, "%s_sum{%s} %.6f\n", name, labels ? labels : "", h->sum);
    fprintf(out, "%s_count{%s} %llu\n", name, labels ? labels : "", (unsigned long long)h->count);
}

void metrics_label_escape(char *out, size_t outlen, const char *value)
{
    size_t o = 0;
    for (const char *p = value; *p && o + 3 < outlen; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* /proc/self/stat after the command name (which may hold spaces and parentheses): field 14
 * (utime) and 15 (stime) in clock ticks, 22 (starttime) in ticks since boot. */
static int proc_self_times(double *cpu_s, double *start_since_boot_s)
{
    char line[1024];
    const char *p;
    unsigned long long utime, stime, start;
    long ticks = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/self/stat", "r");
    int ok;

    if (!f)
        return -1;
    ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!ok || ticks <= 0 || !(p = strrchr(line, ')')))
        return -1;
    /* After ")": state (3), then fields 4..13 skipped, 14 utime, 15 stime, 16..21 skipped, 22. */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
               &utime, &stime, &start) != 3)
        return -1;
    *cpu_s = (double)(utime + stime) / (double)ticks;
    *start_since_boot_s = (double)start / (double)ticks;
    return 0;
}

/* The boot time in seconds since the epoch ("btime" in /proc/stat). */
static long long boot_time_s(void)
{
    char line[256];
    long long btime = -1;
    FILE *f = fopen("/proc/stat", "r");

    if (!f)
        return -1;
    while (btime < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &btime) != 1)
            btime = -1;
    fclose(f);
    return btime;
}

static long long open_fds(void)
{
    long long n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the directory's own descriptor */
}

static long long resident_bytes(void)
{
    long long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%lld %lld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

void metrics_process(FILE *out)
{
    double cpu_s, start_s;
    long long boot = boot_time_s(), fds = open_fds(), rss = resident_bytes();
    struct rlimit lim;

    /* A value that cannot be read is left out rather than shown as a wrong number. */
    if (proc_self_times(&cpu_s, &start_s) == 0) {
        metrics_family(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        fprintf(out, "process_cpu_seconds_total %.2f\n", cpu_s);
        if (boot >= 0) {
            metrics_family(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
            fprintf(out, "process_start_time_seconds %.2f\n", (double)boot + start_s);
        }
    }
    if (fds >= 0) {
        metrics_family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
        fprintf(out, "process_open_fds %lld\n", fds);
    }
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        metrics_family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        if (lim.rlim_cur == RLIM_INFINITY)
            fprintf(out, "process_max_fds +Inf\n");
        else
            fprintf(out, "process_max_fds %llu\n", (unsigned long long)lim.rlim_cur);
    }
    if (rss >= 0) {
        metrics_family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        fprintf(out, "process_resident_memory_bytes %lld\n", rss);
    }
}
