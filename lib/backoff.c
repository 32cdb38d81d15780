#include <stdlib.h>

#include "backoff.h"

int64_t backoff_full_jitter(unsigned attempt, int64_t base_ms, int64_t cap_ms)
{
    int64_t ceiling = base_ms;

    for (unsigned i = 1; i < attempt && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    if (ceiling <= base_ms)
        return ceiling;
    /* random() is enough: the spread matters, not unpredictability. */
    return base_ms + (int64_t)((uint64_t)random() % (uint64_t)(ceiling - base_ms + 1));
}
