/* Helpers the test HTTP servers (http-receiver, schema-registry) share, on libevent's evhttp. */
#ifndef SLUICE_TOOL_HTTP_H
#define SLUICE_TOOL_HTTP_H

#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>

/* A test server's event loop and HTTP listener on 127.0.0.1, stopped by SIGTERM or SIGINT. */
struct tool_http_server {
    const char *name;                    /* for messages: "http-receiver: ..." */
    struct event_base *eb;
    struct evhttp *http;
    struct event *sigterm, *sigint;
};

/** @brief Ignores SIGPIPE, creates the loop and the server with every method allowed and cb for
 *  every request, listens on 127.0.0.1:port (0: the kernel picks), writes the port to port_file
 *  (if not NULL) and prints "PORT=<n>"; 0 or -1 with a message on stderr. Free with
 *  tool_http_server_free whatever the outcome. */
int tool_http_server_start(struct tool_http_server *srv, const char *name, long port, const char *port_file,
                           void (*cb)(struct evhttp_request *, void *), void *arg);

/** @brief Runs the loop until a signal; 0, or -1 when the loop failed. */
int tool_http_server_run(struct tool_http_server *srv);

/** @brief Frees the server (closing its connections) and the loop. */
void tool_http_server_free(struct tool_http_server *srv);

/** @brief "GET", "POST", ... for a request's method. */
const char *tool_http_method_name(enum evhttp_cmd_type cmd);

/** @brief Listens on 127.0.0.1:port (0: the kernel picks) and puts the port bound in *bound;
 *  0 or -1 with err set. */
int tool_http_listen_local(struct evhttp *http, long port, long *bound, char *err, size_t errlen);

/** @brief True when token is NULL (no control token asked for) or the request carries it as
 *  "X-Control-Token: T" or "Authorization: Bearer T". */
int tool_http_control_authorized(struct evhttp_request *req, const char *token);

#endif
