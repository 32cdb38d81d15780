/* JSON paths into record values: "$" (the whole document), "$.a.b", "$.items[0]",
 * "$[\"odd key\"]". Compiled once at start, evaluated per record. */
#ifndef SLUICE_JSONPATH_H
#define SLUICE_JSONPATH_H

#include <stddef.h>
#include <jansson.h>

struct jsonpath;

/** @brief Compile @p expr; NULL with the reason in @p err when it is not a valid path. */
struct jsonpath *jsonpath_compile(const char *expr, char *err, size_t errlen);

/** @brief The value at @p path in @p doc (borrowed), or NULL when absent. */
json_t *jsonpath_get(const struct jsonpath *path, json_t *doc);

void jsonpath_free(struct jsonpath *path);

#endif
