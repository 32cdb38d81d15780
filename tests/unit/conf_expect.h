/* The unit tests' check of a configuration that must not load: conf_load's messages, exactly
 * and in order (test_conf, test_cfg_yaml). Include after cmocka.h. */
#ifndef SLUICE_TEST_CONF_EXPECT_H
#define SLUICE_TEST_CONF_EXPECT_H

#include <stdio.h>
#include <string.h>

#include "router/conf.h"

/* Loads @p file, which must fail with exactly the messages @p want, in that order. */
static void expect_errors(const char *file, const char *const *want, size_t n)
{
    struct cfg_errors errs = { 0 };
    struct conf *conf = conf_load(file, &errs);

    if (conf) {
        conf_free(conf);
        fail_msg("%s loaded, want %zu errors", file, n);
    }
    for (size_t i = 0; i < errs.n || i < n; i++) {
        const char *got = i < errs.n ? errs.msgs[i] : "(none)", *exp = i < n ? want[i] : "(none)";

        if (strcmp(got, exp) != 0) {
            for (size_t k = 0; k < errs.n; k++)
                print_message("  got: %s\n", errs.msgs[k]);
            cfg_errors_clear(&errs);
            fail_msg("%s: message %zu is\n  %s\nwant\n  %s", file, i, got, exp);
        }
    }
    cfg_errors_clear(&errs);
}

#define EXPECT_ERRORS(file, ...)                                            \
    do {                                                                    \
        static const char *const want_[] = { __VA_ARGS__ };                 \
        expect_errors((file), want_, sizeof want_ / sizeof *want_);         \
    } while (0)

#endif
