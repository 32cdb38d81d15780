/* webhook-receiver: the receiver of tools/demo.sh. It verifies each request's Standard Webhooks
 * signature (https://www.standardwebhooks.com/) with its own HMAC-SHA256 over OpenSSL, apart
 * from the webhook sink's signer (only the secret's base64 is read with the sink's
 * webhook_whsec_decode), so a demo run shows that an outside receiver accepts what sluice signs.
 *
 * Usage: webhook-receiver --secret whsec_<base64> [--port N] [--port-file PATH]
 *                         [--tolerance-s S]
 *
 *   --secret         the signing secret the sink has (its "whsec_" prefix is optional)
 *   --port N         port on 127.0.0.1 (default 0: the kernel picks a free one)
 *   --port-file PATH write the port actually bound to PATH, atomically
 *   --tolerance-s S  refuse a webhook-timestamp more than S seconds from now (default 300)
 *
 * Per request it prints one line on stdout, flushed at once:
 *   verified webhook-id=<id> signature=<the v1,... entry that matched> body=<body>
 * and answers 204; a request that does not verify is answered 401 and printed as
 *   refused webhook-id=<id or -> reason=<why>
 * Bytes of the body below 0x20 print as '.', and a body over 1000 bytes is cut there with
 * "...". It prints "PORT=<port>" once it listens and exits 0 on SIGTERM or SIGINT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/common/tool_http.h"
#include "tools/common/tool_util.h"
#include "sinks/webhook_sign.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define BODY_MAX (8 * 1024 * 1024)  /* evhttp refuses larger bodies (413) */
#define BODY_SHOWN 1000
#define SIG_B64_LEN 44              /* base64 of 32 bytes */

struct receiver {
    unsigned char key[WEBHOOK_WHSEC_MAX];
    size_t keylen;
    long tolerance_s;
};

/* "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)) into out (SIG_B64_LEN + 4). */
static int expected_signature(const struct receiver *r, const char *id, const char *ts, const unsigned char *body,
                              size_t bodylen, char *out)
{
    size_t idlen = strlen(id), tslen = strlen(ts), len = idlen + 1 + tslen + 1 + bodylen;
    unsigned char *msg = malloc(len ? len : 1), mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int ok;

    if (msg == NULL)
        return -1;
    memcpy(msg, id, idlen);
    msg[idlen] = '.';
    memcpy(msg + idlen + 1, ts, tslen);
    msg[idlen + 1 + tslen] = '.';
    if (bodylen)
        memcpy(msg + idlen + 1 + tslen + 1, body, bodylen);
    ok = HMAC(EVP_sha256(), r->key, (int)r->keylen, msg, len, mac, &maclen) != NULL && maclen == 32;
    free(msg);
    if (!ok)
        return -1;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
    return 0;
}

/* The entry of the space-separated webhook-signature list that equals want, compared in
 * constant time, copied into match; 0 when one does, -1 otherwise. */
static int signature_find(const char *list, const char *want, char *match, size_t matchlen)
{
    size_t wantlen = strlen(want);

    while (*list != '\0') {
        size_t n = strcspn(list, " ");

        if (n == wantlen && n < matchlen && CRYPTO_memcmp(list, want, n) == 0) {
            memcpy(match, list, n);
            match[n] = '\0';
            return 0;
        }
        list += n;
        list += strspn(list, " ");
    }
    return -1;
}

static void print_body(const unsigned char *body, size_t len)
{
    size_t shown = len > BODY_SHOWN ? BODY_SHOWN : len;

    for (size_t i = 0; i < shown; i++)
        putchar(body[i] < 0x20 ? '.' : body[i]);
    if (shown < len)
        fputs("...", stdout);
}

static void refuse(struct evhttp_request *req, const char *id, const char *reason)
{
    printf("refused webhook-id=%s reason=%s\n", id ? id : "-", reason);
    fflush(stdout);
    evhttp_send_reply(req, 401, "Unauthorized", NULL);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    const struct receiver *r = arg;
    struct evkeyvalq *hdrs = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *id = evhttp_find_header(hdrs, "webhook-id");
    const char *ts = evhttp_find_header(hdrs, "webhook-timestamp");
    const char *sigs = evhttp_find_header(hdrs, "webhook-signature");
    size_t bodylen = evbuffer_get_length(in);
    const unsigned char *body = bodylen ? evbuffer_pullup(in, -1) : (const unsigned char *)"";
    char want[SIG_B64_LEN + 4], match[SIG_B64_LEN + 4];
    long long stamp, now;
    char *end;

    if (id == NULL || ts == NULL || sigs == NULL) {
        refuse(req, id, "missing webhook-id, webhook-timestamp or webhook-signature");
        return;
    }
    stamp = strtoll(ts, &end, 10);
    if (end == ts || *end != '\0') {
        refuse(req, id, "webhook-timestamp is not a number");
        return;
    }
    now = (long long)time(NULL);
    /* Compared without a subtraction, which a huge webhook-timestamp would overflow. */
    if (stamp < now - r->tolerance_s || stamp > now + r->tolerance_s) {
        refuse(req, id, "webhook-timestamp is outside the tolerance");
        return;
    }
    if (body == NULL || expected_signature(r, id, ts, body, bodylen, want) != 0) {
        refuse(req, id, "out of memory");
        return;
    }
    if (signature_find(sigs, want, match, sizeof match) != 0) {
        refuse(req, id, "no signature matches the secret");
        return;
    }
    printf("verified webhook-id=%s signature=%s body=", id, match);
    print_body(body, bodylen);
    putchar('\n');
    fflush(stdout);
    evhttp_send_reply(req, 204, "No Content", NULL);
}

int main(int argc, char **argv)
{
    struct receiver r = { .tolerance_s = 300 };
    struct tool_http_server srv = { 0 };
    const char *secret = NULL, *port_file = NULL;
    long port = 0;
    int rc = 1, len;

    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (val == NULL) {
            fprintf(stderr, "webhook-receiver: %s: missing value or unknown option\n", a);
            return 2;
        }
        if (strcmp(a, "--secret") == 0) {
            secret = val;
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = val;
        } else if (strcmp(a, "--port") == 0 && tool_parse_long(val, 0, 65535, &port) == 0) {
            continue;
        } else if (strcmp(a, "--tolerance-s") == 0 && tool_parse_long(val, 0, 86400 * 365, &r.tolerance_s) == 0) {
            continue;
        } else {
            fprintf(stderr, "webhook-receiver: %s %s: unknown option or bad value\n", a, val);
            return 2;
        }
    }
    len = secret ? webhook_whsec_decode(secret, r.key, sizeof r.key) : -1;
    if (len < 0) {
        fprintf(stderr, "webhook-receiver: --secret whsec_<base64> is required (1..%d bytes of key)\n",
                WEBHOOK_WHSEC_MAX);
        return 2;
    }
    r.keylen = (size_t)len;
    if (tool_http_server_start(&srv, "webhook-receiver", port, port_file, on_request, &r) == 0) {
        evhttp_set_max_body_size(srv.http, BODY_MAX);
        if (tool_http_server_run(&srv) == 0)
            rc = 0;
    }
    tool_http_server_free(&srv);
    OPENSSL_cleanse(r.key, sizeof r.key);
    return rc;
}
