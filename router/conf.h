/* The loaded configuration: the main file, its inline sinks and one file per sink in
 * sinks_dir. Loading validates everything and reports every problem with its location. */
#ifndef SLUICE_CONF_H
#define SLUICE_CONF_H

#include <stdio.h>
#include <jansson.h>
#include "lib/cfg.h"
#include "conf_products.h"

struct sink;

/* A sink file set aside at load (sluice run without --strict): the other sinks run without it. */
struct conf_invalid_sink {
    char *name;                 /* its "name" when readable, valid and not taken; else the file's name */
    char *file;                 /* the file, as messages name it */
    char **messages;            /* every problem, "file:line:column: path: reason" */
    size_t nmessages;
};

struct conf {
    char *file;                 /* the main file, as given */
    json_t *kafka;              /* librdkafka properties: an object of strings */
    char *admin_listen;
    char *admin_token;          /* secret: never printed */
    long long admin_max_connections;     /* the admin listener's limits (http_server.h) */
    long long admin_request_timeout_ms;
    long long admin_max_header_bytes;
    long long admin_max_headers;
    char *health_listen;        /* NULL: no health listener */
    char *control_topic;        /* the group's control topic (group.h); NULL: none */
    char *control_advertise;    /* the admin API's address for others; NULL: from admin.listen */
    long long control_heartbeat_ms;
    char *dead_letter_topic;
    char *redrive_topic;        /* `sluice dlq redrive` writes here, the router reads; NULL: none */
    char *sinks_dir;            /* resolved against the main file's directory; NULL when unset */
    int log_level;              /* enum log_level: debug=0, info, warn, error */
    int log_format;             /* 0: logfmt, 1: json */
    long long shutdown_timeout_ms;
    long long commit_interval_ms;
    long long max_buffered_bytes;   /* the budget of every sink's buffered records together */
    struct conf_products products;  /* the registry and the topics' formats */
    struct cfg_errors warnings; /* valid, but likely not what was meant (sink_ops.warn); located */
    struct sink **sinks;        /* each made by its type's ops, options applied */
    size_t nsinks;
    struct conf_invalid_sink *invalid;  /* sink files set aside, in file name order */
    size_t ninvalid;
};

/**
 * @brief Load and validate @p file and every sink it declares. Environment references
 * ("${NAME}") in string values are replaced; a missing variable is an error.
 * @return the configuration, or NULL with every problem in @p errs.
 */
struct conf *conf_load(const char *file, struct cfg_errors *errs);

/* How a caller relaxes the checks of conf_load. */
struct conf_load_opts {
    int registry_given;         /* `sluice dev --registry`: topics with a "confluent" format need no
                                 * registry.url, the caller sets it (conf_products_set_url) */
    int isolate;                /* a broken file of sinks_dir is set aside (conf->invalid) instead
                                 * of refusing the whole configuration (run without --strict) */
    int env_optional;           /* an unset ${NAME} is no problem, nor any check of the value it
                                 * would have given (sluice check --env-optional) */
};

/** @brief conf_load, with @p opts (NULL: as conf_load). */
struct conf *conf_load_with(const char *file, const struct conf_load_opts *opts, struct cfg_errors *errs);

/**
 * @brief Check one sink file @p sink_file, alone or (with @p main_file) against the sinks of
 * that configuration (names must be unique; the file itself, when it lies in sinks_dir, is not
 * counted twice). @return 0 when valid, else -1 with every problem in @p errs. The file's
 * warnings (sink_ops.warn) go to @p warnings (may be NULL).
 */
int conf_check_sink_file(const char *sink_file, const char *main_file, const struct conf_load_opts *opts,
                         struct cfg_errors *errs, struct cfg_errors *warnings);

/** @brief Free a configuration and its sinks (calling each sink's ops->destroy). */
void conf_free(struct conf *conf);

/** @brief Print the configuration reference (Markdown) from the loader's own tables. */
void conf_print_reference(FILE *out);

/** @brief Free one sink made by conf_load (ops->destroy, then its options). */
void conf_sink_free(struct sink *sk);

/** @brief 1 when two sinks made by conf_load have the same type and the same value of every
 * option, the common ones (conf_sink_opts: name, type, topics, batch, retry, filter, on_failure,
 * buffers, park_after_ms, max_record_bytes) and their type's own. */
int conf_sink_same(const struct sink *a, const struct sink *b);

#endif
