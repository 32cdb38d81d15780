/* The embedded Schema Registry of `sluice dev --registry` (dev_registry.h). */
#include "dev_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "lib/log.h"
#include "lib/schema_api.h"
#include "lib/schema_store.h"

#define DEV_REGISTRY_BODY_MAX (8u * 1024 * 1024)   /* a register body, as tools/schema-registry */
#define DEV_REGISTRY_CONNECTIONS 64

struct dev_registry {
    struct http_server *srv;
    struct schema_store store;
    char url[300];
};

static const char *method_name(enum http_method m)
{
    return m == HTTP_GET ? "GET" : m == HTTP_POST ? "POST" : "OTHER";
}

static void on_request(struct http_server_req *req, void *arg)
{
    struct dev_registry *dr = arg;
    struct schema_api_reply rp = { 0 };
    const char *method = method_name(http_server_req_method(req)), *path = http_server_req_path(req);
    const char *body;
    size_t body_len, len;
    char *text;

    body = http_server_req_body(req, &body_len);
    schema_api_answer(&dr->store, method, path, http_server_req_query(req), body, body_len, &rp);
    LOG(rp.changed ? LOG_INFO : LOG_DEBUG, "embedded registry: %s %s: %d", method, path, rp.status);
    if ((text = schema_api_reply_text(&rp, &len)) != NULL)
        http_server_reply(req, rp.status, SCHEMA_API_CONTENT_TYPE, text, len);
    else
        http_server_reply(req, 500, "text/plain", "out of memory\n", 14);
    free(text);
    schema_api_reply_clear(&rp);
}

struct dev_registry *dev_registry_new(struct event_base *eb, const char *listen, const char *load,
                                      char *err, size_t errlen)
{
    struct http_limits limits = HTTP_LIMITS_DEFAULT;
    struct dev_registry *dr = calloc(1, sizeof *dr);
    const char *colon = strrchr(listen, ':');
    int hostlen = colon ? (int)(colon - listen) : 0;

    if (!dr || schema_store_init(&dr->store) != 0) {
        snprintf(err, errlen, "embedded registry: out of memory");
        goto fail;
    }
    if (load && schema_store_load(&dr->store, load, err, errlen) != 0)
        goto fail;
    limits.max_body = DEV_REGISTRY_BODY_MAX;
    limits.max_connections = DEV_REGISTRY_CONNECTIONS;
    if (!(dr->srv = http_server_new(eb, listen, "embedded registry", &limits, on_request, dr, err, errlen)))
        goto fail;
    /* A client reaches a wildcard address through loopback. */
    if (hostlen == 0 || (hostlen == 7 && strncmp(listen, "0.0.0.0", 7) == 0))
        snprintf(dr->url, sizeof dr->url, "http://127.0.0.1:%d", http_server_port(dr->srv));
    else if (hostlen == 2 && strncmp(listen, "::", 2) == 0)
        snprintf(dr->url, sizeof dr->url, "http://[::1]:%d", http_server_port(dr->srv));
    else if (memchr(listen, ':', (size_t)hostlen))
        snprintf(dr->url, sizeof dr->url, "http://[%.*s]:%d", hostlen, listen, http_server_port(dr->srv));
    else
        snprintf(dr->url, sizeof dr->url, "http://%.*s:%d", hostlen, listen, http_server_port(dr->srv));
    LOG(LOG_INFO, "embedded registry at %s: %zu schema(s), %zu subject(s)%s%s", dr->url,
        json_array_size(dr->store.schemas), json_object_size(dr->store.subjects), load ? " from " : "",
        load ? load : "");
    return dr;
fail:
    dev_registry_free(dr);
    return NULL;
}

const char *dev_registry_url(const struct dev_registry *dr)
{
    return dr->url;
}

void dev_registry_free(struct dev_registry *dr)
{
    if (!dr)
        return;
    http_server_free(dr->srv);
    schema_store_free(&dr->store);
    free(dr);
}
