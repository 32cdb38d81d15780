/* The router: one record to the sinks of its topic. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "contract.h"
#include "decode.h"
#include "dlq.h"
#include "dlq_cli.h"
#include "engine.h"
#include "filter.h"
#include "flow.h"
#include "offsets.h"
#include "position.h"
#include "conf.h"
#include "queue.h"
#include "registry.h"
#include "route.h"
#include "lib/log.h"
#include "lib/ruleset.h"

/* A record the sink cannot take: dead-lettered, or under on_failure block the sink is parked
 * with the record still unfinished, so it is tried again when the sink comes back. */
static void spart_refuse(struct spart *sp, const struct sink_record *e, const char *reason)
{
    if (sp->sk->on_failure != SINK_ON_FAILURE_BLOCK || sp->rp->r->dry_run) {
        spart_dead_letter(sp, e, reason);
        return;
    }
    sink_park(sp->sk, "%s [%" PRId32 "] @%" PRId64 ": %s (on_failure block: not skipped)", e->topic, e->partition,
              e->offset, reason);
}

/* Whether the sink takes the record at @p offset now: not while it is resyncing or held off
 * (it rewinds when back), not what it already has. Accepts the offset in its tracker. */
static int spart_takes(struct spart *sp, int64_t offset)
{
    struct rpart *rp = sp->rp;
    size_t k = sp->sink_index;
    struct sink *sk = sp->sk;

    if (sp->resyncing || sink_holds_off(sk)) {
        /* It keeps its next: the consumer rewinds for it when it is back. One that has no
         * position here yet takes this first record it misses as its position, which holds
         * the committed offset back for it. */
        if (!sp->resyncing && offsets_next(rp->op, k) == OFFSET_UNKNOWN)
            offsets_rewind(rp->op, k, offset);
        return 0;
    }
    {
        /* The consumer jumped over offsets this sink never got: compaction, transaction
         * markers, or retention (a position below the log start), which is a loss. */
        int64_t end = offsets_handed_end(rp->op, k);
        if (end != OFFSET_UNKNOWN && offset > end)
            spart_check_lost(sp, end);
    }
    if (!offsets_accept(rp->op, k, offset)) {
        sk->state->stats.skipped++;
        if (!sp->beyond_end_reported)
            spart_check_beyond_end(sp);
        return 0;
    }
    return 1;
}

/* One record, decoded when its topic says so, to every sink of its topic. */
static void route_record(struct rpart *rp, struct router_record *rec)
{
    const rd_kafka_message_t *rkm = rec->rkm;
    char err[512];

    for (size_t i = 0; i < rp->rt->nsinks; i++) {
        size_t k = rp->rt->sinks[i];
        struct spart *sp = rp->sparts[k];
        struct sink *sk = sp->sk;
        struct sink_record e;
        json_t *doc = NULL;

        if (rec->redriven && (long)k != rec->redrive_sink)
            continue;   /* finished for the others when it came (route_redriven) */
        if (!spart_takes(sp, rkm->offset))
            continue;
        rec->refs++;     /* held while this sink looks at it */
        entry_fill(&e, rec, rp->rt->name);
        if ((long long)(e.key_len + e.value_len) > sk->max_record_bytes) {
            snprintf(err, sizeof err, "record of %zu bytes is over max_record_bytes (%lld)", e.key_len + e.value_len,
                     sk->max_record_bytes);
            sk->state->stats.oversized++;
            spart_refuse(sp, &e, err);
            record_unref(rec);
            continue;
        }
        if (rkm->payload && (sk->state->filter || (sk->ops->flags & SINK_F_JSON))) {
            doc = record_doc(rec);
            if (!doc) {
                spart_refuse(sp, &e, rec->doc_error ? rec->doc_error : "value is not JSON");
                record_unref(rec);
                continue;
            }
        }
        if (sk->state->filter && rkm->payload && !filter_match(sk->state->filter, doc)) {
            offsets_done(rp->op, k, rkm->offset);
            sk->state->stats.filtered++;
            record_unref(rec);
            continue;
        }
        e.doc = (sk->ops->flags & SINK_F_JSON) ? doc : NULL;
        if (sk->ops->prepare) {
            err[0] = '\0';
            if (sk->ops->prepare(sk, &e, err, sizeof err) != 0) {
                spart_refuse(sp, &e, err[0] ? err : "the sink cannot map this record");
                record_unref(rec);
                continue;
            }
        } else {
            e.prepared_len = e.key_len + e.value_len;
        }
        if (spart_enqueue(sp, &e) != 0) {
            sink_log(sk, LOG_ERROR, "out of memory queueing a record");
            abort();
        }
        spart_schedule(sp);
    }
}

struct record_letter {
    struct router *r;
    struct rtopic *rt;
    int32_t partition;
    uint64_t generation;
    int64_t offset;
    size_t nsinks;
    size_t sinks[];             /* the sinks that took the record: done once Kafka has the letter */
};

static void on_record_letter_stored(void *arg, int ok, const char *error)
{
    struct record_letter *ctx = arg;
    struct rpart *rp = (size_t)ctx->partition < ctx->rt->nparts ? ctx->rt->parts[ctx->partition] : NULL;

    (void)error;
    if (ok && rp && rp->generation == ctx->generation)
        for (size_t i = 0; i < ctx->nsinks; i++)
            offsets_done(rp->op, ctx->sinks[i], ctx->offset);
    router_progress(ctx->r);
    free(ctx);
}

/* A record no sink can read (the decode stage refused it): one dead letter for the record, not
 * one per sink, with its original bytes; every sink that took it counts it done once Kafka has
 * the letter. */
static void route_dead_letter(struct rpart *rp, struct router_record *rec, const char *stage, const char *rule,
                              const char *why)
{
    struct router *r = rp->r;
    const rd_kafka_message_t *rkm = rec->rkm;
    struct record_letter *ctx = malloc(sizeof *ctx + rp->rt->nsinks * sizeof ctx->sinks[0]);
    rd_kafka_timestamp_type_t tstype;
    struct dlq_letter letter = {
        .stage = stage, .rule = rule, .reason = why, .topic = rp->rt->name, .partition = rkm->partition,
        .offset = rkm->offset, .key = rkm->key, .key_len = rkm->key ? rkm->key_len : 0, .value = rkm->payload,
        .value_len = rkm->payload ? rkm->len : 0, .timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype),
        .has_schema_id = rec->has_schema_id, .schema_id = rec->schema_id,
    };

    if (!ctx)
        abort();   /* out of memory on the loop */
    *ctx = (struct record_letter){ r, rp->rt, rp->partition, rp->generation, rkm->offset, 0 };
    for (size_t i = 0; i < rp->rt->nsinks; i++)
        if ((!rec->redriven || (long)rp->rt->sinks[i] == rec->redrive_sink) &&
            spart_takes(rp->sparts[rp->rt->sinks[i]], rkm->offset))
            ctx->sinks[ctx->nsinks++] = rp->rt->sinks[i];
    if (ctx->nsinks == 0) {   /* every sink is away: it reads the record again when back */
        free(ctx);
        return;
    }
    if (r->dry_run) {
        json_t *line = json_pack("{s:{s:s, s:i, s:I}, s:s, s:s*, s:s}", "dead_letter", "topic", rp->rt->name, "partition",
                                 (int)rkm->partition, "offset", (json_int_t)rkm->offset, "stage", stage, "rule", rule,
                                 "reason", why);
        if (line) {
            json_dumpf(line, r->dry_run, JSON_COMPACT);
            fputc('\n', r->dry_run);
            json_decref(line);
        }
        on_record_letter_stored(ctx, 1, NULL);
        return;
    }
    LOG(LOG_WARN, "dead-lettering %s [%" PRId32 "] @%" PRId64 " for every sink of the topic: %s", rp->rt->name,
        rkm->partition, rkm->offset, why);
    if (dlq_send(r->dlq, &letter, on_record_letter_stored, ctx) != 0) {
        LOG(LOG_ERROR, "out of memory while dead-lettering; the record stays unfinished");
        free(ctx);
    }
}

/* Violations by rule; past CONTRACT_RULES_MAX - 1 rules the last slot counts them all as "other". */
static void contract_count(struct rtopic *rt, const char *rule)
{
    size_t i;

    for (i = 0; i < rt->ncontract_rules; i++)
        if (strncmp(rt->contract_rules[i].rule, rule, sizeof rt->contract_rules[i].rule - 1) == 0)
            break;
    if (i == rt->ncontract_rules) {
        if (i == CONTRACT_RULES_MAX)
            i = CONTRACT_RULES_MAX - 1;   /* "other", already there */
        else if (i == CONTRACT_RULES_MAX - 1)
            snprintf(rt->contract_rules[i].rule, sizeof rt->contract_rules[i].rule, "other");
        else
            snprintf(rt->contract_rules[i].rule, sizeof rt->contract_rules[i].rule, "%.159s", rule);
        if (rt->ncontract_rules < CONTRACT_RULES_MAX)
            rt->ncontract_rules++;
    }
    rt->contract_rules[i].violations++;
}

static void contract_violated(struct rpart *rp, struct router_record *rec, const char *rule, const char *reason)
{
    struct rtopic *rt = rp->rt;

    contract_count(rt, rule);
    snprintf(rt->last_violation, sizeof rt->last_violation, "[%" PRId32 "] @%" PRId64 ": %.700s", rec->rkm->partition,
             rec->rkm->offset, reason);
    route_dead_letter(rp, rec, "contract", rule, reason);
}

/* A rule whose onFailure is NONE: counted and shown, and the record goes on. */
static void contract_noted(void *arg, const struct ruleset_failure *f)
{
    struct rtopic *rt = arg;

    contract_count(rt, f->rule);
    snprintf(rt->last_violation, sizeof rt->last_violation, "contract: %.600s (onFailure NONE: passed on)", f->reason);
}

/* The registry's contract cannot be checked (rules sluice cannot run): the record is held, and
 * the topic's sinks are parked with the reason, rather than given data nobody judged. They stay
 * parked until a configuration without that contract is loaded (router_check_parking). */
static void contract_hold(struct rpart *rp, const struct router_record *rec, const char *why)
{
    struct rtopic *rt = rp->rt;
    struct router *r = rp->r;

    if (!rt->contract_held[0]) {
        snprintf(rt->contract_held, sizeof rt->contract_held, "contract of schema %" PRIu32 ": %.440s",
                 rec->schema_id, why);
        LOG(LOG_ERROR, "%s: records held from [%" PRId32 "] @%" PRId64 ": %s", rt->name, rec->rkm->partition,
            rec->rkm->offset, rt->contract_held);
    }
    for (size_t i = 0; i < rt->nsinks; i++) {
        struct sink *sk = r->conf->sinks[rt->sinks[i]];
        if (sk->state->parked)
            continue;
        sk->state->parked_by_contract = 1;
        sink_park(sk, "%s: %s; its records are held, not passed on unchecked", rt->name, rt->contract_held);
    }
}

/* The registry's contract: a JSON Schema payload against its schema, then the schema's rules. 1
 * when the record must wait, else it was routed or dead-lettered. */
static int route_registry_contract(struct rpart *rp, struct router_record *rec)
{
    struct rtopic *rt = rp->rt;
    struct decode_contract c;
    struct contract_verdict v;
    struct ruleset_failure f;
    char why[1024];

    switch (decode_contract(rp->r->registry, rec, &c, why, sizeof why)) {
    case DECODE_WAIT:
        return 1;
    case DECODE_FAIL:
        rt->decode_failures++;
        route_dead_letter(rp, rec, "decode", NULL, why);
        return 0;
    case DECODE_OK:
        break;
    }
    if (c.unsupported) {
        contract_hold(rp, rec, c.unsupported);
        return 1;
    }
    if (c.json_schema && !contract_check(c.json_schema, record_doc(rec), rec->doc_error, &v)) {
        contract_violated(rp, rec, v.rule, v.reason);
        return 0;
    }
    if (c.rules && ruleset_count(c.rules) > 0) {
        const json_t *doc = record_doc(rec);
        if (!doc) {
            snprintf(why, sizeof why, "contract: %.900s", rec->doc_error ? rec->doc_error : "value is not JSON");
            contract_violated(rp, rec, "json", why);
            return 0;
        }
        if (!ruleset_check(c.rules, doc, contract_noted, rt, &f)) {
            snprintf(why, sizeof why, "contract: %s", f.reason);
            contract_violated(rp, rec, f.rule, why);
            return 0;
        }
    }
    rt->contract_valid++;
    route_record(rp, rec);
    return 0;
}

/* The contract stage: a record that breaks its topic's contract goes no further. 1 when the
 * record must wait (its contract cannot be checked now). */
static int route_checked(struct rpart *rp, struct router_record *rec)
{
    struct rtopic *rt = rp->rt;
    struct contract_verdict v;
    /* A re-driven record meets its own topic's contract, as it would have the first time. */
    const struct jsonschema *schema = rec->redriven ? (rec->redrive_format ? rec->redrive_format->contract_schema : NULL)
                                                    : rt->contract;
    int registry = rec->redriven ? rec->redrive_format && rec->redrive_format->contract_registry : rt->contract_registry;

    if (registry && rec->rkm->payload)
        return route_registry_contract(rp, rec);
    if (schema && rec->rkm->payload) {   /* a tombstone has no value to judge */
        if (!contract_check(schema, record_doc(rec), rec->doc_error, &v)) {
            contract_violated(rp, rec, v.rule, v.reason);
            return 0;
        }
        rt->contract_valid++;
    }
    route_record(rp, rec);
    return 0;
}

/* The format a record is decoded by: its topic's, or for a re-driven one its original topic's. */
static const struct conf_topic *record_format(const struct rpart *rp, const struct router_record *rec)
{
    return rec->redriven ? rec->redrive_format : rp->rt->format;
}

/* The decode stage for one record: routed, dead-lettered, or 1 when it must wait. */
static int route_decoded(struct rpart *rp, struct router_record *rec)
{
    char why[1024];

    if (!record_format(rp, rec))
        return route_checked(rp, rec);   /* plain JSON: only behind a waiting record of the redrive topic */
    enum decode_verdict verdict = decode_record(rp->r->registry, record_format(rp, rec), rec, why, sizeof why);

    record_count(rec);   /* its decoded forms, before any sink holds it */
    switch (verdict) {
    case DECODE_WAIT:
        return 1;
    case DECODE_FAIL:
        rp->rt->decode_failures++;
        snprintf(rp->rt->last_decode_error, sizeof rp->rt->last_decode_error, "[%" PRId32 "] @%" PRId64 ": %.440s",
                 rec->rkm->partition, rec->rkm->offset, why);
        route_dead_letter(rp, rec, "decode", NULL, why);
        return 0;
    case DECODE_OK:
        if (route_checked(rp, rec))
            return 1;
        rp->rt->decoded++;
        return 0;
    }
    return 0;
}

/* Records of @p rp waiting for a schema go on as far as the registry allows. */
static void rpart_wait_resume(struct rpart *rp)
{
    while (rp->wait_head && rp->state == RPART_ACTIVE && rp->r->phase == PHASE_RUNNING) {
        if (route_decoded(rp, rp->wait_head))
            break;
        record_unref(rpart_wait_pop(rp));
    }
    rpart_check_backpressure(rp);
}

/* The registry refuses sluice's credentials: a configuration fault, not the records' fault. The
 * sinks of a topic whose records wait for a schema are parked with that reason (nothing is
 * dead-lettered); they stay parked while the fault lasts (router_check_parking). */
static void registry_park_sinks(struct router *r)
{
    char why[512];

    if (registry_state(r->registry, why, sizeof why) != REGISTRY_UNAUTHORIZED)
        return;
    for (size_t t = 0; t < r->ntopics; t++) {
        struct rtopic *rt = &r->topics[t];
        int waiting = 0;
        for (size_t p = 0; p < rt->nparts && !waiting; p++)
            waiting = rt->parts[p] && rt->parts[p]->wait_head;
        for (size_t i = 0; waiting && i < rt->nsinks; i++) {
            struct sink *sk = r->conf->sinks[rt->sinks[i]];
            if (sk->state->parked)
                continue;
            sk->state->parked_by_registry = 1;
            sink_park(sk, "schema registry: %s", why);
        }
    }
}

void router_on_registry_update(void *arg)
{
    struct router *r = arg;

    registry_park_sinks(r);

    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++) {
            struct rpart *rp = r->topics[t].parts[p];
            if (rp && rp->wait_head)
                rpart_wait_resume(rp);
        }
    router_progress(r);
}

/* A record of the redrive topic (`sluice dlq redrive`): which sink it is for and what topic it
 * came from, from its headers; every other sink is done with it at once. */
static void route_redriven(struct rpart *rp, struct router_record *rec)
{
    struct router *r = rp->r;
    rd_kafka_headers_t *hdrs = NULL;
    const void *sink = NULL, *topic = NULL;
    size_t sink_len = 0, topic_len = 0;
    char name[256];

    rec->redriven = 1;
    rec->redrive_sink = -1;
    if (rd_kafka_message_headers(rec->rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_header_get_last(hdrs, REDRIVE_HEADER_SINK, &sink, &sink_len);
        rd_kafka_header_get_last(hdrs, REDRIVE_HEADER_TOPIC, &topic, &topic_len);
    }
    for (size_t i = 0; sink && i < rp->rt->nsinks; i++) {
        const char *n = r->conf->sinks[rp->rt->sinks[i]]->name;
        if (strlen(n) == sink_len && memcmp(n, sink, sink_len) == 0)
            rec->redrive_sink = (long)rp->rt->sinks[i];
    }
    if (topic && topic_len < sizeof name) {
        memcpy(name, topic, topic_len);
        name[topic_len] = '\0';
        rec->redrive_format = conf_products_topic(&r->conf->products, name);
    }
    if (rec->redrive_sink < 0)
        LOG(LOG_WARN, "%s [%" PRId32 "] @%" PRId64 ": re-driven for sink \"%.*s\", which this configuration does not "
                      "have: skipped", rp->rt->name, rec->rkm->partition, rec->rkm->offset, (int)(sink ? sink_len : 4),
            sink ? (const char *)sink : "none");
    for (size_t i = 0; i < rp->rt->nsinks; i++) {
        size_t k = rp->rt->sinks[i];
        if ((long)k != rec->redrive_sink && spart_takes(rp->sparts[k], rec->rkm->offset))
            offsets_done(rp->op, k, rec->rkm->offset);
    }
}

void router_route(struct router *r, rd_kafka_message_t *rkm)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    struct rpart *rp = router_part(r, topic, rkm->partition);
    struct router_record *rec;

    if (!rp || rp->state != RPART_ACTIVE || r->phase != PHASE_RUNNING) {
        rd_kafka_message_destroy(rkm);   /* not ours (any more): not handed, not finished */
        return;
    }
    if (rkm->offset + 1 > rp->fetched_end)
        rp->fetched_end = rkm->offset + 1;
    rp->took = 1;
    if (!(rec = record_new(rkm))) {
        LOG(LOG_ERROR, "out of memory routing a record");
        abort();
    }
    rec->refs = 1;   /* routing's own reference, so no sink frees it under the others */
    if (rp->rt->redrive)
        route_redriven(rp, rec);
    if (rp->wait_head || (record_format(rp, rec) && route_decoded(rp, rec))) {
        rpart_wait_push(rp, rec);   /* behind its schema, or behind an earlier record waiting for one */
        rpart_check_backpressure(rp);
        return;
    }
    if (!record_format(rp, rec))
        (void)route_checked(rp, rec);   /* no registry contract without a format: it never waits */
    record_unref(rec);
    rpart_check_backpressure(rp);
}
