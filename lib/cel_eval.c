/* Evaluation of the tree cel_parse.c builds (cel-spec langdef.md, "Evaluation"): strict operand
 * types, errors as values that && || and ?: may absorb as CEL says, checked int64/uint64
 * arithmetic, and every value made during an evaluation taken from its budgeted arena. */
#include <math.h>
#include <string.h>

#include "lib/cel_int.h"

static struct cel_value make_bool(int b) { struct cel_value v = { .kind = CEL_BOOL }; v.v.b = b; return v; }
static struct cel_value make_int(int64_t i) { struct cel_value v = { .kind = CEL_INT }; v.v.i = i; return v; }
static struct cel_value make_uint(uint64_t u) { struct cel_value v = { .kind = CEL_UINT }; v.v.u = u; return v; }
static struct cel_value make_double(double d) { struct cel_value v = { .kind = CEL_DOUBLE }; v.v.d = d; return v; }

static struct cel_value no_overload(struct cel_eval *ev, const char *op, const struct cel_value *a, const struct cel_value *b)
{
    if (b)
        return cel_error(ev, "no matching overload for '%s' applied to (%s, %s)", op, cel_kind_name(a->kind), cel_kind_name(b->kind));
    return cel_error(ev, "no matching overload for '%s' applied to (%s)", op, cel_kind_name(a->kind));
}

static struct cel_value lookup_variable(struct cel_eval *ev, const char *name, int *found)
{
    for (size_t i = 0; i < ev->nbindings; i++)
        if (strcmp(ev->bindings[i].name, name) == 0) {
            *found = 1;
            return ev->bindings[i].value;
        }
    *found = 0;
    return cel_error(ev, "undeclared reference to '%s'", name);
}

static struct cel_value select_field(struct cel_eval *ev, const struct cel_node *n, int presence_test)
{
    if (n->qualified) {
        /* "a.b.c" may itself be a variable: the longest qualified name wins, as in CEL */
        int found;
        struct cel_value v = lookup_variable(ev, n->qualified, &found);
        if (found)
            return presence_test ? cel_error(ev, "has() needs a field selection, got variable '%s'", n->qualified) : v;
    }
    struct cel_value operand = cel_eval_node(n->args[0], ev);
    if (operand.kind == CEL_ERROR)
        return operand;
    if (operand.kind != CEL_MAP)
        return cel_error(ev, "type '%s' does not support field selection", cel_kind_name(operand.kind));
    struct cel_value key = { .kind = CEL_STRING }, out;
    key.v.s.p = n->name;
    key.v.s.n = strlen(n->name);
    int present = cel_map_find(&operand, &key, &out);
    if (presence_test)
        return make_bool(present);
    return present ? out : cel_error(ev, "no such key: %s", n->name);
}

/* A list index must be an int, a uint, or a double without fraction, within the list. */
static struct cel_value index_value(struct cel_eval *ev, const struct cel_value *c, const struct cel_value *i)
{
    struct cel_value out;
    if (c->kind == CEL_MAP) {
        if (i->kind == CEL_LIST || i->kind == CEL_MAP || i->kind == CEL_NULL)
            return cel_error(ev, "unsupported map key type: %s", cel_kind_name(i->kind));
        if (cel_map_find(c, i, &out))
            return out;
        if (i->kind == CEL_STRING)
            return cel_error(ev, "no such key: %.*s", (int)(i->v.s.n > 64 ? 64 : i->v.s.n), i->v.s.p);
        return cel_error(ev, "no such key");
    }
    if (c->kind != CEL_LIST)
        return no_overload(ev, "[]", c, i);
    int64_t k;
    if (i->kind == CEL_INT)
        k = i->v.i;
    else if (i->kind == CEL_UINT)
        k = i->v.u > INT64_MAX ? INT64_MAX : (int64_t)i->v.u;
    else if (i->kind == CEL_DOUBLE && i->v.d == trunc(i->v.d) && fabs(i->v.d) < 9.2e18)
        k = (int64_t)i->v.d;
    else
        return no_overload(ev, "[]", c, i);
    if (k < 0 || (uint64_t)k >= cel_list_size(c))
        return cel_error(ev, "index out of range: %lld", (long long)k);
    return cel_list_get(c, (size_t)k);
}

static struct cel_value concat(struct cel_eval *ev, const struct cel_value *a, const struct cel_value *b)
{
    struct cel_value out = { .kind = a->kind };
    if (a->kind == CEL_LIST) {
        size_t na = cel_list_size(a), nb = cel_list_size(b);
        struct cel_value *items = cel_arena_alloc(&ev->arena, (na + nb) * sizeof *items);
        if (!items)
            return cel_error(ev, "evaluation needs more than %u bytes", CEL_EVAL_BUDGET);
        for (size_t i = 0; i < na; i++)
            items[i] = cel_list_get(a, i);
        for (size_t i = 0; i < nb; i++)
            items[na + i] = cel_list_get(b, i);
        out.v.list.items = items;
        out.v.list.n = na + nb;
        return out;
    }
    char *p = cel_arena_alloc(&ev->arena, a->v.s.n + b->v.s.n);
    if (!p)
        return cel_error(ev, "evaluation needs more than %u bytes", CEL_EVAL_BUDGET);
    if (a->v.s.n)
        memcpy(p, a->v.s.p, a->v.s.n);
    if (b->v.s.n)
        memcpy(p + a->v.s.n, b->v.s.p, b->v.s.n);
    out.v.s.p = p;
    out.v.s.n = a->v.s.n + b->v.s.n;
    return out;
}

static const char *const op_text[] = { "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in" };

static struct cel_value arithmetic(struct cel_eval *ev, int op, const struct cel_value *a, const struct cel_value *b)
{
    if (a->kind != b->kind)
        return no_overload(ev, op_text[op], a, b);
    if (a->kind == CEL_INT) {
        int64_t x = a->v.i, y = b->v.i, r = 0;
        switch (op) {
        case OP_ADD: if (__builtin_add_overflow(x, y, &r)) return cel_error(ev, "overflow"); break;
        case OP_SUB: if (__builtin_sub_overflow(x, y, &r)) return cel_error(ev, "overflow"); break;
        case OP_MUL: if (__builtin_mul_overflow(x, y, &r)) return cel_error(ev, "overflow"); break;
        case OP_DIV:
        case OP_MOD:
            if (y == 0)
                return cel_error(ev, op == OP_DIV ? "division by zero" : "modulus by zero");
            if (x == INT64_MIN && y == -1)
                return cel_error(ev, "overflow");
            r = op == OP_DIV ? x / y : x % y;
            break;
        }
        return make_int(r);
    }
    if (a->kind == CEL_UINT) {
        uint64_t x = a->v.u, y = b->v.u, r = 0;
        switch (op) {
        case OP_ADD: if (__builtin_add_overflow(x, y, &r)) return cel_error(ev, "overflow"); break;
        case OP_SUB: if (__builtin_sub_overflow(x, y, &r)) return cel_error(ev, "overflow"); break;
        case OP_MUL: if (__builtin_mul_overflow(x, y, &r)) return cel_error(ev, "overflow"); break;
        case OP_DIV:
        case OP_MOD:
            if (y == 0)
                return cel_error(ev, op == OP_DIV ? "division by zero" : "modulus by zero");
            r = op == OP_DIV ? x / y : x % y;
            break;
        }
        return make_uint(r);
    }
    if (a->kind == CEL_DOUBLE && op != OP_MOD) {
        double x = a->v.d, y = b->v.d;
        return make_double(op == OP_ADD ? x + y : op == OP_SUB ? x - y : op == OP_MUL ? x * y : x / y);
    }
    if (op == OP_ADD && (a->kind == CEL_STRING || a->kind == CEL_BYTES || a->kind == CEL_LIST))
        return concat(ev, a, b);
    return no_overload(ev, op_text[op], a, b);
}

static struct cel_value membership(struct cel_eval *ev, const struct cel_value *x, const struct cel_value *c)
{
    if (c->kind == CEL_LIST) {
        size_t n = cel_list_size(c);
        for (size_t i = 0; i < n; i++) {
            struct cel_value item = cel_list_get(c, i);
            if (cel_equal(x, &item))
                return make_bool(1);
        }
        return make_bool(0);
    }
    if (c->kind == CEL_MAP) {
        struct cel_value out;
        if (x->kind == CEL_LIST || x->kind == CEL_MAP || x->kind == CEL_NULL || x->kind == CEL_BYTES)
            return no_overload(ev, "in", x, c); /* not a key type: no map could hold it */
        return make_bool(cel_map_find(c, x, &out));
    }
    return no_overload(ev, "in", x, c);
}

static struct cel_value binary(struct cel_eval *ev, const struct cel_node *n)
{
    struct cel_value a = cel_eval_node(n->args[0], ev);
    if (a.kind == CEL_ERROR)
        return a;
    struct cel_value b = cel_eval_node(n->args[1], ev);
    if (b.kind == CEL_ERROR)
        return b;
    switch (n->op) {
    case OP_EQ: return make_bool(cel_equal(&a, &b));
    case OP_NE: return make_bool(!cel_equal(&a, &b));
    case OP_IN: return membership(ev, &a, &b);
    case OP_LT: case OP_LE: case OP_GT: case OP_GE: {
        int c = cel_compare(&a, &b);
        if (c == -2)
            return no_overload(ev, op_text[n->op], &a, &b);
        if (c == 2)
            return make_bool(0); /* NaN is unordered */
        return make_bool(n->op == OP_LT ? c < 0 : n->op == OP_LE ? c <= 0 : n->op == OP_GT ? c > 0 : c >= 0);
    }
    default: return arithmetic(ev, n->op, &a, &b);
    }
}

/* && and ||: commutative, so an error (or a non-bool) on one side is absorbed when the other
 * side decides the result; otherwise the first such error is the result. */
static struct cel_value logical(struct cel_eval *ev, const struct cel_node *n)
{
    int decisive = n->kind == N_OR; /* true decides ||, false decides && */
    struct cel_value side[2];
    for (int i = 0; i < 2; i++) {
        side[i] = cel_eval_node(n->args[i], ev);
        if (side[i].kind == CEL_BOOL && side[i].v.b == decisive)
            return side[i];
    }
    for (int i = 0; i < 2; i++) {
        if (side[i].kind == CEL_ERROR)
            return side[i];
        if (side[i].kind != CEL_BOOL)
            return cel_error(ev, "expected bool, got %s", cel_kind_name(side[i].kind));
    }
    return make_bool(!decisive);
}

static struct cel_value aggregate(struct cel_eval *ev, const struct cel_node *n)
{
    struct cel_value *items = cel_arena_alloc(&ev->arena, (n->nargs ? n->nargs : 1) * sizeof *items);
    if (!items)
        return cel_error(ev, "evaluation needs more than %u bytes", CEL_EVAL_BUDGET);
    for (size_t i = 0; i < n->nargs; i++) {
        items[i] = cel_eval_node(n->args[i], ev);
        if (items[i].kind == CEL_ERROR)
            return items[i];
    }
    struct cel_value out = { .kind = n->kind == N_LIST ? CEL_LIST : CEL_MAP };
    if (n->kind == N_LIST) {
        out.v.list.items = items;
        out.v.list.n = n->nargs;
        return out;
    }
    /* keys at even positions, values at odd: split into two arrays for cel_value.c */
    size_t entries = n->nargs / 2;
    struct cel_value *keys = cel_arena_alloc(&ev->arena, (entries ? entries : 1) * 2 * sizeof *keys);
    if (!keys)
        return cel_error(ev, "evaluation needs more than %u bytes", CEL_EVAL_BUDGET);
    struct cel_value *vals = keys + entries;
    for (size_t i = 0; i < entries; i++) {
        keys[i] = items[2 * i];
        vals[i] = items[2 * i + 1];
        enum cel_kind k = keys[i].kind;
        if (k != CEL_INT && k != CEL_UINT && k != CEL_BOOL && k != CEL_STRING)
            return cel_error(ev, "unsupported map key type: %s", cel_kind_name(k));
        for (size_t j = 0; j < i; j++)
            if (cel_equal(&keys[j], &keys[i]))
                return cel_error(ev, "repeated key in map literal");
    }
    out.v.map.keys = keys;
    out.v.map.vals = vals;
    out.v.map.n = entries;
    return out;
}

struct cel_value cel_eval_node(const struct cel_node *n, struct cel_eval *ev)
{
    struct cel_value a;
    switch (n->kind) {
    case N_LITERAL:
        return n->literal;
    case N_IDENT: {
        int found;
        return lookup_variable(ev, n->name, &found);
    }
    case N_SELECT:
        return select_field(ev, n, 0);
    case N_HAS:
        return select_field(ev, n, 1);
    case N_INDEX: {
        struct cel_value c = cel_eval_node(n->args[0], ev);
        if (c.kind == CEL_ERROR)
            return c;
        struct cel_value i = cel_eval_node(n->args[1], ev);
        return i.kind == CEL_ERROR ? i : index_value(ev, &c, &i);
    }
    case N_CALL: {
        struct cel_value args[2];
        for (size_t i = 0; i < n->nargs && i < 2; i++)
            if ((args[i] = cel_eval_node(n->args[i], ev)).kind == CEL_ERROR)
                return args[i];
        return cel_call(ev, n->op, args, n->nargs, n->regex);
    }
    case N_LIST:
    case N_MAP:
        return aggregate(ev, n);
    case N_NOT:
        a = cel_eval_node(n->args[0], ev);
        if (a.kind == CEL_ERROR)
            return a;
        return a.kind == CEL_BOOL ? make_bool(!a.v.b) : cel_error(ev, "expected bool, got %s", cel_kind_name(a.kind));
    case N_NEGATE:
        a = cel_eval_node(n->args[0], ev);
        if (a.kind == CEL_INT)
            return a.v.i == INT64_MIN ? cel_error(ev, "overflow") : make_int(-a.v.i);
        if (a.kind == CEL_DOUBLE)
            return make_double(-a.v.d);
        return a.kind == CEL_ERROR ? a : no_overload(ev, "-", &a, NULL);
    case N_AND:
    case N_OR:
        return logical(ev, n);
    case N_CONDITIONAL:
        a = cel_eval_node(n->args[0], ev);
        if (a.kind == CEL_ERROR)
            return a;
        if (a.kind != CEL_BOOL)
            return cel_error(ev, "expected bool, got %s", cel_kind_name(a.kind));
        return cel_eval_node(n->args[a.v.b ? 1 : 2], ev);
    case N_BINARY:
        return binary(ev, n);
    }
    return cel_error(ev, "internal error: unknown node");
}

struct cel_value cel_eval(const struct cel_program *p, struct cel_eval *ev)
{
    ev->arena.budget = CEL_EVAL_BUDGET;
    return cel_eval_node(p->root, ev);
}
