/* Counters and histograms kept by the router, and the Prometheus text format they are shown in. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HISTOGRAM_MAX_BUCKETS 20

/* A cumulative histogram as Prometheus shows it: counts per upper bound, plus +Inf. */
struct histogram {
    const double *bounds;           /* increasing upper bounds, static */
    size_t nbounds;
    uint64_t counts[HISTOGRAM_MAX_BUCKETS];   /* counts[i]: observations <= bounds[i] only */
    uint64_t count;
    double sum;
};

extern const double metrics_latency_bounds[];      /* seconds: 1 ms .. 6 h */
extern const size_t metrics_latency_nbounds;
extern const double metrics_batch_bounds[];        /* records per batch: 1 .. 10,000 */
extern const size_t metrics_batch_nbounds;

void histogram_init(struct histogram *h, const double *bounds, size_t nbounds);
void histogram_observe(struct histogram *h, double value);

/** @brief Print "# HELP" and "# TYPE" for a family, once before its samples. */
void metrics_family(FILE *out, const char *name, const char *type, const char *help);

/** @brief Print the buckets, sum and count of @p h with the label text @p labels ("a=\"x\""). */
void metrics_histogram(FILE *out, const char *name, const char *labels, const struct histogram *h);

/** @brief The process_* families Prometheus client libraries export (CPU, start time, open and
 * maximum file descriptors, resident memory), read from /proc. */
void metrics_process(FILE *out);

/** @brief Escape a label value (backslash, quote, newline) into @p out. */
void metrics_label_escape(char *out, size_t outlen, const char *value);

#endif
