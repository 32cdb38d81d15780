/* libFuzzer target: lib/ruleset. The input is a registry answer's "ruleSet" (any JSON); compiling
 * it must never crash or leak, a set is either unsupported (with a reason) or runnable, and
 * running it on a fixed record gives 1 or 0, with the refusing rule's name and a reason on 0. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_check.h"
#include "lib/ruleset.h"

static void noted(void *arg, const struct ruleset_failure *f)
{
    (void)arg;
    CHECK(f->rule && f->rule[0] && f->reason[0] && !f->refuse);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *record;
    json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    struct ruleset *rs;
    struct ruleset_failure f;
    char err[128];

    if (!record)
        record = json_loads("{\"id\": 7, \"email\": \"ann@example.com\", \"age\": 42, \"tags\": [\"vip\"],"
                            " \"address\": {\"zip\": \"0150\"}, \"phone\": null}", 0, NULL);
    if (!doc)
        return 0;
    rs = ruleset_compile(doc, err, sizeof err);
    json_decref(doc);
    if (!rs)
        return 0;   /* out of memory only */
    if (ruleset_unsupported(rs)) {
        CHECK(ruleset_unsupported(rs)[0] != '\0');
    } else {
        memset(&f, 0, sizeof f);
        int v = ruleset_check(rs, record, noted, NULL, &f);
        CHECK(v == 1 || v == 0);
        CHECK(v == 1 || (f.rule && f.rule[0] && f.reason[0] && f.refuse));
    }
    ruleset_free(rs);
    return 0;
}
