/* The redis sink's private parts, shared by its files: redis.c (options, records, batches,
 * replies, the sink's operations) and redis_conn.c (the connection: requests in flight, the
 * handshake, timeouts, reconnection). Nothing outside sinks/redis*.c includes this. */
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

enum req_kind { REQ_BATCH, REQ_LOAD, REQ_AUTH, REQ_SELECT, REQ_SCRIPT };

/* One command sent (or waiting to be sent) to Redis; privdata of its hiredis callback. */
struct redis_req {
    struct redis_req *next;
    enum req_kind kind;
    struct redis_sink *rs;
    struct sink_batch *batch;       /* REQ_BATCH */
    struct sink_positions *load;    /* REQ_LOAD */
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

    /* connection */
    enum conn_state state;
    int started, stopped;
    struct redis_transport *transport;
    struct evdns_getaddrinfo_request *dns_req;
    struct event *reconnect_timer, *connect_timer, *command_timer;
    unsigned failures;            /* consecutive failed connection attempts */
    char last_error[256];
    char sha[41];                 /* of the script, from SCRIPT LOAD */
    struct req_list inflight;     /* sent, in the order Redis answers */
    struct req_list pending;      /* waiting for the connection or for room in flight */
    size_t batches_in_flight;
    int script_reloading;
    struct redis_counters count;

    /* scratch, reused by prepare and write (one loop, one caller at a time) */
    struct json_slice doc;
    struct buf keybuf, vals, body, cmd;
    uint32_t *slots;              /* open addressing: op index + 1, 0 = empty */
    size_t nslots;
    uint32_t *op_head, *op_tail, *rec_next;
    size_t plan_cap;
};
/* ---- redis_conn.c ---- */
void req_list_push(struct req_list *l, struct redis_req *req);
struct redis_req *req_list_pop(struct req_list *l);
void req_list_remove(struct req_list *l, struct redis_req *req);
int conn_usable(const struct redis_sink *rs);
void conn_connect(struct redis_sink *rs);
void conn_pump(struct redis_sink *rs);
void req_start(struct redis_sink *rs, struct redis_req *req);
void req_send_argv(struct redis_sink *rs, struct redis_req *req, int argc, const char **argv, const size_t *lens);
/* the sink's start (timers, first connection attempt), stop (no verdicts after it: every
 * request is dropped) and destroy (timers) */
int conn_start(struct redis_sink *rs, char *err, size_t errlen);
void conn_stop(struct redis_sink *rs);
void conn_release(struct redis_sink *rs);

/* ---- redis.c ---- */
void script_send(struct redis_sink *rs, struct redis_req *req);
int batch_command(struct redis_sink *rs, const struct sink_batch *b, char *err, size_t errlen);
void batch_on_reply(struct redis_sink *rs, struct sink_batch *b, const redisReply *reply);
void load_on_reply(struct redis_sink *rs, struct sink_positions *req, const redisReply *reply);

#endif
