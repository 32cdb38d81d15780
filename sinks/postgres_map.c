/* The postgres sink's pure logic (see postgres_map.h): mapping options, rows, values, catalog
 * checks and SQL text. No I/O here: sinks/postgres.c runs what this file builds. */
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

/* The steps of a path that jsonpath_compile accepted: .name, ["key"], [index]. */
static int path_steps(struct pgsink_column *c, const char *spec)
{
    const char *p = spec + 1;

    c->steps = calloc(strlen(spec) + 1, sizeof *c->steps);
    if (!c->steps)
        return -1;
    while (*p) {
        struct pgsink_step *step = &c->steps[c->nsteps++];
        const char *from, *to;
        if (*p == '.') {
            from = to = p + 1;
            while ((*to >= 'a' && *to <= 'z') || (*to >= 'A' && *to <= 'Z') || (*to >= '0' && *to <= '9') ||
                   *to == '_' || *to == '-')
                to++;
            p = to;
        } else if (p[1] == '"') {
            from = p + 2;
            to = strstr(from, "\"]");
            p = to + 2;
        } else {
            char *end;
            step->is_index = 1;
            step->index = (size_t)strtoull(p + 1, &end, 10);
            p = end + 1;
            continue;
        }
        step->klen = (size_t)(to - from);
        if (!(step->key = strndup(from, step->klen)))
            return -1;
    }
    return 0;
}

static int column_source(struct pgsink_column *c, const char *spec, char *err, size_t errlen)
{
    struct jsonpath *compiled;
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
    if (!(compiled = jsonpath_compile(spec, why, sizeof why))) {
        snprintf(err, errlen, "column \"%s\": %s", c->name, why);
        return -1;
    }
    jsonpath_free(compiled);
    c->source = PGSINK_SRC_VALUE;
    c->whole = strcmp(spec, "$") == 0;
    if (path_steps(c, spec) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static struct pgsink_column *map_find(const struct pgsink_map *m, const char *name)
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
        struct pgsink_column *c = map_find(m, kname);
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
        for (size_t k = 0; k < m->cols[i].nsteps; k++)
            free(m->cols[i].steps[k].key);
        free(m->cols[i].steps);
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
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------------------------ */
/* Values: a validating JSON scanner that keeps slices of the record instead of a tree         */

/* The router's parser would build a tree (a malloc per node) for every record; this finds the
 * mapped paths in one pass over the bytes and passes each value on as written, so numbers reach
 * PostgreSQL exactly (no double rounding, no 64-bit limit). It accepts what jansson accepts
 * (RFC 8259, any value at the top, NUL escapes, valid UTF-8 only). */

#define SCAN_MAX_DEPTH 512

enum slice_kind { SL_NONE, SL_STRING, SL_NUMBER, SL_TRUE, SL_FALSE, SL_NULL, SL_OBJECT, SL_ARRAY };

struct slice {
    const char *p;               /* the value's text (a string with its quotes) */
    size_t n;
    enum slice_kind kind;
};

struct scanner {
    const char *start, *p, *end;
    const struct pgsink_map *m;
    struct slice *out;           /* per column */
    char *err;
    size_t errlen;
};

static int scan_fail(struct scanner *s, const char *what)
{
    snprintf(s->err, s->errlen, "not JSON: %s at byte %zu", what, (size_t)(s->p - s->start));
    return -1;
}

static void scan_ws(struct scanner *s);

/* After a member or element: 0 on ',' (another follows), 1 on @p close, -1 otherwise. */
static int scan_after_item(struct scanner *s, char close)
{
    scan_ws(s);
    if (s->p < s->end && (*s->p == ',' || *s->p == close))
        return *s->p++ == close;
    return scan_fail(s, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static void scan_ws(struct scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = *out = 0;   /* *out set on failure too: the decoders of checked text ignore the result */
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A byte a string holds as it is: printable ASCII but the quote and the backslash. */
static int plain_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* A string, s->p at its opening quote; @p escaped: it holds backslashes. */
static int scan_string(struct scanner *s, int *escaped)
{
    *escaped = 0;
    s->p++;
    while (s->p < s->end) {
        unsigned char c;
        while (s->p < s->end && plain_byte((unsigned char)*s->p))
            s->p++;
        if (s->p >= s->end)
            break;
        c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return scan_fail(s, "control character in a string");
        if (c == '\\') {
            unsigned cp, lo;
            *escaped = 1;
            if (s->end - s->p < 2)
                break;
            switch (s->p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                s->p += 2;
                continue;
            case 'u':
                if (s->end - s->p < 6 || hex4(s->p + 2, &cp) != 0)
                    return scan_fail(s, "invalid \\u escape");
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return scan_fail(s, "invalid Unicode (a lone low surrogate)");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (s->end - s->p < 12 || s->p[6] != '\\' || s->p[7] != 'u' || hex4(s->p + 8, &lo) != 0 ||
                        lo < 0xdc00 || lo > 0xdfff)
                        return scan_fail(s, "invalid Unicode (a high surrogate without its pair)");
                    s->p += 6;
                }
                s->p += 6;
                continue;
            default:
                return scan_fail(s, "invalid escape in a string");
            }
        }
        if (c < 0x80) {
            s->p++;
        } else {
            size_t n = utf8_len((const unsigned char *)s->p, (const unsigned char *)s->end);
            if (!n)
                return scan_fail(s, "invalid UTF-8 in a string");
            s->p += n;
        }
    }
    return scan_fail(s, "unterminated string");
}

static int scan_digits(struct scanner *s)
{
    const char *from = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > from ? 0 : -1;
}

static int scan_number(struct scanner *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (scan_digits(s) != 0)
        return scan_fail(s, "invalid number");
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (scan_digits(s) != 0)
            return scan_fail(s, "invalid number");
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (scan_digits(s) != 0)
            return scan_fail(s, "invalid number");
    }
    return 0;
}

static int scan_word(struct scanner *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return scan_fail(s, "invalid literal");
    s->p += n;
    return 0;
}

/* Decodes a string slice (with quotes) into @p b. -1 on a NUL character. */
static int unescape(struct buf *b, const char *p, size_t n)
{
    const char *end = p + n - 1, *run;

    p++;
    run = p;
    while (p < end) {
        unsigned cp, lo;
        char utf[4];
        size_t ulen;
        if (*p != '\\') {
            p++;
            continue;
        }
        if (buf_add(b, run, (size_t)(p - run)) != 0)
            return -1;
        switch (p[1]) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            hex4(p + 2, &cp);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                hex4(p + 8, &lo);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            p += 4;
            break;
        default: cp = (unsigned char)p[1]; break;   /* " \ / */
        }
        p += 2;
        if (cp == 0)
            return -1;
        if (cp < 0x80) {
            utf[0] = (char)cp;
            ulen = 1;
        } else if (cp < 0x800) {
            utf[0] = (char)(0xc0 | (cp >> 6));
            utf[1] = (char)(0x80 | (cp & 0x3f));
            ulen = 2;
        } else if (cp < 0x10000) {
            utf[0] = (char)(0xe0 | (cp >> 12));
            utf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
            utf[2] = (char)(0x80 | (cp & 0x3f));
            ulen = 3;
        } else {
            utf[0] = (char)(0xf0 | (cp >> 18));
            utf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
            utf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
            utf[3] = (char)(0x80 | (cp & 0x3f));
            ulen = 4;
        }
        if (buf_add(b, utf, ulen) != 0)
            return -1;
        run = p;
    }
    return buf_add(b, run, (size_t)(end - run));
}

/* Whether the object key at [p, p+n) (raw, between the quotes) is @p key. */
static int key_equals(const char *p, size_t n, int escaped, const struct pgsink_step *step)
{
    struct buf b = { 0 };
    int eq;

    if (!escaped)
        return n == step->klen && (n == 0 || (p[0] == step->key[0] && memcmp(p, step->key, n) == 0));
    if (unescape(&b, p - 1, n + 2) != 0) {
        buf_free(&b);
        return 0;
    }
    eq = b.len == step->klen && (b.len == 0 || memcmp(b.p, step->key, b.len) == 0);
    buf_free(&b);
    return eq;
}

/* One value at @p depth; @p active: the columns whose first @p depth steps led here. */
static int scan_value(struct scanner *s, const size_t *active, size_t nactive, size_t depth, struct slice *self)
{
    const char *start;
    enum slice_kind kind;
    size_t next[nactive ? nactive : 1];   /* passed on as NULL while empty: nothing read from it */
    int escaped, end;

    if (depth > SCAN_MAX_DEPTH)
        return scan_fail(s, "nested too deep");
    scan_ws(s);
    if (s->p >= s->end)
        return scan_fail(s, "unexpected end");
    start = s->p;
    switch (*s->p) {
    case '{':
        kind = SL_OBJECT;
        s->p++;
        scan_ws(s);
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            break;
        }
        for (;;) {
            const char *key;
            size_t klen, nnext = 0;
            scan_ws(s);
            if (s->p >= s->end || *s->p != '"')
                return scan_fail(s, "expected a member name");
            key = s->p + 1;
            if (scan_string(s, &escaped) != 0)
                return -1;
            klen = (size_t)(s->p - 1 - key);
            for (size_t i = 0; i < nactive; i++) {
                const struct pgsink_column *c = &s->m->cols[active[i]];
                if (c->nsteps > depth && !c->steps[depth].is_index && key_equals(key, klen, escaped, &c->steps[depth]))
                    next[nnext++] = active[i];
            }
            /* A repeated name replaces the earlier member, as in jansson and so in the router's
             * paths: forget what the earlier one gave to the paths through it. */
            for (size_t i = 0; i < nnext; i++)
                s->out[next[i]] = (struct slice){ 0 };
            scan_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return scan_fail(s, "expected ':'");
            s->p++;
            if (scan_value(s, nnext ? next : NULL, nnext, depth + 1, NULL) != 0 || (end = scan_after_item(s, '}')) < 0)
                return -1;
            if (end)
                break;
        }
        break;
    case '[':
        kind = SL_ARRAY;
        s->p++;
        scan_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            break;
        }
        for (size_t index = 0;; index++) {
            size_t nnext = 0;
            for (size_t i = 0; i < nactive; i++) {
                const struct pgsink_column *c = &s->m->cols[active[i]];
                if (c->nsteps > depth && c->steps[depth].is_index && c->steps[depth].index == index)
                    next[nnext++] = active[i];
            }
            if (scan_value(s, nnext ? next : NULL, nnext, depth + 1, NULL) != 0 || (end = scan_after_item(s, ']')) < 0)
                return -1;
            if (end)
                break;
        }
        break;
    case '"':
        kind = SL_STRING;
        if (scan_string(s, &escaped) != 0)
            return -1;
        break;
    case 't':
        kind = SL_TRUE;
        if (scan_word(s, "true", 4) != 0)
            return -1;
        break;
    case 'f':
        kind = SL_FALSE;
        if (scan_word(s, "false", 5) != 0)
            return -1;
        break;
    case 'n':
        kind = SL_NULL;
        if (scan_word(s, "null", 4) != 0)
            return -1;
        break;
    default:
        kind = SL_NUMBER;
        if (*s->p != '-' && (*s->p < '0' || *s->p > '9'))
            return scan_fail(s, "unexpected character");
        if (scan_number(s) != 0)
            return -1;
        break;
    }
    for (size_t i = 0; i < nactive; i++) {
        if (s->m->cols[active[i]].nsteps == depth) {
            struct slice *out = &s->out[active[i]];
            out->p = start;
            out->n = (size_t)(s->p - start);
            out->kind = kind;
        }
    }
    if (self) {
        self->p = start;
        self->n = (size_t)(s->p - start);
        self->kind = kind;
    }
    return 0;
}

/* Scans the document [p, p+n) whole, filling @p out for the columns in @p active. */
static int scan_document(const struct pgsink_map *m, const char *p, size_t n, const size_t *active, size_t nactive,
                         struct slice *out, char *err, size_t errlen)
{
    struct scanner s = { p, p, p + n, m, out, err, errlen };

    if (scan_value(&s, active, nactive, 0, NULL) != 0)
        return -1;
    scan_ws(&s);
    if (s.p != s.end)
        return scan_fail(&s, "more after the value");
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

/* A JSON array (already validated) as an array literal: [1, [2, null], "a"] -> {1,{2,NULL},"a"}. */
static int array_literal(struct buf *b, const char *p, size_t n, char *err, size_t errlen)
{
    static const struct pgsink_map none = { 0 };
    struct scanner s = { p, p + 1, p + n, &none, NULL, err, errlen };
    struct slice e;
    int first = 1;

    if (buf_add(b, "{", 1) != 0)
        return -1;
    for (;;) {
        scan_ws(&s);
        if (*s.p == ']')
            break;
        if (*s.p == ',')
            s.p++;
        if (scan_value(&s, NULL, 0, 0, &e) != 0)
            return -1;
        if (!first && buf_add(b, ",", 1) != 0)
            return -1;
        first = 0;
        switch (e.kind) {
        case SL_NULL:
            if (buf_add(b, "NULL", 4) != 0)
                return -1;
            break;
        case SL_ARRAY:
            if (array_literal(b, e.p, e.n, err, errlen) != 0)
                return -1;
            break;
        case SL_STRING: {
            struct buf text = { 0 };
            int rc = unescape(&text, e.p, e.n);
            if (rc != 0) {
                buf_free(&text);
                snprintf(err, errlen, "a string holds a NUL character, which PostgreSQL text cannot store");
                return -1;
            }
            rc = array_quoted(b, text.p ? text.p : "", text.len);
            buf_free(&text);
            if (rc != 0)
                return -1;
            break;
        }
        case SL_OBJECT:
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
static int render_slice(struct buf *b, const struct slice *v, int is_json, int is_array,
                        char *err, size_t errlen)
{
    size_t before = b->len;
    int rc;

    if (v->kind == SL_NONE || v->kind == SL_NULL)
        return 0;
    if (is_json)
        rc = buf_add(b, v->p, v->n);
    else if (v->kind == SL_STRING) {
        rc = unescape(b, v->p, v->n);
        if (rc != 0 && !err[0])
            snprintf(err, errlen, "a string holds a NUL character, which PostgreSQL text cannot store");
    } else if (v->kind == SL_ARRAY && is_array)
        rc = array_literal(b, v->p, v->n, err, errlen);
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
    static const struct pgsink_map none = { 0 };
    struct scanner s = { json, json, json + len, &none, NULL, err, errlen };
    struct slice v = { 0 };

    err[0] = '\0';
    if (scan_value(&s, NULL, 0, 0, &v) != 0)
        return -1;
    scan_ws(&s);
    if (s.p != s.end)
        return scan_fail(&s, "more after the value");
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
    struct slice vals[m->ncols ? m->ncols : 1];
    char why[256];
    int tombstone = rec->value == NULL;
    uint64_t hash = 1469598103934665603ull;   /* FNV-1a */

    err[0] = why[0] = '\0';
    memset(vals, 0, sizeof vals);
    if (!tombstone) {
        if (scan_document(m, rec->value, rec->value_len, m->vcols, m->nvcols, vals, why, sizeof why) != 0) {
            snprintf(err, errlen, "value is %s", why);
            return -1;
        }
    } else if (m->mode == PGSINK_UPSERT && m->nkvcols > 0) {
        /* A tombstone has no value: key columns mapped to a path are read in the key. */
        if (!rec->key || scan_document(m, rec->key, rec->key_len, m->kvcols, m->nkvcols, vals, why, sizeof why) != 0) {
            snprintf(err, errlen, "tombstone: key column \"%s\" is read from the value, which a tombstone lacks, "
                     "and the record key is not a JSON document to read it from%s%s%s", m->cols[m->kvcols[0]].name,
                     why[0] ? " (" : "", why, why[0] ? ")" : "");
            return -1;
        }
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
            is_true(res, r, 5) || map_find(m, PQgetvalue(res, r, 1)))
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
    rc |= buf_printf(&b, "INSERT INTO %s (", table.p);
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
