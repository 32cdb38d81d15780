#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "admin.h"
#include "admin_route.h"
#include "http_server.h"
#include "metrics.h"
#include "router.h"
#include "status_page.h"
#include "tap.h"
#include "lib/log.h"

#define DEBUG_DELIVERIES 32

struct admin {
    struct http_server *srv;            /* the admin API, or NULL */
    struct http_server *health_srv;     /* the health listener, or NULL */
    unsigned char token_digest[SHA256_DIGEST_LENGTH];
    int has_token;
    struct admin_hooks hooks;
};

/* Every answer ends here: it frees @p req. */
static void reply_text(struct http_server_req *req, int code, const char *type, const char *body)
{
    http_server_reply_header(req, "Cache-Control", "no-store");
    http_server_reply(req, code, type, body, strlen(body));
}

/* Steals @p doc. */
static void reply_json(struct http_server_req *req, int code, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text) {
        reply_text(req, 500, "text/plain", "out of memory\n");
        return;
    }
    reply_text(req, code, "application/json", text);
    free(text);
}

static void reply_error(struct http_server_req *req, int code, const char *message)
{
    reply_json(req, code, json_pack("{s:s}", "error", message));
}

/* The token is compared as SHA-256 digests with CRYPTO_memcmp: constant time, and the length of
 * the real token does not leak either. */
static int admin_authorized(const struct admin *a, struct http_server_req *req, int allow_query)
{
    const char *auth = http_server_req_header(req, "Authorization");
    const char *given = NULL;
    char *from_query = NULL;
    unsigned char digest[SHA256_DIGEST_LENGTH];

    if (!a->has_token)
        return 1;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)   /* the scheme is case-insensitive (RFC 9110) */
        given = auth + 7;
    if (!given && allow_query)
        given = from_query = http_query_param(http_server_req_query(req), "token");
    if (!given)
        return 0;
    SHA256((const unsigned char *)given, strlen(given), digest);
    free(from_query);
    return CRYPTO_memcmp(digest, a->token_digest, sizeof digest) == 0;
}

/* ---- /metrics ---- */

struct metrics_ctx {
    FILE *out;
    struct router *r;
    int pass;               /* one family per pass, so each family's samples stay together */
    size_t partitions;      /* counted in pass 0: the partitions assigned to this member */
};

static void on_partition_metrics(void *arg, const struct router_partition_view *pv)
{
    struct metrics_ctx *m = arg;
    char topic[256];

    metrics_label_escape(topic, sizeof topic, pv->topic);
    switch (m->pass) {
    case 0:
        m->partitions++;
        if (pv->high_watermark >= 0 && pv->committed >= 0)
            fprintf(m->out, "sluice_partition_lag_records{topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64 "\n",
                    topic, pv->partition, pv->high_watermark - pv->committed);
        break;
    case 1:
        fprintf(m->out, "sluice_partition_committed_offset{topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64 "\n",
                topic, pv->partition, pv->committed);
        break;
    case 2:
        fprintf(m->out, "sluice_partition_consumed_offset{topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64 "\n",
                topic, pv->partition, pv->consumed);
        break;
    case 3:
        fprintf(m->out, "sluice_partition_paused{topic=\"%s\",partition=\"%" PRId32 "\"} %d\n",
                topic, pv->partition, pv->paused);
        break;
    case 4:
        for (size_t k = 0; k < router_sink_count(m->r); k++) {
            struct router_sink_view v;
            char sink[256];
            if (!pv->reads[k] || pv->next[k] < 0 || pv->high_watermark < 0)
                continue;
            router_sink_view(m->r, k, &v);
            metrics_label_escape(sink, sizeof sink, v.sk->name);
            fprintf(m->out, "sluice_sink_lag_records{sink=\"%s\",topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64 "\n",
                    sink, topic, pv->partition, pv->high_watermark > pv->next[k] ? pv->high_watermark - pv->next[k] : 0);
        }
        break;
    default:
        break;
    }
}

/* The registry client and the decode stage (issue: data products). */
static void render_product_metrics(struct router *r, FILE *out)
{
    struct router_registry_view rv;
    size_t ntopics = router_format_topic_count(r);

    if (router_registry_view(r, &rv) == 0) {
        const struct { const char *outcome; uint64_t n; } outcomes[] = {
            { "ok", rv.requests_ok }, { "not_found", rv.requests_not_found }, { "retried", rv.requests_retried },
            { "unauthorized", rv.requests_unauthorized }, { "failed", rv.requests_failed },
        };
        metrics_family(out, "sluice_registry_up", "gauge",
                       "1 while the schema registry answers; 0 while requests fail or it refuses sluice's credentials.");
        fprintf(out, "sluice_registry_up %d\n", strcmp(rv.state, "up") == 0);
        metrics_family(out, "sluice_registry_unauthorized", "gauge", "1 while the registry answers 401 or 403 (sinks parked).");
        fprintf(out, "sluice_registry_unauthorized %d\n", strcmp(rv.state, "unauthorized") == 0);
        metrics_family(out, "sluice_registry_requests_total", "counter", "Requests to the schema registry, by outcome.");
        for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
            fprintf(out, "sluice_registry_requests_total{outcome=\"%s\"} %" PRIu64 "\n", outcomes[i].outcome, outcomes[i].n);
        metrics_family(out, "sluice_registry_cache_schemas", "gauge", "Schemas kept in memory (ids are immutable).");
        fprintf(out, "sluice_registry_cache_schemas %zu\n", rv.cached);
        metrics_family(out, "sluice_registry_cache_bytes", "gauge", "What the kept schemas hold, against registry.cache_max_bytes.");
        fprintf(out, "sluice_registry_cache_bytes %zu\n", rv.cached_bytes);
        metrics_family(out, "sluice_registry_cache_evictions_total", "counter", "Schemas dropped to stay under registry.cache_max_bytes.");
        fprintf(out, "sluice_registry_cache_evictions_total %" PRIu64 "\n", rv.evictions);
        metrics_family(out, "sluice_registry_records_waiting", "gauge",
                       "Records waiting in their partition for a schema being fetched (later records wait behind them).");
        fprintf(out, "sluice_registry_records_waiting %zu\n", rv.waiting_records);
    }
    /* The topic families are declared even without a topic of theirs, so that dashboards and
     * alerts find them (and read no series) on any replica. */
    for (size_t f = 0; f < 3; f++) {
        /* Per topic: decoded, decode failures, and contract-valid records (topics with a contract). */
        static const struct { const char *name, *help; size_t offset; int contract; } counters[] = {
            { "sluice_topic_records_decoded_total", "Records decoded by the topic's format.",
              offsetof(struct router_topic_view, decoded), 0 },
            { "sluice_topic_decode_failures_total", "Records the decode stage dead-lettered (once per record, not per sink).",
              offsetof(struct router_topic_view, decode_failures), 0 },
            { "sluice_topic_contract_valid_total", "Records that met their topic's contract.",
              offsetof(struct router_topic_view, contract_valid), 1 },
        };
        metrics_family(out, counters[f].name, "counter", counters[f].help);
        for (size_t i = 0; i < ntopics; i++) {
            struct router_topic_view tv;
            char topic[256];
            router_format_topic_view(r, i, &tv);
            metrics_label_escape(topic, sizeof topic, tv.name);
            if (!counters[f].contract || tv.has_contract)
                fprintf(out, "%s{topic=\"%s\"} %" PRIu64 "\n", counters[f].name, topic,
                        *(const uint64_t *)((const char *)&tv + counters[f].offset));
        }
    }
    metrics_family(out, "sluice_topic_contract_violations_total", "counter",
                   "Records that broke their topic's contract (dead-lettered once), by rule.");
    for (size_t i = 0; i < ntopics; i++) {
        struct router_topic_view tv;
        char topic[256], rule[400];
        router_format_topic_view(r, i, &tv);
        metrics_label_escape(topic, sizeof topic, tv.name);
        for (size_t k = 0; k < tv.ncontract_rules; k++) {
            metrics_label_escape(rule, sizeof rule, tv.contract_rules[k].rule);
            fprintf(out, "sluice_topic_contract_violations_total{topic=\"%s\",rule=\"%s\"} %" PRIu64 "\n", topic, rule,
                    tv.contract_rules[k].violations);
        }
    }
    metrics_family(out, "sluice_topic_contract_held", "gauge",
                   "1 while a topic's records are held because its registry contract has rules sluice cannot run.");
    for (size_t i = 0; i < ntopics; i++) {
        struct router_topic_view tv;
        char topic[256];
        router_format_topic_view(r, i, &tv);
        metrics_label_escape(topic, sizeof topic, tv.name);
        if (tv.has_contract)
            fprintf(out, "sluice_topic_contract_held{topic=\"%s\"} %d\n", topic, tv.contract_held[0] != '\0');
    }
}

/* The consumer group's rebalances and the dead-letter producer. */
static void render_group_metrics(struct router *r, FILE *out)
{
    struct router_group_view gv;

    router_group_view(r, &gv);
    metrics_family(out, "sluice_consumer_rebalances_total", "counter",
                   "Rebalance callbacks by kind: partitions assigned, revoked, lost (the member was fenced), or an error.");
    for (int k = 0; k < ROUTER_REBALANCE_KINDS; k++)
        fprintf(out, "sluice_consumer_rebalances_total{kind=\"%s\"} %" PRIu64 "\n",
                router_rebalance_kind_name((enum router_rebalance_kind)k), gv.rebalances[k]);
    metrics_family(out, "sluice_dlq_letters_stored_total", "counter", "Dead letters the dead-letter topic acknowledged.");
    fprintf(out, "sluice_dlq_letters_stored_total %" PRIu64 "\n", gv.dead_letters_stored);
    metrics_family(out, "sluice_dlq_produce_errors_total", "counter",
                   "Failed attempts to produce a dead letter (each is retried; the source offset waits).");
    fprintf(out, "sluice_dlq_produce_errors_total %" PRIu64 "\n", gv.dead_letter_produce_errors);
    metrics_family(out, "sluice_dlq_letters_pending", "gauge", "Dead letters sent and not yet acknowledged.");
    fprintf(out, "sluice_dlq_letters_pending %zu\n", gv.dead_letters_pending);
}

struct counter_def {
    const char *name, *help;
    size_t offset;               /* into struct router_sink_stats */
    const char *type;
};

#define SINK_STAT(field) offsetof(struct router_sink_stats, field)

static void render_metrics(struct router *r, FILE *out)
{
    static const struct counter_def counters[] = {
        { "sluice_sink_records_delivered_total", "Records applied in the target.", SINK_STAT(delivered), "counter" },
        { "sluice_sink_records_dead_lettered_total", "Records sent to the dead-letter topic.", SINK_STAT(dead_lettered), "counter" },
        { "sluice_sink_records_filtered_total", "Records the sink's filter left out.", SINK_STAT(filtered), "counter" },
        { "sluice_sink_records_skipped_total", "Records below the sink's position (it had them already).", SINK_STAT(skipped), "counter" },
        { "sluice_sink_records_failed_total", "Records in batch attempts that failed (retried or dead-lettered).", SINK_STAT(records_failed), "counter" },
        { "sluice_sink_retries_total", "Batch attempts that failed and were retried.", SINK_STAT(retries), "counter" },
        { "sluice_sink_records_retried_total", "Records in batch attempts that failed and were tried again.", SINK_STAT(records_retried), "counter" },
        { "sluice_sink_fenced_total", "Batches refused because another writer moved the stored position.", SINK_STAT(fenced), "counter" },
        { "sluice_sink_batches_total", "Batches applied.", SINK_STAT(batches), "counter" },
        { "sluice_sink_delivered_bytes_total", "Bytes of keys and values applied.", SINK_STAT(bytes), "counter" },
        { "sluice_sink_batches_in_flight", "Batches handed to the sink and not answered yet.", SINK_STAT(in_flight), "gauge" },
        { "sluice_sink_parks_total", "Times the sink was parked (buffer full too long, or on_failure block).", SINK_STAT(parks), "counter" },
        { "sluice_sink_records_lost_total", "Offsets deleted by the topic's retention before the sink got them.", SINK_STAT(records_lost), "counter" },
        { "sluice_sink_records_oversized_total", "Records over max_record_bytes (dead-lettered).", SINK_STAT(oversized), "counter" },
        { "sluice_sink_positions_beyond_end_total", "Partitions where the sink's position lay past the log end (topic recreated or truncated).", SINK_STAT(positions_beyond_end), "counter" },
    };
    /* Records sluice refused to send, by its reason (one today: the SSRF guard). */
    static const struct { const char *reason; size_t offset; } refusals[] = {
        { "ssrf", SINK_STAT(refused_ssrf) },
    };
    size_t nsinks = router_sink_count(r);
    struct router_sink_view *views = calloc(nsinks ? nsinks : 1, sizeof *views);
    char (*labels)[320] = calloc(nsinks ? nsinks : 1, sizeof *labels);
    struct metrics_ctx m = { out, r, 0, 0 };
    uint64_t stalls;
    double worst;
    char why[256];

    if (!views || !labels) {
        free(views);
        free(labels);
        fputs("# out of memory\n", out);
        return;
    }
    /* Each sink's view and label set, once for every family below. */
    for (size_t k = 0; k < nsinks; k++) {
        char sink[256];
        router_sink_view(r, k, &views[k]);
        metrics_label_escape(sink, sizeof sink, views[k].sk->name);
        snprintf(labels[k], sizeof labels[k], "sink=\"%s\",type=\"%s\"", sink, views[k].sk->type);
    }
    metrics_family(out, "sluice_build_info", "gauge", "Version of sluice and librdkafka.");
    fprintf(out, "sluice_build_info{version=\"0.1.0\",librdkafka=\"%s\"} 1\n", rd_kafka_version_str());
    metrics_family(out, "sluice_ready", "gauge", "1 when the consumer joined and every sink can deliver.");
    fprintf(out, "sluice_ready %d\n", router_ready(r, why, sizeof why));

    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        metrics_family(out, counters[c].name, counters[c].type, counters[c].help);
        for (size_t k = 0; k < nsinks; k++)
            fprintf(out, "%s{%s} %" PRIu64 "\n", counters[c].name, labels[k],
                    *(const uint64_t *)((const char *)views[k].stats + counters[c].offset));
    }
    metrics_family(out, "sluice_sink_records_refused_total", "counter",
                   "Records sluice refused to send (reason \"ssrf\": the SSRF guard refused the destination's address); "
                   "they are dead-lettered.");
    for (size_t c = 0; c < sizeof refusals / sizeof refusals[0]; c++)
        for (size_t k = 0; k < nsinks; k++)
            fprintf(out, "sluice_sink_records_refused_total{%s,reason=\"%s\"} %" PRIu64 "\n", labels[k], refusals[c].reason,
                    *(const uint64_t *)((const char *)views[k].stats + refusals[c].offset));
    metrics_family(out, "sluice_sink_buffered_records", "gauge", "Records queued or in flight in the sink.");
    for (size_t k = 0; k < nsinks; k++)
        fprintf(out, "sluice_sink_buffered_records{%s} %zu\n", labels[k], views[k].buffered);
    metrics_family(out, "sluice_sink_buffered_bytes", "gauge", "Bytes of the records queued or in flight in the sink.");
    for (size_t k = 0; k < nsinks; k++)
        fprintf(out, "sluice_sink_buffered_bytes{%s} %zu\n", labels[k], views[k].buffered_bytes);
    metrics_family(out, "sluice_sink_paused", "gauge", "1 while an operator has paused the sink.");
    for (size_t k = 0; k < nsinks; k++)
        fprintf(out, "sluice_sink_paused{%s} %d\n", labels[k], views[k].paused);
    metrics_family(out, "sluice_sink_parked", "gauge", "1 while the router has parked the sink.");
    for (size_t k = 0; k < nsinks; k++)
        fprintf(out, "sluice_sink_parked{%s} %d\n", labels[k], views[k].parked);
    metrics_family(out, "sluice_sink_delivery_latency_seconds", "histogram",
                   "Time from a record's Kafka timestamp to the target's acknowledgement.");
    for (size_t k = 0; k < nsinks; k++)
        metrics_histogram(out, "sluice_sink_delivery_latency_seconds", labels[k], &views[k].stats->latency);
    metrics_family(out, "sluice_sink_batch_records", "histogram", "Records per applied batch.");
    for (size_t k = 0; k < nsinks; k++)
        metrics_histogram(out, "sluice_sink_batch_records", labels[k], &views[k].stats->batch_records);
    metrics_family(out, "sluice_sink_http_responses_total", "counter",
                   "Answers to an HTTP sink's delivery requests by status class (\"none\": no answer, the connection failed or timed out).");
    for (size_t k = 0; k < nsinks; k++) {
        static const char *const classes[6] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };
        if (strcmp(views[k].sk->type, "webhook") != 0 && strcmp(views[k].sk->type, "http") != 0)
            continue;
        for (size_t c = 0; c < 6; c++)
            fprintf(out, "sluice_sink_http_responses_total{%s,class=\"%s\"} %" PRIu64 "\n", labels[k], classes[c],
                    views[k].sk->http_responses[c]);
    }
    free(views);
    free(labels);

    static const char *const partition_families[][3] = {
        { "sluice_partition_lag_records", "gauge", "Records between the partition's end and sluice's committed offset." },
        { "sluice_partition_committed_offset", "gauge", "The offset sluice last committed (-1: none)." },
        { "sluice_partition_consumed_offset", "gauge", "One past the highest offset consumed." },
        { "sluice_partition_paused", "gauge", "1 while backpressure pauses the partition." },
        { "sluice_sink_lag_records", "gauge", "Records between the partition's end and the sink's position." },
    };
    for (m.pass = 0; m.pass < 5; m.pass++) {
        metrics_family(out, partition_families[m.pass][0], partition_families[m.pass][1], partition_families[m.pass][2]);
        router_partitions_foreach(r, on_partition_metrics, &m);
    }

    metrics_family(out, "sluice_consumer_assigned_partitions", "gauge", "Partitions assigned to this member of the group.");
    fprintf(out, "sluice_consumer_assigned_partitions %zu\n", m.partitions);
    render_group_metrics(r, out);
    render_product_metrics(r, out);
    router_loop_stats(r, &stalls, &worst);
    metrics_family(out, "sluice_loop_stalls_total", "counter", "Event loop turns late by more than 100 ms.");
    fprintf(out, "sluice_loop_stalls_total %" PRIu64 "\n", stalls);
    metrics_family(out, "sluice_loop_worst_stall_seconds", "gauge", "The longest the event loop was late.");
    fprintf(out, "sluice_loop_worst_stall_seconds %.3f\n", worst);
    metrics_process(out);
}

/* A listener's own defences (http_server.h): @p prefix "sluice_admin" or "sluice_health". */
static void render_server_metrics(const struct http_server *srv, const char *prefix, const char *what, FILE *out)
{
    const uint64_t *rejected = http_server_rejected(srv);
    char name[64], help[160];

    snprintf(name, sizeof name, "%s_http_rejected_total", prefix);
    snprintf(help, sizeof help, "Clients of the %s cut off at a limit (the connection closed), by reason.", what);
    metrics_family(out, name, "counter", help);
    for (int k = 0; k < HTTP_REJECT_COUNT; k++)
        fprintf(out, "%s{reason=\"%s\"} %" PRIu64 "\n", name, http_reject_name((enum http_reject)k), rejected[k]);
    snprintf(name, sizeof name, "%s_http_connections", prefix);
    snprintf(help, sizeof help, "Connections open to the %s.", what);
    metrics_family(out, name, "gauge", help);
    fprintf(out, "%s %zu\n", name, http_server_connections(srv));
}

const char *admin_reload_result_name(enum admin_reload_result r)
{
    static const char *const names[] = { "applied", "partial", "refused", "failed" };
    return (unsigned)r < ADMIN_RELOAD_RESULTS ? names[r] : "unknown";
}

/* The configuration's health, and who owns each sink. */
static void render_config_metrics(const struct admin *a, struct router *r, FILE *out)
{
    const struct admin_config_view *cv = a->hooks.config ? a->hooks.config(a->hooks.arg) : NULL;
    size_t nsinks = router_sink_count(r);
    char sink[256], owner[256];

    /* An info series rather than an owner label on every per-sink series: an owner changes
     * without the sink changing, and a label that changes would break every series' history
     * (and multiply them); a query joins it where needed (* on(sink) group_left(owner)). */
    metrics_family(out, "sluice_sink_info", "gauge", "Always 1; the labels say the sink's type and owner (\"\" when unset).");
    for (size_t k = 0; k < nsinks; k++) {
        struct router_sink_view v;

        router_sink_view(r, k, &v);
        metrics_label_escape(sink, sizeof sink, v.sk->name);
        metrics_label_escape(owner, sizeof owner, v.sk->owner ? v.sk->owner : "");
        fprintf(out, "sluice_sink_info{sink=\"%s\",type=\"%s\",owner=\"%s\"} 1\n", sink, v.sk->type, owner);
    }
    metrics_family(out, "sluice_sink_config_valid", "gauge",
                   "1 for a sink whose configuration loaded, 0 for a sink file set aside as invalid.");
    for (size_t k = 0; k < nsinks; k++) {
        struct router_sink_view v;

        router_sink_view(r, k, &v);
        metrics_label_escape(sink, sizeof sink, v.sk->name);
        fprintf(out, "sluice_sink_config_valid{sink=\"%s\"} 1\n", sink);
    }
    for (size_t k = 0; cv && k < cv->ninvalid; k++) {
        metrics_label_escape(sink, sizeof sink, cv->invalid[k].name);
        fprintf(out, "sluice_sink_config_valid{sink=\"%s\"} 0\n", sink);
    }
    metrics_family(out, "sluice_config_reloads_total", "counter",
                   "Reloads (SIGHUP or POST /reload) by result: applied, partial (sink files set aside), refused "
                   "(the main file is broken: nothing changed), failed (could not start: the previous pipeline runs).");
    for (int k = 0; k < ADMIN_RELOAD_RESULTS; k++)
        fprintf(out, "sluice_config_reloads_total{result=\"%s\"} %" PRIu64 "\n", admin_reload_result_name(k),
                cv ? cv->reloads[k] : 0);
    metrics_family(out, "sluice_config_last_reload_successful", "gauge",
                   "1 when the last load of the configuration (start or reload) had no problem; 0 when it "
                   "was refused or set a sink file aside.");
    fprintf(out, "sluice_config_last_reload_successful %d\n", cv ? cv->last_reload_successful : 1);
    metrics_family(out, "sluice_config_last_reload_success_timestamp_seconds", "gauge",
                   "When the configuration last loaded without any problem (0: not since the start).");
    fprintf(out, "sluice_config_last_reload_success_timestamp_seconds %.3f\n",
            cv ? (double)cv->last_reload_success_ms / 1000.0 : 0.0);
}

/* The group's control topic (control.topic), from the same view as GET /group: whether this
 * replica has read it to its end (its group consumer waits for that), the replicas it sees, and
 * the sinks the group paused. Nothing is printed without a control topic. */
static void render_control_metrics(const struct admin *a, FILE *out)
{
    json_t *view = a->hooks.group ? a->hooks.group(a->hooks.arg) : NULL;
    json_t *replicas, *sinks, *value;
    const char *name;
    size_t i, live = 0;
    char label[256];

    if (!view)
        return;
    replicas = json_object_get(view, "replicas");
    sinks = json_object_get(view, "sinks");
    metrics_family(out, "sluice_control_caught_up", "gauge",
                   "1 once this replica has read the group's control topic to its end (until then it does not "
                   "join the consumer group); 0 before.");
    fprintf(out, "sluice_control_caught_up %d\n", json_is_true(json_object_get(view, "caught_up")));
    metrics_family(out, "sluice_control_next_offset", "gauge", "The next offset of the control topic this replica will read.");
    fprintf(out, "sluice_control_next_offset %" JSON_INTEGER_FORMAT "\n",
            json_integer_value(json_object_get(view, "next_offset")));
    metrics_family(out, "sluice_control_records_skipped_total", "counter",
                   "Control records this replica could not read (malformed key or value) and skipped.");
    fprintf(out, "sluice_control_records_skipped_total %" JSON_INTEGER_FORMAT "\n",
            json_integer_value(json_object_get(view, "records_skipped")));
    metrics_family(out, "sluice_control_announce_errors_total", "counter",
                   "Failed announcements of this replica on the control topic (sluice ctl cannot reach it then).");
    fprintf(out, "sluice_control_announce_errors_total %" JSON_INTEGER_FORMAT "\n",
            json_integer_value(json_object_get(view, "announce_errors")));
    json_array_foreach(replicas, i, value)
        live += json_is_true(json_object_get(value, "live"));
    metrics_family(out, "sluice_control_replicas", "gauge",
                   "Replicas announced on the control topic: live (heard within three heartbeats) or silent.");
    fprintf(out, "sluice_control_replicas{state=\"live\"} %zu\n", live);
    fprintf(out, "sluice_control_replicas{state=\"silent\"} %zu\n", json_array_size(replicas) - live);
    metrics_family(out, "sluice_control_sink_paused", "gauge",
                   "1 for a sink the group paused (sluice ctl pause), 0 for one it resumed; sinks the group "
                   "never named have no series.");
    json_object_foreach(sinks, name, value) {
        json_t *paused = json_object_get(value, "paused");
        if (!json_is_boolean(paused))
            continue;
        metrics_label_escape(label, sizeof label, name);
        fprintf(out, "sluice_control_sink_paused{sink=\"%s\"} %d\n", label, json_is_true(paused));
    }
    json_decref(view);
}

static void render_listener_metrics(const struct admin *a, FILE *out)
{
    if (a->srv)
        render_server_metrics(a->srv, "sluice_admin", "admin API", out);
    if (a->health_srv)
        render_server_metrics(a->health_srv, "sluice_health", "health listener", out);
}

static void on_metrics(struct admin *a, struct http_server_req *req)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    if (!out) {
        reply_text(req, 500, "text/plain", "out of memory\n");
        return;
    }
    render_metrics(a->hooks.router(a->hooks.arg), out);
    render_config_metrics(a, a->hooks.router(a->hooks.arg), out);
    render_control_metrics(a, out);
    render_listener_metrics(a, out);
    fclose(out);
    reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", text);
    free(text);
}

/* ---- /sinks ---- */

struct positions_ctx {
    json_t *sinks;          /* array, one per sink index, each with a "positions" array */
};

static void on_partition_positions(void *arg, const struct router_partition_view *pv)
{
    struct positions_ctx *pc = arg;
    for (size_t k = 0; k < json_array_size(pc->sinks); k++) {
        json_t *pos;
        if (!pv->reads[k])
            continue;
        pos = json_pack("{s:s, s:i, s:I, s:I, s:I}", "topic", pv->topic, "partition", (int)pv->partition,
                        "next", (json_int_t)pv->next[k], "committed", (json_int_t)pv->committed,
                        "high_watermark", (json_int_t)pv->high_watermark);
        if (pos && pv->high_watermark >= 0 && pv->next[k] >= 0)
            json_object_set_new(pos, "lag", json_integer(pv->high_watermark > pv->next[k] ? pv->high_watermark - pv->next[k] : 0));
        json_array_append_new(json_object_get(json_array_get(pc->sinks, k), "positions"), pos);
    }
}

static const char *sink_state_name(const struct router_sink_view *v)
{
    if (v->paused)
        return "paused";
    if (v->parked)
        return "parked";
    if (v->resyncing)
        return "resyncing";
    if (v->degraded)
        return "degraded";
    return "running";
}

static json_t *sink_json(const struct router_sink_view *v)
{
    json_t *topics = json_array();
    const struct router_sink_stats *st = v->stats;

    for (size_t t = 0; t < v->sk->topics.n; t++)
        json_array_append_new(topics, json_string(v->sk->topics.v[t]));
    return json_pack("{s:s, s:s, s:s?, s:s?, s:o, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:[]}",
        "name", v->sk->name, "type", v->sk->type, "owner", v->sk->owner, "description", v->sk->description,
        "topics", topics, "state", sink_state_name(v),
        "parked", v->parked ? json_pack("{s:s, s:I}", "reason", v->park_reason, "for_ms", (json_int_t)v->parked_ms)
                            : json_null(),
        "loss", st->records_lost ? json_pack("{s:I, s:s}", "records", (json_int_t)st->records_lost, "last", v->last_loss)
                                 : json_null(),
        "delivered", (json_int_t)st->delivered, "dead_lettered", (json_int_t)st->dead_lettered,
        "filtered", (json_int_t)st->filtered, "skipped", (json_int_t)st->skipped,
        "retries", (json_int_t)st->retries, "batches", (json_int_t)st->batches,
        "in_flight", (json_int_t)st->in_flight, "buffered", (json_int_t)v->buffered,
        "fenced", (json_int_t)st->fenced, "buffered_bytes", (json_int_t)v->buffered_bytes,
        "parks", (json_int_t)st->parks, "records_lost", (json_int_t)st->records_lost,
        "oversized", (json_int_t)st->oversized,
        "last_error", v->last_error_ms ? json_pack("{s:s, s:I}", "message", v->last_error, "at_ms", (json_int_t)v->last_error_ms)
                                       : json_null(),
        "positions");
}

/* A sink file set aside: the same fields a client reads of a running sink, and its messages. */
static json_t *invalid_sink_json(const struct admin_invalid_sink *inv)
{
    json_t *messages = json_array();

    for (size_t i = 0; i < inv->nmessages; i++)
        json_array_append_new(messages, json_string(inv->messages[i]));
    return json_pack("{s:s, s:s, s:s, s:o, s:[], s:I, s:I, s:n, s:[]}", "name", inv->name, "state", "invalid",
                     "file", inv->file, "messages", messages, "topics", "delivered", (json_int_t)0,
                     "dead_lettered", (json_int_t)0, "last_error", "positions");
}

static json_t *registry_json(struct router *r)
{
    struct router_registry_view rv;

    if (router_registry_view(r, &rv) != 0)
        return json_null();
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "state", rv.state, "error", rv.error, "cached_schemas",
                     (json_int_t)rv.cached, "cached_bytes", (json_int_t)rv.cached_bytes, "fetching",
                     (json_int_t)rv.fetching, "records_waiting", (json_int_t)rv.waiting_records);
}

static json_t *contract_json(const struct router_topic_view *tv)
{
    json_t *rules;

    if (!tv->has_contract || !(rules = json_object()))
        return json_null();
    for (size_t k = 0; k < tv->ncontract_rules; k++)
        json_object_set_new(rules, tv->contract_rules[k].rule, json_integer((json_int_t)tv->contract_rules[k].violations));
    return json_pack("{s:s, s:I, s:o, s:s?, s:s?}", "kind", tv->contract_kind, "valid", (json_int_t)tv->contract_valid,
                     "violations", rules, "last_violation", tv->last_violation[0] ? tv->last_violation : NULL,
                     "held", tv->contract_held[0] ? tv->contract_held : NULL);
}

static json_t *topics_json(struct router *r)
{
    json_t *topics = json_object();

    for (size_t i = 0; topics && i < router_format_topic_count(r); i++) {
        struct router_topic_view tv;
        router_format_topic_view(r, i, &tv);
        json_object_set_new(topics, tv.name,
                            json_pack("{s:s, s:s, s:I, s:I, s:s?, s:I, s:o}", "value_format", tv.value_format, "key_format",
                                      tv.key_format, "decoded", (json_int_t)tv.decoded, "decode_failures",
                                      (json_int_t)tv.decode_failures, "last_decode_error",
                                      tv.last_decode_error[0] ? tv.last_decode_error : NULL, "records_waiting",
                                      (json_int_t)tv.waiting_records, "contract", contract_json(&tv)));
    }
    return topics ? topics : json_null();
}

static void on_sinks(struct admin *a, struct http_server_req *req)
{
    struct router *r = a->hooks.router(a->hooks.arg);
    const struct admin_config_view *cv = a->hooks.config ? a->hooks.config(a->hooks.arg) : NULL;
    struct positions_ctx pc = { json_array() };
    char why[256] = "";
    int ready = router_ready(r, why, sizeof why);

    for (size_t k = 0; k < router_sink_count(r); k++) {
        struct router_sink_view v;
        router_sink_view(r, k, &v);
        json_array_append_new(pc.sinks, sink_json(&v));
    }
    router_partitions_foreach(r, on_partition_positions, &pc);
    /* after the positions: those index the running sinks */
    for (size_t k = 0; cv && k < cv->ninvalid; k++)
        json_array_append_new(pc.sinks, invalid_sink_json(&cv->invalid[k]));
    reply_json(req, 200, json_pack("{s:s, s:b, s:s, s:o, s:o, s:o}", "group", router_group(r), "ready", ready,
                                   "not_ready_because", ready ? "" : why, "sinks", pc.sinks,
                                   "registry", registry_json(r), "topics", topics_json(r)));
}

static void on_sink_debug(struct admin *a, struct http_server_req *req, size_t k)
{
    struct router *r = a->hooks.router(a->hooks.arg);
    struct router_delivery deliveries[DEBUG_DELIVERIES];
    size_t n = router_sink_deliveries(r, k, deliveries, DEBUG_DELIVERIES);
    struct router_sink_view v;
    json_t *list = json_array();

    router_sink_view(r, k, &v);
    for (size_t i = 0; i < n; i++) {
        const struct router_delivery *d = &deliveries[i];
        json_array_append_new(list, json_pack("{s:I, s:I, s:s, s:i, s:I, s:I, s:I, s:I, s:i, s:s, s:s, s:s}",
            "at_ms", (json_int_t)d->at_ms, "duration_ms", (json_int_t)d->duration_ms, "topic", d->topic,
            "partition", (int)d->partition, "first_offset", (json_int_t)d->first_offset,
            "last_offset", (json_int_t)d->last_offset, "records", (json_int_t)d->count,
            "bytes", (json_int_t)d->bytes, "attempt", (int)d->attempt, "result", tap_result_name(d->result),
            "error", d->error, "detail", d->detail));
    }
    reply_json(req, 200, json_pack("{s:s, s:s, s:o}", "name", v.sk->name, "type", v.sk->type, "deliveries", list));
}

/* A number parameter of the query: 0 when absent, -1 when not a number in [min, max]. */
static int query_number(const char *query, const char *name, long long min, long long max, long long *out)
{
    char *text = http_query_param(query, name), *end;
    long long v;

    if (!text)
        return 0;
    v = strtoll(text, &end, 10);
    if (!text[0] || *end || v < min || v > max) {
        free(text);
        return -1;
    }
    free(text);
    *out = v;
    return 1;
}

static void on_sink_tap(struct admin *a, struct http_server_req *req, size_t k)
{
    struct router *r = a->hooks.router(a->hooks.arg);
    const char *query = http_server_req_query(req);
    struct tap_filter filter = { 0, -1 };
    struct router_sink_view v;
    long long partition = -1;
    int rc;

    if (query_number(query, "limit", 1, 1000000000LL, &filter.limit) < 0 ||
        query_number(query, "partition", 0, INT32_MAX, &partition) < 0) {
        reply_error(req, 400, "limit must be a number from 1, partition a number from 0");
        return;
    }
    filter.partition = (int32_t)partition;
    router_sink_view(r, k, &v);
    rc = tap_attach(router_sink_tap(r, k), v.sk->name, req, &filter);
    if (rc == -2)
        reply_error(req, 503, "too many clients tap this sink already");
    else if (rc != 0)
        reply_error(req, 500, "out of memory");
}

static void on_replay_time_answer(void *arg, int rewound, size_t unmatched, const char *error)
{
    struct http_server_req *req = arg;
    if (rewound < 0 || error) {
        reply_error(req, 502, error ? error : "the time lookup failed");
        return;
    }
    reply_json(req, 200, json_pack("{s:i, s:I}", "partitions_rewound", rewound,
                                   "partitions_without_records_after", (json_int_t)unmatched));
}

static void on_sink_replay(struct admin *a, struct http_server_req *req, size_t k)
{
    struct router *r = a->hooks.router(a->hooks.arg);
    struct admin_replay rp;
    char err[256];
    size_t len;
    const char *body = http_server_req_body(req, &len);
    int rewound;

    if (admin_replay_parse(body, len, &rp, err, sizeof err) != 0) {
        reply_error(req, 400, err);
        return;
    }
    if (rp.by_time) {
        /* Answered when Kafka has told the offsets for that time. */
        if (router_sink_replay_time(r, k, rp.topic[0] ? rp.topic : NULL, rp.partition, rp.at, -1,
                                    on_replay_time_answer, req, err, sizeof err) != 0)
            reply_error(req, 400, err);
        return;
    }
    rewound = router_sink_replay(r, k, rp.topic[0] ? rp.topic : NULL, rp.partition, rp.at, -1, err, sizeof err);
    if (rewound < 0) {
        reply_error(req, 400, err);
        return;
    }
    reply_json(req, 200, json_pack("{s:i}", "partitions_rewound", rewound));
}

static void on_reload(struct admin *a, struct http_server_req *req)
{
    char msg[8192] = "";
    if (!a->hooks.reload) {
        reply_error(req, 501, "reload is not available");
        return;
    }
    if (a->hooks.reload(a->hooks.arg, msg, sizeof msg) != 0) {
        reply_error(req, 400, msg);
        return;
    }
    reply_json(req, 200, json_pack("{s:s}", "status", msg[0] ? msg : "reloaded"));
}

static void on_readyz(struct router *r, struct http_server_req *req)
{
    char why[256] = "";

    if (router_ready(r, why, sizeof why))
        reply_text(req, 200, "text/plain", "ready\n");
    else {
        char body[300];
        snprintf(body, sizeof body, "not ready: %s\n", why);
        reply_text(req, 503, "text/plain", body);
    }
}

/* The health listener: the probes and the scrape, never a token, nothing else. */
static void on_health_request(struct http_server_req *req, void *arg)
{
    struct admin *a = arg;
    struct admin_route rt;
    struct router *r = a->hooks.router(a->hooks.arg);

    admin_route(http_server_req_method(req), http_server_req_path(req), &rt);
    if (rt.ep == ADMIN_EP_HEALTHZ)
        reply_text(req, 200, "text/plain", "ok\n");
    else if (rt.ep != ADMIN_EP_READYZ && rt.ep != ADMIN_EP_METRICS)
        reply_error(req, 404, "not found: this listener serves GET /healthz, /readyz and /metrics");
    else if (!r)
        reply_text(req, 503, "text/plain", "restarting the pipeline\n");
    else if (rt.ep == ADMIN_EP_READYZ)
        on_readyz(r, req);
    else
        on_metrics(a, req);
}

static void on_request(struct http_server_req *req, void *arg)
{
    struct admin *a = arg;
    struct admin_route rt;
    struct router *r = a->hooks.router(a->hooks.arg);
    int k = -1;

    admin_route(http_server_req_method(req), http_server_req_path(req), &rt);
    if (rt.ep == ADMIN_EP_HEALTHZ) {
        reply_text(req, 200, "text/plain", "ok\n");
        return;
    }
    if (!r) {
        reply_text(req, 503, "text/plain", "restarting the pipeline\n");
        return;
    }
    if (!admin_authorized(a, req, admin_route_query_token(&rt))) {
        http_server_reply_header(req, "WWW-Authenticate", "Bearer realm=\"sluice\"");
        reply_error(req, 401, "a valid bearer token is required");
        return;
    }
    if (rt.sink[0] && (k = router_sink_find(r, rt.sink)) < 0) {
        reply_error(req, 404, "no such sink");
        return;
    }
    switch (rt.ep) {
    case ADMIN_EP_STATUS_PAGE:
        reply_text(req, 200, "text/html; charset=utf-8", status_page_html);
        break;
    case ADMIN_EP_READYZ:
        on_readyz(r, req);
        break;
    case ADMIN_EP_METRICS:
        on_metrics(a, req);
        break;
    case ADMIN_EP_SINKS:
        on_sinks(a, req);
        break;
    case ADMIN_EP_RELOAD:
        on_reload(a, req);
        break;
    case ADMIN_EP_GROUP: {
        json_t *view = a->hooks.group ? a->hooks.group(a->hooks.arg) : NULL;
        if (view)
            reply_json(req, 200, view);
        else
            reply_error(req, 404, "no control topic: set control.topic for group-wide operations");
        break;
    }
    case ADMIN_EP_SINK_DEBUG:
        on_sink_debug(a, req, (size_t)k);
        break;
    case ADMIN_EP_SINK_PAUSE:
        router_sink_pause(r, (size_t)k);
        reply_json(req, 200, json_pack("{s:s, s:s}", "name", rt.sink, "state", "paused"));
        break;
    case ADMIN_EP_SINK_RESUME:
        router_sink_resume(r, (size_t)k);
        reply_json(req, 200, json_pack("{s:s, s:s}", "name", rt.sink, "state", "running"));
        break;
    case ADMIN_EP_SINK_REPLAY:
        on_sink_replay(a, req, (size_t)k);
        break;
    case ADMIN_EP_SINK_TAP:
        on_sink_tap(a, req, (size_t)k);
        break;
    case ADMIN_EP_SINK_BAD_ACTION:
        reply_error(req, 404, "unknown action; GET debug or tap, POST pause, resume or replay");
        break;
    case ADMIN_EP_NO_SINK:
        reply_error(req, 404, "no such sink");
        break;
    default:
        reply_error(req, 404, "not found");
        break;
    }
}

/* "host:port" with the port bound (tests read it for "host:0"). */
static void log_listening(const char *what, const char *listen, int port)
{
    const char *colon = strrchr(listen, ':');
    LOG(LOG_INFO, "%s listening on %.*s:%d", what, colon ? (int)(colon - listen) : (int)strlen(listen), listen, port);
}

struct admin *admin_new(struct event_base *eb, const char *listen, const char *health_listen, const char *token,
                        const struct http_limits *limits, const struct admin_hooks *hooks,
                        char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof *a);

    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->hooks = *hooks;
    if (listen && listen[0] && token && !token[0]) {
        /* Set, but to nothing (an empty ${NAME}): running without the protection it asked for
         * would be worse than not starting. (Without the admin API it protects nothing.) */
        snprintf(err, errlen, "admin.token is set but empty; unset it to run the admin API without a token");
        goto fail;
    }
    if (token) {
        SHA256((const unsigned char *)token, strlen(token), a->token_digest);
        a->has_token = 1;
    }
    if (listen && listen[0]) {
        if (!(a->srv = http_server_new(eb, listen, "admin", limits, on_request, a, err, errlen)))
            goto fail;
        if (!a->has_token)
            LOG(LOG_WARN, "admin API on %s has no token: whoever reaches it can pause and replay sinks", listen);
        log_listening("admin API", listen, admin_port(a));
    }
    if (health_listen && health_listen[0]) {
        if (!(a->health_srv = http_server_new(eb, health_listen, "health", limits, on_health_request, a, err, errlen)))
            goto fail;
        log_listening("health listener", health_listen, admin_health_port(a));
    }
    return a;
fail:
    admin_free(a);
    return NULL;
}

int admin_port(const struct admin *a)
{
    return a->srv ? http_server_port(a->srv) : -1;
}

int admin_health_port(const struct admin *a)
{
    return a->health_srv ? http_server_port(a->health_srv) : -1;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    http_server_free(a->srv);
    http_server_free(a->health_srv);
    free(a);
}
