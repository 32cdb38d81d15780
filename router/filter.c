#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "lib/jsonpath.h"

enum filter_kind { FILTER_EQUALS, FILTER_IN, FILTER_EXISTS, FILTER_ALL, FILTER_ANY, FILTER_NOT };

struct filter {
    enum filter_kind kind;
    struct jsonpath *path;
    json_t *operand;              /* equals: the value; in: the array; exists: true/false */
    struct filter **children;
    size_t nchildren;
};

void filter_free(struct filter *f)
{
    if (!f)
        return;
    jsonpath_free(f->path);
    json_decref(f->operand);
    for (size_t i = 0; i < f->nchildren; i++)
        filter_free(f->children[i]);
    free(f->children);
    free(f);
}

static struct filter *filter_build(const json_t *spec, char *err, size_t errlen);

static int filter_build_children(struct filter *f, const json_t *list, const char *name, char *err, size_t errlen)
{
    if (!json_is_array(list) || json_array_size(list) == 0) {
        snprintf(err, errlen, "\"%s\" takes a non-empty array of filters", name);
        return -1;
    }
    f->children = calloc(json_array_size(list), sizeof *f->children);
    if (!f->children) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        f->children[i] = filter_build(json_array_get(list, i), err, errlen);
        if (!f->children[i])
            return -1;
        f->nchildren++;
    }
    return 0;
}

static struct filter *filter_build(const json_t *spec, char *err, size_t errlen)
{
    static const char *const ops[] = { "equals", "in", "exists" };
    struct filter *f = calloc(1, sizeof *f);
    const json_t *path;
    size_t nops = 0;

    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!json_is_object(spec)) {
        snprintf(err, errlen, "a filter is an object such as {\"path\": \"$.status\", \"equals\": \"active\"}");
        goto fail;
    }
    if (json_object_size(spec) == 1 && (json_object_get(spec, "all") || json_object_get(spec, "any"))) {
        const char *name = json_object_get(spec, "all") ? "all" : "any";
        f->kind = json_object_get(spec, "all") ? FILTER_ALL : FILTER_ANY;
        if (filter_build_children(f, json_object_get(spec, name), name, err, errlen) != 0)
            goto fail;
        return f;
    }
    if (json_object_size(spec) == 1 && json_object_get(spec, "not")) {
        f->kind = FILTER_NOT;
        f->children = calloc(1, sizeof *f->children);
        if (!f->children || !(f->children[0] = filter_build(json_object_get(spec, "not"), err, errlen)))
            goto fail;
        f->nchildren = 1;
        return f;
    }
    path = json_object_get(spec, "path");
    if (!json_is_string(path)) {
        snprintf(err, errlen, "a filter needs \"path\" (a string such as \"$.status\"), or is one of \"all\", \"any\", \"not\"");
        goto fail;
    }
    if (!(f->path = jsonpath_compile(json_string_value(path), err, errlen)))
        goto fail;
    for (size_t i = 0; i < 3; i++) {
        json_t *operand = json_object_get(spec, ops[i]);
        if (!operand)
            continue;
        if (nops++ == 0) {   /* a second operator is refused below; keep the first, leak none */
            f->kind = (enum filter_kind)i;
            f->operand = json_incref(operand);
        }
    }
    if (nops != 1 || json_object_size(spec) != 2) {
        snprintf(err, errlen, "a filter with \"path\" takes exactly one of \"equals\", \"in\", \"exists\" and no other key");
        goto fail;
    }
    if (f->kind == FILTER_IN && !json_is_array(f->operand)) {
        snprintf(err, errlen, "\"in\" takes an array of values");
        goto fail;
    }
    if (f->kind == FILTER_EXISTS && !json_is_boolean(f->operand)) {
        snprintf(err, errlen, "\"exists\" takes true or false");
        goto fail;
    }
    return f;
fail:
    filter_free(f);
    return NULL;
}

struct filter *filter_compile(const json_t *spec, char *err, size_t errlen)
{
    return filter_build(spec, err, errlen);
}

int filter_validate(const json_t *spec, char *err, size_t errlen)
{
    struct filter *f = filter_build(spec, err, errlen);
    filter_free(f);
    return f ? 0 : -1;
}

int filter_match(const struct filter *f, json_t *doc)
{
    json_t *value;

    if (!doc)
        return 0;
    switch (f->kind) {
    case FILTER_ALL:
        for (size_t i = 0; i < f->nchildren; i++)
            if (!filter_match(f->children[i], doc))
                return 0;
        return 1;
    case FILTER_ANY:
        for (size_t i = 0; i < f->nchildren; i++)
            if (filter_match(f->children[i], doc))
                return 1;
        return 0;
    case FILTER_NOT:
        return !filter_match(f->children[0], doc);
    default:
        break;
    }
    value = jsonpath_get(f->path, doc);
    switch (f->kind) {
    case FILTER_EQUALS:
        return value && json_equal(value, f->operand);
    case FILTER_IN:
        for (size_t i = 0; value && i < json_array_size(f->operand); i++)
            if (json_equal(value, json_array_get(f->operand, i)))
                return 1;
        return 0;
    case FILTER_EXISTS:
        return (value != NULL) == json_is_true(f->operand);
    default:
        return 0;
    }
}
