/* The router: commits, with the cuts of the batches in flight in their metadata. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "commit.h"
#include "cuts.h"
#include "engine.h"
#include "offsets.h"
#include "queue.h"
#include "lib/clock.h"
#include "lib/log.h"

#define CUT_COMMIT_RETRY_MS 200    /* pause before committing a batch's cut again after a failure */

/* After a failed commit: batches held for their cut wait for another, a moment later. */
static void router_retry_cut_commit(struct router *r)
{
    struct timeval tv = ms_to_tv(CUT_COMMIT_RETRY_MS);
    if (!evtimer_pending(r->cut_commit, NULL) && router_holds_cuts(r))
        evtimer_add(r->cut_commit, &tv);
}

/* Commits the position of each partition that moved (of those in @p only when set), with the
 * cuts in flight as metadata. @p held_only: only the partitions with a batch held for its cut
 * (their position too, so that a restart begins at the held batch). */
void router_commit(struct router *r, const rd_kafka_topic_partition_list_t *only, int held_only)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    char metadata[CUT_METADATA_MAX + 1];
    int failed = 0;

    if (r->dry_run)
        return;
    list = rd_kafka_topic_partition_list_new(16);

    for (size_t t = 0; t < r->ntopics; t++) {
        struct rtopic *rt = &r->topics[t];
        for (size_t p = 0; p < rt->nparts; p++) {
            struct rpart *rp = rt->parts[p];
            rd_kafka_topic_partition_t *tp;
            void *copy = NULL;
            int64_t pos;
            size_t len;
            int holds, announce;
            if (!rp || rp->state == RPART_LOADING)
                continue;
            if (only && !rd_kafka_topic_partition_list_find(only, rt->name, (int32_t)p))
                continue;
            holds = rpart_holds_cut(rp);
            if (held_only && !holds)
                continue;
            announce = rpart_learn_known(rp);   /* a sink got a position: name it (cuts.c) */
            pos = offsets_commit_position(rp->op);
            /* A batch held for its cut needs a commit even without progress: the same position
             * again, with the metadata. */
            if (pos == OFFSET_UNKNOWN || (pos <= rp->committed && !holds && !announce))
                continue;
            if (pos < rp->committed)
                pos = rp->committed;   /* a rewind never moves the commit back */
            /* Every commit carries the cuts still in flight: Kafka keeps the last metadata only. */
            len = rpart_cut_metadata(rp, NULL, metadata);
            if (len > 0 && len != SIZE_MAX && !(copy = malloc(len))) {
                LOG(LOG_ERROR, "out of memory committing %s [%zu]; trying again later", rt->name, p);
                failed = 1;
                continue;
            }
            tp = rd_kafka_topic_partition_list_add(list, rt->name, (int32_t)p);
            tp->offset = pos;
            if (copy) {
                memcpy(copy, metadata, len);
                tp->metadata = copy;   /* the list frees it */
                tp->metadata_size = len;
            }
            rp->committed = pos;
        }
    }
    if (list->cnt > 0) {
        err = rd_kafka_commit(r->rk, list, 1);
        if (err) {
            LOG(LOG_WARN, "commit: %s", rd_kafka_err2str(err));
            /* Not sent: as for a commit that failed later, the next tick sends these again. */
            for (int i = 0; i < list->cnt; i++) {
                struct rpart *rp = router_part(r, list->elems[i].topic, list->elems[i].partition);
                if (rp && rp->committed == list->elems[i].offset)
                    rp->committed = OFFSET_UNKNOWN;
            }
        } else {
            r->commits_in_flight++;
        }
    }
    if (failed || err)
        router_retry_cut_commit(r);
    rd_kafka_topic_partition_list_destroy(list);
}

/* A commit that recorded a batch's cut succeeded: that batch goes now. */
static void rpart_release_cuts(struct rpart *rp, const rd_kafka_topic_partition_t *tp)
{
    char metadata[CUT_METADATA_MAX + 1], entry[160];

    if (!tp->metadata || tp->metadata_size <= strlen(CUT_METADATA_TAG) || tp->metadata_size > CUT_METADATA_MAX ||
        memcmp(tp->metadata, CUT_METADATA_TAG, strlen(CUT_METADATA_TAG)) != 0)
        return;
    memcpy(metadata, tp->metadata, tp->metadata_size);
    metadata[tp->metadata_size] = '\0';
    for (size_t s = 0; s < rp->rt->nsinks; s++) {
        struct router_batch *b = rp->sparts[rp->rt->sinks[s]]->inflight;
        const char *at, *from;
        size_t n;
        if (!b || !b->awaiting_commit)
            continue;
        n = (size_t)snprintf(entry, sizeof entry, "%s=%" PRId64 "-%" PRId64, b->pub.sink->name,
                             b->pub.records[0].offset, b->pub.records[b->pub.count - 1].offset);
        /* "<sink>=<first>-<last>" as a whole entry: after the tag or a ';', before a ';' or the end */
        for (from = metadata + 1; (at = strstr(from, entry)) != NULL; from = at + 1)
            if ((at[-1] == ' ' || at[-1] == ';') && (at[n] == ';' || at[n] == '\0'))
                break;
        if (at) {
            b->awaiting_commit = 0;
            batch_write(b);
        }
    }
}

void on_commit_result(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct router *r = opaque;
    int failed = 0;
    (void)rk;

    if (r->commits_in_flight > 0)
        r->commits_in_flight--;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &offsets->elems[i];
        struct rpart *rp = router_part(r, tp->topic, tp->partition);
        if (!err && !tp->err) {
            if (rp && rp->state == RPART_ACTIVE)
                rpart_release_cuts(rp, tp);
            continue;
        }
        /* Not committed: make the next tick send it again. */
        if (rp && rp->committed == tp->offset)
            rp->committed = OFFSET_UNKNOWN;
        LOG(LOG_WARN, "commit of %s [%" PRId32 "] at %" PRId64 " failed: %s", tp->topic, tp->partition,
            tp->offset, rd_kafka_err2str(tp->err ? tp->err : err));
        failed = 1;
    }
    if (failed || (err && !offsets))
        router_retry_cut_commit(r);
    router_progress(r);
}

void on_commit_timer(evutil_socket_t fd, short what, void *arg)
{
    struct router *r = arg;
    (void)fd;
    (void)what;
    if (r->phase == PHASE_RUNNING) {
        for (size_t t = 0; t < r->ntopics; t++)
            for (size_t p = 0; p < r->topics[t].nparts; p++) {
                struct rpart *rp = r->topics[t].parts[p];
                for (size_t s = 0; rp && s < rp->rt->nsinks; s++)
                    spart_flush_position(rp->sparts[rp->rt->sinks[s]]);
            }
    }
    if (r->phase == PHASE_RUNNING || r->phase == PHASE_DRAINING)
        router_commit(r, NULL, 0);
}

void on_cut_commit(evutil_socket_t fd, short what, void *arg)
{
    struct router *r = arg;
    (void)fd;
    (void)what;
    if (r->phase == PHASE_RUNNING || r->phase == PHASE_DRAINING)
        router_commit(r, NULL, 1);
}
