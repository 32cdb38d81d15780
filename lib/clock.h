#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

/* Time in milliseconds, and libevent delays. Inline: the loop reads the clock per record and
 * per request, and these were copied into each file that needed them. */

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/** @brief A zero delay: an event added with it runs on the next turn of the loop. */
static const struct timeval ZERO_TV = { 0, 0 };

/** @brief Milliseconds on the monotonic clock: for deadlines and durations. */
static inline int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** @brief Milliseconds since the epoch: for times people and Kafka timestamps compare with. */
static inline int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** @brief @p ms as a timeval for event_add/evtimer_add. */
static inline struct timeval ms_to_tv(int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    return tv;
}

#endif
