#include "tool_http.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "tools/common/tool_util.h"

#include <event2/keyvalq_struct.h>

const char *tool_http_method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "UNKNOWN";
}

int tool_http_listen_local(struct evhttp *http, long port, long *bound, char *err, size_t errlen)
{
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;

    bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
    if (bs == NULL) {
        snprintf(err, errlen, "cannot listen on 127.0.0.1:%ld: %s", port, strerror(errno));
        return -1;
    }
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen) != 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        return -1;
    }
    *bound = ntohs(sin.sin_port);
    return 0;
}

int tool_http_control_authorized(struct evhttp_request *req, const char *token)
{
    struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    const char *tok, *auth;

    if (token == NULL)
        return 1;
    tok = evhttp_find_header(ih, "X-Control-Token");
    if (tok != NULL && strcmp(tok, token) == 0)
        return 1;
    auth = evhttp_find_header(ih, "Authorization");
    return auth != NULL && strncmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, token) == 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct tool_http_server *srv = arg;

    (void)what;
    fprintf(stderr, "%s: signal %d, stopping\n", srv->name, (int)sig);
    event_base_loopbreak(srv->eb);
}

int tool_http_server_start(struct tool_http_server *srv, const char *name, long port, const char *port_file,
                           void (*cb)(struct evhttp_request *, void *), void *arg)
{
    char err[512], text[32];
    long bound = 0;

    memset(srv, 0, sizeof *srv);
    srv->name = name;
    /* A client that hangs up before its answer is written must not kill the server. */
    signal(SIGPIPE, SIG_IGN);
    srv->eb = event_base_new();
    srv->http = srv->eb ? evhttp_new(srv->eb) : NULL;
    if (srv->http == NULL) {
        fprintf(stderr, "%s: cannot create the event base or the HTTP server\n", name);
        return -1;
    }
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                              EVHTTP_REQ_PATCH);
    evhttp_set_gencb(srv->http, cb, arg);
    if (tool_http_listen_local(srv->http, port, &bound, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        return -1;
    }
    srv->sigterm = evsignal_new(srv->eb, SIGTERM, on_signal, srv);
    srv->sigint = evsignal_new(srv->eb, SIGINT, on_signal, srv);
    if (srv->sigterm == NULL || srv->sigint == NULL || evsignal_add(srv->sigterm, NULL) != 0 ||
        evsignal_add(srv->sigint, NULL) != 0) {
        fprintf(stderr, "%s: cannot watch signals\n", name);
        return -1;
    }
    snprintf(text, sizeof text, "%ld", bound);
    if (port_file != NULL && tool_write_file_atomic(port_file, text, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        return -1;
    }
    printf("PORT=%ld\n", bound);
    fflush(stdout);
    return 0;
}

int tool_http_server_run(struct tool_http_server *srv)
{
    if (event_base_dispatch(srv->eb) < 0) {
        fprintf(stderr, "%s: event loop failed\n", srv->name);
        return -1;
    }
    return 0;
}

void tool_http_server_free(struct tool_http_server *srv)
{
    if (srv->sigterm != NULL)
        event_free(srv->sigterm);
    if (srv->sigint != NULL)
        event_free(srv->sigint);
    if (srv->http != NULL)
        evhttp_free(srv->http);
    if (srv->eb != NULL)
        event_base_free(srv->eb);
    memset(srv, 0, sizeof *srv);
}
