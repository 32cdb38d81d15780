/* The type-tagged values of tests/fixtures/cel/ (conformance and differential) (see tools/cel-fixtures/): a binding as the
 * jansson value cel_eval_bool would get, and an expected result compared with a lib/cel value.
 * Shared by test_cel_conformance.c and test_cel_differential.c. */
#ifndef SLUICE_TEST_CEL_TYPED_H
#define SLUICE_TEST_CEL_TYPED_H

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "lib/cel_int.h"

/* The jansson value of a tagged binding, or NULL when JSON cannot carry it (uint, bytes, NaN,
 * maps with non-string keys, types). */
static inline json_t *typed_to_json(const json_t *t)
{
    const char *tag = json_object_iter_key(json_object_iter((json_t *)t));
    const json_t *v = json_object_iter_value(json_object_iter((json_t *)t));
    if (!tag)
        return NULL;
    if (strcmp(tag, "int") == 0)
        return json_integer(strtoll(json_string_value(v), NULL, 10));
    if (strcmp(tag, "double") == 0)
        return json_real(strtod(json_string_value(v), NULL)); /* NULL for NaN and infinities */
    if (strcmp(tag, "string") == 0)
        return json_stringn(json_string_value(v), json_string_length(v));
    if (strcmp(tag, "bool") == 0)
        return json_boolean(json_is_true(v));
    if (strcmp(tag, "null") == 0)
        return json_null();
    if (strcmp(tag, "list") == 0) {
        json_t *a = json_array();
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) {
            json_t *j = typed_to_json(item);
            if (!j) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, j);
        }
        return a;
    }
    if (strcmp(tag, "map") == 0) {
        json_t *o = json_object();
        size_t i;
        const json_t *entry;
        json_array_foreach(v, i, entry) {
            const json_t *key = json_array_get(entry, 0);
            const json_t *ks = json_object_get(key, "string");
            json_t *j = ks ? typed_to_json(json_array_get(entry, 1)) : NULL;
            if (!j) {
                json_decref(o);
                return NULL;
            }
            json_object_setn_new(o, json_string_value(ks), json_string_length(ks), j);
        }
        return o;
    }
    return NULL;
}

static inline int base64_value(int c)
{
    const char *digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(digits, c) : NULL;
    return p ? (int)(p - digits) : -1;
}

/* 1 when @p v is the tagged value @p t (numbers exactly, NaN matching NaN), 0 otherwise;
 * -1 when @p t cannot be compared (an unsupported tag). */
static inline int typed_matches(const json_t *t, const struct cel_value *v)
{
    const char *tag = json_object_iter_key(json_object_iter((json_t *)t));
    const json_t *e = json_object_iter_value(json_object_iter((json_t *)t));
    if (!tag || strcmp(tag, "unsupported") == 0)
        return -1;
    if (strcmp(tag, "int") == 0)
        return v->kind == CEL_INT && v->v.i == strtoll(json_string_value(e), NULL, 10);
    if (strcmp(tag, "uint") == 0)
        return v->kind == CEL_UINT && v->v.u == strtoull(json_string_value(e), NULL, 10);
    if (strcmp(tag, "double") == 0) {
        if (v->kind != CEL_DOUBLE)
            return 0;
        double d = strtod(json_string_value(e), NULL); /* reads NaN, Infinity and -Infinity too */
        return isnan(d) ? isnan(v->v.d) : v->v.d == d;
    }
    if (strcmp(tag, "string") == 0)
        return v->kind == CEL_STRING && v->v.s.n == json_string_length(e) && memcmp(v->v.s.p, json_string_value(e), v->v.s.n) == 0;
    if (strcmp(tag, "bytes") == 0) {
        if (v->kind != CEL_BYTES)
            return 0;
        const char *s = json_string_value(e);
        size_t n = 0;
        unsigned bits = 0, acc = 0;
        for (; *s && *s != '='; s++) {
            int d = base64_value(*s);
            if (d < 0)
                return -1;
            acc = (acc << 6) | (unsigned)d;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                if (n >= v->v.s.n || (unsigned char)v->v.s.p[n] != ((acc >> bits) & 0xFF))
                    return 0;
                n++;
            }
        }
        return n == v->v.s.n;
    }
    if (strcmp(tag, "bool") == 0)
        return v->kind == CEL_BOOL && v->v.b == json_is_true(e);
    if (strcmp(tag, "null") == 0)
        return v->kind == CEL_NULL;
    if (strcmp(tag, "list") == 0) {
        if (v->kind != CEL_LIST || cel_list_size(v) != json_array_size(e))
            return 0;
        for (size_t i = 0; i < json_array_size(e); i++) {
            struct cel_value item = cel_list_get(v, i);
            int m = typed_matches(json_array_get(e, i), &item);
            if (m != 1)
                return m;
        }
        return 1;
    }
    if (strcmp(tag, "map") == 0) {
        if (v->kind != CEL_MAP || cel_map_size(v) != json_array_size(e))
            return 0;
        for (size_t i = 0; i < json_array_size(e); i++) {
            const json_t *entry = json_array_get(e, i);
            void *iter = NULL;
            size_t index = 0;
            struct cel_value key, val;
            int found = 0;
            while (!found && cel_map_next(v, &iter, &index, &key, &val))
                if (typed_matches(json_array_get(entry, 0), &key) == 1) {
                    if (typed_matches(json_array_get(entry, 1), &val) != 1)
                        return 0;
                    found = 1;
                }
            if (!found)
                return 0;
        }
        return 1;
    }
    return -1;
}

#endif
