/* The postgres sink's pure logic, without a server: the mapping options, JSON values as the
 * texts PostgreSQL converts, rows (tombstones, keys, metadata), the catalog checks on results
 * built by hand, the SQL text and the classification of SQLSTATEs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sinks/postgres_map.h"

/* ---- helpers ---- */

static int build(struct pgsink_map *m, const char *table, const char *columns, const char *const *keys,
                 size_t nkeys, int mode, char *err, size_t errlen, const char **key)
{
    json_t *cols = json_loads(columns, 0, NULL);
    struct cfg_strlist list = { (char **)keys, nkeys };
    int rc;

    assert_non_null(cols);
    rc = pgsink_map_build(m, table, cols, &list, mode, "sluice_offsets", err, errlen, key);
    json_decref(cols);
    return rc;
}

static void build_ok(struct pgsink_map *m, const char *columns, const char *const *keys, size_t nkeys, int mode)
{
    char err[512] = "";
    const char *key = NULL;
    int rc = build(m, "accounts", columns, keys, nkeys, mode, err, sizeof err, &key);
    if (rc != 0)
        fail_msg("map_build: %s", err);
}

static void expect_build_error(const char *table, const char *columns, const char *const *keys, size_t nkeys,
                               int mode, const char *want_key, const char *want)
{
    struct pgsink_map m;
    char err[512] = "";
    const char *key = NULL;

    assert_int_equal(build(&m, table, columns, keys, nkeys, mode, err, sizeof err, &key), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    assert_string_equal(key, want_key);
}

static char *render(const char *json, int is_json, int is_array, int *rc)
{
    struct buf b = { 0 };
    char err[256] = "";

    *rc = pgsink_render_text(&b, json, strlen(json), is_json, is_array, err, sizeof err);
    if (*rc < 0) {
        buf_free(&b);
        return strdup(err);
    }
    if (!b.p)
        return strdup("");
    return b.p;
}

static void expect_render_error(const char *json, const char *want)
{
    int rc;
    char *got = render(json, 0, 0, &rc);
    assert_int_equal(rc, -1);
    if (!strstr(got, want))
        fail_msg("error \"%s\" does not contain \"%s\"", got, want);
    free(got);
}

static void expect_render(const char *json, int is_json, int is_array, const char *want)
{
    int rc;
    char *got = render(json, is_json, is_array, &rc);
    assert_int_equal(rc, 1);
    assert_string_equal(got, want);
    free(got);
}

/* A sink_record for topic t, partition 2, offset 41, timestamp 1.5 s. */
static struct sink_record record(const char *key, const char *value)
{
    struct sink_record rec = { .topic = "t", .partition = 2, .offset = 41, .timestamp_ms = 1500 };
    rec.key = key;
    rec.key_len = key ? strlen(key) : 0;
    rec.value = value;
    rec.value_len = value ? strlen(value) : 0;
    return rec;
}

static char *col_text(const struct pgsink_row *row, size_t col)
{
    int32_t len;
    const char *v = pgsink_row_get(row, col, &len);
    return v ? strndup(v, (size_t)len) : NULL;
}

static void expect_col(const struct pgsink_row *row, size_t col, const char *want)
{
    char *got = col_text(row, col);
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* A catalog result as the server would send it: rows of 8 texts (NULL: SQL NULL). */
static PGresult *catalog(const char *const rows[][8], size_t n)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc attrs[8];
    static const char *const names[8] = { "kind", "a", "b", "c", "d", "e", "f", "g" };

    memset(attrs, 0, sizeof attrs);
    for (int i = 0; i < 8; i++) {
        attrs[i].name = (char *)names[i];
        attrs[i].typid = 25;
        attrs[i].typlen = -1;
        attrs[i].atttypmod = -1;
    }
    assert_non_null(res);
    assert_true(PQsetResultAttrs(res, 8, attrs));
    for (size_t r = 0; r < n; r++)
        for (int c = 0; c < 8; c++)
            assert_true(PQsetvalue(res, (int)r, c, (char *)rows[r][c], rows[r][c] ? (int)strlen(rows[r][c]) : -1));
    return res;
}

#define S_ROW { "s", "sluice", "public", NULL, NULL, NULL, NULL, NULL }
#define T_ROW { "t", "public", "accounts", "r", "true", "true", "true", "true" }

static const char *const accounts_rows[][8] = {
    S_ROW,
    T_ROW,
    { "c", "id", "text", "true", "false", "false", "false", "false" },
    { "c", "name", "character varying", "false", "false", "false", "false", "false" },
    { "c", "balance", "numeric", "false", "false", "false", "false", "false" },
    { "c", "doc", "jsonb", "false", "false", "false", "true", "false" },
    { "c", "tags", "text[]", "false", "false", "false", "false", "true" },
    { "c", "created", "timestamp with time zone", "true", "true", "false", "false", "false" },
    { "k", "accounts_pkey", "id", NULL, NULL, NULL, NULL, NULL },
    { "k", "accounts_name_balance_key", "name", NULL, NULL, NULL, NULL, NULL },
    { "k", "accounts_name_balance_key", "balance", NULL, NULL, NULL, NULL, NULL },
};

static const char accounts_columns[] =
    "{\"name\": \"$.name\", \"balance\": \"$.balance\", \"doc\": \"$\", \"tags\": \"$.tags\"}";

static void expect_target_error(const char *columns, const char *const *keys, size_t nkeys, int mode,
                                const char *const rows[][8], size_t nrows, const char *want)
{
    struct pgsink_map m;
    PGresult *res = catalog(rows, nrows);
    char err[512] = "";

    build_ok(&m, columns, keys, nkeys, mode);
    assert_int_equal(pgsink_catalog_check_target(&m, res, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    PQclear(res);
    pgsink_map_free(&m);
}

/* ---- the mapping ---- */

static void test_map_build(void **state)
{
    static const char *const keys[] = { "id" };
    struct pgsink_map m;
    (void)state;

    build_ok(&m, "{\"name\": \"$.name\", \"doc\": \"$\", \"at\": \"@timestamp\", \"off\": \"@offset\"}", keys, 1,
             PGSINK_UPSERT);
    assert_int_equal(m.ncols, 5);
    assert_null(m.schema);
    assert_string_equal(m.table, "accounts");
    assert_string_equal(m.cols[0].name, "name");
    assert_int_equal(m.cols[0].source, PGSINK_SRC_VALUE);
    assert_true(m.cols[1].whole);
    assert_int_equal(m.cols[2].source, PGSINK_SRC_TIMESTAMP);
    assert_int_equal(m.cols[3].source, PGSINK_SRC_OFFSET);
    /* "id" is not in columns: it takes the record key. */
    assert_string_equal(m.cols[4].name, "id");
    assert_int_equal(m.cols[4].source, PGSINK_SRC_KEY);
    assert_true(m.cols[4].is_key);
    assert_int_equal(m.nkeys, 1);
    assert_int_equal(m.keys[0], 4);
    pgsink_map_free(&m);
}

static void test_map_errors(void **state)
{
    static const char *const id[] = { "id" };
    static const char *const two_unmapped[] = { "a", "b" };
    static const char *const twice[] = { "id", "id" };
    (void)state;

    expect_build_error("a.b.c", "{\"x\": \"$\"}", id, 1, PGSINK_UPSERT, "table", "schema.table");
    expect_build_error(".t", "{\"x\": \"$\"}", id, 1, PGSINK_UPSERT, "table", "schema.table");
    expect_build_error("t", "{}", id, 1, PGSINK_UPSERT, "columns", "expected an object mapping");
    expect_build_error("t", "{\"x\": \"name\"}", id, 1, PGSINK_UPSERT, "columns", "column \"x\": a path starts with \"$\"");
    expect_build_error("t", "{\"x\": 3}", id, 1, PGSINK_UPSERT, "columns", "expected a string");
    expect_build_error("t", "{\"x\": \"@kye\"}", id, 1, PGSINK_UPSERT, "columns", "did you mean \"@key\"?");
    expect_build_error("t", "{\"x\": \"$\"}", NULL, 0, PGSINK_UPSERT, "key_columns", "mode \"upsert\" needs key_columns");
    expect_build_error("t", "{\"x\": \"$\"}", id, 1, PGSINK_INSERT, "key_columns", "applies to mode \"upsert\" only");
    expect_build_error("t", "{\"x\": \"$\"}", two_unmapped, 2, PGSINK_UPSERT, "key_columns",
                       "another one already takes the record key");
    expect_build_error("t", "{\"id\": \"$.id\"}", twice, 2, PGSINK_UPSERT, "key_columns", "listed twice");
}

/* ---- values ---- */

static void test_render_scalars(void **state)
{
    int rc;
    char *got;
    (void)state;

    expect_render("\"plain text\"", 0, 0, "plain text");
    expect_render("\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\t\"", 0, 0, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \t");
    expect_render(" 42 ", 0, 0, "42");
    /* Numbers go as written: PostgreSQL converts them, exactly (no double in between). */
    expect_render("-9007199254740993", 0, 0, "-9007199254740993");
    expect_render("18446744073709551616", 0, 0, "18446744073709551616");
    expect_render("12345678901234567890.123456789", 0, 0, "12345678901234567890.123456789");
    expect_render("0.1", 0, 0, "0.1");
    expect_render("1.5e-7", 0, 0, "1.5e-7");
    expect_render("true", 0, 0, "true");
    expect_render("false", 0, 0, "false");
    expect_render("{\"a\": [1, 2.5, \"x\\\"y\"], \"b\": null}", 0, 0, "{\"a\": [1, 2.5, \"x\\\"y\"], \"b\": null}");
    got = render("null", 0, 0, &rc);
    assert_int_equal(rc, 0);                           /* SQL NULL */
    free(got);
    got = render("\"a\\u0000b\"", 0, 0, &rc);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(got, "NUL character"));
    free(got);
}

static void test_render_refuses_bad_json(void **state)
{
    (void)state;
    expect_render_error("{\"a\": 1", "value is not JSON: unexpected end of the text at byte 7");
    expect_render_error("{\"a\": 1} x", "value is not JSON: text after the value at byte 9");
    expect_render_error("{a: 1}", "expected a member name");
    expect_render_error("[1, 2,]", "unexpected character");
    expect_render_error("01", "text after the value");
    expect_render_error("1.", "invalid number");
    expect_render_error("-", "invalid number");
    expect_render_error("tru", "unexpected character at byte 0");
    expect_render_error("\"a\\x\"", "invalid escape");
    expect_render_error("\"\\ud800\"", "high surrogate without its low half");
    expect_render_error("\"\\udc00\"", "lone low surrogate");
    expect_render_error("\"\xff\"", "not valid UTF-8");
    expect_render_error("\"\xed\xa0\x80\"", "not valid UTF-8");          /* an encoded surrogate */
    expect_render_error("\"\xc0\xaf\"", "not valid UTF-8");              /* overlong */
    expect_render_error("\"tab\there\"", "control character");
    expect_render_error("", "unexpected end");
    {
        char deep[4200];
        memset(deep, '[', 2100);
        memset(deep + 2100, ']', 2100);
        deep[4200 - 1] = '\0';
        expect_render_error(deep, "nested too deep at byte 2048");
    }
}

static void test_render_json_and_arrays(void **state)
{
    (void)state;
    /* json/jsonb columns get the JSON text as written, strings included. */
    expect_render("\"abc\"", 1, 0, "\"abc\"");
    expect_render("\"tab\\there\\u0001\"", 1, 0, "\"tab\\there\\u0001\"");
    expect_render("[1, \"two\"]", 1, 0, "[1, \"two\"]");
    /* A JSON array into a non-array column stays JSON; into an array column it becomes a
     * literal, every string quoted (so blanks, commas, braces and the word NULL survive). */
    expect_render("[\"a\", \"b c\"]", 0, 0, "[\"a\", \"b c\"]");
    expect_render("[\"a\", \"b c\", null, \"NULL\", \"q\\\"\\\\\", \"\", \"\\u00e9\"]", 0, 1,
                  "{\"a\",\"b c\",NULL,\"NULL\",\"q\\\"\\\\\",\"\",\"\xc3\xa9\"}");
    expect_render("[[1, 2], [3, 4]]", 0, 1, "{{1,2},{3,4}}");
    expect_render("[ ]", 0, 1, "{}");
    expect_render("[1.50, true]", 0, 1, "{1.50,true}");
    expect_render("[{\"k\": 1}]", 0, 1, "{\"{\\\"k\\\": 1}\"}");
}

static void test_paths(void **state)
{
    static const char *const keys[] = { "id" };
    struct pgsink_map m;
    struct pgsink_row *row = NULL;
    size_t len;
    char err[256];
    struct sink_record rec = record("k", "{\"a\": {\"b\": [10, {\"c\": \"deep\"}]}, \"odd key\": 5, "
                                         "\"esc\\u0061ped\": 6, \"dup\": 1, \"dup\": 2, \"skip\": {\"x\": [1, {}]}}");
    (void)state;

    build_ok(&m, "{\"c1\": \"$.a.b[1].c\", \"c2\": \"$[\\\"odd key\\\"]\", \"c3\": \"$.escaped\", "
                 "\"c4\": \"$.dup\", \"c5\": \"$.a.b[0]\", \"c6\": \"$.a.b[2]\", \"c7\": \"$.a\"}", keys, 1, PGSINK_UPSERT);
    assert_int_equal(pgsink_row_make(&m, &rec, &row, &len, err, sizeof err), 0);
    expect_col(row, 0, "deep");
    expect_col(row, 1, "5");
    expect_col(row, 2, "6");                           /* a member name with an escape matches */
    expect_col(row, 3, "2");                           /* duplicate names: the last one, as jansson */
    expect_col(row, 4, "10");
    expect_col(row, 5, NULL);                          /* past the end of the array */
    expect_col(row, 6, "{\"b\": [10, {\"c\": \"deep\"}]}");
    free(row);
    pgsink_map_free(&m);

    /* A repeated object replaces the earlier one whole: a path into the earlier one finds
     * nothing (a fuzz_mapping find: the earlier "x" used to stay). */
    rec = record("k", "{\"id\": 1, \"plan\": {\"code\": \"x\"}, \"plan\": {}}");
    build_ok(&m, "{\"id\": \"$.id\", \"code\": \"$.plan.code\"}", keys, 1, PGSINK_UPSERT);
    assert_int_equal(pgsink_row_make(&m, &rec, &row, &len, err, sizeof err), 0);
    expect_col(row, 1, NULL);
    free(row);
    pgsink_map_free(&m);
}

/* ---- rows ---- */

static void test_row_upsert(void **state)
{
    static const char *const keys[] = { "id" };
    struct pgsink_map m;
    struct pgsink_row *row = NULL, *other = NULL;
    size_t len = 0;
    char err[256];
    struct sink_record rec = record("k-1", "{\"name\": \"Ann\", \"n\": 3, \"tags\": [\"a\", \"b\"]}");
    struct sink_record rec2 = record("k-1", "{\"name\": \"Bob\"}");
    struct sink_record rec3 = record("k-2", "{\"name\": \"Ann\"}");
    (void)state;

    build_ok(&m, "{\"name\": \"$.name\", \"n\": \"$.n\", \"missing\": \"$.nope\", \"doc\": \"$\", "
                 "\"tags\": \"$.tags\", \"p\": \"@partition\", \"o\": \"@offset\", \"ts\": \"@timestamp\", "
                 "\"topic\": \"@topic\"}", keys, 1, PGSINK_UPSERT);
    m.cols[3].is_json = 1;   /* doc: jsonb, as the catalog would say */
    m.cols[4].is_array = 1;  /* tags: text[] */
    assert_int_equal(pgsink_row_make(&m, &rec, &row, &len, err, sizeof err), 0);
    assert_false(row->tombstone);
    assert_int_equal(row->ncols, 10);
    expect_col(row, 0, "Ann");
    expect_col(row, 1, "3");
    expect_col(row, 2, NULL);
    expect_col(row, 3, rec.value);                      /* the whole document, as received */
    expect_col(row, 4, "{\"a\",\"b\"}");
    expect_col(row, 5, "2");
    expect_col(row, 6, "41");
    expect_col(row, 7, "1970-01-01T00:00:01.500Z");
    expect_col(row, 8, "t");
    expect_col(row, 9, "k-1");                           /* id, from the record key */
    /* Same key, other values: same collapse key. Another key: not the same. */
    assert_int_equal(pgsink_row_make(&m, &rec2, &other, &len, err, sizeof err), 0);
    assert_true(pgsink_row_same_key(&m, row, other));
    free(other);
    assert_int_equal(pgsink_row_make(&m, &rec3, &other, &len, err, sizeof err), 0);
    assert_false(pgsink_row_same_key(&m, row, other));
    free(other);
    free(row);
    pgsink_map_free(&m);
}

static void test_row_tombstones_and_keys(void **state)
{
    static const char *const by_key[] = { "id" };
    static const char *const by_value[] = { "org", "id" };
    struct pgsink_map m;
    struct pgsink_row *row = NULL;
    size_t len;
    char err[256];
    struct sink_record tomb = record("k-9", NULL), nokey = record(NULL, "{\"name\": \"x\"}");
    struct sink_record json_tomb = record("{\"org\": 7, \"id\": \"a\"}", NULL);
    struct sink_record text_tomb = record("plain", NULL);
    struct sink_record missing = record("k", "{\"org\": 7}");
    (void)state;

    /* A tombstone carries the key columns only. */
    build_ok(&m, "{\"name\": \"$.name\"}", by_key, 1, PGSINK_UPSERT);
    assert_int_equal(pgsink_row_make(&m, &tomb, &row, &len, err, sizeof err), 0);
    assert_true(row->tombstone);
    expect_col(row, 0, NULL);
    expect_col(row, 1, "k-9");
    free(row);
    /* No record key where the key column takes it: the record is refused. */
    assert_int_equal(pgsink_row_make(&m, &nokey, &row, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "the record has no key"));

    /* A value that is not JSON is refused with the reason. */
    {
        struct sink_record bad = record("k", "{\"name\": ");
        assert_int_equal(pgsink_row_make(&m, &bad, &row, &len, err, sizeof err), -1);
        assert_string_equal(err, "value is not JSON: unexpected end of the text at byte 9");
    }
    pgsink_map_free(&m);

    /* Key columns read from the value are read from a JSON key in a tombstone. */
    build_ok(&m, "{\"org\": \"$.org\", \"id\": \"$.id\", \"name\": \"$.name\"}", by_value, 2, PGSINK_UPSERT);
    assert_int_equal(pgsink_row_make(&m, &json_tomb, &row, &len, err, sizeof err), 0);
    expect_col(row, 0, "7");
    expect_col(row, 1, "a");
    expect_col(row, 2, NULL);
    free(row);
    assert_int_equal(pgsink_row_make(&m, &text_tomb, &row, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a JSON document"));
    assert_int_equal(pgsink_row_make(&m, &missing, &row, &len, err, sizeof err), -1);
    assert_non_null(strstr(err, "key column \"id\" is missing or null in the value"));
    pgsink_map_free(&m);

    /* Insert mode: a tombstone maps to nothing (it is ignored at write). */
    build_ok(&m, "{\"name\": \"$.name\", \"k\": \"@key\"}", NULL, 0, PGSINK_INSERT);
    assert_int_equal(pgsink_row_make(&m, &tomb, &row, &len, err, sizeof err), 0);
    assert_true(row->tombstone);
    expect_col(row, 0, NULL);
    expect_col(row, 1, NULL);
    free(row);
    pgsink_map_free(&m);
}

/* ---- the catalog ---- */

static void test_catalog_accepts(void **state)
{
    static const char *const keys[] = { "id" };
    struct pgsink_map m;
    PGresult *res = catalog(accounts_rows, sizeof accounts_rows / sizeof accounts_rows[0]);
    char err[512] = "";
    (void)state;

    build_ok(&m, accounts_columns, keys, 1, PGSINK_UPSERT);
    if (pgsink_catalog_check_target(&m, res, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(m.display, "public.accounts");
    assert_string_equal(m.cols[1].type, "numeric");
    assert_true(m.cols[2].is_json);
    assert_true(m.cols[3].is_array);
    assert_false(m.cols[0].is_json);
    PQclear(res);
    pgsink_map_free(&m);
}

static void test_catalog_refuses(void **state)
{
    static const char *const id[] = { "id" };
    static const char *const name[] = { "name" };
    static const char *const name_balance[] = { "balance", "name" };
    static const char *const missing_table[][8] = { S_ROW };
    static const char *const view[][8] = { S_ROW, { "t", "public", "accounts", "v", "true", "true", "true", "true" } };
    static const char *const no_update[][8] = {
        S_ROW, { "t", "public", "accounts", "r", "true", "false", "true", "true" },
        { "c", "id", "text", "true", "false", "false", "false", "false" },
        { "c", "name", "text", "false", "false", "false", "false", "false" },
        { "k", "accounts_pkey", "id", NULL, NULL, NULL, NULL, NULL },
    };
    static const char *const generated[][8] = {
        S_ROW, T_ROW,
        { "c", "id", "text", "true", "false", "false", "false", "false" },
        { "c", "name", "text", "false", "false", "true", "false", "false" },
        { "k", "accounts_pkey", "id", NULL, NULL, NULL, NULL, NULL },
    };
    size_t n = sizeof accounts_rows / sizeof accounts_rows[0];
    (void)state;

    expect_target_error(accounts_columns, id, 1, PGSINK_UPSERT, missing_table, 1,
                        "table accounts does not exist in the search_path (public)");
    expect_target_error(accounts_columns, id, 1, PGSINK_UPSERT, view, 2, "public.accounts is a view");
    expect_target_error("{\"nmae\": \"$.name\"}", id, 1, PGSINK_UPSERT, accounts_rows, n,
                        "table public.accounts has no column \"nmae\" (did you mean \"name\"?)");
    expect_target_error("{\"Name\": \"$.name\"}", id, 1, PGSINK_UPSERT, accounts_rows, n,
                        "has no column \"Name\" (did you mean \"name\"?)");
    expect_target_error("{\"id\": \"$.id\"}", name, 1, PGSINK_UPSERT, accounts_rows, n,
                        "table public.accounts has no unique constraint on (name), which mode \"upsert\" needs "
                        "for its key_columns (its unique keys: (id), (name, balance))");
    /* A unique constraint on exactly the key columns, in any order, is enough. */
    {
        struct pgsink_map m;
        PGresult *res = catalog(accounts_rows, n);
        char err[512] = "";
        build_ok(&m, "{\"name\": \"$.name\", \"balance\": \"$.balance\", \"id\": \"$.id\"}", name_balance, 2, PGSINK_UPSERT);
        if (pgsink_catalog_check_target(&m, res, err, sizeof err) != 0)
            fail_msg("%s", err);
        PQclear(res);
        pgsink_map_free(&m);
    }
    /* id is NOT NULL without a default and nothing fills it (insert mode has no key). */
    expect_target_error("{\"name\": \"$.name\"}", NULL, 0, PGSINK_INSERT, accounts_rows, n,
                        "column \"id\" of public.accounts is NOT NULL without a default and not in columns");
    expect_target_error("{\"name\": \"$.name\"}", id, 1, PGSINK_UPSERT, generated, 5,
                        "column \"name\" of public.accounts is generated");
    expect_target_error("{\"name\": \"$.name\"}", id, 1, PGSINK_UPSERT, no_update, 5,
                        "role \"sluice\" lacks the UPDATE privilege on public.accounts");
}

static void test_catalog_offsets(void **state)
{
    static const char *const keys[] = { "id" };
    static const char *const none[][8] = { S_ROW };
    static const char *const ours[][8] = {
        S_ROW, { "t", "public", "sluice_offsets", "r", "true", "true", "true", "true" },
        { "c", "sink", "text", "true", "false", "false", "false", "false" },
        { "c", "topic", "text", "true", "false", "false", "false", "false" },
        { "c", "partition", "integer", "true", "false", "false", "false", "false" },
        { "c", "next_offset", "bigint", "true", "false", "false", "false", "false" },
        { "c", "updated_at", "timestamp with time zone", "true", "true", "false", "false", "false" },
        { "k", "sluice_offsets_pkey", "sink", NULL, NULL, NULL, NULL, NULL },
        { "k", "sluice_offsets_pkey", "topic", NULL, NULL, NULL, NULL, NULL },
        { "k", "sluice_offsets_pkey", "partition", NULL, NULL, NULL, NULL, NULL },
    };
    static const char *const foreign[][8] = {
        S_ROW, { "t", "public", "sluice_offsets", "r", "true", "true", "true", "true" },
        { "c", "id", "integer", "true", "false", "false", "false", "false" },
    };
    struct pgsink_map m;
    PGresult *target = catalog(accounts_rows, sizeof accounts_rows / sizeof accounts_rows[0]);
    PGresult *res;
    char err[512] = "";
    (void)state;

    build_ok(&m, accounts_columns, keys, 1, PGSINK_UPSERT);
    assert_int_equal(pgsink_catalog_check_target(&m, target, err, sizeof err), 0);
    assert_string_equal(pgsink_offsets_schema(&m), "public");   /* the target's schema */
    res = catalog(none, 1);
    assert_int_equal(pgsink_catalog_check_offsets(&m, res, err, sizeof err), 0);
    PQclear(res);
    res = catalog(ours, sizeof ours / sizeof ours[0]);
    assert_int_equal(pgsink_catalog_check_offsets(&m, res, err, sizeof err), 1);
    assert_true(m.offsets_updated_at);
    PQclear(res);
    res = catalog(foreign, 3);
    assert_int_equal(pgsink_catalog_check_offsets(&m, res, err, sizeof err), -1);
    assert_non_null(strstr(err, "offsets table public.sluice_offsets exists but has no column \"sink\""));
    PQclear(res);
    PQclear(target);
    pgsink_map_free(&m);
}

/* ---- SQL ---- */

static void expect_in(const char *sql, const char *want)
{
    if (!strstr(sql, want))
        fail_msg("\"%s\" not in: %s", want, sql);
}

static void test_sql(void **state)
{
    static const char *const keys[] = { "id" };
    struct pgsink_map m;
    PGresult *res = catalog(accounts_rows, sizeof accounts_rows / sizeof accounts_rows[0]);
    char err[512] = "";
    (void)state;

    build_ok(&m, accounts_columns, keys, 1, PGSINK_UPSERT);
    assert_int_equal(pgsink_catalog_check_target(&m, res, err, sizeof err), 0);
    assert_int_equal(pgsink_sql_build(&m), 0);
    assert_string_equal(m.sql_write,
        "INSERT INTO \"public\".\"accounts\" AS t (\"name\", \"balance\", \"doc\", \"tags\", \"id\") "
        "SELECT CAST(u.c1 AS character varying), CAST(u.c2 AS numeric), CAST(u.c3 AS jsonb), CAST(u.c4 AS text[]), u.c5 "
        "FROM (SELECT unnest($1::text[]) AS c1, unnest($2::text[]) AS c2, unnest($3::text[]) AS c3, "
        "unnest($4::text[]) AS c4, unnest($5::text[]) AS c5) AS u "
        "ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\", \"balance\" = EXCLUDED.\"balance\", "
        "\"doc\" = EXCLUDED.\"doc\", \"tags\" = EXCLUDED.\"tags\" "
        "WHERE t.\"name\" IS DISTINCT FROM EXCLUDED.\"name\" OR t.\"balance\" IS DISTINCT FROM EXCLUDED.\"balance\" "
        "OR t.\"doc\" IS DISTINCT FROM EXCLUDED.\"doc\" OR t.\"tags\" IS DISTINCT FROM EXCLUDED.\"tags\"");
    assert_string_equal(m.sql_delete,
        "DELETE FROM \"public\".\"accounts\" AS t USING (SELECT unnest($1::text[]) AS c5) AS u WHERE t.\"id\" = u.c5");
    expect_in(m.sql_cas_update, "UPDATE \"public\".\"sluice_offsets\" SET next_offset = $4::bigint WHERE sink = $1::text");
    expect_in(m.sql_cas_update, "AND next_offset = $5::bigint RETURNING 1) SELECT 1 / count(*)::integer AS ");
    expect_in(m.sql_cas_insert, "ON CONFLICT DO NOTHING RETURNING 1) SELECT 1 / count(*)::integer AS ");
    expect_in(m.sql_load, "\"partition\" = ANY ($3::integer[])");
    expect_in(m.sql_create_offsets, "PRIMARY KEY (sink, topic, \"partition\")");
    assert_null(m.sql_copy);   /* upsert mode never COPYs */
    PQclear(res);
    pgsink_map_free(&m);

    /* Types that may lack "=" (json, point, arrays of json) are compared as texts when an upsert
     * decides whether a row changed; arrays of comparable types and jsonb compare directly. */
    {
        static const char *const odd_types[][8] = {
            S_ROW, T_ROW,
            { "c", "id", "text", "true", "false", "false", "false", "false" },
            { "c", "raw", "json", "false", "false", "false", "true", "false" },
            { "c", "spot", "point", "false", "false", "false", "false", "false" },
            { "c", "docs", "json[]", "false", "false", "false", "false", "true" },
            { "c", "ids", "bigint[]", "false", "false", "false", "false", "true" },
            { "k", "accounts_pkey", "id", NULL, NULL, NULL, NULL, NULL },
        };
        build_ok(&m, "{\"raw\": \"$.raw\", \"spot\": \"$.spot\", \"docs\": \"$.docs\", \"ids\": \"$.ids\"}",
                 keys, 1, PGSINK_UPSERT);
        res = catalog(odd_types, sizeof odd_types / sizeof odd_types[0]);
        assert_int_equal(pgsink_catalog_check_target(&m, res, err, sizeof err), 0);
        assert_int_equal(pgsink_sql_build(&m), 0);
        expect_in(m.sql_write, " WHERE t.\"raw\"::text IS DISTINCT FROM EXCLUDED.\"raw\"::text "
                               "OR t.\"spot\"::text IS DISTINCT FROM EXCLUDED.\"spot\"::text "
                               "OR t.\"docs\"::text IS DISTINCT FROM EXCLUDED.\"docs\"::text "
                               "OR t.\"ids\" IS DISTINCT FROM EXCLUDED.\"ids\"");
        PQclear(res);
        pgsink_map_free(&m);
    }

    /* Insert mode: no ON CONFLICT; quoting of odd names. */
    {
        static const char *const odd_rows[][8] = {
            S_ROW, { "t", "Sales", "Odd\"Name", "r", "true", "true", "true", "true" },
            { "c", "we\"ird", "integer", "false", "false", "false", "false", "false" },
        };
        char err2[512] = "";
        json_t *cols = json_loads("{\"we\\\"ird\": \"$.n\"}", 0, NULL);
        struct cfg_strlist none = { NULL, 0 };
        const char *key;
        assert_int_equal(pgsink_map_build(&m, "Sales.Odd\"Name", cols, &none, PGSINK_INSERT, "sluice_offsets",
                                          err2, sizeof err2, &key), 0);
        json_decref(cols);
        res = catalog(odd_rows, 3);
        assert_int_equal(pgsink_catalog_check_target(&m, res, err2, sizeof err2), 0);
        assert_int_equal(pgsink_sql_build(&m), 0);
        assert_string_equal(m.sql_write, "INSERT INTO \"Sales\".\"Odd\"\"Name\" AS t (\"we\"\"ird\") SELECT CAST(u.c1 AS integer) "
                                         "FROM (SELECT unnest($1::text[]) AS c1) AS u");
        assert_null(m.sql_delete);
        assert_string_equal(m.sql_copy, "COPY \"Sales\".\"Odd\"\"Name\" (\"we\"\"ird\") FROM STDIN");
        PQclear(res);
        pgsink_map_free(&m);
    }
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(pgsink_error_classify("22P02"), PGSINK_ERR_ROW);   /* invalid text representation */
    assert_int_equal(pgsink_error_classify("23505"), PGSINK_ERR_ROW);   /* unique violation */
    assert_int_equal(pgsink_error_classify("23502"), PGSINK_ERR_ROW);   /* not null violation */
    assert_int_equal(pgsink_error_classify("21000"), PGSINK_ERR_ROW);   /* "cannot affect row a second time" */
    assert_int_equal(pgsink_error_classify("54000"), PGSINK_ERR_ROW);   /* index row too large */
    assert_int_equal(pgsink_error_classify("40001"), PGSINK_ERR_RETRY); /* serialization failure */
    assert_int_equal(pgsink_error_classify("40P01"), PGSINK_ERR_RETRY); /* deadlock */
    assert_int_equal(pgsink_error_classify("53300"), PGSINK_ERR_RETRY); /* too many connections */
    assert_int_equal(pgsink_error_classify("57P01"), PGSINK_ERR_RETRY); /* terminated by an administrator */
    assert_int_equal(pgsink_error_classify("08006"), PGSINK_ERR_RETRY); /* connection failure */
    assert_int_equal(pgsink_error_classify(NULL), PGSINK_ERR_RETRY);    /* libpq: connection lost */
    assert_int_equal(pgsink_error_classify("42P01"), PGSINK_ERR_OTHER); /* undefined table */
    assert_int_equal(pgsink_error_classify("42501"), PGSINK_ERR_OTHER); /* insufficient privilege */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_build),
        cmocka_unit_test(test_map_errors),
        cmocka_unit_test(test_render_scalars),
        cmocka_unit_test(test_render_refuses_bad_json),
        cmocka_unit_test(test_render_json_and_arrays),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_row_upsert),
        cmocka_unit_test(test_row_tombstones_and_keys),
        cmocka_unit_test(test_catalog_accepts),
        cmocka_unit_test(test_catalog_refuses),
        cmocka_unit_test(test_catalog_offsets),
        cmocka_unit_test(test_sql),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
