/* The postgres sink: upserts (or appends) records into a table, exactly once.
 *
 * Each batch is one transaction that moves the partition's row in sluice_offsets with a
 * compare-and-set and applies the rows. Both travel in one pipeline round between two syncs
 * (an implicit transaction), so a batch costs one round trip:
 *     CAS (raises when the stored position is not the expected one)
 *     DELETE ... USING unnest(keys)            upsert mode: the batch's tombstones
 *     INSERT ... SELECT unnest($1), ...        [ON CONFLICT (keys) DO UPDATE]
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
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "sink.h"
#include "postgres_map.h"
#include "lib/backoff.h"
#include "lib/clock.h"

#define PG_ROUND_MAX 8             /* statements in one pipeline round */
#define PG_BACKOFF_MIN_MS 100      /* reconnect backoff, full jitter */
#define PG_BACKOFF_MAX_MS 10000
#define PG_REVERIFY_MS 30000       /* a failed table check is tried again after this long */
#define PG_DEADLINE_SLACK_MS 2000  /* past statement_timeout, the client gives up on the server */
#define PG_TEXT_OID 25
#define PG_PLAIN_PENALTY_MAX 256   /* upsert batches before trying a plain INSERT again, at most */
/* Ends every probe round, which it always rolls back; the alias explains the error where the
 * server logs the statement. */
#define PG_PROBE_SENTINEL "SELECT 1/0 AS \"sluice: probe for refused rows, rolled back on purpose\""

enum pg_verify { PG_VERIFY_PENDING, PG_VERIFY_RUNNING, PG_VERIFY_OK, PG_VERIFY_FAILED };
/* The statements of a batch, prepared once per connection (parsing and planning them for every
 * batch cost the server about a tenth of its time). */
enum pg_stmt { STMT_WRITE, STMT_INSERT, STMT_DELETE, STMT_CAS_UPDATE, STMT_CAS_INSERT, STMT_POSITION, STMT_COUNT };
static const char *const pg_stmt_names[STMT_COUNT] = {
    "sluice_write", "sluice_insert", "sluice_delete", "sluice_cas_update", "sluice_cas_insert", "sluice_position",
};
enum pg_conn_state { CONN_DOWN, CONN_BACKOFF, CONN_CONNECTING, CONN_SETUP, CONN_READY };
enum pg_job_kind { JOB_WRITE, JOB_LOAD, JOB_VERIFY };

struct pg_sink;
struct pg_conn;
struct pg_job;

typedef void (*pg_round_fn)(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n);

/* Statements sent between two syncs, and their results as they come back. */
struct pg_round {
    struct pg_round *next;        /* the connection's rounds in flight, in send order */
    struct pg_job *job;           /* NULL: the connection's own setup */
    pg_round_fn fn;               /* called at the sync, with the results */
    size_t nstmts, got;
    int got_current;
    PGresult *res[PG_ROUND_MAX];
    PGresult *commit_error;       /* an error after the last statement: the implicit COMMIT failed */
};

struct pg_conn {
    struct pg_sink *ps;
    int index;
    enum pg_conn_state state;
    PGconn *pg;
    struct event *ev;             /* the socket, for ev_what */
    evutil_socket_t ev_fd;
    short ev_what;
    struct event *timer;          /* connect deadline, then reconnect backoff */
    unsigned failures;            /* in a row, for the backoff */
    int flushing;                 /* libpq holds output the socket did not take yet */
    struct pg_round *head, *tail; /* rounds in flight */
    struct pg_round setup;
    struct pg_round prep;
    int prepared;                 /* 0: not yet, 1: the statements are prepared, -1: they could not be */
    struct pg_job *jobs;          /* the jobs it serves, linked by conn_next */
    size_t njobs;
};

/* Rejections of a batch whose final round was cut off unconfirmed, for its retry. */
struct pg_memo {
    struct pg_memo *next;
    char *topic;
    int32_t partition;
    int64_t next_offset;
    size_t count;
    char **rejects;
};

enum pg_write_phase { W_FAST, W_CHECK, W_PROBE, W_FINAL };
enum pg_verify_step { V_CATALOG, V_OFFSETS, V_CREATE, V_OFFSETS_AGAIN };

struct pg_job {
    struct pg_sink *ps;
    enum pg_job_kind kind;
    struct pg_job *next;          /* the queue */
    struct pg_conn *conn;         /* while it runs */
    struct pg_job *conn_next;
    struct event *timer;          /* deadline: in the queue, then per round */
    struct pg_round round;
    struct sink_batch *b;
    struct sink_positions *req;
    /* write */
    enum pg_write_phase phase;
    int plain;                    /* upsert mode, fast path: rows sent as a plain INSERT */
    size_t *entries;              /* record indices to apply, in order (upsert: the last per key) */
    size_t nentries;
    ssize_t *prev;                /* per record: the previous record of its key, or -1 */
    char **rejects;               /* per record: the server's reason, or NULL */
    size_t nrejects;
    size_t *stack;                /* probing: ranges [lo, hi) of entries, as pairs; top = next */
    size_t nstack;
    size_t chunk_lo, chunk_hi;
    size_t *accepted;             /* probing: records known good, in order */
    size_t naccepted;
    size_t *list;                 /* the records of the round being built */
    size_t data_from, data_to;    /* the round's data statements */
    size_t round_stmts;           /* statements of the round in flight (more results: COMMIT failed) */
    /* verify */
    enum pg_verify_step vstep;
};

struct pg_sink {
    struct sink super;
    /* options */
    char *conninfo;
    char *table;
    json_t *columns;
    struct cfg_strlist key_columns;
    int mode;
    char *offsets_table;
    long long max_connections;
    long long pipeline_depth;
    long long connect_timeout_ms;
    long long request_timeout_ms;

    struct pgsink_map map;
    int mapped;
    enum pg_verify verify;
    char verify_error[512];
    struct event *reverify_timer;
    char appname[64];
    char connect_timeout_s[24];

    struct pg_conn *conns;
    size_t nconns;
    struct pg_job *queue_head, *queue_tail;
    struct buf *arrays;    /* one text[] per column, while a round is built (libpq copies) */
    char last_error[512];
    struct pg_memo *memos;
    int stopped;
    /* Upsert mode tries a plain INSERT first (cheaper for the server than ON CONFLICT when the
     * keys are new); while keys turn out to exist, it upserts directly for a while. */
    unsigned plain_skip, plain_penalty;
};

static const char *const pg_modes[] = { "upsert", "insert", NULL };

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
            "Batches queued on one connection, so its server process does not wait for sluice between them"),
    CFG_INT("connect_timeout_ms", "10000", 1000, 600000, offsetof(struct pg_sink, connect_timeout_ms),
            "Limit of one connection attempt"),
    CFG_INT("request_timeout_ms", "30000", 100, 3600000, offsetof(struct pg_sink, request_timeout_ms),
            "statement_timeout of the session; a batch waiting this long for a connection is retried"),
    CFG_END
};

static void pg_dispatch(struct pg_sink *ps);
static void conn_fail(struct pg_conn *c, const char *why);
static void write_step(struct pg_job *job);
static void verify_step(struct pg_job *job);
static void load_send(struct pg_job *job);
static void job_conn_lost(struct pg_job *job, const char *why);

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */

/* libpq's messages span lines ("...unexpectedly\n\tThis probably means..."): keep one line,
 * blanks folded. */
static void one_line(char *out, size_t outlen, const char *msg)
{
    size_t o = 0;
    int blank = 0;

    if (!msg || !*msg)
        msg = "connection lost";
    for (const char *p = msg; *p && o + 1 < outlen; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            blank = o > 0;
            continue;
        }
        if (blank && o + 2 < outlen)
            out[o++] = ' ';
        blank = 0;
        out[o++] = *p;
    }
    out[o] = '\0';
}

static const char *res_state(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

static int res_ok(const PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static int res_failed(const PGresult *res)
{
    return res && PQresultStatus(res) == PGRES_FATAL_ERROR;
}

static int all_ok(PGresult **res, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!res_ok(res[i]))
            return 0;
    return 1;
}

/* The first failed result (the statements after it come back aborted), or NULL. */
static PGresult *first_error(PGresult **res, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (res_failed(res[i]))
            return res[i];
    return NULL;
}

static void on_notice(void *arg, const char *message)
{
    char line[512];
    one_line(line, sizeof line, message);
    sink_log(arg, LOG_DEBUG, "server: %s", line);
}

/* ------------------------------------------------------------------------------------------ */
/* Connections and rounds                                                                      */

static void conn_on_event(evutil_socket_t fd, short what, void *arg);

/* Watch the socket for @p what (EV_READ and/or EV_WRITE); recreated when the socket changes. */
static int conn_watch(struct pg_conn *c, short what)
{
    evutil_socket_t fd = PQsocket(c->pg);

    if (fd < 0)
        return -1;
    if (c->ev && c->ev_fd == fd && c->ev_what == what)
        return 0;
    if (c->ev)
        event_free(c->ev);
    c->ev = event_new(c->ps->super.eb, fd, what | EV_PERSIST, conn_on_event, c);
    if (!c->ev || event_add(c->ev, NULL) != 0)
        return -1;
    c->ev_fd = fd;
    c->ev_what = what;
    return 0;
}

static void round_reset(struct pg_round *r)
{
    for (size_t i = 0; i < PG_ROUND_MAX; i++) {
        PQclear(r->res[i]);
        r->res[i] = NULL;
    }
    PQclear(r->commit_error);
    r->commit_error = NULL;
    r->nstmts = r->got = 0;
    r->got_current = 0;
    r->fn = NULL;
    r->next = NULL;
}

/* Closes the connection; the jobs it served are the caller's to end. */
static void conn_close(struct pg_conn *c)
{
    if (c->ev)
        event_free(c->ev);
    c->ev = NULL;
    if (c->timer)
        evtimer_del(c->timer);
    while (c->head) {
        struct pg_round *r = c->head;
        c->head = r->next;
        round_reset(r);
    }
    c->tail = NULL;
    round_reset(&c->setup);
    round_reset(&c->prep);
    c->prepared = 0;
    c->flushing = 0;
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->state = CONN_DOWN;
}

static void conn_flush(struct pg_conn *c)
{
    int rc = PQflush(c->pg);
    if (rc < 0) {
        conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    c->flushing = rc == 1;
    if (conn_watch(c, EV_READ | (c->flushing ? EV_WRITE : 0)) != 0)
        conn_fail(c, "cannot watch the socket");
}

static int round_stmt(struct pg_conn *c, struct pg_round *r, const char *sql, int nparams,
                      const char *const *values, const int *lengths, const int *formats)
{
    if (r->nstmts >= PG_ROUND_MAX || !PQsendQueryParams(c->pg, sql, nparams, NULL, values, lengths, formats, 0))
        return -1;
    r->nstmts++;
    return 0;
}

/* Ends the round with a sync (its statements are one implicit transaction) and queues it for
 * its results. -1: the connection is broken (the caller fails it). */
static int round_end(struct pg_conn *c, struct pg_round *r, pg_round_fn fn)
{
    if (!PQpipelineSync(c->pg))
        return -1;
    r->fn = fn;
    r->next = NULL;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    conn_flush(c);
    return 0;
}

/* The text and parameter count of a batch statement (NULL when the mode has none). */
static const char *stmt_sql(const struct pg_sink *ps, enum pg_stmt id, int *nparams)
{
    const struct pgsink_map *m = &ps->map;
    switch (id) {
    case STMT_WRITE: *nparams = (int)m->ncols; return m->sql_write;
    case STMT_INSERT: *nparams = (int)m->ncols; return m->sql_insert;
    case STMT_DELETE: *nparams = (int)m->nkeys; return m->sql_delete;
    case STMT_CAS_UPDATE: *nparams = 5; return m->sql_cas_update;
    case STMT_CAS_INSERT: *nparams = 4; return m->sql_cas_insert;
    case STMT_POSITION: *nparams = 3; return m->sql_position;
    default: *nparams = 0; return NULL;
    }
}

/* Runs batch statement @p id: prepared on this connection when it could be. */
static int round_exec(struct pg_conn *c, struct pg_round *r, enum pg_stmt id, const char *const *values,
                      const int *lengths, const int *formats)
{
    int nparams;
    const char *sql = stmt_sql(c->ps, id, &nparams);

    if (c->prepared != 1)
        return round_stmt(c, r, sql, nparams, values, lengths, formats);
    if (r->nstmts >= PG_ROUND_MAX ||
        !PQsendQueryPrepared(c->pg, pg_stmt_names[id], nparams, values, lengths, formats, 0))
        return -1;
    r->nstmts++;
    return 0;
}

static void conn_on_prepared(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n)
{
    char why[512];
    (void)job;
    if (n > 0 && all_ok(res, n)) {
        c->prepared = 1;
        return;
    }
    /* Unprepared statements still work: the server parses and plans them for every batch. */
    c->prepared = -1;
    pgsink_error_text(first_error(res, n), why, sizeof why);
    sink_log(&c->ps->super, LOG_WARN, "connection %d: cannot prepare the batch statements (%s); going on without",
             c->index + 1, why);
}

/* Queues the Parse of every batch statement ahead of the jobs' rounds. */
static int conn_prepare(struct pg_conn *c)
{
    round_reset(&c->prep);
    c->prepared = 2;   /* under way; the jobs sent meanwhile use unnamed statements */
    for (int id = 0; id < STMT_COUNT; id++) {
        int nparams;
        const char *sql = stmt_sql(c->ps, (enum pg_stmt)id, &nparams);
        if (!sql)
            continue;
        if (c->prep.nstmts >= PG_ROUND_MAX || !PQsendPrepare(c->pg, pg_stmt_names[id], sql, nparams, NULL))
            return -1;
        c->prep.nstmts++;
    }
    return round_end(c, &c->prep, conn_on_prepared);
}

/* Results as they come: each statement's end with a NULL, the round's with PIPELINE_SYNC. */
static void conn_drain(struct pg_conn *c)
{
    while (c->pg && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        struct pg_round *r = c->head;
        if (!res) {
            if (!r || !r->got_current)
                break;
            r->got++;
            r->got_current = 0;
            continue;
        }
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PGresult *done[PG_ROUND_MAX + 1];
            size_t n;
            pg_round_fn fn;
            struct pg_job *job;
            PQclear(res);
            if (!r)
                continue;
            c->head = r->next;
            if (!c->head)
                c->tail = NULL;
            n = r->nstmts;
            fn = r->fn;
            job = r->job;
            memcpy(done, r->res, sizeof r->res);
            memset(r->res, 0, sizeof r->res);
            if (r->commit_error) {
                /* The handler sees a failed COMMIT as one more failed result, after the others. */
                done[n++] = r->commit_error;
                r->commit_error = NULL;
            }
            round_reset(r);
            if (fn)
                fn(c, job, done, n);   /* may send the job's next round, or close the connection */
            for (size_t i = 0; i < n; i++)
                PQclear(done[i]);
            continue;
        }
        if (r && r->got < r->nstmts && !r->res[r->got])
            r->res[r->got] = res;
        else if (r && r->got >= r->nstmts && !r->commit_error && res_failed(res))
            r->commit_error = res;   /* e.g. a deferred constraint, checked at the commit */
        else
            PQclear(res);
        if (r)
            r->got_current = 1;
    }
    if (c->pg && PQstatus(c->pg) == CONNECTION_BAD)
        conn_fail(c, PQerrorMessage(c->pg));
}

static void conn_on_setup(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n)
{
    char why[512];
    (void)job;
    if (n < 1 || !res_ok(res[0])) {
        pgsink_error_text(n ? res[0] : NULL, why, sizeof why);
        conn_fail(c, why);
        return;
    }
    c->state = CONN_READY;
    pg_dispatch(c->ps);
}

/* Connected: non-blocking, pipeline mode, the session's statement_timeout. */
static void conn_ready(struct pg_conn *c, int send_setup)
{
    struct pg_sink *ps = c->ps;
    char sql[96];

    evtimer_del(c->timer);
    if (c->failures > 0)
        sink_log(&ps->super, LOG_INFO, "connected again (connection %d)", c->index + 1);
    c->failures = 0;
    PQsetNoticeProcessor(c->pg, on_notice, &ps->super);
    if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg) || conn_watch(c, EV_READ) != 0) {
        conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    if (!send_setup) {
        c->state = CONN_READY;
        return;
    }
    c->state = CONN_SETUP;
    round_reset(&c->setup);
    snprintf(sql, sizeof sql, "SET statement_timeout = %lld", ps->request_timeout_ms);
    if (round_stmt(c, &c->setup, sql, 0, NULL, NULL, NULL) != 0 || round_end(c, &c->setup, conn_on_setup) != 0)
        conn_fail(c, PQerrorMessage(c->pg));
}

static void conn_connect_poll(struct pg_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (conn_watch(c, EV_READ) != 0)
            conn_fail(c, "cannot watch the socket");
        break;
    case PGRES_POLLING_WRITING:
        if (conn_watch(c, EV_WRITE) != 0)
            conn_fail(c, "cannot watch the socket");
        break;
    case PGRES_POLLING_OK:
        conn_ready(c, 1);
        break;
    default:
        conn_fail(c, PQerrorMessage(c->pg));
        break;
    }
}

static const char *const *conn_keywords(void)
{
    /* The user's conninfo (dbname, expanded) comes after the fallback name, so it can set
     * application_name; our encoding and timeout come after it and win. */
    static const char *const kw[] = { "fallback_application_name", "dbname", "client_encoding",
                                      "connect_timeout", NULL };
    return kw;
}

static void conn_values(struct pg_sink *ps, const char *values[5])
{
    values[0] = ps->appname;
    values[1] = ps->conninfo;
    values[2] = "UTF8";
    values[3] = ps->connect_timeout_s;
    values[4] = NULL;
}

static void conn_open(struct pg_conn *c)
{
    struct pg_sink *ps = c->ps;
    const char *values[5];
    struct timeval deadline = ms_to_tv(ps->connect_timeout_ms);

    conn_values(ps, values);
    c->state = CONN_CONNECTING;
    c->pg = PQconnectStartParams(conn_keywords(), values, 1);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        conn_fail(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    evtimer_add(c->timer, &deadline);
    /* libpq: start as if PQconnectPoll had answered "writing". */
    if (conn_watch(c, EV_WRITE) != 0)
        conn_fail(c, "cannot watch the socket");
}

/* The connection is lost (or given up): every job on it ends as "outcome unknown"; a write's
 * retry finds out through the position's compare-and-set. */
static void conn_fail(struct pg_conn *c, const char *why)
{
    struct pg_sink *ps = c->ps;
    struct pg_job *jobs = c->jobs;
    char line[512];
    struct timeval tv;
    long long delay;

    one_line(line, sizeof line, why);
    c->jobs = NULL;
    c->njobs = 0;
    for (struct pg_job *j = jobs; j; j = j->conn_next)
        j->conn = NULL;
    conn_close(c);
    c->failures++;
    delay = backoff_full_jitter(c->failures, PG_BACKOFF_MIN_MS, PG_BACKOFF_MAX_MS);
    tv = ms_to_tv(delay);
    c->state = CONN_BACKOFF;
    evtimer_add(c->timer, &tv);
    snprintf(ps->last_error, sizeof ps->last_error, "%s", line);
    sink_log(&ps->super, c->failures == 1 ? LOG_WARN : LOG_INFO, "connection %d: %s; reconnecting in %lld ms",
             c->index + 1, line, delay);
    while (jobs) {
        struct pg_job *j = jobs;
        jobs = j->conn_next;
        j->conn_next = NULL;
        job_conn_lost(j, line);
    }
    pg_dispatch(ps);
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    char why[128];
    (void)fd;
    (void)what;
    if (c->state == CONN_BACKOFF) {
        c->state = CONN_DOWN;
        pg_dispatch(c->ps);
    } else if (c->state == CONN_CONNECTING) {
        snprintf(why, sizeof why, "no connection within %lld ms", c->ps->connect_timeout_ms);
        conn_fail(c, why);
    }
}

static void conn_on_event(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    (void)fd;

    if (c->state == CONN_CONNECTING) {
        conn_connect_poll(c);
        return;
    }
    if (!c->pg)
        return;
    if (what & EV_READ) {
        if (!PQconsumeInput(c->pg)) {
            conn_fail(c, PQerrorMessage(c->pg));
            return;
        }
        conn_drain(c);
    }
    if (c->pg && (c->flushing || (what & EV_WRITE)))
        conn_flush(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Jobs                                                                                        */

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

static void job_free(struct pg_job *job)
{
    if (job->timer)
        event_free(job->timer);
    round_reset(&job->round);
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
static void job_detach(struct pg_job *job)
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
        conn_fail(c, "the session was left inside a transaction");
}

static struct pg_memo *memo_find(struct pg_sink *ps, const char *topic, int32_t partition, int unlink)
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

static void memo_free(struct pg_memo *m)
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
static void write_finish(struct pg_job *job, enum sink_result result, const char *error)
{
    struct pg_sink *ps = job->ps;
    struct sink_batch *b = job->b;

    /* A memo is settled once the partition's position is known: applied (OK) or owned by
     * another writer (FENCED). After a RETRY the commit it stands for may still have happened,
     * and the next attempt needs it to dead-letter the refused records. */
    if (result == SINK_OK || result == SINK_FENCED)
        memo_free(memo_find(ps, b->topic, b->partition, 1));
    if (result == SINK_OK && job->rejects)
        for (size_t i = 0; i < b->count; i++)
            if (job->rejects[i])
                sink_batch_reject(b, i, job->rejects[i]);
    evtimer_del(job->timer);
    job_detach(job);
    sink_batch_done(b, result, error);
    job_free(job);
    pg_dispatch(ps);
}

static void load_finish(struct pg_job *job, int ok, const char *error)
{
    struct pg_sink *ps = job->ps;
    struct sink_positions *req = job->req;

    evtimer_del(job->timer);
    job_detach(job);
    sink_positions_done(req, ok, error);
    job_free(job);
    pg_dispatch(ps);
}

static void job_fail(struct pg_job *job, const char *why)
{
    struct pg_sink *ps = job->ps;

    switch (job->kind) {
    case JOB_WRITE:
        write_finish(job, SINK_RETRY, why);
        break;
    case JOB_LOAD:
        load_finish(job, 0, why);
        break;
    case JOB_VERIFY:
        job_detach(job);
        job_free(job);
        if (ps->verify == PG_VERIFY_RUNNING)
            ps->verify = PG_VERIFY_PENDING;   /* tried again on the next connection */
        break;
    }
}

/* The job's connection went away (detached already). */
static void job_conn_lost(struct pg_job *job, const char *why)
{
    struct pg_sink *ps = job->ps;
    char msg[600];

    snprintf(msg, sizeof msg, "connection lost: %s", why);
    if (job->kind != JOB_WRITE) {
        job_fail(job, msg);
        return;
    }
    if (job->phase == W_FINAL) {
        /* If that final round committed, the retry will find the batch applied: it needs
         * to know which records were refused, these and not an earlier attempt's. */
        memo_free(memo_find(ps, job->b->topic, job->b->partition, 1));
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
    /* The job is off its connection already, and conn_fail dispatches once they all ended. */
    evtimer_del(job->timer);
    job->b->unreachable = 1;   /* it may have committed: never dead-lettered for this */
    sink_batch_done(job->b, SINK_RETRY, msg);
    job_free(job);
}

static void job_arm(struct pg_job *job, long long ms)
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
        conn_fail(job->conn, why);   /* its jobs end as connection lost */
        return;
    }
    queue_remove(ps, job);
    snprintf(why, sizeof why, "no connection to PostgreSQL within %lld ms%s%s", ps->request_timeout_ms,
             ps->last_error[0] ? ": " : "", ps->last_error);
    if (job->kind == JOB_WRITE)
        job->b->unreachable = 1;   /* the server is away: the records are not at fault */
    job_fail(job, why);
}

static const struct pgsink_row *job_row(const struct pg_job *job, size_t rec);

static int job_all_tombstones(const struct pg_job *job)
{
    for (size_t e = 0; e < job->nentries; e++)
        if (!job_row(job, job->entries[e])->tombstone)
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
        write_step(job);
        break;
    case JOB_LOAD:
        load_send(job);
        break;
    case JOB_VERIFY:
        job->vstep = V_CATALOG;
        verify_step(job);
        break;
    }
}

static void pg_dispatch(struct pg_sink *ps)
{
    size_t waiting, capacity = 0, live = 0, depth = (size_t)ps->pipeline_depth;
    int backing_off = 0;

    if (ps->stopped || !ps->conns)
        return;
    if (ps->verify == PG_VERIFY_FAILED) {
        while (ps->queue_head) {
            struct pg_job *job = ps->queue_head;
            queue_remove(ps, job);
            job_fail(job, ps->verify_error);
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
        if (ps->verify == PG_VERIFY_OK && c->prepared == 0 && conn_prepare(c) != 0) {
            conn_fail(c, PQerrorMessage(c->pg));
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
        conn_open(&ps->conns[i]);
        if (ps->conns[i].state == CONN_CONNECTING) {
            capacity += depth;
            live++;
        }
    }
}

static void pg_enqueue(struct pg_sink *ps, struct pg_job *job, int front)
{
    job_arm(job, ps->request_timeout_ms);
    queue_push(ps, job, front);
    pg_dispatch(ps);
}

/* ------------------------------------------------------------------------------------------ */
/* Verifying the table (asynchronously, when the start could not connect)                      */

static void verify_done(struct pg_job *job, int ok, const char *why)
{
    struct pg_sink *ps = job->ps;

    job_detach(job);
    job_free(job);
    if (ok) {
        ps->verify = PG_VERIFY_OK;
        sink_log(&ps->super, LOG_INFO, "table %s checked: %zu column(s), mode %s, positions in %s",
                 ps->map.display, ps->map.ncols, pg_modes[ps->mode], ps->map.offsets_display);
    } else {
        struct timeval again = ms_to_tv(PG_REVERIFY_MS);
        ps->verify = PG_VERIFY_FAILED;
        snprintf(ps->verify_error, sizeof ps->verify_error, "%s", why);
        sink_log(&ps->super, LOG_ERROR, "%s; nothing is consumed for this sink's topics until it is fixed "
                 "(checked again every %d s)", why, PG_REVERIFY_MS / 1000);
        evtimer_add(ps->reverify_timer, &again);
    }
    pg_dispatch(ps);
}

/* CREATE TABLE IF NOT EXISTS racing another process's: the table is there now. */
static int create_raced(const char *sqlstate)
{
    /* Concurrent CREATE TABLE IF NOT EXISTS: the unique index of pg_type (23505), the
     * relation (42P07) or its row type (42710) may be found created by the other. */
    return strcmp(sqlstate, "23505") == 0 || strcmp(sqlstate, "42P07") == 0 || strcmp(sqlstate, "42710") == 0;
}

static void verify_on_round(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n);

static void verify_step(struct pg_job *job)
{
    struct pg_sink *ps = job->ps;
    struct pg_conn *c = job->conn;
    const char *params[2];
    int rc;

    job_arm(job, ps->request_timeout_ms + PG_DEADLINE_SLACK_MS);
    switch (job->vstep) {
    case V_CATALOG:
        params[0] = ps->map.schema;
        params[1] = ps->map.table;
        rc = round_stmt(c, &job->round, pgsink_catalog_sql, 2, params, NULL, NULL);
        break;
    case V_OFFSETS:
    case V_OFFSETS_AGAIN:
        params[0] = pgsink_offsets_schema(&ps->map);
        params[1] = ps->map.offsets_table;
        rc = round_stmt(c, &job->round, pgsink_catalog_sql, 2, params, NULL, NULL);
        break;
    default:
        rc = round_stmt(c, &job->round, ps->map.sql_create_offsets, 0, NULL, NULL, NULL);
        break;
    }
    if (rc != 0 || round_end(c, &job->round, verify_on_round) != 0)
        conn_fail(c, PQerrorMessage(c->pg));
}

static void verify_on_round(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n)
{
    struct pg_sink *ps = job->ps;
    char why[600], server[400];
    int rc;

    (void)c;
    if (n < 1 || !res_ok(res[0])) {
        const char *state = res_state(n ? res[0] : NULL);
        pgsink_error_text(n ? res[0] : NULL, server, sizeof server);
        if (job->vstep == V_CREATE && create_raced(state)) {
            job->vstep = V_OFFSETS_AGAIN;   /* another process created it meanwhile */
            verify_step(job);
        } else if (pgsink_error_classify(state) == PGSINK_ERR_RETRY) {
            job_fail(job, server);          /* checked again on the next connection */
        } else if (job->vstep == V_CREATE) {
            snprintf(why, sizeof why, "cannot create the offsets table %s: %s (create it, or set offsets_table)",
                     ps->map.offsets_display, server);
            verify_done(job, 0, why);
        } else {
            snprintf(why, sizeof why, "checking table %s%s%s: %s", ps->map.schema ? ps->map.schema : "",
                     ps->map.schema ? "." : "", ps->map.table, server);
            verify_done(job, 0, why);
        }
        return;
    }
    switch (job->vstep) {
    case V_CATALOG:
        if (pgsink_catalog_check_target(&ps->map, res[0], why, sizeof why) != 0) {
            verify_done(job, 0, why);
            return;
        }
        job->vstep = V_OFFSETS;
        break;
    case V_OFFSETS:
    case V_OFFSETS_AGAIN:
        rc = pgsink_catalog_check_offsets(&ps->map, res[0], why, sizeof why);
        if (rc < 0 || (rc == 0 && job->vstep == V_OFFSETS_AGAIN)) {
            verify_done(job, 0, rc < 0 ? why : "the offsets table is still missing after CREATE TABLE");
            return;
        }
        if (pgsink_sql_build(&ps->map) != 0) {
            job_fail(job, "out of memory");
            return;
        }
        if (rc == 1) {
            verify_done(job, 1, NULL);
            return;
        }
        job->vstep = V_CREATE;
        break;
    case V_CREATE:
        job->vstep = V_OFFSETS_AGAIN;
        break;
    }
    verify_step(job);
}

static void on_reverify(evutil_socket_t fd, short what, void *arg)
{
    struct pg_sink *ps = arg;
    (void)fd;
    (void)what;
    if (ps->verify == PG_VERIFY_FAILED)
        ps->verify = PG_VERIFY_PENDING;
    pg_dispatch(ps);
}

/* ------------------------------------------------------------------------------------------ */
/* Loading positions                                                                           */

static void load_on_round(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n)
{
    struct sink_positions *req = job->req;
    char why[512];

    (void)c;
    if (n < 1 || !res_ok(res[0])) {
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
    job_arm(job, ps->request_timeout_ms + PG_DEADLINE_SLACK_MS);
    rc = round_stmt(c, &job->round, ps->map.sql_load, 3, params, NULL, NULL);
    buf_free(&list);
    if (rc != 0 || round_end(c, &job->round, load_on_round) != 0)
        conn_fail(c, PQerrorMessage(c->pg));
}

/* ------------------------------------------------------------------------------------------ */
/* Writing a batch                                                                             */

static const struct pgsink_row *job_row(const struct pg_job *job, size_t rec)
{
    return job->b->records[rec].prepared;
}

/* Which records to apply: upsert keeps the last record of each key (a multi-row upsert may not
 * touch a row twice), remembering the one before it in case the last is refused; insert keeps
 * every record but tombstones. */
static int write_plan(struct pg_job *job)
{
    struct pg_sink *ps = job->ps;
    struct sink_batch *b = job->b;
    size_t n = b->count, size = 16, *slots = NULL;
    unsigned char *last = NULL;

    job->entries = malloc((n ? n : 1) * sizeof *job->entries);
    job->prev = malloc((n ? n : 1) * sizeof *job->prev);
    job->rejects = calloc(n ? n : 1, sizeof *job->rejects);
    job->list = malloc((n ? n : 1) * sizeof *job->list);
    if (!job->entries || !job->prev || !job->rejects || !job->list)
        return -1;
    job->nentries = 0;
    if (ps->map.mode == PGSINK_INSERT) {
        for (size_t i = 0; i < n; i++) {
            job->prev[i] = -1;
            if (!job_row(job, i)->tombstone)
                job->entries[job->nentries++] = i;
        }
        return 0;
    }
    while (size < 2 * n)
        size *= 2;
    slots = calloc(size, sizeof *slots);   /* record index + 1; 0: empty */
    last = calloc(n ? n : 1, 1);
    if (!slots || !last) {
        free(slots);
        free(last);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct pgsink_row *row = job_row(job, i);
        size_t s = (size_t)row->key_hash & (size - 1);
        job->prev[i] = -1;
        while (slots[s] && !pgsink_row_same_key(&ps->map, job_row(job, slots[s] - 1), row))
            s = (s + 1) & (size - 1);
        if (slots[s])
            job->prev[i] = (ssize_t)(slots[s] - 1);
        slots[s] = i + 1;
    }
    for (size_t s = 0; s < size; s++)
        if (slots[s])
            last[slots[s] - 1] = 1;
    for (size_t i = 0; i < n; i++)
        if (last[i])
            job->entries[job->nentries++] = i;
    free(slots);
    free(last);
    return 0;
}

static void put_be32(char *p, uint32_t v)
{
    uint32_t be = htonl(v);
    memcpy(p, &be, 4);
}

/* The binary text[] parameters for the records @p list[0..n) that are (or are not)
 * tombstones: one array per column (all columns, or the key columns for tombstones), in the
 * sink's buffers, sized in a first pass and filled in a second. @return rows, or -1. */
static ssize_t write_arrays(struct pg_job *job, const size_t *list, size_t n, int tombstones)
{
    struct pg_sink *ps = job->ps;
    const struct pgsink_map *m = &ps->map;
    size_t ncols = tombstones ? m->nkeys : m->ncols, count = 0;
    int hasnull = 0;

    if (!ps->arrays && !(ps->arrays = calloc(m->ncols, sizeof *ps->arrays)))
        return -1;
    for (size_t j = 0; j < ncols; j++)
        ps->arrays[j].len = 20;   /* the header */
    for (size_t e = 0; e < n; e++) {
        const struct pgsink_row *row = job_row(job, list[e]);
        if ((int)row->tombstone != tombstones)
            continue;
        count++;
        for (size_t j = 0; j < ncols; j++) {
            int32_t len;
            pgsink_row_get(row, tombstones ? m->keys[j] : j, &len);
            ps->arrays[j].len += 4 + (len > 0 ? (size_t)len : 0);
        }
    }
    for (size_t j = 0; j < ncols; j++) {
        size_t need = ps->arrays[j].len;
        buf_reset(&ps->arrays[j]);
        if (buf_add(&ps->arrays[j], NULL, need) != 0)   /* room, and len = need */
            return -1;
        ps->arrays[j].len = 20;
    }
    for (size_t e = 0; e < n; e++) {
        const struct pgsink_row *row = job_row(job, list[e]);
        if ((int)row->tombstone != tombstones)
            continue;
        for (size_t j = 0; j < ncols; j++) {
            struct buf *a = &ps->arrays[j];
            int32_t len;
            const char *v = pgsink_row_get(row, tombstones ? m->keys[j] : j, &len);
            put_be32(a->p + a->len, (uint32_t)len);
            a->len += 4;
            if (len > 0) {
                memcpy(a->p + a->len, v, (size_t)len);
                a->len += (size_t)len;
            } else if (len < 0) {
                hasnull = 1;
            }
        }
    }
    for (size_t j = 0; j < ncols; j++) {
        char *h = ps->arrays[j].p;
        put_be32(h, 1);                        /* dimensions */
        put_be32(h + 4, (uint32_t)hasnull);
        put_be32(h + 8, PG_TEXT_OID);
        put_be32(h + 12, (uint32_t)count);     /* length */
        put_be32(h + 16, 1);                   /* lower bound */
    }
    return (ssize_t)count;
}

static int write_send_arrays(struct pg_job *job, enum pg_stmt id, size_t ncols)
{
    struct pg_sink *ps = job->ps;
    const char *values[ncols ? ncols : 1];
    int lengths[ncols ? ncols : 1], formats[ncols ? ncols : 1];

    for (size_t j = 0; j < ncols; j++) {
        values[j] = ps->arrays[j].p;
        lengths[j] = (int)ps->arrays[j].len;
        formats[j] = 1;
    }
    return round_exec(job->conn, &job->round, id, values, lengths, formats);
}

/* The records @p list[0..n): the deletes, then the upserts (or inserts, @p plain or insert
 * mode); data_from/data_to mark their statements in the round. */
static int write_send_rows(struct pg_job *job, const size_t *list, size_t n, int plain, ssize_t *ndel, ssize_t *nups)
{
    const struct pgsink_map *m = &job->ps->map;

    *ndel = *nups = 0;
    job->data_from = job->round.nstmts;
    if (m->mode == PGSINK_UPSERT) {
        if ((*ndel = write_arrays(job, list, n, 1)) < 0)
            return -1;
        if (*ndel > 0 && write_send_arrays(job, STMT_DELETE, m->nkeys) != 0)
            return -1;
    }
    if ((*nups = write_arrays(job, list, n, 0)) < 0)
        return -1;
    if (*nups > 0 && write_send_arrays(job, plain && m->sql_insert ? STMT_INSERT : STMT_WRITE, m->ncols) != 0)
        return -1;
    job->data_to = job->round.nstmts;
    return 0;
}

static int write_send_cas(struct pg_job *job)
{
    struct sink_batch *b = job->b;
    char partition[16], next[24], prev[24];
    const char *params[5] = { job->ps->super.name, b->topic, partition, next, prev };

    snprintf(partition, sizeof partition, "%" PRId32, b->partition);
    snprintf(next, sizeof next, "%" PRId64, b->next);
    snprintf(prev, sizeof prev, "%" PRId64, b->prev_next);
    return round_exec(job->conn, &job->round, b->prev_next < 0 ? STMT_CAS_INSERT : STMT_CAS_UPDATE, params, NULL, NULL);
}

static int write_send_position(struct pg_job *job)
{
    struct sink_batch *b = job->b;
    char partition[16];
    const char *params[3] = { job->ps->super.name, b->topic, partition };

    snprintf(partition, sizeof partition, "%" PRId32, b->partition);
    return round_exec(job->conn, &job->round, STMT_POSITION, params, NULL, NULL);
}

static int is_cas_mismatch(const PGresult *res)
{
    return res_failed(res) && strcmp(res_state(res), "22012") == 0;   /* our 1 / count(*) */
}

/* Whether @p bad is the result of one of the round's data statements. */
static int is_data_stmt(const struct pg_job *job, PGresult **res, size_t n, const PGresult *bad)
{
    for (size_t i = job->data_from; i < job->data_to && i < n; i++)
        if (res[i] == bad)
            return 1;
    return 0;
}

/* Whether @p bad is the failed COMMIT that ends the round (after every statement's result). */
static int is_commit_error(const struct pg_job *job, PGresult **res, size_t n, const PGresult *bad)
{
    return n > job->round_stmts && res[n - 1] == bad;
}

static int stack_push(struct pg_job *job, size_t lo, size_t hi)
{
    if (!job->stack && !(job->stack = malloc(2 * (2 * job->nentries + 8) * sizeof *job->stack)))
        return -1;
    job->stack[2 * job->nstack] = lo;
    job->stack[2 * job->nstack + 1] = hi;
    job->nstack++;
    return 0;
}

static void write_on_round(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n);

/* Sends the round of the job's phase (a new deadline for each round). */
static void write_step(struct pg_job *job)
{
    struct pg_conn *c = job->conn;
    struct sink_batch *b = job->b;
    ssize_t ndel = 0, nups = 0;
    size_t nlist = 0;
    int rc = 0;

    job_arm(job, job->ps->request_timeout_ms + PG_DEADLINE_SLACK_MS);
    switch (job->phase) {
    case W_FAST:
        rc = write_send_cas(job) || write_send_rows(job, job->entries, job->nentries, job->plain, &ndel, &nups);
        if (!rc) {
            const char *how = job->ps->map.mode == PGSINK_INSERT ? "inserted"
                              : job->plain                        ? "inserted (new keys)"
                                                                  : "upserted";
            sink_batch_note(b, "%zu records: %zd %s, %zd deleted, one round trip", b->count, nups, how, ndel);
        }
        break;
    case W_CHECK:
        rc = write_send_position(job);
        break;
    case W_PROBE:
        /* The rows accepted so far and the next chunk, rolled back by the sentinel's error. */
        job->nstack--;
        job->chunk_lo = job->stack[2 * job->nstack];
        job->chunk_hi = job->stack[2 * job->nstack + 1];
        memcpy(job->list, job->accepted, job->naccepted * sizeof *job->list);
        nlist = job->naccepted;
        for (size_t e = job->chunk_lo; e < job->chunk_hi; e++)
            job->list[nlist++] = job->entries[e];
        /* Deferred constraints are checked at each statement here, so that a row violating
         * one shows in the probe instead of at a commit the probe never reaches. (The server
         * warns that SET CONSTRAINTS wants a transaction block, but it holds for the implicit
         * transaction of the round; the warning goes to the debug log.) */
        rc = round_stmt(c, &job->round, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL, NULL, NULL) ||
             write_send_rows(job, job->list, nlist, 0, &ndel, &nups) ||
             round_stmt(c, &job->round, PG_PROBE_SENTINEL, 0, NULL, NULL, NULL);
        break;
    case W_FINAL:
        rc = write_send_cas(job) || write_send_rows(job, job->accepted, job->naccepted, 0, &ndel, &nups);
        break;
    }
    job->round_stmts = job->round.nstmts;
    if (rc != 0 || round_end(c, &job->round, write_on_round) != 0)
        conn_fail(c, PQerrorMessage(c->pg));
}

/* The stored position after a failed compare-and-set decides. */
static void write_on_position(struct pg_job *job, const PGresult *res)
{
    struct sink_batch *b = job->b;
    int64_t stored = PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    char why[160];

    if (stored == b->next) {
        struct pg_memo *m = memo_find(job->ps, b->topic, b->partition, 1);
        if (m && m->next_offset == b->next && m->count == b->count) {
            for (size_t i = 0; i < b->count; i++) {
                free(job->rejects[i]);
                job->rejects[i] = m->rejects[i];
                m->rejects[i] = NULL;
            }
        }
        memo_free(m);
        sink_log(&job->ps->super, LOG_INFO, "%s [%" PRId32 "] up to %" PRId64 " was applied already (its "
                 "commit was not confirmed before a connection loss): not applying it again",
                 b->topic, b->partition, b->next);
        write_finish(job, SINK_OK, NULL);
        return;
    }
    if (stored == b->prev_next) {
        write_finish(job, SINK_RETRY, "the stored position changed during the attempt");
        return;
    }
    snprintf(why, sizeof why, "stored position is %" PRId64 ", expected %" PRId64, stored, b->prev_next);
    write_finish(job, SINK_FENCED, why);
}

/* Probing found chunk [chunk_lo, chunk_hi) good, or a row error in it: narrow it down. */
static int write_probed(struct pg_job *job, const PGresult *bad, const char *why)
{
    size_t lo = job->chunk_lo, hi = job->chunk_hi;

    if (!bad) {
        for (size_t e = lo; e < hi; e++)
            job->accepted[job->naccepted++] = job->entries[e];
        return 0;
    }
    if (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        return stack_push(job, mid, hi) || stack_push(job, lo, mid) ? -1 : 0;
    }
    {
        size_t rec = job->entries[lo];
        char reason[700];
        snprintf(reason, sizeof reason, "postgres refused the row: %s", why);
        free(job->rejects[rec]);
        if (!(job->rejects[rec] = strdup(reason)))
            return -1;
        job->nrejects++;
        if (job->prev[rec] >= 0) {
            /* The key's earlier record stands in for the refused one. */
            job->entries[lo] = (size_t)job->prev[rec];
            return stack_push(job, lo, hi);
        }
    }
    return 0;
}

static void write_on_round(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n)
{
    struct sink_batch *b = job->b;
    PGresult *bad;
    char why[600];

    (void)c;
    switch (job->phase) {
    case W_FAST:
    case W_FINAL:
        if (n < 1 || !res_ok(res[0])) {
            if (n >= 1 && is_cas_mismatch(res[0])) {
                job->phase = W_CHECK;
                write_step(job);
                return;
            }
            pgsink_error_text(n ? res[0] : NULL, why, sizeof why);
            write_finish(job, SINK_RETRY, why);
            return;
        }
        if (all_ok(res, n)) {
            if (job->plain)
                job->ps->plain_penalty = 0;
            if (job->phase == W_FINAL)
                sink_batch_note(b, "%zu records, %zu refused by the server, the others applied", b->count,
                                job->nrejects);
            write_finish(job, SINK_OK, NULL);
            return;
        }
        bad = first_error(res, n);
        pgsink_error_text(bad, why, sizeof why);
        if (job->phase == W_FAST && job->plain && bad && is_data_stmt(job, res, n, bad) &&
            strcmp(res_state(bad), "23505") == 0) {
            /* Some key exists already: the same batch again, as an upsert; and upsert directly
             * for a while (longer each time keys keep existing). */
            struct pg_sink *ps = job->ps;
            ps->plain_penalty = ps->plain_penalty ? ps->plain_penalty * 2 : 1;
            if (ps->plain_penalty > PG_PLAIN_PENALTY_MAX)
                ps->plain_penalty = PG_PLAIN_PENALTY_MAX;
            ps->plain_skip = ps->plain_penalty;
            job->plain = 0;
            write_step(job);
            return;
        }
        if (job->phase == W_FAST && bad && (is_data_stmt(job, res, n, bad) || is_commit_error(job, res, n, bad)) &&
            pgsink_error_classify(res_state(bad)) == PGSINK_ERR_ROW &&
            job->ps->super.on_failure == SINK_ON_FAILURE_BLOCK) {
            /* on_failure block: no row is skipped; the batch waits (parked) until the data or the
             * table is fixed. */
            write_finish(job, SINK_RETRY, why);
            return;
        }
        if (job->phase == W_FAST && bad && (is_data_stmt(job, res, n, bad) || is_commit_error(job, res, n, bad)) &&
            pgsink_error_classify(res_state(bad)) == PGSINK_ERR_ROW) {
            /* Some row is refused: find it by bisection, in rounds that roll back. */
            sink_log(&job->ps->super, LOG_DEBUG, "%s [%" PRId32 "]: %s; looking for the refused rows",
                     b->topic, b->partition, why);
            job->phase = W_PROBE;
            job->naccepted = 0;
            job->nstack = 0;
            if (!(job->accepted = malloc((job->nentries ? job->nentries : 1) * sizeof *job->accepted)) ||
                (job->nentries > 1 && stack_push(job, job->nentries / 2, job->nentries) != 0) ||
                stack_push(job, 0, job->nentries > 1 ? job->nentries / 2 : 1) != 0) {
                write_finish(job, SINK_RETRY, "out of memory");
                return;
            }
            write_step(job);
            return;
        }
        /* W_FINAL: the rows that passed the probes failed together: something changed. */
        write_finish(job, SINK_RETRY, why);
        return;
    case W_CHECK:
        if (n < 1 || !all_ok(res, n)) {
            pgsink_error_text(first_error(res, n), why, sizeof why);
            write_finish(job, SINK_RETRY, why);
            return;
        }
        write_on_position(job, res[n - 1]);
        return;
    case W_PROBE:
        /* [data statements, sentinel]: the sentinel fails by design; a data error is the chunk's. */
        bad = NULL;
        for (size_t i = job->data_from; i < job->data_to && i < n; i++) {
            if (!res_ok(res[i])) {
                bad = res[i];
                break;
            }
        }
        pgsink_error_text(bad, why, sizeof why);
        if (bad && (!res_failed(bad) || pgsink_error_classify(res_state(bad)) != PGSINK_ERR_ROW)) {
            write_finish(job, SINK_RETRY, why);
            return;
        }
        if (write_probed(job, bad, why) != 0) {
            write_finish(job, SINK_RETRY, "out of memory");
            return;
        }
        if (job->nstack == 0)
            job->phase = W_FINAL;
        write_step(job);
        return;
    }
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

/* A blocking query for the pre-flight. */
static PGresult *preflight_query(PGconn *pg, const char *sql, const char *p0, const char *p1)
{
    const char *params[2] = { p0, p1 };
    int n = p1 ? 2 : 0;
    return PQexecParams(pg, sql, n, NULL, n ? params : NULL, NULL, NULL, 0); /* banned-ok: loop not running */
}

/* The table checks, on a blocking connection, at the first start (pg_start makes sure the loop
 * is not running yet): a mismatch stops sluice at start, naming the table and the column. */
static int preflight(struct pg_sink *ps, PGconn *pg, char *err, size_t errlen)
{
    struct pgsink_map *m = &ps->map;
    char sql[96], server[400];
    PGresult *res;
    int rc = -1, offsets;

    snprintf(sql, sizeof sql, "SET statement_timeout = %lld", ps->request_timeout_ms);
    res = PQexec(pg, sql); /* banned-ok: loop not running yet, bounded by statement_timeout */
    if (!res_ok(res))
        goto server_error;
    PQclear(res);
    res = preflight_query(pg, pgsink_catalog_sql, m->schema, m->table);
    if (!res_ok(res))
        goto server_error;
    if (pgsink_catalog_check_target(m, res, err, errlen) != 0)
        goto out;
    PQclear(res);
    for (int pass = 0; pass < 2; pass++) {
        res = preflight_query(pg, pgsink_catalog_sql, pgsink_offsets_schema(m), m->offsets_table);
        if (!res_ok(res))
            goto server_error;
        offsets = pgsink_catalog_check_offsets(m, res, err, errlen);
        PQclear(res);
        res = NULL;
        if (offsets < 0)
            goto out;
        if (pgsink_sql_build(m) != 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (offsets == 1) {
            rc = 0;
            goto out;
        }
        if (pass == 1)
            break;
        res = PQexec(pg, m->sql_create_offsets); /* banned-ok: loop not running yet */
        if (!res_ok(res) && !create_raced(res_state(res))) {
            pgsink_error_text(res, server, sizeof server);
            snprintf(err, errlen, "cannot create the offsets table %s: %s (create it, or set offsets_table)",
                     m->offsets_display, server);
            goto out;
        }
        PQclear(res);
        res = NULL;
        sink_log(&ps->super, LOG_INFO, "created the offsets table %s", m->offsets_display);
    }
    snprintf(err, errlen, "the offsets table %s is still missing after CREATE TABLE", m->offsets_display);
    goto out;
server_error:
    pgsink_error_text(res, server, sizeof server);
    snprintf(err, errlen, "checking table %s%s%s: %s", m->schema ? m->schema : "", m->schema ? "." : "",
             m->table, server);
out:
    PQclear(res);
    return rc;
}

static void pg_release_all(struct pg_sink *ps)
{
    ps->stopped = 1;
    for (size_t i = 0; ps->conns && i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        struct pg_job *jobs = c->jobs;
        c->jobs = NULL;
        c->njobs = 0;
        conn_close(c);   /* first: the rounds it still holds live in those jobs */
        while (jobs) {
            struct pg_job *job = jobs;
            jobs = job->conn_next;
            job_free(job);
        }
    }
    while (ps->queue_head) {
        struct pg_job *job = ps->queue_head;
        queue_remove(ps, job);
        job_free(job);
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
        !(ps->reverify_timer = evtimer_new(sk->eb, on_reverify, ps))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < ps->nconns; i++) {
        struct pg_conn *c = &ps->conns[i];
        c->ps = ps;
        c->index = (int)i;
        c->state = CONN_DOWN;
        if (!(c->timer = evtimer_new(sk->eb, conn_on_timer, c))) {
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
    conn_values(ps, values);
    /* The pre-flight connection blocks, at most connect_timeout; only at the first start, when
     * no event is running (checked above). */
    pg = PQconnectdbParams(conn_keywords(), values, 1); /* banned-ok: the loop is not running yet */
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        one_line(why, sizeof why, pg ? PQerrorMessage(pg) : "out of memory");
        PQfinish(pg);
        snprintf(ps->last_error, sizeof ps->last_error, "%s", why);
        ps->verify = PG_VERIFY_PENDING;
        sink_log(sk, LOG_WARN, "cannot connect at start (%s); the table is checked once a connection succeeds, "
                 "and nothing is consumed for this sink's topics before", why);
        pg_dispatch(ps);   /* keeps one connection attempt going */
        return 0;
    }
    if (preflight(ps, pg, err, errlen) != 0) {
        PQfinish(pg);
        return -1;
    }
    ps->verify = PG_VERIFY_OK;
    sink_log(sk, LOG_INFO, "table %s checked: %zu column(s), mode %s, positions in %s", ps->map.display,
             ps->map.ncols, pg_modes[ps->mode], ps->map.offsets_display);
    ps->conns[0].pg = pg;   /* the first connection of the pool */
    conn_ready(&ps->conns[0], 0);
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
    if (write_plan(job) != 0) {
        job_free(job);
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
        memo_free(m);
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
