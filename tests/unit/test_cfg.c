/* Declared options: applying a table, error locations, paths, suggestions, the reference. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cfg.h"

/* ---- cfg_locate ---- */

static const char tricky[] =
    "{\n"
    "  \"a\\\"b[\": {\"x.y\": [1, [2, \"]\\\"}\"], {\"k\": true}]},\n"
    "  \"arr\": [ [ ], [ [ \"deep\" ] ] ],\n"
    "  \"esc\\u0041\": null,\n"
    "  \"\xc3\xa9\": \"\xc3\xbc\", \"after\": -1.5e3,\n"
    "  \"\\ud83d\\ude00\": {\"\": 0}\n"
    "}\n";

static void locate_ok(const char *path, int want_line, int want_col)
{
    int line = 0, col = 0;

    if (cfg_locate(tricky, strlen(tricky), path, &line, &col) != 0)
        fail_msg("path %s not found", path);
    if (line != want_line || col != want_col)
        fail_msg("path %s at %d:%d, want %d:%d", path, line, col, want_line, want_col);
}

static void locate_missing(const char *text, const char *path)
{
    int line = 0, col = 0;

    if (cfg_locate(text, strlen(text), path, &line, &col) == 0)
        fail_msg("path %s found at %d:%d, want not found", path, line, col);
}

static void test_locate_tricky(void **state)
{
    (void)state;
    locate_ok("", 1, 1);
    locate_ok("[\"a\\\"b[\"]", 2, 12);
    locate_ok("[\"a\\\"b[\"][\"x.y\"]", 2, 20);
    locate_ok("[\"a\\\"b[\"][\"x.y\"][0]", 2, 21);
    locate_ok("[\"a\\\"b[\"][\"x.y\"][1][1]", 2, 28);    /* the string "]\"}" */
    locate_ok("[\"a\\\"b[\"][\"x.y\"][2]", 2, 37);
    locate_ok("[\"a\\\"b[\"][\"x.y\"][2].k", 2, 43);
    locate_ok("arr", 3, 10);
    locate_ok("arr[1]", 3, 17);
    locate_ok("arr[1][0]", 3, 19);
    locate_ok("arr[1][0][0]", 3, 21);
    locate_ok("escA", 4, 16);                          /* "\u0041" is "A" */
    locate_ok("\xc3\xa9", 5, 8);                       /* columns count characters */
    locate_ok("after", 5, 22);
    locate_ok("[\"\xf0\x9f\x98\x80\"]", 6, 19);        /* a surrogate pair in the key */
    locate_ok("[\"\xf0\x9f\x98\x80\"][\"\"]", 6, 24);

    locate_missing(tricky, "arr[0][0]");              /* empty array */
    locate_missing(tricky, "arr[2]");
    locate_missing(tricky, "nope");
    locate_missing(tricky, "arr.x");                  /* not an object */
    locate_missing(tricky, "a\"b[");                  /* that key needs brackets */
    locate_missing(tricky, "arr[");                   /* malformed paths */
    locate_missing(tricky, "arr[x]");
    locate_missing(tricky, ".arr");
    locate_missing(tricky, "arr..x");
    locate_missing("{\"a\": [1, 2", "a[0]");            /* found, but the text is broken */
    locate_missing("{\"a\": 1} x", "a");
    locate_missing("{\"a\": [1 2]}", "a[1]");
    locate_missing("{\"a\" 1}", "a");
    locate_missing("{\"a\": \"unterminated}", "b");
    locate_missing("", "");
    locate_missing("   ", "");
    {
        int line, col;

        assert_int_equal(cfg_locate("{\"a\": [1, 2]}", 13, "a[1]", &line, &col), 0);
        assert_int_equal(col, 11);
        assert_int_equal(cfg_locate("\n\t [\r\n true]", 12, "[0]", &line, &col), 0);
        assert_int_equal(line, 3);
        assert_int_equal(col, 2);
        assert_int_equal(cfg_locate(NULL, 0, "", &line, &col), -1);
    }
}

/* ---- cfg_suggest ---- */

static void test_suggest(void **state)
{
    static const char *const keys[] = { "name", "type", "topics", "batch", "retry", "filter" };
    static const char *const types[] = { "postgres", "redis", "file", "webhook", "http" };
    static const char *const close[] = { "fsyncs", "fsync", NULL, "" };

    (void)state;
    assert_string_equal(cfg_suggest("batchh", keys, 6), "batch");
    assert_string_equal(cfg_suggest("topic", keys, 6), "topics");
    assert_string_equal(cfg_suggest("retyr", keys, 6), "retry");
    assert_string_equal(cfg_suggest("BATCH", keys, 6), "batch");
    assert_string_equal(cfg_suggest("redsi", types, 5), "redis");
    assert_string_equal(cfg_suggest("postgresql", types, 5), "postgres");   /* a prefix */
    assert_string_equal(cfg_suggest("web", types, 5), "webhook");
    assert_string_equal(cfg_suggest("fsynk", close, 4), "fsync");           /* best first */
    assert_null(cfg_suggest("smoke-signals", types, 5));
    assert_null(cfg_suggest("x", keys, 6));
    assert_null(cfg_suggest("", keys, 6));
    assert_null(cfg_suggest("batch", NULL, 0));
}

/* Closeness is relative to the length: a short word is not near any other short word. */
static void test_suggest_relative(void **state)
{
    static const char *const redis[] = { "url", "password", "shape", "key", "ttl_s", "maxlen" };
    static const char *const only_url[] = { "url" };
    static const char *const types[] = { "postgres", "redis", "file", "webhook", "http" };
    static const char *const hosts[] = { "host", "port" };

    (void)state;
    assert_string_equal(cfg_suggest("ttl", redis, 6), "ttl_s");        /* once "url" (2 edits of 3) */
    assert_null(cfg_suggest("ttl", only_url, 1));
    assert_null(cfg_suggest("kez", only_url, 1));
    assert_string_equal(cfg_suggest("fiel", types, 5), "file");        /* a swap is one edit */
    assert_string_equal(cfg_suggest("hots", hosts, 2), "host");
    assert_null(cfg_suggest("htpp2", types, 5));                       /* 2 edits of 5: too far */
    assert_string_equal(cfg_suggest("postgers", types, 5), "postgres");
    assert_null(cfg_suggest("te", (const char *const[]){ "text" }, 1)); /* prefix too short */
}

/* ---- paths ---- */

static void test_paths(void **state)
{
    char out[CFG_PATH_MAX], small[8];

    (void)state;
    cfg_path_key(out, sizeof out, "", "kafka");
    assert_string_equal(out, "kafka");
    cfg_path_key(out, sizeof out, "kafka", "bootstrap.servers");
    assert_string_equal(out, "kafka[\"bootstrap.servers\"]");
    cfg_path_key(out, sizeof out, "sinks[2]", "batch");
    assert_string_equal(out, "sinks[2].batch");
    cfg_path_key(out, sizeof out, "", "a\"b[");
    assert_string_equal(out, "[\"a\\\"b[\"]");
    cfg_path_key(out, sizeof out, "x", "");
    assert_string_equal(out, "x[\"\"]");
    cfg_path_index(out, sizeof out, "sinks", 12);
    assert_string_equal(out, "sinks[12]");
    cfg_path_index(out, sizeof out, "", 0);
    assert_string_equal(out, "[0]");
    cfg_path_key(small, sizeof small, "kafka", "bootstrap.servers");
    assert_int_equal(strlen(small), sizeof small - 1);
    cfg_path_key(small, sizeof small, "abc", "bootstrap.servers");
    assert_int_equal(strlen(small), sizeof small - 1);

    /* paths built here are found by cfg_locate */
    {
        const char *text = "{\"kafka\": {\"bootstrap.servers\": \"h\"}, \"a\\\"b[\": [0, 1]}";
        char base[32];
        int line, col;

        cfg_path_key(out, sizeof out, "kafka", "bootstrap.servers");
        assert_int_equal(cfg_locate(text, strlen(text), out, &line, &col), 0);
        assert_int_equal(col, 33);
        cfg_path_key(base, sizeof base, "", "a\"b[");
        cfg_path_index(out, sizeof out, base, 1);
        assert_int_equal(cfg_locate(text, strlen(text), out, &line, &col), 0);
        assert_int_equal(col, 52);
    }
}

/* ---- cfg_error ---- */

static void test_error_format(void **state)
{
    static const char text[] = "{\n  \"sinks\": [\n    { \"name\": \"a\" }\n  ]\n}\n";
    struct cfg_doc doc = { .file = "main.json", .text = text, .len = sizeof text - 1 };
    struct cfg_doc broken = { .file = "broken.json", .text = "{\"a\": ", .len = 6 };
    struct cfg_doc unread = { .file = "gone.json", .text = NULL, .len = 0 };
    struct cfg_errors errs = { 0 };

    (void)state;
    cfg_error(&errs, &doc, "sinks[0].name", "bad %s %d", "name", 7);
    cfg_error(&errs, &doc, "sinks[0].batch.max_records", "missing");  /* nearest ancestor */
    cfg_error(&errs, &doc, "sinks[3]", "no such sink");
    cfg_error(&errs, &doc, "", "root problem");
    cfg_error(&errs, &broken, "a", "cannot locate");
    cfg_error(&errs, &broken, "", "cannot locate either");
    cfg_error(&errs, &unread, "x", "no text");
    cfg_error(&errs, NULL, "x.y", "no document");
    cfg_error(&errs, NULL, "", "bare");
    assert_int_equal(errs.n, 9);
    assert_string_equal(errs.msgs[0], "main.json:3:15: sinks[0].name: bad name 7");
    assert_string_equal(errs.msgs[1], "main.json:3:5: sinks[0].batch.max_records: missing");
    assert_string_equal(errs.msgs[2], "main.json:2:12: sinks[3]: no such sink");
    assert_string_equal(errs.msgs[3], "main.json:1:1: root problem");
    assert_string_equal(errs.msgs[4], "broken.json: a: cannot locate");
    assert_string_equal(errs.msgs[5], "broken.json: cannot locate either");
    assert_string_equal(errs.msgs[6], "gone.json: x: no text");
    assert_string_equal(errs.msgs[7], "x.y: no document");
    assert_string_equal(errs.msgs[8], "bare");
    cfg_errors_clear(&errs);
    assert_int_equal(errs.n, 0);
    assert_null(errs.msgs);
    cfg_errors_clear(&errs);   /* twice is fine */
}

/* ---- cfg_apply ---- */

struct t_conf {
    char *name;
    char *host;
    long long port;
    int tls;
    int mode;
    struct cfg_strlist tags;
    json_t *extra;
    char *password;
    long long workers;
    long long depth_max;
    char *label;
};

static const char *const t_modes[] = { "hash", "string", "json", NULL };

static int t_even(const json_t *value, char *err, size_t errlen)
{
    if (json_integer_value(value) % 2 == 0)
        return 0;
    snprintf(err, errlen, "must be even, not %lld", (long long)json_integer_value(value));
    return -1;
}

/* A validator that (wrongly) repeats the value: cfg_apply must not let a secret through. */
static int t_password(const json_t *value, char *err, size_t errlen)
{
    if (strlen(json_string_value(value)) >= 12)
        return 0;
    snprintf(err, errlen, "\"%s\" is shorter than 12 characters", json_string_value(value));
    return -1;
}

#define T(f) offsetof(struct t_conf, f)

static const struct cfg_opt t_limits[] = {
    CFG_INT("depth_max", "4", 1, 64, T(depth_max), "Deepest nesting"),
    CFG_STR("label", NULL, T(label), "A label | with a pipe"),
    CFG_END
};

static const struct cfg_opt t_opts[] = {
    { .name = "name", .type = CFG_T_STR, .offset = T(name), .flags = CFG_REQUIRED, .help = "Name" },
    CFG_STR("host", "\"localhost\"", T(host), "Server host"),
    CFG_INT("port", "6379", 1, 65535, T(port), "TCP port"),
    CFG_BOOL("tls", "false", T(tls), "Use TLS"),
    CFG_ENUM("mode", "\"hash\"", t_modes, T(mode), "Value shape"),
    CFG_STRLIST("tags", T(tags), "Tags"),
    CFG_JSON("extra", T(extra), "Anything"),
    { .name = "password", .type = CFG_T_STR, .offset = T(password), .flags = CFG_SECRET,
      .validate = t_password, .help = "Password" },
    { .name = "workers", .type = CFG_T_INT, .def = "2", .min = 1, .max = 64,
      .offset = T(workers), .validate = t_even, .help = "Worker threads" },
    CFG_SECTION("limits", t_limits, "Limits"),
    CFG_END
};

static void test_apply_defaults(void **state)
{
    struct t_conf c;
    struct cfg_errors errs = { 0 };
    json_t *obj = json_pack("{s:s}", "name", "n1");

    (void)state;
    memset(&c, 0, sizeof c);
    assert_int_equal(cfg_apply(t_opts, obj, &c, NULL, "", NULL, &errs), 0);
    assert_int_equal(errs.n, 0);
    assert_string_equal(c.name, "n1");
    assert_string_equal(c.host, "localhost");
    assert_int_equal(c.port, 6379);
    assert_int_equal(c.tls, 0);
    assert_int_equal(c.mode, 0);
    assert_int_equal(c.tags.n, 0);
    assert_null(c.extra);
    assert_null(c.password);
    assert_int_equal(c.workers, 2);
    assert_int_equal(c.depth_max, 4);
    assert_null(c.label);
    cfg_release(t_opts, &c);
    assert_null(c.name);
    assert_null(c.host);
    cfg_release(t_opts, &c);   /* twice is fine */
    json_decref(obj);

    /* no object at all: defaults, and the required key is missing */
    memset(&c, 0, sizeof c);
    assert_int_equal(cfg_apply(t_opts, NULL, &c, NULL, "svc", NULL, &errs), 1);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0], "svc: missing required key \"name\"");
    assert_string_equal(c.host, "localhost");
    cfg_release(t_opts, &c);
    cfg_errors_clear(&errs);
}

static void test_apply_values(void **state)
{
    static const char text[] =
        "{\"name\": \"n\", \"host\": \"db\", \"port\": 1, \"tls\": true, \"mode\": \"json\",\n"
        " \"tags\": [\"a\", \"b\"], \"extra\": {\"k\": [1]}, \"password\": \"long enough secret\",\n"
        " \"workers\": 64, \"limits\": {\"depth_max\": 64, \"label\": \"L\"}, \"x-own\": 1}\n";
    struct cfg_doc doc = { .file = "t.json", .text = text, .len = sizeof text - 1 };
    static const char *const extra_keys[] = { "x-own", NULL };
    struct cfg_errors errs = { 0 };
    struct t_conf c;
    json_t *obj = json_loads(text, 0, NULL);

    (void)state;
    assert_non_null(obj);
    memset(&c, 0, sizeof c);
    assert_int_equal(cfg_apply(t_opts, obj, &c, &doc, "", extra_keys, &errs), 0);
    assert_int_equal(errs.n, 0);
    assert_string_equal(c.host, "db");
    assert_int_equal(c.port, 1);
    assert_int_equal(c.tls, 1);
    assert_int_equal(c.mode, 2);
    assert_int_equal(c.tags.n, 2);
    assert_string_equal(c.tags.v[1], "b");
    assert_true(json_equal(c.extra, json_object_get(obj, "extra")));
    assert_string_equal(c.password, "long enough secret");
    assert_int_equal(c.workers, 64);
    assert_int_equal(c.depth_max, 64);
    assert_string_equal(c.label, "L");
    json_decref(obj);   /* the stored JSON is a reference of its own */
    assert_int_equal(json_integer_value(json_array_get(json_object_get(c.extra, "k"), 0)), 1);
    cfg_release(t_opts, &c);
    assert_null(c.extra);
    assert_null(c.tags.v);
    assert_int_equal(c.tags.n, 0);
}

static void test_apply_errors(void **state)
{
    /* a sink inside a "sinks" array: its path prefixes each key, and the prefix on line 1 keeps
     * the other line numbers as they are here */
    static const char text[] =
        "{\"sinks\": [{\n"
        "  \"host\": 5,\n"
        "  \"port\": 70000,\n"
        "  \"tls\": \"yes\",\n"
        "  \"mode\": \"strng\",\n"
        "  \"tags\": [\"a\", 2],\n"
        "  \"password\": \"hunter2\",\n"
        "  \"workers\": 3,\n"
        "  \"limits\": { \"depth_max\": 1.5, \"lable\": \"x\" },\n"
        "  \"hots\": \"h\",\n"
        "  \"zzz\": 1\n"
        "}]}\n";
    static const char *const want[] = {
        "svc.json:1:12: sinks[0]: missing required key \"name\"",
        "svc.json:2:11: sinks[0].host: expected a string",
        "svc.json:3:11: sinks[0].port: must be 1..65535",
        "svc.json:4:10: sinks[0].tls: expected true or false",
        "svc.json:5:11: sinks[0].mode: must be one of hash, string, json; did you mean \"string\"?",
        "svc.json:6:17: sinks[0].tags[1]: expected a string",
        "svc.json:7:15: sinks[0].password: \"***\" is shorter than 12 characters",
        "svc.json:8:14: sinks[0].workers: must be even, not 3",
        "svc.json:9:28: sinks[0].limits.depth_max: expected an integer",
        "svc.json:9:42: sinks[0].limits.lable: unknown key \"lable\"; did you mean \"label\"?",
        "svc.json:10:11: sinks[0].hots: unknown key \"hots\"; did you mean \"host\"?",
        "svc.json:11:10: sinks[0].zzz: unknown key \"zzz\"",
    };
    struct cfg_doc doc = { .file = "svc.json", .text = text, .len = sizeof text - 1 };
    struct cfg_errors errs = { 0 };
    json_t *root = json_loads(text, 0, NULL), *obj;
    struct t_conf c;

    (void)state;
    assert_non_null(root);
    obj = json_array_get(json_object_get(root, "sinks"), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(cfg_apply(t_opts, obj, &c, &doc, "sinks[0]", NULL, &errs),
                     (int)(sizeof want / sizeof *want));
    assert_int_equal(errs.n, sizeof want / sizeof *want);
    for (size_t i = 0; i < errs.n; i++)
        assert_string_equal(errs.msgs[i], want[i]);
    for (size_t i = 0; i < errs.n; i++)
        assert_null(strstr(errs.msgs[i], "hunter2"));
    cfg_release(t_opts, &c);
    cfg_errors_clear(&errs);
    json_decref(root);
}

static void test_apply_bad_shapes(void **state)
{
    struct cfg_errors errs = { 0 };
    struct t_conf c;
    json_t *obj = json_pack("{s:s, s:i, s:[s], s:s}", "name", "n", "limits", 3, "tags", "x",
                            "mode", "nope");
    json_t *arr = json_pack("[i]", 1);
    static const char *const secret_enum_choices[] = { "on", "off", NULL };
    static const struct cfg_opt secret_enum[] = {
        { .name = "switch", .type = CFG_T_ENUM, .choices = secret_enum_choices, .offset = 0,
          .flags = CFG_SECRET, .help = "" },
        CFG_END
    };
    json_t *sw = json_pack("{s:s}", "switch", "of");
    int sink = 0;

    (void)state;
    memset(&c, 0, sizeof c);
    assert_int_equal(cfg_apply(t_opts, obj, &c, NULL, "", NULL, &errs), 2);
    assert_string_equal(errs.msgs[0], "mode: must be one of hash, string, json");
    assert_string_equal(errs.msgs[1], "limits: expected an object");
    assert_int_equal(c.depth_max, 4);   /* the section still has its defaults */
    cfg_release(t_opts, &c);
    cfg_errors_clear(&errs);

    /* the object itself of the wrong type */
    memset(&c, 0, sizeof c);
    assert_int_equal(cfg_apply(t_opts, arr, &c, NULL, "svc", NULL, &errs), 1);
    assert_string_equal(errs.msgs[0], "svc: expected an object");
    cfg_release(t_opts, &c);
    cfg_errors_clear(&errs);

    /* no suggestion drawn from a secret value */
    assert_int_equal(cfg_apply(secret_enum, sw, &sink, NULL, "", NULL, &errs), 1);
    assert_string_equal(errs.msgs[0], "switch: must be one of on, off");
    cfg_errors_clear(&errs);

    /* a zeroed struct releases */
    memset(&c, 0, sizeof c);
    cfg_release(t_opts, &c);
    cfg_release(NULL, &c);
    json_decref(obj);
    json_decref(arr);
    json_decref(sw);
}

/* ---- reference ---- */

/* cfg_equal: by value, through sections; strings, lists and JSON by content, not by pointer. */
static void test_equal(void **state)
{
    static const char text[] =
        "{\"name\": \"n\", \"tags\": [\"a\", \"b\"], \"extra\": {\"k\": [1, 2]}, \"limits\": {\"label\": \"L\"}}";
    struct cfg_errors errs = { 0 };
    struct t_conf a, b;
    json_t *obj = json_loads(text, 0, NULL);

    (void)state;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    assert_int_equal(cfg_apply(t_opts, obj, &a, NULL, "", NULL, &errs), 0);
    assert_int_equal(cfg_apply(t_opts, obj, &b, NULL, "", NULL, &errs), 0);
    assert_ptr_not_equal(a.name, b.name);
    assert_true(cfg_equal(t_opts, &a, &b));
    assert_true(cfg_equal(NULL, &a, &b));   /* a sink type without options */

    b.port++;                                /* CFG_T_INT */
    assert_false(cfg_equal(t_opts, &a, &b));
    b.port--;
    b.mode = 1;                              /* CFG_T_ENUM */
    assert_false(cfg_equal(t_opts, &a, &b));
    b.mode = a.mode;
    b.tls = !a.tls;                          /* CFG_T_BOOL */
    assert_false(cfg_equal(t_opts, &a, &b));
    b.tls = a.tls;
    b.depth_max = 5;                         /* in a section */
    assert_false(cfg_equal(t_opts, &a, &b));
    b.depth_max = a.depth_max;
    b.label[0] = 'M';                        /* CFG_T_STR in a section, by content */
    assert_false(cfg_equal(t_opts, &a, &b));
    b.label[0] = 'L';
    b.tags.v[1][0] = 'c';                    /* CFG_T_STRLIST */
    assert_false(cfg_equal(t_opts, &a, &b));
    b.tags.v[1][0] = 'b';
    b.tags.n = 1;
    assert_false(cfg_equal(t_opts, &a, &b));
    b.tags.n = 2;
    json_decref(b.extra);                    /* cfg_apply shared obj's member: a copy of its own */
    b.extra = json_deep_copy(a.extra);
    assert_true(cfg_equal(t_opts, &a, &b));
    json_array_append_new(json_object_get(b.extra, "k"), json_integer(3));   /* CFG_T_JSON */
    assert_false(cfg_equal(t_opts, &a, &b));
    json_array_remove(json_object_get(b.extra, "k"), 2);
    assert_true(cfg_equal(t_opts, &a, &b));
    free(b.password);                        /* set on one side only */
    b.password = strdup("long enough secret");
    assert_false(cfg_equal(t_opts, &a, &b));
    free(b.password);
    b.password = NULL;
    assert_true(cfg_equal(t_opts, &a, &b));

    cfg_release(t_opts, &a);
    cfg_release(t_opts, &b);
    json_decref(obj);
}

static void test_reference(void **state)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);

    (void)state;
    assert_non_null(f);
    cfg_print_reference(t_opts, "redis", f);
    fclose(f);
    assert_non_null(strstr(text, "| `redis.name` | string | required | Name |\n"));
    assert_non_null(strstr(text, "| `redis.host` | string | `\"localhost\"` | Server host |\n"));
    assert_non_null(strstr(text, "| `redis.port` | integer, 1..65535 | `6379` | TCP port |\n"));
    assert_non_null(strstr(text, "| `redis.mode` | one of: hash, string, json | `\"hash\"` | Value shape |\n"));
    assert_non_null(strstr(text, "| `redis.tags` | array of strings |  | Tags |\n"));
    assert_non_null(strstr(text, "| `redis.password` | string |  | Password (secret: never printed) |\n"));
    assert_non_null(strstr(text, "| `redis.limits` | object |  | Limits |\n"));
    assert_non_null(strstr(text, "| `redis.limits.depth_max` | integer, 1..64 | `4` | Deepest nesting |\n"));
    assert_non_null(strstr(text, "| `redis.limits.label` | string |  | A label \\| with a pipe |\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locate_tricky),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_suggest_relative),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_apply_defaults),
        cmocka_unit_test(test_apply_values),
        cmocka_unit_test(test_apply_errors),
        cmocka_unit_test(test_apply_bad_shapes),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_reference),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
