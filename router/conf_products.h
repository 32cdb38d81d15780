/* The data products section of the main file: where the schema registry is, and per topic how
 * its records are framed and encoded ("topics"). A topic not listed keeps JSON values and keys
 * as bytes. */
#ifndef SLUICE_CONF_PRODUCTS_H
#define SLUICE_CONF_PRODUCTS_H

#include <stddef.h>
#include <jansson.h>
#include "lib/cfg.h"

enum conf_value_format { CONF_VALUE_JSON, CONF_VALUE_CONFLUENT };
enum conf_key_format { CONF_KEY_BYTES, CONF_KEY_STRING, CONF_KEY_CONFLUENT };
enum conf_timestamps { CONF_TIMESTAMPS_NUMBER, CONF_TIMESTAMPS_ISO };

struct conf_registry {
    char *url;                  /* NULL: no registry */
    char *user, *password;      /* HTTP Basic; password secret */
    char *token;                /* bearer token, secret */
    char *ca_file;
    int tls_verify;
    long long timeout_ms;
    long long cache_max_bytes;  /* schemas kept (their text and compiled form), least recently used out */
    long long missing_ttl_ms;   /* how long "no such schema" is believed before asking again */
    long long retry_initial_ms, retry_max_ms;
};

struct jsonschema;

struct conf_topic {
    char *name;
    int value_format;           /* enum conf_value_format */
    int key_format;             /* enum conf_key_format */
    int timestamps;             /* enum conf_timestamps: how Avro timestamp logical types print */
    json_t *contract;           /* as written: {"json_schema": FILE} or "registry"; NULL: none */
    struct jsonschema *contract_schema;   /* compiled from it when the configuration loads */
    int contract_registry;      /* "registry": each record's schema and rules from the registry */
};

struct conf_products {
    struct conf_registry registry;
    json_t *topics_json;        /* only while loading */
    struct conf_topic *topics;
    size_t ntopics;
};

/* The "registry" section's table, for a struct whose member at @p base is a struct conf_products
 * (conf.c places it in struct conf). */
extern const struct cfg_opt conf_registry_opts[];
extern const struct cfg_opt conf_topic_opts[];

/**
 * @brief Turn @p p->topics_json (the "topics" object of @p doc) into @p p->topics, checking
 * each entry against conf_topic_opts and against the registry section (a confluent format needs
 * registry.url, unless @p registry_given: `sluice dev --registry` sets the url itself), and
 * compiling each contract (a JSON Schema file, relative to @p main_file).
 * @return the number of errors added to @p errs.
 */
int conf_products_load(struct conf_products *p, const char *main_file, const struct cfg_doc *doc,
                       int registry_given, struct cfg_errors *errs);

/** @brief The entry of @p topic, or NULL (JSON values, keys as bytes). */
const struct conf_topic *conf_products_topic(const struct conf_products *p, const char *topic);

/** @brief 1 when some topic needs the registry. */
int conf_products_use_registry(const struct conf_products *p);

/** @brief Point the registry section at @p url, whatever the file said (`sluice dev --registry`);
 * 0, or -1 when out of memory. */
int conf_products_set_url(struct conf_products *p, const char *url);

/** @brief Free what conf_products_load and the registry table stored. */
void conf_products_free(struct conf_products *p);

#endif
