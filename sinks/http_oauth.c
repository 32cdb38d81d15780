/* OAuth2 client credentials for the HTTP engine (http_engine.h): a token fetched from
 * token_url, added to every request at send time, cached until it expires, fetched again with
 * a backoff after a failure; secrets are wiped when freed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "http_engine_int.h"
#include "template.h"
#include "lib/clock.h"
#include "lib/log.h"

/* ---- OAuth2 client credentials ---- */

static void form_add(struct buf *b, const char *name, const char *value)
{
    if (b->len)
        buf_add(b, "&", 1);
    buf_adds(b, name);
    buf_add(b, "=", 1);
    tpl_url_escape(b, value, strlen(value));
}

void http_oauth_token_fetch(struct http_engine *eng)
{
    struct http_request *req = http_request_new("POST", eng->token_url, NULL, NULL);
    struct buf form = { 0 }, cred = { 0 };
    char *body, *b64 = NULL, *line = NULL;
    size_t len;

    if (!req)
        goto oom;
    req->bypass = 1;
    req->eng = eng;
    req->resp_keep = TOKEN_RESPONSE_MAX;
    form_add(&form, "grant_type", "client_credentials");
    if (eng->scope && eng->scope[0])
        form_add(&form, "scope", eng->scope);
    if (eng->audience && eng->audience[0])
        form_add(&form, "audience", eng->audience);
    if (eng->client_auth_post) {
        form_add(&form, "client_id", eng->client_id);
        form_add(&form, "client_secret", eng->client_secret);
    } else {
        /* RFC 6749 2.3.1: both form-encoded, then Basic. */
        tpl_url_escape(&cred, eng->client_id, strlen(eng->client_id));
        buf_add(&cred, ":", 1);
        tpl_url_escape(&cred, eng->client_secret, strlen(eng->client_secret));
        if (cred.oom || !(b64 = http_base64((unsigned char *)cred.p, cred.len)) ||
            asprintf(&line, "Authorization: Basic %s", b64) < 0) {
            line = NULL;
            goto oom;
        }
        if (http_request_header(req, line) != 0)
            goto oom;
    }
    if (http_request_header(req, "Content-Type: application/x-www-form-urlencoded") != 0 ||
        http_request_header(req, "Accept: application/json") != 0 || !(body = buf_steal(&form, &len)))
        goto oom;
    http_request_body(req, body, len);
    eng->token_fetching = 1;
    eng->stats.token_fetches++;
    http_engine_start(eng, req);
    goto out;
oom:
    http_request_free(req);
    eng->token_retry_ms = mono_ms() + 1000;
    LOG_AS(LOG_ERROR, eng->who, "out of memory building the OAuth2 token request");
out:
    if (line)
        OPENSSL_cleanse(line, strlen(line));
    if (cred.p)
        OPENSSL_cleanse(cred.p, cred.len);
    free(line);
    free(b64);
    buf_free(&cred);
    buf_free(&form);
}

void http_oauth_token_done(struct http_engine *eng, struct http_request *req, CURLcode code, long status)
{
    int64_t now = mono_ms(), backoff;
    json_t *doc = NULL, *tok, *exp;
    char error[1024];

    eng->token_fetching = 0;
    error[0] = '\0';
    if (code == CURLE_OK && status >= 200 && status <= 299) {
        doc = json_loadb(req->resp.p ? req->resp.p : "", req->resp.len, 0, NULL);
        tok = json_object_get(doc, "access_token");
        exp = json_object_get(doc, "expires_in");
        if (json_is_string(tok) && json_string_length(tok) > 0 && !strpbrk(json_string_value(tok), "\r\n")) {
            int64_t secs = json_is_integer(exp) ? (int64_t)json_integer_value(exp)
                         : json_is_real(exp) ? (int64_t)json_real_value(exp) : 0;
            if (eng->token) {
                OPENSSL_cleanse(eng->token, strlen(eng->token));
                free(eng->token);
            }
            eng->token = strdup(json_string_value(tok));
            eng->token_gen++;
            eng->token_failures = 0;
            /* Renew a little early: a tenth of the lifetime, at most a minute. */
            eng->token_expires_ms = secs > 0 ? now + secs * 1000 - (secs / 10 < 60 ? secs / 10 : 60) * 1000 : 0;
            if (secs > 0)
                LOG_AS(LOG_INFO, eng->who, "OAuth2 token from %s, valid %" PRId64 " s", req->host, secs);
            else
                LOG_AS(LOG_INFO, eng->who, "OAuth2 token from %s, no expiry given: kept until a 401", req->host);
        } else {
            snprintf(error, sizeof error, "HTTP %ld from %s without an access_token in a JSON body", status, req->host);
        }
        json_decref(doc);
    } else {
        http_engine_result_error(eng, req, code, status, error, sizeof error);
    }
    if (req->resp.p)
        OPENSSL_cleanse(req->resp.p, req->resp.len);
    if (req->body)
        OPENSSL_cleanse(req->body, req->body_len);
    http_request_free(req);
    if (error[0] || !eng->token) {
        eng->token_failures++;
        backoff = 1000LL << (eng->token_failures < 7 ? eng->token_failures - 1 : 6);
        eng->token_retry_ms = now + backoff;
        LOG_AS(LOG_ERROR, eng->who, "OAuth2 token request failed: %s; %zu request(s) wait; trying again in %" PRId64 " ms",
                 error[0] ? error : "out of memory", eng->nqueued, backoff);
    }
}

int http_engine_set_oauth(struct http_engine *eng, const struct http_oauth_conf *oc, char *err, size_t errlen)
{
    eng->oauth = 1;
    eng->client_auth_post = oc->client_auth_post;
    if (!(eng->token_url = strdup(oc->token_url)) || !(eng->client_id = strdup(oc->client_id)) ||
        !(eng->client_secret = strdup(oc->client_secret)) ||
        (oc->scope && !(eng->scope = strdup(oc->scope))) || (oc->audience && !(eng->audience = strdup(oc->audience)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void http_secret_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}
