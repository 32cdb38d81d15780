/* Checking the sink's table and its offsets table (creating the latter when it is missing):
 * blocking at the first start, before the loop runs, so that a mismatch stops sluice naming the
 * table and the column (pg_preflight); on the loop, over the sink's first connection, for a sink
 * started by a reload or one whose server was down at the start (pg_verify_step), checked again
 * every PG_REVERIFY_MS while it fails. */
#include <stdio.h>
#include <string.h>

#include "postgres_sink.h"
#include "lib/clock.h"

static void verify_done(struct pg_job *job, int ok, const char *why)
{
    struct pg_sink *ps = job->ps;

    pg_job_detach(job);
    pg_job_free(job);
    if (ok) {
        ps->verify = PG_VERIFY_OK;
        sink_log(&ps->super, LOG_INFO, "table %s checked: %zu column(s), mode %s, positions in %s",
                 ps->map.display, ps->map.ncols, pg_modes[ps->mode], ps->map.offsets_display);
    } else {
        struct timeval again = ms_to_tv(PG_REVERIFY_MS);
        ps->verify = PG_VERIFY_FAILED;
        snprintf(ps->verify_error, sizeof ps->verify_error, "%.*s", (int)sizeof ps->verify_error - 1, why);   /* cut to fit */
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

void pg_verify_step(struct pg_job *job)
{
    struct pg_sink *ps = job->ps;
    struct pg_conn *c = job->conn;
    const char *params[2];
    int rc;

    pg_job_arm(job, ps->request_timeout_ms + PG_DEADLINE_SLACK_MS);
    switch (job->vstep) {
    case V_CATALOG:
        params[0] = ps->map.schema;
        params[1] = ps->map.table;
        rc = pg_round_stmt(c, &job->round, pgsink_catalog_sql, 2, params, NULL, NULL);
        break;
    case V_OFFSETS:
    case V_OFFSETS_AGAIN:
        params[0] = pgsink_offsets_schema(&ps->map);
        params[1] = ps->map.offsets_table;
        rc = pg_round_stmt(c, &job->round, pgsink_catalog_sql, 2, params, NULL, NULL);
        break;
    default:
        rc = pg_round_stmt(c, &job->round, ps->map.sql_create_offsets, 0, NULL, NULL, NULL);
        break;
    }
    if (rc != 0 || pg_round_end(c, &job->round, verify_on_round) != 0)
        pg_conn_fail(c, PQerrorMessage(c->pg));
}

static void verify_on_round(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n)
{
    struct pg_sink *ps = job->ps;
    char why[600], server[400];
    int rc;

    (void)c;
    if (n < 1 || !pg_res_ok(res[0])) {
        const char *state = pg_res_state(n ? res[0] : NULL);
        pgsink_error_text(n ? res[0] : NULL, server, sizeof server);
        if (job->vstep == V_CREATE && create_raced(state)) {
            job->vstep = V_OFFSETS_AGAIN;   /* another process created it meanwhile */
            pg_verify_step(job);
        } else if (pgsink_error_classify(state) == PGSINK_ERR_RETRY) {
            pg_job_fail(job, server);          /* checked again on the next connection */
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
            pg_job_fail(job, "out of memory");
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
    pg_verify_step(job);
}

void pg_on_reverify(evutil_socket_t fd, short what, void *arg)
{
    struct pg_sink *ps = arg;
    (void)fd;
    (void)what;
    if (ps->verify == PG_VERIFY_FAILED)
        ps->verify = PG_VERIFY_PENDING;
    pg_dispatch(ps);
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
int pg_preflight(struct pg_sink *ps, PGconn *pg, char *err, size_t errlen)
{
    struct pgsink_map *m = &ps->map;
    char sql[96], server[400];
    PGresult *res;
    int rc = -1, offsets;

    snprintf(sql, sizeof sql, "SET statement_timeout = %lld", ps->request_timeout_ms);
    res = PQexec(pg, sql); /* banned-ok: loop not running yet, bounded by statement_timeout */
    if (!pg_res_ok(res))
        goto server_error;
    PQclear(res);
    res = preflight_query(pg, pgsink_catalog_sql, m->schema, m->table);
    if (!pg_res_ok(res))
        goto server_error;
    if (pgsink_catalog_check_target(m, res, err, errlen) != 0)
        goto out;
    PQclear(res);
    for (int pass = 0; pass < 2; pass++) {
        res = preflight_query(pg, pgsink_catalog_sql, pgsink_offsets_schema(m), m->offsets_table);
        if (!pg_res_ok(res))
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
        if (!pg_res_ok(res) && !create_raced(pg_res_state(res))) {
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

