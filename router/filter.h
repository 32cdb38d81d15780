/* Per-sink record filters, evaluated by the router before a record is batched:
 *   {"path": "$.status", "equals": "active"}      the value at path equals a JSON value
 *   {"path": "$.country", "in": ["DE", "FR"]}     ... is one of these values
 *   {"path": "$.deleted_at", "exists": false}     ... is (not) present (null counts as present)
 *   {"all": [f, ...]}, {"any": [f, ...]}, {"not": f}
 * A record that does not pass is skipped by that sink (its offset counts as done).
 * Tombstones always pass: a delete must reach the target whatever the filter says. */
#ifndef SLUICE_FILTER_H
#define SLUICE_FILTER_H

#include <stddef.h>
#include <jansson.h>

struct filter;

/** @brief Check a filter's configuration; 0 when valid, else -1 with the reason. */
int filter_validate(const json_t *spec, char *err, size_t errlen);

/** @brief Compile a validated filter; NULL with the reason in @p err on failure. */
struct filter *filter_compile(const json_t *spec, char *err, size_t errlen);

/** @brief 1 when @p doc passes, 0 when not. A NULL doc (not JSON) never passes. */
int filter_match(const struct filter *f, json_t *doc);

void filter_free(struct filter *f);

#endif
