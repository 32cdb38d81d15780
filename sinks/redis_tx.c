/* The redis sink's optimistic route (issue 17; route "optimistic", the hash shape's default):
 * instead of one Lua script per batch, which costs Redis about twice the CPU of the same
 * writes, a batch is plain commands under optimistic concurrency. Per batch (one partition), on
 * the connection of its partition, two batches at a time on each connection (the next one's
 * reads go out behind the previous one's EXEC, never between a WATCH and its MULTI):
 *
 *   read   WATCH <positions_key>:<topic>:<partition>   the partition's position key
 *          HGET <positions_key> <topic>:<partition>    the stored position (the hash stays the
 *                                                      one place positions are read from)
 *          hash: per key HKEYS (HLEN for a delete): its type (WRONGTYPE: another type) and the
 *          fields the new value lacks; string with on_failure block: per key TYPE
 *   then   stored == next: applied by an earlier attempt; stored != prev_next: fenced;
 *          on_failure block and a key of another type: nothing written, retried
 *   write  [TYPE of the keys of another type, for the dead letters' reason]
 *          MULTI
 *          hash: HSET key fields..., HDEL key <stale fields>, EXPIRE key ttl; DEL (a delete)
 *          string: SET key value GET [EX ttl] (refuses another type and writes nothing),
 *          GETDEL key (a delete; likewise)
 *          HSET <positions_key> <topic>:<partition> next; SET <position key> next
 *          EXEC
 *   EXEC nil: the position key changed after the WATCH (another owner wrote the partition):
 *          HGET the position again: next means applied, prev_next (it did not move) a retry,
 *          anything else fenced.
 *
 * Every position write of a sink on this route goes through it, so it always moves the
 * position key with the hash: a zombie's WATCH sees the new owner's write. What differs from
 * the script is in the README (the redis sink's "Exactly once"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis_int.h"
#include "redis_resp.h"

enum tx_step {
    TX_READ,      /* WATCH, HGET, probes */
    TX_WRITE,     /* [TYPE...], MULTI, writes, positions, EXEC */
    TX_TYPES,     /* after EXEC: the types of keys whose write was refused */
    TX_REREAD,    /* after a nil EXEC: the stored position */
    TX_BLOCKED,   /* on_failure block and a key of another type: TYPE, UNWATCH */
};

/* Type names for messages; bad[op] holds an index here, 0 for a key that is fine. */
static const char *const type_names[] = { NULL, "another type", "string", "list", "set", "zset", "hash", "stream" };
#define TYPE_UNKNOWN 1

struct redis_tx {
    int busy;                  /* a batch is in this slot, from tx_start to its verdict */
    struct sink_batch *b;
    struct redis_plan plan;
    size_t nops;
    enum tx_step step;
    int64_t stored;
    char err[512];             /* the first error reply of a step (other than WRONGTYPE) */
    int oom;                   /* the reads' writes could not be put together */
    struct buf q;              /* the queued writes (between MULTI and the positions) */
    struct buf out;            /* what a step sends */
    uint32_t *cmd_op;          /* each queued write's operation (UINT32_MAX: none) */
    uint32_t nq;
    uint8_t *bad;              /* per operation: 0, or the type_names index of its key's type */
    uint32_t *ask;             /* operations whose TYPE a step asks, in order */
    uint32_t nask;
    size_t cap;                /* of cmd_op, bad, ask: operations */
    uint32_t ntypes;           /* TYPE replies before MULTI's in TX_WRITE */
    char field[300];           /* <topic>:<partition> */
    size_t field_len;
    struct buf poskey;
};

void tx_free(struct redis_tx *tx)
{
    if (!tx)
        return;
    plan_free(&tx->plan);
    buf_free(&tx->q);
    buf_free(&tx->out);
    buf_free(&tx->poskey);
    free(tx->cmd_op);
    free(tx->bad);
    free(tx->ask);
    free(tx);
}

void tx_release(struct redis_tx *tx)
{
    if (tx)
        tx->busy = 0;
}

static int tx_reserve(struct redis_tx *tx, size_t nops)
{
    /* a key's writes are at most 4 commands (HSET, HDEL, EXPIRE; or one) */
    size_t want = nops * 4 + 4;
    if (want > tx->cap) {
        if (redis_grow((void **)&tx->cmd_op, want, sizeof *tx->cmd_op) || redis_grow((void **)&tx->bad, want, 1) ||
            redis_grow((void **)&tx->ask, want, sizeof *tx->ask))
            return -1;
        tx->cap = want;
    }
    memset(tx->bad, 0, nops);
    return 0;
}

static int put_head(struct buf *b, size_t nargs)
{
    char head[32];
    size_t n = 0;

    head[n++] = '*';
    n += redis_fmt_int(head + n, (long long)nargs);
    head[n++] = '\r';
    head[n++] = '\n';
    return buf_add(b, head, n);
}

static int put_str(struct buf *b, const char *s)
{
    return resp_put_bulk(b, s, strlen(s));
}

/* A command of a name and an operation's key (already a bulk string in the record's prep). */
static int put_key_cmd(struct buf *b, size_t nargs, const char *name, const struct redis_prep *p)
{
    return put_head(b, nargs) || put_str(b, name) || buf_add(b, p->data, p->resp_key_len);
}

static const struct redis_prep *op_prep(const struct redis_tx *tx, size_t op)
{
    /* string and hash collapse a key's updates: the last record is the one written */
    return rec_prep(tx->b, tx->plan.op_tail[op]);
}

static uint8_t type_index(const char *name)
{
    for (uint8_t i = 2; i < sizeof type_names / sizeof *type_names; i++)
        if (strcmp(type_names[i], name) == 0)
            return i;
    return TYPE_UNKNOWN;
}

static int is_wrongtype(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0;
}

static void tx_note_error(struct redis_tx *tx, const redisReply *r)
{
    if (!tx->err[0])
        snprintf(tx->err, sizeof tx->err, "%s", r->str);
}

/* Ends the batch: its slot takes the connection's next one. */
static void tx_finish(struct redis_conn *c, struct redis_req *req)
{
    (void)c;
    req->tx->busy = 0;
    free(req);
}

/* Room for a batch on @p c: a free slot, and no batch between its WATCH and its MULTI (or
 * UNWATCH): a WATCH sent then would widen what that batch's EXEC watches. So a batch's reads
 * go out right behind the previous batch's EXEC, and the two overlap. */
int tx_room(const struct redis_conn *c)
{
    int free_slot = 0;

    for (size_t i = 0; i < TX_SLOTS; i++) {
        const struct redis_tx *tx = c->tx[i];
        if (!tx || !tx->busy)
            free_slot = 1;
        else if (tx->step == TX_READ)
            return 0;
    }
    return free_slot;
}

/* A batch that wrote nothing drops its WATCH before the connection's next one. */
static void tx_unwatch(struct redis_conn *c)
{
    static const char unwatch[] = "*1\r\n$7\r\nUNWATCH\r\n";
    struct redis_req *req = calloc(1, sizeof *req);

    if (!req)
        return;   /* the next batch's EXEC may then abort for nothing: it re-reads and resyncs */
    req->kind = REQ_IGNORE;
    req->rs = c->rs;
    req->conn = c;
    req_send_cmds(c, req, unwatch, sizeof unwatch - 1, 1);
}

static void tx_applied_before(struct redis_sink *rs, struct sink_batch *b)
{
    rs->count.already_applied++;
    sink_log(&rs->super, LOG_INFO, "%s [%" PRId32 "] batch up to @%" PRId64 ": already applied by an earlier "
             "attempt whose reply was lost; not applied again", b->topic, b->partition, b->next - 1);
    sink_batch_note(b, "MULTI/EXEC: already applied by an earlier attempt (position %" PRId64 ")", b->next);
    sink_batch_done(b, SINK_OK, NULL);
}

static void tx_fenced(struct redis_sink *rs, struct sink_batch *b, int64_t stored)
{
    char msg[200], shown[24];

    rs->count.fenced++;
    if (stored < 0)
        snprintf(shown, sizeof shown, "none");
    else
        snprintf(shown, sizeof shown, "%" PRId64, stored);
    snprintf(msg, sizeof msg, "stored position is %s, expected %" PRId64 " (another process wrote this partition)",
             shown, b->prev_next);
    sink_batch_note(b, "WATCH/HGET: %s", msg);
    sink_batch_done(b, SINK_FENCED, msg);
}

/* Applied: the records of keys of another type go to the dead letters, the rest counts. */
static void tx_ok(struct redis_conn *c, struct redis_req *req)
{
    struct redis_sink *rs = c->rs;
    struct redis_tx *tx = req->tx;
    struct sink_batch *b = tx->b;
    size_t bad = 0;

    for (size_t op = 0; op < tx->nops; op++)
        if (tx->bad[op]) {
            batch_reject_op(rs, &tx->plan, b, op, type_names[tx->bad[op]]);
            bad++;
        }
    if (bad)
        sink_log(&rs->super, LOG_WARN, "%s [%" PRId32 "]: %zu key(s) hold another type; their records go to "
                 "the dead letters (%" PRIu64 " so far)", b->topic, b->partition, bad, rs->count.wrongtype_records);
    tx_finish(c, req);
    sink_batch_note(b, "MULTI/EXEC: %zu records, applied", b->count);
    sink_batch_done(b, SINK_OK, NULL);
}

/* Sends the step's commands (tx->out), @p n replies, reusing the request. */
static void tx_send(struct redis_conn *c, struct redis_req *req, enum tx_step step, uint32_t n)
{
    req->tx->step = step;
    req->tx->err[0] = '\0';
    req_send_cmds(c, req, req->tx->out.p, req->tx->out.len, n);
}

static void tx_oom(struct redis_conn *c, struct redis_req *req, int watching)
{
    struct sink_batch *b = req->tx->b;

    if (watching)
        tx_unwatch(c);
    tx_finish(c, req);
    sink_batch_done(b, SINK_RETRY, "out of memory");
}

/* ---- read: WATCH, HGET, probes ---- */

void tx_start(struct redis_conn *c, struct redis_req *req)
{
    struct redis_sink *rs = c->rs;
    struct sink_batch *b = req->batch;
    struct redis_tx *tx = NULL;
    int probe_type = rs->shape == SHAPE_STRING && rs->super.on_failure == SINK_ON_FAILURE_BLOCK;
    long nops;
    uint32_t n = 2;

    for (size_t i = 0; i < TX_SLOTS && !tx; i++) {
        if (!c->tx[i])
            c->tx[i] = calloc(1, sizeof *c->tx[i]);
        if (c->tx[i] && !c->tx[i]->busy)
            tx = c->tx[i];
    }
    if (!tx) {
        sink_batch_done(b, SINK_RETRY, "out of memory");
        free(req);
        return;
    }
    tx->busy = 1;
    tx->step = TX_READ;
    req->tx = tx;
    tx->b = b;
    if ((nops = batch_plan(rs, &tx->plan, b)) < 0 || tx_reserve(tx, (size_t)nops) != 0)
        goto oom;
    tx->nops = (size_t)nops;
    tx->field_len = (size_t)snprintf(tx->field, sizeof tx->field, "%s:%" PRId32, b->topic, b->partition);
    if (tx->field_len >= sizeof tx->field)
        tx->field_len = sizeof tx->field - 1;
    buf_reset(&tx->poskey);
    buf_reset(&tx->out);
    buf_reset(&tx->q);
    tx->nq = 0;
    tx->nask = 0;
    tx->oom = 0;
    if (buf_add(&tx->poskey, rs->positions_key, strlen(rs->positions_key)) != 0 ||
        buf_add(&tx->poskey, ":", 1) != 0 || buf_add(&tx->poskey, tx->field, tx->field_len) != 0)
        goto oom;
    if (put_head(&tx->out, 2) || put_str(&tx->out, "WATCH") ||
        resp_put_bulk(&tx->out, tx->poskey.p, tx->poskey.len) || put_head(&tx->out, 3) ||
        put_str(&tx->out, "HGET") || put_str(&tx->out, rs->positions_key) ||
        resp_put_bulk(&tx->out, tx->field, tx->field_len))
        goto oom;
    for (size_t op = 0; op < tx->nops; op++) {
        const struct redis_prep *p = op_prep(tx, op);
        if (rs->shape == SHAPE_HASH) {
            if (put_key_cmd(&tx->out, 2, p->nvals ? "HKEYS" : "HLEN", p))
                goto oom;
        } else if (probe_type) {
            if (put_key_cmd(&tx->out, 2, "TYPE", p))
                goto oom;
        } else {
            continue;
        }
        n++;
    }
    tx_send(c, req, TX_READ, n);
    return;
oom:
    tx_oom(c, req, 0);
}

/* One bulk string at @p v ("$<n>\r\n<data>\r\n", as prepare wrote it): its data and length;
 * returns what follows it. */
static const char *bulk_next(const char *v, const char **data, size_t *len)
{
    size_t n = 0;

    for (v++; *v != '\r'; v++)
        n = n * 10 + (size_t)(*v - '0');
    *data = v + 2;
    *len = n;
    return v + 2 + n + 2;
}

#define NAMES_MAX 64

struct names {
    const char *p[NAMES_MAX];
    size_t n[NAMES_MAX];
    size_t count;
};

/* The record's field names, in order; 0, or -1 when there are more than NAMES_MAX. */
static int names_read(const struct redis_prep *p, struct names *nm)
{
    const char *v = p->data + p->resp_key_len, *end = v + p->resp_vals_len, *value;
    size_t value_len;

    nm->count = 0;
    while (v < end) {
        if (nm->count == NAMES_MAX)
            return -1;
        v = bulk_next(v, &nm->p[nm->count], &nm->n[nm->count]);
        v = bulk_next(v, &value, &value_len);
        nm->count++;
    }
    return 0;
}

/* Is field (name, len) one of the record's? */
static int field_is_mine(const struct redis_prep *p, const struct names *nm, const char *name, size_t len)
{
    const char *v, *end, *f, *value;
    size_t n, value_len;

    if (nm) {
        for (size_t i = 0; i < nm->count; i++)
            if (nm->n[i] == len && memcmp(nm->p[i], name, len) == 0)
                return 1;
        return 0;
    }
    for (v = p->data + p->resp_key_len, end = v + p->resp_vals_len; v < end;) {
        v = bulk_next(v, &f, &n);
        v = bulk_next(v, &value, &value_len);
        if (n == len && memcmp(f, name, len) == 0)
            return 1;
    }
    return 0;
}

/* The hash's fields are the record's, in order: what a hash this sink wrote last looks like. */
static int fields_same(const struct names *nm, const redisReply *r)
{
    if (!nm || r->elements != nm->count)
        return 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->len != nm->n[i] || memcmp(r->element[i]->str, nm->p[i], nm->n[i]) != 0)
            return 0;
    return 1;
}

/* The writes of hash operation @p op, from its probe @p r (HKEYS: an array, HLEN: a number). */
static int tx_queue_hash(struct redis_sink *rs, struct redis_tx *tx, size_t op, const redisReply *r)
{
    const struct redis_prep *p = op_prep(tx, op);
    size_t stale = 0;

    if (!p->nvals) {
        /* a delete (a tombstone, or a value without a non-null field): only an existing hash */
        if (r->type != REDIS_REPLY_INTEGER || r->integer <= 0)
            return 0;
        tx->cmd_op[tx->nq++] = (uint32_t)op;
        return put_key_cmd(&tx->q, 2, "DEL", p);
    }
    tx->cmd_op[tx->nq++] = (uint32_t)op;
    if (put_key_cmd(&tx->q, 2 + p->nvals, "HSET", p) || buf_add(&tx->q, p->data + p->resp_key_len, p->resp_vals_len))
        return -1;
    /* replace, not merge: the fields the hash has and the value lacks are removed */
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        struct names names, *nm = names_read(p, &names) == 0 ? &names : NULL;
        if (!fields_same(nm, r))
            for (size_t i = 0; i < r->elements; i++)
                stale += !field_is_mine(p, nm, r->element[i]->str, r->element[i]->len);
        if (stale) {
            tx->cmd_op[tx->nq++] = (uint32_t)op;
            if (put_key_cmd(&tx->q, 2 + stale, "HDEL", p))
                return -1;
            for (size_t i = 0; i < r->elements; i++)
                if (!field_is_mine(p, nm, r->element[i]->str, r->element[i]->len) &&
                    resp_put_bulk(&tx->q, r->element[i]->str, r->element[i]->len))
                    return -1;
        }
    }
    if (rs->ttl_s > 0) {
        tx->cmd_op[tx->nq++] = (uint32_t)op;
        if (put_key_cmd(&tx->q, 3, "EXPIRE", p) || resp_put_bulk_int(&tx->q, rs->ttl_s))
            return -1;
    }
    return 0;
}

/* The writes of every string operation whose key is not known to hold another type. */
static int tx_queue_strings(struct redis_sink *rs, struct redis_tx *tx)
{
    for (size_t op = 0; op < tx->nops; op++) {
        const struct redis_prep *p = op_prep(tx, op);
        if (tx->bad[op])
            continue;
        tx->cmd_op[tx->nq++] = (uint32_t)op;
        if (!p->nvals) {
            if (put_key_cmd(&tx->q, 2, "GETDEL", p))
                return -1;
            continue;
        }
        if (put_key_cmd(&tx->q, rs->ttl_s > 0 ? 6 : 4, "SET", p) ||
            buf_add(&tx->q, p->data + p->resp_key_len, p->resp_vals_len) || put_str(&tx->q, "GET"))
            return -1;
        if (rs->ttl_s > 0 && (put_str(&tx->q, "EX") || resp_put_bulk_int(&tx->q, rs->ttl_s)))
            return -1;
    }
    return 0;
}

static int tx_read_reply(struct redis_conn *c, struct redis_tx *tx, uint32_t idx, const redisReply *r)
{
    struct redis_sink *rs = c->rs;

    if (idx == 0) {
        if (r->type == REDIS_REPLY_ERROR)
            tx_note_error(tx, r);
        return 0;
    }
    if (idx == 1) {
        if (r->type == REDIS_REPLY_ERROR)
            tx_note_error(tx, r);
        else if (parse_position(r, &tx->stored) != 0)
            snprintf(tx->err, sizeof tx->err, "%s field %s does not hold a position (a number)",
                     rs->positions_key, tx->field);
        return 0;
    }
    /* a probe: hash, every operation in order; string (block), likewise */
    {
        size_t op = idx - 2;
        if (op >= tx->nops)
            return 0;
        if (is_wrongtype(r)) {
            tx->bad[op] = TYPE_UNKNOWN;
            return 0;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            tx_note_error(tx, r);
            return 0;
        }
        if (rs->shape == SHAPE_STRING) {
            if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "none") != 0 && strcmp(r->str, "string") != 0)
                tx->bad[op] = type_index(r->str);
            return 0;
        }
        return tx->err[0] || tx->oom ? 0 : tx_queue_hash(rs, tx, op, r);
    }
}

/* After the last read reply: applied, fenced, blocked, or the writes. */
static void tx_read_done(struct redis_conn *c, struct redis_req *req)
{
    struct redis_sink *rs = c->rs;
    struct redis_tx *tx = req->tx;
    struct sink_batch *b = tx->b;
    int block = rs->super.on_failure == SINK_ON_FAILURE_BLOCK;
    uint32_t n;

    if (tx->oom) {
        tx_oom(c, req, 1);   /* ours, not Redis': retried */
        return;
    }
    if (tx->err[0]) {
        char err[sizeof tx->err];
        memcpy(err, tx->err, sizeof err);
        tx_unwatch(c);
        tx_finish(c, req);
        batch_on_error(rs, b, "WATCH/HGET", err);
        return;
    }
    if (tx->stored != b->prev_next) {
        int64_t stored = tx->stored;
        tx_unwatch(c);
        tx_finish(c, req);
        if (stored == b->next)
            tx_applied_before(rs, b);
        else
            tx_fenced(rs, b, stored);
        return;
    }
    tx->nask = 0;
    for (size_t op = 0; op < tx->nops; op++)
        if (tx->bad[op] == TYPE_UNKNOWN)
            tx->ask[tx->nask++] = (uint32_t)op;
    buf_reset(&tx->out);
    if (block) {
        size_t first = tx->nops;
        for (size_t op = 0; op < tx->nops && first == tx->nops; op++)
            if (tx->bad[op])
                first = op;
        if (first < tx->nops) {
            /* nothing is written; the batch waits until someone fixes the key */
            for (size_t op = 0; op < tx->nops; op++)
                rs->count.wrongtype_records += tx->bad[op] != 0;
            tx->ask[0] = (uint32_t)first;
            tx->nask = 1;
            if (put_key_cmd(&tx->out, 2, "TYPE", op_prep(tx, first)) || put_head(&tx->out, 1) ||
                put_str(&tx->out, "UNWATCH")) {
                tx_oom(c, req, 1);
                return;
            }
            tx_send(c, req, TX_BLOCKED, 2);
            return;
        }
    }
    if (rs->shape == SHAPE_STRING && tx_queue_strings(rs, tx) != 0) {
        tx_oom(c, req, 1);
        return;
    }
    for (uint32_t i = 0; i < tx->nask; i++)
        if (put_key_cmd(&tx->out, 2, "TYPE", op_prep(tx, tx->ask[i]))) {
            tx_oom(c, req, 1);
            return;
        }
    tx->ntypes = tx->nask;
    n = tx->nask + 1 + tx->nq + 2 + 1;
    if (put_head(&tx->out, 1) || put_str(&tx->out, "MULTI") || buf_add(&tx->out, tx->q.p, tx->q.len) ||
        put_head(&tx->out, 4) || put_str(&tx->out, "HSET") || put_str(&tx->out, rs->positions_key) ||
        resp_put_bulk(&tx->out, tx->field, tx->field_len) || resp_put_bulk_int(&tx->out, b->next) ||
        put_head(&tx->out, 3) || put_str(&tx->out, "SET") || resp_put_bulk(&tx->out, tx->poskey.p, tx->poskey.len) ||
        resp_put_bulk_int(&tx->out, b->next) || put_head(&tx->out, 1) || put_str(&tx->out, "EXEC")) {
        tx_oom(c, req, 1);
        return;
    }
    tx->cmd_op[tx->nq] = tx->cmd_op[tx->nq + 1] = UINT32_MAX;   /* the positions */
    tx_send(c, req, TX_WRITE, n);
}

/* ---- write: MULTI ... EXEC ---- */

static void tx_ask_types(struct redis_conn *c, struct redis_req *req)
{
    struct redis_tx *tx = req->tx;

    buf_reset(&tx->out);
    for (uint32_t i = 0; i < tx->nask; i++)
        if (put_key_cmd(&tx->out, 2, "TYPE", op_prep(tx, tx->ask[i]))) {
            /* applied already: the reason names no type rather than the batch being retried */
            tx_ok(c, req);
            return;
        }
    tx_send(c, req, TX_TYPES, tx->nask);
}

static void tx_exec_reply(struct redis_conn *c, struct redis_req *req, const redisReply *r)
{
    struct redis_sink *rs = c->rs;
    struct redis_tx *tx = req->tx;
    struct sink_batch *b = tx->b;

    if (r->type == REDIS_REPLY_NIL) {
        /* the position key changed after the WATCH: who wrote the partition? */
        buf_reset(&tx->out);
        if (put_head(&tx->out, 3) || put_str(&tx->out, "HGET") || put_str(&tx->out, rs->positions_key) ||
            resp_put_bulk(&tx->out, tx->field, tx->field_len)) {
            tx_oom(c, req, 0);
            return;
        }
        tx_send(c, req, TX_REREAD, 1);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* EXECABORT: a command was refused when queued (OOM...): nothing was written */
        char err[sizeof tx->err];
        snprintf(err, sizeof err, "%s", tx->err[0] ? tx->err : r->str);
        tx_finish(c, req);
        batch_on_error(rs, b, "MULTI/EXEC", err);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != tx->nq + 2) {
        tx_finish(c, req);
        rs->count.other_errors++;
        sink_batch_done(b, SINK_RETRY, "unexpected reply to EXEC");
        return;
    }
    tx->nask = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        uint32_t op = tx->cmd_op[i];
        if (e->type != REDIS_REPLY_ERROR)
            continue;
        if (op != UINT32_MAX && is_wrongtype(e)) {
            /* string: SET ... GET or GETDEL met another type and wrote nothing; hash: the key's
             * type changed after its probe */
            if (!tx->bad[op]) {
                tx->bad[op] = TYPE_UNKNOWN;
                tx->ask[tx->nask++] = op;
            }
            continue;
        }
        /* the position or a write failed inside EXEC (the rest stands): the retry re-reads */
        {
            char err[sizeof tx->err];
            snprintf(err, sizeof err, "%s", e->str);
            tx_finish(c, req);
            rs->count.other_errors++;
            sink_batch_note(b, "MULTI/EXEC: a command failed inside: %s", err);
            sink_batch_done(b, SINK_RETRY, err);
            return;
        }
    }
    if (tx->nask) {
        tx_ask_types(c, req);
        return;
    }
    tx_ok(c, req);
}

static void tx_write_reply(struct redis_conn *c, struct redis_req *req, uint32_t idx, const redisReply *r, int last)
{
    struct redis_tx *tx = req->tx;

    if (last) {
        tx_exec_reply(c, req, r);
        return;
    }
    if (idx < tx->ntypes) {
        if (r->type == REDIS_REPLY_STATUS)
            tx->bad[tx->ask[idx]] = type_index(r->str);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR)
        tx_note_error(tx, r);   /* MULTI refused, or a command refused when queued */
}

/* ---- one reply of a step ---- */

void tx_on_reply(struct redis_conn *c, struct redis_req *req, const redisReply *reply)
{
    struct redis_sink *rs = c->rs;
    struct redis_tx *tx = req->tx;
    struct sink_batch *b = tx->b;
    uint32_t idx = req->seen;
    int last = !reply || idx + 1 == req->replies;

    if (!reply) {
        /* the connection is gone (the request is already off its list) */
        if (tx->step == TX_TYPES) {
            tx_ok(c, req);   /* EXEC answered: applied; only the types in the reasons are missing */
            return;
        }
        tx_finish(c, req);
        b->unreachable = 1;
        if (tx->step == TX_WRITE || tx->step == TX_REREAD) {
            rs->count.unknown_outcome++;
            sink_batch_note(b, "connection lost before the reply; the retry compares positions and applies once");
        }
        sink_batch_done(b, SINK_RETRY, c->last_error[0] ? c->last_error : "connection to redis lost");
        return;
    }
    switch (tx->step) {
    case TX_READ:
        if (tx_read_reply(c, tx, idx, reply) != 0)
            tx->oom = 1;
        if (last)
            tx_read_done(c, req);
        return;
    case TX_WRITE:
        tx_write_reply(c, req, idx, reply, last);
        return;
    case TX_TYPES:
        if (reply->type == REDIS_REPLY_STATUS && idx < tx->nask)
            tx->bad[tx->ask[idx]] = type_index(reply->str);
        if (last)
            tx_ok(c, req);
        return;
    case TX_REREAD: {
        int64_t stored;
        tx_finish(c, req);
        if (reply->type == REDIS_REPLY_ERROR) {
            batch_on_error(rs, b, "HGET", reply->str);
        } else if (parse_position(reply, &stored) != 0) {
            rs->count.other_errors++;
            sink_batch_done(b, SINK_RETRY, "the positions field does not hold a position (a number)");
        } else if (stored == b->next) {
            tx_applied_before(rs, b);
        } else if (stored == b->prev_next) {
            /* nobody moved the position (the key was written with the same value, or the
             * database flushed): nothing was applied, the batch is simply tried again */
            sink_batch_note(b, "MULTI/EXEC: aborted by the WATCH, the position did not move");
            sink_batch_done(b, SINK_RETRY, "EXEC aborted though the position did not move");
        } else {
            tx_fenced(rs, b, stored);
        }
        return;
    }
    case TX_BLOCKED:
        if (idx == 0 && reply->type == REDIS_REPLY_STATUS)
            tx->bad[tx->ask[0]] = type_index(reply->str);
        if (last) {
            const struct redis_prep *p = op_prep(tx, tx->ask[0]);
            char shown[160], msg[400];
            key_printable(shown, sizeof shown, p->data + p->key_off, p->key_len);
            snprintf(msg, sizeof msg, "WRONGTYPE: key %s holds a %s, not a %s; nothing written (on_failure block "
                     "retries until it is fixed)", shown, type_names[tx->bad[tx->ask[0]]], redis_shapes[rs->shape]);
            tx_finish(c, req);
            sink_batch_note(b, "WATCH/probes: %s", msg);
            sink_batch_done(b, SINK_RETRY, msg);
        }
        return;
    }
}
