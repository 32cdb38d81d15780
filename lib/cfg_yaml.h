/* YAML configuration files: a YAML document read (with libyaml) into the jansson tree the same
 * text written as JSON gives, and the marks that locate each value for cfg_error. Scalars
 * follow YAML 1.2's core schema, so yes/no/on/off stay strings; anchors, aliases, duplicate keys,
 * keys that are not scalars, tags outside the core schema and a second document are refused. */
#ifndef SLUICE_CFG_YAML_H
#define SLUICE_CFG_YAML_H

#include <stddef.h>
#include <jansson.h>

#include "cfg.h"

#define CFG_YAML_DEPTH_MAX 256   /* collections nested deeper are refused */

/* Why a text was refused, and where (1-based, columns in characters as jansson counts them). */
struct cfg_yaml_error {
    int line, column;
    char reason[384];
};

/**
 * @brief Read the YAML document @p text (@p len bytes) into a new jansson tree, filling the
 * empty @p marks with the line:column of every value (a member at its key, an element where it
 * begins). An empty document is null, marked at 1:1.
 * @return the tree (the caller owns it and @p marks), or NULL with @p err filled and @p marks
 * left empty.
 */
json_t *cfg_yaml_load(const char *text, size_t len, struct cfg_marks *marks,
                      struct cfg_yaml_error *err);

/** @brief Free the entries and names of @p marks; it is empty again. */
void cfg_marks_free(struct cfg_marks *marks);

#endif
