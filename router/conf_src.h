/* The configuration loader's files and its running state, shared by conf.c (what the files mean)
 * and conf_src.c (reading them: parsing, ${NAME} references, and keeping their values out of
 * messages). Private to router/conf*.c. */
#ifndef SLUICE_ROUTER_CONF_SRC_H
#define SLUICE_ROUTER_CONF_SRC_H

#include <stddef.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "lib/cfg.h"

#define CONF_ERR_MAX 1024

/* One parsed file. */
struct conf_src {
    struct cfg_doc doc;        /* doc.file: the name shown in messages */
    char *file;                /* owned; doc.file points here */
    char *text;
    json_t *root;
    struct cfg_marks *marks;   /* a YAML file's locations (doc.marks points here); NULL for JSON */
    char **values;             /* values of environment variables it used */
    char **value_paths;        /* where each was used; a value used by a secret option is kept
                                * out of every message about the file */
    size_t nvalues;
    char **placeholders;       /* paths whose ${NAME} was unset: no check of what stayed there */
    size_t nplaceholders;
    /* 1 when the option at @p path is a secret (set by conf.c; NULL: every value is one) */
    int (*is_secret)(const struct conf_src *src, const char *path);
    json_t **nodes;            /* its strings that took them, and their text before */
    char **origs;
    size_t nnodes;
    size_t first_msg;          /* errs->n when it was opened */
};

struct conf_ctx {
    struct cfg_errors *errs;
    int nerr;
    rd_kafka_conf_t *rk;       /* scratch conf that checks the kafka properties */
    char **rk_names;           /* librdkafka's property names, for suggestions (lazy) */
    size_t rk_nnames;
    int *name_lines;           /* line of each accepted sink's "name", parallel to conf->sinks */
    int env_optional;          /* an unset ${NAME} stays as written, its checks dropped */
};

/* One problem at @p path of @p doc; counted in ctx->nerr. */
void conf_err(struct conf_ctx *ctx, const struct cfg_doc *doc, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A growable array of strings; push takes @p s (freed on failure). */
void conf_strv_free(char **v, size_t n);
int conf_strv_push(char ***v, size_t *n, char *s);
enum conf_format { CONF_JSON, CONF_YAML };
/* The format of a file by its name: ".yaml" and ".yml" are YAML, anything else JSON. */
enum conf_format conf_src_format(const char *name);
/* 1 when a sinks_dir entry named @p name is a sink file: *.json, *.yaml or *.yml, not hidden. */
int conf_src_is_file_name(const char *name);
/* Read and parse @p path (named @p shown in messages) into @p src; 0, or -1 with the problem reported. */
int conf_src_open(struct conf_ctx *ctx, struct conf_src *src, const char *path, const char *shown);
void conf_src_free(struct conf_src *src);
/* Replace ${NAME} in every string under @p node, remembering values to keep out of messages. */
void conf_env_walk(struct conf_ctx *ctx, struct conf_src *src, json_t *node, const char *path);
/* The text @p node had before references were replaced (itself when it had none). */
const char *conf_src_orig(const struct conf_src *src, const json_t *node);
/* Drop the messages about values an unset ${NAME} left as written (they would only say the
 * reference is not a valid value), but for the one that says it is unset; uncounts them. */
void conf_src_drop_placeholders(struct conf_ctx *ctx, struct conf_src *src);
/* End the messages about a file: sorted by position, the values it took scrubbed out. */
void conf_src_finish(struct conf_ctx *ctx, struct conf_src *src);

#endif
