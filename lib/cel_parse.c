/* CEL's grammar (cel-spec langdef.md, "Syntax") by recursive descent, into the tree of cel_int.h.
 * Everything outside the subset is rejected here, with its column, so that a rule either runs
 * with the meaning CEL gives it or is refused when the contract is loaded. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cel_int.h"

struct parser {
    struct cel_program *program;
    const char *src;
    size_t len, pos;
    int depth;            /* nesting of the recursive descent, bounded by CEL_MAX_NESTING */
    struct cel_arena *arena;
    char *err;
    size_t errlen;
    int failed;
};

/* ---- arena ---- */

struct cel_chunk {
    struct cel_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void *cel_arena_alloc(struct cel_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0)
        size = 16;
    if (a->budget && (size > a->budget || a->used > a->budget - size))
        return NULL;
    struct cel_chunk *c = a->chunks;
    if (!c || c->size - c->used < size) {
        size_t want = size > 4096 ? size : 4096;
        if (!(c = malloc(sizeof *c + want)))
            return NULL;
        c->size = want;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    a->used += size;
    return p;
}

void cel_arena_free(struct cel_arena *a)
{
    while (a->chunks) {
        struct cel_chunk *next = a->chunks->next;
        free(a->chunks);
        a->chunks = next;
    }
    a->used = 0;
}

/* ---- errors and characters ---- */

static void fail_at(struct parser *ps, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_at(struct parser *ps, size_t pos, const char *fmt, ...)
{
    if (ps->failed)
        return;
    ps->failed = 1;
    char reason[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (ps->errlen)
        snprintf(ps->err, ps->errlen, "%s at column %zu", reason, pos + 1);
}

static void *alloc(struct parser *ps, size_t size)
{
    void *p = cel_arena_alloc(ps->arena, size);
    if (!p)
        fail_at(ps, ps->pos, "out of memory");
    else
        memset(p, 0, size);
    return p;
}

static int is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_ident_char(int c) { return is_ident_start(c) || is_digit(c); }
static int hex_value(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int peek(const struct parser *ps, size_t ahead)
{
    return ps->pos + ahead < ps->len ? (unsigned char)ps->src[ps->pos + ahead] : 0;
}

/* Skips blanks and // comments. */
static void skip_space(struct parser *ps)
{
    for (;;) {
        int c = peek(ps, 0);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
            ps->pos++;
        else if (c == '/' && peek(ps, 1) == '/')
            while (ps->pos < ps->len && ps->src[ps->pos] != '\n')
                ps->pos++;
        else
            return;
    }
}

/* Consumes the operator @p op if it comes next (">" does not match the start of ">="). */
static int accept(struct parser *ps, const char *op)
{
    skip_space(ps);
    size_t n = strlen(op);
    if (ps->len - ps->pos < n || memcmp(ps->src + ps->pos, op, n) != 0)
        return 0;
    if (n == 1 && (op[0] == '<' || op[0] == '>' || op[0] == '!' || op[0] == '=') && peek(ps, 1) == '=')
        return 0;
    ps->pos += n;
    return 1;
}

static void expect(struct parser *ps, const char *op)
{
    if (!accept(ps, op))
        fail_at(ps, ps->pos, "expected '%s'", op);
}

static int accept_keyword(struct parser *ps, const char *word)
{
    skip_space(ps);
    size_t n = strlen(word);
    if (ps->len - ps->pos < n || memcmp(ps->src + ps->pos, word, n) != 0 || is_ident_char(peek(ps, n)))
        return 0;
    ps->pos += n;
    return 1;
}

static struct cel_node *node(struct parser *ps, enum cel_node_kind kind, size_t pos, size_t nargs)
{
    struct cel_node *n = alloc(ps, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->column = (int)pos + 1;
    n->depth = 1;
    n->nargs = nargs;
    if (nargs && !(n->args = alloc(ps, nargs * sizeof *n->args)))
        return NULL;
    return n;
}

/* ---- literals ---- */

/* Appends code point @p cp as UTF-8. */
static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* One escape after the backslash at ps->pos; a string gets code points, bytes get bytes. */
static size_t read_escape(struct parser *ps, int bytes, char *out)
{
    size_t start = ps->pos - 1;
    int c = peek(ps, 0);
    ps->pos++;
    switch (c) {
    case 'a': *out = '\a'; return 1;
    case 'b': *out = '\b'; return 1;
    case 'f': *out = '\f'; return 1;
    case 'n': *out = '\n'; return 1;
    case 'r': *out = '\r'; return 1;
    case 't': *out = '\t'; return 1;
    case 'v': *out = '\v'; return 1;
    case '\\': case '\'': case '"': case '`': case '?': *out = (char)c; return 1;
    default: break;
    }
    unsigned long cp = 0;
    int digits = c == 'x' || c == 'X' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (digits) {
        if (bytes && digits > 2) {
            fail_at(ps, start, "\\%c escape in a bytes literal", c);
            return 0;
        }
        for (int i = 0; i < digits; i++) {
            int h = hex_value(peek(ps, 0));
            if (h < 0) {
                fail_at(ps, start, "invalid escape sequence");
                return 0;
            }
            cp = cp * 16 + (unsigned long)h;
            ps->pos++;
        }
    } else if (c >= '0' && c <= '3') {
        cp = (unsigned long)(c - '0');
        for (int i = 0; i < 2; i++) {
            int d = peek(ps, 0);
            if (d < '0' || d > '7') {
                fail_at(ps, start, "invalid escape sequence");
                return 0;
            }
            cp = cp * 8 + (unsigned long)(d - '0');
            ps->pos++;
        }
    } else {
        fail_at(ps, start, "invalid escape sequence");
        return 0;
    }
    if (bytes) {
        *out = (char)cp;
        return 1;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        fail_at(ps, start, "invalid code point in escape");
        return 0;
    }
    return put_utf8(out, cp);
}

/* A quoted literal at ps->pos (after any r/b prefixes): '..', "..", '''..''' or """..""". */
static struct cel_node *string_literal(struct parser *ps, size_t start, int raw, int bytes)
{
    char quote = ps->src[ps->pos];
    int triple = peek(ps, 1) == quote && peek(ps, 2) == quote;
    ps->pos += triple ? 3 : 1;
    /* A decoded literal is never longer than its text; an escape yields at most 4 bytes from 2+. */
    char *out = alloc(ps, ps->len - ps->pos + 1);
    size_t n = 0;
    if (!out)
        return NULL;
    for (;;) {
        if (ps->pos >= ps->len) {
            fail_at(ps, start, "unterminated string literal");
            return NULL;
        }
        int c = (unsigned char)ps->src[ps->pos];
        if (c == quote && (!triple || (peek(ps, 1) == quote && peek(ps, 2) == quote))) {
            ps->pos += triple ? 3 : 1;
            break;
        }
        if (!triple && (c == '\n' || c == '\r')) {
            fail_at(ps, start, "newline in string literal");
            return NULL;
        }
        ps->pos++;
        if (c == '\\' && !raw) {
            if (ps->pos >= ps->len) {
                fail_at(ps, start, "unterminated string literal");
                return NULL;
            }
            size_t k = read_escape(ps, bytes, out + n);
            if (!k)
                return NULL;
            n += k;
        } else {
            out[n++] = (char)c;
        }
    }
    if (!bytes && !cel_utf8_valid(out, n)) {
        fail_at(ps, start, "invalid UTF-8 in string literal");
        return NULL;
    }
    struct cel_node *lit = node(ps, N_LITERAL, start, 0);
    if (!lit)
        return NULL;
    lit->literal.kind = bytes ? CEL_BYTES : CEL_STRING;
    lit->literal.v.s.p = out;
    lit->literal.v.s.n = n;
    return lit;
}

/* A number; @p negate folds a leading '-' so that -9223372036854775808 is representable. */
static struct cel_node *number_literal(struct parser *ps, size_t start, int negate)
{
    size_t begin = ps->pos;
    int hex = peek(ps, 0) == '0' && (peek(ps, 1) == 'x' || peek(ps, 1) == 'X');
    int is_double = 0;
    if (hex) {
        ps->pos += 2;
        if (hex_value(peek(ps, 0)) < 0) {
            fail_at(ps, start, "invalid hexadecimal literal");
            return NULL;
        }
        while (hex_value(peek(ps, 0)) >= 0)
            ps->pos++;
    } else {
        while (is_digit(peek(ps, 0)))
            ps->pos++;
        if (peek(ps, 0) == '.' && is_digit(peek(ps, 1))) {
            is_double = 1;
            ps->pos++;
            while (is_digit(peek(ps, 0)))
                ps->pos++;
        }
        if ((peek(ps, 0) == 'e' || peek(ps, 0) == 'E') &&
            (is_digit(peek(ps, 1)) || ((peek(ps, 1) == '+' || peek(ps, 1) == '-') && is_digit(peek(ps, 2))))) {
            is_double = 1;
            ps->pos += 2;
            while (is_digit(peek(ps, 0)))
                ps->pos++;
        }
    }
    char text[400];
    size_t tn = ps->pos - begin;
    if (tn >= sizeof text) {
        fail_at(ps, start, "numeric literal too long");
        return NULL;
    }
    memcpy(text, ps->src + begin, tn);
    text[tn] = '\0';
    struct cel_node *lit = node(ps, N_LITERAL, start, 0);
    if (!lit)
        return NULL;
    if (is_double) {
        lit->literal.kind = CEL_DOUBLE;
        lit->literal.v.d = strtod(text, NULL) * (negate ? -1 : 1);
        return lit;
    }
    unsigned long long mag = 0;
    int base = hex ? 16 : 10;
    for (const char *p = text + (hex ? 2 : 0); *p; p++) {
        unsigned d = (unsigned)hex_value(*p);
        if (mag > (UINT64_MAX - d) / (unsigned)base) {
            fail_at(ps, start, "integer literal out of range");
            return NULL;
        }
        mag = mag * (unsigned)base + d;
    }
    if (peek(ps, 0) == 'u' || peek(ps, 0) == 'U') {
        ps->pos++;
        if (negate) {
            fail_at(ps, start, "negative uint literal");
            return NULL;
        }
        lit->literal.kind = CEL_UINT;
        lit->literal.v.u = mag;
    } else {
        if (mag > (uint64_t)INT64_MAX + (negate ? 1 : 0)) {
            fail_at(ps, start, "integer literal out of range");
            return NULL;
        }
        lit->literal.kind = CEL_INT;
        lit->literal.v.i = negate ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    }
    if (is_ident_char(peek(ps, 0))) {
        fail_at(ps, ps->pos, "invalid numeric literal");
        return NULL;
    }
    return lit;
}

/* ---- expressions ---- */

static struct cel_node *expr(struct parser *ps);

static const char *const reserved_words[] = {
    "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
    "package", "namespace", "return", "var", "void", "while", NULL
};
static const char *const type_names[] = {
    "int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", NULL
};
static const char *const macro_names[] = { "all", "exists", "exists_one", "map", "filter", NULL };

static int in_list(const char *const *words, const char *w)
{
    for (; *words; words++)
        if (strcmp(*words, w) == 0)
            return 1;
    return 0;
}

static const char *identifier(struct parser *ps, size_t *at)
{
    skip_space(ps);
    *at = ps->pos;
    if (!is_ident_start(peek(ps, 0))) {
        if (ps->pos < ps->len)
            fail_at(ps, ps->pos, "unexpected character '%c'", ps->src[ps->pos]);
        else
            fail_at(ps, ps->pos, "unexpected end of expression");
        return NULL;
    }
    size_t begin = ps->pos;
    while (is_ident_char(peek(ps, 0)))
        ps->pos++;
    char *name = alloc(ps, ps->pos - begin + 1);
    if (!name)
        return NULL;
    memcpy(name, ps->src + begin, ps->pos - begin);
    if (in_list(reserved_words, name) || strcmp(name, "in") == 0) {
        fail_at(ps, begin, "reserved identifier '%s'", name);
        return NULL;
    }
    return name;
}

/* Operands gathered while parsing a call or an aggregate: grown in the arena by doubling, so
 * the total stays within a small multiple of the expression's length. */
struct node_vec {
    struct cel_node **items;
    size_t n, cap;
};

static int vec_push(struct parser *ps, struct node_vec *v, struct cel_node *item)
{
    if (!item)
        return 0;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        struct cel_node **grown = alloc(ps, cap * sizeof *grown);
        if (!grown)
            return 0;
        if (v->n)
            memcpy(grown, v->items, v->n * sizeof *grown);
        v->items = grown;
        v->cap = cap;
    }
    v->items[v->n++] = item;
    return 1;
}

static int tree_depth_ok(struct parser *ps, const struct cel_node *n, size_t at);

static const struct { const char *name; enum cel_func func; int method, global, arity; } functions[] = {
    { "size", F_SIZE, 1, 1, 1 },
    { "startsWith", F_STARTS_WITH, 1, 0, 2 },
    { "endsWith", F_ENDS_WITH, 1, 0, 2 },
    { "contains", F_CONTAINS, 1, 0, 2 },
    { "matches", F_MATCHES, 1, 1, 2 },
    { "int", F_INT, 0, 1, 1 },
    { "uint", F_UINT, 0, 1, 1 },
    { "double", F_DOUBLE, 0, 1, 1 },
    { "string", F_STRING, 0, 1, 1 },
    { "bytes", F_BYTES, 0, 1, 1 },
    { "bool", F_BOOL, 0, 1, 1 },
    { "dyn", F_DYN, 0, 1, 1 },
};

/* A literal pattern is compiled with the program: a bad one is refused when the rule is loaded,
 * and records do not pay for compiling it. */
static int precompile_regex(struct parser *ps, struct cel_node *call)
{
    const struct cel_value *pattern = &call->args[1]->literal;
    char why[200];
    struct cel_regex_list *entry = alloc(ps, sizeof *entry);
    if (!entry)
        return 0;
    if (!(call->regex = cel_regex_compile(pattern->v.s.p, pattern->v.s.n, why, sizeof why))) {
        fail_at(ps, (size_t)call->args[1]->column - 1, "%s", why);
        return 0;
    }
    entry->regex = call->regex;
    entry->next = ps->program->regexes;
    ps->program->regexes = entry;
    return 1;
}

/* The arguments after '(' up to ')'; @p receiver (a method's target) becomes args[0]. */
static struct cel_node *call(struct parser *ps, const char *name, size_t at, struct cel_node *receiver)
{
    struct node_vec args = { 0 };
    if (receiver && !vec_push(ps, &args, receiver))
        return NULL;
    if (!accept(ps, ")")) {
        do {
            if (!vec_push(ps, &args, expr(ps)))
                return NULL;
        } while (accept(ps, ","));
        expect(ps, ")");
    }
    if (ps->failed)
        return NULL;
    if (receiver && in_list(macro_names, name)) {
        fail_at(ps, at, "macro '%s' is not supported", name);
        return NULL;
    }
    for (size_t i = 0; i < sizeof functions / sizeof *functions; i++) {
        if (strcmp(functions[i].name, name) != 0 || !(receiver ? functions[i].method : functions[i].global))
            continue;
        if ((int)args.n != functions[i].arity) {
            fail_at(ps, at, "%s() takes %d argument%s", name, functions[i].arity - (receiver ? 1 : 0),
                    functions[i].arity - (receiver ? 1 : 0) == 1 ? "" : "s");
            return NULL;
        }
        struct cel_node *c = node(ps, N_CALL, at, 0);
        if (!c)
            return NULL;
        c->op = (int)functions[i].func;
        c->args = args.items;
        c->nargs = args.n;
        if (c->op == F_MATCHES && c->args[1]->kind == N_LITERAL && c->args[1]->literal.kind == CEL_STRING &&
            !precompile_regex(ps, c))
            return NULL;
        return tree_depth_ok(ps, c, at) ? c : NULL;
    }
    fail_at(ps, at, "%s '%s' is not supported", receiver ? "method" : "function", name);
    return NULL;
}

/* Comma-separated elements up to @p close (a trailing comma is allowed); maps take key: value. */
static struct cel_node *aggregate(struct parser *ps, size_t at, int is_map)
{
    const char *close = is_map ? "}" : "]";
    struct node_vec items = { 0 };
    while (!accept(ps, close)) {
        if (!vec_push(ps, &items, expr(ps)))
            return NULL;
        if (is_map) {
            expect(ps, ":");
            if (ps->failed || !vec_push(ps, &items, expr(ps)))
                return NULL;
        }
        if (!accept(ps, ",")) {
            expect(ps, close);
            break;
        }
    }
    if (ps->failed)
        return NULL;
    struct cel_node *agg = node(ps, is_map ? N_MAP : N_LIST, at, 0);
    if (!agg)
        return NULL;
    agg->args = items.items;
    agg->nargs = items.n;
    return tree_depth_ok(ps, agg, at) ? agg : NULL;
}

static struct cel_node *primary(struct parser *ps)
{
    skip_space(ps);
    size_t at = ps->pos;
    int c = peek(ps, 0), c1 = peek(ps, 1);
    if (accept(ps, "(")) {
        struct cel_node *inner = expr(ps);
        expect(ps, ")");
        return ps->failed ? NULL : inner;
    }
    if (accept(ps, "["))
        return aggregate(ps, at, 0);
    if (accept(ps, "{"))
        return aggregate(ps, at, 1);
    if (c == '"' || c == '\'')
        return string_literal(ps, at, 0, 0);
    if ((c == 'r' || c == 'R' || c == 'b' || c == 'B') && (c1 == '"' || c1 == '\'')) {
        ps->pos++;
        return string_literal(ps, at, c == 'r' || c == 'R', c == 'b' || c == 'B');
    }
    if ((c == 'r' || c == 'R' || c == 'b' || c == 'B') && (c1 == 'r' || c1 == 'R' || c1 == 'b' || c1 == 'B') &&
        (c1 | 0x20) != (c | 0x20) && (peek(ps, 2) == '"' || peek(ps, 2) == '\'')) {
        ps->pos += 2;
        return string_literal(ps, at, 1, 1);
    }
    if (is_digit(c) || (c == '.' && is_digit(c1)))
        return number_literal(ps, at, 0);
    if (c == '.')
        ps->pos++; /* a leading dot names the root scope, which is the only scope here */
    struct cel_node *lit;
    if (accept_keyword(ps, "true") || accept_keyword(ps, "false")) {
        if ((lit = node(ps, N_LITERAL, at, 0))) {
            lit->literal.kind = CEL_BOOL;
            lit->literal.v.b = ps->src[at] == 't';
        }
        return lit;
    }
    if (accept_keyword(ps, "null")) {
        if ((lit = node(ps, N_LITERAL, at, 0)))
            lit->literal.kind = CEL_NULL;
        return lit;
    }
    const char *name = identifier(ps, &at);
    if (!name)
        return NULL;
    if (accept(ps, "(")) {
        if (strcmp(name, "has") == 0) {
            struct cel_node *arg = expr(ps);
            expect(ps, ")");
            if (ps->failed)
                return NULL;
            if (arg->kind != N_SELECT) {
                fail_at(ps, at, "has() needs a field selection argument");
                return NULL;
            }
            arg->kind = N_HAS;
            arg->column = (int)at + 1;
            return arg;
        }
        return call(ps, name, at, NULL);
    }
    if (in_list(type_names, name)) {
        fail_at(ps, at, "type value '%s' is not supported", name);
        return NULL;
    }
    struct cel_node *id = node(ps, N_IDENT, at, 0);
    if (id)
        id->name = name;
    return id;
}

/* The dotted name of a chain of identifiers ("a.b.c"), NULL when the operand is anything else. */
static const char *qualified_name(struct parser *ps, const struct cel_node *operand, const char *field)
{
    const char *prefix = operand->kind == N_IDENT ? operand->name : operand->kind == N_SELECT ? operand->qualified : NULL;
    if (!prefix)
        return NULL;
    size_t n = strlen(prefix) + 1 + strlen(field) + 1;
    char *q = alloc(ps, n);
    if (q)
        snprintf(q, n, "%s.%s", prefix, field);
    return q;
}

/* a.`name with.dots-or/slashes`: a field that is no identifier (cel-spec's quoted field names). */
static struct cel_node *quoted_field(struct parser *ps, struct cel_node *operand)
{
    size_t at = ps->pos++, begin = ps->pos;
    while (ps->pos < ps->len && ps->src[ps->pos] != '`' && ps->src[ps->pos] != '\n')
        ps->pos++;
    if (peek(ps, 0) != '`' || ps->pos == begin) {
        fail_at(ps, at, "unterminated or empty quoted field name");
        return NULL;
    }
    struct cel_node *sel = node(ps, N_SELECT, at, 1);
    char *name = sel ? alloc(ps, ps->pos - begin + 1) : NULL;
    if (!name)
        return NULL;
    memcpy(name, ps->src + begin, ps->pos - begin);
    ps->pos++;
    sel->args[0] = operand;
    sel->name = name; /* no qualified name: a quoted field is never part of a variable's name */
    return sel;
}

static struct cel_node *member(struct parser *ps)
{
    struct cel_node *m = primary(ps);
    while (m && !ps->failed) {
        skip_space(ps);
        size_t at = ps->pos;
        if (accept(ps, ".")) {
            size_t name_at;
            skip_space(ps);
            if (peek(ps, 0) == '`') {
                struct cel_node *sel = quoted_field(ps, m);
                if (!sel || !tree_depth_ok(ps, sel, at))
                    return NULL;
                m = sel;
                continue;
            }
            const char *field = identifier(ps, &name_at);
            if (!field)
                return NULL;
            if (accept(ps, "(")) {
                m = call(ps, field, name_at, m);
                continue;
            }
            struct cel_node *sel = node(ps, N_SELECT, name_at, 1);
            if (!sel)
                return NULL;
            sel->args[0] = m;
            sel->name = field;
            sel->qualified = qualified_name(ps, m, field);
            m = sel;
        } else if (accept(ps, "[")) {
            struct cel_node *index = node(ps, N_INDEX, at, 2);
            if (!index)
                return NULL;
            index->args[0] = m;
            if (!(index->args[1] = expr(ps)))
                return NULL;
            expect(ps, "]");
            m = index;
        } else if (accept(ps, "{")) {
            fail_at(ps, at, "message construction is not supported");
            return NULL;
        } else {
            break;
        }
        if (!tree_depth_ok(ps, m, at))
            return NULL;
    }
    return ps->failed ? NULL : m;
}

static struct cel_node *unary(struct parser *ps)
{
    skip_space(ps);
    size_t at = ps->pos;
    if (accept(ps, "!") || (peek(ps, 0) == '-')) {
        int is_not = ps->src[at] == '!';
        if (!is_not)
            ps->pos++;
        if (++ps->depth > CEL_MAX_NESTING) {
            fail_at(ps, at, "expression nests deeper than %d", CEL_MAX_NESTING);
            return NULL;
        }
        skip_space(ps);
        struct cel_node *operand;
        if (!is_not && (is_digit(peek(ps, 0)) || (peek(ps, 0) == '.' && is_digit(peek(ps, 1))))) {
            /* -<number> is a negative literal, unless a selection or index follows it */
            size_t save = ps->pos;
            operand = number_literal(ps, ps->pos, 1);
            skip_space(ps);
            if (operand && (peek(ps, 0) == '.' || peek(ps, 0) == '[')) {
                ps->pos = save;
                operand = NULL;
            }
            if (operand) {
                operand->column = (int)at + 1;
                ps->depth--;
                return operand;
            }
            if (ps->failed)
                return NULL;
        }
        operand = unary(ps);
        ps->depth--;
        if (!operand)
            return NULL;
        struct cel_node *u = node(ps, is_not ? N_NOT : N_NEGATE, at, 1);
        if (u)
            u->args[0] = operand;
        return u && tree_depth_ok(ps, u, at) ? u : NULL;
    }
    return member(ps);
}

/* Depth of the tree, bounded so that evaluation's recursion is bounded too. */
static int tree_depth_ok(struct parser *ps, const struct cel_node *n, size_t at)
{
    int d = 0;
    for (size_t i = 0; i < n->nargs; i++)
        if (n->args[i]->depth > d)
            d = n->args[i]->depth;
    ((struct cel_node *)n)->depth = d + 1;
    if (d + 1 > CEL_MAX_TREE_DEPTH) {
        fail_at(ps, at, "expression nests deeper than %d", CEL_MAX_TREE_DEPTH);
        return 0;
    }
    return 1;
}

static const struct { const char *text; int level; enum cel_node_kind kind; enum cel_binop op; } binary_ops[] = {
    /* longest first, so that "<=" is not read as "<" */
    { "||", 0, N_OR, 0 }, { "&&", 1, N_AND, 0 },
    { "==", 2, N_BINARY, OP_EQ }, { "!=", 2, N_BINARY, OP_NE }, { "<=", 2, N_BINARY, OP_LE },
    { ">=", 2, N_BINARY, OP_GE }, { "<", 2, N_BINARY, OP_LT }, { ">", 2, N_BINARY, OP_GT },
    { "+", 3, N_BINARY, OP_ADD }, { "-", 3, N_BINARY, OP_SUB },
    { "*", 4, N_BINARY, OP_MUL }, { "/", 4, N_BINARY, OP_DIV }, { "%", 4, N_BINARY, OP_MOD },
};

/* Left-associative binary operators of precedence @p level and above (0 is ||, 4 is * / %). */
static struct cel_node *binary(struct parser *ps, int level)
{
    if (level > 4)
        return unary(ps);
    struct cel_node *left = binary(ps, level + 1);
    while (left && !ps->failed) {
        skip_space(ps);
        size_t at = ps->pos;
        int found = -1;
        for (size_t i = 0; i < sizeof binary_ops / sizeof *binary_ops; i++)
            if (binary_ops[i].level == level && accept(ps, binary_ops[i].text)) {
                found = (int)i;
                break;
            }
        if (found < 0 && level == 2 && accept_keyword(ps, "in"))
            found = -2;
        if (found == -1)
            break;
        struct cel_node *right = binary(ps, level + 1);
        if (!right)
            return NULL;
        struct cel_node *b = node(ps, found == -2 ? N_BINARY : binary_ops[found].kind, at, 2);
        if (!b)
            return NULL;
        b->op = found == -2 ? OP_IN : (int)binary_ops[found].op;
        b->args[0] = left;
        b->args[1] = right;
        if (!tree_depth_ok(ps, b, at))
            return NULL;
        left = b;
    }
    return ps->failed ? NULL : left;
}

static struct cel_node *expr(struct parser *ps)
{
    skip_space(ps);
    size_t at = ps->pos;
    if (++ps->depth > CEL_MAX_NESTING) {
        fail_at(ps, at, "expression nests deeper than %d", CEL_MAX_NESTING);
        return NULL;
    }
    struct cel_node *cond = binary(ps, 0), *result = cond;
    if (cond && accept(ps, "?")) {
        struct cel_node *c = node(ps, N_CONDITIONAL, at, 3);
        if (!c || !(c->args[1] = binary(ps, 0)))
            return NULL;
        expect(ps, ":");
        if (ps->failed || !(c->args[2] = expr(ps)))
            return NULL;
        c->args[0] = cond;
        result = tree_depth_ok(ps, c, at) ? c : NULL;
    }
    ps->depth--;
    return ps->failed ? NULL : result;
}

struct cel_program *cel_compile(const char *text, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    size_t len = strlen(text);
    if (len > CEL_MAX_EXPR_LEN) {
        snprintf(err, errlen, "expression longer than %d bytes at column 1", CEL_MAX_EXPR_LEN);
        return NULL;
    }
    struct cel_program *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory at column 1");
        return NULL;
    }
    /* depth -1: the whole expression is level 0, so 64 nested parentheses are allowed */
    struct parser ps = { .program = p, .src = text, .len = len, .depth = -1, .arena = &p->arena, .err = err, .errlen = errlen };
    p->root = expr(&ps);
    skip_space(&ps);
    if (p->root && ps.pos < ps.len)
        fail_at(&ps, ps.pos, "unexpected '%c'", ps.src[ps.pos]);
    if (ps.failed || !p->root) {
        if (!ps.failed)
            fail_at(&ps, ps.pos, "invalid expression");
        cel_program_free(p);
        return NULL;
    }
    return p;
}

void cel_program_free(struct cel_program *p)
{
    if (!p)
        return;
    for (struct cel_regex_list *r = p->regexes; r; r = r->next)
        cel_regex_free(r->regex);
    cel_arena_free(&p->arena);
    free(p);
}
