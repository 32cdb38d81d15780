/* The router: stable batch cuts and their commit metadata, "sluice1 <sink>=<first>-<last>;...". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuts.h"
#include "engine.h"
#include "offsets.h"
#include "lib/clock.h"
#include "lib/log.h"

#define SINKS_ENTRY "sinks:"   /* the metadata entry naming the sinks with a position */
#define REPLAYED_ENTRY "replayed:"   /* group replays applied here, "<sink>@<id>,..." (group.h) */
#define FIRST_BATCH_POLL_MIN_MS 10 /* how often a first batch waiting to be full looks again */
/* The longest a first batch waits to be full when the partition's end seems never reached (a
 * transaction marker after its last record keeps the high watermark one past it). */
#define FIRST_BATCH_WAIT_MAX_MS 10000

/* ---- stable batches (SINK_F_STABLE_BATCHES) ----
 * A batch's id names its first and last offsets, so a batch re-sent after a restart or a
 * rebalance must cover the same offsets. One cut by max_records or max_bytes does, as long as
 * the re-formed batch waits to be full. One cut by linger has its end recorded in the commit
 * metadata of its partition before its first attempt goes, and in every commit while it is in
 * flight; the next owner of the partition reads it back with the committed offset, from which
 * the batch starts again. */
static int spart_stable(const struct spart *sp)
{
    return ((sp->sk->ops->flags | sp->sk->flags) & SINK_F_STABLE_BATCHES) && !sp->rp->r->dry_run;
}

/* The commit metadata of a partition, "sluice1 <sink>=<first>-<last>;...;sinks:<name>,...": the
 * cuts of its batches in flight and of those sent but not settled (a recorded cut still to be
 * sent again), plus @p extra when set; then, with @p with_names, the sinks that have a position
 * in the partition (see rpart_learn_known). Written to @p buf (CUT_METADATA_MAX + 1 bytes);
 * returns its length (0: nothing to say), or SIZE_MAX when it would be over CUT_METADATA_MAX. */
static size_t metadata_write(const struct rpart *rp, const struct router_batch *extra, char *buf, int with_names)
{
    size_t len = 0;
    int w;

    buf[0] = '\0';
    for (size_t i = 0; i <= rp->rt->nsinks; i++) {
        const struct spart *sp = i < rp->rt->nsinks ? rp->sparts[rp->rt->sinks[i]] : NULL;
        const struct router_batch *b = sp ? sp->inflight : extra;
        int64_t first, last;
        if (b && (!sp || b->cut)) {
            first = b->pub.records[0].offset;
            last = b->pub.records[b->pub.count - 1].offset;
        } else if (sp && sp->recorded_last >= 0) {
            first = sp->recorded_first;
            last = sp->recorded_last;
        } else {
            continue;
        }
        w = snprintf(buf + len, CUT_METADATA_MAX + 1 - len, "%s%s=%" PRId64 "-%" PRId64, len ? ";" : CUT_METADATA_TAG,
                     (sp ? sp->sk : b->pub.sink)->name, first, last);
        if (w < 0 || (size_t)w > CUT_METADATA_MAX - len)
            return SIZE_MAX;
        len += (size_t)w;
    }
    if (!with_names || !rp->names_sinks)
        return len;
    /* Sink names are A-Z a-z 0-9 . _ - (conf.c): no ';', ',' or '=' to confuse a reader, and an
     * older sluice skips an entry without '='. */
    w = snprintf(buf + len, CUT_METADATA_MAX + 1 - len, "%s%s", len ? ";" : CUT_METADATA_TAG, SINKS_ENTRY);
    if (w < 0 || (size_t)w > CUT_METADATA_MAX - len)
        return SIZE_MAX;
    len += (size_t)w;
    for (size_t i = 0, named = 0; i < rp->rt->nsinks; i++) {
        const struct spart *sp = rp->sparts[rp->rt->sinks[i]];
        if (!sp->known)
            continue;
        w = snprintf(buf + len, CUT_METADATA_MAX + 1 - len, "%s%s", named++ ? "," : "", sp->sk->name);
        if (w < 0 || (size_t)w > CUT_METADATA_MAX - len)
            return SIZE_MAX;
        len += (size_t)w;
    }
    for (size_t i = 0, marked = 0; i < rp->rt->nsinks; i++) {
        const struct spart *sp = rp->sparts[rp->rt->sinks[i]];
        if (!spart_replay_marked(sp))
            continue;
        w = snprintf(buf + len, CUT_METADATA_MAX + 1 - len, "%s%s@%" PRId64, marked++ ? "," : ";" REPLAYED_ENTRY,
                     sp->sk->name, sp->replay_id);
        if (w < 0 || (size_t)w > CUT_METADATA_MAX - len)
            return SIZE_MAX;
        len += (size_t)w;
    }
    return len;
}

int spart_replay_marked(const struct spart *sp)
{
    return sp->replay_id >= 0 && !sp->replay_capture && sp->rewind_to == NO_REWIND &&
           (sp->replay_saved_from == OFFSET_UNKNOWN || sp->stored != sp->replay_saved_from);
}

/* The metadata of the partition's next commit (see metadata_write). When the names of its sinks
 * do not fit beside the cuts, they are left out (logged once): the next owner then treats every
 * sink as having the committed offset, as for a commit of an older sluice. */
size_t rpart_cut_metadata(struct rpart *rp, const struct router_batch *extra, char *buf)
{
    size_t len = metadata_write(rp, extra, buf, 1);

    if (len != SIZE_MAX)
        return len;
    len = metadata_write(rp, extra, buf, 0);
    if (len != SIZE_MAX && !rp->names_overflow_reported) {
        rp->names_overflow_reported = 1;
        LOG(LOG_WARN, "%s [%" PRId32 "]: the names of its sinks do not fit in the %d bytes of commit metadata; "
            "commits leave them out, and a restart starts every sink of it at the committed offset "
            "(a sink still loading stops loading, a sink added later does not load from \"earliest\")",
            rp->rt->name, rp->partition, CUT_METADATA_MAX);
    }
    return len;
}

/* A new batch of @p sp cut anywhere but at a full batch: whether its end fits in the commit
 * metadata beside the other cuts and the sinks' names (the names go first: without them a restart
 * cannot tell a new sink). One that does not is sent unrecorded (after a restart it is re-formed
 * like a first batch: full, or all the partition has). */
int spart_cut_fits(struct spart *sp, const struct router_batch *b)
{
    char buf[CUT_METADATA_MAX + 1];

    if (metadata_write(sp->rp, b, buf, 1) != SIZE_MAX)
        return 1;
    /* The names alone are too many: they are left out anyway, the cut needs only its own room. */
    if (metadata_write(sp->rp, NULL, buf, 1) == SIZE_MAX && metadata_write(sp->rp, b, buf, 0) != SIZE_MAX)
        return 1;
    if (!sp->cut_overflow_reported) {
        sp->cut_overflow_reported = 1;
        sink_log(sp->sk, LOG_WARN, "%s [%" PRId32 "]: the ends of the batches in flight do not all fit in the "
                 "%d bytes of commit metadata; batches left out are sent unrecorded (after a restart they may "
                 "be cut at other offsets)", sp->rp->rt->name, sp->rp->partition, CUT_METADATA_MAX);
    }
    return 0;
}

/* The entry of @p tp's sluice metadata that begins with @p prefix: its text after the prefix in
 * @p *at and @p *stop; 0 when there is none (or the metadata is not sluice's). */
static int metadata_entry(const rd_kafka_topic_partition_t *tp, const char *prefix, const char **at, const char **stop)
{
    const char *text = tp->metadata, *end, *p;
    size_t taglen = strlen(CUT_METADATA_TAG), plen = strlen(prefix);

    if (!text || tp->metadata_size <= taglen || tp->metadata_size > CUT_METADATA_MAX ||
        memcmp(text, CUT_METADATA_TAG, taglen) != 0)
        return 0;
    end = text + tp->metadata_size;
    for (p = text + taglen; p < end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            semi = end;
        if ((size_t)(semi - p) >= plen && memcmp(p, prefix, plen) == 0) {
            *at = p + plen;
            *stop = semi;
            return 1;
        }
        p = semi + 1;
    }
    return 0;
}

int64_t cuts_replay_mark(const rd_kafka_topic_partition_t *tp, const char *sink)
{
    const char *at, *stop;
    size_t sink_len = strlen(sink);

    if (!sink_len || !metadata_entry(tp, REPLAYED_ENTRY, &at, &stop))
        return -1;
    while (at < stop) {
        const char *comma = memchr(at, ',', (size_t)(stop - at)), *sign;
        if (!comma)
            comma = stop;
        sign = memchr(at, '@', (size_t)(comma - at));
        if (sign && (size_t)(sign - at) == sink_len && memcmp(at, sink, sink_len) == 0) {
            int64_t id = 0;
            const char *d = sign + 1;
            if (d == comma)
                return -1;
            for (; d < comma; d++) {
                if (*d < '0' || *d > '9' || id > (INT64_MAX - 9) / 10)
                    return -1;
                id = id * 10 + (*d - '0');
            }
            return id;
        }
        at = comma + 1;
    }
    return -1;
}

/* Whether the commit metadata of @p tp names the sinks that have a position in its partition:
 * -1 it does not (no metadata, another client's, or a commit of a sluice before "start", or one
 * whose names did not fit), 0 it does and @p sink is not among them, 1 @p sink is. */
int cuts_names_sink(const rd_kafka_topic_partition_t *tp, const char *sink)
{
    const char *at, *stop;
    size_t sink_len = strlen(sink);

    if (!metadata_entry(tp, SINKS_ENTRY, &at, &stop))
        return -1;
    for (const char *name = at; name < stop;) {
        const char *comma = memchr(name, ',', (size_t)(stop - name));
        if (!comma)
            comma = stop;
        if ((size_t)(comma - name) == sink_len && memcmp(name, sink, sink_len) == 0)
            return 1;
        name = comma + 1;
    }
    return 0;
}

/* Before a commit of @p rp: the sinks that now have a position the commit covers become known
 * (named in it from now on). A sink that was new when it joined below the group's committed
 * offset (a load from "earliest") becomes known when it reaches that offset: until then a restart
 * finds it new again and loads it again. Returns 1 when the commit must go even without progress
 * (a sink became known, or the last commit did not name them). */
int rpart_learn_known(struct rpart *rp)
{
    int announce = rp->announce;

    if (!rp->names_sinks)
        return 0;
    rp->announce = 0;
    for (size_t s = 0; s < rp->rt->nsinks; s++) {
        struct spart *sp = rp->sparts[rp->rt->sinks[s]];
        int64_t next = offsets_next(rp->op, sp->sink_index);
        if (spart_replay_marked(sp) && sp->replay_announced != sp->replay_id) {
            sp->replay_announced = sp->replay_id;
            announce = 1;
        }
        if (sp->known || next == OFFSET_UNKNOWN || next < sp->known_from)
            continue;
        sp->known = 1;
        announce = 1;
        if (sp->known_from >= 0)
            sink_log(sp->sk, LOG_INFO, "%s [%" PRId32 "]: loaded up to the group's committed offset %" PRId64
                     " (now at %" PRId64 "); it has a position of its own from here on", rp->rt->name,
                     rp->partition, sp->known_from, next);
    }
    return announce;
}

/* The first batch since the assignment, not full: it may go when every record up to the high
 * watermark of the last fetch is queued (the batch sent before, if any, had no more records
 * than these), or when it has waited FIRST_BATCH_WAIT_MAX_MS for that. */
static int spart_first_batch_may_go(struct spart *sp)
{
    struct rpart *rp = sp->rp;
    int64_t low = -1, high = -1, now = mono_ms();

    if (rd_kafka_get_watermark_offsets(rp->r->rk, rp->rt->name, rp->partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0 && rp->fetched_end >= high)
        return 1;
    if (!sp->first_wait_since_ms) {
        sp->first_wait_since_ms = now;
    } else if (now - sp->first_wait_since_ms >= FIRST_BATCH_WAIT_MAX_MS) {
        sink_log(sp->sk, LOG_INFO, "%s [%" PRId32 "]: the first batch waited %d ms to be full or reach the high "
                 "watermark (%" PRId64 ", consumed up to %" PRId64 "); sending it as it is", rp->rt->name,
                 rp->partition, FIRST_BATCH_WAIT_MAX_MS, high, rp->fetched_end);
        return 1;
    }
    return 0;
}

/* The first batch starts where the recorded one did, and the record it ended with is not
 * consumed yet. */
static int spart_recorded_cut_pending(const struct spart *sp)
{
    return sp->qcount && sp->recorded_last >= 0 && spart_queued(sp, 0)->offset == sp->recorded_first &&
           spart_queued(sp, sp->qcount - 1)->offset < sp->recorded_last && sp->rp->fetched_end <= sp->recorded_last;
}

static void spart_wait_first_batch(struct spart *sp)
{
    if (!evtimer_pending(sp->linger_timer, NULL)) {
        struct timeval tv = ms_to_tv(sp->sk->batch.linger_ms > FIRST_BATCH_POLL_MIN_MS ? sp->sk->batch.linger_ms
                                                                                       : FIRST_BATCH_POLL_MIN_MS);
        evtimer_add(sp->linger_timer, &tv);
    }
}

/* The stable-cut rules for the batch spart_flush (batch.c) is about to cut from the first *@p n
 * queued records (*@p bytes; @p full: cut by a limit). A first batch after an assignment ends
 * where the recorded cut ended, or waits to be full or for the partition's end. Sets *@p cut when
 * its end must be in the commit metadata, and *@p recorded when it is there already. Returns 0
 * when the batch waits (the linger timer looks again), 1 when it goes. */
int cuts_shape(struct spart *sp, size_t *n, size_t *bytes, int full, int *recorded, int *cut)
{
    int draining = sp->rp->r->phase != PHASE_RUNNING;   /* a drain sends what it has */

    *recorded = *cut = 0;
    if (!spart_stable(sp))
        return 1;
    if (sp->first_batch && sp->recorded_last >= 0 && spart_queued(sp, 0)->offset == sp->recorded_first) {
        /* Sent before the restart: it ends where it ended then. */
        size_t m = 0, m_bytes = 0;
        if (spart_recorded_cut_pending(sp)) {
            if (!draining) {
                spart_wait_first_batch(sp);
                return 0;
            }
            /* else a drain sends what it has, as a new cut */
        } else {
            while (m < *n && spart_queued(sp, m)->offset <= sp->recorded_last)
                m_bytes += spart_queued(sp, m++)->prepared_len;
            if (m == sp->qcount || spart_queued(sp, m)->offset > sp->recorded_last) {
                *n = m;
                *bytes = m_bytes;
                *recorded = 1;
            }   /* else the limits end it sooner (they changed since): cut as usual */
        }
    } else if (sp->first_batch && !full && !draining && !spart_first_batch_may_go(sp)) {
        spart_wait_first_batch(sp);
        return 0;
    }
    *cut = *recorded || !full;
    return 1;
}

/* A batch of @p sp that was sent is dropped unsettled (revoke, park): the batch that carries its
 * records next is cut like a first batch, at the same end when it was cut by linger, and until
 * then the cut stays in the commit metadata for whoever sends it next. */
void spart_keep_cut(struct spart *sp, const struct router_batch *b)
{
    if (!spart_stable(sp) || !b->pub.count || b->awaiting_commit)
        return;   /* nothing sent yet: it was never seen, any cut will do */
    sp->first_batch = 1;
    sp->first_wait_since_ms = 0;
    sp->recorded_first = b->cut ? b->pub.records[0].offset : -1;
    sp->recorded_last = b->cut ? b->pub.records[b->pub.count - 1].offset : -1;
}

/* Batches held for their cut: one commit for all that the same loop pass formed. */
void router_want_cut_commit(struct router *r)
{
    evtimer_add(r->cut_commit, &ZERO_TV);
}

/* Stable sinks of a newly assigned partition: their first batch waits to be full (spart_flush),
 * and the cuts of the batches in flight at the last commit, read from its metadata
 * ("sluice1 <sink>=<first>-<last>;..."), say where the re-sent ones end. */
void rpart_read_cuts(struct rpart *rp, const rd_kafka_topic_partition_t *tp)
{
    char text[CUT_METADATA_MAX + 1], *entry, *save = NULL;
    size_t taglen = strlen(CUT_METADATA_TAG);

    for (size_t s = 0; s < rp->rt->nsinks; s++) {
        struct spart *sp = rp->sparts[rp->rt->sinks[s]];
        sp->first_batch = spart_stable(sp);
        sp->recorded_first = sp->recorded_last = -1;
    }
    if (!tp->metadata || tp->metadata_size <= taglen || tp->metadata_size > CUT_METADATA_MAX ||
        memcmp(tp->metadata, CUT_METADATA_TAG, taglen) != 0)
        return;   /* none, or another client's */
    memcpy(text, (const char *)tp->metadata + taglen, tp->metadata_size - taglen);
    text[tp->metadata_size - taglen] = '\0';
    for (entry = strtok_r(text, ";", &save); entry; entry = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(entry, '='), *dash, *end;
        long long first, last;
        if (!eq)
            continue;
        *eq = '\0';
        first = strtoll(eq + 1, &dash, 10);
        if (*dash != '-')
            continue;
        last = strtoll(dash + 1, &end, 10);
        if (*end || first < 0 || last < first)
            continue;
        for (size_t s = 0; s < rp->rt->nsinks; s++) {
            struct spart *sp = rp->sparts[rp->rt->sinks[s]];
            if (!sp->first_batch || strcmp(sp->sk->name, entry) != 0)
                continue;
            sp->recorded_first = first;
            sp->recorded_last = last;
            sink_log(sp->sk, LOG_INFO, "%s [%" PRId32 "]: the last commit recorded a batch %lld-%lld in flight; "
                     "if it is sent again, it ends at %lld again", rp->rt->name, rp->partition, first, last, last);
        }
    }
}

/* A batch of the partition waits for a commit that records its cut. */
int rpart_holds_cut(const struct rpart *rp)
{
    for (size_t s = 0; s < rp->rt->nsinks; s++) {
        const struct router_batch *b = rp->sparts[rp->rt->sinks[s]]->inflight;
        if (b && b->awaiting_commit)
            return 1;
    }
    return 0;
}

int router_holds_cuts(const struct router *r)
{
    for (size_t t = 0; t < r->ntopics; t++)
        for (size_t p = 0; p < r->topics[t].nparts; p++)
            if (r->topics[t].parts[p] && rpart_holds_cut(r->topics[t].parts[p]))
                return 1;
    return 0;
}
