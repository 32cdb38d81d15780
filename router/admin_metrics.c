/* GET /metrics of the admin API and the health listener: the Prometheus text of the router's
 * sinks, partitions, registry and decode stage, the configuration's health, the group's control
 * topic and the listeners' own defences. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include <jansson.h>

#include "admin_metrics.h"
#include "metrics.h"
#include "router.h"

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

/* The configuration's health, and who owns each sink. */
static void render_config_metrics(const struct admin_config_view *cv, struct router *r, FILE *out)
{
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
static void render_control_metrics(json_t *view, FILE *out)
{
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
}

void admin_metrics_render(const struct admin_metrics_sources *src, FILE *out)
{
    render_metrics(src->router, out);
    render_config_metrics(src->config, src->router, out);
    render_control_metrics(src->group, out);
    if (src->admin_srv)
        render_server_metrics(src->admin_srv, "sluice_admin", "admin API", out);
    if (src->health_srv)
        render_server_metrics(src->health_srv, "sluice_health", "health listener", out);
}
