/* The postgres sink's parts, shared by its files (not for other rooms):
 *   postgres.c        the sink's operations, its jobs and their queue, the table check, loading positions
 *   postgres_conn.c   connections: libpq non-blocking in pipeline mode on the loop, rounds of statements
 *   postgres_write.c  writing a batch: the plan, the rows as arrays, probing refused rows, the fence
 * See postgres.c for how a batch is applied exactly once. */
#ifndef SLUICE_POSTGRES_SINK_H
#define SLUICE_POSTGRES_SINK_H
#include <sys/types.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "sink.h"
#include "postgres_map.h"

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
    struct pg_job *copy_job;      /* mode insert: the batch being COPYed, out of pipeline mode */
    int copy_step;                /* enum pg_copy_step */
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

/* postgres_conn.c */
void pg_one_line(char *out, size_t outlen, const char *msg);
const char *pg_res_state(const PGresult *res);
int pg_res_ok(const PGresult *res);
int pg_res_failed(const PGresult *res);
int pg_all_ok(PGresult **res, size_t n);
PGresult *pg_first_error(PGresult **res, size_t n);
void pg_round_reset(struct pg_round *r);
void pg_conn_close(struct pg_conn *c);
void pg_conn_flush(struct pg_conn *c);
int pg_round_stmt(struct pg_conn *c, struct pg_round *r, const char *sql, int nparams,
                  const char *const *values, const int *lengths, const int *formats);
int pg_round_end(struct pg_conn *c, struct pg_round *r, pg_round_fn fn);
int pg_round_exec(struct pg_conn *c, struct pg_round *r, enum pg_stmt id, const char *const *values,
                  const int *lengths, const int *formats);
int pg_conn_prepare(struct pg_conn *c);
void pg_conn_ready(struct pg_conn *c, int send_setup);
const char *const *pg_conn_keywords(void);
void pg_conn_values(struct pg_sink *ps, const char *values[5]);
void pg_conn_open(struct pg_conn *c);
void pg_conn_fail(struct pg_conn *c, const char *why);
void pg_conn_on_timer(evutil_socket_t fd, short what, void *arg);

/* postgres.c */
void pg_dispatch(struct pg_sink *ps);
struct pg_memo *pg_memo_find(struct pg_sink *ps, const char *topic, int32_t partition, int unlink);
void pg_memo_free(struct pg_memo *m);
void pg_write_finish(struct pg_job *job, enum sink_result result, const char *error);
void pg_job_conn_lost(struct pg_job *job, const char *why);
void pg_job_arm(struct pg_job *job, long long ms);
void pg_job_detach(struct pg_job *job);
void pg_job_free(struct pg_job *job);
void pg_job_fail(struct pg_job *job, const char *why);
extern const char *const pg_modes[];   /* the mode's names, by enum value */

/* postgres_verify.c */
int pg_preflight(struct pg_sink *ps, PGconn *pg, char *err, size_t errlen);
void pg_verify_step(struct pg_job *job);
void pg_on_reverify(evutil_socket_t fd, short what, void *arg);

/* postgres_copy.c */
/* Appends @p v[0..len) escaped for COPY's text format (backslash, tab, newline, carriage
 * return); 0, or -1 when out of memory. */
int pg_copy_escape(struct buf *out, const char *v, size_t len);
int pg_copy_possible(const struct pg_job *job);
int pg_copy_send(struct pg_job *job);
void pg_copy_drain(struct pg_conn *c);
void pg_copy_abandon(struct pg_conn *c);

/* postgres_write.c */
int pg_write_plan(struct pg_job *job);
void pg_write_step(struct pg_job *job);
void pg_write_on_round(struct pg_conn *c, struct pg_job *job, PGresult **res, size_t n);

static inline const struct pgsink_row *pg_job_row(const struct pg_job *job, size_t rec)
{
    return job->b->records[rec].prepared;
}

#endif
