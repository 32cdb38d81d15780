/* The redis sink's private parts, shared by its files: redis.c (options, records, batches,
 * replies, the sink's operations), redis_conn.c (the connections: requests in flight, the
 * handshake, timeouts, reconnection) and redis_tx.c (the optimistic route of the hash and
 * string shapes). Nothing outside sinks/redis*.c includes this. */
#ifndef SLUICE_REDIS_INT_H
#define SLUICE_REDIS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "sink.h"
#include "redis_key.h"
#include "redis_transport.h"
#include "lib/buf.h"
#include "lib/json.h"

enum conn_state {
    CONN_IDLE,        /* not connected; a reconnect is scheduled (or stopped) */
    CONN_RESOLVING,   /* evdns lookup of the host */
    CONN_CONNECTING,  /* TCP connect (and the TLS handshake) in progress */
    CONN_HANDSHAKE,   /* AUTH, SELECT, SCRIPT LOAD sent */
    CONN_READY,
};

/* REQ_VERSION: does the server know GETDEL (the string shape's route needs Redis 6.2);
 * REQ_TX: a batch on the optimistic route (redis_tx.c), one step of it in flight at a time;
 * REQ_IGNORE: a reply nobody needs (the UNWATCH of a batch that wrote nothing). */
enum req_kind { REQ_BATCH, REQ_LOAD, REQ_AUTH, REQ_SELECT, REQ_VERSION, REQ_SCRIPT, REQ_TX, REQ_IGNORE };

/* One command (or, for REQ_TX, one step: several commands) sent or waiting to be sent. */
struct redis_req {
    struct redis_req *next;
    enum req_kind kind;
    struct redis_sink *rs;
    struct redis_conn *conn;
    struct sink_batch *batch;       /* REQ_BATCH, REQ_TX */
    struct sink_positions *load;    /* REQ_LOAD */
    struct redis_tx *tx;            /* REQ_TX, once started */
    uint32_t replies;               /* replies still to come (REQ_TX: the step's commands) */
    uint32_t seen;                  /* replies already delivered */
    int64_t sent_ms;
};

struct req_list {
    struct redis_req *head, *tail;
    size_t count;
};

/* What ops->prepare made of a record: the key as a RESP bulk string, then the operation's
 * values as RESP bulk strings (their count is written when the batch is put together). */
struct redis_prep {
    uint32_t key_off;       /* the raw key starts here in data (after "$<len>\r\n") */
    uint32_t key_len;
    uint32_t resp_key_len;  /* bytes of the key's bulk string */
    uint32_t resp_vals_len; /* bytes of the values' bulk strings, after it */
    uint32_t nvals;         /* 0: delete the key */
    uint32_t key_hash;
    uint8_t skip;           /* nothing to write (a tombstone in a list or stream) */
    char data[];
};

/* Counters of what went wrong, by kind; logged as they move (no per-sink metrics hook yet). */
struct redis_counters {
    uint64_t already_applied;     /* retries whose first attempt had been applied */
    uint64_t fenced;
    uint64_t unknown_outcome;     /* batches whose reply was lost with the connection */
    uint64_t retryable_errors;    /* LOADING, BUSY, READONLY, NOSCRIPT... */
    uint64_t wrongtype_records;
    uint64_t oom_errors;
    uint64_t other_errors;        /* errors a retry cannot fix, other than OOM */
    uint64_t timeouts;
    uint64_t disconnects;
};

/* Which operations a batch makes, on which keys: records grouped by key (op_head..op_tail
 * chained through rec_next, in record order). */
struct redis_plan {
    uint32_t *slots;              /* open addressing: op index + 1, 0 = empty */
    size_t nslots;
    uint32_t *op_head, *op_tail, *rec_next;
    size_t cap;
};

struct redis_tx;   /* redis_tx.c: a connection's batch on the optimistic route */
/* tx batches at once on a connection: one writing (MULTI..EXEC sent), the next reading */
#define TX_SLOTS 2

/* One connection to Redis. Connection 0 carries everything of the list and stream shapes
 * (script batches pipelined) and the position loads; the hash and string shapes spread their
 * batches over every connection (partition modulo the count), one at a time on each. */
struct redis_conn {
    struct redis_sink *rs;
    unsigned index;
    enum conn_state state;
    struct redis_transport *transport;
    struct evdns_getaddrinfo_request *dns_req;
    struct event *reconnect_timer, *connect_timer, *command_timer;
    unsigned failures;            /* consecutive failed connection attempts */
    char last_error[256];
    struct req_list inflight;     /* sent, in the order Redis answers */
    struct req_list pending;      /* waiting for the connection or for room in flight */
    size_t batches_in_flight;
    int script_reloading;
    struct redis_tx *tx[TX_SLOTS]; /* the optimistic route's batches (made on first use) */
};

struct redis_sink {
    struct sink super;

    /* options */
    char *url_text;
    char *password;
    char *key_text;
    int shape;
    struct cfg_strlist fields;
    long long ttl_s;
    long long maxlen;
    char *positions_key_opt;
    long long max_in_flight;
    long long connections;
    int route;
    long long connect_timeout_ms;
    long long command_timeout_ms;
    long long reconnect_min_ms;
    long long reconnect_max_ms;
    char *tls_ca_file, *tls_cert_file, *tls_key_file;   /* the tls section */

    /* compiled by check (or start) */
    int compiled;
    struct redis_url url;
    struct redis_tls *tls;        /* rediss:// only */
    struct redis_template *key_tpl;
    char *positions_key;

    /* connections: conns[0] is the main one */
    struct redis_conn *conns;
    size_t nconns;
    int started, stopped;
    int optimistic;               /* hash and string: batches go the optimistic route */
    char sha[41];                 /* of the script, from SCRIPT LOAD */
    struct redis_counters count;

    /* scratch, reused by prepare and write (one loop, one caller at a time) */
    struct json_slice doc;
    struct buf keybuf, vals, body, cmd;
    struct redis_plan plan;       /* the script route's */
};
/* ---- redis_conn.c ---- */
void req_list_push(struct req_list *l, struct redis_req *req);
struct redis_req *req_list_pop(struct req_list *l);
void req_list_remove(struct req_list *l, struct redis_req *req);
int conn_usable(const struct redis_conn *c);
void conn_connect(struct redis_conn *c);
void conn_pump(struct redis_conn *c);
void req_start(struct redis_conn *c, struct redis_req *req);
void req_send_argv(struct redis_conn *c, struct redis_req *req, int argc, const char **argv, const size_t *lens);
/** @brief Send @p len bytes of @p n formatted commands as one request (their replies go to it). */
void req_send_cmds(struct redis_conn *c, struct redis_req *req, const char *cmd, size_t len, uint32_t n);
/** @brief Queue @p req on @p c, or send it now when nothing waits before it and there is room. */
void conn_submit(struct redis_conn *c, struct redis_req *req);
/* the sink's start (connections, timers, first attempts), stop (no verdicts after it: every
 * request is dropped) and destroy (timers, connections) */
int conn_start(struct redis_sink *rs, char *err, size_t errlen);
void conn_stop(struct redis_sink *rs);
void conn_release(struct redis_sink *rs);

/* ---- redis.c ---- */
void script_send(struct redis_conn *c, struct redis_req *req);
int batch_command(struct redis_sink *rs, const struct sink_batch *b, char *err, size_t errlen);
void batch_on_reply(struct redis_conn *c, struct sink_batch *b, const redisReply *reply);
void load_on_reply(struct redis_conn *c, struct sink_positions *req, const redisReply *reply);
/** @brief The verdict of an error reply @p msg to a batch (transient: retry; OOM and others:
 * on_failure); @p what names the command in the batch's note. */
void batch_on_error(struct redis_sink *rs, struct sink_batch *b, const char *what, const char *msg);
/** @brief Parse a stored position (nil: -1); 0, or -1 when it is not one. */
int parse_position(const redisReply *r, int64_t *out);
enum redis_shape { SHAPE_STRING, SHAPE_HASH, SHAPE_LIST, SHAPE_STREAM };
extern const char *const redis_shapes[];

/* ---- redis_plan.c ---- */
/** @brief Group batch @p b's records by key into @p plan; the number of operations, or -1. */
long batch_plan(struct redis_sink *rs, struct redis_plan *plan, const struct sink_batch *b);
void plan_free(struct redis_plan *plan);
/** @brief realloc @p *p to @p n items of @p size; on failure it is left as it was. 0 or -1. */
int redis_grow(void **p, size_t n, size_t size);
/** @brief Mark every record of operation @p op as rejected: its key holds a @p type. */
void batch_reject_op(struct redis_sink *rs, struct redis_plan *plan, struct sink_batch *b, size_t op, const char *type);
void key_printable(char *out, size_t outlen, const char *key, size_t len);
const struct redis_prep *rec_prep(const struct sink_batch *b, size_t i);

/* ---- redis_tx.c: the optimistic route ---- */
/** @brief Start batch @p req->batch on @p c (when tx_room() says there is room). */
void tx_start(struct redis_conn *c, struct redis_req *req);
/** @brief One reply of a REQ_TX step (NULL: the connection is gone, once, for the step). */
void tx_on_reply(struct redis_conn *c, struct redis_req *req, const redisReply *reply);
void tx_free(struct redis_tx *tx);
/** @brief 1 when @p c can start a tx batch now. */
int tx_room(const struct redis_conn *c);
/** @brief The slot of a tx request that ends without a reply is free again. */
void tx_release(struct redis_tx *tx);

#endif
