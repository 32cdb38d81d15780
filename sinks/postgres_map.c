/* The postgres sink's pure logic (see postgres_map.h): mapping options, rows, values, catalog
 * and SQL text (the catalog checks are in postgres_catalog.c). No I/O here: sinks/postgres.c runs
 * what this file builds. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "postgres_map.h"
#include "lib/jsonpath.h"

#define ROW_ARRAYS(n) ((size_t)(n) * (sizeof(int32_t) + sizeof(uint32_t)))

/* ------------------------------------------------------------------------------------------ */
/* SQL identifiers                                                                             */

int pgsink_quote_ident(struct buf *b, const char *name)
{
    if (buf_add(b, "\"", 1) != 0)
        return -1;
    for (const char *p = name; *p; p++)
        if (buf_add(b, p, 1) != 0 || (*p == '"' && buf_add(b, "\"", 1) != 0))
            return -1;
    return buf_add(b, "\"", 1);
}

/* ------------------------------------------------------------------------------------------ */
/* The mapping                                                                                 */

/* "name" or "schema.name" into its parts; both must be non-empty. */
static int split_qualified(const char *s, char **schema, char **name)
{
    const char *dot = strchr(s, '.');

    *schema = *name = NULL;
    if (!dot) {
        *name = strdup(s);
        return *name && **name ? 0 : -1;
    }
    if (dot == s || dot[1] == '\0' || strchr(dot + 1, '.'))
        return -1;
    *schema = strndup(s, (size_t)(dot - s));
    *name = strdup(dot + 1);
    return *schema && *name ? 0 : -1;
}

static const struct {
    const char *name;
    enum pgsink_source source;
} pgsink_sources[] = {
    { "@key", PGSINK_SRC_KEY }, { "@topic", PGSINK_SRC_TOPIC },
    { "@partition", PGSINK_SRC_PARTITION }, { "@offset", PGSINK_SRC_OFFSET },
    { "@timestamp", PGSINK_SRC_TIMESTAMP },
};

static int column_source(struct pgsink_column *c, const char *spec, char *err, size_t errlen)
{
    char why[256];

    if (spec[0] == '@') {
        const char *names[sizeof pgsink_sources / sizeof pgsink_sources[0]];
        const char *hint;
        for (size_t i = 0; i < sizeof pgsink_sources / sizeof pgsink_sources[0]; i++) {
            names[i] = pgsink_sources[i].name;
            if (strcmp(spec, names[i]) == 0) {
                c->source = pgsink_sources[i].source;
                return 0;
            }
        }
        hint = cfg_suggest(spec, names, sizeof names / sizeof names[0]);
        snprintf(err, errlen, "column \"%s\": unknown source \"%s\" (known: @key, @topic, @partition, "
                 "@offset, @timestamp, or a JSON path such as \"$.id\")%s%s%s", c->name, spec,
                 hint ? "; did you mean \"" : "", hint ? hint : "", hint ? "\"?" : "");
        return -1;
    }
    /* The router's compiler checks the syntax, so paths read the same everywhere in sluice. */
    if (!(c->path = jsonpath_compile(spec, why, sizeof why))) {
        snprintf(err, errlen, "column \"%s\": %s", c->name, why);
        return -1;
    }
    c->source = PGSINK_SRC_VALUE;
    c->whole = strcmp(spec, "$") == 0;
    return 0;
}

struct pgsink_column *pgsink_map_find(const struct pgsink_map *m, const char *name)
{
    for (size_t i = 0; i < m->ncols; i++)
        if (strcmp(m->cols[i].name, name) == 0)
            return &m->cols[i];
    return NULL;
}

int pgsink_map_build(struct pgsink_map *m, const char *table, const json_t *columns,
                     const struct cfg_strlist *key_columns, int mode, const char *offsets_table,
                     char *err, size_t errlen, const char **key)
{
    const char *name;
    json_t *spec;
    size_t from_key = 0;

    memset(m, 0, sizeof *m);
    m->mode = mode == PGSINK_INSERT ? PGSINK_INSERT : PGSINK_UPSERT;
    if (split_qualified(table, &m->schema, &m->table) != 0) {
        snprintf(err, errlen, "expected \"table\" or \"schema.table\"");
        *key = "table";
        goto fail;
    }
    if (split_qualified(offsets_table, &m->offsets_schema, &m->offsets_table) != 0) {
        snprintf(err, errlen, "expected \"table\" or \"schema.table\"");
        *key = "offsets_table";
        goto fail;
    }
    *key = "columns";
    if (!json_is_object(columns) || json_object_size(columns) == 0) {
        snprintf(err, errlen, "expected an object mapping each column to a JSON path or @key, e.g. "
                 "{\"id\": \"@key\", \"name\": \"$.name\"}");
        goto fail;
    }
    m->cols = calloc(json_object_size(columns) + key_columns->n, sizeof *m->cols);
    m->keys = calloc(key_columns->n ? key_columns->n : 1, sizeof *m->keys);
    if (!m->cols || !m->keys)
        goto oom;
    json_object_foreach((json_t *)columns, name, spec) {
        struct pgsink_column *c = &m->cols[m->ncols];
        if (!*name) {
            snprintf(err, errlen, "a column name is empty");
            goto fail;
        }
        if (!(c->name = strdup(name)))
            goto oom;
        m->ncols++;
        if (!json_is_string(spec)) {
            snprintf(err, errlen, "column \"%s\": expected a string (a JSON path such as \"$.id\", or @key)", name);
            goto fail;
        }
        if (column_source(c, json_string_value(spec), err, errlen) != 0)
            goto fail;
    }
    *key = "key_columns";
    if (m->mode == PGSINK_INSERT && key_columns->n > 0) {
        snprintf(err, errlen, "key_columns applies to mode \"upsert\" only (mode \"insert\" appends every record)");
        goto fail;
    }
    if (m->mode == PGSINK_UPSERT && key_columns->n == 0) {
        snprintf(err, errlen, "mode \"upsert\" needs key_columns: the columns of a unique constraint, e.g. [\"id\"]");
        goto fail;
    }
    for (size_t i = 0; i < key_columns->n; i++) {
        const char *kname = key_columns->v[i];
        struct pgsink_column *c = pgsink_map_find(m, kname);
        if (c && c->is_key) {
            snprintf(err, errlen, "\"%s\" is listed twice", kname);
            goto fail;
        }
        if (!c) {
            /* Not mapped: it takes the record key, which can fill one column only. */
            if (++from_key > 1) {
                snprintf(err, errlen, "key column \"%s\" is not in columns and another one already takes "
                         "the record key: map it, e.g. \"%s\": \"$.%s\"", kname, kname, kname);
                goto fail;
            }
            c = &m->cols[m->ncols];
            if (!(c->name = strdup(kname)))
                goto oom;
            m->ncols++;
            c->source = PGSINK_SRC_KEY;
        }
        c->is_key = 1;
        m->keys[m->nkeys++] = (size_t)(c - m->cols);
    }
    /* The columns read from the value, and the key columns among them (read from a JSON key
     * in a tombstone). */
    m->vcols = calloc(m->ncols, sizeof *m->vcols);
    m->kvcols = calloc(m->ncols, sizeof *m->kvcols);
    if (!m->vcols || !m->kvcols)
        goto oom;
    for (size_t i = 0; i < m->ncols; i++) {
        if (m->cols[i].source != PGSINK_SRC_VALUE)
            continue;
        m->vcols[m->nvcols++] = i;
        if (m->cols[i].is_key && !m->cols[i].whole)
            m->kvcols[m->nkvcols++] = i;
    }
    *key = NULL;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    pgsink_map_free(m);
    return -1;
}

void pgsink_map_free(struct pgsink_map *m)
{
    for (size_t i = 0; m->cols && i < m->ncols; i++) {
        free(m->cols[i].name);
        jsonpath_free(m->cols[i].path);
        free(m->cols[i].type);
    }
    free(m->cols);
    free(m->keys);
    free(m->vcols);
    free(m->kvcols);
    free(m->schema);
    free(m->table);
    free(m->offsets_schema);
    free(m->offsets_table);
    free(m->resolved_schema);
    free(m->display);
    free(m->offsets_display);
    free(m->sql_write);
    free(m->sql_insert);
    free(m->sql_delete);
    free(m->sql_cas_update);
    free(m->sql_cas_insert);
    free(m->sql_position);
    free(m->sql_load);
    free(m->sql_create_offsets);
    free(m->sql_copy);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------------------------ */
/* Values: slices of the record (lib/json.h) instead of a tree                                 */

/* The router's parser would build a tree (a malloc per node) for every record; the reader
 * checks the text and finds the mapped paths in one walk, and each value goes on as written, so
 * numbers reach PostgreSQL exactly (no double rounding, no 64-bit limit). */

#define NUL_IN_TEXT "a string holds a NUL character, which PostgreSQL text cannot store"

/* The values of the columns in @p cols found in @p doc, into @p out (by column). */
static void read_columns(const struct pgsink_map *m, const struct json_slice *doc, const size_t *cols, size_t ncols,
                         struct json_slice *out)
{
    const struct jsonpath *paths[ncols ? ncols : 1];
    struct json_slice found[ncols ? ncols : 1];

    paths[0] = NULL;   /* gcc cannot tell that json_lookup_many reads no more than ncols of them */
    for (size_t i = 0; i < ncols; i++)
        paths[i] = m->cols[cols[i]].path;
    json_lookup_many(doc, paths, ncols, found);
    for (size_t i = 0; i < ncols; i++)
        out[cols[i]] = found[i];
}

/* Appends a string's characters; -1 on a NUL character (err set) or out of memory. */
static int text_unescape(struct buf *b, const struct json_slice *v, char *err, size_t errlen)
{
    size_t before = b->len;

    if (json_unescape(b, v) != 0)
        return -1;
    if (b->len > before && memchr(b->p + before, '\0', b->len - before)) {
        snprintf(err, errlen, NUL_IN_TEXT);
        return -1;
    }
    return 0;
}

/* An element of an array literal: always quoted, so empty strings, blanks, commas, braces and
 * the word NULL survive. */
static int array_quoted(struct buf *b, const char *s, size_t n)
{
    size_t run = 0;
    if (buf_add(b, "\"", 1) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"' && s[i] != '\\')
            continue;
        if (buf_add(b, s + run, i - run) != 0 || buf_add(b, "\\", 1) != 0)
            return -1;
        run = i;
    }
    if (buf_add(b, s + run, n - run) != 0)
        return -1;
    return buf_add(b, "\"", 1);
}

/* A JSON array (checked) as an array literal: [1, [2, null], "a"] -> {1,{2,NULL},"a"}. */
static int array_literal(struct buf *b, const struct json_slice *array, char *err, size_t errlen)
{
    struct json_slice e;
    struct json_iter it;
    int first = 1;

    if (buf_add(b, "{", 1) != 0)
        return -1;
    json_iter_init(&it, array);
    while (json_iter_next(&it, NULL, &e)) {
        if (!first && buf_add(b, ",", 1) != 0)
            return -1;
        first = 0;
        switch (e.kind) {
        case JK_NULL:
            if (buf_add(b, "NULL", 4) != 0)
                return -1;
            break;
        case JK_ARRAY:
            if (array_literal(b, &e, err, errlen) != 0)
                return -1;
            break;
        case JK_STRING: {
            struct buf text = { 0 };
            int rc = text_unescape(&text, &e, err, errlen);
            if (rc == 0)
                rc = array_quoted(b, text.p ? text.p : "", text.len);
            buf_free(&text);
            if (rc != 0)
                return -1;
            break;
        }
        case JK_OBJECT:
            if (array_quoted(b, e.p, e.n) != 0)
                return -1;
            break;
        default:
            if (buf_add(b, e.p, e.n) != 0)
                return -1;
        }
    }
    return buf_add(b, "}", 1);
}

/* Appends the text PostgreSQL converts for @p v. 1 appended, 0 SQL NULL, -1 error. */
static int render_slice(struct buf *b, const struct json_slice *v, int is_json, int is_array,
                        char *err, size_t errlen)
{
    size_t before = b->len;
    int rc;

    if (v->kind == JK_NONE || v->kind == JK_NULL)
        return 0;
    if (is_json)
        rc = buf_add(b, v->p, v->n);
    else if (v->kind == JK_STRING)
        rc = text_unescape(b, v, err, errlen);
    else if (v->kind == JK_ARRAY && is_array)
        rc = array_literal(b, v, err, errlen);
    else
        rc = buf_add(b, v->p, v->n);   /* numbers and literals as written; objects as JSON */
    if (rc != 0) {
        b->len = before;
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 1;
}

int pgsink_render_text(struct buf *b, const char *json, size_t len, int is_json, int is_array,
                       char *err, size_t errlen)
{
    struct json_slice v;

    err[0] = '\0';
    if (sink_value_json(json, len, &v, err, errlen) != 0)
        return -1;
    return render_slice(b, &v, is_json, is_array, err, errlen);
}

/* ------------------------------------------------------------------------------------------ */
/* Rows                                                                                        */

static int32_t *row_lens(const struct pgsink_row *row)
{
    return (int32_t *)(void *)((char *)row + sizeof *row);
}

static uint32_t *row_offs(const struct pgsink_row *row)
{
    return (uint32_t *)(void *)((char *)row + sizeof *row + (size_t)row->ncols * sizeof(int32_t));
}

const char *pgsink_row_get(const struct pgsink_row *row, size_t col, int32_t *len)
{
    const char *data = (const char *)row + sizeof *row + ROW_ARRAYS(row->ncols);
    *len = row_lens(row)[col];
    return *len < 0 ? NULL : data + row_offs(row)[col];
}

int pgsink_row_same_key(const struct pgsink_map *m, const struct pgsink_row *a,
                        const struct pgsink_row *b)
{
    if (a->key_hash != b->key_hash)
        return 0;
    for (size_t k = 0; k < m->nkeys; k++) {
        int32_t la, lb;
        const char *va = pgsink_row_get(a, m->keys[k], &la), *vb = pgsink_row_get(b, m->keys[k], &lb);
        if (la != lb || (la > 0 && memcmp(va, vb, (size_t)la) != 0))
            return 0;
    }
    return 1;
}

static int buf_timestamp(struct buf *b, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char text[48];

    if (!gmtime_r(&secs, &tm))
        return -1;
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    return buf_printf(b, "%s.%03dZ", text, (int)(ms % 1000));
}

int pgsink_row_make(const struct pgsink_map *m, const struct sink_record *rec,
                    struct pgsink_row **out, size_t *outlen, char *err, size_t errlen)
{
    size_t head = sizeof(struct pgsink_row) + ROW_ARRAYS(m->ncols);
    struct buf b = { 0 };
    struct pgsink_row *row;
    struct json_slice doc, vals[m->ncols ? m->ncols : 1];
    char why[256];
    int tombstone = rec->value == NULL;
    uint64_t hash = 1469598103934665603ull;   /* FNV-1a */

    err[0] = why[0] = '\0';
    memset(vals, 0, sizeof vals);
    if (!tombstone) {
        if (sink_value_json(rec->value, rec->value_len, &doc, err, errlen) != 0)
            return -1;
        read_columns(m, &doc, m->vcols, m->nvcols, vals);
    } else if (m->mode == PGSINK_UPSERT && m->nkvcols > 0) {
        /* A tombstone has no value: key columns mapped to a path are read in the key. */
        if (!rec->key || json_read(rec->key, rec->key_len, &doc, why, sizeof why) != 0) {
            snprintf(err, errlen, "tombstone: key column \"%s\" is read from the value, which a tombstone lacks, "
                     "and the record key is not a JSON document to read it from%s%s%s", m->cols[m->kvcols[0]].name,
                     why[0] ? " (" : "", why, why[0] ? ")" : "");
            return -1;
        }
        read_columns(m, &doc, m->kvcols, m->nkvcols, vals);
    }
    if (buf_add(&b, NULL, head + (tombstone ? 32 : rec->value_len + 64)) != 0)
        goto oom;
    b.len = head;
    for (size_t i = 0; i < m->ncols; i++) {
        const struct pgsink_column *c = &m->cols[i];
        size_t start = b.len - head;
        int rc = 1;

        if (tombstone && (!c->is_key || m->mode == PGSINK_INSERT)) {
            rc = 0;
        } else {
            switch (c->source) {
            case PGSINK_SRC_KEY:
                rc = rec->key ? (buf_add(&b, rec->key, rec->key_len) == 0 ? 1 : -1) : 0;
                break;
            case PGSINK_SRC_TOPIC:
                rc = buf_adds(&b, rec->topic) == 0 ? 1 : -1;
                break;
            case PGSINK_SRC_PARTITION:
                rc = buf_printf(&b, "%" PRId32, rec->partition) == 0 ? 1 : -1;
                break;
            case PGSINK_SRC_OFFSET:
                rc = buf_printf(&b, "%" PRId64, rec->offset) == 0 ? 1 : -1;
                break;
            case PGSINK_SRC_TIMESTAMP:
                rc = rec->timestamp_ms >= 0 ? (buf_timestamp(&b, rec->timestamp_ms) == 0 ? 1 : -1) : 0;
                break;
            case PGSINK_SRC_VALUE:
                if (tombstone && c->whole)
                    rc = rec->key ? (buf_add(&b, rec->key, rec->key_len) == 0 ? 1 : -1) : 0;
                else
                    rc = render_slice(&b, &vals[i], c->is_json, c->is_array, err, errlen);
                break;
            }
        }
        if (rc < 0) {
            if (!err[0])
                goto oom;
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errlen, "column \"%s\": %s", c->name, why);
            goto fail;
        }
        if (rc == 0 && c->is_key && m->mode == PGSINK_UPSERT) {
            if (c->source == PGSINK_SRC_KEY)
                snprintf(err, errlen, "the record has no key, and key column \"%s\" takes the record key", c->name);
            else
                snprintf(err, errlen, "key column \"%s\" is missing or null in the %s", c->name,
                         tombstone ? "record key" : "value");
            goto fail;
        }
        if (b.len - head - start > INT32_MAX) {
            snprintf(err, errlen, "column \"%s\": value too large", c->name);
            goto fail;
        }
        row = (struct pgsink_row *)(void *)b.p;
        row->ncols = (uint32_t)m->ncols;
        row_lens(row)[i] = rc == 0 ? -1 : (int32_t)(b.len - head - start);
        row_offs(row)[i] = (uint32_t)start;
        if (rc != 0 && c->is_key) {
            for (size_t j = start; j < b.len - head; j++)
                hash = (hash ^ (unsigned char)b.p[head + j]) * 1099511628211ull;
            hash = (hash ^ 0xffu) * 1099511628211ull;   /* separates ("ab","c") from ("a","bc") */
        }
    }
    row = (struct pgsink_row *)(void *)b.p;
    row->tombstone = (uint32_t)tombstone;
    row->ncols = (uint32_t)m->ncols;
    row->key_hash = hash;
    *outlen = b.len;
    *out = row;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    buf_free(&b);
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* SQL                                                                                         */

static int buf_qualified(struct buf *b, const char *schema, const char *name)
{
    return pgsink_quote_ident(b, schema) || buf_add(b, ".", 1) || pgsink_quote_ident(b, name);
}

/* "CAST(u.cN AS type)", or "u.cN" for text, which needs no conversion. The type carries no
 * modifier: the assignment to the column then checks lengths (varchar(n) refuses a longer
 * value instead of the explicit cast's silent truncation). */
static int buf_cast(struct buf *b, const struct pgsink_column *c, size_t i)
{
    if (strcmp(c->type, "text") == 0)
        return buf_printf(b, "u.c%zu", i + 1);
    return buf_printf(b, "CAST(u.c%zu AS %s)", i + 1, c->type);
}

/* "(SELECT unnest($1::text[]) AS c1, ...) AS u" over @p n columns; with @p idx, column i is
 * u.c(idx[i]+1). Set-returning functions in the select list stream their rows in lockstep
 * (ProjectSet); unnest(a, b, ...) in FROM would first copy every array into a tuplestore, which
 * costs the server ~15% more per row. */
static int buf_unnest(struct buf *b, size_t n, const size_t *idx)
{
    int rc = buf_adds(b, "(SELECT ");
    for (size_t i = 0; i < n; i++)
        rc |= buf_printf(b, "%sunnest($%zu::text[]) AS c%zu", i ? ", " : "", i + 1, (idx ? idx[i] : i) + 1);
    return rc | buf_adds(b, ") AS u");
}

/* Whether the server compares values of @p type (as the catalog names it, without modifier) with
 * "=": the built-in types a table usually holds, and arrays of them. Others (json, xml, point,
 * types of extensions) may have no equality operator, so their values are compared as texts. */
static int type_has_equality(const char *type)
{
    static const char *const types[] = {
        "text", "character varying", "character", "\"char\"", "name", "smallint", "integer", "bigint",
        "numeric", "real", "double precision", "boolean", "date", "timestamp with time zone",
        "timestamp without time zone", "time without time zone", "time with time zone", "interval",
        "uuid", "bytea", "jsonb", "inet", "cidr", "macaddr", "money", "oid", NULL,
    };
    size_t len = strlen(type);

    if (len > 2 && strcmp(type + len - 2, "[]") == 0)
        len -= 2;
    for (size_t i = 0; types[i]; i++)
        if (strlen(types[i]) == len && strncmp(type, types[i], len) == 0)
            return 1;
    return 0;
}

/* " WHERE t.a IS DISTINCT FROM EXCLUDED.a OR ...": an existing row whose values are all the same
 * is left alone (locked, not rewritten: no new row version, no index entries, no WAL). */
static int buf_changed(struct buf *b, const struct pgsink_map *m)
{
    int rc = 0, first = 1;

    for (size_t i = 0; i < m->ncols; i++) {
        const struct pgsink_column *c = &m->cols[i];
        const char *as_text = type_has_equality(c->type) ? "" : "::text";
        if (c->is_key)
            continue;
        rc |= buf_adds(b, first ? " WHERE t." : " OR t.") | pgsink_quote_ident(b, c->name) |
              buf_printf(b, "%s IS DISTINCT FROM EXCLUDED.", as_text) | pgsink_quote_ident(b, c->name) |
              buf_adds(b, as_text);
        first = 0;
    }
    return rc;
}

int pgsink_sql_build(struct pgsink_map *m)
{
    struct buf b = { 0 }, off = { 0 }, table = { 0 };
    const char *osch = pgsink_offsets_schema(m);
    int rc = 0;

    rc |= buf_qualified(&table, m->resolved_schema, m->table);
    rc |= buf_qualified(&off, osch, m->offsets_table);
    if (rc)
        goto oom;

    /* The rows: one text[] parameter per column, converted by the server. */
    rc |= buf_printf(&b, "INSERT INTO %s AS t (", table.p);
    for (size_t i = 0; i < m->ncols; i++)
        rc |= (i ? buf_adds(&b, ", ") : 0) | pgsink_quote_ident(&b, m->cols[i].name);
    rc |= buf_adds(&b, ") SELECT ");
    for (size_t i = 0; i < m->ncols; i++)
        rc |= (i ? buf_adds(&b, ", ") : 0) | buf_cast(&b, &m->cols[i], i);
    rc |= buf_adds(&b, " FROM ") | buf_unnest(&b, m->ncols, NULL);
    if (m->mode == PGSINK_UPSERT) {
        int first = 1;
        free(m->sql_insert);
        if (!(m->sql_insert = strdup(b.p)))
            goto oom;
        rc |= buf_adds(&b, " ON CONFLICT (");
        for (size_t k = 0; k < m->nkeys; k++)
            rc |= (k ? buf_adds(&b, ", ") : 0) | pgsink_quote_ident(&b, m->cols[m->keys[k]].name);
        rc |= buf_adds(&b, ") DO ");
        for (size_t i = 0; i < m->ncols; i++) {
            if (m->cols[i].is_key)
                continue;
            rc |= buf_adds(&b, first ? "UPDATE SET " : ", ");
            rc |= pgsink_quote_ident(&b, m->cols[i].name) | buf_adds(&b, " = EXCLUDED.") |
                  pgsink_quote_ident(&b, m->cols[i].name);
            first = 0;
        }
        if (first)
            rc |= buf_adds(&b, "NOTHING");   /* every column is a key column */
        else
            rc |= buf_changed(&b, m);
    }
    if (rc)
        goto oom;
    free(m->sql_write);
    m->sql_write = buf_steal(&b, NULL);

    if (m->mode == PGSINK_UPSERT) {
        rc |= buf_printf(&b, "DELETE FROM %s AS t USING ", table.p) | buf_unnest(&b, m->nkeys, m->keys);
        rc |= buf_adds(&b, " WHERE ");
        for (size_t k = 0; k < m->nkeys; k++) {
            const struct pgsink_column *c = &m->cols[m->keys[k]];
            rc |= buf_adds(&b, k ? " AND t." : "t.") | pgsink_quote_ident(&b, c->name) | buf_adds(&b, " = ") |
                  buf_cast(&b, c, m->keys[k]);
        }
        if (rc)
            goto oom;
        free(m->sql_delete);
        m->sql_delete = buf_steal(&b, NULL);
    }

    /* The position's compare-and-set: 1 / count(*) raises division_by_zero when no row
     * matched, which aborts the batch's transaction before its rows are applied (the alias
     * explains the error where the server logs the statement). */
    rc |= buf_printf(&b, "WITH c AS (UPDATE %s SET next_offset = $4::bigint%s WHERE sink = $1::text AND topic = $2::text "
                  "AND \"partition\" = $3::integer AND next_offset = $5::bigint RETURNING 1) "
                  "SELECT 1 / count(*)::integer AS \"sluice: the stored position is not the expected one\" FROM c",
                  off.p, m->offsets_updated_at ? ", updated_at = now()" : "");
    if (rc)
        goto oom;
    free(m->sql_cas_update);
    m->sql_cas_update = buf_steal(&b, NULL);
    rc |= buf_printf(&b, "WITH c AS (INSERT INTO %s (sink, topic, \"partition\", next_offset) "
                  "VALUES ($1::text, $2::text, $3::integer, $4::bigint) ON CONFLICT DO NOTHING RETURNING 1) "
                  "SELECT 1 / count(*)::integer AS \"sluice: the stored position is not the expected one\" FROM c", off.p);
    if (rc)
        goto oom;
    free(m->sql_cas_insert);
    m->sql_cas_insert = buf_steal(&b, NULL);
    rc |= buf_printf(&b, "SELECT next_offset FROM %s WHERE sink = $1::text AND topic = $2::text "
                  "AND \"partition\" = $3::integer", off.p);
    if (rc)
        goto oom;
    free(m->sql_position);
    m->sql_position = buf_steal(&b, NULL);
    rc |= buf_printf(&b, "SELECT \"partition\", next_offset FROM %s WHERE sink = $1::text AND topic = $2::text "
                  "AND \"partition\" = ANY ($3::integer[])", off.p);
    if (rc)
        goto oom;
    free(m->sql_load);
    m->sql_load = buf_steal(&b, NULL);
    rc |= buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (sink text NOT NULL, topic text NOT NULL, "
                  "\"partition\" integer NOT NULL, next_offset bigint NOT NULL, "
                  "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sink, topic, \"partition\"))", off.p);
    if (rc)
        goto oom;
    free(m->sql_create_offsets);
    m->sql_create_offsets = buf_steal(&b, NULL);

    if (m->mode == PGSINK_INSERT) {
        rc |= buf_printf(&b, "COPY %s (", table.p);
        for (size_t i = 0; i < m->ncols; i++)
            rc |= (i ? buf_adds(&b, ", ") : 0) | pgsink_quote_ident(&b, m->cols[i].name);
        rc |= buf_adds(&b, ") FROM STDIN");
        if (rc)
            goto oom;
        free(m->sql_copy);
        m->sql_copy = buf_steal(&b, NULL);
    }
    buf_free(&off);
    buf_free(&table);
    return 0;
oom:
    buf_free(&b);
    buf_free(&off);
    buf_free(&table);
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

enum pgsink_error_class pgsink_error_classify(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return PGSINK_ERR_RETRY;   /* no SQLSTATE: libpq's own (connection lost, out of memory) */
    if (strncmp(sqlstate, "21", 2) == 0 || strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
        strcmp(sqlstate, "54000") == 0)
        return PGSINK_ERR_ROW;
    if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "40", 2) == 0 || strncmp(sqlstate, "53", 2) == 0 ||
        strncmp(sqlstate, "57", 2) == 0 || strncmp(sqlstate, "58", 2) == 0 || strcmp(sqlstate, "55P03") == 0 ||
        strcmp(sqlstate, "55006") == 0)
        return PGSINK_ERR_RETRY;
    return PGSINK_ERR_OTHER;
}

void pgsink_error_text(const PGresult *res, char *out, size_t outlen)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *column = res ? PQresultErrorField(res, PG_DIAG_COLUMN_NAME) : NULL;

    if (!msg) {
        const char *whole = res ? PQresultErrorMessage(res) : "";
        size_t n = strlen(whole);
        while (n > 0 && (whole[n - 1] == '\n' || whole[n - 1] == ' '))
            n--;
        snprintf(out, outlen, "%.*s", (int)n, n ? whole : "unknown error");
        return;
    }
    snprintf(out, outlen, "%s%s%s%s%s%s%s%s", state ? state : "", state ? ": " : "", msg,
             detail ? " (" : "", detail ? detail : "", detail ? ")" : "",
             column && !strstr(msg, column) ? " column " : "", column && !strstr(msg, column) ? column : "");
}
