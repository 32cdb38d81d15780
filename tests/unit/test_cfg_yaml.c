/* YAML configuration files: the scalars of YAML 1.2's core schema, the refusals (syntax,
 * duplicate keys, anchors, depth, tags), messages located at the YAML line:column, and a YAML
 * configuration loading into the same configuration as its JSON form. Fixtures are in
 * fixtures/yaml/ (and fixtures/conf/valid/, the JSON form). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/cfg_yaml.h"
#include "router/conf.h"
#include "sinks/sink.h"
#include "conf_expect.h"

/* Loads @p yaml, which must give the same tree as the JSON text @p json. */
static void expect_tree(const char *yaml, const char *json)
{
    struct cfg_marks marks;
    struct cfg_yaml_error err;
    json_error_t jerr;
    json_t *got = cfg_yaml_load(yaml, strlen(yaml), &marks, &err);
    json_t *want = json_loads(json, JSON_DECODE_ANY, &jerr);
    char *shown;

    if (!want)
        fail_msg("bad test JSON %s: %s", json, jerr.text);
    if (!got)
        fail_msg("%s refused: %d:%d: %s", yaml, err.line, err.column, err.reason);
    if (!json_equal(got, want)) {
        shown = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
        print_message("got %s\n", shown);
        free(shown);
        fail_msg("%s: not %s", yaml, json);
    }
    json_decref(got);
    json_decref(want);
    cfg_marks_free(&marks);
}

/* Loads @p yaml, which must be refused at @p line:@p column with @p reason. */
static void expect_refused(const char *yaml, size_t len, int line, int column, const char *reason)
{
    struct cfg_marks marks;
    struct cfg_yaml_error err;
    json_t *got = cfg_yaml_load(yaml, len, &marks, &err);

    if (got) {
        json_decref(got);
        cfg_marks_free(&marks);
        fail_msg("%s loaded, want %s", yaml, reason);
    }
    assert_null(marks.v);
    assert_int_equal(marks.n, 0);
    if (strcmp(err.reason, reason) != 0 || err.line != line || err.column != column)
        fail_msg("%s: refused at %d:%d: %s\nwant %d:%d: %s", yaml, err.line, err.column,
                 err.reason, line, column, reason);
}

#define REFUSED(yaml, line, column, reason) expect_refused((yaml), strlen(yaml), (line), (column), (reason))

static void test_core_schema(void **state)
{
    (void)state;
    expect_tree("a: null\nb: Null\nc: NULL\nd: ~\ne:\n", "{\"a\":null,\"b\":null,\"c\":null,\"d\":null,\"e\":null}");
    expect_tree("[true, True, TRUE, false, False, FALSE]", "[true,true,true,false,false,false]");
    expect_tree("[0, 42, -7, +7, 007, 0o17, 0x1F, 0xff, 9223372036854775807, -9223372036854775808]",
                "[0,42,-7,7,7,15,31,255,9223372036854775807,-9223372036854775808]");
    expect_tree("[1.5, -0.25, .5, 1., 1e3, 2.5E-1, +1.0]", "[1.5,-0.25,0.5,1.0,1000.0,0.25,1.0]");
    /* the Norway problem: YAML 1.1's booleans are strings, as are near-numbers */
    expect_tree("[yes, no, on, off, y, n, Yes, NO, On, OFF]",
                "[\"yes\",\"no\",\"on\",\"off\",\"y\",\"n\",\"Yes\",\"NO\",\"On\",\"OFF\"]");
    expect_tree("[1_000, 0b101, 0o8, 0x, 1e, 12:30, .5.5, nulls, truex, '', \"\"]",
                "[\"1_000\",\"0b101\",\"0o8\",\"0x\",\"1e\",\"12:30\",\".5.5\",\"nulls\",\"truex\",\"\",\"\"]");
    /* quoted and block scalars are strings */
    expect_tree("['true', \"null\", '42', \"1.5\", \"~\"]", "[\"true\",\"null\",\"42\",\"1.5\",\"~\"]");
    expect_tree("a: |\n  line one\n  line two\nb: >\n  folded\n  text\n",
                "{\"a\":\"line one\\nline two\\n\",\"b\":\"folded text\\n\"}");
    expect_tree("s: \"tab\\there \\u00e9 \\\"q\\\"\"", "{\"s\":\"tab\\there \\u00e9 \\\"q\\\"\"}");
    /* the core tags decide; the non-specific tag ! makes a string */
    expect_tree("[!!str 42, !!str true, !!int '42', !!float '2', !!float 1.5, !!bool 'false', !!null '', ! 12]",
                "[\"42\",\"true\",42,2.0,1.5,false,null,\"12\"]");
    expect_tree("!!map {a: !!seq [1]}", "{\"a\":[1]}");
    /* keys are strings as written; comments anywhere */
    expect_tree("# top\n1: a  # one\nnull: b\ntrue: c\n\"x.y\": d\n", "{\"1\":\"a\",\"null\":\"b\",\"true\":\"c\",\"x.y\":\"d\"}");
    /* no document, or only comments: null */
    expect_tree("", "null");
    expect_tree("# nothing\n", "null");
    expect_tree("---\na: 1\n...\n", "{\"a\":1}");
}

static void test_refused(void **state)
{
    char deep[2 * CFG_YAML_DEPTH_MAX + 4];

    (void)state;
    REFUSED("a: 1\nb: [1, 2\nc: 3\n", 3, 2,
            "YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 4)");
    REFUSED("a:\n  b: 1\n c: 2\n", 3, 2,
            "YAML syntax error: did not find expected key (while parsing a block mapping at line 1, column 1)");
    REFUSED("kafka:\n  acks: 1\n  # again\n  acks: all\n", 4, 3,
            "duplicate key \"acks\" (first at line 2, column 3)");
    REFUSED("a: {x: 1, x: 2}", 1, 11, "duplicate key \"x\" (first at line 1, column 5)");
    REFUSED("base: &b {x: 1}\nother: *b\n", 1, 7, "anchors (&b) are not supported: write the value out");
    REFUSED("a: *b\n", 1, 4, "aliases (*b) are not supported: write the value out");
    REFUSED("? [a, b]\n: 1\n", 1, 3, "a key must be a string, not a sequence");
    REFUSED("{a: 1}: 2\n", 1, 1, "a key must be a string, not a mapping");
    REFUSED("!!int 1: 2\n", 1, 1, "a key must be a string, not tagged tag:yaml.org,2002:int");
    REFUSED("a: !secret x\n", 1, 4, "tag !secret is not supported (only the core schema's !!str, "
                                    "!!null, !!bool, !!int, !!float, !!seq and !!map)");
    REFUSED("a: !!set {x}\n", 1, 4, "tag tag:yaml.org,2002:set is not supported on a mapping");
    REFUSED("a: !!int x\n", 1, 4, "not a valid !!int");
    REFUSED("a: !!float 0x1F\n", 1, 4, "not a valid !!float");
    REFUSED("a: !!bool yes\n", 1, 4, "not a valid !!bool");
    REFUSED("a: !!null 0\n", 1, 4, "not a valid !!null");
    REFUSED("a: 9223372036854775808\n", 1, 4, "integer out of range (64 bits)");
    REFUSED("a: -9223372036854775809\n", 1, 4, "integer out of range (64 bits)");
    REFUSED("a: .inf\n", 1, 4, "number out of range: JSON has no infinity or NaN");
    REFUSED("a: 1e999\n", 1, 4, "number out of range: JSON has no infinity or NaN");
    REFUSED("a: \"x\\0y\"\n", 1, 4, "a string holds a NUL character");
    REFUSED("\"a\\0\": 1\n", 1, 1, "a key holds a NUL character");
    REFUSED("a: 1\n---\nb: 2\n", 2, 1, "a second document: a configuration file holds one");
    /* columns count characters; the reader's errors say their byte */
    REFUSED("é: \"\\0\"\n", 1, 4, "a string holds a NUL character");
    REFUSED("a: 1\nb: \xff\n", 2, 4, "YAML syntax error: invalid leading UTF-8 octet (byte 8)");
    /* nesting: the limit holds, one more is refused */
    memset(deep, '[', CFG_YAML_DEPTH_MAX);
    memset(deep + CFG_YAML_DEPTH_MAX, ']', CFG_YAML_DEPTH_MAX);
    deep[2 * CFG_YAML_DEPTH_MAX] = '\0';
    {
        struct cfg_marks marks;
        struct cfg_yaml_error err;
        json_t *v = cfg_yaml_load(deep, strlen(deep), &marks, &err);

        assert_non_null(v);
        assert_int_equal(marks.n, CFG_YAML_DEPTH_MAX);
        json_decref(v);
        cfg_marks_free(&marks);
    }
    memset(deep, '[', CFG_YAML_DEPTH_MAX + 1);
    memset(deep + CFG_YAML_DEPTH_MAX + 1, ']', CFG_YAML_DEPTH_MAX + 1);
    deep[2 * CFG_YAML_DEPTH_MAX + 2] = '\0';
    REFUSED(deep, 1, CFG_YAML_DEPTH_MAX + 1, "nested deeper than 256 levels");
}

/* cfg_error on the YAML @p yaml at @p path must read "t.yaml:<want>". */
static void expect_located(const char *yaml, const char *path, const char *want)
{
    struct cfg_marks marks;
    struct cfg_yaml_error err;
    struct cfg_errors errs = { 0 };
    json_t *root = cfg_yaml_load(yaml, strlen(yaml), &marks, &err);
    struct cfg_doc doc = { .file = "t.yaml", .text = yaml, .len = strlen(yaml), .marks = &marks };
    char full[512];

    assert_non_null(root);
    cfg_error(&errs, &doc, path, "bad");
    snprintf(full, sizeof full, "t.yaml%s", want);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0], full);
    cfg_errors_clear(&errs);
    json_decref(root);
    cfg_marks_free(&marks);
}

static void test_located(void **state)
{
    static const char *const yaml =
        "# a comment first\n"
        "kafka:\n"
        "  bootstrap.servers: a:9092\n"
        "sinks:\n"
        "  - name: one\n"
        "    batch: {max_records: 5}\n"
        "  -\n"
        "    name: two\n"
        "    batch:\n"
        "      max_records: \"x\"   # wrong type\n"
        "    topics: [a, b]\n"
        "  - [nested]\n"
        "\"a\\\"b\": 1\n"
        "é: {ü: 1}\n";

    (void)state;
    /* a member at its key, an element where it begins, the root at its first key */
    expect_located(yaml, "sinks[1].batch.max_records", ":10:7: sinks[1].batch.max_records: bad");
    expect_located(yaml, "sinks[0].batch.max_records", ":6:13: sinks[0].batch.max_records: bad");
    expect_located(yaml, "sinks[1].topics[1]", ":11:17: sinks[1].topics[1]: bad");
    expect_located(yaml, "sinks[1]", ":8:5: sinks[1]: bad");
    expect_located(yaml, "sinks[2][0]", ":12:6: sinks[2][0]: bad");
    expect_located(yaml, "kafka[\"bootstrap.servers\"]", ":3:3: kafka[\"bootstrap.servers\"]: bad");
    expect_located(yaml, "[\"a\\\"b\"]", ":13:1: [\"a\\\"b\"]: bad");
    expect_located(yaml, "é.ü", ":14:5: é.ü: bad");
    expect_located(yaml, "", ":2:1: bad");
    /* what the text lacks points at its nearest ancestor there */
    expect_located(yaml, "sinks[1].batch.linger_ms", ":9:5: sinks[1].batch.linger_ms: bad");
    expect_located(yaml, "sinks[7].name", ":4:1: sinks[7].name: bad");
    expect_located(yaml, "kafka[0]", ":2:1: kafka[0]: bad");
    expect_located(yaml, "sinks.name", ":4:1: sinks.name: bad");
}

#define FIX "fixtures/yaml/"

static void test_conf_errors(void **state)
{
    (void)state;
    EXPECT_ERRORS(FIX "bad/main.yaml",
                  FIX "bad/main.yaml:4:1: shutdown_timeout_ms: expected an integer",
                  FIX "bad/main.yaml:10:7: sinks[0].batch.max_records: expected an integer",
                  FIX "bad/main.yaml:14:7: sinks[0].file.fsync: expected true or false "
                      "(YAML 1.2 reads yes, no, on and off as strings)",
                  FIX "bad/main.yaml:15:5: sinks[1]: missing required key \"name\"",
                  FIX "bad/main.yaml:17:26: sinks[1].file.fsynk: unknown key \"fsynk\"; "
                      "did you mean \"fsync\"?",
                  FIX "bad/sinks.d/orders.yaml:2:1: name: duplicate sink name \"orders\" "
                      "(first declared at " FIX "bad/main.yaml:6)");
    /* a syntax error stops the file there; a JSON file is still JSON */
    EXPECT_ERRORS(FIX "syntax.yml",
                  FIX "syntax.yml:3:10: YAML syntax error: mapping values are not allowed in this context");
    EXPECT_ERRORS(FIX "yaml-in.json",
                  FIX "yaml-in.json:1:5: JSON syntax error: '[' or '{' expected near 'kafka'");
}

/* The YAML form of fixtures/conf/valid/ loads into the same configuration. */
static void test_same_as_json(void **state)
{
    struct cfg_errors errs = { 0 };
    struct conf *yaml, *json;

    (void)state;
    setenv("SLUICE_TEST_TOKEN", "tok-123", 1);
    yaml = conf_load(FIX "valid/main.yaml", &errs);
    json = conf_load("fixtures/conf/valid/main.json", &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_message("%s\n", errs.msgs[i]);
    assert_int_equal(errs.n, 0);
    assert_non_null(yaml);
    assert_non_null(json);
    assert_true(json_equal(yaml->kafka, json->kafka));
    assert_string_equal(yaml->admin_token, "tok-123");
    assert_string_equal(yaml->admin_token, json->admin_token);
    assert_int_equal(yaml->log_level, json->log_level);
    assert_int_equal(yaml->nsinks, 3);
    assert_int_equal(json->nsinks, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(yaml->sinks[i]->name, json->sinks[i]->name);
        assert_string_equal(yaml->sinks[i]->conf_path, json->sinks[i]->conf_path);
        assert_true(conf_sink_same(yaml->sinks[i], json->sinks[i]));
    }
    assert_string_equal(yaml->sinks[1]->conf_file, FIX "valid/sinks.d/a-audit.yml");
    assert_string_equal(yaml->sinks[2]->conf_file, FIX "valid/sinks.d/b-customers.yaml");
    conf_free(yaml);
    conf_free(json);
    unsetenv("SLUICE_TEST_TOKEN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_schema),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_located),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_same_as_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
