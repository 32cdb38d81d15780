/* The postgres sink: upserts (or appends) records into a table, exactly once.
 *
 * Each batch is one transaction that moves the partition's row in sluice_offsets with a
 * compare-and-set and applies the rows. Both travel in one pipeline round between two syncs
 * (an implicit transaction), so a batch costs one round trip:
 *     CAS (raises when the stored position is not the expected one)
 *     DELETE ... USING unnest(keys)            upsert mode: the batch's tombstones
 *     INSERT ... SELECT unnest($1), ...        [ON CONFLICT (keys) DO UPDATE ... WHERE the row changed]
 * In mode insert a batch goes by COPY instead, out of pipeline mode (postgres_copy.c):
 * BEGIN; the same CAS; COPY ... FROM STDIN; COMMIT, in two round trips.
 * Rows travel as one text[] per column in binary form; the server converts the texts to the
 * column types, so a value it refuses is a data error of that row. Such a batch is then
 * searched by bisection in probe rounds that always roll back ([rows accepted so far + a
 * chunk; SELECT 1/0]); the rows the server refuses are dead-lettered with its message, and the
 * others are applied in order by a final round [CAS; accepted rows]. Every round is a
 * transaction of its own, so a connection carries several batches at once (pipeline_depth)
 * and its server process never waits for sluice between them.
 *
 * A batch whose CAS fails (a retry after a connection loss left its commit unconfirmed, or a
 * zombie after a rebalance) is checked against the stored position: equal to the batch's end
 * means it was applied (OK), anything else means another writer (FENCED).
 *
 * Everything runs on the loop: libpq non-blocking, in pipeline mode, its socket watched by
 * libevent. The only blocking step is the check of the table at the first start, before the
 * loop runs, so that a mismatch stops sluice with a clear error. A sink started on the running
 * loop (a reload) checks the table asynchronously on its first connection instead. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_sink.h"
#include "lib/backoff.h"
#include "lib/clock.h"


const char *const pg_modes[] = { "upsert", "insert", NULL };

static int pg_columns_validate(const json_t *value, char *err, size_t errlen)
{
    if (json_is_object(value))
        return 0;
    snprintf(err, errlen, "expected an object mapping each column to a JSON path or @key");
    return -1;
}

static const struct cfg_opt pg_opts[] = {
    { .name = "conninfo", .type = CFG_T_STR, .offset = offsetof(struct pg_sink, conninfo),
      .flags = CFG_REQUIRED | CFG_SECRET,
      .help = "libpq connection string or URI (\"host=db user=sluice dbname=app password=${PGPASSWORD}\")" },
    { .name = "table", .type = CFG_T_STR, .offset = offsetof(struct pg_sink, table), .flags = CFG_REQUIRED,
      .help = "Target table, \"name\" (first match in the search_path) or \"schema.name\"; names are exact" },
    { .name = "columns", .type = CFG_T_JSON, .offset = offsetof(struct pg_sink, columns), .flags = CFG_REQUIRED,
      .validate = pg_columns_validate,
      .help = "Column -> source: a JSON path into the value (\"$.a.b\"; \"$\" is the whole document), "
              "or @key, @topic, @partition, @offset, @timestamp" },
    CFG_STRLIST("key_columns", offsetof(struct pg_sink, key_columns),
                "upsert: the columns of a unique constraint; one not in columns takes the record key"),
    CFG_ENUM("mode", "\"upsert\"", pg_modes, offsetof(struct pg_sink, mode),
             "upsert: insert or update on the key, a tombstone deletes; insert: append, tombstones ignored"),
    CFG_STR("offsets_table", "\"sluice_offsets\"", offsetof(struct pg_sink, offsets_table),
            "Where positions are stored, \"name\" (in the target table's schema) or \"schema.name\"; created if missing"),
    CFG_INT("max_connections", "2", 1, 64, offsetof(struct pg_sink, max_connections),
            "Connections, so batches of different partitions are applied at the same time"),
    CFG_INT("pipeline_depth", "4", 1, 16, offsetof(struct pg_sink, pipeline_depth),
            "Batches queued on one connection, so its server process does not wait for sluice between them "
            "(upsert mode; mode insert sends one batch at a time, by COPY)"),
    CFG_INT("connect_timeout_ms", "10000", 1000, 600000, offsetof(struct pg_sink, connect_timeout_ms),
            "Limit of one connection attempt"),
    CFG_INT("request_timeout_ms", "30000", 100, 3600000, offsetof(struct pg_sink, request_timeout_ms),
            "statement_timeout of the session; a batch waiting this long for a connection is retried"),
    CFG_END
};

static void load_send(struct pg_job *job);

static void job_on_deadline(evutil_socket_t fd, short what, void *arg);

static struct pg_job *job_new(struct pg_sink *ps, enum pg_job_kind kind)
{
    struct pg_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->ps = ps;
    job->kind = kind;
    job->round.job = job;
    if (!(job->timer = evtimer_new(ps->super.eb, job_on_deadline, job))) {
        free(job);
        return NULL;
    }
    return job;
}

void pg_job_free(struct pg_job *job)
{
    if (job->timer)
        event_free(job->timer);
    pg_round_reset(&job->round);
    if (job->rejects)
        for (size_t i = 0; i < job->b->count; i++)
            free(job->rejects[i]);
    free(job->rejects);
    free(job->entries);
    free(job->prev);
    free(job->stack);
    free(job->accepted);
    free(job->list);
    free(job);
}

static void queue_push(struct pg_sink *ps, struct pg_job *job, int front)
{
    job->next = NULL;
    if (!ps->queue_head) {
        ps->queue_head = ps->queue_tail = job;
    } else if (front) {
        job->next = ps->queue_head;
        ps->queue_head = job;
    } else {
        ps->queue_tail->next = job;
        ps->queue_tail = job;
    }
}

static void queue_remove(struct pg_sink *ps, struct pg_job *job)
{
    struct pg_job *prev = NULL;
    for (struct pg_job *j = ps->queue_head; j; prev = j, j = j->next) {
        if (j != job)
            continue;
        if (prev)
            prev->next = j->next;
        else
            ps->queue_head = j->next;
        if (ps->queue_tail == j)
            ps->queue_tail = prev;
        job->next = NULL;
        return;
    }
}

static size_t queue_length(const struct pg_sink *ps)
{
    size_t n = 0;
    for (const struct pg_job *j = ps->queue_head; j; j = j->next)
        n++;
    return n;
}

static void job_attach(struct pg_job *job, struct pg_conn *c)
{
    job->conn = c;
    job->conn_next = c->jobs;
    c->jobs = job;
    c->njobs++;
}

/* Takes the job off its connection. A connection with nothing left in flight must be outside
 * any transaction (every round is one); if not, it is closed rather than reused. */
void pg_job_detach(struct pg_job *job)
{
    struct pg_conn *c = job->conn;

    job->conn = NULL;
    if (!c)
        return;
    for (struct pg_job **p = &c->jobs; *p; p = &(*p)->conn_next) {
        if (*p == job) {
            *p = job->conn_next;
            c->njobs--;
            break;
        }
    }
    job->conn_next = NULL;
    if (c->pg && !c->head && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        pg_conn_fail(c, "the session was left inside a transaction");
}

struct pg_memo *pg_memo_find(struct pg_sink *ps, const char *topic, int32_t partition, int unlink)
{
    for (struct pg_memo **p = &ps->memos; *p; p = &(*p)->next) {
        struct pg_memo *m = *p;
        if (m->partition != partition || strcmp(m->topic, topic) != 0)
            continue;
        if (unlink)
            *p = m->next;
        return m;
    }
    return NULL;
}

void pg_memo_free(struct pg_memo *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        free(m->rejects[i]);
    free(m->rejects);
    free(m->topic);
    free(m);
}

/* Ends a write: the rejected records go to the dead letters (SINK_OK only). */
void pg_write_finish(struct pg_job *job, enum sink_result result, const char *error)
{
    struct pg_sink *ps = job->ps;
    struct sink_batch *b = job->b;

    /* A memo is settled once the partition's position is known: applied (OK) or owned by
     * another writer (FENCED). After a RETRY the commit it stands for may still have happened,
     * and the next attempt needs it to dead-letter the refused records. */
    if (result == SINK_OK || result == SINK_FENCED)
        pg_memo_free(pg_memo_find(ps, b->topic, b->partition, 1));
    if (result == SINK_OK && job->rejects)
        for (size_t i = 0; i < b->count; i++)
            if (job->rejects[i])
                sink_batch_reject(b, i, job->rejects[i]);
    evtimer_del(job->timer);
    pg_job_detach(job);
    sink_batch_done(b, result, error);
    pg_job_free(job);
    pg_dispatch(ps);
}

static void load_finish(struct pg_job *job, int ok, const char *error)
{
    struct pg_sink *ps = job->ps;
    struct sink_positions *req = job->req;

    evtimer_del(job->timer);
    pg_job_detach(job);
    sink_positions_done(req, ok, error);
    pg_job_free(job);
    pg_dispatch(ps);
}

void pg_job_fail(struct pg_job *job, const char *why)
{
    struct pg_sink *ps = job->ps;

    switch (job->kind) {
    case JOB_WRITE:
        pg_write_finish(job, SINK_RETRY, why);
        break;
    case JOB_LOAD:
        load_finish(job, 0, why);
        break;
    case JOB_VERIFY:
        pg_job_detach(job);
        pg_job_free(job);
        if (ps->verify == PG_VERIFY_RUNNING)
            ps->verify = PG_VERIFY_PENDING;   /* tried again on the next connection */
        break;
    }
}

/* The job's connection went away (detached already). */
void pg_job_conn_lost(struct pg_job *job, const char *why)
{
    struct pg_sink *ps = job->ps;
    char msg[600];

    snprintf(msg, sizeof msg, "connection lost: %s", why);
    if (job->kind != JOB_WRITE) {
        pg_job_fail(job, msg);
        return;
    }
    if (job->phase == W_FINAL) {
        /* If that final round committed, the retry will find the batch applied: it needs
         * to know which records were refused, these and not an earlier attempt's. */
        pg_memo_free(pg_memo_find(ps, job->b->topic, job->b->partition, 1));
    }
    if (job->phase == W_FINAL && job->nrejects > 0) {
        struct pg_memo *m = calloc(1, sizeof *m);
        if (m && (m->topic = strdup(job->b->topic))) {
            m->partition = job->b->partition;
            m->next_offset = job->b->next;
            m->count = job->b->count;
            m->rejects = job->rejects;
            job->rejects = NULL;
            job->nrejects = 0;
            m->next = ps->memos;
            ps->memos = m;
        } else {
            free(m);
        }
    }
    /* The job is off its connection already, and pg_conn_fail dispatches once they all ended. */
    evtimer_del(job->timer);
    job->b->unreachable = 1;   /* it may have committed: never dead-lettered for this */
    sink_batch_done(job->b, SINK_RETRY, msg);
    pg_job_free(job);
}

void pg_job_arm(struct pg_job *job, long long ms)
{
    struct timeval tv = ms_to_tv(ms);
    evtimer_add(job->timer, &tv);
}

static void job_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct pg_job *job = arg;
    struct pg_sink *ps = job->ps;
    char why[700];
    (void)fd;
    (void)what;

    if (job->conn) {
        snprintf(why, sizeof why, "no answer from the server within %lld ms",
                 ps->request_timeout_ms + PG_DEADLINE_SLACK_MS);
        pg_conn_fail(job->conn, why);   /* its jobs end as connection lost */
        return;
    }
    queue_remove(ps, job);
    snprintf(why, sizeof why, "no connection to PostgreSQL within %lld ms%s%s", ps->request_timeout_ms,
             ps->last_error[0] ? ": " : "", ps->last_error);
    if (job->kind == JOB_WRITE)
        job->b->unreachable = 1;   /* the server is away: the records are not at fault */
    pg_job_fail(job, why);
}


static int job_all_tombstones(const struct pg_job *job)
{
    for (size_t e = 0; e < job->nentries; e++)
        if (!pg_job_row(job, job->entries[e])->tombstone)
            return 0;
    return 1;
}

static void job_run(struct pg_job *job, struct pg_conn *c)
{
    struct pg_sink *ps = job->ps;

    job_attach(job, c);
    switch (job->kind) {
    case JOB_WRITE:
        job->phase = W_FAST;
        job->plain = 0;
        /* A batch with no row to write (tombstones only, or a position-only batch) tells
         * nothing about whether keys exist: it leaves the plain INSERT heuristic alone. */
        if (ps->map.mode == PGSINK_UPSERT && job->nentries > 0 && !job_all_tombstones(job)) {
            if (ps->plain_skip > 0)
                ps->plain_skip--;
            else
                job->plain = 1;
        }
        pg_write_step(job);
        break;
    case JOB_LOAD:
        load_send(job);
        break;
    case JOB_VERIFY:
        job->vstep = V_CATALOG;
        pg_verify_step(job);
        break;
    }
}

void pg_dispatch(struct pg_sink *ps)
{
    size_t waiting, capacity = 0, live = 0, depth = (size_t)ps->pipeline_depth;
    int backing_off = 0;

    if (ps->stopped || !ps->conns)
        return;
    if (ps->map.mode == PGSINK_INSERT)
        depth = 1;   /* a batch leaves pipeline mode for its COPY (postgres_copy.c) */
    if (ps->verify == PG_VERIFY_FAILED) {
        while (ps->queue_head) {
            struct pg_job *job = ps->queue_head;
            queue_remove(ps, job);
            pg_job_fail(job, ps->verify_error);
        }
        return;
    }
    for (size_t i = 0; i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        if (c->state != CONN_READY)
            continue;
        /* The table is checked as soon as a connection is up, so a mismatch shows at once. */
        if (ps->verify == PG_VERIFY_PENDING && c->njobs == 0) {
            struct pg_job *job = job_new(ps, JOB_VERIFY);
            if (!job)
                break;
            ps->verify = PG_VERIFY_RUNNING;
            job_run(job, c);
            continue;
        }
        if (ps->verify == PG_VERIFY_OK && c->prepared == 0 && pg_conn_prepare(c) != 0) {
            pg_conn_fail(c, PQerrorMessage(c->pg));
            continue;
        }
        /* Several batches per connection; c may close under a job that failed to send. */
        while (ps->verify == PG_VERIFY_OK && ps->queue_head && c->state == CONN_READY && c->njobs < depth) {
            struct pg_job *job = ps->queue_head;
            queue_remove(ps, job);
            job_run(job, c);
        }
    }
    /* Open connections for what waits, and keep at least one; while one waits out a
     * reconnect backoff, the server is not well: that one alone tries again. */
    waiting = queue_length(ps);
    for (size_t i = 0; i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        if (c->state == CONN_CONNECTING || c->state == CONN_SETUP)
            capacity += depth;
        else if (c->state == CONN_READY && ps->verify == PG_VERIFY_OK)
            capacity += c->njobs < depth ? depth - c->njobs : 0;
        else if (c->state == CONN_READY)
            capacity += depth;   /* waits for the table check */
        live += c->state == CONN_CONNECTING || c->state == CONN_SETUP || c->state == CONN_READY;
        backing_off |= c->state == CONN_BACKOFF;
    }
    for (size_t i = 0; i < ps->nconns && !backing_off && (capacity < waiting || live == 0); i++) {
        if (ps->conns[i].state != CONN_DOWN)
            continue;
        pg_conn_open(&ps->conns[i]);
        if (ps->conns[i].state == CONN_CONNECTING) {
            capacity += depth;
            live++;
        }
    }
}

static void pg_enqueue(struct pg_sink *ps, struct pg_job *job, int front)
{
    pg_job_arm(job, ps->request_timeout_ms);
    queue_push(ps, job, front);
    pg_dispatch(ps);
}

/* ------------------------------------------------------------------------------------------ */
/* Loading positions                                                                           */

static void load_on_round(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n)
{
    struct sink_positions *req = job->req;
    char why[512];

    (void)c;
    if (n < 1 || !pg_res_ok(res[0])) {
        pgsink_error_text(n ? res[0] : NULL, why, sizeof why);
        load_finish(job, 0, why);
        return;
    }
    for (size_t i = 0; i < req->count; i++)
        req->next[i] = -1;
    for (int r = 0; r < PQntuples(res[0]); r++) {
        int32_t partition = (int32_t)strtol(PQgetvalue(res[0], r, 0), NULL, 10);
        for (size_t i = 0; i < req->count; i++)
            if (req->partitions[i] == partition)
                req->next[i] = strtoll(PQgetvalue(res[0], r, 1), NULL, 10);
    }
    load_finish(job, 1, NULL);
}

static void load_send(struct pg_job *job)
{
    struct pg_sink *ps = job->ps;
    struct pg_conn *c = job->conn;
    struct sink_positions *req = job->req;
    struct buf list = { 0 };
    const char *params[3];
    char num[16];
    int rc = buf_add(&list, "{", 1);

    for (size_t i = 0; i < req->count; i++) {
        snprintf(num, sizeof num, "%s%" PRId32, i ? "," : "", req->partitions[i]);
        rc |= buf_add(&list, num, strlen(num));
    }
    rc |= buf_add(&list, "}", 1);
    if (rc) {
        buf_free(&list);
        load_finish(job, 0, "out of memory");
        return;
    }
    params[0] = ps->super.name;
    params[1] = req->topic;
    params[2] = list.p;
    pg_job_arm(job, ps->request_timeout_ms + PG_DEADLINE_SLACK_MS);
    rc = pg_round_stmt(c, &job->round, ps->map.sql_load, 3, params, NULL, NULL);
    buf_free(&list);
    if (rc != 0 || pg_round_end(c, &job->round, load_on_round) != 0)
        pg_conn_fail(c, PQerrorMessage(c->pg));
}

/* ------------------------------------------------------------------------------------------ */
/* The sink's operations                                                                       */

static int pg_check_first(struct sink *sk, char *err, size_t errlen, const char **key)
{
    struct pg_sink *ps = (struct pg_sink *)sk;

    if (ps->mapped)
        pgsink_map_free(&ps->map);
    ps->mapped = 0;
    if (pgsink_map_build(&ps->map, ps->table, ps->columns, &ps->key_columns, ps->mode, ps->offsets_table,
                         err, errlen, key) != 0)
        return -1;
    ps->mapped = 1;
    return 0;
}

/* The mapping is checked as one: its first problem. */
static int pg_check(struct sink *sk, struct sink_check *c)
{
    const char *key = NULL;
    char err[512];

    err[0] = '\0';
    if (pg_check_first(sk, err, sizeof err, &key) != 0)
        return sink_check_problem(c, key, "%s", err);
    return 0;
}

static void pg_release_all(struct pg_sink *ps)
{
    ps->stopped = 1;
    for (size_t i = 0; ps->conns && i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        struct pg_job *jobs = c->jobs;
        c->jobs = NULL;
        c->njobs = 0;
        pg_conn_close(c);   /* first: the rounds it still holds live in those jobs */
        while (jobs) {
            struct pg_job *job = jobs;
            jobs = job->conn_next;
            pg_job_free(job);
        }
    }
    while (ps->queue_head) {
        struct pg_job *job = ps->queue_head;
        queue_remove(ps, job);
        pg_job_free(job);
    }
    if (ps->reverify_timer)
        evtimer_del(ps->reverify_timer);
}

static int pg_start(struct sink *sk, char *err, size_t errlen)
{
    struct pg_sink *ps = (struct pg_sink *)sk;
    const char *key = NULL, *values[5];
    char why[512];
    PGconn *pg;

    if (!ps->mapped && pg_check_first(sk, err, errlen, &key) != 0)
        return -1;
    snprintf(ps->appname, sizeof ps->appname, "sluice:%s", sk->name);
    snprintf(ps->connect_timeout_s, sizeof ps->connect_timeout_s, "%lld", (ps->connect_timeout_ms + 999) / 1000);
    ps->nconns = (size_t)ps->max_connections;
    if (!(ps->conns = calloc(ps->nconns, sizeof *ps->conns)) ||
        !(ps->reverify_timer = evtimer_new(sk->eb, pg_on_reverify, ps))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        c->ps = ps;
        c->index = (int)i;
        c->state = CONN_DOWN;
        if (!(c->timer = evtimer_new(sk->eb, pg_conn_on_timer, c))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (event_base_get_running_event(sk->eb)) {
        /* Started from a callback of the running loop (a reload): no blocking pre-flight here.
         * The table is checked on the first connection instead (JOB_VERIFY), and nothing is
         * written or loaded before that check passed. */
        ps->verify = PG_VERIFY_PENDING;
        sink_log(sk, LOG_INFO, "started on the running loop (a reload): the table is checked once connected");
        pg_dispatch(ps);
        return 0;
    }
    pg_conn_values(ps, values);
    /* The pre-flight connection blocks, at most connect_timeout; only at the first start, when
     * no event is running (checked above). */
    pg = PQconnectdbParams(pg_conn_keywords(), values, 1); /* banned-ok: the loop is not running yet */
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        pg_one_line(why, sizeof why, pg ? PQerrorMessage(pg) : "out of memory");
        PQfinish(pg);
        snprintf(ps->last_error, sizeof ps->last_error, "%s", why);
        ps->verify = PG_VERIFY_PENDING;
        sink_log(sk, LOG_WARN, "cannot connect at start (%s); the table is checked once a connection succeeds, "
                 "and nothing is consumed for this sink's topics before", why);
        pg_dispatch(ps);   /* keeps one connection attempt going */
        return 0;
    }
    if (pg_preflight(ps, pg, err, errlen) != 0) {
        PQfinish(pg);
        return -1;
    }
    ps->verify = PG_VERIFY_OK;
    sink_log(sk, LOG_INFO, "table %s checked: %zu column(s), mode %s, positions in %s", ps->map.display,
             ps->map.ncols, pg_modes[ps->mode], ps->map.offsets_display);
    ps->conns[0].pg = pg;   /* the first connection of the pool */
    pg_conn_ready(&ps->conns[0], 0);
    return 0;
}

static int pg_prepare(struct sink *sk, struct sink_record *rec, char *err, size_t errlen)
{
    struct pg_sink *ps = (struct pg_sink *)sk;
    struct pgsink_row *row;
    size_t len;

    if (pgsink_row_make(&ps->map, rec, &row, &len, err, errlen) != 0)
        return -1;
    rec->prepared = row;
    rec->prepared_len = len;
    return 0;
}

static void pg_release(struct sink *sk, struct sink_record *rec)
{
    (void)sk;
    free(rec->prepared);
    rec->prepared = NULL;
}

/* For --dry-run: the statement a record would take part in and the texts it would pass. */
static char *pg_describe(struct sink *sk, const struct sink_record *rec)
{
    struct pg_sink *ps = (struct pg_sink *)sk;
    const struct pgsink_row *row = rec->prepared;
    const char *op;
    json_t *doc, *cols;
    char *text;

    if (!row)
        return NULL;
    if (row->tombstone)
        op = ps->map.mode == PGSINK_UPSERT ? "delete" : "none (tombstone ignored in insert mode)";
    else
        op = ps->map.mode == PGSINK_UPSERT ? "upsert" : "insert";
    cols = json_object();
    for (size_t i = 0; cols && i < ps->map.ncols; i++) {
        int32_t len;
        const char *v = pgsink_row_get(row, i, &len);
        if (row->tombstone && !ps->map.cols[i].is_key)
            continue;
        json_object_set_new(cols, ps->map.cols[i].name, v ? json_stringn(v, (size_t)len) : json_null());
    }
    doc = json_pack("{s:s, s:s, s:o?}", "op", op, "table", ps->map.display ? ps->map.display : ps->map.table,
                    "row", cols);
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

static void pg_write(struct sink *sk, struct sink_batch *b)
{
    struct pg_sink *ps = (struct pg_sink *)sk;
    struct pg_job *job = job_new(ps, JOB_WRITE);

    if (!job) {
        sink_batch_done(b, SINK_RETRY, "out of memory");
        return;
    }
    job->b = b;
    if (pg_write_plan(job) != 0) {
        pg_job_free(job);
        sink_batch_done(b, SINK_RETRY, "out of memory");
        return;
    }
    pg_enqueue(ps, job, 0);
}

static void pg_load_positions(struct sink *sk, struct sink_positions *req)
{
    struct pg_sink *ps = (struct pg_sink *)sk;
    struct pg_job *job = job_new(ps, JOB_LOAD);

    if (!job) {
        sink_positions_done(req, 0, "out of memory");
        return;
    }
    job->req = req;
    pg_enqueue(ps, job, 1);   /* an assignment waits for it: ahead of the batches */
}

static int pg_ready(struct sink *sk, char *why, size_t whylen)
{
    struct pg_sink *ps = (struct pg_sink *)sk;

    if (ps->verify == PG_VERIFY_FAILED) {
        snprintf(why, whylen, "%s", ps->verify_error);
        return 0;
    }
    for (size_t i = 0; ps->verify == PG_VERIFY_OK && i < ps->nconns; i++)
        if (ps->conns[i].state == CONN_READY)
            return 1;
    snprintf(why, whylen, "not connected%s%s", ps->last_error[0] ? ": " : "", ps->last_error);
    return 0;
}

static void pg_stop(struct sink *sk)
{
    pg_release_all((struct pg_sink *)sk);
}

static void pg_destroy(struct sink *sk)
{
    struct pg_sink *ps = (struct pg_sink *)sk;

    pg_release_all(ps);
    for (size_t i = 0; ps->conns && i < ps->nconns; i++)
        if (ps->conns[i].timer)
            event_free(ps->conns[i].timer);
    free(ps->conns);
    ps->conns = NULL;
    if (ps->reverify_timer)
        event_free(ps->reverify_timer);
    ps->reverify_timer = NULL;
    while (ps->memos) {
        struct pg_memo *m = ps->memos;
        ps->memos = m->next;
        pg_memo_free(m);
    }
    for (size_t j = 0; ps->arrays && j < ps->map.ncols; j++)
        buf_free(&ps->arrays[j]);
    free(ps->arrays);
    ps->arrays = NULL;
    pgsink_map_free(&ps->map);
    ps->mapped = 0;
}

const struct sink_ops sink_postgres_ops = {
    .type = "postgres",
    .size = sizeof(struct pg_sink),
    .opts = pg_opts,
    /* Not SINK_F_JSON: prepare reads the JSON itself, without building a tree. A batch of no
     * record is a round of the compare-and-set alone. */
    .flags = SINK_F_TRANSACTIONAL | SINK_F_POSITION_BATCHES,
    .help = "Upserts (or appends) records into a PostgreSQL table, exactly once",
    .check = pg_check,
    .start = pg_start,
    .prepare = pg_prepare,
    .release = pg_release,
    .write = pg_write,
    .load_positions = pg_load_positions,
    .stop = pg_stop,
    .destroy = pg_destroy,
    .ready = pg_ready,
    .describe = pg_describe,
};
