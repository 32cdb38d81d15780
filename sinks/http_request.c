/* Building an HTTP request for the engine (http_engine.h): method, URL, headers, body, the
 * caller's callback and tag; what one attempt adds (late headers) and gets (the response) is
 * cleared before the next. The engine (http_engine.c) puts it on the wire. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_engine_int.h"

static void url_host(const char *url, char *out, size_t outlen)
{
    const char *p = strstr(url, "://"), *end, *at;

    p = p ? p + 3 : url;
    end = p + strcspn(p, "/?#");
    at = memchr(p, '@', (size_t)(end - p));   /* user:password@ stays out */
    if (at)
        p = at + 1;
    snprintf(out, outlen, "%.*s", (int)(end - p), p);
}

struct http_request *http_request_new(const char *method, const char *url, http_done_fn done, void *arg)
{
    struct http_request *req = calloc(1, sizeof *req);

    if (!req || !(req->method = strdup(method)) || !(req->url = strdup(url))) {
        if (req)
            free(req->method);
        free(req);
        return NULL;
    }
    url_host(url, req->host, sizeof req->host);
    req->done = done;
    req->arg = arg;
    req->resp_keep = RESPONSE_KEEP;
    return req;
}

int http_request_header(struct http_request *req, const char *line)
{
    struct curl_slist *l = curl_slist_append(req->headers, line);
    if (!l)
        return -1;
    req->headers = l;
    return 0;
}

int http_request_late_header(struct http_request *req, const char *line)
{
    struct curl_slist *l = curl_slist_append(req->late, line);
    if (!l)
        return -1;
    req->late = l;
    return 0;
}

void http_request_body(struct http_request *req, char *body, size_t len)
{
    free(req->body);
    req->body = body;
    req->body_len = len;
}

void http_request_before_send(struct http_request *req, http_before_fn fn, void *arg)
{
    req->before = fn;
    req->before_arg = arg;
}

const char *http_request_body_data(const struct http_request *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

int http_request_set_id(struct http_request *req, const char *id)
{
    char *copy = strdup(id);
    if (!copy)
        return -1;
    free(req->id);
    req->id = copy;
    return 0;
}

const char *http_request_id(const struct http_request *req)
{
    return req->id ? req->id : "";
}

const char *http_request_url(const struct http_request *req)
{
    return req->url;
}

void http_request_keep_body(struct http_request *req, size_t max)
{
    req->resp_keep = max;
}

const char *http_request_host(const struct http_request *req)
{
    return req->host;
}

void http_request_set_tag(struct http_request *req, uintptr_t tag)
{
    req->tag = tag;
}

uintptr_t http_request_tag(const struct http_request *req)
{
    return req->tag;
}

void http_request_set_done(struct http_request *req, http_done_fn done, void *arg)
{
    req->done = done;
    req->arg = arg;
}

const char *http_request_method(const struct http_request *req)
{
    return req->method;
}

void http_request_clear_attempt(struct http_request *req)
{
    curl_slist_free_all(req->late);
    curl_slist_free_all(req->wire);
    req->late = req->wire = NULL;
    buf_free(&req->resp);
    req->resp_truncated = 0;
    req->retry_after[0] = '\0';
    req->refused[0] = '\0';
    req->errbuf[0] = '\0';
}

void http_request_free(struct http_request *req)
{
    if (!req)
        return;
    http_request_clear_attempt(req);
    curl_slist_free_all(req->headers);
    free(req->id);
    free(req->body);
    free(req->method);
    free(req->url);
    free(req);
}
