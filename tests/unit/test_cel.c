/* lib/cel as contract rules use it: Confluent-style conditions over a customer record, every kind
 * of evaluation error (each -1, so that the caller fails closed where the official JS client lets
 * the record through), CEL's error absorption in && and ||, compile-time refusals with their
 * columns, the parse limits, the evaluation budget, and "guard ; expr" rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/cel.h"

static const char customer_text[] =
    "{\"id\": 7, \"name\": \"Ann\", \"email\": \"ann@example.com\", \"age\": 42, \"score\": 0.75,"
    " \"tags\": [\"vip\", \"eu\"], \"address\": {\"city\": \"Oslo\", \"zip\": \"0150\"}, \"phone\": null}";

/* The verdict of @p expr on @p record (JSON text) bound as `message`; the reason in @p err. */
static int verdict(const char *expr, const char *record, char *err, size_t errlen)
{
    json_t *value = json_loads(record, JSON_DECODE_ANY, NULL);
    assert_non_null(value);
    struct cel_program *p = cel_compile(expr, err, errlen);
    if (!p)
        fail_msg("%s does not compile: %s", expr, err);
    err[0] = '\0';
    int v = cel_eval_bool(p, "message", value, err, errlen);
    cel_program_free(p);
    json_decref(value);
    return v;
}

static void assert_verdict(const char *expr, int expected)
{
    char err[256];
    int v = verdict(expr, customer_text, err, sizeof err);
    if (v != expected)
        fail_msg("%s: %d (%s), expected %d", expr, v, err, expected);
}

static void assert_eval_error(const char *expr, const char *reason)
{
    char err[256];
    int v = verdict(expr, customer_text, err, sizeof err);
    if (v != -1 || strcmp(err, reason) != 0)
        fail_msg("%s: %d \"%s\", expected -1 \"%s\"", expr, v, err, reason);
}

static void assert_compile_error(const char *expr, const char *reason)
{
    char err[256];
    struct cel_program *p = cel_compile(expr, err, sizeof err);
    cel_program_free(p);
    if (p || strcmp(err, reason) != 0)
        fail_msg("%.60s: \"%s\", expected \"%s\"", expr, p ? "(compiled)" : err, reason);
}

static void test_confluent_rules(void **state)
{
    (void)state;
    assert_verdict("message.age >= 0 && message.email.contains(\"@\")", 1);
    assert_verdict("message.age >= 50 && message.email.contains(\"@\")", 0);
    assert_verdict("message.email.matches(\"^[^@]+@[^@]+\\\\.[a-z]+$\")", 1);
    assert_verdict("message.name.matches('^[a-z]+$')", 0);
    assert_verdict("has(message.address) && message.address.city.startsWith('O')", 1);
    assert_verdict("has(message.address.country)", 0);
    assert_verdict("has(message.phone) && message.phone == null", 1);
    assert_verdict("'vip' in message.tags && !('gold' in message.tags)", 1);
    assert_verdict("'city' in message.address", 1);
    assert_verdict("size(message.tags) <= 3 && message.tags.size() == 2 && size(message) == 8", 1);
    assert_verdict("message.score < 1.0 && message.score * 2.0 == 1.5", 1);
    assert_verdict("message.age > 18 ? message.score > 0.5 : true", 1);
    assert_verdict("message.address.zip.size() == 4 && message.address['zip'].endsWith('50')", 1);
    assert_verdict("message.id == 7u && message.id == 7.0 && message.id < 7.5", 1); /* numbers across types */
    assert_verdict("message.tags[0] == 'vip' && message.tags[1u] == 'eu'", 1);
    assert_verdict("message.address.`zip` == '0150' && has(message.`address`.city)", 1);
    assert_verdict("message.age % 5 == 2 && message.age / 5 == 8 && -message.age == -42", 1);
    assert_verdict("string(message.age) + '!' == '42!' && int('42') == message.age && double(message.age) == 42.0", 1);
    assert_verdict("{'a': 1, 2: 'b'}[2] == 'b' && [1, 2] + [3] == [1, 2, 3]", 1);
    assert_verdict("r'\\d' == '\\\\d' && '''a\"b''' == 'a\"b' && b'\\xff'.size() == 1 && 'é'.size() == 1", 1);
    assert_verdict("18446744073709551615u > 0u && -9223372036854775808 < 0 && 0x10 == 16", 1);
}

static void test_every_error_fails_closed(void **state)
{
    (void)state;
    assert_eval_error("message.emial.contains('@')", "no such key: emial");
    assert_eval_error("message['nope'] == 1", "no such key: nope");
    assert_eval_error("message.age / 0 > 1", "division by zero");
    assert_eval_error("message.age % 0 > 1", "modulus by zero");
    assert_eval_error("message.age && true", "expected bool, got int");
    assert_eval_error("!message.name", "expected bool, got string");
    assert_eval_error("message.name ? true : false", "expected bool, got string");
    assert_eval_error("message.age * 9223372036854775807 > 0", "overflow");
    assert_eval_error("-(-9223372036854775807 - 1) > 0", "overflow");
    assert_eval_error("0u - 1u > 0u", "overflow");
    assert_eval_error("message.age", "result is int, not bool");
    assert_eval_error("message.name", "result is string, not bool");
    assert_eval_error("message.address", "result is map, not bool");
    assert_eval_error("message.phone", "result is null_type, not bool");
    assert_eval_error("message.age + 1.0 > 0.0", "no matching overload for '+' applied to (int, double)");
    assert_eval_error("message.age < 'x'", "no matching overload for '<' applied to (int, string)");
    assert_eval_error("message.age.contains('4')", "no matching overload for 'contains' applied to (int, string)");
    assert_eval_error("size(message.age) > 0", "no matching overload for 'size' applied to (int)");
    assert_eval_error("message.tags[5] == 'x'", "index out of range: 5");
    assert_eval_error("message.tags[-1] == 'x'", "index out of range: -1");
    assert_eval_error("message.age.x == 1", "type 'int' does not support field selection");
    assert_eval_error("has(message.age.x)", "type 'int' does not support field selection");
    assert_eval_error("customer.age > 0", "undeclared reference to 'customer'");
    /* patterns made at evaluation time (literal ones are refused at compile time) */
    assert_eval_error("message.name.matches(message.name + '(')", "invalid regex: missing closing parenthesis at offset 4");
    assert_eval_error("message.name.matches('(a)\\\\' + '1')", "invalid regex: backreferences are not supported");
    assert_eval_error("message.name.matches('a(?' + '=b)')", "invalid regex: lookaround is not supported");
    assert_eval_error("int('x') > 0", "cannot convert string to int");
    assert_eval_error("int(1e19) > 0", "int range error");
    assert_eval_error("uint(-1) > 0u", "uint range error");
    assert_eval_error("{'a': 1, 'a': 2}.size() == 1", "repeated key in map literal");
    assert_eval_error("{1.5: 1}.size() == 1", "unsupported map key type: double");

    /* no value bound at all */
    char err[128];
    struct cel_program *p = cel_compile("message.age > 0", err, sizeof err);
    assert_non_null(p);
    assert_int_equal(cel_eval_bool(p, "message", NULL, err, sizeof err), -1);
    assert_string_equal(err, "undeclared reference to 'message'");
    cel_program_free(p);
}

static void test_error_absorption(void **state)
{
    (void)state;
    assert_verdict("false && message.nope", 0);
    assert_verdict("message.nope && false", 0);
    assert_verdict("true || message.nope", 1);
    assert_verdict("message.nope || true", 1);
    assert_verdict("message.age == 42 || 1 / 0 == 1", 1);
    assert_verdict("message.name && false", 0); /* a non-bool is absorbed like an error */
    assert_eval_error("message.nope && true", "no such key: nope");
    assert_eval_error("message.nope || false", "no such key: nope");
    assert_eval_error("message.nope || message.other", "no such key: nope");  /* the first error */
    assert_eval_error("true && 1 / 0 == 1", "division by zero");
    assert_verdict("message.age > 100 ? message.nope : true", 1);             /* the branch not taken */
}

static void test_compile_errors(void **state)
{
    (void)state;
    assert_compile_error("message.tags.map(t, t)", "macro 'map' is not supported at column 14");
    assert_compile_error("message.tags.all(t, t != '')", "macro 'all' is not supported at column 14");
    assert_compile_error("message.tags.exists(t, t == 'vip')", "macro 'exists' is not supported at column 14");
    assert_compile_error("message.age >", "unexpected end of expression at column 14");
    assert_compile_error("message.age = 1", "unexpected '=' at column 13");
    assert_compile_error("type(message) == map", "function 'type' is not supported at column 1");
    assert_compile_error("timestamp('2024-01-01T00:00:00Z') > message.at", "function 'timestamp' is not supported at column 1");
    assert_compile_error("1 + int", "type value 'int' is not supported at column 5");
    assert_compile_error("\"abc", "unterminated string literal at column 1");
    assert_compile_error("'\\q'", "invalid escape sequence at column 2");
    assert_compile_error("message.if", "reserved identifier 'if' at column 9");
    assert_compile_error("9223372036854775808 > 0", "integer literal out of range at column 1");
    assert_compile_error("has(message)", "has() needs a field selection argument at column 1");
    assert_compile_error("Foo{a: 1}", "message construction is not supported at column 4");
    assert_compile_error("message.name.foo()", "method 'foo' is not supported at column 14");
    assert_compile_error("size()", "size() takes 1 argument at column 1");
    assert_compile_error("message.age > 1 ? true", "expected ':' at column 23");
    assert_compile_error("[1, 2", "expected ']' at column 6");
    assert_compile_error("message..age", "unexpected character '.' at column 9");
    assert_compile_error("", "unexpected end of expression at column 1");
    assert_compile_error("message.name.matches('(')", "invalid regex: missing closing parenthesis at offset 1 at column 22");
    assert_compile_error("matches(message.name, '(a)\\\\1')", "invalid regex: backreferences are not supported at column 23");
    assert_compile_error("message.name.matches('a(?<!b)')", "invalid regex: lookaround is not supported at column 22");
    assert_compile_error("message.`zip", "unterminated or empty quoted field name at column 9");
    assert_compile_error("12abc > 1", "invalid numeric literal at column 3");
}

static void test_limits(void **state)
{
    (void)state;
    char *text = malloc(CEL_MAX_EXPR_LEN + 2);
    assert_non_null(text);
    /* length */
    memset(text, ' ', CEL_MAX_EXPR_LEN + 1);
    memcpy(text, "true", 4);
    text[CEL_MAX_EXPR_LEN + 1] = '\0';
    assert_compile_error(text, "expression longer than 8192 bytes at column 1");
    text[CEL_MAX_EXPR_LEN] = '\0';
    char err[128];
    struct cel_program *p = cel_compile(text, err, sizeof err);
    assert_non_null(p); /* exactly at the limit */
    cel_program_free(p);
    /* nesting: 64 parentheses compile, 65 do not */
    for (int depth = 64; depth <= 65; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            text[n++] = '(';
        text[n++] = '1';
        for (int i = 0; i < depth; i++)
            text[n++] = ')';
        memcpy(text + n, " == 1", 6);
        p = cel_compile(text, err, sizeof err);
        if (depth == 64) {
            assert_non_null(p);
            assert_int_equal(cel_eval_bool(p, "message", NULL, err, sizeof err), 1);
        } else {
            assert_null(p);
            assert_string_equal(err, "expression nests deeper than 64 at column 66");
        }
        cel_program_free(p);
    }
    /* a chain of 300 additions is a tree 300 deep */
    size_t n = 0;
    for (int i = 0; i < 300; i++)
        n += (size_t)sprintf(text + n, "%s1", i ? "+" : "");
    assert_compile_error(text, "expression nests deeper than 256 at column 512");
    free(text);

    /* the evaluation budget: each + copies a 100 KB string from the record */
    json_t *big = json_object();
    char *s = malloc(100001);
    assert_non_null(s);
    memset(s, 'x', 100000);
    s[100000] = '\0';
    json_object_set_new(big, "s", json_string(s));
    free(s);
    p = cel_compile("size(message.s + message.s + message.s + message.s + message.s + message.s + message.s"
                    " + message.s + message.s + message.s + message.s + message.s + message.s) > 0",
                    err, sizeof err);
    assert_non_null(p);
    assert_int_equal(cel_eval_bool(p, "message", big, err, sizeof err), -1);
    assert_string_equal(err, "evaluation needs more than 1048576 bytes");
    cel_program_free(p);
    json_decref(big);

    /* catastrophic backtracking stops at PCRE2's match limit */
    assert_eval_error("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'.matches('^(a|a)*$')", "regex evaluation failed (match limit)");
}

static void test_guarded_rules(void **state)
{
    (void)state;
    char err[256];
    json_t *customer = json_loads(customer_text, 0, NULL), *minor = json_pack("{s:i, s:s}", "age", 15, "email", "kid");
    assert_non_null(customer);
    assert_non_null(minor);

    struct cel_rule *r = cel_rule_compile("message.age >= 18 ; message.email.contains('@')", err, sizeof err);
    assert_non_null(r);
    assert_int_equal(cel_rule_check(r, customer, err, sizeof err), 1);
    assert_int_equal(cel_rule_check(r, minor, err, sizeof err), 1); /* guard false: the rule is skipped */
    cel_rule_free(r);

    r = cel_rule_compile("message.age < 18 ; message.email.contains('@')", err, sizeof err);
    assert_non_null(r);
    assert_int_equal(cel_rule_check(r, minor, err, sizeof err), 0);
    cel_rule_free(r);

    r = cel_rule_compile("message.nope ; true", err, sizeof err);
    assert_non_null(r);
    assert_int_equal(cel_rule_check(r, minor, err, sizeof err), -1);
    assert_string_equal(err, "guard: no such key: nope");
    cel_rule_free(r);

    r = cel_rule_compile("message.email != 'a;b' && message.name != \"c;\"", err, sizeof err);
    assert_non_null(r); /* ';' inside literals does not split */
    assert_int_equal(cel_rule_check(r, customer, err, sizeof err), 1);
    cel_rule_free(r);

    r = cel_rule_compile("  ; message.age == 42", err, sizeof err);
    assert_non_null(r); /* an empty guard is no guard */
    assert_int_equal(cel_rule_check(r, customer, err, sizeof err), 1);
    cel_rule_free(r);

    assert_null(cel_rule_compile("message.age > ; true", err, sizeof err));
    assert_string_equal(err, "unexpected end of expression at column 15");
    assert_null(cel_rule_compile("true ; message.tags.map(t, t)", err, sizeof err));
    assert_string_equal(err, "macro 'map' is not supported at column 21");
    json_decref(customer);
    json_decref(minor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confluent_rules),
        cmocka_unit_test(test_every_error_fails_closed),
        cmocka_unit_test(test_error_absorption),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_guarded_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
