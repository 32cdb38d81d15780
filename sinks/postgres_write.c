/* Writing a batch with the postgres sink (see postgres.c for the rounds, postgres_sink.h for the
 * parts): which records to apply, the rows as one binary text[] per column, the compare-and-set
 * of the position, and the search for rows the server refuses. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_sink.h"

/* Which records to apply: upsert keeps the last record of each key (a multi-row upsert may not
 * touch a row twice), remembering the one before it in case the last is refused; insert keeps
 * every record but tombstones. */
int pg_write_plan(struct pg_job *job)
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
            if (!pg_job_row(job, i)->tombstone)
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
        const struct pgsink_row *row = pg_job_row(job, i);
        size_t s = (size_t)row->key_hash & (size - 1);
        job->prev[i] = -1;
        while (slots[s] && !pgsink_row_same_key(&ps->map, pg_job_row(job, slots[s] - 1), row))
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
        const struct pgsink_row *row = pg_job_row(job, list[e]);
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
        const struct pgsink_row *row = pg_job_row(job, list[e]);
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
    return pg_round_exec(job->conn, &job->round, id, values, lengths, formats);
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
    return pg_round_exec(job->conn, &job->round, b->prev_next < 0 ? STMT_CAS_INSERT : STMT_CAS_UPDATE, params, NULL, NULL);
}

static int write_send_position(struct pg_job *job)
{
    struct sink_batch *b = job->b;
    char partition[16];
    const char *params[3] = { job->ps->super.name, b->topic, partition };

    snprintf(partition, sizeof partition, "%" PRId32, b->partition);
    return pg_round_exec(job->conn, &job->round, STMT_POSITION, params, NULL, NULL);
}

static int is_cas_mismatch(const PGresult *res)
{
    return pg_res_failed(res) && strcmp(pg_res_state(res), "22012") == 0;   /* our 1 / count(*) */
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


/* Sends the round of the job's phase (a new deadline for each round). */
void pg_write_step(struct pg_job *job)
{
    struct pg_conn *c = job->conn;
    struct sink_batch *b = job->b;
    ssize_t ndel = 0, nups = 0;
    size_t nlist = 0;
    int rc = 0;

    pg_job_arm(job, job->ps->request_timeout_ms + PG_DEADLINE_SLACK_MS);
    switch (job->phase) {
    case W_FAST:
        if (pg_copy_possible(job)) {
            sink_batch_note(b, "%zu records: %zu inserted by COPY, two round trips", b->count, job->nentries);
            if (pg_copy_send(job) != 0)
                pg_conn_fail(c, PQerrorMessage(c->pg));
            return;
        }
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
        rc = pg_round_stmt(c, &job->round, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL, NULL, NULL) ||
             write_send_rows(job, job->list, nlist, 0, &ndel, &nups) ||
             pg_round_stmt(c, &job->round, PG_PROBE_SENTINEL, 0, NULL, NULL, NULL);
        break;
    case W_FINAL:
        rc = write_send_cas(job) || write_send_rows(job, job->accepted, job->naccepted, 0, &ndel, &nups);
        break;
    }
    job->round_stmts = job->round.nstmts;
    if (rc != 0 || pg_round_end(c, &job->round, pg_write_on_round) != 0)
        pg_conn_fail(c, PQerrorMessage(c->pg));
}

/* The stored position after a failed compare-and-set decides. */
static void write_on_position(struct pg_job *job, const PGresult *res)
{
    struct sink_batch *b = job->b;
    int64_t stored = PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    char why[160];

    if (stored == b->next) {
        struct pg_memo *m = pg_memo_find(job->ps, b->topic, b->partition, 1);
        if (m && m->next_offset == b->next && m->count == b->count) {
            for (size_t i = 0; i < b->count; i++) {
                free(job->rejects[i]);
                job->rejects[i] = m->rejects[i];
                m->rejects[i] = NULL;
            }
        }
        pg_memo_free(m);
        sink_log(&job->ps->super, LOG_INFO, "%s [%" PRId32 "] up to %" PRId64 " was applied already (its "
                 "commit was not confirmed before a connection loss): not applying it again",
                 b->topic, b->partition, b->next);
        pg_write_finish(job, SINK_OK, NULL);
        return;
    }
    if (stored == b->prev_next) {
        pg_write_finish(job, SINK_RETRY, "the stored position changed during the attempt");
        return;
    }
    snprintf(why, sizeof why, "stored position is %" PRId64 ", expected %" PRId64, stored, b->prev_next);
    pg_write_finish(job, SINK_FENCED, why);
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

void pg_write_on_round(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n)
{
    struct sink_batch *b = job->b;
    PGresult *bad;
    char why[600];

    (void)c;
    switch (job->phase) {
    case W_FAST:
    case W_FINAL:
        if (n < 1 || !pg_res_ok(res[0])) {
            if (n >= 1 && is_cas_mismatch(res[0])) {
                job->phase = W_CHECK;
                pg_write_step(job);
                return;
            }
            pgsink_error_text(n ? res[0] : NULL, why, sizeof why);
            pg_write_finish(job, SINK_RETRY, why);
            return;
        }
        if (pg_all_ok(res, n)) {
            if (job->plain)
                job->ps->plain_penalty = 0;
            if (job->phase == W_FINAL)
                sink_batch_note(b, "%zu records, %zu refused by the server, the others applied", b->count,
                                job->nrejects);
            pg_write_finish(job, SINK_OK, NULL);
            return;
        }
        bad = pg_first_error(res, n);
        pgsink_error_text(bad, why, sizeof why);
        if (job->phase == W_FAST && job->plain && bad && is_data_stmt(job, res, n, bad) &&
            strcmp(pg_res_state(bad), "23505") == 0) {
            /* Some key exists already: the same batch again, as an upsert; and upsert directly
             * for a while (longer each time keys keep existing). */
            struct pg_sink *ps = job->ps;
            ps->plain_penalty = ps->plain_penalty ? ps->plain_penalty * 2 : 1;
            if (ps->plain_penalty > PG_PLAIN_PENALTY_MAX)
                ps->plain_penalty = PG_PLAIN_PENALTY_MAX;
            ps->plain_skip = ps->plain_penalty;
            job->plain = 0;
            pg_write_step(job);
            return;
        }
        if (job->phase == W_FAST && bad && (is_data_stmt(job, res, n, bad) || is_commit_error(job, res, n, bad)) &&
            pgsink_error_classify(pg_res_state(bad)) == PGSINK_ERR_ROW &&
            job->ps->super.on_failure == SINK_ON_FAILURE_BLOCK) {
            /* on_failure block: no row is skipped; the batch waits (parked) until the data or the
             * table is fixed. */
            pg_write_finish(job, SINK_RETRY, why);
            return;
        }
        if (job->phase == W_FAST && bad && (is_data_stmt(job, res, n, bad) || is_commit_error(job, res, n, bad)) &&
            pgsink_error_classify(pg_res_state(bad)) == PGSINK_ERR_ROW) {
            /* Some row is refused: find it by bisection, in rounds that roll back. */
            sink_log(&job->ps->super, LOG_DEBUG, "%s [%" PRId32 "]: %s; looking for the refused rows",
                     b->topic, b->partition, why);
            job->phase = W_PROBE;
            job->naccepted = 0;
            job->nstack = 0;
            if (!(job->accepted = malloc((job->nentries ? job->nentries : 1) * sizeof *job->accepted)) ||
                (job->nentries > 1 && stack_push(job, job->nentries / 2, job->nentries) != 0) ||
                stack_push(job, 0, job->nentries > 1 ? job->nentries / 2 : 1) != 0) {
                pg_write_finish(job, SINK_RETRY, "out of memory");
                return;
            }
            pg_write_step(job);
            return;
        }
        /* W_FINAL: the rows that passed the probes failed together: something changed. */
        pg_write_finish(job, SINK_RETRY, why);
        return;
    case W_CHECK:
        if (n < 1 || !pg_all_ok(res, n)) {
            pgsink_error_text(pg_first_error(res, n), why, sizeof why);
            pg_write_finish(job, SINK_RETRY, why);
            return;
        }
        write_on_position(job, res[n - 1]);
        return;
    case W_PROBE:
        /* [data statements, sentinel]: the sentinel fails by design; a data error is the chunk's. */
        bad = NULL;
        for (size_t i = job->data_from; i < job->data_to && i < n; i++) {
            if (!pg_res_ok(res[i])) {
                bad = res[i];
                break;
            }
        }
        pgsink_error_text(bad, why, sizeof why);
        if (bad && (!pg_res_failed(bad) || pgsink_error_classify(pg_res_state(bad)) != PGSINK_ERR_ROW)) {
            pg_write_finish(job, SINK_RETRY, why);
            return;
        }
        if (write_probed(job, bad, why) != 0) {
            pg_write_finish(job, SINK_RETRY, "out of memory");
            return;
        }
        if (job->nstack == 0)
            job->phase = W_FINAL;
        pg_write_step(job);
        return;
    }
}
