/* Stable batch cuts (router/cuts.c): the commit metadata "sluice1 <sink>=<first>-<last>;..."
 * written from the batches in flight, read back at an assignment, matched when a commit that
 * carries a batch's cut succeeds (commit.c), and the rules for the first batch after an
 * assignment. One partition with two stable sinks, built by hand: no Kafka, no loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "router/commit.h"
#include "router/cuts.h"
#include "router/engine.h"
#include "router/offsets.h"

#define NSINKS 2
#define NRECS 4

static unsigned writes;   /* batches handed to a sink's write */

static void t_write(struct sink *sk, struct sink_batch *b)
{
    (void)sk;
    (void)b;
    writes++;
}

static void t_linger(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void t_progress(struct router *r)
{
    (void)r;
}

static const struct sink_ops stable_ops = { .type = "test", .flags = SINK_F_STABLE_BATCHES, .write = t_write };
static const struct sink_ops plain_ops = { .type = "test", .write = t_write };

struct fix {
    struct event_base *eb;
    struct router r;
    struct rtopic rt;
    struct rpart rp;
    struct rpart *parts[1];
    size_t sinks[NSINKS];
    struct sink sk[NSINKS];
    struct sink_state st[NSINKS];
    struct spart sp[NSINKS];
    struct spart *sparts[NSINKS];
    struct sink_record recs[NSINKS][NRECS];
    struct router_batch b[NSINKS];
};

static int setup(void **state)
{
    static const char *const names[NSINKS] = { "alpha", "beta" };
    struct fix *f = calloc(1, sizeof *f);

    char errstr[256];
    rd_kafka_conf_t *conf;

    if (!f || !(f->eb = event_base_new()))
        return -1;
    /* a client without brokers: it knows no watermark, as before the first fetch */
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    if (!(f->r.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr)))
        return -1;
    f->r.eb = f->eb;
    f->r.ntopics = 1;
    f->r.topics = &f->rt;
    f->r.check_progress = t_progress;
    f->rt.name = "orders";
    f->rt.parts = f->parts;
    f->rt.nparts = 1;
    f->rt.sinks = f->sinks;
    f->rt.nsinks = NSINKS;
    f->parts[0] = &f->rp;
    f->rp.r = &f->r;
    f->rp.rt = &f->rt;
    f->rp.state = RPART_ACTIVE;
    f->rp.sparts = f->sparts;
    for (size_t k = 0; k < NSINKS; k++) {
        f->sinks[k] = k;
        f->sk[k].ops = &stable_ops;
        f->sk[k].name = (char *)names[k];
        f->sk[k].type = "test";
        f->sk[k].batch.linger_ms = 10;
        f->sk[k].state = &f->st[k];
        f->st[k].r = &f->r;
        f->st[k].index = k;
        f->sp[k].rp = &f->rp;
        f->sp[k].sink_index = k;
        f->sp[k].sk = &f->sk[k];
        f->sp[k].recorded_first = f->sp[k].recorded_last = -1;
        if (!(f->sp[k].linger_timer = evtimer_new(f->eb, t_linger, NULL)))
            return -1;
        f->sparts[k] = &f->sp[k];
        f->b[k].r = &f->r;
        f->b[k].sp = &f->sp[k];
        f->b[k].pub.sink = &f->sk[k];
        f->b[k].pub.records = f->recs[k];
    }
    writes = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;

    for (size_t k = 0; k < NSINKS; k++)
        event_free(f->sp[k].linger_timer);
    rd_kafka_destroy(f->r.rk);
    event_base_free(f->eb);
    free(f);
    return 0;
}

/* Batch @p k of the fixture holds offsets @p first..@p last (its first and last records). */
static struct router_batch *batch_span(struct fix *f, size_t k, int64_t first, int64_t last)
{
    f->recs[k][0].offset = first;
    f->recs[k][1].offset = last;
    f->b[k].pub.count = 2;
    return &f->b[k];
}

static void test_metadata_write(void **state)
{
    struct fix *f = *state;
    char buf[CUT_METADATA_MAX + 1];

    /* nothing in flight, nothing recorded: no metadata */
    assert_int_equal(rpart_cut_metadata(&f->rp, NULL, buf), 0);
    assert_string_equal(buf, "");

    /* a batch cut by max_records is left out: re-formed full, it ends at the same offset */
    f->sp[0].inflight = batch_span(f, 0, 10, 19);
    assert_int_equal(rpart_cut_metadata(&f->rp, NULL, buf), 0);

    /* one cut by linger is in; so is a cut recorded but not sent again yet */
    f->b[0].cut = 1;
    f->sp[1].recorded_first = 30;
    f->sp[1].recorded_last = 34;
    assert_int_equal(rpart_cut_metadata(&f->rp, NULL, buf), strlen("sluice1 alpha=10-19;beta=30-34"));
    assert_string_equal(buf, "sluice1 alpha=10-19;beta=30-34");

    /* the batch about to be cut (extra) goes last, whether or not it was cut by linger */
    f->sp[1].recorded_last = -1;
    assert_int_equal(rpart_cut_metadata(&f->rp, batch_span(f, 1, 35, 40), buf),
                     strlen("sluice1 alpha=10-19;beta=35-40"));
    assert_string_equal(buf, "sluice1 alpha=10-19;beta=35-40");
}

static void test_metadata_overflow(void **state)
{
    struct fix *f = *state;
    char buf[CUT_METADATA_MAX + 1], *longname = malloc(CUT_METADATA_MAX);

    assert_non_null(longname);
    memset(longname, 'x', CUT_METADATA_MAX - 1);
    longname[CUT_METADATA_MAX - 1] = '\0';
    f->sk[1].name = longname;
    f->sp[0].inflight = batch_span(f, 0, 10, 19);
    f->b[0].cut = 1;
    /* alpha's cut fits; beta's on top of it would pass Kafka's default metadata size */
    assert_int_equal(spart_cut_fits(&f->sp[0], NULL), 1);
    assert_int_equal(rpart_cut_metadata(&f->rp, batch_span(f, 1, 20, 29), buf), SIZE_MAX);
    assert_int_equal(spart_cut_fits(&f->sp[1], &f->b[1]), 0);
    assert_int_equal(f->sp[1].cut_overflow_reported, 1);   /* logged once */
    assert_int_equal(spart_cut_fits(&f->sp[1], &f->b[1]), 0);
    f->sk[1].name = "beta";
    free(longname);
}

/* rpart_read_cuts on a commit's metadata, as at an assignment. */
static void read_cuts(struct fix *f, const char *metadata)
{
    rd_kafka_topic_partition_t tp;

    memset(&tp, 0, sizeof tp);
    tp.topic = "orders";
    tp.metadata = (void *)metadata;
    tp.metadata_size = metadata ? strlen(metadata) : 0;
    rpart_read_cuts(&f->rp, &tp);
}

static void test_metadata_parse(void **state)
{
    struct fix *f = *state;
    char buf[CUT_METADATA_MAX + 1];

    read_cuts(f, "sluice1 alpha=10-19;beta=30-34");
    assert_int_equal(f->sp[0].first_batch, 1);
    assert_int_equal(f->sp[0].recorded_first, 10);
    assert_int_equal(f->sp[0].recorded_last, 19);
    assert_int_equal(f->sp[1].recorded_first, 30);
    assert_int_equal(f->sp[1].recorded_last, 34);

    /* what it read writes back the same (the cuts stay in every commit until re-sent) */
    assert_int_equal(rpart_cut_metadata(&f->rp, NULL, buf), strlen("sluice1 alpha=10-19;beta=30-34"));
    assert_string_equal(buf, "sluice1 alpha=10-19;beta=30-34");

    /* a new assignment forgets the old cuts; malformed entries and unknown sinks are skipped */
    read_cuts(f, "sluice1 alpha=5;beta=7-3;gamma=1-2;alpha=x-9;beta=-1-4;beta=8-9z;alpha=40-44");
    assert_int_equal(f->sp[0].recorded_first, 40);
    assert_int_equal(f->sp[0].recorded_last, 44);
    assert_int_equal(f->sp[1].recorded_first, -1);
    assert_int_equal(f->sp[1].recorded_last, -1);

    /* none, or another client's metadata: the first batch still waits to be full */
    read_cuts(f, NULL);
    assert_int_equal(f->sp[0].first_batch, 1);
    assert_int_equal(f->sp[0].recorded_last, -1);
    read_cuts(f, "kcat alpha=1-2");
    assert_int_equal(f->sp[0].recorded_last, -1);
    read_cuts(f, "sluice1 ");
    assert_int_equal(f->sp[0].recorded_last, -1);

    /* a sink without stable batches, or a dry run, has no first-batch rule and takes no cut */
    f->sk[1].ops = &plain_ops;
    read_cuts(f, "sluice1 alpha=1-2;beta=3-4");
    assert_int_equal(f->sp[0].first_batch, 1);
    assert_int_equal(f->sp[1].first_batch, 0);
    assert_int_equal(f->sp[1].recorded_last, -1);
    f->sk[1].flags = SINK_F_STABLE_BATCHES;   /* set by an instance's check: counts too */
    read_cuts(f, NULL);
    assert_int_equal(f->sp[1].first_batch, 1);
    f->r.dry_run = stdout;
    read_cuts(f, NULL);
    assert_int_equal(f->sp[0].first_batch, 0);
    f->r.dry_run = NULL;
}

/* A commit came back: the batches waiting for a commit that carries their cut go. */
static void commit_succeeded(struct fix *f, const char *metadata)
{
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(offsets, "orders", 0);

    tp->offset = 10;
    if (metadata) {
        tp->metadata = strdup(metadata);
        tp->metadata_size = strlen(metadata);
    }
    on_commit_result(NULL, RD_KAFKA_RESP_ERR_NO_ERROR, offsets, &f->r);
    rd_kafka_topic_partition_list_destroy(offsets);
}

static void test_metadata_match(void **state)
{
    struct fix *f = *state;

    f->sp[0].inflight = batch_span(f, 0, 10, 19);
    f->b[0].cut = f->b[0].awaiting_commit = 1;
    assert_int_equal(rpart_holds_cut(&f->rp), 1);
    assert_int_equal(router_holds_cuts(&f->r), 1);

    /* only a whole entry matches: not another range, another sink, or a longer name */
    commit_succeeded(f, NULL);
    commit_succeeded(f, "sluice1 alpha=10-1");
    commit_succeeded(f, "sluice1 alpha=10-190");
    commit_succeeded(f, "sluice1 xalpha=10-19");
    commit_succeeded(f, "sluice1 beta=10-19");
    commit_succeeded(f, "other alpha=10-19");
    assert_int_equal(writes, 0);
    assert_int_equal(f->b[0].awaiting_commit, 1);

    commit_succeeded(f, "sluice1 beta=1-4;alpha=10-19");
    assert_int_equal(writes, 1);
    assert_int_equal(f->b[0].awaiting_commit, 0);
    assert_int_equal(f->b[0].at_sink, 1);
    assert_int_equal(rpart_holds_cut(&f->rp), 0);
    assert_int_equal(router_holds_cuts(&f->r), 0);

    /* a batch that is not waiting is not written again */
    commit_succeeded(f, "sluice1 alpha=10-19");
    assert_int_equal(writes, 1);
}

/* cuts_shape on the first @p n of @p sp's queued records (one byte each); returns whether the
 * batch goes, and what it would be. */
struct shape {
    int go;
    size_t n;
    int recorded, cut;
};

static struct shape shape(struct spart *sp, size_t n, int full)
{
    struct shape out;
    size_t bytes = n;

    out.go = cuts_shape(sp, &n, &bytes, full, &out.recorded, &out.cut);
    out.n = n;
    assert_int_equal(bytes, n);
    return out;
}

#define ASSERT_SHAPE(got, want_go, want_n, want_recorded, want_cut)  \
    do {                                                             \
        struct shape s_ = (got);                                     \
        assert_int_equal(s_.go, (want_go));                          \
        if (s_.go) {                                                 \
            assert_int_equal(s_.n, (want_n));                        \
            assert_int_equal(s_.recorded, (want_recorded));          \
            assert_int_equal(s_.cut, (want_cut));                    \
        }                                                            \
    } while (0)

static void test_first_batch_rules(void **state)
{
    struct fix *f = *state;
    struct spart *sp = &f->sp[0];
    struct sink_record queue[8];

    memset(queue, 0, sizeof queue);
    for (size_t i = 0; i < 6; i++) {
        queue[i].offset = 10 + (int64_t)i;
        queue[i].prepared_len = 1;
    }
    sp->queue = queue;
    sp->qcap = 8;
    sp->qcount = 6;
    sp->first_batch = 1;

    /* the recorded cut 10-19 is pending while 19 is not consumed: the first batch waits */
    sp->recorded_first = 10;
    sp->recorded_last = 19;
    f->rp.fetched_end = 16;
    ASSERT_SHAPE(shape(sp, 6, 0), 0, 0, 0, 0);
    assert_true(evtimer_pending(sp->linger_timer, NULL));
    evtimer_del(sp->linger_timer);
    /* ... unless the router drains: it sends what it has, as a new cut */
    f->r.phase = PHASE_DRAINING;
    ASSERT_SHAPE(shape(sp, 6, 0), 1, 6, 0, 1);
    f->r.phase = PHASE_RUNNING;
    /* 16..19 consumed but not for this sink (filtered): it ends at the recorded end */
    f->rp.fetched_end = 20;
    ASSERT_SHAPE(shape(sp, 6, 0), 1, 6, 1, 1);
    /* a recorded cut shorter than the queue: the batch ends there */
    sp->recorded_last = 12;
    ASSERT_SHAPE(shape(sp, 6, 0), 1, 3, 1, 1);
    /* limits that changed since end it sooner: cut as usual, by the limit, not recorded */
    ASSERT_SHAPE(shape(sp, 2, 1), 1, 2, 0, 0);

    /* a first batch not at the recorded start, not full, the partition's end unknown: it
     * waits, up to FIRST_BATCH_WAIT_MAX_MS */
    queue[0].offset = 9;
    ASSERT_SHAPE(shape(sp, 6, 0), 0, 0, 0, 0);
    assert_true(sp->first_wait_since_ms > 0);
    evtimer_del(sp->linger_timer);
    ASSERT_SHAPE(shape(sp, 6, 1), 1, 6, 0, 0);     /* full: it goes, unrecorded */
    sp->first_wait_since_ms = mono_ms() - 10000;
    ASSERT_SHAPE(shape(sp, 6, 0), 1, 6, 0, 1);     /* waited long enough: goes, recorded */

    /* later batches: cut by linger are recorded, cut by a limit are not */
    sp->first_batch = 0;
    ASSERT_SHAPE(shape(sp, 6, 0), 1, 6, 0, 1);
    ASSERT_SHAPE(shape(sp, 6, 1), 1, 6, 0, 0);
    /* no stable batches, or a dry run: no rule */
    sp->first_batch = 1;
    sp->first_wait_since_ms = 0;
    f->sk[0].ops = &plain_ops;
    ASSERT_SHAPE(shape(sp, 6, 0), 1, 6, 0, 0);
    f->sk[0].ops = &stable_ops;
    f->r.dry_run = stdout;
    ASSERT_SHAPE(shape(sp, 6, 0), 1, 6, 0, 0);
    f->r.dry_run = NULL;
    assert_int_equal(sp->first_wait_since_ms, 0);
}

/* A batch sent and dropped unsettled: the next one is cut like a first batch, at the same end
 * when it was cut by linger. */
static void test_keep_cut(void **state)
{
    struct fix *f = *state;
    struct spart *sp = &f->sp[0];

    sp->first_wait_since_ms = 123;
    f->b[0].cut = 1;
    spart_keep_cut(sp, batch_span(f, 0, 10, 19));
    assert_int_equal(sp->first_batch, 1);
    assert_int_equal(sp->first_wait_since_ms, 0);
    assert_int_equal(sp->recorded_first, 10);
    assert_int_equal(sp->recorded_last, 19);
    sp->first_batch = 0;
    f->b[0].cut = 0;                       /* cut full: any full batch ends there again */
    spart_keep_cut(sp, &f->b[0]);
    assert_int_equal(sp->first_batch, 1);
    assert_int_equal(sp->recorded_first, -1);
    assert_int_equal(sp->recorded_last, -1);
    sp->first_batch = 0;
    f->b[0].awaiting_commit = 1;           /* never sent: never seen, nothing to keep */
    spart_keep_cut(sp, &f->b[0]);
    assert_int_equal(sp->first_batch, 0);
    f->b[0].awaiting_commit = 0;
    f->sk[0].ops = &plain_ops;             /* no stable batches: nothing to keep */
    spart_keep_cut(sp, &f->b[0]);
    assert_int_equal(sp->first_batch, 0);
    f->sk[0].ops = &stable_ops;
}

/* "start" (issue 15): the commits of a partition name the sinks that have a position in it. */
static void test_names_write(void **state)
{
    struct fix *f = *state;
    char buf[CUT_METADATA_MAX + 1];

    /* a partition whose commits name no sink (a dry run, a hand-built one): cuts only */
    f->sp[0].known = 1;
    assert_int_equal(rpart_cut_metadata(&f->rp, NULL, buf), 0);

    /* naming: only the known sinks, after the cuts; none known is an empty list, not none */
    f->rp.names_sinks = 1;
    f->sp[0].known = 0;
    assert_int_equal(rpart_cut_metadata(&f->rp, NULL, buf), strlen("sluice1 sinks:"));
    assert_string_equal(buf, "sluice1 sinks:");
    f->sp[0].known = 1;
    assert_int_equal(rpart_cut_metadata(&f->rp, NULL, buf), strlen("sluice1 sinks:alpha"));
    f->sp[1].known = 1;
    f->sp[0].inflight = batch_span(f, 0, 10, 19);
    f->b[0].cut = 1;
    assert_int_equal(rpart_cut_metadata(&f->rp, NULL, buf), strlen("sluice1 alpha=10-19;sinks:alpha,beta"));
    assert_string_equal(buf, "sluice1 alpha=10-19;sinks:alpha,beta");

    /* an older reader of the cuts skips the names: the cut is read back as before */
    f->sp[0].inflight = NULL;
    read_cuts(f, "sluice1 alpha=10-19;sinks:alpha,beta");
    assert_int_equal(f->sp[0].recorded_first, 10);
    assert_int_equal(f->sp[0].recorded_last, 19);
    assert_int_equal(f->sp[1].recorded_last, -1);
}

static int names(const char *metadata, size_t size, const char *sink)
{
    rd_kafka_topic_partition_t tp;

    memset(&tp, 0, sizeof tp);
    tp.topic = "orders";
    tp.metadata = (void *)metadata;
    tp.metadata_size = size;
    return cuts_names_sink(&tp, sink);
}

#define NAMES(text, sink) names((text), strlen(text), (sink))

static void test_names_read(void **state)
{
    static const char unterminated[] = "sluice1 sinks:alpha,beta.2xyz";
    (void)state;

    assert_int_equal(NAMES("sluice1 alpha=1-2;sinks:alpha,beta.2", "alpha"), 1);
    assert_int_equal(NAMES("sluice1 alpha=1-2;sinks:alpha,beta.2", "beta.2"), 1);
    assert_int_equal(NAMES("sluice1 alpha=1-2;sinks:alpha,beta.2", "beta"), 0);
    assert_int_equal(NAMES("sluice1 alpha=1-2;sinks:alpha,beta.2", "alph"), 0);
    assert_int_equal(NAMES("sluice1 sinks:gamma;alpha=1-2", "gamma"), 1);
    assert_int_equal(NAMES("sluice1 sinks:", "alpha"), 0);
    assert_int_equal(NAMES("sluice1 sinks:", ""), 0);
    /* the end is metadata_size, not a NUL: "xyz" after it is not part of the last name */
    assert_int_equal(names(unterminated, strlen(unterminated) - 3, "beta.2"), 1);
    assert_int_equal(names(unterminated, strlen(unterminated) - 3, "beta.2xyz"), 0);
    /* no list: none, only cuts (a sluice before "start"), another client's, too long */
    assert_int_equal(names(NULL, 0, "alpha"), -1);
    assert_int_equal(NAMES("sluice1 alpha=1-2;beta=3-4", "alpha"), -1);
    assert_int_equal(NAMES("sluice1 ", "alpha"), -1);
    assert_int_equal(NAMES("sinks:alpha", "alpha"), -1);
    assert_int_equal(names("sluice1 sinks:alpha", CUT_METADATA_MAX + 1, "alpha"), -1);
}

static void test_learn_known(void **state)
{
    struct fix *f = *state;

    f->rp.op = offsets_partition_new("orders", 0, NSINKS);
    assert_non_null(f->rp.op);
    /* alpha had a position (joined at the committed 100); beta loads from 0 up to 100 */
    offsets_sink_join(f->rp.op, 0, 100);
    offsets_sink_join(f->rp.op, 1, 0);
    f->sp[0].known_from = INT64_MIN;
    f->sp[1].known_from = 100;
    assert_int_equal(rpart_learn_known(&f->rp), 0);   /* a partition that names no sink */

    f->rp.names_sinks = 1;
    assert_int_equal(rpart_learn_known(&f->rp), 1);
    assert_int_equal(f->sp[0].known, 1);
    assert_int_equal(f->sp[1].known, 0);
    assert_int_equal(rpart_learn_known(&f->rp), 0);   /* nothing new: no commit without progress */

    for (int64_t o = 0; o < 99; o++) {
        assert_int_equal(offsets_accept(f->rp.op, 1, o), 1);
        offsets_done(f->rp.op, 1, o);
    }
    assert_int_equal(rpart_learn_known(&f->rp), 0);   /* at 99: still loading */
    assert_int_equal(offsets_accept(f->rp.op, 1, 99), 1);
    offsets_done(f->rp.op, 1, 99);
    assert_int_equal(rpart_learn_known(&f->rp), 1);
    assert_int_equal(f->sp[1].known, 1);

    /* a replay moves it back: it keeps its name (it has a position, a lower one) */
    offsets_rewind(f->rp.op, 1, 0);
    assert_int_equal(rpart_learn_known(&f->rp), 0);
    assert_int_equal(f->sp[1].known, 1);

    /* the last commit named nobody (an older sluice): the next one goes even without progress */
    f->rp.announce = 1;
    assert_int_equal(rpart_learn_known(&f->rp), 1);
    assert_int_equal(rpart_learn_known(&f->rp), 0);
    offsets_partition_free(f->rp.op);
}

/* Names that do not fit beside the cuts are left out (the cuts stay); a new cut does not push
 * the names out: it is sent unrecorded instead. */
static void test_names_overflow(void **state)
{
    struct fix *f = *state;
    char buf[CUT_METADATA_MAX + 1], *longname = malloc(CUT_METADATA_MAX);
    const size_t name_len = CUT_METADATA_MAX - 30;   /* "sluice1 sinks:" and it: 4080 bytes */

    assert_non_null(longname);
    memset(longname, 'x', name_len);
    longname[name_len] = '\0';
    f->rp.names_sinks = 1;
    f->sk[1].name = longname;
    f->sp[1].known = 1;
    /* the names fit alone, not with alpha's cut (22 bytes more): the cut goes unrecorded */
    assert_int_equal(spart_cut_fits(&f->sp[0], batch_span(f, 0, 1000000, 1999999)), 0);
    assert_int_equal(f->rp.names_overflow_reported, 0);

    /* a cut recorded before the names grew: the commit keeps it and leaves the names out */
    f->sp[0].recorded_first = 1000000;
    f->sp[0].recorded_last = 1999999;
    assert_int_equal(rpart_cut_metadata(&f->rp, NULL, buf), strlen("sluice1 alpha=1000000-1999999"));
    assert_string_equal(buf, "sluice1 alpha=1000000-1999999");
    assert_int_equal(f->rp.names_overflow_reported, 1);   /* logged once */
    f->sk[1].name = "beta";
    free(longname);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metadata_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_batch_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_write, setup, teardown),
        cmocka_unit_test(test_names_read),
        cmocka_unit_test_setup_teardown(test_learn_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_overflow, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
