/* lib/ruleset: the read side of a Confluent ruleSet. Which rules run (CONDITION CEL in READ or
 * WRITEREAD, not disabled, enabled on clients), in which order (last first), what onFailure does
 * on read (NONE noted, anything else refuses, "write,read" pairs), fail closed on evaluation
 * errors, and every rule sluice cannot run making the set unsupported with a reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/ruleset.h"

static const char record_text[] =
    "{\"id\": 7, \"email\": \"ann@example.com\", \"age\": 42, \"country\": \"NO\", \"tags\": []}";

static struct ruleset *compile_text(const char *rule_set)
{
    char err[256] = "";
    json_error_t jerr;
    json_t *doc = json_loads(rule_set, 0, &jerr);
    struct ruleset *rs;

    if (!doc)
        fail_msg("test ruleSet is not JSON: %s", jerr.text);
    rs = ruleset_compile(doc, err, sizeof err);
    json_decref(doc);
    if (!rs)
        fail_msg("ruleset_compile: %s", err);
    return rs;
}

struct notes {
    char rules[8][64];
    size_t n;
};

static void note(void *arg, const struct ruleset_failure *f)
{
    struct notes *n = arg;
    if (n->n < 8)
        snprintf(n->rules[n->n++], sizeof n->rules[0], "%s", f->rule);
}

/* Runs @p rule_set on @p record; returns the verdict, the refusal in @p f, the noted rules in @p n. */
static int run(const char *rule_set, const char *record, struct ruleset_failure *f, struct notes *n)
{
    struct ruleset *rs = compile_text(rule_set);
    json_t *msg = json_loads(record, 0, NULL);
    int v;

    assert_non_null(msg);
    assert_null(ruleset_unsupported(rs));
    memset(f, 0, sizeof *f);
    memset(n, 0, sizeof *n);
    v = ruleset_check(rs, msg, note, n, f);
    if (v == 0) {   /* the name belongs to the set, freed here */
        static char name[64];
        snprintf(name, sizeof name, "%s", f->rule);
        f->rule = name;
    }
    json_decref(msg);
    ruleset_free(rs);
    return v;
}

#define CEL(name, mode, expr, extra) \
    "{\"name\": \"" name "\", \"kind\": \"CONDITION\", \"type\": \"CEL\", \"mode\": \"" mode "\", \"expr\": \"" expr "\"" extra "}"

static void test_passes_and_refuses(void **state)
{
    struct ruleset_failure f;
    struct notes n;
    (void)state;
    assert_int_equal(run("{\"domainRules\": [" CEL("adult", "READ", "message.age >= 18", "") "]}", record_text, &f, &n), 1);
    assert_int_equal(run("{\"domainRules\": [" CEL("old", "WRITEREAD", "message.age > 60", ", \"doc\": \"only seniors\"") "]}",
                         record_text, &f, &n), 0);
    assert_string_equal(f.rule, "old");
    assert_string_equal(f.reason, "rule \"old\" (only seniors) is false: message.age > 60");
    assert_int_equal(f.refuse, 1);
}

static void test_last_rule_runs_first(void **state)
{
    struct ruleset_failure f;
    struct notes n;
    (void)state;
    /* Both fail: the refusal names the last one, as Confluent's deserializers run READ rules. */
    assert_int_equal(run("{\"domainRules\": [" CEL("first", "READ", "false", "") ", " CEL("second", "READ", "false", "") "]}",
                         record_text, &f, &n), 0);
    assert_string_equal(f.rule, "second");
}

static void test_on_failure_none_is_noted(void **state)
{
    struct ruleset_failure f;
    struct notes n;
    (void)state;
    assert_int_equal(run("{\"domainRules\": [" CEL("hard", "READ", "message.age < 40", "") ", "
                         CEL("soft", "READ", "message.country == 'SE'", ", \"onFailure\": \"NONE\"") ", "
                         CEL("pair", "WRITEREAD", "message.id == 8", ", \"onFailure\": \"DLQ,NONE\"") "]}",
                         record_text, &f, &n), 0);
    assert_int_equal(n.n, 2);
    assert_string_equal(n.rules[0], "pair");   /* read part of "DLQ,NONE" is NONE */
    assert_string_equal(n.rules[1], "soft");
    assert_string_equal(f.rule, "hard");
    /* The read part of "NONE,DLQ" refuses. */
    assert_int_equal(run("{\"domainRules\": [" CEL("split", "WRITEREAD", "false", ", \"onFailure\": \"NONE,DLQ\"") "]}",
                         record_text, &f, &n), 0);
    assert_int_equal(n.n, 0);
}

static void test_evaluation_error_fails_closed(void **state)
{
    struct ruleset_failure f;
    struct notes n;
    (void)state;
    assert_int_equal(run("{\"domainRules\": [" CEL("tag", "READ", "message.tags[0] == 'vip'", "") "]}", record_text, &f, &n), 0);
    assert_string_equal(f.rule, "tag");
    assert_non_null(strstr(f.reason, "rule \"tag\" could not be evaluated ("));
    assert_non_null(strstr(f.reason, "): message.tags[0] == 'vip'"));
    assert_int_equal(run("{\"domainRules\": [" CEL("missing", "READ", "message.phone == ''", "") "]}", record_text, &f, &n), 0);
    assert_int_equal(run("{\"domainRules\": [" CEL("notbool", "READ", "message.age", "") "]}", record_text, &f, &n), 0);
}

static void test_guard(void **state)
{
    struct ruleset_failure f;
    struct notes n;
    (void)state;
    /* A false guard skips the rule; a true one judges. */
    assert_int_equal(run("{\"domainRules\": [" CEL("se_zip", "READ", "message.country == 'SE' ; false", "") "]}",
                         record_text, &f, &n), 1);
    assert_int_equal(run("{\"domainRules\": [" CEL("no_zip", "READ", "message.country == 'NO' ; false", "") "]}",
                         record_text, &f, &n), 0);
}

static void test_rules_not_for_readers(void **state)
{
    struct ruleset_failure f;
    struct notes n;
    (void)state;
    /* Write-only, migration modes, disabled, enabled elsewhere: none run; migrationRules neither. */
    assert_int_equal(run("{\"domainRules\": [" CEL("w", "WRITE", "false", "") ", " CEL("u", "UPGRADE", "false", "") ", "
                         CEL("ud", "UPDOWN", "false", "") ", " CEL("off", "READ", "false", ", \"disabled\": true") ", "
                         CEL("server", "READ", "false", ", \"enableAt\": \"SERVER\"") "],"
                         " \"migrationRules\": [{\"name\": \"m\", \"kind\": \"TRANSFORM\", \"type\": \"JSONATA\", \"mode\": \"UPGRADE\","
                         " \"expr\": \"$\"}]}", record_text, &f, &n), 1);
    struct ruleset *rs = compile_text("{\"enableAt\": \"SERVER\", \"domainRules\": [" CEL("x", "READ", "false", "") "]}");
    assert_int_equal(ruleset_count(rs), 0);
    ruleset_free(rs);
    rs = compile_text("{\"domainRules\": [{\"name\": \"dflt\", \"kind\": \"CONDITION\", \"type\": \"CEL\", \"expr\": \"true\"}]}");
    assert_int_equal(ruleset_count(rs), 1);   /* mode defaults to WRITEREAD */
    ruleset_free(rs);
}

static void assert_unsupported(const char *rule_set, const char *why)
{
    struct ruleset *rs = compile_text(rule_set);
    const char *got = ruleset_unsupported(rs);
    if (!got || strcmp(got, why) != 0)
        fail_msg("%s: unsupported \"%s\", expected \"%s\"", rule_set, got ? got : "(null)", why);
    ruleset_free(rs);
}

static void test_unsupported_rules(void **state)
{
    (void)state;
    assert_unsupported("{\"domainRules\": [{\"name\": \"enc\", \"kind\": \"TRANSFORM\", \"type\": \"ENCRYPT\", \"tags\": [\"PII\"]}]}",
                       "rule \"enc\": ENCRYPT rules change records (kind TRANSFORM), which sluice cannot do");
    /* kind defaults to TRANSFORM */
    assert_unsupported("{\"domainRules\": [{\"name\": \"t\", \"type\": \"CEL_FIELD\", \"expr\": \"value\"}]}",
                       "rule \"t\": CEL_FIELD rules change records (kind TRANSFORM), which sluice cannot do");
    assert_unsupported("{\"domainRules\": [{\"name\": \"f\", \"kind\": \"CONDITION\", \"type\": \"CEL_FIELD\", \"expr\": \"true\"}]}",
                       "rule \"f\": type CEL_FIELD cannot be run by sluice (it runs CEL conditions)");
    assert_unsupported("{\"domainRules\": [{\"name\": \"j\", \"kind\": \"CONDITION\", \"type\": \"JSONATA\", \"expr\": \"true\"}]}",
                       "rule \"j\": type JSONATA cannot be run by sluice (it runs CEL conditions)");
    assert_unsupported("{\"domainRules\": [" CEL("m", "READ", "message.tags.exists(t, t == 'x')", "") "]}",
                       "rule \"m\": its expression is outside the CEL that sluice runs: macro 'exists' is not supported at column 14");
    assert_unsupported("{\"domainRules\": [{\"kind\": \"CONDITION\", \"type\": \"CEL\", \"expr\": \"true\"}]}",
                       "domainRules[0]: a rule needs a name");
    assert_unsupported("{\"domainRules\": [{\"name\": \"n\", \"kind\": \"CONDITION\", \"type\": \"CEL\"}]}", "rule \"n\" has no expr");
    assert_unsupported("{\"domainRules\": {}}", "the ruleSet's domainRules and encodingRules must be arrays");
    assert_unsupported("{\"encodingRules\": [{\"name\": \"payload\", \"kind\": \"TRANSFORM\", \"type\": \"ENCRYPT_PAYLOAD\"}]}",
                       "encoding rule \"payload\" (ENCRYPT_PAYLOAD) cannot be run by sluice");
    /* A write-only rule sluice could not run does not matter to a reader. */
    struct ruleset *rs = compile_text("{\"domainRules\": [{\"name\": \"e\", \"kind\": \"TRANSFORM\", \"type\": \"ENCRYPT\", \"mode\": \"WRITE\"}]}");
    assert_null(ruleset_unsupported(rs));
    ruleset_free(rs);
}

static void test_too_many_rules(void **state)
{
    char text[RULESET_MAX_RULES * 100 + 64];
    size_t len = (size_t)snprintf(text, sizeof text, "{\"domainRules\": [");
    (void)state;
    for (int i = 0; i <= RULESET_MAX_RULES; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s" CEL("r%d", "READ", "true", ""), i ? ", " : "", i);
    snprintf(text + len, sizeof text - len, "]}");
    assert_unsupported(text, "the ruleSet has more than 64 domain rules");
}

static void test_no_rules(void **state)
{
    char err[64];
    struct ruleset *rs = ruleset_compile(NULL, err, sizeof err);
    struct ruleset_failure f;
    json_t *msg = json_object();
    (void)state;
    assert_non_null(rs);
    assert_int_equal(ruleset_count(rs), 0);
    assert_int_equal(ruleset_check(rs, msg, NULL, NULL, &f), 1);
    json_decref(msg);
    ruleset_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passes_and_refuses),
        cmocka_unit_test(test_last_rule_runs_first),
        cmocka_unit_test(test_on_failure_none_is_noted),
        cmocka_unit_test(test_evaluation_error_fails_closed),
        cmocka_unit_test(test_guard),
        cmocka_unit_test(test_rules_not_for_readers),
        cmocka_unit_test(test_unsupported_rules),
        cmocka_unit_test(test_too_many_rules),
        cmocka_unit_test(test_no_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
