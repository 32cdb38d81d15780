/* Declared configuration options: one loader applies a table to a JSON object (defaults, types,
 * bounds, choices, unknown keys) and reports each problem as "file:line:column: path: reason";
 * the same tables print the configuration reference. */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cfg.h"
#include "json.h"

#define CFG_FIELD(target, off, type) ((type *)(void *)((char *)(target) + (off)))

/* ------------------------------------------------------------------------------------------ */
/* Messages                                                                                    */

static char *cfg_vstrf(const char *fmt, va_list ap)
{
    va_list aq;
    char *s;
    int n;

    va_copy(aq, ap);
    n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static char *cfg_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *cfg_strf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = cfg_vstrf(fmt, ap);
    va_end(ap);
    return s;
}

/* Takes @p msg. Out of memory drops the message; callers count errors themselves. */
static void cfg_errors_push(struct cfg_errors *errs, char *msg)
{
    char **v;

    if (!msg)
        return;
    v = realloc(errs->msgs, (errs->n + 1) * sizeof *v);
    if (!v) {
        free(msg);
        return;
    }
    errs->msgs = v;
    errs->msgs[errs->n++] = msg;
}

void cfg_errors_clear(struct cfg_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->n = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Paths: "a.b[2][\"c.d\"]"                                                                    */

enum cfg_seg_kind { CFG_SEG_KEY, CFG_SEG_INDEX };

struct cfg_seg {
    enum cfg_seg_kind kind;
    const char *key;     /* into the path; with \" and \\ escapes when quoted */
    size_t keylen;
    int quoted;
    size_t index;
    size_t start;        /* where the segment begins in the path, its '.' or '[' included */
};

/* Reads the segment at *pos: 1 when one was read, 0 at the end of the path, -1 when malformed. */
static int cfg_path_next(const char *path, size_t *pos, struct cfg_seg *seg)
{
    size_t p = *pos;

    if (!path[p])
        return 0;
    /* All fields set: gcc -O3 cannot see that an index segment's key is never read. */
    *seg = (struct cfg_seg){ .start = p };
    if (path[p] == '[') {
        p++;
        if (path[p] == '"') {
            p++;
            seg->kind = CFG_SEG_KEY;
            seg->quoted = 1;
            seg->key = path + p;
            while (path[p] && path[p] != '"') {
                if (path[p] == '\\' && path[p + 1])
                    p++;
                p++;
            }
            if (path[p] != '"' || path[p + 1] != ']')
                return -1;
            seg->keylen = (size_t)(path + p - seg->key);
            p += 2;
        } else {
            size_t index = 0;

            if (!isdigit((unsigned char)path[p]))
                return -1;
            while (isdigit((unsigned char)path[p])) {
                if (index > (SIZE_MAX - 9) / 10)
                    return -1;
                index = index * 10 + (size_t)(path[p] - '0');
                p++;
            }
            if (path[p] != ']')
                return -1;
            p++;
            seg->kind = CFG_SEG_INDEX;
            seg->index = index;
        }
    } else {
        if (path[p] == '.') {
            if (p == 0)
                return -1;
            p++;
        } else if (p != 0) {
            return -1;      /* after "]" comes '.', '[' or the end */
        }
        seg->kind = CFG_SEG_KEY;
        seg->key = path + p;
        while (path[p] && path[p] != '.' && path[p] != '[')
            p++;
        seg->keylen = (size_t)(path + p - seg->key);
        if (seg->keylen == 0)
            return -1;
    }
    *pos = p;
    return 1;
}

/* The next byte of a segment's key with escapes undone, or -1 at its end. */
static int cfg_seg_byte(const struct cfg_seg *seg, size_t *i)
{
    if (*i >= seg->keylen)
        return -1;
    if (seg->quoted && seg->key[*i] == '\\' && *i + 1 < seg->keylen)
        (*i)++;
    return (unsigned char)seg->key[(*i)++];
}

/* The length of the path of the parent of @p path, or -1 for the root or a malformed path. */
static long cfg_path_parent_len(const char *path)
{
    struct cfg_seg seg;
    size_t pos = 0, last = 0;
    int nsegs = 0, r;

    while ((r = cfg_path_next(path, &pos, &seg)) > 0) {
        last = seg.start;
        nsegs++;
    }
    if (r < 0 || nsegs == 0)
        return -1;
    return (long)last;
}

static int cfg_key_is_plain(const char *key)
{
    if (!*key)
        return 0;
    for (const char *c = key; *c; c++)
        if (*c == '.' || *c == '[' || *c == ']' || *c == '"' || *c == '\\')
            return 0;
    return 1;
}

void cfg_path_key(char *out, size_t outlen, const char *base, const char *key)
{
    size_t o = 0;

    if (!outlen)
        return;
    if (!base)
        base = "";
    if (cfg_key_is_plain(key)) {
        snprintf(out, outlen, "%s%s%s", base, *base ? "." : "", key);
        return;
    }
    o = (size_t)snprintf(out, outlen, "%s[\"", base);
    if (o + 1 >= outlen)
        return;   /* truncated by snprintf, still terminated */
    for (const char *c = key; *c && o + 1 < outlen; c++) {
        if ((*c == '"' || *c == '\\') && o + 2 < outlen)
            out[o++] = '\\';
        out[o++] = *c;
    }
    if (o + 2 < outlen) {
        out[o++] = '"';
        out[o++] = ']';
    }
    if (o >= outlen)
        o = outlen - 1;
    out[o] = '\0';
}

void cfg_path_index(char *out, size_t outlen, const char *base, size_t index)
{
    snprintf(out, outlen, "%s[%zu]", base ? base : "", index);
}

/* ------------------------------------------------------------------------------------------ */
/* Locating a path in JSON text                                                                */

/* The key of a path segment with its escapes undone, into @p out. */
static int cfg_seg_key(const struct cfg_seg *seg, struct buf *out)
{
    size_t i = 0;
    int c;

    buf_reset(out);
    while ((c = cfg_seg_byte(seg, &i)) >= 0) {
        char byte = (char)c;
        if (buf_add(out, &byte, 1) != 0)
            return -1;
    }
    return 0;
}

/* The first member named @p name of the object @p v (the member a reader of the file sees
 * first), or a JK_NONE slice. */
static struct json_slice cfg_first_member(const struct json_slice *v, const struct buf *name)
{
    struct json_slice key, item, none = { 0 };
    struct json_iter it;

    json_iter_init(&it, v);
    while (json_iter_next(&it, &key, &item))
        if (json_string_equals(&key, name->p ? name->p : "", name->len))
            return item;
    return none;
}

int cfg_locate(const char *text, size_t len, const char *path, int *line, int *column)
{
    struct json_slice v;
    struct cfg_seg seg;
    struct buf key = { 0 };
    char why[96];
    size_t pos = 0;
    int r, at_line = 1, at_col = 1;

    if (!text || !path)
        return -1;
    /* a location in a broken text could point anywhere: the reader checks the whole text */
    if (json_read(text, len, &v, why, sizeof why) != 0)
        return -1;
    while ((r = cfg_path_next(path, &pos, &seg)) > 0 && v.kind != JK_NONE) {
        if (seg.kind == CFG_SEG_INDEX) {
            v = json_at(&v, seg.index);
        } else if (v.kind != JK_OBJECT || cfg_seg_key(&seg, &key) != 0) {
            v.kind = JK_NONE;
        } else {
            v = cfg_first_member(&v, &key);
        }
    }
    buf_free(&key);
    if (r != 0 || v.kind == JK_NONE)
        return -1;
    /* Columns count characters, as jansson's do: UTF-8 continuation bytes do not move them. */
    for (const char *p = text; p < v.p; p++) {
        if (*p == '\n') {
            at_line++;
            at_col = 1;
        } else if (((unsigned char)*p & 0xC0) != 0x80) {
            at_col++;
        }
    }
    *line = at_line;
    *column = at_col;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Locating a path in the marks of a YAML document                                             */

size_t cfg_marks_member(const struct cfg_marks *marks, size_t at, const char *key, size_t keylen)
{
    for (size_t c = at + 1; at < marks->n && c < marks->v[at].end; c = marks->v[c].end) {
        const struct cfg_mark *m = &marks->v[c];

        if (m->key != CFG_MARK_ITEM && m->keylen == keylen &&
            (keylen == 0 || memcmp(marks->keys + m->key, key, keylen) == 0))
            return c;
    }
    return CFG_MARK_ITEM;
}

/* The entry of element @p index of the array at entry @p at, or CFG_MARK_ITEM. */
static size_t cfg_marks_element(const struct cfg_marks *marks, size_t at, size_t index)
{
    size_t seen = 0;

    for (size_t c = at + 1; c < marks->v[at].end; c = marks->v[c].end)
        if (marks->v[c].key == CFG_MARK_ITEM && seen++ == index)
            return c;
    return CFG_MARK_ITEM;
}

static int cfg_marks_locate(const struct cfg_marks *marks, const char *path, int *line, int *column)
{
    struct cfg_seg seg;
    struct buf key = { 0 };
    size_t pos = 0, at = 0;
    int r = 0;

    if (!marks->n || !path)
        return -1;
    while (at != CFG_MARK_ITEM && (r = cfg_path_next(path, &pos, &seg)) > 0) {
        if (seg.kind == CFG_SEG_INDEX)
            at = cfg_marks_element(marks, at, seg.index);
        else if (cfg_seg_key(&seg, &key) != 0)
            at = CFG_MARK_ITEM;
        else
            at = cfg_marks_member(marks, at, key.p ? key.p : "", key.len);
    }
    buf_free(&key);
    if (at == CFG_MARK_ITEM || r != 0)
        return -1;
    *line = marks->v[at].line;
    *column = marks->v[at].column;
    return 0;
}

int cfg_doc_locate(const struct cfg_doc *doc, const char *path, int *line, int *column)
{
    if (doc->marks)
        return cfg_marks_locate(doc->marks, path, line, column);
    return cfg_locate(doc->text, doc->len, path, line, column);
}

/* Locates @p path or, failing that, its nearest ancestor present in the document. */
static int cfg_locate_nearest(const struct cfg_doc *doc, const char *path, int *line, int *col)
{
    char *p = strdup(path);
    long parent;
    int rc = -1;

    if (!p)
        return -1;
    for (;;) {
        if (cfg_doc_locate(doc, p, line, col) == 0) {
            rc = 0;
            break;
        }
        parent = cfg_path_parent_len(p);
        if (parent < 0)
            break;
        p[parent] = '\0';
    }
    free(p);
    return rc;
}

void cfg_error(struct cfg_errors *errs, const struct cfg_doc *doc, const char *path,
               const char *fmt, ...)
{
    const char *sep;
    char *reason, *msg;
    va_list ap;
    int line, col;

    if (!errs)
        return;
    va_start(ap, fmt);
    reason = cfg_vstrf(fmt, ap);
    va_end(ap);
    if (!reason)
        return;
    if (!path)
        path = "";
    sep = *path ? ": " : "";
    if (!doc)
        msg = cfg_strf("%s%s%s", path, sep, reason);
    else if ((doc->text || doc->marks) && cfg_locate_nearest(doc, path, &line, &col) == 0)
        msg = cfg_strf("%s:%d:%d: %s%s%s", doc->file ? doc->file : "-", line, col, path, sep,
                       reason);
    else
        msg = cfg_strf("%s: %s%s%s", doc->file ? doc->file : "-", path, sep, reason);
    free(reason);
    cfg_errors_push(errs, msg);
}

/* ------------------------------------------------------------------------------------------ */
/* Suggestions                                                                                 */

/* Levenshtein distance, ignoring case; long words count as far apart. */
/* Edit distance counting a swap of two neighbours as one edit ("hots" -> "host"), case-blind. */
static size_t cfg_distance(const char *a, const char *b)
{
    enum { MAXW = 128 };
    size_t la = strlen(a), lb = strlen(b), rows[3][MAXW + 1];

    if (la > MAXW || lb > MAXW)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *cur = rows[i % 3], *prev = rows[(i - 1) % 3], *prev2 = rows[(i + 1) % 3];
        int ai = tolower((unsigned char)a[i - 1]);

        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int bj = tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + (ai != bj);

            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
    }
    return rows[la % 3][lb];
}

/* @p a begins @p b, and is long enough to say something ("ttl" of "ttl_s", not "t"). */
static int cfg_is_prefix(const char *a, const char *b)
{
    size_t la = strlen(a);

    return la >= 3 && strncasecmp(a, b, la) == 0;
}

const char *cfg_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_score = SIZE_MAX;

    if (!word || !*word || !candidates)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *c = candidates[i];
        size_t d, longest, score;

        if (!c || !*c)
            continue;
        d = cfg_distance(word, c);
        longest = strlen(word) > strlen(c) ? strlen(word) : strlen(c);
        /* Edits allowed grow with the length: one up to 5 characters, two up to 9, ... so a
         * short word is not "close" to any other short word ("ttl" is not "url"). The score is
         * the share of the word changed (in percent); a prefix counts as half changed. */
        if (d <= (longest + 2) / 4)
            score = d * 100 / longest;
        else if (cfg_is_prefix(word, c) || cfg_is_prefix(c, word))
            score = 50;
        else
            continue;
        if (score < best_score) {
            best = c;
            best_score = score;
        }
    }
    return best;
}

/* ------------------------------------------------------------------------------------------ */
/* Applying a table                                                                            */

struct cfg_ctx {
    const struct cfg_doc *doc;
    struct cfg_errors *errs;
    int quiet;       /* count, but record nothing (defaults under a section of the wrong type) */
    int n;
};

static void cfg_fail(struct cfg_ctx *ctx, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cfg_fail(struct cfg_ctx *ctx, const char *path, const char *fmt, ...)
{
    va_list ap;
    char *reason;

    ctx->n++;
    if (ctx->quiet)
        return;
    va_start(ap, fmt);
    reason = cfg_vstrf(fmt, ap);
    va_end(ap);
    if (reason)
        cfg_error(ctx->errs, ctx->doc, path, "%s", reason);
    free(reason);
}

static void cfg_choices_join(const char *const *choices, char *buf, size_t buflen)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; choices && choices[i] && o < buflen; i++)
        o += (size_t)snprintf(buf + o, buflen - o, "%s%s", i ? ", " : "", choices[i]);
}

/* Replaces every occurrence of @p secret in @p text with "***", in place (it never grows). */
static void cfg_scrub(char *text, const char *secret)
{
    size_t n = strlen(secret), keep = n < 3 ? n : 3;
    char *hit, *from = text;

    if (n == 0)
        return;
    /* search on after each replacement: the secret may itself be made of '*' */
    while ((hit = strstr(from, secret)) != NULL) {
        memset(hit, '*', keep);
        memmove(hit + keep, hit + n, strlen(hit + n) + 1);
        from = hit + keep;
    }
}

static int cfg_strlist_store(struct cfg_ctx *ctx, const json_t *value, struct cfg_strlist *list,
                             const char *path)
{
    struct cfg_strlist l = { NULL, 0 };
    char epath[CFG_PATH_MAX];
    size_t i;
    json_t *e;
    int bad = 0;

    if (!json_is_array(value)) {
        cfg_fail(ctx, path, "expected an array of strings");
        return -1;
    }
    json_array_foreach(value, i, e) {
        if (!json_is_string(e)) {
            cfg_path_index(epath, sizeof epath, path, i);
            cfg_fail(ctx, epath, "expected a string");
            bad = 1;
        }
    }
    if (bad)
        return -1;
    if (json_array_size(value)) {
        l.v = calloc(json_array_size(value), sizeof *l.v);
        if (!l.v)
            goto oom;
    }
    json_array_foreach(value, i, e) {
        l.v[i] = strdup(json_string_value(e));
        if (!l.v[i])
            goto oom;
        l.n++;
    }
    for (i = 0; i < list->n; i++)
        free(list->v[i]);
    free(list->v);
    *list = l;
    return 0;
oom:
    for (i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    cfg_fail(ctx, path, "out of memory");
    return -1;
}

static int cfg_is_yaml11_bool(const char *s)
{
    static const char *const words[] = { "y", "n", "yes", "no", "on", "off" };

    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    return 0;
}

/* Checks @p value against @p opt and stores it; reports and returns -1 when it does not fit. */
static int cfg_value_store(struct cfg_ctx *ctx, const struct cfg_opt *opt, const json_t *value,
                           void *target, const char *path)
{
    char choices[512];

    switch (opt->type) {
    case CFG_T_STR: {
        char *s, **field = CFG_FIELD(target, opt->offset, char *);

        if (!json_is_string(value)) {
            cfg_fail(ctx, path, "expected a string");
            return -1;
        }
        s = strdup(json_string_value(value));
        if (!s) {
            cfg_fail(ctx, path, "out of memory");
            return -1;
        }
        free(*field);
        *field = s;
        return 0;
    }
    case CFG_T_INT: {
        long long v;

        if (!json_is_integer(value)) {
            cfg_fail(ctx, path, "expected an integer");
            return -1;
        }
        v = json_integer_value(value);
        /* a table that leaves both bounds at 0 means "any integer" */
        if ((opt->min != 0 || opt->max != 0) && (v < opt->min || v > opt->max)) {
            cfg_fail(ctx, path, "must be %lld..%lld", opt->min, opt->max);
            return -1;
        }
        *CFG_FIELD(target, opt->offset, long long) = v;
        return 0;
    }
    case CFG_T_BOOL:
        if (!json_is_boolean(value)) {
            /* YAML 1.1 read yes/no/on/off as booleans; YAML 1.2, and so sluice, as strings */
            if (ctx->doc && ctx->doc->marks && json_is_string(value) &&
                cfg_is_yaml11_bool(json_string_value(value)))
                cfg_fail(ctx, path, "expected true or false (YAML 1.2 reads yes, no, on and off as strings)");
            else
                cfg_fail(ctx, path, "expected true or false");
            return -1;
        }
        *CFG_FIELD(target, opt->offset, int) = json_is_true(value);
        return 0;
    case CFG_T_ENUM: {
        const char *s, *hint;
        size_t n = 0;

        cfg_choices_join(opt->choices, choices, sizeof choices);
        if (!json_is_string(value)) {
            cfg_fail(ctx, path, "expected one of %s", choices);
            return -1;
        }
        s = json_string_value(value);
        for (n = 0; opt->choices && opt->choices[n]; n++) {
            if (strcmp(opt->choices[n], s) == 0) {
                *CFG_FIELD(target, opt->offset, int) = (int)n;
                return 0;
            }
        }
        /* the value itself is not repeated: it may be a secret or come from the environment */
        hint = (opt->flags & CFG_SECRET) ? NULL : cfg_suggest(s, opt->choices, n);
        if (hint)
            cfg_fail(ctx, path, "must be one of %s; did you mean \"%s\"?", choices, hint);
        else
            cfg_fail(ctx, path, "must be one of %s", choices);
        return -1;
    }
    case CFG_T_STRLIST:
        return cfg_strlist_store(ctx, value, CFG_FIELD(target, opt->offset, struct cfg_strlist),
                                 path);
    case CFG_T_JSON: {
        json_t **field = CFG_FIELD(target, opt->offset, json_t *);

        json_decref(*field);
        *field = json_incref((json_t *)value);
        return 0;
    }
    case CFG_T_SECTION:
        break;
    }
    return -1;
}

static void cfg_table_apply(struct cfg_ctx *ctx, const struct cfg_opt *opts, const json_t *obj,
                            void *target, const char *path, const char *const *extra_keys);

static void cfg_opt_apply(struct cfg_ctx *ctx, const struct cfg_opt *opt, const json_t *obj,
                          void *target, const char *path)
{
    char opath[CFG_PATH_MAX], err[512];
    const json_t *value = obj ? json_object_get(obj, opt->name) : NULL;
    json_t *def;

    cfg_path_key(opath, sizeof opath, path, opt->name);
    if (!value && (opt->flags & CFG_REQUIRED)) {
        cfg_fail(ctx, path, "missing required key \"%s\"", opt->name);
        return;
    }
    if (opt->type == CFG_T_SECTION) {
        if (value && !json_is_object(value)) {
            struct cfg_ctx quiet = { .doc = ctx->doc, .errs = ctx->errs, .quiet = 1 };

            cfg_fail(ctx, opath, "expected an object");
            cfg_table_apply(&quiet, opt->section, NULL, target, opath, NULL);
            return;
        }
        cfg_table_apply(ctx, opt->section, value, target, opath, NULL);
        return;
    }
    if (!value) {
        if (!opt->def)
            return;
        def = json_loads(opt->def, JSON_DECODE_ANY, NULL);
        if (!def) {
            cfg_fail(ctx, opath, "bad default in the option table");
            return;
        }
        cfg_value_store(ctx, opt, def, target, opath);
        json_decref(def);
        return;
    }
    if (cfg_value_store(ctx, opt, value, target, opath) != 0 || !opt->validate)
        return;
    err[0] = '\0';
    if (opt->validate(value, err, sizeof err) == 0)
        return;
    if (!err[0])
        snprintf(err, sizeof err, "invalid value");
    if ((opt->flags & CFG_SECRET) && json_is_string(value))
        cfg_scrub(err, json_string_value(value));
    cfg_fail(ctx, opath, "%s", err);
}

static int cfg_key_known(const struct cfg_opt *opts, const char *const *extra_keys, const char *key)
{
    for (size_t i = 0; opts && opts[i].name; i++)
        if (strcmp(opts[i].name, key) == 0)
            return 1;
    for (size_t i = 0; extra_keys && extra_keys[i]; i++)
        if (strcmp(extra_keys[i], key) == 0)
            return 1;
    return 0;
}

static void cfg_unknown_keys(struct cfg_ctx *ctx, const struct cfg_opt *opts, const json_t *obj,
                             const char *path, const char *const *extra_keys)
{
    const char **names = NULL;
    char kpath[CFG_PATH_MAX];
    const char *key, *hint;
    size_t n = 0, cap = 0;
    json_t *value;

    for (size_t i = 0; opts && opts[i].name; i++)
        cap++;
    for (size_t i = 0; extra_keys && extra_keys[i]; i++)
        cap++;
    if (cap) {
        names = malloc(cap * sizeof *names);
        if (!names)
            cap = 0;   /* still report the keys, without suggestions */
    }
    for (size_t i = 0; cap && opts && opts[i].name; i++)
        names[n++] = opts[i].name;
    for (size_t i = 0; cap && extra_keys && extra_keys[i]; i++)
        names[n++] = extra_keys[i];
    json_object_foreach((json_t *)obj, key, value) {
        if (cfg_key_known(opts, extra_keys, key))
            continue;
        cfg_path_key(kpath, sizeof kpath, path, key);
        hint = cfg_suggest(key, names, n);
        if (hint)
            cfg_fail(ctx, kpath, "unknown key \"%s\"; did you mean \"%s\"?", key, hint);
        else
            cfg_fail(ctx, kpath, "unknown key \"%s\"", key);
    }
    free(names);
}

static void cfg_table_apply(struct cfg_ctx *ctx, const struct cfg_opt *opts, const json_t *obj,
                            void *target, const char *path, const char *const *extra_keys)
{
    if (obj && !json_is_object(obj)) {
        cfg_fail(ctx, path, "expected an object");
        return;
    }
    for (size_t i = 0; opts && opts[i].name; i++)
        cfg_opt_apply(ctx, &opts[i], obj, target, path);
    if (obj)
        cfg_unknown_keys(ctx, opts, obj, path, extra_keys);
}

int cfg_apply(const struct cfg_opt *opts, const json_t *obj, void *target, const struct cfg_doc *doc,
              const char *path, const char *const *extra_keys, struct cfg_errors *errs)
{
    struct cfg_ctx ctx = { .doc = doc, .errs = errs, .quiet = 0, .n = 0 };

    cfg_table_apply(&ctx, opts, obj, target, path ? path : "", extra_keys);
    return ctx.n;
}

int cfg_equal(const struct cfg_opt *opts, const void *a, const void *b)
{
    for (const struct cfg_opt *o = opts; o && o->name; o++) {
        const char *pa = (const char *)a + o->offset, *pb = (const char *)b + o->offset;
        switch (o->type) {
        case CFG_T_STR: {
            const char *x = *(char *const *)(const void *)pa, *y = *(char *const *)(const void *)pb;
            if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0))
                return 0;
            break;
        }
        case CFG_T_INT:
            if (*(const long long *)(const void *)pa != *(const long long *)(const void *)pb)
                return 0;
            break;
        case CFG_T_BOOL:
        case CFG_T_ENUM:
            if (*(const int *)(const void *)pa != *(const int *)(const void *)pb)
                return 0;
            break;
        case CFG_T_STRLIST: {
            const struct cfg_strlist *x = (const void *)pa, *y = (const void *)pb;
            if (x->n != y->n)
                return 0;
            for (size_t i = 0; i < x->n; i++)
                if (strcmp(x->v[i], y->v[i]) != 0)
                    return 0;
            break;
        }
        case CFG_T_JSON: {
            const json_t *x = *(json_t *const *)(const void *)pa, *y = *(json_t *const *)(const void *)pb;
            if ((x == NULL) != (y == NULL) || (x && !json_equal(x, y)))
                return 0;
            break;
        }
        case CFG_T_SECTION:   /* its table's offsets are into the same struct */
            if (!cfg_equal(o->section, a, b))
                return 0;
            break;
        }
    }
    return 1;
}

void cfg_release(const struct cfg_opt *opts, void *target)
{
    if (!target)
        return;
    for (size_t i = 0; opts && opts[i].name; i++) {
        const struct cfg_opt *opt = &opts[i];

        switch (opt->type) {
        case CFG_T_STR: {
            char **field = CFG_FIELD(target, opt->offset, char *);

            free(*field);
            *field = NULL;
            break;
        }
        case CFG_T_STRLIST: {
            struct cfg_strlist *list = CFG_FIELD(target, opt->offset, struct cfg_strlist);

            for (size_t k = 0; k < list->n; k++)
                free(list->v[k]);
            free(list->v);
            list->v = NULL;
            list->n = 0;
            break;
        }
        case CFG_T_JSON: {
            json_t **field = CFG_FIELD(target, opt->offset, json_t *);

            json_decref(*field);
            *field = NULL;
            break;
        }
        case CFG_T_SECTION:
            cfg_release(opt->section, target);
            break;
        case CFG_T_INT:
        case CFG_T_BOOL:
        case CFG_T_ENUM:
            break;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Reference                                                                                   */

/* Writes @p s with the table's separator escaped. */
static void cfg_md_put(const char *s, FILE *out)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s == '\n' ? ' ' : *s, out);
    }
}

void cfg_print_reference(const struct cfg_opt *opts, const char *prefix, FILE *out)
{
    char key[CFG_PATH_MAX], choices[512];

    for (size_t i = 0; opts && opts[i].name; i++) {
        const struct cfg_opt *opt = &opts[i];

        cfg_path_key(key, sizeof key, prefix ? prefix : "", opt->name);
        fputs("| `", out);
        cfg_md_put(key, out);
        fputs("` | ", out);
        switch (opt->type) {
        case CFG_T_STR:
            fputs("string", out);
            break;
        case CFG_T_INT:
            if (opt->min != 0 || opt->max != 0)
                fprintf(out, "integer, %lld..%lld", opt->min, opt->max);
            else
                fputs("integer", out);
            break;
        case CFG_T_BOOL:
            fputs("boolean", out);
            break;
        case CFG_T_ENUM:
            cfg_choices_join(opt->choices, choices, sizeof choices);
            fputs("one of: ", out);
            cfg_md_put(choices, out);
            break;
        case CFG_T_STRLIST:
            fputs("array of strings", out);
            break;
        case CFG_T_JSON:
            fputs("JSON", out);
            break;
        case CFG_T_SECTION:
            fputs("object", out);
            break;
        }
        fputs(" | ", out);
        if (opt->flags & CFG_REQUIRED) {
            fputs("required", out);
        } else if (opt->def) {
            fputc('`', out);
            cfg_md_put(opt->def, out);
            fputc('`', out);
        }
        fputs(" | ", out);
        cfg_md_put(opt->help, out);
        if (opt->flags & CFG_SECRET)
            fputs(" (secret: never printed)", out);
        fputs(" |\n", out);
        if (opt->type == CFG_T_SECTION)
            cfg_print_reference(opt->section, key, out);
    }
}
