#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "admin_route.h"

#define MAX_BODY 65536

void admin_route(enum http_method method, const char *path, struct admin_route *route)
{
    int get = method == HTTP_GET, post = method == HTTP_POST;

    route->sink[0] = '\0';
    if (strcmp(path, "/healthz") == 0)
        route->ep = ADMIN_EP_HEALTHZ;
    else if (get && strcmp(path, "/") == 0)
        route->ep = ADMIN_EP_STATUS_PAGE;
    else if (get && strcmp(path, "/readyz") == 0)
        route->ep = ADMIN_EP_READYZ;
    else if (get && strcmp(path, "/metrics") == 0)
        route->ep = ADMIN_EP_METRICS;
    else if (get && strcmp(path, "/sinks") == 0)
        route->ep = ADMIN_EP_SINKS;
    else if (post && strcmp(path, "/reload") == 0)
        route->ep = ADMIN_EP_RELOAD;
    else if (get && strcmp(path, "/group") == 0)
        route->ep = ADMIN_EP_GROUP;
    else if (strncmp(path, "/sinks/", 7) == 0) {
        const char *slash = strchr(path + 7, '/');
        const char *action = slash ? slash + 1 : "";
        size_t len = slash ? (size_t)(slash - (path + 7)) : strlen(path + 7);
        if (len == 0 || len >= sizeof route->sink) {
            route->ep = ADMIN_EP_NO_SINK;
            return;
        }
        memcpy(route->sink, path + 7, len);
        route->sink[len] = '\0';
        if (get && strcmp(action, "debug") == 0)
            route->ep = ADMIN_EP_SINK_DEBUG;
        else if (get && strcmp(action, "tap") == 0)
            route->ep = ADMIN_EP_SINK_TAP;
        else if (post && strcmp(action, "pause") == 0)
            route->ep = ADMIN_EP_SINK_PAUSE;
        else if (post && strcmp(action, "resume") == 0)
            route->ep = ADMIN_EP_SINK_RESUME;
        else if (post && strcmp(action, "replay") == 0)
            route->ep = ADMIN_EP_SINK_REPLAY;
        else
            route->ep = ADMIN_EP_SINK_BAD_ACTION;
    } else
        route->ep = ADMIN_EP_NOT_FOUND;
}

int admin_route_query_token(const struct admin_route *route)
{
    return route->ep == ADMIN_EP_STATUS_PAGE;
}

int admin_replay_parse(const char *body, size_t len, struct admin_replay *rp, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc, *offset, *topic, *partition, *ts;
    int rc = -1;

    memset(rp, 0, sizeof *rp);
    rp->partition = -1;
    if (len > MAX_BODY) {
        snprintf(err, errlen, "body too large");
        return -1;
    }
    doc = len ? json_loadb(body, len, 0, &jerr) : json_object();
    if (!doc) {
        snprintf(err, errlen, "body is not JSON: %s", len ? jerr.text : "out of memory");
        return -1;
    }
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "body must be a JSON object");
        goto out;
    }
    offset = json_object_get(doc, "offset");
    topic = json_object_get(doc, "topic");
    partition = json_object_get(doc, "partition");
    ts = json_object_get(doc, "timestamp_ms");
    if (ts) {
        if (!json_is_integer(ts) || offset || (topic && !json_is_string(topic)) || (partition && !json_is_integer(partition))) {
            snprintf(err, errlen, "expected {\"timestamp_ms\": T} (and no \"offset\") with optional \"topic\" and \"partition\"");
            goto out;
        }
        rp->by_time = 1;
        rp->at = json_integer_value(ts);
    } else {
        if (!json_is_integer(offset) || (topic && !json_is_string(topic)) || (partition && !json_is_integer(partition))) {
            snprintf(err, errlen, "expected {\"offset\": N} with optional \"topic\" (string) and \"partition\" (integer)");
            goto out;
        }
        rp->at = json_integer_value(offset);
    }
    if (topic && json_string_length(topic) >= sizeof rp->topic) {
        snprintf(err, errlen, "topic is too long");
        goto out;
    }
    if (topic)
        snprintf(rp->topic, sizeof rp->topic, "%s", json_string_value(topic));
    if (partition)
        rp->partition = (int32_t)json_integer_value(partition);
    rc = 0;
out:
    json_decref(doc);
    return rc;
}
