/* The redis sink's byte stream: TCP or TLS bufferevent, hiredis' RESP reader. See the header. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "redis_transport.h"
#include "redis_reply.h"

/* bytes one read or write of the socket may move per loop turn */
#define TRANSPORT_MAX_SINGLE_IO (4u << 20)

struct redis_tls {
    SSL_CTX *ctx;
};

struct redis_transport {
    struct bufferevent *bev;
    SSL *ssl;                        /* TLS only; the bufferevent owns it */
    redisReader *reader;
    struct redis_transport_events events;
    void *arg;
    char peer[INET6_ADDRSTRLEN + 8]; /* ip:port, for messages */
    int open;
    int in_callback;                 /* an event is being delivered: free later */
    int freed;                       /* redis_transport_free came during a callback */
};

/* ---- TLS settings ---- */

/* The words of an OpenSSL error: errno's for a system error, else its reason. */
static void openssl_words(unsigned long e, char *out, size_t outlen)
{
    const char *reason = ERR_reason_error_string(e);

    if (ERR_SYSTEM_ERROR(e))
        snprintf(out, outlen, "%s", strerror(ERR_GET_REASON(e)));
    else if (reason)
        snprintf(out, outlen, "%s", reason);
    else
        snprintf(out, outlen, "OpenSSL error %lx", e);
}

/* The oldest OpenSSL error's reason ("no such file", "certificate verify failed"), emptying
 * the thread's error queue. */
static void openssl_reason(char *out, size_t outlen)
{
    unsigned long e = ERR_get_error();

    if (e)
        openssl_words(e, out, outlen);
    else
        snprintf(out, outlen, "unknown OpenSSL error");
    ERR_clear_error();
}

struct redis_tls *redis_tls_new(const char *ca_file, const char *cert_file, const char *key_file,
                                char *err, size_t errlen)
{
    struct redis_tls *tls = calloc(1, sizeof *tls);
    char why[256];

    if (!tls) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    if (!(tls->ctx = SSL_CTX_new(TLS_client_method()))) {
        openssl_reason(why, sizeof why);
        snprintf(err, errlen, "cannot set up TLS: %s", why);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file ? SSL_CTX_load_verify_locations(tls->ctx, ca_file, NULL) != 1
                : SSL_CTX_set_default_verify_paths(tls->ctx) != 1) {
        openssl_reason(why, sizeof why);
        snprintf(err, errlen, "cannot load the CA certificates %s: %s", ca_file ? ca_file : "of the system", why);
        goto fail;
    }
    if (cert_file && SSL_CTX_use_certificate_chain_file(tls->ctx, cert_file) != 1) {
        openssl_reason(why, sizeof why);
        snprintf(err, errlen, "cannot load the client certificate %s: %s", cert_file, why);
        goto fail;
    }
    if (key_file && SSL_CTX_use_PrivateKey_file(tls->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        openssl_reason(why, sizeof why);
        snprintf(err, errlen, "cannot load the client key %s: %s", key_file, why);
        goto fail;
    }
    if (cert_file && key_file && SSL_CTX_check_private_key(tls->ctx) != 1) {
        openssl_reason(why, sizeof why);
        snprintf(err, errlen, "the client key %s does not match the certificate %s: %s", key_file, cert_file, why);
        goto fail;
    }
    return tls;
fail:
    redis_tls_free(tls);
    return NULL;
}

void redis_tls_free(struct redis_tls *tls)
{
    if (!tls)
        return;
    SSL_CTX_free(tls->ctx);
    free(tls);
}

/* ---- the transport ---- */

static void transport_destroy(struct redis_transport *t)
{
    if (t->bev)
        bufferevent_free(t->bev);   /* closes the socket and frees the SSL */
    if (t->reader)
        redis_reply_reader_free(t->reader);
    free(t);
}

/* Why the connection failed or ended. With TLS: the certificate check's verdict when that was
 * the cause ("certificate verify failed: hostname mismatch"), else OpenSSL's first reason (an
 * alert from the server: "tlsv13 alert certificate required"). */
static int failure_reason(struct redis_transport *t, short what, int sock_err, char *out, size_t outlen)
{
    unsigned long e, first = 0;
    long verify = t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;

    /* libevent puts SSL_get_error's code (no library) before the error queue's entries */
    while (t->ssl && (e = bufferevent_get_openssl_error(t->bev)))
        if (!first && (ERR_GET_LIB(e) != 0 || ERR_SYSTEM_ERROR(e)))
            first = e;
    if (verify != X509_V_OK) {
        snprintf(out, outlen, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
        return 1;
    }
    if (first) {
        openssl_words(first, out, outlen);
        return 1;
    }
    if (what & BEV_EVENT_EOF)
        snprintf(out, outlen, "closed by the server");
    else
        snprintf(out, outlen, "%s", sock_err ? evutil_socket_error_to_string(sock_err) : "error");
    return 0;
}

static void transport_close(struct redis_transport *t, const char *why)
{
    int was_open = t->open;

    t->open = 0;
    bufferevent_disable(t->bev, EV_READ | EV_WRITE);
    t->events.on_close(t->arg, was_open, why);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct redis_transport *t = arg;
    char why[512], detail[384];
    int err = EVUTIL_SOCKET_ERROR();

    (void)bev;
    t->in_callback++;
    if (what & BEV_EVENT_CONNECTED) {
        evutil_socket_t fd = bufferevent_getfd(t->bev);
        int on = 1, idle_s = 15, interval_s = 5, probes = 3;
        /* pipelined small commands must not wait for Nagle; keepalive finds a peer that went
         * away silently within about 30 s (hiredis' redisEnableKeepAlive did the same) */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
        t->open = 1;
        t->events.on_open(t->arg);
    } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        int tls_error = failure_reason(t, what, err, detail, sizeof detail);
        const char *verb = t->open ? "connection lost" : tls_error ? "TLS handshake failed" : "cannot connect";
        snprintf(why, sizeof why, "%s: %s", verb, detail);
        transport_close(t, why);
    }
    if (--t->in_callback == 0 && t->freed)
        transport_destroy(t);
}

/* What the reader is fed at a time. hiredis' reader moves what it has not parsed to the front of
 * its buffer each time it has parsed 1 KiB: fed a whole read (up to TRANSPORT_MAX_SINGLE_IO)
 * at once, it moves most of it again for every KiB of replies; fed slices, at most a slice. */
#define READER_SLICE ((size_t)4096)

/* Delivers every complete reply, feeding the reader a slice of what arrived when it has none. */
static void on_read(struct bufferevent *bev, void *arg)
{
    struct redis_transport *t = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec;
    void *reply;

    t->in_callback++;
    while (!t->freed && t->open) {   /* a reply's handler may close or free the transport */
        size_t len;
        reply = NULL;
        if (redisReaderGetReply(t->reader, &reply) != REDIS_OK) {
            char why[256];
            snprintf(why, sizeof why, "connection lost: protocol error: %s", t->reader->errstr);
            transport_close(t, why);
            break;
        }
        if (reply) {
            t->events.on_reply(t->arg, reply);
            redis_reply_release(t->reader);
            continue;
        }
        if (evbuffer_peek(in, (ev_ssize_t)READER_SLICE, NULL, &vec, 1) < 1 || vec.iov_len == 0)
            break;
        len = vec.iov_len < READER_SLICE ? vec.iov_len : READER_SLICE;
        if (redisReaderFeed(t->reader, vec.iov_base, len) != REDIS_OK) {
            transport_close(t, "connection lost: out of memory");
            break;
        }
        evbuffer_drain(in, len);
    }
    if (--t->in_callback == 0 && t->freed)
        transport_destroy(t);
}

static int make_sockaddr(const char *ip, int port, struct sockaddr_storage *sa, int *salen)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

    memset(sa, 0, sizeof *sa);
    if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *salen = sizeof *sin;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *salen = sizeof *sin6;
        return 0;
    }
    return -1;
}

/* The server's certificate must name @p server_name: an address is matched against the
 * certificate's IP entries, a name against its DNS entries (and sent as SNI). */
static int tls_expect_name(SSL *ssl, const char *server_name)
{
    unsigned char addr[sizeof(struct in6_addr)];

    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (inet_pton(AF_INET, server_name, addr) == 1 || inet_pton(AF_INET6, server_name, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name) == 1 ? 0 : -1;
    if (SSL_set_tlsext_host_name(ssl, server_name) != 1)
        return -1;
    return SSL_set1_host(ssl, server_name) == 1 ? 0 : -1;
}

struct redis_transport *redis_transport_open(struct event_base *eb, const char *ip, int port,
                                             const struct redis_tls *tls, const char *server_name,
                                             const struct redis_transport_events *events, void *arg,
                                             char *err, size_t errlen)
{
    struct redis_transport *t;
    struct sockaddr_storage sa;
    int salen = 0;

    if (make_sockaddr(ip, port, &sa, &salen) != 0) {
        snprintf(err, errlen, "cannot connect: %s is not an IP address", ip);
        return NULL;
    }
    if (!(t = calloc(1, sizeof *t)) || !(t->reader = redis_reply_reader_new())) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->events = *events;
    t->arg = arg;
    snprintf(t->peer, sizeof t->peer, "%s:%d", ip, port);
    if (tls) {
        ERR_clear_error();
        if (!(t->ssl = SSL_new(tls->ctx)) || tls_expect_name(t->ssl, server_name) != 0) {
            char why[256];
            openssl_reason(why, sizeof why);
            snprintf(err, errlen, "cannot set up TLS for %s: %s", server_name, why);
            SSL_free(t->ssl);
            t->ssl = NULL;
            transport_destroy(t);
            return NULL;
        }
        t->bev = bufferevent_openssl_socket_new(eb, -1, t->ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
        if (!t->bev) {
            SSL_free(t->ssl);
            t->ssl = NULL;
        } else {
            /* a server may close without close_notify: that is the end of the stream, not an attack
             * (replies are whole RESP values, so a truncation shows as a missing reply) */
            bufferevent_openssl_set_allow_dirty_shutdown(t->bev, 1);
        }
    } else {
        t->bev = bufferevent_socket_new(eb, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!t->bev) {
        snprintf(err, errlen, "out of memory");
        transport_destroy(t);
        return NULL;
    }
    bufferevent_setcb(t->bev, on_read, NULL, on_event, t);
    /* libevent moves at most 16 KiB per socket per loop turn by default: a 250 KB batch then
     * took 16 turns (each an epoll_wait) to leave, and the pipeline stalled with neither side
     * busy. Whole batches go out (and replies come in) in one turn. */
    bufferevent_set_max_single_write(t->bev, TRANSPORT_MAX_SINGLE_IO);
    bufferevent_set_max_single_read(t->bev, TRANSPORT_MAX_SINGLE_IO);
    bufferevent_enable(t->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(t->bev, (struct sockaddr *)&sa, salen) != 0) {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(err, errlen, "cannot connect: %s", e ? evutil_socket_error_to_string(e) : "error");
        transport_destroy(t);
        return NULL;
    }
    return t;
}

int redis_transport_send(struct redis_transport *t, const char *bytes, size_t len)
{
    return bufferevent_write(t->bev, bytes, len) == 0 ? 0 : -1;
}

void redis_transport_free(struct redis_transport *t)
{
    if (!t)
        return;
    if (t->in_callback) {
        /* inside one of its own events: no more of them, the callback's end frees it */
        t->freed = 1;
        t->open = 0;
        bufferevent_disable(t->bev, EV_READ | EV_WRITE);
        bufferevent_setcb(t->bev, NULL, NULL, NULL, NULL);
        return;
    }
    transport_destroy(t);
}
