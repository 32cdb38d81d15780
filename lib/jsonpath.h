/* JSON paths into record values: "$" (the whole document), "$.a.b", "$.items[0]",
 * "$[\"odd key\"]". Compiled once at start, evaluated per record: on a jansson tree
 * (jsonpath_get, the router) or on the text itself (json_lookup in json.h, the sinks). */
#ifndef SLUICE_JSONPATH_H
#define SLUICE_JSONPATH_H

#include <stddef.h>
#include <jansson.h>

struct jsonpath;

/* One step: an object member (key, key_len), or an array index when key is NULL. */
struct jsonpath_step {
    char *key;
    size_t key_len;
    size_t index;
};

/** @brief Compile @p expr; NULL with the reason in @p err when it is not a valid path. */
struct jsonpath *jsonpath_compile(const char *expr, char *err, size_t errlen);

/** @brief The value at @p path in @p doc (borrowed), or NULL when absent. */
json_t *jsonpath_get(const struct jsonpath *path, json_t *doc);

/** @brief The number of steps (0 for "$") and the steps themselves. */
size_t jsonpath_nsteps(const struct jsonpath *path);
const struct jsonpath_step *jsonpath_steps(const struct jsonpath *path);

void jsonpath_free(struct jsonpath *path);

#endif
