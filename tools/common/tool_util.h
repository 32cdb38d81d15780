/* Helpers the test tools (mock-kafka, http-receiver) share. */
#ifndef SLUICE_TOOL_UTIL_H
#define SLUICE_TOOL_UTIL_H

#include <stddef.h>

/** @brief Whole-string decimal integer in [min, max] into *out; 0 on success, -1 otherwise. */
int tool_parse_long(const char *s, long min, long max, long *out);

/** @brief Writes text and a newline to path through a temporary name and a rename, so a reader
 *  (a test waiting for a port or bootstrap file) never sees half of it; 0 or -1 with err set. */
int tool_write_file_atomic(const char *path, const char *text, char *err, size_t errlen);

#endif
