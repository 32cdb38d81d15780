/* The redis sink's reply reader: hiredis' parser with the objects in an arena. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sinks/redis_reply.h"

static redisReply *next_reply(redisReader *r)
{
    void *reply = NULL;

    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_OK);
    return reply;
}

/* Every kind of reply, nested, fed at once and then one byte at a time. */
static void test_every_kind(void **state)
{
    static const char wire[] = "*5\r\n$5\r\nhel\0o\r\n:-42\r\n*2\r\n+QUEUED\r\n$-1\r\n*0\r\n-WRONGTYPE Operation\r\n"
                               "+OK\r\n*-1\r\n";
    (void)state;

    for (int bytewise = 0; bytewise < 2; bytewise++) {
        redisReader *r = redis_reply_reader_new();
        redisReply *reply;
        assert_non_null(r);
        if (bytewise) {
            for (size_t i = 0; i + 1 < sizeof wire - 1; i++) {
                assert_int_equal(redisReaderFeed(r, wire + i, 1), REDIS_OK);
                if (i < 10)
                    assert_null(next_reply(r));   /* not complete yet */
            }
            assert_int_equal(redisReaderFeed(r, wire + sizeof wire - 2, 1), REDIS_OK);
        } else {
            assert_int_equal(redisReaderFeed(r, wire, sizeof wire - 1), REDIS_OK);
        }
        reply = next_reply(r);
        assert_non_null(reply);
        assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
        assert_int_equal(reply->elements, 5);
        assert_int_equal(reply->element[0]->type, REDIS_REPLY_STRING);
        assert_int_equal(reply->element[0]->len, 5);
        assert_memory_equal(reply->element[0]->str, "hel\0o", 6);   /* with its terminator */
        assert_int_equal(reply->element[1]->type, REDIS_REPLY_INTEGER);
        assert_int_equal(reply->element[1]->integer, -42);
        assert_int_equal(reply->element[2]->elements, 2);
        assert_int_equal(reply->element[2]->element[0]->type, REDIS_REPLY_STATUS);
        assert_string_equal(reply->element[2]->element[0]->str, "QUEUED");
        assert_int_equal(reply->element[2]->element[1]->type, REDIS_REPLY_NIL);
        assert_int_equal(reply->element[3]->type, REDIS_REPLY_ARRAY);
        assert_int_equal(reply->element[3]->elements, 0);
        assert_int_equal(reply->element[4]->type, REDIS_REPLY_ERROR);
        assert_string_equal(reply->element[4]->str, "WRONGTYPE Operation");
        redis_reply_release(r);
        reply = next_reply(r);
        assert_int_equal(reply->type, REDIS_REPLY_STATUS);
        assert_string_equal(reply->str, "OK");
        redis_reply_release(r);
        reply = next_reply(r);
        assert_int_equal(reply->type, REDIS_REPLY_NIL);
        redis_reply_release(r);
        assert_null(next_reply(r));
        redis_reply_reader_free(r);
    }
}

/* A reply larger than the arena's block (several blocks), then small ones in the kept memory. */
static void test_large_reply(void **state)
{
    enum { N = 20000 };
    size_t cap = 16 + (size_t)N * 24, len = 0;
    char *wire = malloc(cap);
    redisReader *r = redis_reply_reader_new();
    redisReply *reply;
    (void)state;

    assert_non_null(wire);
    assert_non_null(r);
    len += (size_t)snprintf(wire + len, cap - len, "*%d\r\n", N);
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(wire + len, cap - len, "$6\r\nf%05d\r\n", i);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(redisReaderFeed(r, wire, len), REDIS_OK);
        reply = next_reply(r);
        assert_non_null(reply);
        assert_int_equal(reply->elements, N);
        assert_string_equal(reply->element[0]->str, "f00000");
        assert_string_equal(reply->element[N - 1]->str, "f19999");
        redis_reply_release(r);
        assert_int_equal(redisReaderFeed(r, ":7\r\n", 4), REDIS_OK);
        reply = next_reply(r);
        assert_int_equal(reply->integer, 7);
        redis_reply_release(r);
    }
    /* a reply half read when the reader goes: its objects go with the arena */
    assert_int_equal(redisReaderFeed(r, wire, len / 2), REDIS_OK);
    assert_null(next_reply(r));
    redis_reply_reader_free(r);
    redis_reply_reader_free(NULL);
    free(wire);
}

/* A protocol error is hiredis' verdict as before. */
static void test_protocol_error(void **state)
{
    redisReader *r = redis_reply_reader_new();
    void *reply = NULL;
    (void)state;

    assert_int_equal(redisReaderFeed(r, "*2\r\n:1\r\n!x\r\n", 12), REDIS_OK);
    assert_int_equal(redisReaderGetReply(r, &reply), REDIS_ERR);
    assert_null(reply);
    assert_true(strstr(r->errstr, "Protocol error") != NULL);
    redis_reply_reader_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind),
        cmocka_unit_test(test_large_reply),
        cmocka_unit_test(test_protocol_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
