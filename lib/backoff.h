#ifndef SLUICE_BACKOFF_H
#define SLUICE_BACKOFF_H

#include <stdint.h>

/**
 * @brief Full-jitter backoff before retry number @p attempt (1 = the first retry): a random
 * delay in [base, min(cap, base * 2^(attempt-1))] milliseconds, so that many sinks retrying
 * the same failed target spread out instead of hammering it in step.
 */
int64_t backoff_full_jitter(unsigned attempt, int64_t base_ms, int64_t cap_ms);

#endif
