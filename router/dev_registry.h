/* The embedded Schema Registry of `sluice dev --registry`: the Confluent REST API of
 * lib/schema_api.h served on sluice's loop by its own HTTP server (http_server.h), in memory,
 * optionally started from a dump (tools/schema-registry's --load format, lib/schema_store.h). */
#ifndef SLUICE_DEV_REGISTRY_H
#define SLUICE_DEV_REGISTRY_H

#include <stddef.h>
#include <event2/event.h>

struct dev_registry;

/**
 * @brief Listen on @p listen ("HOST:PORT"; port 0 picks a free one) with the state of the dump
 * @p load (NULL: empty). @return the registry, or NULL with the reason in @p err.
 */
struct dev_registry *dev_registry_new(struct event_base *eb, const char *listen, const char *load,
                                      char *err, size_t errlen);

/** @brief Its base URL, "http://HOST:PORT" with the port bound (127.0.0.1 for 0.0.0.0). */
const char *dev_registry_url(const struct dev_registry *dr);

/** @brief Close its connections and free its state. NULL is fine. */
void dev_registry_free(struct dev_registry *dr);

#endif
