/* The postgres sink's connections (see postgres_sink.h): libpq non-blocking, in pipeline mode,
 * its socket watched by libevent; statements go out in rounds between two syncs, and each
 * round's results come back to its job at the sync. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_sink.h"
#include "lib/backoff.h"
#include "lib/clock.h"

static const char *const pg_stmt_names[STMT_COUNT] = {
    "sluice_write", "sluice_insert", "sluice_delete", "sluice_cas_update", "sluice_cas_insert", "sluice_position",
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */

/* libpq's messages span lines ("...unexpectedly\n\tThis probably means..."): keep one line,
 * blanks folded. */
void pg_one_line(char *out, size_t outlen, const char *msg)
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

const char *pg_res_state(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

int pg_res_ok(const PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int pg_res_failed(const PGresult *res)
{
    return res && PQresultStatus(res) == PGRES_FATAL_ERROR;
}

int pg_all_ok(PGresult **res, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!pg_res_ok(res[i]))
            return 0;
    return 1;
}

/* The first failed result (the statements after it come back aborted), or NULL. */
PGresult *pg_first_error(PGresult **res, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pg_res_failed(res[i]))
            return res[i];
    return NULL;
}

static void on_notice(void *arg, const char *message)
{
    char line[512];
    pg_one_line(line, sizeof line, message);
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

void pg_round_reset(struct pg_round *r)
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
void pg_conn_close(struct pg_conn *c)
{
    if (c->ev)
        event_free(c->ev);
    c->ev = NULL;
    if (c->timer)
        evtimer_del(c->timer);
    while (c->head) {
        struct pg_round *r = c->head;
        c->head = r->next;
        pg_round_reset(r);
    }
    c->tail = NULL;
    pg_copy_abandon(c);
    pg_round_reset(&c->setup);
    pg_round_reset(&c->prep);
    c->prepared = 0;
    c->flushing = 0;
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->state = CONN_DOWN;
}

void pg_conn_flush(struct pg_conn *c)
{
    int rc = PQflush(c->pg);
    if (rc < 0) {
        pg_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    c->flushing = rc == 1;
    if (conn_watch(c, EV_READ | (c->flushing ? EV_WRITE : 0)) != 0)
        pg_conn_fail(c, "cannot watch the socket");
}

int pg_round_stmt(struct pg_conn *c, struct pg_round *r, const char *sql, int nparams,
                  const char *const *values, const int *lengths, const int *formats)
{
    if (r->nstmts >= PG_ROUND_MAX || !PQsendQueryParams(c->pg, sql, nparams, NULL, values, lengths, formats, 0))
        return -1;
    r->nstmts++;
    return 0;
}

/* Ends the round with a sync (its statements are one implicit transaction) and queues it for
 * its results. -1: the connection is broken (the caller fails it). */
int pg_round_end(struct pg_conn *c, struct pg_round *r, pg_round_fn fn)
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
    pg_conn_flush(c);
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
int pg_round_exec(struct pg_conn *c, struct pg_round *r, enum pg_stmt id, const char *const *values,
                  const int *lengths, const int *formats)
{
    int nparams;
    const char *sql = stmt_sql(c->ps, id, &nparams);

    if (c->prepared != 1)
        return pg_round_stmt(c, r, sql, nparams, values, lengths, formats);
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
    if (n > 0 && pg_all_ok(res, n)) {
        c->prepared = 1;
        return;
    }
    /* Unprepared statements still work: the server parses and plans them for every batch. */
    c->prepared = -1;
    pgsink_error_text(pg_first_error(res, n), why, sizeof why);
    sink_log(&c->ps->super, LOG_WARN, "connection %d: cannot prepare the batch statements (%s); going on without",
             c->index + 1, why);
}

/* Queues the Parse of every batch statement ahead of the jobs' rounds. */
int pg_conn_prepare(struct pg_conn *c)
{
    pg_round_reset(&c->prep);
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
    return pg_round_end(c, &c->prep, conn_on_prepared);
}

/* Results as they come: each statement's end with a NULL, the round's with PIPELINE_SYNC. */
static void conn_drain(struct pg_conn *c)
{
    if (c->copy_job) {
        pg_copy_drain(c);   /* out of pipeline mode until its transaction ends */
        return;
    }
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
            pg_round_reset(r);
            if (fn)
                fn(c, job, done, n);   /* may send the job's next round, or close the connection */
            for (size_t i = 0; i < n; i++)
                PQclear(done[i]);
            continue;
        }
        if (r && r->got < r->nstmts && !r->res[r->got])
            r->res[r->got] = res;
        else if (r && r->got >= r->nstmts && !r->commit_error && pg_res_failed(res))
            r->commit_error = res;   /* e.g. a deferred constraint, checked at the commit */
        else
            PQclear(res);
        if (r)
            r->got_current = 1;
    }
    if (c->pg && PQstatus(c->pg) == CONNECTION_BAD)
        pg_conn_fail(c, PQerrorMessage(c->pg));
}

static void conn_on_setup(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n)
{
    char why[512];
    (void)job;
    if (n < 1 || !pg_res_ok(res[0])) {
        pgsink_error_text(n ? res[0] : NULL, why, sizeof why);
        pg_conn_fail(c, why);
        return;
    }
    c->state = CONN_READY;
    pg_dispatch(c->ps);
}

/* Connected: non-blocking, pipeline mode, the session's statement_timeout. */
void pg_conn_ready(struct pg_conn *c, int send_setup)
{
    struct pg_sink *ps = c->ps;
    char sql[96];

    evtimer_del(c->timer);
    if (c->failures > 0)
        sink_log(&ps->super, LOG_INFO, "connected again (connection %d)", c->index + 1);
    c->failures = 0;
    PQsetNoticeProcessor(c->pg, on_notice, &ps->super);
    if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg) || conn_watch(c, EV_READ) != 0) {
        pg_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    if (!send_setup) {
        c->state = CONN_READY;
        return;
    }
    c->state = CONN_SETUP;
    pg_round_reset(&c->setup);
    snprintf(sql, sizeof sql, "SET statement_timeout = %lld", ps->request_timeout_ms);
    if (pg_round_stmt(c, &c->setup, sql, 0, NULL, NULL, NULL) != 0 || pg_round_end(c, &c->setup, conn_on_setup) != 0)
        pg_conn_fail(c, PQerrorMessage(c->pg));
}

static void conn_connect_poll(struct pg_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (conn_watch(c, EV_READ) != 0)
            pg_conn_fail(c, "cannot watch the socket");
        break;
    case PGRES_POLLING_WRITING:
        if (conn_watch(c, EV_WRITE) != 0)
            pg_conn_fail(c, "cannot watch the socket");
        break;
    case PGRES_POLLING_OK:
        pg_conn_ready(c, 1);
        break;
    default:
        pg_conn_fail(c, PQerrorMessage(c->pg));
        break;
    }
}

const char *const *pg_conn_keywords(void)
{
    /* The user's conninfo (dbname, expanded) comes after the fallback name, so it can set
     * application_name; our encoding and timeout come after it and win. */
    static const char *const kw[] = { "fallback_application_name", "dbname", "client_encoding",
                                      "connect_timeout", NULL };
    return kw;
}

void pg_conn_values(struct pg_sink *ps, const char *values[5])
{
    values[0] = ps->appname;
    values[1] = ps->conninfo;
    values[2] = "UTF8";
    values[3] = ps->connect_timeout_s;
    values[4] = NULL;
}

void pg_conn_open(struct pg_conn *c)
{
    struct pg_sink *ps = c->ps;
    const char *values[5];
    struct timeval deadline = ms_to_tv(ps->connect_timeout_ms);

    pg_conn_values(ps, values);
    c->state = CONN_CONNECTING;
    c->pg = PQconnectStartParams(pg_conn_keywords(), values, 1);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        pg_conn_fail(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    evtimer_add(c->timer, &deadline);
    /* libpq: start as if PQconnectPoll had answered "writing". */
    if (conn_watch(c, EV_WRITE) != 0)
        pg_conn_fail(c, "cannot watch the socket");
}

/* The connection is lost (or given up): every job on it ends as "outcome unknown"; a write's
 * retry finds out through the position's compare-and-set. */
void pg_conn_fail(struct pg_conn *c, const char *why)
{
    struct pg_sink *ps = c->ps;
    struct pg_job *jobs = c->jobs;
    char line[512];
    struct timeval tv;
    long long delay;

    pg_one_line(line, sizeof line, why);
    c->jobs = NULL;
    c->njobs = 0;
    for (struct pg_job *j = jobs; j; j = j->conn_next)
        j->conn = NULL;
    pg_conn_close(c);
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
        pg_job_conn_lost(j, line);
    }
    pg_dispatch(ps);
}

void pg_conn_on_timer(evutil_socket_t fd, short what, void *arg)
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
        pg_conn_fail(c, why);
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
            pg_conn_fail(c, PQerrorMessage(c->pg));
            return;
        }
        conn_drain(c);
    }
    if (c->pg && (c->flushing || (what & EV_WRITE)))
        pg_conn_flush(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Jobs                                                                                        */
