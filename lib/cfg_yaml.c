/* YAML configuration files (cfg_yaml.h): libyaml's events turned into a jansson tree and its
 * marks. libyaml gives scalars as text with their style and tag and leaves their meaning to us,
 * so the core schema of YAML 1.2 is applied here, and nothing of YAML 1.1's wider one. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cfg_yaml.h"

#define YAML_CORE_TAG "tag:yaml.org,2002:"

/* One open collection. */
struct yaml_frame {
    json_t *node;            /* borrowed: held by its parent, or the root */
    size_t mark;             /* its entry in the marks */
    char *key;               /* a mapping's member name waiting for its value (owned), or NULL */
    size_t keylen;
    int key_line, key_column;
};

struct yaml_conv {
    yaml_parser_t parser;
    const char *text;
    size_t len;
    struct cfg_marks *marks;
    struct cfg_yaml_error *err;
    json_t *root;
    int documents;
    size_t depth;
    struct yaml_frame stack[CFG_YAML_DEPTH_MAX];
};

/* ------------------------------------------------------------------------------------------ */
/* Marks                                                                                       */

static size_t yaml_mark_add(struct cfg_marks *marks, const char *key, size_t keylen, int line,
                            int column)
{
    struct cfg_mark *m;

    if (marks->n == marks->cap) {
        size_t cap = marks->cap ? marks->cap * 2 : 64;
        struct cfg_mark *v = realloc(marks->v, cap * sizeof *v);

        if (!v)
            return CFG_MARK_ITEM;
        marks->v = v;
        marks->cap = cap;
    }
    m = &marks->v[marks->n];
    *m = (struct cfg_mark){ .end = marks->n + 1, .key = CFG_MARK_ITEM, .line = line, .column = column };
    if (key) {
        if (marks->keys_cap - marks->keys_len < keylen) {
            size_t cap = marks->keys_cap ? marks->keys_cap : 256;
            char *keys;

            while (cap - marks->keys_len < keylen)
                cap *= 2;
            keys = realloc(marks->keys, cap);
            if (!keys)
                return CFG_MARK_ITEM;
            marks->keys = keys;
            marks->keys_cap = cap;
        }
        if (keylen)
            memcpy(marks->keys + marks->keys_len, key, keylen);
        m->key = marks->keys_len;
        m->keylen = keylen;
        marks->keys_len += keylen;
    }
    return marks->n++;
}

void cfg_marks_free(struct cfg_marks *marks)
{
    free(marks->v);
    free(marks->keys);
    memset(marks, 0, sizeof *marks);
}

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

static int yaml_fail_at(struct yaml_conv *c, size_t line0, size_t column0, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int yaml_fail_at(struct yaml_conv *c, size_t line0, size_t column0, const char *fmt, ...)
{
    va_list ap;

    c->err->line = line0 < INT_MAX ? (int)line0 + 1 : INT_MAX;
    c->err->column = column0 < INT_MAX ? (int)column0 + 1 : INT_MAX;
    va_start(ap, fmt);
    vsnprintf(c->err->reason, sizeof c->err->reason, fmt, ap);
    va_end(ap);
    return -1;
}

#define yaml_fail(c, mark, ...) yaml_fail_at((c), (mark).line, (mark).column, __VA_ARGS__)

/* The 0-based line and column of byte @p offset, columns in characters (as libyaml's marks). */
static void yaml_offset_position(const char *text, size_t len, size_t offset, size_t *line,
                                 size_t *column)
{
    *line = 0;
    *column = 0;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 0;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            (*column)++;
        }
    }
}

/* Reports why libyaml stopped. */
static void yaml_syntax_error(struct yaml_conv *c)
{
    const yaml_parser_t *p = &c->parser;
    const char *problem = p->problem ? p->problem : "malformed text";

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        yaml_fail_at(c, 0, 0, "out of memory");
        break;
    case YAML_READER_ERROR: {
        size_t line, column;

        /* the reader counts in bytes and gives no mark */
        yaml_offset_position(c->text, c->len, p->problem_offset, &line, &column);
        yaml_fail_at(c, line, column, "YAML syntax error: %s (byte %zu)", problem,
                     p->problem_offset);
        break;
    }
    default:
        if (p->context)
            yaml_fail(c, p->problem_mark, "YAML syntax error: %s (%s at line %zu, column %zu)",
                      problem, p->context, p->context_mark.line + 1, p->context_mark.column + 1);
        else
            yaml_fail(c, p->problem_mark, "YAML syntax error: %s", problem);
        break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Scalars: YAML 1.2's core schema                                                             */

enum yaml_want { YAML_WANT_ANY, YAML_WANT_STR, YAML_WANT_NULL, YAML_WANT_BOOL, YAML_WANT_INT,
                 YAML_WANT_FLOAT };

static int yaml_is(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(s, *words, n) == 0)
            return 1;
    return 0;
}

static int yaml_is_null(const char *s, size_t n)
{
    static const char *const words[] = { "~", "null", "Null", "NULL", NULL };

    return n == 0 || yaml_is(s, n, words);
}

/* 1 and the value in @p out when @p s is a core boolean, else 0. */
static int yaml_bool(const char *s, size_t n, int *out)
{
    static const char *const yes[] = { "true", "True", "TRUE", NULL };
    static const char *const no[] = { "false", "False", "FALSE", NULL };

    if (yaml_is(s, n, yes))
        *out = 1;
    else if (yaml_is(s, n, no))
        *out = 0;
    else
        return 0;
    return 1;
}

static int yaml_digit(char ch, unsigned base)
{
    int d = ch >= '0' && ch <= '9' ? ch - '0'
          : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
          : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : 99;

    return (unsigned)d < base ? d : -1;
}

/* A core integer ([-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+): 1 with the value, -1 when it is
 * one but does not fit 64 bits, 0 when it is not one. */
static int yaml_int(const char *s, size_t n, long long *out)
{
    unsigned long long v = 0, limit = (unsigned long long)LLONG_MAX;
    unsigned base = 10;
    size_t i = 0;
    int negative = 0;

    if (n > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        base = s[1] == 'o' ? 8 : 16;
        i = 2;
    } else if (n > 1 && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        limit += negative;   /* -2^63 fits */
        i = 1;
    }
    if (i == n)
        return 0;
    for (size_t k = i; k < n; k++)
        if (yaml_digit(s[k], base) < 0)
            return 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)yaml_digit(s[i], base);

        if (v > (limit - d) / base)
            return -1;
        v = v * base + d;
    }
    if (!negative)
        *out = (long long)v;
    else
        *out = v > (unsigned long long)LLONG_MAX ? LLONG_MIN : -(long long)v;
    return 1;
}

/* A core float ([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, or .inf/.nan forms):
 * 1 with the value, -1 when it is one JSON cannot hold, 0 when it is not one. */
static int yaml_float(const char *s, size_t n, double *out)
{
    static const char *const special[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
                                           "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", NULL };
    size_t i = 0, digits = 0;
    char *end;

    if (yaml_is(s, n, special))
        return -1;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (!digits)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;

        if (++i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            exp_digits++;
        if (!exp_digits)
            return 0;
    }
    if (i != n)
        return 0;
    /* libyaml ends every scalar with a NUL, and the text is checked: strtod reads just it */
    *out = strtod(s, &end);
    if (end != s + n || !isfinite(*out))
        return -1;
    return 1;
}

/* The tag of a node, as what it asks for; -1 (reported) for a tag outside the core schema. */
static int yaml_tag_want(struct yaml_conv *c, const yaml_event_t *ev, const char *tag,
                         enum yaml_want *want)
{
    static const char *const names[] = { "str", "null", "bool", "int", "float", NULL };
    static const enum yaml_want wants[] = { YAML_WANT_STR, YAML_WANT_NULL, YAML_WANT_BOOL,
                                            YAML_WANT_INT, YAML_WANT_FLOAT };
    size_t prefix = strlen(YAML_CORE_TAG);

    if (strcmp(tag, "!") == 0) {
        *want = YAML_WANT_STR;   /* the non-specific tag: a string */
        return 0;
    }
    if (strncmp(tag, YAML_CORE_TAG, prefix) == 0)
        for (size_t i = 0; names[i]; i++)
            if (strcmp(tag + prefix, names[i]) == 0) {
                *want = wants[i];
                return 0;
            }
    return yaml_fail(c, ev->start_mark, "tag %.100s is not supported (only the core schema's "
                     "!!str, !!null, !!bool, !!int, !!float, !!seq and !!map)", tag);
}

/* The JSON value of a scalar, or NULL (reported). */
static json_t *yaml_scalar(struct yaml_conv *c, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value, *tag = (const char *)ev->data.scalar.tag;
    size_t n = ev->data.scalar.length;
    enum yaml_want want = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? YAML_WANT_ANY
                                                                           : YAML_WANT_STR;
    long long i;
    double d;
    json_t *v = NULL;
    int b, r;

    if (memchr(s, '\0', n)) {
        yaml_fail(c, ev->start_mark, "a string holds a NUL character");
        return NULL;
    }
    if (tag && yaml_tag_want(c, ev, tag, &want) != 0)
        return NULL;
    if (want == YAML_WANT_STR)
        v = json_stringn(s, n);
    else if ((want == YAML_WANT_ANY || want == YAML_WANT_NULL) && yaml_is_null(s, n))
        v = json_null();
    else if ((want == YAML_WANT_ANY || want == YAML_WANT_BOOL) && yaml_bool(s, n, &b))
        v = json_boolean(b);
    else if ((want == YAML_WANT_ANY || want == YAML_WANT_INT) && (r = yaml_int(s, n, &i)) != 0) {
        if (r < 0) {
            yaml_fail(c, ev->start_mark, "integer out of range (64 bits)");
            return NULL;
        }
        v = json_integer(i);
    } else if ((want == YAML_WANT_ANY || want == YAML_WANT_FLOAT) && (r = yaml_float(s, n, &d)) != 0) {
        if (r < 0) {
            yaml_fail(c, ev->start_mark, "number out of range: JSON has no infinity or NaN");
            return NULL;
        }
        v = json_real(d);
    } else if (want == YAML_WANT_ANY) {
        v = json_stringn(s, n);
    } else {
        /* only the core tags get here */
        yaml_fail(c, ev->start_mark, "not a valid !!%s", tag + strlen(YAML_CORE_TAG));
        return NULL;
    }
    if (!v)
        yaml_fail(c, ev->start_mark, "not valid UTF-8, or out of memory");
    return v;
}

/* ------------------------------------------------------------------------------------------ */
/* Nodes                                                                                       */

static struct yaml_frame *yaml_top(struct yaml_conv *c)
{
    return c->depth ? &c->stack[c->depth - 1] : NULL;
}

/* A scalar in key position: remembered until its value comes. */
static int yaml_key(struct yaml_conv *c, struct yaml_frame *top, const yaml_event_t *ev)
{
    const char *key = (const char *)ev->data.scalar.value, *tag = (const char *)ev->data.scalar.tag;
    size_t n = ev->data.scalar.length, first;

    if (tag && strcmp(tag, "!") != 0 && strcmp(tag, YAML_CORE_TAG "str") != 0)
        return yaml_fail(c, ev->start_mark, "a key must be a string, not tagged %.100s", tag);
    if (memchr(key, '\0', n))
        return yaml_fail(c, ev->start_mark, "a key holds a NUL character");
    if (json_object_getn(top->node, key, n)) {
        /* the innermost open collection: every entry since its own is one of its subtree */
        c->marks->v[top->mark].end = c->marks->n;
        first = cfg_marks_member(c->marks, top->mark, key, n);
        if (first != CFG_MARK_ITEM)
            return yaml_fail(c, ev->start_mark, "duplicate key \"%.100s\" (first at line %d, column %d)",
                             key, c->marks->v[first].line, c->marks->v[first].column);
        return yaml_fail(c, ev->start_mark, "duplicate key \"%.100s\"", key);
    }
    top->key = malloc(n + 1);
    if (!top->key)
        return yaml_fail(c, ev->start_mark, "out of memory");
    memcpy(top->key, key, n + 1);
    top->keylen = n;
    top->key_line = (int)(ev->start_mark.line < INT_MAX ? ev->start_mark.line + 1 : INT_MAX);
    top->key_column = (int)(ev->start_mark.column < INT_MAX ? ev->start_mark.column + 1 : INT_MAX);
    return 0;
}

/* Puts @p v (taken) in its place: the root, the pending member of a mapping, or the next element
 * of a sequence; a collection opens a frame. */
static int yaml_place(struct yaml_conv *c, json_t *v, const yaml_event_t *ev, int collection)
{
    struct yaml_frame *top = yaml_top(c);
    int line = (int)(ev->start_mark.line < INT_MAX ? ev->start_mark.line + 1 : INT_MAX);
    int column = (int)(ev->start_mark.column < INT_MAX ? ev->start_mark.column + 1 : INT_MAX);
    size_t at;
    int rc = 0;

    if (!top) {
        c->root = v;
        at = yaml_mark_add(c->marks, NULL, 0, line, column);
    } else if (top->key) {
        rc = json_object_setn_new(top->node, top->key, top->keylen, v);
        at = yaml_mark_add(c->marks, top->key, top->keylen, top->key_line, top->key_column);
        free(top->key);
        top->key = NULL;
    } else {
        rc = json_array_append_new(top->node, v);
        at = yaml_mark_add(c->marks, NULL, 0, line, column);
    }
    if (rc != 0 || at == CFG_MARK_ITEM)
        return yaml_fail(c, ev->start_mark, "out of memory");
    if (collection) {
        if (c->depth == CFG_YAML_DEPTH_MAX)
            return yaml_fail(c, ev->start_mark, "nested deeper than %d levels", CFG_YAML_DEPTH_MAX);
        c->stack[c->depth++] = (struct yaml_frame){ .node = v, .mark = at };
    }
    return 0;
}

/* A sequence or mapping begins. */
static int yaml_collection(struct yaml_conv *c, const yaml_event_t *ev, const char *tag, int mapping)
{
    const char *expected = mapping ? YAML_CORE_TAG "map" : YAML_CORE_TAG "seq";
    json_t *v;

    if (tag && strcmp(tag, "!") != 0 && strcmp(tag, expected) != 0)
        return yaml_fail(c, ev->start_mark, "tag %.100s is not supported on a %s", tag,
                         mapping ? "mapping" : "sequence");
    v = mapping ? json_object() : json_array();
    if (!v)
        return yaml_fail(c, ev->start_mark, "out of memory");
    return yaml_place(c, v, ev, 1);
}

/* One event: 0 to go on, 1 at the end of the stream, -1 (reported) to stop. */
static int yaml_event(struct yaml_conv *c, const yaml_event_t *ev)
{
    struct yaml_frame *top = yaml_top(c);
    const unsigned char *anchor = NULL;
    int awaiting_key = top && json_is_object(top->node) && !top->key;
    json_t *v;

    if (ev->type == YAML_SCALAR_EVENT)
        anchor = ev->data.scalar.anchor;
    else if (ev->type == YAML_SEQUENCE_START_EVENT)
        anchor = ev->data.sequence_start.anchor;
    else if (ev->type == YAML_MAPPING_START_EVENT)
        anchor = ev->data.mapping_start.anchor;
    if (anchor)
        return yaml_fail(c, ev->start_mark, "anchors (&%.100s) are not supported: write the value out",
                         (const char *)anchor);
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (c->documents++)
            return yaml_fail(c, ev->start_mark, "a second document: a configuration file holds one");
        return 0;
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_ALIAS_EVENT:
        return yaml_fail(c, ev->start_mark, "aliases (*%.100s) are not supported: write the value out",
                         (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if (awaiting_key)
            return yaml_key(c, top, ev);
        v = yaml_scalar(c, ev);
        return v ? yaml_place(c, v, ev, 0) : -1;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (awaiting_key)
            return yaml_fail(c, ev->start_mark, "a key must be a string, not a %s",
                             ev->type == YAML_MAPPING_START_EVENT ? "mapping" : "sequence");
        return yaml_collection(c, ev,
                               (const char *)(ev->type == YAML_MAPPING_START_EVENT
                                                  ? ev->data.mapping_start.tag
                                                  : ev->data.sequence_start.tag),
                               ev->type == YAML_MAPPING_START_EVENT);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (!top)
            return yaml_fail(c, ev->start_mark, "a collection ends that was not open");
        c->marks->v[top->mark].end = c->marks->n;
        c->depth--;
        return 0;
    }
    return 0;
}

json_t *cfg_yaml_load(const char *text, size_t len, struct cfg_marks *marks,
                      struct cfg_yaml_error *err)
{
    struct yaml_conv *c = calloc(1, sizeof *c);
    json_t *root = NULL;
    int rc = -1;

    memset(err, 0, sizeof *err);
    memset(marks, 0, sizeof *marks);
    if (!c) {
        snprintf(err->reason, sizeof err->reason, "out of memory");
        err->line = err->column = 1;
        return NULL;
    }
    *c = (struct yaml_conv){ .text = text, .len = len, .marks = marks, .err = err };
    if (!yaml_parser_initialize(&c->parser)) {
        yaml_fail_at(c, 0, 0, "out of memory");
        free(c);
        return NULL;
    }
    yaml_parser_set_input_string(&c->parser, (const unsigned char *)text, len);
    for (;;) {
        yaml_event_t ev;

        if (!yaml_parser_parse(&c->parser, &ev)) {
            yaml_syntax_error(c);
            break;
        }
        rc = yaml_event(c, &ev);
        yaml_event_delete(&ev);
        if (rc != 0)
            break;
    }
    if (rc == 1 && !c->root) {
        /* no document, or only comments: null, which the caller may refuse at 1:1 */
        c->root = json_null();
        if (yaml_mark_add(marks, NULL, 0, 1, 1) == CFG_MARK_ITEM) {
            yaml_fail_at(c, 0, 0, "out of memory");
            rc = -1;
        }
    }
    for (size_t i = 0; i < c->depth; i++)
        free(c->stack[i].key);
    if (rc == 1) {
        root = c->root;
    } else {
        json_decref(c->root);
        cfg_marks_free(marks);
    }
    yaml_parser_delete(&c->parser);
    free(c);
    return root;
}
