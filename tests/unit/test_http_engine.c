/* The HTTP engine: response classes, Retry-After, the token bucket, the
 * circuit breaker, the SSRF guard's address classes (the pure
 * parts), and a failing before-send hook (an engine on a loop). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "sinks/http_engine.h"

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(http_classify(0, 200), HTTP_OK);
    assert_int_equal(http_classify(0, 204), HTTP_OK);
    assert_int_equal(http_classify(0, 299), HTTP_OK);
    assert_int_equal(http_classify(1, 0), HTTP_RETRY);        /* no response: network, timeout, guard */
    assert_int_equal(http_classify(0, 408), HTTP_RETRY);
    assert_int_equal(http_classify(0, 429), HTTP_RETRY);
    assert_int_equal(http_classify(0, 500), HTTP_RETRY);
    assert_int_equal(http_classify(0, 503), HTTP_RETRY);
    assert_int_equal(http_classify(0, 599), HTTP_RETRY);
    assert_int_equal(http_classify(0, 410), HTTP_GONE);
    assert_int_equal(http_classify(0, 400), HTTP_PERMANENT);
    assert_int_equal(http_classify(0, 401), HTTP_PERMANENT);
    assert_int_equal(http_classify(0, 404), HTTP_PERMANENT);
    assert_int_equal(http_classify(0, 422), HTTP_PERMANENT);
    assert_int_equal(http_classify(0, 301), HTTP_PERMANENT);  /* redirects are not followed */
    assert_int_equal(http_classify(0, 100), HTTP_PERMANENT);
}

static void test_retry_after_seconds(void **state)
{
    int64_t d = -1;
    (void)state;
    assert_int_equal(http_retry_after_parse("2", 1000, &d), 0);
    assert_int_equal(d, 2000);
    assert_int_equal(http_retry_after_parse(" 120\r\n", 1000, &d), 0);
    assert_int_equal(d, 120000);
    assert_int_equal(http_retry_after_parse("0", 1000, &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(http_retry_after_parse("", 1000, &d), -1);
    assert_int_equal(http_retry_after_parse("-5", 1000, &d), -1);
    assert_int_equal(http_retry_after_parse("1.5", 1000, &d), -1);
    assert_int_equal(http_retry_after_parse("soon", 1000, &d), -1);
}

static void test_retry_after_dates(void **state)
{
    /* Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 */
    const time_t at = 1445412480;
    int64_t d = -1;
    (void)state;
    assert_int_equal(http_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", at - 30, &d), 0);
    assert_int_equal(d, 30000);
    assert_int_equal(http_retry_after_parse("Wednesday, 21-Oct-15 07:28:00 GMT", at - 5, &d), 0);   /* RFC 850 */
    assert_int_equal(d, 5000);
    assert_int_equal(http_retry_after_parse("Wed Oct 21 07:28:00 2015", at - 1, &d), 0);            /* asctime */
    assert_int_equal(d, 1000);
    assert_int_equal(http_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", at + 100, &d), 0);     /* past */
    assert_int_equal(d, 0);
    assert_int_equal(http_retry_after_parse("Wed, 99 Foo 2015 07:28:00 GMT", at, &d), -1);
}

static void test_bucket_rate_and_burst(void **state)
{
    struct http_bucket b;
    int64_t now = 1000000;
    int sent = 0;
    (void)state;

    http_bucket_init(&b, 10, 5, now);
    for (int i = 0; i < 5; i++)                       /* the burst goes at once */
        assert_int_equal(http_bucket_take(&b, now), 0);
    assert_int_equal(http_bucket_take(&b, now), 100); /* then one per 100 ms */
    assert_int_equal(http_bucket_take(&b, now + 99), 1);
    assert_int_equal(http_bucket_take(&b, now + 100), 0);
    /* Over 10 simulated seconds, asking every millisecond: 10/s, never more. */
    now += 100;
    for (int64_t t = now; t < now + 10000; t++)
        if (http_bucket_take(&b, t) == 0)
            sent++;
    assert_true(sent >= 99 && sent <= 100);
    /* A long quiet spell refills only up to the burst. */
    now += 100000;
    sent = 0;
    while (http_bucket_take(&b, now) == 0)
        sent++;
    assert_int_equal(sent, 5);
}

static void test_bucket_default_burst_and_wait(void **state)
{
    struct http_bucket b;
    (void)state;
    http_bucket_init(&b, 20, 0, 0);                   /* burst 0: one second's worth */
    assert_true(b.burst == 20);
    http_bucket_init(&b, 0.5, 0, 0);                  /* below 1/s: still one request */
    assert_true(b.burst == 1);
    assert_int_equal(http_bucket_wait(&b, 0), 0);
    assert_int_equal(http_bucket_take(&b, 0), 0);
    assert_int_equal(http_bucket_wait(&b, 0), 2000);
    assert_int_equal(http_bucket_wait(&b, 0), 2000);  /* waiting takes nothing */
}

static void test_bucket_slows_down_on_429(void **state)
{
    struct http_bucket b;
    int64_t now = 0;
    (void)state;
    http_bucket_init(&b, 100, 1, now);
    http_bucket_slow_down(&b, now);
    assert_true(b.rate == 50);
    assert_true(http_bucket_take(&b, now) == 20);     /* emptied, refills at the lower rate */
    for (int i = 0; i < 10; i++)
        http_bucket_slow_down(&b, now);
    assert_true(b.rate == 10);                        /* not below a tenth */
    /* It recovers: a twentieth of the configured rate per second, up to the configured. */
    http_bucket_wait(&b, now + 1000);
    assert_true(b.rate > 14.9 && b.rate < 15.1);
    http_bucket_wait(&b, now + 60000);
    assert_true(b.rate == 100);
}

static void test_breaker(void **state)
{
    struct http_breaker br;
    int64_t now = 5000;
    (void)state;

    http_breaker_init(&br, 3, 1000);
    assert_int_equal(http_breaker_allow(&br, now), 0);
    assert_int_equal(http_breaker_record(&br, 1, now), 0);
    assert_int_equal(http_breaker_record(&br, 1, now), 0);
    assert_int_equal(http_breaker_record(&br, 0, now), 0);   /* a success resets the count */
    assert_int_equal(http_breaker_record(&br, 1, now), 0);
    assert_int_equal(http_breaker_record(&br, 1, now), 0);
    assert_int_equal(http_breaker_record(&br, 1, now), 1);   /* third in a row: open */
    assert_int_equal(br.state, BREAKER_OPEN);
    assert_int_equal(http_breaker_allow(&br, now + 400), 600);
    assert_int_equal(http_breaker_allow(&br, now + 1000), 0);   /* the probe */
    assert_int_equal(br.state, BREAKER_HALF_OPEN);
    assert_int_equal(http_breaker_allow(&br, now + 1001), -1);  /* others wait for it */
    assert_int_equal(http_breaker_record(&br, 1, now + 1100), 1);   /* probe failed: open again */
    assert_int_equal(http_breaker_allow(&br, now + 1500), 600);
    assert_int_equal(http_breaker_allow(&br, now + 2100), 0);
    assert_int_equal(http_breaker_record(&br, 0, now + 2150), -1);  /* probe ok: closed */
    assert_int_equal(br.state, BREAKER_CLOSED);
    assert_int_equal(http_breaker_allow(&br, now + 2151), 0);
    assert_int_equal(http_breaker_allow(&br, now + 2151), 0);

    http_breaker_init(&br, 0, 1000);                          /* disabled */
    for (int i = 0; i < 100; i++)
        assert_int_equal(http_breaker_record(&br, 1, now), 0);
    assert_int_equal(http_breaker_allow(&br, now), 0);
}

static enum http_addr_kind v4(const char *text)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    assert_int_equal(inet_pton(AF_INET, text, &sin.sin_addr), 1);
    return http_addr_classify((struct sockaddr *)&sin);
}

static enum http_addr_kind v6(const char *text)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
    assert_int_equal(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
    return http_addr_classify((struct sockaddr *)&sin6);
}

static void test_addresses(void **state)
{
    enum http_addr_kind k;
    (void)state;
    assert_int_equal(v4("127.0.0.1"), HTTP_ADDR_LOOPBACK);
    assert_int_equal(v4("127.255.0.9"), HTTP_ADDR_LOOPBACK);
    assert_int_equal(v4("10.1.2.3"), HTTP_ADDR_PRIVATE);
    assert_int_equal(v4("172.16.0.1"), HTTP_ADDR_PRIVATE);
    assert_int_equal(v4("172.31.255.255"), HTTP_ADDR_PRIVATE);
    assert_int_equal(v4("172.32.0.1"), HTTP_ADDR_PUBLIC);
    assert_int_equal(v4("192.168.1.1"), HTTP_ADDR_PRIVATE);
    assert_int_equal(v4("100.64.0.1"), HTTP_ADDR_PRIVATE);
    assert_int_equal(v4("100.128.0.1"), HTTP_ADDR_PUBLIC);
    assert_int_equal(v4("169.254.169.254"), HTTP_ADDR_LINK_LOCAL);   /* cloud metadata */
    assert_int_equal(v4("0.0.0.0"), HTTP_ADDR_NON_PUBLIC);
    assert_int_equal(v4("224.0.0.1"), HTTP_ADDR_NON_PUBLIC);
    assert_int_equal(v4("255.255.255.255"), HTTP_ADDR_NON_PUBLIC);
    assert_int_equal(v4("192.0.2.10"), HTTP_ADDR_NON_PUBLIC);
    assert_int_equal(v4("198.18.0.1"), HTTP_ADDR_NON_PUBLIC);
    assert_int_equal(v4("8.8.8.8"), HTTP_ADDR_PUBLIC);
    assert_int_equal(v4("93.184.216.34"), HTTP_ADDR_PUBLIC);
    assert_int_equal(v6("::1"), HTTP_ADDR_LOOPBACK);
    assert_int_equal(v6("::"), HTTP_ADDR_NON_PUBLIC);
    assert_int_equal(v6("::ffff:127.0.0.1"), HTTP_ADDR_LOOPBACK);    /* mapped v4 */
    assert_int_equal(v6("::ffff:10.0.0.1"), HTTP_ADDR_PRIVATE);
    assert_int_equal(v6("::ffff:8.8.8.8"), HTTP_ADDR_PUBLIC);
    assert_int_equal(v6("64:ff9b::a9fe:a9fe"), HTTP_ADDR_LINK_LOCAL); /* NAT64 of 169.254.169.254 */
    assert_int_equal(v6("2002:c0a8:0101::1"), HTTP_ADDR_PRIVATE);    /* 6to4 of 192.168.1.1 */
    assert_int_equal(v6("fd00::1"), HTTP_ADDR_PRIVATE);
    assert_int_equal(v6("fe80::1"), HTTP_ADDR_LINK_LOCAL);
    assert_int_equal(v6("ff02::1"), HTTP_ADDR_NON_PUBLIC);
    assert_int_equal(v6("2001:db8::1"), HTTP_ADDR_NON_PUBLIC);
    assert_int_equal(v6("2606:4700:4700::1111"), HTTP_ADDR_PUBLIC);

    assert_int_equal(http_host_literal_kind("127.0.0.1", &k), 0);
    assert_int_equal(k, HTTP_ADDR_LOOPBACK);
    assert_int_equal(http_host_literal_kind("[::1]", &k), 0);
    assert_int_equal(k, HTTP_ADDR_LOOPBACK);
    assert_int_equal(http_host_literal_kind("[fe80::1%eth0]", &k), 0);
    assert_int_equal(k, HTTP_ADDR_LINK_LOCAL);
    assert_int_equal(http_host_literal_kind("api.example.com", &k), -1);
    assert_int_equal(http_host_literal_kind("localhost", &k), -1);
}

static void test_check_url(void **state)
{
    struct http_engine_conf conf = { .allow_private_networks = 0 };
    char err[512];
    (void)state;
    assert_int_equal(http_engine_check_url(&conf, "https://api.example.com/x", "url", err, sizeof err), 0);
    assert_int_equal(http_engine_check_url(&conf, "http://127.0.0.1:8080/hook", "url", err, sizeof err), -1);
    assert_non_null(strstr(err, "127.0.0.1"));
    assert_non_null(strstr(err, "loopback"));
    assert_non_null(strstr(err, "allow_private_networks"));
    assert_int_equal(http_engine_check_url(&conf, "http://169.254.169.254/latest", "url", err, sizeof err), -1);
    assert_non_null(strstr(err, "link-local"));
    assert_int_equal(http_engine_check_url(&conf, "ftp://example.com/", "url", err, sizeof err), -1);
    assert_non_null(strstr(err, "http:// or https://"));
    assert_int_equal(http_engine_check_url(&conf, "not a url", "url", err, sizeof err), -1);
    conf.allow_private_networks = 1;
    assert_int_equal(http_engine_check_url(&conf, "http://127.0.0.1:8080/hook", "url", err, sizeof err), 0);
}

static void test_key_hash(void **state)
{
    (void)state;
    assert_int_equal(http_key_hash("k-1", 3), http_key_hash("k-1", 3));
    assert_int_not_equal(http_key_hash("k-1", 3), http_key_hash("k-2", 3));
    assert_int_not_equal(http_key_hash(NULL, 0), http_key_hash("", 0));
}

/* A before-send hook that fails (a signature that cannot be made) fails the attempt as
 * retryable, with its reason, and nothing goes on the wire. */
static int refuse_to_sign(struct http_request *req, void *arg, char *err, size_t errlen)
{
    (void)req;
    (void)arg;
    snprintf(err, errlen, "cannot sign the request; not sent unsigned");
    return -1;
}

struct hook_outcome {
    int calls;
    enum http_class cls;
    char error[512];
};

static void on_hook_done(struct http_request *req, const struct http_result *res, void *arg)
{
    struct hook_outcome *out = arg;
    out->calls++;
    out->cls = res->cls;
    snprintf(out->error, sizeof out->error, "%s", res->error);
    http_request_free(req);
}

static void test_before_send_failure_retries_unsent(void **state)
{
    struct event_base *eb = event_base_new();
    struct sink sk = { .name = "unit", .type = "webhook", .eb = eb };
    struct http_engine_conf conf = { .timeout_ms = 1000, .max_in_flight = 1, .allow_private_networks = 1,
                                     .tls_verify = 1 };
    struct hook_outcome out = { 0 };
    char err[256];
    struct http_engine *eng;
    struct http_request *req;

    (void)state;
    assert_non_null(eb);
    assert_non_null(eng = http_engine_for_sink(&sk, &conf, err, sizeof err));
    assert_non_null(req = http_request_new("POST", "http://127.0.0.1:9/hook", on_hook_done, &out));
    http_request_before_send(req, refuse_to_sign, NULL);
    http_engine_submit(eng, req);
    assert_int_equal(out.calls, 1);
    assert_int_equal(out.cls, HTTP_RETRY);
    assert_non_null(strstr(out.error, "cannot sign the request; not sent unsigned"));
    assert_int_equal(http_engine_stats(eng)->requests, 0);
    http_engine_free(eng);
    event_base_free(eb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_bucket_rate_and_burst),
        cmocka_unit_test(test_bucket_default_burst_and_wait),
        cmocka_unit_test(test_bucket_slows_down_on_429),
        cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_check_url),
        cmocka_unit_test(test_key_hash),
        cmocka_unit_test(test_before_send_failure_retries_unsent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
