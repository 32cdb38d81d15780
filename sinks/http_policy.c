/* The HTTP sinks' policies, apart from the engine that applies them: option tables, response
 * classes, Retry-After, the token bucket, the circuit breaker, the SSRF guard's address classes,
 * Basic credentials and URL checks. Pure functions of their arguments: unit-tested alone. */
#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "http_engine.h"

#define RETRY_AFTER_CAP_MS 3600000    /* a server asking for more than an hour is capped */

/* ---- option tables ---- */

const char *const http_order_names[] = { "key", "partition", NULL };
const char *const http_on_gone_names[] = { "park", "dead_letter", NULL };

const struct cfg_opt http_rate_limit_opts[] = {
    CFG_INT("requests_per_second", "0", 0, 1000000, HTTP_BASE_OFF(rate_per_second),
            "Requests per second at most, retries included (0: no limit)"),
    CFG_INT("burst", "0", 0, 1000000, HTTP_BASE_OFF(rate_burst),
            "Requests that may go at once after a quiet spell (0: one second's worth)"),
    CFG_END
};

const struct cfg_opt http_breaker_opts[] = {
    CFG_INT("failures", "5", 0, 1000000, HTTP_BASE_OFF(breaker_failures),
            "Consecutive failures (network, timeout, 408, 5xx) that open the breaker (0: never)"),
    CFG_INT("cooldown_ms", "30000", 1, 86400000, HTTP_BASE_OFF(breaker_cooldown_ms),
            "How long it holds requests before one probe"),
    CFG_END
};

/* ---- classification ---- */

enum http_class http_classify(int transport_failed, long status)
{
    if (transport_failed)
        return HTTP_RETRY;
    if (status >= 200 && status <= 299)
        return HTTP_OK;
    if (status == 408 || status == 429 || (status >= 500 && status <= 599))
        return HTTP_RETRY;
    if (status == 410)
        return HTTP_GONE;
    return HTTP_PERMANENT;
}

const char *http_class_name(enum http_class cls)
{
    switch (cls) {
    case HTTP_OK: return "ok";
    case HTTP_RETRY: return "retry";
    case HTTP_PERMANENT: return "permanent";
    case HTTP_GONE: return "gone";
    }
    return "?";
}

int http_retry_after_parse(const char *value, time_t now, int64_t *delay_ms)
{
    const char *p = value, *end;
    time_t when;

    while (*p == ' ' || *p == '\t')
        p++;
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    if (end == p)
        return -1;
    if (isdigit((unsigned char)*p)) {
        int64_t s = 0;
        for (const char *q = p; q < end; q++) {
            if (!isdigit((unsigned char)*q))
                return -1;
            if (s < 100000000)
                s = s * 10 + (*q - '0');
        }
        *delay_ms = s * 1000;
        return 0;
    }
    {
        char date[128];
        size_t n = (size_t)(end - p);
        if (n >= sizeof date)
            return -1;
        memcpy(date, p, n);
        date[n] = '\0';
        /* curl_getdate parses RFC 1123, RFC 850 and asctime dates; it does no I/O. */
        when = curl_getdate(date, NULL);
    }
    if (when == (time_t)-1)
        return -1;
    *delay_ms = when > now ? (int64_t)(when - now) * 1000 : 0;
    return 0;
}

/* ---- token bucket ---- */

void http_bucket_init(struct http_bucket *b, double per_second, double burst, int64_t now_ms)
{
    b->configured = b->rate = per_second;
    b->burst = burst > 0 ? burst : (per_second >= 1 ? per_second : 1);
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

static void bucket_refill(struct http_bucket *b, int64_t now_ms)
{
    double dt;

    if (now_ms <= b->last_ms)
        return;
    dt = (double)(now_ms - b->last_ms) / 1000.0;
    b->tokens += dt * b->rate;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    /* After a 429 the rate creeps back: a twentieth of the configured rate per second. */
    if (b->rate < b->configured) {
        b->rate += b->configured * 0.05 * dt;
        if (b->rate > b->configured)
            b->rate = b->configured;
    }
    b->last_ms = now_ms;
}

int64_t http_bucket_wait(struct http_bucket *b, int64_t now_ms)
{
    double ms;

    bucket_refill(b, now_ms);
    if (b->tokens >= 1.0)
        return 0;
    ms = ceil((1.0 - b->tokens) / b->rate * 1000.0 - 1e-6);   /* no rounding up of a float error */
    return ms < 1 ? 1 : (int64_t)ms;
}

int64_t http_bucket_take(struct http_bucket *b, int64_t now_ms)
{
    int64_t wait = http_bucket_wait(b, now_ms);
    if (wait == 0)
        b->tokens -= 1.0;
    return wait;
}

void http_bucket_slow_down(struct http_bucket *b, int64_t now_ms)
{
    bucket_refill(b, now_ms);
    b->rate /= 2;
    if (b->rate < b->configured / 10)
        b->rate = b->configured / 10;
    if (b->tokens > 0)
        b->tokens = 0;
}

/* ---- circuit breaker ---- */

void http_breaker_init(struct http_breaker *br, unsigned threshold, int64_t cooldown_ms)
{
    memset(br, 0, sizeof *br);
    br->threshold = threshold;
    br->cooldown_ms = cooldown_ms;
}

int64_t http_breaker_allow(struct http_breaker *br, int64_t now_ms)
{
    if (br->threshold == 0 || br->state == BREAKER_CLOSED)
        return 0;
    if (br->state == BREAKER_OPEN) {
        if (now_ms < br->open_until_ms)
            return br->open_until_ms - now_ms;
        br->state = BREAKER_HALF_OPEN;
        br->probe_in_flight = 0;
    }
    if (br->probe_in_flight)
        return -1;
    br->probe_in_flight = 1;
    return 0;
}

int http_breaker_record(struct http_breaker *br, int failure, int64_t now_ms)
{
    if (br->threshold == 0)
        return 0;
    if (!failure) {
        br->failures = 0;
        if (br->state == BREAKER_CLOSED)
            return 0;
        br->state = BREAKER_CLOSED;
        br->probe_in_flight = 0;
        return -1;
    }
    if (br->failures < UINT32_MAX)
        br->failures++;
    if (br->state == BREAKER_HALF_OPEN || (br->state == BREAKER_CLOSED && br->failures >= br->threshold)) {
        br->state = BREAKER_OPEN;
        br->open_until_ms = now_ms + br->cooldown_ms;
        br->probe_in_flight = 0;
        return 1;
    }
    return 0;
}

/* ---- address classes ---- */

static enum http_addr_kind classify_v4(uint32_t a)
{
    uint8_t o1 = (uint8_t)(a >> 24), o2 = (uint8_t)(a >> 16), o3 = (uint8_t)(a >> 8);

    if (o1 == 127)
        return HTTP_ADDR_LOOPBACK;
    if (o1 == 10 || (o1 == 172 && (o2 & 0xf0) == 16) || (o1 == 192 && o2 == 168) ||
        (o1 == 100 && (o2 & 0xc0) == 64))
        return HTTP_ADDR_PRIVATE;
    if (o1 == 169 && o2 == 254)
        return HTTP_ADDR_LINK_LOCAL;
    if (o1 == 0 || o1 >= 224 ||                              /* this network, multicast, reserved */
        (o1 == 192 && o2 == 0 && (o3 == 0 || o3 == 2)) ||     /* IETF assignments, TEST-NET-1 */
        (o1 == 192 && o2 == 88 && o3 == 99) ||                /* 6to4 relay anycast */
        (o1 == 198 && (o2 & 0xfe) == 18) ||                   /* benchmarking */
        (o1 == 198 && o2 == 51 && o3 == 100) || (o1 == 203 && o2 == 0 && o3 == 113))
        return HTTP_ADDR_NON_PUBLIC;
    return HTTP_ADDR_PUBLIC;
}

static uint32_t v4_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static enum http_addr_kind classify_v6(const uint8_t *a)
{
    static const uint8_t zero[16];
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };

    if (memcmp(a, zero, 15) == 0 && a[15] == 1)
        return HTTP_ADDR_LOOPBACK;
    if (memcmp(a, zero, 16) == 0)
        return HTTP_ADDR_NON_PUBLIC;
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0 || memcmp(a, zero, 12) == 0)
        return classify_v4(v4_at(a + 12));                    /* mapped, NAT64, v4-compatible */
    if (a[0] == 0x20 && a[1] == 0x02)
        return classify_v4(v4_at(a + 2));                     /* 6to4 */
    if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) ||
        (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1))
        return HTTP_ADDR_PRIVATE;                             /* ULA, site-local, local NAT64 */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return HTTP_ADDR_LINK_LOCAL;
    if ((a[0] & 0xe0) != 0x20)
        return HTTP_ADDR_NON_PUBLIC;                          /* outside 2000::/3: multicast, discard... */
    if (a[0] == 0x20 && a[1] == 0x01 && (a[2] & 0xfe) == 0)
        return HTTP_ADDR_NON_PUBLIC;                          /* 2001::/23 IETF assignments, Teredo */
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
        return HTTP_ADDR_NON_PUBLIC;                          /* documentation */
    return HTTP_ADDR_PUBLIC;
}

enum http_addr_kind http_addr_classify(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return classify_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return classify_v6(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return HTTP_ADDR_NON_PUBLIC;
}

const char *http_addr_kind_name(enum http_addr_kind kind)
{
    switch (kind) {
    case HTTP_ADDR_PUBLIC: return "public";
    case HTTP_ADDR_LOOPBACK: return "loopback";
    case HTTP_ADDR_PRIVATE: return "private";
    case HTTP_ADDR_LINK_LOCAL: return "link-local";
    case HTTP_ADDR_NON_PUBLIC: return "non-public";
    }
    return "?";
}

int http_host_literal_kind(const char *host, enum http_addr_kind *kind)
{
    char buf[INET6_ADDRSTRLEN + 2];
    struct in_addr v4;
    struct in6_addr v6;
    size_t n = strlen(host);

    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, host, n);
    buf[n] = '\0';
    if (strchr(buf, '%'))
        *strchr(buf, '%') = '\0';   /* fe80::1%eth0 */
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        *kind = classify_v4(ntohl(v4.s_addr));
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &v6) == 1) {
        *kind = classify_v6(v6.s6_addr);
        return 0;
    }
    return -1;
}

/* ---- base64 (Basic credentials) ---- */

char *http_base64(const unsigned char *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* ---- URL checks ---- */

int http_engine_check_url(const struct http_engine_conf *conf, const char *url, const char *what,
                          char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    enum http_addr_kind kind;
    int rc = -1;

    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errlen, "%s is not a valid absolute URL (http://host/... or https://host/...)", what);
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(err, errlen, "%s must be an http:// or https:// URL, not %s://", what, scheme);
        goto out;
    }
    if (!conf->allow_private_networks && http_host_literal_kind(host, &kind) == 0 && kind != HTTP_ADDR_PUBLIC) {
        snprintf(err, errlen, "%s points at %s, a %s address: the SSRF guard refuses non-public destinations; "
                 "set \"allow_private_networks\": true if this is intended", what, host, http_addr_kind_name(kind));
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* Names that resolve inside a cluster or a cloud network, to addresses the SSRF guard refuses. */
static int host_looks_internal(const char *host)
{
    static const char *const suffixes[] = { ".svc", ".cluster.local", ".internal" };
    size_t n = strlen(host);

    if (n && host[n - 1] == '.')
        n--;   /* a fully qualified name's final dot */
    if (!memchr(host, '.', n))
        return 1;   /* a single label: a search domain or /etc/hosts makes it local */
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strncasecmp(host + n - k, suffixes[i], k) == 0)
            return 1;
    }
    return 0;
}

int http_engine_url_warning(const struct http_engine_conf *conf, const char *url, const char *what, char *msg,
                            size_t msglen)
{
    CURLU *u = curl_url();
    char *host = NULL;
    enum http_addr_kind kind;
    int warn = 0;

    if (!u || conf->allow_private_networks)
        goto out;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    if (http_host_literal_kind(host, &kind) == 0)
        goto out;   /* an address: check has judged it already */
    if (host_looks_internal(host)) {
        snprintf(msg, msglen, "warning: %s host \"%s\" looks cluster-internal (a single label, or under .svc, "
                 ".cluster.local or .internal): it will likely resolve to a private address, which the SSRF guard "
                 "refuses on connect, and every record would be dead-lettered; set \"allow_private_networks\": true "
                 "if the receiver is in your network", what, host);
        warn = 1;
    }
out:
    curl_free(host);
    curl_url_cleanup(u);
    return warn;
}
