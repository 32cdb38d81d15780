/* Text helpers and templates for the HTTP sinks (see template.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"
#include "lib/json.h"
#include "lib/jsonpath.h"

/* ---- escaping ---- */

/* The escape of byte @p c in a JSON string: 0 when it stands for itself, else its length
 * (2 for the short forms, 6 for \u00XX); written at @p out when not NULL. */
static size_t json_byte_escape(unsigned char c, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char two = 0;

    if (c >= 0x20 && c != '"' && c != '\\')
        return 0;
    switch (c) {
    case '"': two = '"'; break;
    case '\\': two = '\\'; break;
    case '\n': two = 'n'; break;
    case '\r': two = 'r'; break;
    case '\t': two = 't'; break;
    case '\b': two = 'b'; break;
    case '\f': two = 'f'; break;
    default: break;
    }
    if (two) {
        if (out) {
            out[0] = '\\';
            out[1] = two;
        }
        return 2;
    }
    if (out) {
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
    }
    return 6;
}

long long tpl_json_escaped_len(const char *s, size_t n)
{
    size_t len = n;

    if (!json_utf8_valid(s, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t e = json_byte_escape((unsigned char)s[i], NULL);
        if (e)
            len += e - 1;
    }
    return (long long)len;
}

char *tpl_json_escape_to(char *out, const char *s, size_t n)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        memcpy(out, s + run, i - run);
        out += i - run;
        out += json_byte_escape(c, out);
        run = i + 1;
    }
    memcpy(out, s + run, n - run);
    return out + (n - run);
}

char *tpl_json_quote_to(char *out, const char *s, size_t n)
{
    if (!s) {
        memcpy(out, "null", 4);
        return out + 4;
    }
    *out++ = '"';
    out = tpl_json_escape_to(out, s, n);
    *out++ = '"';
    return out;
}

int tpl_json_escape(struct buf *b, const char *s, size_t n)
{
    long long len = tpl_json_escaped_len(s, n);

    if (len < 0)
        return -1;
    buf_reserve(b, (size_t)len + 2);
    if (b->oom)
        return 0;   /* the caller checks oom once at the end */
    b->len = (size_t)(tpl_json_quote_to(b->p + b->len, s ? s : "", n) - b->p);   /* "" for no text, not null */
    b->p[b->len] = '\0';
    return 0;
}

void tpl_url_escape(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            buf_add(b, &s[i], 1);
        } else {
            char pct[3] = { '%', hex[c >> 4], hex[c & 15] };
            buf_add(b, pct, 3);
        }
    }
}

/* ---- fields ---- */

enum field_kind { FIELD_VALUE, FIELD_KEY, FIELD_TOPIC, FIELD_PARTITION, FIELD_OFFSET, FIELD_TIMESTAMP, FIELD_ID };

static const struct {
    const char *name;
    enum field_kind kind;
    unsigned flag;
} field_names[] = {
    { "key", FIELD_KEY, TPL_F_KEY },
    { "topic", FIELD_TOPIC, TPL_F_TOPIC },
    { "partition", FIELD_PARTITION, TPL_F_PARTITION },
    { "offset", FIELD_OFFSET, TPL_F_OFFSET },
    { "timestamp", FIELD_TIMESTAMP, TPL_F_TIMESTAMP },
    { "id", FIELD_ID, TPL_F_ID },
};

struct field {
    enum field_kind kind;
    struct jsonpath *path;      /* FIELD_VALUE */
    char *text;                 /* as written, for messages */
    int optional;
};

static unsigned field_flag(const struct field *f)
{
    if (f->kind == FIELD_VALUE)
        return TPL_F_VALUE;
    for (size_t i = 0; i < sizeof field_names / sizeof field_names[0]; i++)
        if (field_names[i].kind == f->kind)
            return field_names[i].flag;
    return 0;
}

static void field_clear(struct field *f)
{
    jsonpath_free(f->path);
    free(f->text);
    f->path = NULL;
    f->text = NULL;
}

/* Parses the inside of a placeholder, @p s[0..n). */
static int field_parse(struct field *f, const char *s, size_t n, char *err, size_t errlen)
{
    char perr[256];

    memset(f, 0, sizeof *f);
    if (n > 0 && s[n - 1] == '?') {
        f->optional = 1;
        n--;
    }
    if (n == 0 || !(f->text = strndup(s, n))) {
        snprintf(err, errlen, n == 0 ? "empty placeholder {}" : "out of memory");
        return -1;
    }
    if (f->text[0] == '$') {
        f->kind = FIELD_VALUE;
        if (!(f->path = jsonpath_compile(f->text, perr, sizeof perr))) {
            snprintf(err, errlen, "placeholder {%s}: %s", f->text, perr);
            field_clear(f);
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof field_names / sizeof field_names[0]; i++) {
        if (strcmp(f->text, field_names[i].name) == 0) {
            f->kind = field_names[i].kind;
            return 0;
        }
    }
    snprintf(err, errlen, "unknown placeholder {%s}: use {$.path} into the value, {key}, {topic}, "
             "{partition}, {offset}, {timestamp} or {id} (write {{ for a literal brace)", f->text);
    field_clear(f);
    return -1;
}

/* The field's value as a new JSON reference; NULL when missing (or out of memory: the
 * caller reports it as missing, which dead-letters the record with a reason). */
static json_t *field_value(const struct field *f, const struct tpl_record *rec, char *err, size_t errlen)
{
    json_t *v;

    switch (f->kind) {
    case FIELD_VALUE:
        v = rec->doc ? jsonpath_get(f->path, rec->doc) : NULL;
        return v ? json_incref(v) : NULL;
    case FIELD_KEY:
        if (!rec->key)
            return NULL;
        v = json_stringn(rec->key, rec->key_len);
        if (!v)
            snprintf(err, errlen, "the record's key is not valid UTF-8");
        return v;
    case FIELD_TOPIC:
        return rec->topic ? json_string(rec->topic) : NULL;
    case FIELD_PARTITION:
        return json_integer(rec->partition);
    case FIELD_OFFSET:
        return rec->offset >= 0 ? json_integer(rec->offset) : NULL;
    case FIELD_TIMESTAMP:
        return rec->timestamp_ms >= 0 ? json_integer(rec->timestamp_ms) : NULL;
    case FIELD_ID:
        return rec->id ? json_string(rec->id) : NULL;
    }
    return NULL;
}

static void field_missing(const struct field *f, const struct tpl_record *rec, char *err, size_t errlen)
{
    if (err[0])
        return;
    if (f->kind == FIELD_VALUE && !rec->doc)
        snprintf(err, errlen, "field %s: the record is a tombstone (no value)", f->text);
    else if (f->kind == FIELD_VALUE)
        snprintf(err, errlen, "missing field %s (write {%s?} to allow it)", f->text, f->text);
    else
        snprintf(err, errlen, "the record has no %s", f->text);
}

/* Appends the field as text: strings as they are, null as nothing, other values as JSON.
 * The key keeps its raw bytes (a URL may carry any byte, percent-encoded). */
static int field_text(const struct field *f, const struct tpl_record *rec, enum tpl_escape esc,
                      struct buf *out, char *err, size_t errlen)
{
    struct buf tmp = { 0 };
    const char *s = NULL;
    size_t n = 0;
    json_t *v = NULL;
    char num[32];
    int rc = -1;

    if (f->kind == FIELD_KEY && rec->key) {
        s = rec->key;
        n = rec->key_len;
    } else if (f->kind == FIELD_PARTITION || f->kind == FIELD_OFFSET || f->kind == FIELD_TIMESTAMP) {
        int64_t x = f->kind == FIELD_PARTITION ? rec->partition : f->kind == FIELD_OFFSET ? rec->offset : rec->timestamp_ms;
        if (x >= 0) {
            n = (size_t)snprintf(num, sizeof num, "%" PRId64, x);
            s = num;
        }
    } else {
        v = field_value(f, rec, err, errlen);
        if (v && json_is_string(v)) {
            s = json_string_value(v);
            n = json_string_length(v);
        } else if (v && !json_is_null(v)) {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!text) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            buf_adds(&tmp, text);
            free(text);
            s = tmp.p ? tmp.p : "";
            n = tmp.len;
        } else if (v) {
            s = "";   /* null: nothing */
        }
    }
    if (!s) {
        if (!f->optional) {
            field_missing(f, rec, err, errlen);
            goto out;
        }
        s = "";
    }
    if (esc == TPL_URL) {
        if (n == 0 && !f->optional) {
            /* "/items/{$.id}" with a null or empty id would address the collection instead */
            snprintf(err, errlen, "field %s is empty or null, which would leave a hole in the URL "
                     "(write {%s?} to allow it)", f->text, f->text);
            goto out;
        }
        tpl_url_escape(out, s, n);
    } else {
        if (esc == TPL_HEADER && (memchr(s, '\r', n) || memchr(s, '\n', n) || memchr(s, '\0', n))) {
            snprintf(err, errlen, "field %s holds a line break or NUL, which a header cannot carry", f->text);
            goto out;
        }
        buf_add(out, s, n);
    }
    rc = 0;
out:
    json_decref(v);
    buf_free(&tmp);
    return rc;
}

/* ---- string templates ---- */

struct tpl_part {
    char *literal;       /* NULL: a placeholder */
    size_t len;
    struct field field;
};

struct tpl {
    struct tpl_part *parts;
    size_t nparts;
    unsigned fields;
};

void tpl_free(struct tpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nparts; i++) {
        free(t->parts[i].literal);
        field_clear(&t->parts[i].field);
    }
    free(t->parts);
    free(t);
}

static int tpl_push(struct tpl *t, struct tpl_part *part)
{
    struct tpl_part *parts = realloc(t->parts, (t->nparts + 1) * sizeof *parts);
    if (!parts)
        return -1;
    t->parts = parts;
    t->parts[t->nparts++] = *part;
    return 0;
}

struct tpl *tpl_compile(const char *text, char *err, size_t errlen)
{
    struct tpl *t = calloc(1, sizeof *t);
    struct buf lit = { 0 };
    const char *p = text;

    if (!t)
        goto oom;
    while (*p) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            buf_add(&lit, p, 1);
            p += 2;
        } else if (p[0] == '{') {
            const char *close = strchr(p + 1, '}');
            struct tpl_part part = { 0 };

            if (!close) {
                snprintf(err, errlen, "unclosed { at position %zu (write {{ for a literal brace)", (size_t)(p - text));
                goto fail;
            }
            if (lit.len || lit.oom) {
                part.len = lit.len;
                if (!(part.literal = buf_steal(&lit, NULL)) || tpl_push(t, &part) != 0) {
                    free(part.literal);
                    goto oom;
                }
                memset(&part, 0, sizeof part);
            }
            if (field_parse(&part.field, p + 1, (size_t)(close - p - 1), err, errlen) != 0)
                goto fail;
            if (tpl_push(t, &part) != 0) {
                field_clear(&part.field);
                goto oom;
            }
            t->fields |= field_flag(&part.field);
            p = close + 1;
        } else {
            buf_add(&lit, p, 1);
            p++;
        }
    }
    if (lit.len || lit.oom) {
        struct tpl_part part = { .len = lit.len };
        if (!(part.literal = buf_steal(&lit, NULL)) || tpl_push(t, &part) != 0) {
            free(part.literal);
            goto oom;
        }
    }
    return t;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    buf_free(&lit);
    tpl_free(t);
    return NULL;
}

unsigned tpl_fields(const struct tpl *t)
{
    return t ? t->fields : 0;
}

int tpl_render(const struct tpl *t, const struct tpl_record *rec, enum tpl_escape esc,
               struct buf *out, char *err, size_t errlen)
{
    err[0] = '\0';
    for (size_t i = 0; i < t->nparts; i++) {
        const struct tpl_part *part = &t->parts[i];
        if (part->literal)
            buf_add(out, part->literal, part->len);
        else if (field_text(&part->field, rec, esc, out, err, errlen) != 0)
            return -1;
    }
    if (out->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- JSON templates ---- */

#define EACH_KEY "$each"
/* What stands for the $each array while the outer part is dumped; a template may not hold
 * byte 0x01, so it cannot occur anywhere else. */
#define EACH_MARK "\001sluice-each\001"
#define EACH_MARK_DUMPED "\"\\u0001sluice-each\\u0001\""

enum tnode_kind { TN_LITERAL, TN_TEXT, TN_WHOLE, TN_OBJECT, TN_ARRAY, TN_EACH };

struct tnode {
    enum tnode_kind kind;
    json_t *literal;          /* TN_LITERAL */
    struct tpl *text;         /* TN_TEXT: a string with placeholders and text */
    struct field whole;       /* TN_WHOLE: a string that is exactly one placeholder */
    char **keys;              /* TN_OBJECT */
    struct tnode **kids;      /* TN_OBJECT, TN_ARRAY, TN_EACH (one kid) */
    size_t nkids;
};

struct tpl_json {
    struct tnode *root;
    struct tnode *each;       /* borrowed: the $each node inside root, or NULL */
    unsigned outer_fields;
};

static void tnode_free(struct tnode *n)
{
    if (!n)
        return;
    json_decref(n->literal);
    tpl_free(n->text);
    field_clear(&n->whole);
    for (size_t i = 0; i < n->nkids; i++) {
        if (n->keys)
            free(n->keys[i]);
        tnode_free(n->kids[i]);
    }
    free(n->keys);
    free(n->kids);
    free(n);
}

struct tcompile {
    struct tpl_json *t;
    int in_each;
    char *err;
    size_t errlen;
};

static struct tnode *tnode_compile(struct tcompile *c, const json_t *v, const char *path);

static void tpath_key(char *out, size_t outlen, const char *base, const char *key)
{
    snprintf(out, outlen, "%s%s%s", base, base[0] ? "." : "", key);
}

static int tnode_add(struct tnode *n, const char *key, struct tnode *kid)
{
    struct tnode **kids = realloc(n->kids, (n->nkids + 1) * sizeof *kids);
    if (!kids)
        return -1;
    n->kids = kids;
    if (key) {
        char **keys = realloc(n->keys, (n->nkids + 1) * sizeof *keys);
        if (!keys)
            return -1;
        n->keys = keys;
        if (!(n->keys[n->nkids] = strdup(key)))
            return -1;
    }
    n->kids[n->nkids++] = kid;
    return 0;
}

static struct tnode *tnode_compile(struct tcompile *c, const json_t *v, const char *path)
{
    struct tnode *n = calloc(1, sizeof *n);
    char sub[512], ferr[400];
    const char *key;
    json_t *kid;
    size_t i;

    if (!n) {
        snprintf(c->err, c->errlen, "out of memory");
        return NULL;
    }
    if (json_is_object(v) && json_object_get(v, EACH_KEY)) {
        struct tnode *elem;
        if (json_object_size(v) != 1) {
            snprintf(c->err, c->errlen, "%s: an {\"$each\": ...} object takes no other key", path);
            goto fail;
        }
        if (c->in_each || c->t->each) {
            snprintf(c->err, c->errlen, "%s: only one $each per body, not nested", path);
            goto fail;
        }
        n->kind = TN_EACH;
        c->in_each = 1;
        tpath_key(sub, sizeof sub, path, EACH_KEY);
        elem = tnode_compile(c, json_object_get(v, EACH_KEY), sub);
        c->in_each = 0;
        if (!elem || tnode_add(n, NULL, elem) != 0) {
            if (elem && !c->err[0])
                snprintf(c->err, c->errlen, "out of memory");
            tnode_free(elem);
            goto fail;
        }
        c->t->each = n;
        return n;
    }
    if (json_is_object(v)) {
        n->kind = TN_OBJECT;
        json_object_foreach((json_t *)v, key, kid) {
            struct tnode *k;
            tpath_key(sub, sizeof sub, path, key);
            /* a key could otherwise spell the $each marker, which the batch body is spliced at */
            if (strchr(key, '\001')) {
                snprintf(c->err, c->errlen, "%s: byte 0x01 is not allowed in a template", sub);
                goto fail;
            }
            if (!(k = tnode_compile(c, kid, sub)))
                goto fail;
            if (tnode_add(n, key, k) != 0) {
                tnode_free(k);
                snprintf(c->err, c->errlen, "out of memory");
                goto fail;
            }
        }
        return n;
    }
    if (json_is_array(v)) {
        n->kind = TN_ARRAY;
        json_array_foreach(v, i, kid) {
            struct tnode *k;
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            if (!(k = tnode_compile(c, kid, sub)))
                goto fail;
            if (tnode_add(n, NULL, k) != 0) {
                tnode_free(k);
                snprintf(c->err, c->errlen, "out of memory");
                goto fail;
            }
        }
        return n;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        unsigned fields;

        if (memchr(s, '\001', len)) {
            snprintf(c->err, c->errlen, "%s: byte 0x01 is not allowed in a template", path);
            goto fail;
        }
        /* exactly one placeholder: the field keeps its JSON type */
        if (len >= 3 && s[0] == '{' && s[1] != '{' && s[len - 1] == '}' && !memchr(s + 1, '{', len - 2) &&
            !memchr(s + 1, '}', len - 2)) {
            n->kind = TN_WHOLE;
            if (field_parse(&n->whole, s + 1, len - 2, ferr, sizeof ferr) != 0) {
                snprintf(c->err, c->errlen, "%s: %s", path, ferr);
                goto fail;
            }
            fields = field_flag(&n->whole);
        } else if (strchr(s, '{') || strchr(s, '}')) {
            n->kind = TN_TEXT;
            if (!(n->text = tpl_compile(s, ferr, sizeof ferr))) {
                snprintf(c->err, c->errlen, "%s: %s", path, ferr);
                goto fail;
            }
            fields = tpl_fields(n->text);
        } else {
            n->kind = TN_LITERAL;
            n->literal = json_incref((json_t *)v);
            return n;
        }
        if (!c->in_each)
            c->t->outer_fields |= fields;
        return n;
    }
    n->kind = TN_LITERAL;
    n->literal = json_deep_copy(v);
    if (!n->literal) {
        snprintf(c->err, c->errlen, "out of memory");
        goto fail;
    }
    return n;
fail:
    tnode_free(n);
    return NULL;
}

struct tpl_json *tpl_json_compile(const json_t *tmpl, char *err, size_t errlen)
{
    struct tpl_json *t = calloc(1, sizeof *t);
    struct tcompile c = { .t = t, .err = err, .errlen = errlen };

    err[0] = '\0';
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(t->root = tnode_compile(&c, tmpl, "body"))) {
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        tpl_json_free(t);
        return NULL;
    }
    return t;
}

void tpl_json_free(struct tpl_json *t)
{
    if (!t)
        return;
    tnode_free(t->root);
    free(t);
}

int tpl_json_has_each(const struct tpl_json *t)
{
    return t->each != NULL;
}

unsigned tpl_json_outer_fields(const struct tpl_json *t)
{
    return t->outer_fields;
}

/* Renders @p n over @p rec into a new JSON value; NULL with the reason. TN_EACH becomes the
 * marker string (tpl_json_render_batch splices the elements in its place). */
static json_t *tnode_render(const struct tnode *n, const struct tpl_record *rec, char *err, size_t errlen)
{
    json_t *v = NULL, *kid;
    struct buf text = { 0 };

    switch (n->kind) {
    case TN_LITERAL:
        return json_incref(n->literal);
    case TN_WHOLE:
        v = field_value(&n->whole, rec, err, errlen);
        if (!v && err[0])
            return NULL;
        if (!v) {
            if (!n->whole.optional) {
                field_missing(&n->whole, rec, err, errlen);
                return NULL;
            }
            v = json_null();
        }
        return v;
    case TN_TEXT:
        if (tpl_render(n->text, rec, TPL_TEXT, &text, err, errlen) != 0) {
            buf_free(&text);
            return NULL;
        }
        v = json_stringn(text.p ? text.p : "", text.len);
        if (!v)
            snprintf(err, errlen, "a rendered string is not valid UTF-8 (a key or field with binary data?)");
        buf_free(&text);
        return v;
    case TN_EACH:
        return json_string(EACH_MARK);
    case TN_OBJECT:
    case TN_ARRAY:
        v = n->kind == TN_OBJECT ? json_object() : json_array();
        if (!v)
            break;
        for (size_t i = 0; i < n->nkids; i++) {
            if (!(kid = tnode_render(n->kids[i], rec, err, errlen))) {
                json_decref(v);
                return NULL;
            }
            if ((n->kind == TN_OBJECT ? json_object_set_new(v, n->keys[i], kid) : json_array_append_new(v, kid)) != 0) {
                json_decref(v);
                v = NULL;
                break;
            }
        }
        if (v)
            return v;
        break;
    }
    snprintf(err, errlen, "out of memory");
    return NULL;
}

static int dump_into(json_t *v, struct buf *out, char *err, size_t errlen)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    json_decref(v);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    buf_adds(out, text);
    free(text);
    if (out->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int tpl_json_render(const struct tpl_json *t, const struct tpl_record *rec, struct buf *out,
                    char *err, size_t errlen)
{
    json_t *v;

    err[0] = '\0';
    v = tnode_render(t->each ? t->each->kids[0] : t->root, rec, err, errlen);
    if (!v)
        return -1;
    return dump_into(v, out, err, errlen);
}

int tpl_json_render_batch(const struct tpl_json *t, const struct tpl_record *batch,
                          const char *const *elements, const size_t *lens, size_t n,
                          struct buf *out, char *err, size_t errlen)
{
    struct buf outer = { 0 };
    json_t *v;
    char *mark;
    size_t before;

    err[0] = '\0';
    if (!t->each) {
        snprintf(err, errlen, "the body has no $each");
        return -1;
    }
    if (!(v = tnode_render(t->root, batch, err, errlen)))
        return -1;
    if (dump_into(v, &outer, err, errlen) != 0) {
        buf_free(&outer);
        return -1;
    }
    mark = strstr(outer.p, EACH_MARK_DUMPED);
    if (!mark) {
        buf_free(&outer);
        snprintf(err, errlen, "internal error: $each marker lost");
        return -1;
    }
    before = (size_t)(mark - outer.p);
    buf_add(out, outer.p, before);
    buf_add(out, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_add(out, ",", 1);
        buf_add(out, elements[i], lens[i]);
    }
    buf_add(out, "]", 1);
    buf_adds(out, mark + strlen(EACH_MARK_DUMPED));
    buf_free(&outer);
    if (out->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
