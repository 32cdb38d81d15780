/* CEL values over borrowed JSON and arena arrays: conversion from jansson, list and map access,
 * and CEL's equality and ordering (numbers compare across int, uint and double by value). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/cel_int.h"

struct cel_value cel_from_json(const json_t *json)
{
    struct cel_value v = { .kind = CEL_NULL };
    switch (json_typeof(json)) {
    case JSON_OBJECT: v.kind = CEL_MAP; v.v.map.json = json; v.v.map.n = json_object_size(json); break;
    case JSON_ARRAY: v.kind = CEL_LIST; v.v.list.json = json; v.v.list.n = json_array_size(json); break;
    case JSON_STRING: v.kind = CEL_STRING; v.v.s.p = json_string_value(json); v.v.s.n = json_string_length(json); break;
    case JSON_INTEGER: v.kind = CEL_INT; v.v.i = json_integer_value(json); break;
    case JSON_REAL: v.kind = CEL_DOUBLE; v.v.d = json_real_value(json); break;
    case JSON_TRUE: v.kind = CEL_BOOL; v.v.b = 1; break;
    case JSON_FALSE: v.kind = CEL_BOOL; v.v.b = 0; break;
    case JSON_NULL: break;
    }
    return v;
}

struct cel_value cel_error(struct cel_eval *ev, const char *fmt, ...)
{
    static const char no_memory[] = "evaluation ran out of memory";
    struct cel_value e = { .kind = CEL_ERROR };
    char *buf = cel_arena_alloc(&ev->arena, 256);
    if (!buf) {
        /* the budget is spent: the message of what failed gives way to that */
        e.v.s.p = no_memory;
        e.v.s.n = sizeof no_memory - 1;
        return e;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, 256, fmt, ap);
    va_end(ap);
    e.v.s.p = buf;
    e.v.s.n = n < 0 ? 0 : n > 255 ? 255 : (size_t)n;
    return e;
}

const char *cel_kind_name(enum cel_kind kind)
{
    static const char *const names[] = { "error", "null_type", "bool", "int", "uint", "double", "string", "bytes", "list", "map" };
    return names[kind];
}

size_t cel_list_size(const struct cel_value *list) { return list->v.list.n; }

struct cel_value cel_list_get(const struct cel_value *list, size_t i)
{
    return list->v.list.json ? cel_from_json(json_array_get(list->v.list.json, i)) : list->v.list.items[i];
}

size_t cel_map_size(const struct cel_value *map) { return map->v.map.n; }

int cel_map_find(const struct cel_value *map, const struct cel_value *key, struct cel_value *out)
{
    if (map->v.map.json) {
        /* JSON objects only have string keys */
        if (key->kind != CEL_STRING)
            return 0;
        json_t *val = json_object_getn(map->v.map.json, key->v.s.p, key->v.s.n);
        if (!val)
            return 0;
        *out = cel_from_json(val);
        return 1;
    }
    for (size_t i = 0; i < map->v.map.n; i++)
        if (cel_equal(&map->v.map.keys[i], key)) {
            *out = map->v.map.vals[i];
            return 1;
        }
    return 0;
}

int cel_map_next(const struct cel_value *map, void **iter, size_t *index, struct cel_value *key, struct cel_value *val)
{
    if (map->v.map.json) {
        *iter = *index == 0 ? json_object_iter((json_t *)map->v.map.json)
                            : json_object_iter_next((json_t *)map->v.map.json, *iter);
        (*index)++;
        if (!*iter)
            return 0;
        key->kind = CEL_STRING;
        key->v.s.p = json_object_iter_key(*iter);
        key->v.s.n = json_object_iter_key_len(*iter);
        *val = cel_from_json(json_object_iter_value(*iter));
        return 1;
    }
    if (*index >= map->v.map.n)
        return 0;
    *key = map->v.map.keys[*index];
    *val = map->v.map.vals[*index];
    (*index)++;
    return 1;
}

static int is_number(enum cel_kind k) { return k == CEL_INT || k == CEL_UINT || k == CEL_DOUBLE; }

/* Numbers by value across types: int against uint exactly; against a double, the integer is
 * converted to double first (cel-spec: 9223372036854775807 < 9223372036854775808.0 is false). */
static int compare_numbers(const struct cel_value *a, const struct cel_value *b)
{
    if (a->kind == CEL_DOUBLE || b->kind == CEL_DOUBLE) {
        double x = a->kind == CEL_DOUBLE ? a->v.d : a->kind == CEL_INT ? (double)a->v.i : (double)a->v.u;
        double y = b->kind == CEL_DOUBLE ? b->v.d : b->kind == CEL_INT ? (double)b->v.i : (double)b->v.u;
        if (isnan(x) || isnan(y))
            return 2;
        return x < y ? -1 : x > y;
    }
    if (a->kind == b->kind)
        return a->kind == CEL_INT ? (a->v.i < b->v.i ? -1 : a->v.i > b->v.i)
                                  : (a->v.u < b->v.u ? -1 : a->v.u > b->v.u);
    if (a->kind == CEL_INT)
        return a->v.i < 0 ? -1 : ((uint64_t)a->v.i < b->v.u ? -1 : (uint64_t)a->v.i > b->v.u);
    return b->v.i < 0 ? 1 : (a->v.u < (uint64_t)b->v.i ? -1 : a->v.u > (uint64_t)b->v.i);
}

static int compare_bytes(const struct cel_value *a, const struct cel_value *b)
{
    size_t n = a->v.s.n < b->v.s.n ? a->v.s.n : b->v.s.n;
    int c = n ? memcmp(a->v.s.p, b->v.s.p, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return a->v.s.n < b->v.s.n ? -1 : a->v.s.n > b->v.s.n;
}

int cel_compare(const struct cel_value *a, const struct cel_value *b)
{
    if (is_number(a->kind) && is_number(b->kind))
        return compare_numbers(a, b);
    if (a->kind != b->kind)
        return -2;
    switch (a->kind) {
    case CEL_BOOL: return a->v.b < b->v.b ? -1 : a->v.b > b->v.b;
    case CEL_STRING: /* UTF-8 byte order is code point order */
    case CEL_BYTES: return compare_bytes(a, b);
    default: return -2;
    }
}

int cel_equal(const struct cel_value *a, const struct cel_value *b)
{
    if (is_number(a->kind) && is_number(b->kind))
        return compare_numbers(a, b) == 0;
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case CEL_NULL: return 1;
    case CEL_BOOL: return a->v.b == b->v.b;
    case CEL_STRING:
    case CEL_BYTES: return a->v.s.n == b->v.s.n && compare_bytes(a, b) == 0;
    case CEL_LIST: {
        size_t n = cel_list_size(a);
        if (n != cel_list_size(b))
            return 0;
        for (size_t i = 0; i < n; i++) {
            struct cel_value x = cel_list_get(a, i), y = cel_list_get(b, i);
            if (!cel_equal(&x, &y))
                return 0;
        }
        return 1;
    }
    case CEL_MAP: {
        if (cel_map_size(a) != cel_map_size(b))
            return 0;
        void *iter = NULL;
        size_t index = 0;
        struct cel_value key, val, other;
        while (cel_map_next(a, &iter, &index, &key, &val))
            if (!cel_map_find(b, &key, &other) || !cel_equal(&val, &other))
                return 0;
        return 1;
    }
    default: return 0;
    }
}
