/* The main file's "kafka" section (conf_kafka.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "conf.h"
#include "conf_kafka.h"
#include "conf_src.h"
#include "lib/buf.h"

/* librdkafka marks no property secret in its API; these names are its credentials. */
int conf_kafka_secret(const char *name)
{
    return strstr(name, "password") || strstr(name, "secret") || strcmp(name, "ssl.key.pem") == 0 ||
           strcmp(name, "sasl.oauthbearer.config") == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Kafka properties                                                                            */

static const char *const conf_kafka_managed[] = {
    "enable.auto.commit", "enable.auto.offset.store", "auto.commit.enable", NULL
};

/* librdkafka's property names, read from its own reference table. */
static void conf_kafka_names_load(struct conf_ctx *ctx)
{
    char *table = NULL, *line, *save = NULL;
    size_t size = 0;
    FILE *f;

    if (ctx->rk_names)
        return;
    f = open_memstream(&table, &size);
    if (!f)
        return;
    rd_kafka_conf_properties_show(f);
    fclose(f);
    for (line = strtok_r(table, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *bar = strchr(line, '|'), *end;

        if (!bar || line[0] == '-' || strncmp(line, "Property", 8) == 0)
            continue;
        end = bar;
        while (end > line && isspace((unsigned char)end[-1]))
            end--;
        if (end > line)
            conf_strv_push(&ctx->rk_names, &ctx->rk_nnames, strndup(line, (size_t)(end - line)));
    }
    free(table);
}

/* The text librdkafka gets for a JSON scalar; NULL when the value is not one. */
static char *conf_kafka_value(const json_t *v)
{
    char buf[64];

    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(buf);
    }
    if (json_is_real(v)) {
        /* the shortest text that reads back as the same number */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, json_real_value(v));
            if (strtod(buf, NULL) == json_real_value(v))
                break;
        }
        return strdup(buf);
    }
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

/* Turns conf->kafka (as written, or the default) into an object of strings librdkafka accepts. */
void conf_kafka_load(struct conf_ctx *ctx, const struct cfg_doc *doc, struct conf *conf)
{
    json_t *raw = conf->kafka, *kafka = NULL, *v;
    char path[CFG_PATH_MAX], errstr[512];
    const char *key, *hint;
    size_t n;

    conf->kafka = NULL;
    if (!json_is_object(raw)) {
        conf_err(ctx, doc, "kafka", "expected an object");
        goto done;
    }
    kafka = json_object();
    if (!kafka) {
        conf_err(ctx, doc, "kafka", "out of memory");
        goto done;
    }
    json_object_foreach(raw, key, v) {
        rd_kafka_conf_res_t rc;
        int managed = 0;
        char *value;

        cfg_path_key(path, sizeof path, "kafka", key);
        for (size_t i = 0; conf_kafka_managed[i]; i++)
            managed |= strcmp(conf_kafka_managed[i], key) == 0;
        if (managed) {
            conf_err(ctx, doc, path, "is managed by sluice (offsets are committed only after "
                                     "every sink acknowledged)");
            continue;
        }
        value = conf_kafka_value(v);
        if (!value) {
            conf_err(ctx, doc, path, json_is_object(v) || json_is_array(v) || json_is_null(v)
                                         ? "expected a string, number or boolean"
                                         : "out of memory");
            continue;
        }
        errstr[0] = '\0';
        rc = rd_kafka_conf_set(ctx->rk, key, value, errstr, sizeof errstr);
        n = strlen(errstr);
        while (n > 0 && isspace((unsigned char)errstr[n - 1]))
            errstr[--n] = '\0';   /* some of librdkafka's texts end with a newline */
        switch (rc) {
        case RD_KAFKA_CONF_OK:
            if (json_object_set_new(kafka, key, json_string(value)) != 0)
                conf_err(ctx, doc, path, "out of memory");
            break;
        case RD_KAFKA_CONF_UNKNOWN:
            conf_kafka_names_load(ctx);
            hint = cfg_suggest(key, (const char *const *)ctx->rk_names, ctx->rk_nnames);
            conf_err(ctx, doc, path, "%s%s%s%s", errstr[0] ? errstr : "unknown property",
                     hint ? "; did you mean \"" : "", hint ? hint : "", hint ? "\"?" : "");
            break;
        default:
            conf_err(ctx, doc, path, "%s", errstr[0] ? errstr : "invalid value");
            break;
        }
        free(value);
    }
    if (!json_object_get(kafka, "group.id") && !json_object_get(raw, "group.id") &&
        json_object_set_new(kafka, "group.id", json_string("sluice")) != 0)
        conf_err(ctx, doc, "kafka", "out of memory");
    conf->kafka = kafka;
    kafka = NULL;
done:
    json_decref(kafka);
    json_decref(raw);
}

int conf_kafka_consumer_only(const char *name)
{
    static const char *const prefixes[] = {
        "group.", "fetch.", "auto.", "enable.auto.", "session.timeout.ms", "heartbeat.", "max.poll.",
        "partition.assignment.", "enable.partition.eof", "isolation.level", "queued.", "check.crcs",
        "coordinator.", "consume.", "allow.auto.create.topics", "rebalance.", "offset.store.",
        "max.partition.fetch.bytes",
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

int conf_kafka_apply_standalone(rd_kafka_conf_t *kc, const json_t *kafka, int producer, char *err, size_t errlen)
{
    const char *name;
    json_t *value;

    json_object_foreach((json_t *)kafka, name, value) {
        if (strcmp(name, "group.id") == 0 || strncmp(name, "enable.auto", 11) == 0 ||
            (producer && conf_kafka_consumer_only(name)))
            continue;
        if (rd_kafka_conf_set(kc, name, json_string_value(value), err, errlen) != RD_KAFKA_CONF_OK)
            return -1;
    }
    return 0;
}
