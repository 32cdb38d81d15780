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

/* A record's key and value from a fuzz input: [KEY 0x1F] VALUE (no 0x1F: no key). */
#define FUZZ_SPLIT_RECORD(rec, data, size)                                                   \
    do {                                                                                     \
        const char *text_ = (const char *)(data), *sep_ = memchr(text_, 0x1f, (size));       \
        if (sep_) {                                                                          \
            (rec)->key = text_;                                                              \
            (rec)->key_len = (size_t)(sep_ - text_);                                         \
            (rec)->value = sep_ + 1;                                                         \
            (rec)->value_len = (size) - (rec)->key_len - 1;                                  \
        } else {                                                                             \
            (rec)->value = text_;                                                            \
            (rec)->value_len = (size);                                                       \
        }                                                                                    \
    } while (0)

#endif
