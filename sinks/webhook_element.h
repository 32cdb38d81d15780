/* The webhook sink's element of a body for one record (see webhook.c), exposed for its unit test. */
#ifndef SLUICE_WEBHOOK_ELEMENT_H
#define SLUICE_WEBHOOK_ELEMENT_H

#include <stddef.h>

#include "sink.h"
#include "template.h"

/* The escaped sink name and topic the elements carry, kept from record to record. */
struct webhook_names {
    struct buf name_esc, topic_esc;
    char *topic;                    /* the topic topic_esc escapes */
};

/** @brief Make @p n hold the escapes of @p sink (once) and @p topic. -1: out of memory or not UTF-8. */
int webhook_names_set(struct webhook_names *n, const char *sink, const char *topic);
void webhook_names_free(struct webhook_names *n);

/** @brief Exact length of the element of @p rec, whose key escapes to @p key_esc bytes
 * (tpl_json_escaped_len; ignored without a key). @p n must be set for the record's topic. */
size_t webhook_element_len(const struct webhook_names *n, const struct sink_record *rec, size_t key_esc);

/** @brief Write the element of @p rec at @p out (room for webhook_element_len bytes; key UTF-8
 * and value JSON checked beforehand); returns the end of what it wrote (no NUL). */
char *webhook_element_write(const struct webhook_names *n, const struct sink_record *rec, char *out);

#endif
