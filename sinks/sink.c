/* The sink API of sink.h, and the registry of sink types: the configuration loader finds a
 * sink's ops by its "type". The verdict calls go on to the hooks the router put into the batch
 * or request, so a sink calls this file and never the router's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sink.h"

extern const struct sink_ops sink_file_ops;
extern const struct sink_ops sink_redis_ops;
extern const struct sink_ops sink_webhook_ops;
extern const struct sink_ops sink_http_ops;
extern const struct sink_ops sink_postgres_ops;

const struct sink_ops *const sink_types[] = {
    &sink_file_ops,
    &sink_redis_ops,
    &sink_webhook_ops,
    &sink_http_ops,
    &sink_postgres_ops,
    NULL,
};

const struct sink_ops *sink_ops_find(const char *type)
{
    for (size_t i = 0; sink_types[i]; i++)
        if (strcmp(sink_types[i]->type, type) == 0)
            return sink_types[i];
    return NULL;
}

void sink_subject(const struct sink *sk, char *out, size_t outlen)
{
    snprintf(out, outlen, "sink:%s:%s", sk->type, sk->name);
}

void sink_log(const struct sink *sk, enum log_level level, const char *fmt, ...)
{
    char prefix[160], msg[1800];
    va_list ap;

    if (level < log_min_level)
        return;
    sink_subject(sk, prefix, sizeof prefix);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_write(level, prefix, "%s", msg);
}

void sink_batch_reject(struct sink_batch *pub, size_t index, const char *reason)
{
    struct sink_record *e = &pub->records[index];
    free(e->reject_reason);
    e->reject_reason = strdup(reason ? reason : "rejected by the sink");
}

void sink_batch_done(struct sink_batch *b, enum sink_result result, const char *error)
{
    b->hooks->done(b, result, error);
}

void sink_batch_note(struct sink_batch *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    b->hooks->note(b, fmt, ap);
    va_end(ap);
}

int sink_check_problem(struct sink_check *c, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->problems++;
    c->report(c, key, msg[0] ? msg : "invalid options");
    return -1;
}

void sink_batch_refused(struct sink_batch *b, size_t records, const char *reason)
{
    b->hooks->refused(b, records, reason);
}

void sink_positions_done(struct sink_positions *req, int ok, const char *error)
{
    req->done(req, ok, error);
}

int sink_value_json(const char *text, size_t len, struct json_slice *root, char *err, size_t errlen)
{
    char why[160];

    if (json_read(text, len, root, why, sizeof why) == 0)
        return 0;
    snprintf(err, errlen, "value is not JSON: %s", why);
    return -1;
}
