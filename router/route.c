/* The router: one record to the sinks of its topic. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "batch.h"
#include "engine.h"
#include "filter.h"
#include "flow.h"
#include "offsets.h"
#include "position.h"
#include "queue.h"
#include "route.h"
#include "lib/log.h"

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

void router_route(struct router *r, rd_kafka_message_t *rkm)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    struct rpart *rp = router_part(r, topic, rkm->partition);
    struct router_record *rec = NULL;
    char err[512];

    if (!rp || rp->state != RPART_ACTIVE || r->phase != PHASE_RUNNING) {
        rd_kafka_message_destroy(rkm);   /* not ours (any more): not handed, not finished */
        return;
    }
    if (rkm->offset + 1 > rp->fetched_end)
        rp->fetched_end = rkm->offset + 1;
    for (size_t i = 0; i < rp->rt->nsinks; i++) {
        size_t k = rp->rt->sinks[i];
        struct spart *sp = rp->sparts[k];
        struct sink *sk = sp->sk;
        struct sink_record e;
        json_t *doc = NULL;

        if (sp->resyncing || sink_holds_off(sk)) {
            /* It keeps its next: the consumer rewinds for it when it is back. One that has no
             * position here yet takes this first record it misses as its position, which holds
             * the committed offset back for it. */
            if (!sp->resyncing && offsets_next(rp->op, k) == OFFSET_UNKNOWN)
                offsets_rewind(rp->op, k, rkm->offset);
            continue;
        }
        {
            /* The consumer jumped over offsets this sink never got: compaction, transaction
             * markers, or retention (a position below the log start), which is a loss. */
            int64_t end = offsets_handed_end(rp->op, k);
            if (end != OFFSET_UNKNOWN && rkm->offset > end)
                spart_check_lost(sp, end);
        }
        if (!offsets_accept(rp->op, k, rkm->offset)) {
            sk->state->stats.skipped++;
            if (!sp->beyond_end_reported)
                spart_check_beyond_end(sp);
            continue;
        }
        if (!rec) {
            if (!(rec = record_new(rkm))) {
                LOG(LOG_ERROR, "out of memory routing a record");
                abort();
            }
            rec->refs = 1;   /* routing's own reference, so no sink frees it under the others */
        }
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
    if (rec)
        record_unref(rec);
    else
        rd_kafka_message_destroy(rkm);
    rpart_check_backpressure(rp);
}
