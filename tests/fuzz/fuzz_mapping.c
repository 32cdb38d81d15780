/* libFuzzer target: how the redis and postgres sinks map a record to what they send. The input
 * is RECORD 0x1E RECORD ..., a record being [KEY 0x1F] VALUE (without 0x1F it has no key; an
 * empty value is a tombstone). Every record goes through:
 * - the redis sink's prepare (its shapes and projections are static in sinks/redis.c: reached
 *   through the sink's ops, built from a few fixed configurations as the loader builds them),
 *   and its in-place JSON reader (sinks/redis_key.h), checked against jansson;
 * - the postgres mapping (sinks/postgres_map.h: rows from column -> path mappings, key columns
 *   from the record key or the value, json and array columns), checked against jansson and the
 *   router's paths, and the postgres sink's prepare and describe.
 * Never a crash or a leak; a record is mapped or refused with a reason, and what it is mapped
 * to holds the values the router would read from it. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/cfg.h"
#include "lib/jsonpath.h"
#include "sinks/postgres_map.h"
#include "sinks/redis_key.h"
#include "sinks/sink.h"

#define MAX_RECORDS 16
#define TOPIC "accounts.v1"

#include "fuzz_check.h"

/* ---- fixed configurations ---- */

/* The redis sink's section, as in a sink file ("redis": {...}). */
static const char *const redis_confs[] = {
    "{\"url\": \"redis://127.0.0.1:6379/0\", \"key\": \"{key}\"}",
    "{\"url\": \"redis://127.0.0.1\", \"key\": \"customer:{$.tenant}:{key}\", \"shape\": \"hash\", \"ttl_s\": 86400}",
    ("{\"url\": \"redis://127.0.0.1\", \"key\": \"user:{$.id}\", \"shape\": \"hash\", "
     "\"fields\": [\"name\", \"email\", \"tags\"]}"),
    "{\"url\": \"redis://127.0.0.1\", \"key\": \"events:{topic}:{partition}\", \"shape\": \"list\", \"maxlen\": 100}",
    "{\"url\": \"redis://127.0.0.1\", \"key\": \"{$.a.b[0]}/{$[\\\"odd key\\\"]}\", \"shape\": \"stream\"}",
    "{\"url\": \"redis://127.0.0.1\", \"key\": \"snap:{$.id}\", \"fields\": [\"id\", \"status\", \"total\"]}",
    "{\"url\": \"redis://127.0.0.1\", \"key\": \"{{lit}}:{key}\", \"shape\": \"stream\", \"fields\": [\"ev\", \"n\"]}",
    "{\"url\": \"redis://127.0.0.1\", \"key\": \"{$}\", \"shape\": \"list\"}",
};

/* Postgres mappings; json and array columns are what the catalog would say of the table. */
struct pg_conf {
    const char *table;
    const char *columns;
    const char *keys[3];
    int mode;
    const char *json_cols[2];
    const char *array_cols[2];
};

static const struct pg_conf pg_confs[] = {
    { "billing.accounts",
      "{\"name\": \"$.name\", \"plan\": \"$.plan.code\", \"balance\": \"$.balance\", \"tags\": \"$.tags\", "
      "\"doc\": \"$\", \"source_offset\": \"@offset\", \"updated_at\": \"@timestamp\"}",
      { "id" }, PGSINK_UPSERT, { "doc" }, { "tags" } },
    { "events",
      "{\"k\": \"@key\", \"t\": \"@topic\", \"p\": \"@partition\", \"o\": \"@offset\", \"ts\": \"@timestamp\", "
      "\"second\": \"$.a.b[1]\", \"odd\": \"$[\\\"odd key\\\"]\", \"payload\": \"$.payload\"}",
      { NULL }, PGSINK_INSERT, { "payload" }, { NULL } },
    { "orders",
      "{\"tenant\": \"$.tenant\", \"id\": \"$.id\", \"status\": \"$.status\", \"items\": \"$.items\"}",
      { "tenant", "id" }, PGSINK_UPSERT, { NULL }, { "items" } },
    { "docs", "{\"k\": \"$\", \"v\": \"$.v\"}", { "k" }, PGSINK_UPSERT, { NULL }, { "v" } },
    { "public.things",
      "{\"id\": \"$.ids[0]\", \"name\": \"$[\\\"name\\\"]\", \"deep\": \"$.a.b.c.d\", \"raw\": \"$.a\"}",
      { "id" }, PGSINK_UPSERT, { "deep" }, { NULL } },
};

#define NREDIS (sizeof redis_confs / sizeof redis_confs[0])
#define NPG (sizeof pg_confs / sizeof pg_confs[0])

struct pg_fixture {
    struct pgsink_map map;
    struct jsonpath **paths;     /* per column: the router's reading of its path, or NULL */
};

static struct sink *redis_sinks[NREDIS];
static struct sink *pg_sink;
static struct pg_fixture pg_maps[NPG];

/* A fixture's check must find nothing: the first problem, if any, is printed. */
struct first_problem {
    struct sink_check check;
    char msg[512];
};

static void keep_first(struct sink_check *c, const char *key, const char *msg)
{
    struct first_problem *p = (struct first_problem *)c;
    if (!p->msg[0])
        snprintf(p->msg, sizeof p->msg, "%s: %s", key ? key : "", msg);
}

static struct sink *sink_make(const char *type, const char *section_text)
{
    const struct sink_ops *ops = sink_ops_find(type);
    json_t *section = json_loads(section_text, 0, NULL);
    struct cfg_errors errs = { 0 };
    struct first_problem problem = { { keep_first, 0 }, "" };
    struct sink *sk;

    CHECK(ops && section && ops->check && ops->prepare);
    CHECK((sk = calloc(1, ops->size)) != NULL);
    sk->ops = ops;
    if (cfg_apply(ops->opts, section, sk, NULL, type, NULL, &errs) != 0 || ops->check(sk, &problem.check) != 0) {
        fprintf(stderr, "fuzz_mapping: %s %s: %s\n", type, section_text, errs.n ? errs.msgs[0] : problem.msg);
        abort();
    }
    json_decref(section);
    return sk;
}

static void pg_fixture_make(struct pg_fixture *f, const struct pg_conf *c)
{
    json_t *columns = json_loads(c->columns, 0, NULL);
    char *keys[3];
    struct cfg_strlist key_columns = { keys, 0 };
    const char *key = NULL;
    char err[512];

    CHECK(columns != NULL);
    while (key_columns.n < 3 && c->keys[key_columns.n]) {
        keys[key_columns.n] = (char *)c->keys[key_columns.n];
        key_columns.n++;
    }
    if (pgsink_map_build(&f->map, c->table, columns, &key_columns, c->mode, "sluice_offsets", err, sizeof err,
                         &key) != 0) {
        fprintf(stderr, "fuzz_mapping: %s: %s: %s\n", c->table, key ? key : "", err);
        abort();
    }
    CHECK((f->paths = calloc(f->map.ncols, sizeof *f->paths)) != NULL);
    for (size_t i = 0; i < f->map.ncols; i++) {
        struct pgsink_column *col = &f->map.cols[i];
        json_t *spec = json_object_get(columns, col->name);
        for (size_t k = 0; k < 2; k++) {
            if (c->json_cols[k] && strcmp(c->json_cols[k], col->name) == 0)
                col->is_json = 1;
            if (c->array_cols[k] && strcmp(c->array_cols[k], col->name) == 0)
                col->is_array = 1;
        }
        if (col->source == PGSINK_SRC_VALUE)
            CHECK((f->paths[i] = jsonpath_compile(json_string_value(spec), err, sizeof err)) != NULL);
    }
    json_decref(columns);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < NREDIS; i++)
        redis_sinks[i] = sink_make("redis", redis_confs[i]);
    pg_sink = sink_make("postgres", "{\"conninfo\": \"host=127.0.0.1\", \"table\": \"billing.accounts\", "
                        "\"key_columns\": [\"id\"], \"columns\": {\"name\": \"$.name\", \"plan\": \"$.plan.code\", "
                        "\"doc\": \"$\", \"at\": \"@timestamp\"}}");
    for (size_t i = 0; i < NPG; i++)
        pg_fixture_make(&pg_maps[i], &pg_confs[i]);
    return 0;
}

/* ---- helpers ---- */

/* The deepest nesting of arrays and objects (exact for JSON, a bound for anything else). */
static size_t json_depth(const char *p, size_t n)
{
    size_t depth = 0, max = 0;
    int in_string = 0;

    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    return max;
}

/* What jansson refuses and RFC 8259 (and the sinks' own readers) allow: numbers beyond int64
 * and double, and a NUL (\u0000) in a member name. */
static int jansson_stricter(const json_error_t *jerr)
{
    return strstr(jerr->text, "too big") || strstr(jerr->text, "overflow") ||
           strstr(jerr->text, "NUL byte in object key");
}

static json_t *parse_any(const char *p, size_t n)
{
    return json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

/* One record of the input, as the router hands it to a sink. */
struct frec {
    struct sink_record rec;
    json_t *doc;                 /* the value as the router parses it; NULL: a tombstone or not JSON */
    json_error_t jerr;
    size_t depth;
};

static size_t records_parse(const uint8_t *p, const uint8_t *end, struct frec *recs)
{
    size_t n = 0;

    while (p <= end && n < MAX_RECORDS) {
        const uint8_t *stop = memchr(p, 0x1e, (size_t)(end - p));
        const uint8_t *sep, *value;
        struct frec *fr = &recs[n];
        size_t vlen;

        if (!stop)
            stop = end;
        memset(fr, 0, sizeof *fr);
        sep = memchr(p, 0x1f, (size_t)(stop - p));
        value = sep ? sep + 1 : p;
        vlen = (size_t)(stop - value);
        fr->rec.topic = TOPIC;
        fr->rec.partition = (int32_t)(n % 3);
        fr->rec.offset = 41 + (int64_t)n;
        fr->rec.timestamp_ms = n == 1 ? -1 : 1700000000123 + (int64_t)n * 86400000;
        if (sep) {
            fr->rec.key = (const char *)p;
            fr->rec.key_len = (size_t)(sep - p);
        }
        if (vlen) {
            fr->rec.value = (const char *)value;
            fr->rec.value_len = vlen;
            /* a raw NUL is never JSON, but jansson takes "0\0" for 0: not a reference there */
            if (memchr(value, '\0', vlen))
                snprintf(fr->jerr.text, sizeof fr->jerr.text, "a raw NUL byte");
            else
                fr->doc = json_loadb((const char *)value, vlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, &fr->jerr);
            fr->depth = json_depth((const char *)value, vlen);
        }
        n++;
        p = stop + 1;
    }
    return n;
}

static void check_reason(const char *err, size_t errlen)
{
    CHECK(memchr(err, '\0', errlen) != NULL);
    CHECK(err[0] != '\0');
}

/* ---- redis ---- */

/* A value read in place must hold what jansson reads there. */
static void rj_value_check(const struct json_slice *v, const json_t *expect)
{
    struct buf json = { 0 }, text = { 0 };
    json_t *back;

    CHECK(json_compact(&json, v) == 0);
    back = parse_any(json.p ? json.p : "", json.len);
    CHECK(back && json_equal(back, expect));
    json_decref(back);
    CHECK(redis_text_append(&text, v) == 0);
    switch (v->kind) {
    case JK_STRING:
        CHECK(json_is_string(expect) && text.len == json_string_length(expect) &&
              (text.len == 0 || memcmp(text.p, json_string_value(expect), text.len) == 0));
        break;
    case JK_NUMBER: CHECK(json_is_number(expect)); break;
    case JK_TRUE: CHECK(json_is_true(expect)); break;
    case JK_FALSE: CHECK(json_is_false(expect)); break;
    case JK_NULL: CHECK(json_is_null(expect)); break;
    case JK_OBJECT: CHECK(json_is_object(expect)); break;
    case JK_ARRAY: CHECK(json_is_array(expect)); break;
    default: CHECK(0);
    }
    if (v->kind != JK_STRING)   /* the stored text of anything but a string is its JSON */
        CHECK(text.len == json.len && (text.len == 0 || memcmp(text.p, json.p, text.len) == 0));
    buf_free(&json);
    buf_free(&text);
}

static void fuzz_rj(const struct frec *fr)
{
    struct json_slice doc, key, value;
    struct json_iter it;
    char err[256];
    int ok = sink_value_json(fr->rec.value, fr->rec.value_len, &doc, err, sizeof err) == 0;
    size_t n = 0;

    if (!ok)
        check_reason(err, sizeof err);
    if (fr->doc && fr->depth <= 1000)
        CHECK(ok);
    if (ok && !fr->doc)
        CHECK(jansson_stricter(&fr->jerr));
    if (ok && fr->doc) {
        if (doc.kind == JK_OBJECT) {
            json_iter_init(&it, &doc);
            while (json_iter_next(&it, &key, &value)) {
                struct buf name = { 0 };
                struct json_slice last;
                n++;
                CHECK(json_unescape(&name, &key) == 0);
                /* repeated names: the last one counts, as when jansson parses */
                last = json_get(&doc, name.p ? name.p : "", name.len);
                CHECK(last.kind != JK_NONE && last.p >= value.p);
                rj_value_check(&last, json_object_getn(fr->doc, name.p ? name.p : "", name.len));
                buf_free(&name);
            }
            CHECK(json_is_object(fr->doc) && json_object_size(fr->doc) <= n);
        } else {
            rj_value_check(&doc, fr->doc);
        }
    }
}

static void fuzz_redis_prepare(struct sink *sk, struct frec *fr)
{
    char err[512];
    int rc;

    err[0] = '\0';
    fr->rec.prepared = NULL;
    fr->rec.prepared_len = 0;
    rc = sk->ops->prepare(sk, &fr->rec, err, sizeof err);
    if (rc != 0) {
        check_reason(err, sizeof err);
        CHECK(fr->rec.prepared == NULL);
        if (fr->doc && fr->depth <= 1000)
            CHECK(!strstr(err, "not JSON"));
        return;
    }
    CHECK(fr->rec.prepared != NULL && fr->rec.prepared_len > 0);
    if (fr->rec.value && !fr->doc)
        CHECK(jansson_stricter(&fr->jerr));
    sk->ops->release(sk, &fr->rec);
    CHECK(fr->rec.prepared == NULL);
}

/* ---- postgres ---- */

/* The text of a column read from a JSON value must be what the router reads at its path. */
static void pg_value_check(const struct pgsink_column *c, const char *text, int32_t len, const json_t *expect)
{
    json_t *back;

    if (!expect || json_is_null(expect)) {
        CHECK(len == -1);
        return;
    }
    CHECK(len >= 0);
    if (c->is_json || !json_is_string(expect)) {
        if (c->is_array && !c->is_json && json_is_array(expect)) {
            CHECK(len >= 2 && text[0] == '{' && text[len - 1] == '}');   /* an array literal */
            return;
        }
        back = parse_any(text, (size_t)len);
        CHECK(back && json_equal(back, expect));
        json_decref(back);
        return;
    }
    CHECK((size_t)len == json_string_length(expect) && memcmp(text, json_string_value(expect), (size_t)len) == 0);
}

static void pg_row_check(const struct pg_fixture *f, const struct frec *fr, const struct pgsink_row *row, size_t rowlen)
{
    const struct pgsink_map *m = &f->map;
    int tombstone = fr->rec.value == NULL;
    json_t *keydoc = NULL;

    CHECK(row->ncols == m->ncols && row->tombstone == (uint32_t)tombstone);
    if (tombstone && fr->rec.key)
        keydoc = parse_any(fr->rec.key, fr->rec.key_len);
    for (size_t i = 0; i < m->ncols; i++) {
        const struct pgsink_column *c = &m->cols[i];
        int32_t len;
        const char *text = pgsink_row_get(row, i, &len);
        char num[32];

        CHECK((text == NULL) == (len < 0));
        if (text)
            CHECK(text >= (const char *)row && (size_t)(text - (const char *)row) + (size_t)len <= rowlen);
        if (c->is_key && m->mode == PGSINK_UPSERT)
            CHECK(text != NULL);
        if (tombstone && (!c->is_key || m->mode == PGSINK_INSERT)) {
            CHECK(text == NULL);
            continue;
        }
        switch (c->source) {
        case PGSINK_SRC_KEY:
            CHECK(fr->rec.key ? (size_t)len == fr->rec.key_len && memcmp(text, fr->rec.key, (size_t)len) == 0 : !text);
            break;
        case PGSINK_SRC_TOPIC:
            CHECK(text && (size_t)len == strlen(TOPIC) && memcmp(text, TOPIC, (size_t)len) == 0);
            break;
        case PGSINK_SRC_PARTITION:
        case PGSINK_SRC_OFFSET:
            snprintf(num, sizeof num, "%lld",
                     c->source == PGSINK_SRC_OFFSET ? (long long)fr->rec.offset : (long long)fr->rec.partition);
            CHECK(text && (size_t)len == strlen(num) && memcmp(text, num, (size_t)len) == 0);
            break;
        case PGSINK_SRC_TIMESTAMP:
            CHECK(fr->rec.timestamp_ms < 0 ? !text : text && len == 24 && text[10] == 'T' && text[23] == 'Z');
            break;
        case PGSINK_SRC_VALUE:
            if (tombstone && c->whole)   /* the whole key in the whole-document key column */
                CHECK((size_t)len == fr->rec.key_len && memcmp(text, fr->rec.key, (size_t)len) == 0);
            else if (tombstone && keydoc)
                pg_value_check(c, text, len, jsonpath_get(f->paths[i], keydoc));
            else if (!tombstone && fr->doc)
                pg_value_check(c, text, len, jsonpath_get(f->paths[i], fr->doc));
            break;
        }
    }
    json_decref(keydoc);
}

/* Two rows collapse in a batch exactly when their key columns hold the same texts. */
static void pg_same_key_check(const struct pgsink_map *m, const struct pgsink_row *a, const struct pgsink_row *b)
{
    int same = 1;

    for (size_t k = 0; k < m->nkeys; k++) {
        int32_t la, lb;
        const char *va = pgsink_row_get(a, m->keys[k], &la), *vb = pgsink_row_get(b, m->keys[k], &lb);
        if (la != lb || (la > 0 && memcmp(va, vb, (size_t)la) != 0))
            same = 0;
    }
    CHECK(pgsink_row_same_key(m, a, b) == same);
    CHECK(pgsink_row_same_key(m, b, a) == same);
}

static void fuzz_pg_map(const struct pg_fixture *f, struct frec *recs, size_t nrecs)
{
    struct pgsink_row *rows[MAX_RECORDS];
    size_t nrows = 0;

    for (size_t r = 0; r < nrecs; r++) {
        const struct frec *fr = &recs[r];
        struct pgsink_row *row = NULL;
        size_t len = 0;
        char err[512];

        if (pgsink_row_make(&f->map, &fr->rec, &row, &len, err, sizeof err) != 0) {
            check_reason(err, sizeof err);
            if (fr->doc && fr->depth <= 500)
                CHECK(!strstr(err, "not JSON"));
            continue;
        }
        CHECK(row && len >= sizeof *row);
        if (fr->rec.value && !fr->doc)
            CHECK(jansson_stricter(&fr->jerr));
        pg_row_check(f, fr, row, len);
        for (size_t i = 0; i < nrows; i++)
            pg_same_key_check(&f->map, rows[i], row);
        rows[nrows++] = row;
    }
    for (size_t i = 0; i < nrows; i++)
        free(rows[i]);
}

/* The whole value as one column's text, in each kind of column. */
static void fuzz_pg_render(const struct frec *fr)
{
    for (int kind = 0; kind < 4; kind++) {
        struct buf b = { 0 };
        char err[256];
        int rc = pgsink_render_text(&b, fr->rec.value, fr->rec.value_len, kind & 1, kind & 2, err, sizeof err);

        CHECK(rc >= -1 && rc <= 1);
        if (rc < 0)
            check_reason(err, sizeof err);
        if (fr->doc) {
            CHECK((rc == 0) == json_is_null(fr->doc));
            if (rc > 0 && (kind & 1)) {
                json_t *back = parse_any(b.p, b.len);
                CHECK(back && json_equal(back, fr->doc));
                json_decref(back);
            }
        }
        buf_free(&b);
    }
}

static void fuzz_pg_sink(struct frec *fr)
{
    char err[512], *text;
    json_t *described;

    err[0] = '\0';
    fr->rec.prepared = NULL;
    if (pg_sink->ops->prepare(pg_sink, &fr->rec, err, sizeof err) != 0) {
        check_reason(err, sizeof err);
        return;
    }
    if (pg_sink->ops->describe) {
        text = pg_sink->ops->describe(pg_sink, &fr->rec);
        described = text ? json_loads(text, JSON_ALLOW_NUL, NULL) : NULL;
        CHECK(described != NULL);
        json_decref(described);
        free(text);
    }
    pg_sink->ops->release(pg_sink, &fr->rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct frec recs[MAX_RECORDS];
    size_t nrecs = records_parse(data, data + size, recs);

    for (size_t r = 0; r < nrecs; r++) {
        if (recs[r].rec.value) {
            fuzz_rj(&recs[r]);
            fuzz_pg_render(&recs[r]);
        }
        for (size_t i = 0; i < NREDIS; i++)
            fuzz_redis_prepare(redis_sinks[i], &recs[r]);
        fuzz_pg_sink(&recs[r]);
    }
    for (size_t i = 0; i < NPG; i++)
        fuzz_pg_map(&pg_maps[i], recs, nrecs);
    for (size_t r = 0; r < nrecs; r++)
        json_decref(recs[r].doc);
    return 0;
}
