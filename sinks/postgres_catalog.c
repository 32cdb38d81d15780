/* The postgres sink's catalog checks (postgres_map.h): one query reads the target table, its
 * columns, unique indexes and the user's privileges, and the positions table; the answers are
 * checked against the mapping with reasons a person can act on. Pure logic, no I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "postgres_map.h"

/* ------------------------------------------------------------------------------------------ */
/* The catalog                                                                                 */

/* One row per fact, all text: 's' the session (user, search_path), 't' the table (schema, name,
 * relkind, privileges INSERT UPDATE DELETE SELECT), 'c' a column (name, type without modifier,
 * NOT NULL, has a default or identity, generated, json/jsonb, array), 'k' a column of a unique
 * index usable as an ON CONFLICT arbiter (index, column). */
const char pgsink_catalog_sql[] =
    "WITH s AS (SELECT pg_catalog.current_schemas(false)::text[] AS path), "
    "t AS (SELECT c.oid, n.nspname::text AS nsp, c.relname::text AS rel, c.relkind::text AS kind "
    "      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, s "
    "      WHERE c.relname = $2::text AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
    "        AND CASE WHEN $1::text IS NULL THEN n.nspname = ANY (s.path) ELSE n.nspname = $1::text END "
    "      ORDER BY pg_catalog.array_position(s.path, n.nspname::text) LIMIT 1) "
    "SELECT 's', current_user::text, pg_catalog.array_to_string(s.path, ', '), NULL, NULL, NULL, NULL, NULL FROM s "
    "UNION ALL "
    "SELECT 't', t.nsp, t.rel, t.kind, "
    "       pg_catalog.has_table_privilege(t.oid, 'INSERT')::text, pg_catalog.has_table_privilege(t.oid, 'UPDATE')::text, "
    "       pg_catalog.has_table_privilege(t.oid, 'DELETE')::text, pg_catalog.has_table_privilege(t.oid, 'SELECT')::text "
    "FROM t "
    "UNION ALL "
    "SELECT 'c', a.attname::text, pg_catalog.format_type(a.atttypid, NULL), a.attnotnull::text, "
    "       (a.atthasdef OR a.attidentity <> '')::text, (a.attgenerated <> '')::text, "
    "       (bt.typname IN ('json', 'jsonb') AND bt.typnamespace = 'pg_catalog'::regnamespace)::text, "
    "       (bt.typcategory = 'A')::text "
    "FROM t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid "
    "JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END "
    "UNION ALL "
    "SELECT 'k', ic.relname::text, a.attname::text, NULL, NULL, NULL, NULL, NULL "
    "FROM t JOIN pg_catalog.pg_index i ON i.indrelid = t.oid "
    "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
    "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
    "WHERE i.indisunique AND i.indimmediate AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL "
    "  AND k.ord <= i.indnkeyatts";

struct catalog {
    const char *user, *path;
    const char *nsp, *rel, *relkind;
    int can_insert, can_update, can_delete, can_select;
    int found;
};

static int is_true(const PGresult *res, int row, int col)
{
    return strcmp(PQgetvalue(res, row, col), "true") == 0;
}

static void catalog_read(const PGresult *res, struct catalog *cat)
{
    memset(cat, 0, sizeof *cat);
    cat->user = cat->path = "";
    for (int r = 0; r < PQntuples(res); r++) {
        const char *kind = PQgetvalue(res, r, 0);
        if (strcmp(kind, "s") == 0) {
            cat->user = PQgetvalue(res, r, 1);
            cat->path = PQgetvalue(res, r, 2);
        } else if (strcmp(kind, "t") == 0) {
            cat->found = 1;
            cat->nsp = PQgetvalue(res, r, 1);
            cat->rel = PQgetvalue(res, r, 2);
            cat->relkind = PQgetvalue(res, r, 3);
            cat->can_insert = is_true(res, r, 4);
            cat->can_update = is_true(res, r, 5);
            cat->can_delete = is_true(res, r, 6);
            cat->can_select = is_true(res, r, 7);
        }
    }
}

static int catalog_column(const PGresult *res, const char *name)
{
    for (int r = 0; r < PQntuples(res); r++)
        if (strcmp(PQgetvalue(res, r, 0), "c") == 0 && strcmp(PQgetvalue(res, r, 1), name) == 0)
            return r;
    return -1;
}

/* " (did you mean \"x\"?)" among the table's columns, or "". */
static void column_hint(const PGresult *res, const char *name, char *out, size_t outlen)
{
    const char **names = calloc((size_t)PQntuples(res) + 1, sizeof *names);
    size_t n = 0;
    const char *hint = NULL;

    out[0] = '\0';
    if (!names)
        return;
    for (int r = 0; r < PQntuples(res); r++) {
        if (strcmp(PQgetvalue(res, r, 0), "c") != 0)
            continue;
        names[n++] = PQgetvalue(res, r, 1);
        if (strcasecmp(PQgetvalue(res, r, 1), name) == 0)
            hint = PQgetvalue(res, r, 1);   /* names are exact: "Name" is not "name" */
    }
    if (!hint)
        hint = cfg_suggest(name, names, n);
    if (hint)
        snprintf(out, outlen, " (did you mean \"%s\"?)", hint);
    free(names);
}

static const char *relkind_name(const char *k)
{
    switch (k[0]) {
    case 'v': return "a view";
    case 'm': return "a materialized view";
    case 'f': return "a foreign table";
    default: return "not a table";
    }
}

/* Unique indexes whose column set is exactly @p want (n names); 1 when one exists. Lists the
 * unique keys it saw in @p seen. */
static int catalog_unique_on(const PGresult *res, const char *const *want, size_t n,
                             struct buf *seen)
{
    int found = 0;

    for (int r = 0; r < PQntuples(res); r++) {
        const char *index = PQgetvalue(res, r, 1);
        size_t total = 0, matched = 0;
        int first = 1;
        if (strcmp(PQgetvalue(res, r, 0), "k") != 0)
            continue;
        /* Handle each index once, at its first row. */
        for (int q = 0; q < r; q++)
            if (strcmp(PQgetvalue(res, q, 0), "k") == 0 && strcmp(PQgetvalue(res, q, 1), index) == 0)
                first = 0;
        if (!first)
            continue;
        if (seen->len)
            buf_adds(seen, ", ");
        buf_adds(seen, "(");
        for (int q = r; q < PQntuples(res); q++) {
            const char *col;
            if (strcmp(PQgetvalue(res, q, 0), "k") != 0 || strcmp(PQgetvalue(res, q, 1), index) != 0)
                continue;
            col = PQgetvalue(res, q, 2);
            if (total++)
                buf_adds(seen, ", ");
            buf_adds(seen, col);
            for (size_t i = 0; i < n; i++)
                matched += strcmp(want[i], col) == 0;
        }
        buf_adds(seen, ")");
        if (total == n && matched == n)
            found = 1;
    }
    return found;
}

static char *qualified_display(const char *schema, const char *name)
{
    char *s;
    if (asprintf(&s, "%s.%s", schema, name) < 0)
        return NULL;
    return s;
}

int pgsink_catalog_check_target(struct pgsink_map *m, const PGresult *res, char *err, size_t errlen)
{
    struct catalog cat;
    char hint[160];
    const char *missing_priv = NULL;

    catalog_read(res, &cat);
    if (!cat.found) {
        if (m->schema)
            snprintf(err, errlen, "table %s.%s does not exist", m->schema, m->table);
        else
            snprintf(err, errlen, "table %s does not exist in the search_path (%s)", m->table,
                     cat.path[0] ? cat.path : "empty");
        return -1;
    }
    free(m->display);
    free(m->resolved_schema);
    m->display = qualified_display(cat.nsp, cat.rel);
    m->resolved_schema = strdup(cat.nsp);
    if (!m->display || !m->resolved_schema) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (strcmp(cat.relkind, "r") != 0 && strcmp(cat.relkind, "p") != 0) {
        snprintf(err, errlen, "%s is %s: the postgres sink writes tables", m->display, relkind_name(cat.relkind));
        return -1;
    }
    for (size_t i = 0; i < m->ncols; i++) {
        struct pgsink_column *c = &m->cols[i];
        int r = catalog_column(res, c->name);
        if (r < 0) {
            column_hint(res, c->name, hint, sizeof hint);
            snprintf(err, errlen, "table %s has no column \"%s\"%s", m->display, c->name, hint);
            return -1;
        }
        if (is_true(res, r, 5)) {
            snprintf(err, errlen, "column \"%s\" of %s is generated: it cannot be written (remove it from columns)",
                     c->name, m->display);
            return -1;
        }
        free(c->type);
        if (!(c->type = strdup(PQgetvalue(res, r, 2)))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        c->is_json = is_true(res, r, 6);
        c->is_array = is_true(res, r, 7);
    }
    /* A NOT NULL column without a default that nothing fills would refuse every row. */
    for (int r = 0; r < PQntuples(res); r++) {
        if (strcmp(PQgetvalue(res, r, 0), "c") != 0 || !is_true(res, r, 3) || is_true(res, r, 4) ||
            is_true(res, r, 5) || pgsink_map_find(m, PQgetvalue(res, r, 1)))
            continue;
        snprintf(err, errlen, "column \"%s\" of %s is NOT NULL without a default and not in columns: every "
                 "insert would fail (map it, or give it a default)", PQgetvalue(res, r, 1), m->display);
        return -1;
    }
    if (m->mode == PGSINK_UPSERT) {
        const char **want = calloc(m->nkeys, sizeof *want);
        struct buf seen = { 0 }, keys = { 0 };
        int ok;
        if (!want) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t k = 0; k < m->nkeys; k++) {
            want[k] = m->cols[m->keys[k]].name;
            if (k)
                buf_adds(&keys, ", ");
            buf_adds(&keys, want[k]);
        }
        ok = catalog_unique_on(res, want, m->nkeys, &seen);
        if (!ok)
            snprintf(err, errlen, "table %s has no unique constraint on (%s), which mode \"upsert\" needs for its "
                     "key_columns (%s%s); add one, e.g. ALTER TABLE %s ADD PRIMARY KEY (%s)",
                     m->display, keys.p ? keys.p : "", seen.len ? "its unique keys: " : "it has no unique key",
                     seen.len ? seen.p : "", m->display, keys.p ? keys.p : "");
        free(want);
        buf_free(&seen);
        buf_free(&keys);
        if (!ok)
            return -1;
    }
    if (!cat.can_insert)
        missing_priv = "INSERT";
    else if (m->mode == PGSINK_UPSERT && !cat.can_update)
        missing_priv = "UPDATE";
    else if (m->mode == PGSINK_UPSERT && !cat.can_delete)
        missing_priv = "DELETE";
    else if (m->mode == PGSINK_UPSERT && !cat.can_select)
        missing_priv = "SELECT";   /* ON CONFLICT DO UPDATE reads the row */
    if (missing_priv) {
        snprintf(err, errlen, "role \"%s\" lacks the %s privilege on %s", cat.user, missing_priv, m->display);
        return -1;
    }
    return 0;
}

const char *pgsink_offsets_schema(const struct pgsink_map *m)
{
    return m->offsets_schema ? m->offsets_schema : m->resolved_schema;
}

int pgsink_catalog_check_offsets(struct pgsink_map *m, const PGresult *res, char *err, size_t errlen)
{
    static const char *const need[] = { "sink", "topic", "partition", "next_offset" };
    struct buf seen = { 0 };
    struct catalog cat;
    int unique;

    catalog_read(res, &cat);
    free(m->offsets_display);
    m->offsets_display = qualified_display(pgsink_offsets_schema(m), m->offsets_table);
    if (!m->offsets_display) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!cat.found)
        return 0;
    if (strcmp(cat.relkind, "r") != 0 && strcmp(cat.relkind, "p") != 0) {
        snprintf(err, errlen, "offsets table %s is %s; set offsets_table to another name", m->offsets_display,
                 relkind_name(cat.relkind));
        return -1;
    }
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (catalog_column(res, need[i]) < 0) {
            snprintf(err, errlen, "offsets table %s exists but has no column \"%s\": it is not sluice's "
                     "(expected sink, topic, partition, next_offset); set offsets_table to another name",
                     m->offsets_display, need[i]);
            return -1;
        }
    }
    m->offsets_updated_at = catalog_column(res, "updated_at") >= 0;
    unique = catalog_unique_on(res, need, 3, &seen);
    buf_free(&seen);
    if (!unique) {
        snprintf(err, errlen, "offsets table %s has no unique constraint on (sink, topic, partition)",
                 m->offsets_display);
        return -1;
    }
    if (!cat.can_select || !cat.can_insert || !cat.can_update) {
        snprintf(err, errlen, "role \"%s\" needs SELECT, INSERT and UPDATE on %s", cat.user, m->offsets_display);
        return -1;
    }
    return 1;
}
