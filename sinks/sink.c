/* The registry of sink types: the configuration loader finds a sink's ops by its "type". */
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
