/* The fuzz targets' assertion: a broken promise aborts, which libFuzzer reports as a finding
 * with the input that caused it. */
#ifndef SLUICE_FUZZ_CHECK_H
#define SLUICE_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);        \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

#endif
