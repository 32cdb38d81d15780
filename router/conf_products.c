/* The "registry" and "topics" sections of the main file (conf_products.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_products.h"
#include "contract.h"
#include "lib/jsonschema.h"

static const char *const value_formats[] = { "json", "confluent", NULL };
static const char *const key_formats[] = { "bytes", "string", "confluent", NULL };
static const char *const timestamp_forms[] = { "number", "iso", NULL };

static int registry_url_validate(const json_t *value, char *err, size_t errlen)
{
    const char *s = json_string_value(value);

    if (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0) {
        const char *host = strstr(s, "://") + 3;
        if (*host && *host != '/' && !strchr(host, '@'))
            return 0;
        snprintf(err, errlen, *host && *host != '/' ? "put credentials in registry.user and registry.password, not in the url"
                                                    : "has no host");
        return -1;
    }
    snprintf(err, errlen, "must start with http:// or https://");
    return -1;
}

#define R(field) offsetof(struct conf, products.registry.field)

const struct cfg_opt conf_registry_opts[] = {
    { .name = "url", .type = CFG_T_STR, .offset = R(url), .validate = registry_url_validate,
      .help = "Schema Registry base URL (Confluent's REST API), e.g. \"http://schema-registry:8081\"" },
    CFG_STR("user", NULL, R(user), "HTTP Basic user (with password; e.g. \"${SR_USER}\")"),
    { .name = "password", .type = CFG_T_STR, .offset = R(password), .flags = CFG_SECRET,
      .help = "HTTP Basic password; never logged (use \"${NAME}\")" },
    { .name = "token", .type = CFG_T_STR, .offset = R(token), .flags = CFG_SECRET,
      .help = "Bearer token instead of user and password; never logged (use \"${NAME}\")" },
    CFG_STR("ca_file", NULL, R(ca_file), "CA bundle to verify the registry's certificate with (default: the system's)"),
    CFG_BOOL("tls_verify", "true", R(tls_verify), "Verify the registry's TLS certificate and name"),
    CFG_INT("timeout_ms", "10000", 100, 600000, R(timeout_ms),
            "Whole-request timeout; a request that takes longer is retried"),
    CFG_INT("cache_max_bytes", "67108864", 65536, 17179869184LL, R(cache_max_bytes),
            "Schemas kept in memory (text and compiled form), least recently used dropped first; ids "
            "are immutable, so a kept schema is never fetched again"),
    CFG_INT("missing_ttl_ms", "60000", 0, 86400000, R(missing_ttl_ms),
            "How long the registry's \"schema not found\" is believed before it is asked again"),
    CFG_INT("retry_initial_ms", "200", 1, 600000, R(retry_initial_ms),
            "First wait before asking again after a network error, timeout, 429 or 5xx (doubles, with jitter)"),
    CFG_INT("retry_max_ms", "30000", 1, 3600000, R(retry_max_ms), "Longest wait between tries"),
    CFG_END
};

#undef R
#define T(field) offsetof(struct conf_topic, field)

const struct cfg_opt conf_topic_opts[] = {
    CFG_ENUM("value_format", "\"json\"", value_formats, T(value_format),
             "\"json\": values are JSON text; \"confluent\": Schema Registry framing (magic byte 0, "
             "schema id) with an Avro, Protobuf or JSON Schema payload, decoded to JSON once per record"),
    CFG_ENUM("key_format", "\"bytes\"", key_formats, T(key_format),
             "\"bytes\": keys as they are; \"string\": keys must be UTF-8 text; \"confluent\": keys "
             "framed and decoded like values"),
    CFG_ENUM("timestamps", "\"number\"", timestamp_forms, T(timestamps),
             "Avro timestamp and date logical types as plain numbers, or as ISO-8601 UTC text"),
    CFG_JSON("contract", T(contract),
             "The data contract every record must meet before any sink sees it: {\"json_schema\": FILE} "
             "(draft-07, relative to this file), or \"registry\" (each record's registry schema: its CEL "
             "domain rules, and a JSON Schema payload's schema); a record that breaks it is dead-lettered once"),
    CFG_END
};

#undef T

static void topic_free(struct conf_topic *t)
{
    jsonschema_free(t->contract_schema);
    cfg_release(conf_topic_opts, t);
    free(t->name);
}

/* topics.<name>.contract: {"json_schema": FILE}, compiled now so that `sluice check` reports a
 * broken schema with its own file, line and JSON path. */
static int contract_load(struct conf_topic *t, const char *main_file, const struct cfg_doc *doc, const char *path,
                         struct cfg_errors *errs)
{
    char cpath[CFG_PATH_MAX], fpath[CFG_PATH_MAX];
    const char *key, *file = NULL;
    json_t *v;
    int nerr = 0;

    cfg_path_key(cpath, sizeof cpath, path, "contract");
    if (json_is_string(t->contract) && strcmp(json_string_value(t->contract), "registry") == 0) {
        if (t->value_format != CONF_VALUE_CONFLUENT) {
            cfg_error(errs, doc, cpath, "\"registry\" (the rules of each record's registry schema) needs "
                                        "value_format \"confluent\"");
            return 1;
        }
        t->contract_registry = 1;
        return 0;
    }
    if (!json_is_object(t->contract)) {
        cfg_error(errs, doc, cpath, "expected {\"json_schema\": FILE} or \"registry\"");
        return 1;
    }
    json_object_foreach(t->contract, key, v) {
        cfg_path_key(fpath, sizeof fpath, cpath, key);
        if (strcmp(key, "json_schema") != 0) {
            cfg_error(errs, doc, fpath, "unknown key \"%s\" (a contract is {\"json_schema\": FILE})", key);
            nerr++;
        } else if (!json_is_string(v) || !json_string_length(v)) {
            cfg_error(errs, doc, fpath, "expected the path of a JSON Schema file");
            nerr++;
        } else {
            file = json_string_value(v);
        }
    }
    if (!file) {
        if (!nerr)
            cfg_error(errs, doc, cpath, "expected {\"json_schema\": FILE}");
        return nerr ? nerr : 1;
    }
    if (nerr)
        return nerr;
    cfg_path_key(fpath, sizeof fpath, cpath, "json_schema");
    t->contract_schema = contract_schema_load(main_file, file, doc, fpath, errs, &nerr);
    return nerr;
}

int conf_products_load(struct conf_products *p, const char *main_file, const struct cfg_doc *doc,
                       int registry_given, struct cfg_errors *errs)
{
    json_t *topics = p->topics_json, *obj;
    const char *name;
    char path[CFG_PATH_MAX], item[CFG_PATH_MAX];
    int nerr = 0;

    p->topics_json = NULL;
    if (p->registry.user && !p->registry.password) {
        cfg_error(errs, doc, "registry.user", "needs registry.password");
        nerr++;
    }
    if (p->registry.password && !p->registry.user) {
        cfg_error(errs, doc, "registry.password", "needs registry.user");
        nerr++;
    }
    if (p->registry.token && p->registry.user) {
        cfg_error(errs, doc, "registry.token", "give either a token or a user and password, not both");
        nerr++;
    }
    if (p->registry.retry_max_ms < p->registry.retry_initial_ms) {
        cfg_error(errs, doc, "registry.retry_max_ms", "must be at least registry.retry_initial_ms (%lld)",
                  p->registry.retry_initial_ms);
        nerr++;
    }
    if (!json_is_object(topics)) {
        cfg_error(errs, doc, "topics", "expected an object of topic names");
        json_decref(topics);
        return nerr + 1;
    }
    if (json_object_size(topics) > 0 &&
        !(p->topics = calloc(json_object_size(topics), sizeof *p->topics))) {
        cfg_error(errs, doc, "topics", "out of memory");
        json_decref(topics);
        return nerr + 1;
    }
    json_object_foreach(topics, name, obj) {
        struct conf_topic *t = &p->topics[p->ntopics];
        int before = nerr;

        cfg_path_key(path, sizeof path, "topics", name);
        if (!name[0]) {
            cfg_error(errs, doc, path, "a topic name must not be empty");
            nerr++;
            continue;
        }
        if (!json_is_object(obj)) {
            cfg_error(errs, doc, path, "expected an object");
            nerr++;
            continue;
        }
        nerr += cfg_apply(conf_topic_opts, obj, t, doc, path, NULL, errs);
        if (t->contract && nerr == before)
            nerr += contract_load(t, main_file, doc, path, errs);
        if (!p->registry.url && !registry_given && (t->value_format == CONF_VALUE_CONFLUENT || t->key_format == CONF_KEY_CONFLUENT)) {
            cfg_path_key(item, sizeof item, path, t->value_format == CONF_VALUE_CONFLUENT ? "value_format" : "key_format");
            cfg_error(errs, doc, item, "\"confluent\" needs the registry section (registry.url)");
            nerr++;
        }
        if (nerr != before || !(t->name = strdup(name))) {
            if (nerr == before) {
                cfg_error(errs, doc, path, "out of memory");
                nerr++;
            }
            topic_free(t);
            memset(t, 0, sizeof *t);
            continue;
        }
        p->ntopics++;
    }
    json_decref(topics);
    return nerr;
}

const struct conf_topic *conf_products_topic(const struct conf_products *p, const char *topic)
{
    for (size_t i = 0; i < p->ntopics; i++)
        if (strcmp(p->topics[i].name, topic) == 0)
            return &p->topics[i];
    return NULL;
}

int conf_products_use_registry(const struct conf_products *p)
{
    for (size_t i = 0; i < p->ntopics; i++)
        if (p->topics[i].value_format == CONF_VALUE_CONFLUENT || p->topics[i].key_format == CONF_KEY_CONFLUENT)
            return 1;
    return 0;
}

void conf_products_free(struct conf_products *p)
{
    for (size_t i = 0; i < p->ntopics; i++)
        topic_free(&p->topics[i]);
    free(p->topics);
    json_decref(p->topics_json);
    p->topics = NULL;
    p->topics_json = NULL;
    p->ntopics = 0;
}

int conf_products_set_url(struct conf_products *p, const char *url)
{
    char *copy = strdup(url);

    if (!copy)
        return -1;
    free(p->registry.url);
    p->registry.url = copy;
    return 0;
}
