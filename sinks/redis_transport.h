/* The redis sink's byte stream: plain TCP or TLS (an OpenSSL bufferevent) on the loop, with
 * hiredis' RESP reader on it. Debian's hiredis 0.14 has no TLS, but its reader and command
 * formatter work on any bytes, so the connection can be TLS while hiredis still does the
 * protocol: the rest of the sink sends formatted commands and gets replies, in order, either
 * way. Nothing here blocks the loop: connect and the TLS handshake are asynchronous. */
#ifndef SLUICE_REDIS_TRANSPORT_H
#define SLUICE_REDIS_TRANSPORT_H

#include <stddef.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

/* What a TLS connection trusts and shows: built once from the options (files read then). */
struct redis_tls;

/**
 * @brief Build the TLS settings: the server's certificate must chain to @p ca_file (NULL: the
 * system's CAs) and name the host; @p cert_file and @p key_file (both or neither) are the
 * client's certificate chain and key, for servers that ask for one.
 * @return the settings, or NULL with the reason (file and OpenSSL's words) in @p err.
 */
struct redis_tls *redis_tls_new(const char *ca_file, const char *cert_file, const char *key_file,
                                char *err, size_t errlen);
void redis_tls_free(struct redis_tls *tls);

struct redis_transport;

/* What a transport tells its owner; @p arg is the owner's. Any of them may free the transport. */
struct redis_transport_events {
    /* connected (and, with TLS, the handshake done and the server's certificate checked) */
    void (*on_open)(void *arg);
    /* one reply, in the order of the commands; it is freed when the callback returns */
    void (*on_reply)(void *arg, const redisReply *reply);
    /* the connection failed or ended; @p was_open says whether on_open came first. The
     * transport is dead: its owner frees it (inside the callback is fine). */
    void (*on_close)(void *arg, int was_open, const char *why);
};

/**
 * @brief Start connecting to @p ip (a numeric IPv4 or IPv6 address) port @p port; with @p tls,
 * TLS with @p server_name (a name or an address) checked against the certificate.
 * @return the transport (events follow from the loop), or NULL with the reason in @p err.
 */
struct redis_transport *redis_transport_open(struct event_base *eb, const char *ip, int port,
                                             const struct redis_tls *tls, const char *server_name,
                                             const struct redis_transport_events *events, void *arg,
                                             char *err, size_t errlen);

/** @brief Queue @p len bytes (formatted commands) for sending. 0, or -1 (out of memory). */
int redis_transport_send(struct redis_transport *t, const char *bytes, size_t len);

/** @brief Close and free; no event after this. NULL is fine. */
void redis_transport_free(struct redis_transport *t);

#endif
