/* libFuzzer target: the admin API's request path as bytes from a client take it. The input is a
 * request as sent on the socket (its first byte also picks how it is split across reads). The
 * head parser must give the same verdict fed in pieces as in one go, never move backwards, and
 * keep every offset it returns inside the head; a complete request then goes through the router
 * of endpoints, the query parser (?token=) and the replay body parser, as admin.c runs them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/admin_route.h"
#include "router/http_server.h"
#include "tests/fuzz/fuzz_check.h"

/* Small caps, so that short inputs reach every limit. */
static const struct http_limits limits = { 128, 512, 12, 4096, 1000, 4 };

static void check_head(const struct http_head *h, const char *buf, size_t len)
{
    CHECK(h->len <= len);
    CHECK(h->target < h->len && buf[h->target] == '/');
    CHECK(h->query == 0 || h->query < h->len);
    CHECK(h->nfields <= limits.max_headers);
    for (size_t i = 0; i < h->nfields; i++) {
        CHECK(h->fields[i].name < h->len && h->fields[i].value < h->len);
        CHECK(strlen(buf + h->fields[i].value) < h->len);
    }
    CHECK(h->content_length <= (long long)limits.max_body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = size > limits.max_head_bytes ? limits.max_head_bytes : size;
    char *whole = malloc(len + 1), *part = malloc(len + 1);
    struct http_head *hw = malloc(sizeof *hw), *hp = malloc(sizeof *hp);
    unsigned step = size ? (unsigned)data[0] % 17 + 1 : 1;
    int rw, rp = 0;

    if (!whole || !part || !hw || !hp)
        goto out;
    memcpy(whole, data, len);
    whole[len] = '\0';
    http_head_reset(hw);
    rw = http_head_feed(hw, whole, len, &limits);

    /* The same bytes in reads of 1..17 bytes. */
    http_head_reset(hp);
    for (size_t n = 0; n < len && rp == 0;) {
        size_t before = hp->pos, take = len - n < step ? len - n : step;
        memcpy(part + n, data + n, take);
        n += take;
        rp = http_head_feed(hp, part, n, &limits);
        CHECK(hp->pos >= before && hp->pos <= n);
    }
    CHECK(rp == rw);
    CHECK(hp->status == hw->status);
    if (rw == -1)
        CHECK(hw->status >= 400 && hw->status <= 505 && hw->reject < HTTP_REJECT_COUNT);
    if (rw == 1) {
        struct admin_route rt;
        struct admin_replay rp_body;
        char err[256], *token;
        size_t body_len = size - hw->len;

        CHECK(hp->len == hw->len && hp->nfields == hw->nfields && hp->content_length == hw->content_length);
        CHECK(strcmp(part + hp->target, whole + hw->target) == 0);
        check_head(hw, whole, len);
        admin_route(hw->method, whole + hw->target, &rt);
        CHECK(strlen(rt.sink) < sizeof rt.sink);
        CHECK(rt.sink[0] == '\0' || strncmp(whole + hw->target, "/sinks/", 7) == 0);
        if (hw->query && (token = http_query_param(whole + hw->query, "token"))) {
            CHECK(strlen(token) <= strlen(whole + hw->query));
            free(token);
        }
        if (rt.ep == ADMIN_EP_SINK_REPLAY || body_len > 0) {
            /* The body is what follows the head in the input (the server reads Content-Length). */
            if (admin_replay_parse((const char *)data + hw->len, body_len, &rp_body, err, sizeof err) == 0)
                CHECK(strlen(rp_body.topic) < sizeof rp_body.topic);
            else
                CHECK(err[0] != '\0');
        }
    }
out:
    free(whole);
    free(part);
    free(hw);
    free(hp);
    return 0;
}
