#include <string.h>

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
