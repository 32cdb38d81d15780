/* Mode insert: a batch's rows go by COPY FROM STDIN, which costs the server about half of what
 * INSERT ... SELECT unnest(...) does. libpq refuses COPY in pipeline mode, so the connection
 * leaves it for the batch (it carries one batch at a time in this mode) and sends, as one simple
 * query, "BEGIN; EXECUTE <compare-and-set>; COPY ...", then the rows, then COMMIT: the position
 * and the rows are still one transaction, in two round trips. Every step is non-blocking: the
 * rows wait in libpq's buffer and leave as the socket takes them (conn_flush on the loop). The
 * results reach the write's usual handler as a round [compare-and-set, COPY] (+ a failed
 * COMMIT), so a moved position, a refused row or a lost connection take the paths they take
 * for an INSERT; probing refused rows runs in pipeline mode again. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_sink.h"

enum pg_copy_step {
    COPY_IDLE,
    COPY_STARTED,    /* BEGIN; compare-and-set; COPY sent: waiting for the COPY to start */
    COPY_SENT,       /* the rows and their end sent: waiting for the COPY's result */
    COPY_ENDING,     /* COMMIT (or ROLLBACK after an error) sent */
};

#define PG_COPY_CHUNK (1 << 20)   /* bytes handed to libpq at once */

/* Whether the job's first round can be a COPY: mode insert, rows to insert, the batch
 * statements prepared (the compare-and-set runs as EXECUTE), and nothing else in flight on the
 * connection (pipeline mode can only be left when it is idle). */
int pg_copy_possible(const struct pg_job *job)
{
    const struct pg_conn *c = job->conn;
    return job->ps->map.mode == PGSINK_INSERT && job->ps->map.sql_copy && job->nentries > 0 && c->prepared == 1 &&
           !c->head && c->njobs == 1 && c->copy_step == COPY_IDLE;
}

int pg_copy_escape(struct buf *out, const char *v, size_t len)
{
    size_t from = 0;
    int rc = 0;

    for (size_t i = 0; i < len; i++) {
        const char *esc = v[i] == '\\' ? "\\\\" : v[i] == '\t' ? "\\t" : v[i] == '\n' ? "\\n" : v[i] == '\r' ? "\\r" : NULL;
        if (!esc)
            continue;
        rc |= buf_add(out, v + from, i - from) | buf_add(out, esc, 2);
        from = i + 1;
    }
    return rc | buf_add(out, v + from, len - from);
}

/* The batch's rows in COPY's text format, one line each, NULL as \N. */
static int copy_rows(const struct pg_job *job, struct buf *out)
{
    const struct pgsink_map *m = &job->ps->map;
    int rc = 0;

    for (size_t e = 0; e < job->nentries && !rc; e++) {
        const struct pgsink_row *row = pg_job_row(job, job->entries[e]);
        for (size_t j = 0; j < m->ncols; j++) {
            int32_t len;
            const char *v = pgsink_row_get(row, j, &len);
            if (j)
                rc |= buf_add(out, "\t", 1);
            rc |= len < 0 ? buf_add(out, "\\N", 2) : pg_copy_escape(out, v, (size_t)len);
        }
        rc |= buf_add(out, "\n", 1);
    }
    return rc;
}

/* "BEGIN; EXECUTE sluice_cas_...(...); COPY ... FROM STDIN" with the batch's values as literals. */
static int copy_start_sql(struct pg_job *job, struct buf *sql)
{
    struct pg_conn *c = job->conn;
    struct sink_batch *b = job->b;
    char *sink = PQescapeLiteral(c->pg, job->ps->super.name, strlen(job->ps->super.name));
    char *topic = PQescapeLiteral(c->pg, b->topic, strlen(b->topic));
    int rc = -1;

    if (sink && topic) {
        if (b->prev_next < 0)
            rc = buf_printf(sql, "BEGIN; EXECUTE sluice_cas_insert(%s, %s, %" PRId32 ", %" PRId64 "); %s", sink, topic,
                            b->partition, b->next, job->ps->map.sql_copy);
        else
            rc = buf_printf(sql, "BEGIN; EXECUTE sluice_cas_update(%s, %s, %" PRId32 ", %" PRId64 ", %" PRId64 "); %s",
                            sink, topic, b->partition, b->next, b->prev_next, job->ps->map.sql_copy);
    }
    PQfreemem(sink);
    PQfreemem(topic);
    return rc;
}

/* Leaves pipeline mode and starts the transaction. -1: the connection is broken (the caller
 * fails it). */
int pg_copy_send(struct pg_job *job)
{
    struct pg_conn *c = job->conn;
    struct buf sql = { 0 };
    int ok;

    if (copy_start_sql(job, &sql) != 0) {
        buf_free(&sql);
        return -1;
    }
    pg_round_reset(&job->round);
    job->data_from = 1;
    job->data_to = 2;
    job->round_stmts = 2;
    ok = PQexitPipelineMode(c->pg) && PQsendQuery(c->pg, sql.p);
    buf_free(&sql);
    if (!ok)
        return -1;
    c->copy_job = job;
    c->copy_step = COPY_STARTED;
    pg_conn_flush(c);   /* the rest leaves as the socket takes it; a failure fails the connection */
    return 0;
}

/* The COPY has started: hands libpq the rows and their end. */
static int copy_send_rows(struct pg_conn *c)
{
    struct buf rows = { 0 };
    int rc = copy_rows(c->copy_job, &rows);

    for (size_t off = 0; rc == 0 && off < rows.len; off += PG_COPY_CHUNK) {
        size_t chunk = rows.len - off < PG_COPY_CHUNK ? rows.len - off : PG_COPY_CHUNK;
        /* 0 is "could not queue", which a non-blocking connection reports only when libpq
         * cannot grow its buffer. */
        if (PQputCopyData(c->pg, rows.p + off, (int)chunk) != 1)
            rc = -1;
    }
    buf_free(&rows);
    if (rc != 0)
        return PQputCopyEnd(c->pg, "sluice: out of memory") == 1 ? 0 : -1;   /* the COPY fails; rolled back */
    return PQputCopyEnd(c->pg, NULL) == 1 ? 0 : -1;
}

/* Back to pipeline mode, and the results to the write's handler. */
static void copy_finish(struct pg_conn *c)
{
    struct pg_job *job = c->copy_job;
    PGresult *done[PG_ROUND_MAX + 1];
    size_t n = 0;

    c->copy_job = NULL;
    c->copy_step = COPY_IDLE;
    if (!PQenterPipelineMode(c->pg)) {
        pg_conn_fail(c, PQerrorMessage(c->pg));
        return;
    }
    if (pg_res_ok(job->round.res[0]) && !job->round.res[1]) {
        /* The position moved but no COPY result came: rolled back, and nothing says why. */
        pg_round_reset(&job->round);
        pg_write_finish(job, SINK_RETRY, "the COPY of the batch did not run");
        return;
    }
    for (size_t i = 0; i < 2 && job->round.res[i]; i++)
        done[n++] = job->round.res[i];
    if (n == 2 && job->round.commit_error)
        done[n++] = job->round.commit_error;
    else
        PQclear(job->round.commit_error);
    memset(job->round.res, 0, sizeof job->round.res);
    job->round.commit_error = NULL;
    pg_round_reset(&job->round);
    pg_write_on_round(c, job, done, n);
    for (size_t i = 0; i < n; i++)
        PQclear(done[i]);
}

/* Keeps a result of the transaction where the handler expects it: [0] the compare-and-set (or
 * the BEGIN's error), [1] the COPY's, and a failed COMMIT. */
static void copy_keep(struct pg_conn *c, PGresult *res)
{
    struct pg_round *r = &c->copy_job->round;

    if (c->copy_step == COPY_ENDING) {
        if (!r->commit_error && pg_res_failed(res))
            r->commit_error = res;
        else
            PQclear(res);
    } else if (c->copy_step == COPY_STARTED && !r->res[0] && PQresultStatus(res) == PGRES_COMMAND_OK &&
               strcmp(PQcmdStatus(res), "BEGIN") == 0) {
        PQclear(res);
    } else if (!r->res[0]) {
        r->res[0] = res;
    } else if (!r->res[1]) {
        r->res[1] = res;   /* the COPY's end, or its error when it could not start */
    } else {
        PQclear(res);
    }
}

/* The results of a COPY batch as they come (conn_drain's part out of pipeline mode). */
void pg_copy_drain(struct pg_conn *c)
{
    while (c->pg && c->copy_job && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        struct pg_round *r = &c->copy_job->round;
        if (res && PQresultStatus(res) == PGRES_COPY_IN) {
            PQclear(res);
            c->copy_step = COPY_SENT;
            if (copy_send_rows(c) != 0) {
                pg_conn_fail(c, PQerrorMessage(c->pg));
                return;
            }
            pg_conn_flush(c);
            continue;
        }
        if (res) {
            copy_keep(c, res);
            continue;
        }
        /* The end of a query's results. */
        if (c->copy_step == COPY_ENDING) {
            copy_finish(c);
            return;
        }
        /* The COPY ran (or an error ended the query before it): commit when every step went
         * through, else roll the transaction back. */
        {
            int ok = c->copy_step == COPY_SENT && pg_res_ok(r->res[0]) && pg_res_ok(r->res[1]);
            c->copy_step = COPY_ENDING;
            if (!PQsendQuery(c->pg, ok ? "COMMIT" : "ROLLBACK")) {
                pg_conn_fail(c, PQerrorMessage(c->pg));
                return;
            }
            pg_conn_flush(c);
        }
    }
    if (c->pg && PQstatus(c->pg) == CONNECTION_BAD)
        pg_conn_fail(c, PQerrorMessage(c->pg));
}

/* The connection closes during a COPY batch: its results so far go (the job ends as "outcome
 * unknown" with the connection's other jobs). */
void pg_copy_abandon(struct pg_conn *c)
{
    if (c->copy_job)
        pg_round_reset(&c->copy_job->round);
    c->copy_job = NULL;
    c->copy_step = COPY_IDLE;
}
