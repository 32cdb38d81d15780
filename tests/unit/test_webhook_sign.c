/* The webhook sink's Standard Webhooks signer (sinks/webhook_sign.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sinks/webhook_sign.h"

/* The published Standard Webhooks test vector (the reference libraries' own). */
static void test_signature_vector(void **state)
{
    unsigned char key[WEBHOOK_WHSEC_MAX];
    char sig[128];
    const char *body = "{\"test\": 2432232314}";
    int n;
    (void)state;

    n = webhook_whsec_decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, sizeof key);
    assert_int_equal(n, 24);
    assert_int_equal(webhook_signature(key, (size_t)n, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                       strlen(body), sig, sizeof sig), 0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* The prefix is optional, as in the reference implementation. */
    assert_int_equal(webhook_whsec_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, sizeof key), 24);
    /* Any change of id, timestamp or body changes the signature. */
    assert_int_equal(webhook_signature(key, 24, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body,
                                       strlen(body), sig, sizeof sig), 0);
    assert_string_not_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_int_equal(webhook_signature(key, 24, "msg", 1, body, strlen(body), sig, 10), -1);   /* too small */

    /* A signer keyed once gives the same answer every time (it is re-initialised per signature). */
    {
        struct webhook_signer *sg = webhook_signer_new(key, 24);
        assert_non_null(sg);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(webhook_signer_sign(sg, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                                                 sig, sizeof sig), 0);
            assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        }
        webhook_signer_free(sg);
    }
}

static void test_whsec_rejects(void **state)
{
    unsigned char key[WEBHOOK_WHSEC_MAX];
    (void)state;
    assert_int_equal(webhook_whsec_decode("whsec_", key, sizeof key), -1);
    assert_int_equal(webhook_whsec_decode("whsec_not*base64!", key, sizeof key), -1);
    assert_int_equal(webhook_whsec_decode("whsec_abc", key, sizeof key), -1);         /* not a multiple of 4 */
    assert_int_equal(webhook_whsec_decode("whsec_YQ==", key, sizeof key), 1);         /* "a" */
    assert_int_equal(key[0], 'a');
    assert_int_equal(webhook_whsec_decode("whsec_YQ=a", key, sizeof key), -1);       /* padding in the middle */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_vector),
        cmocka_unit_test(test_whsec_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
