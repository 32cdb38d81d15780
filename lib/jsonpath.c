#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpath.h"

struct jsonpath {
    size_t nsteps;
    struct jsonpath_step steps[];
};

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

void jsonpath_free(struct jsonpath *path)
{
    if (!path)
        return;
    for (size_t i = 0; i < path->nsteps; i++)
        free(path->steps[i].key);
    free(path);
}

struct jsonpath *jsonpath_compile(const char *expr, char *err, size_t errlen)
{
    size_t len = strlen(expr);
    struct jsonpath *path = calloc(1, sizeof *path + (len + 1) * sizeof path->steps[0]);
    const char *p = expr + 1;

    if (!path) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (expr[0] != '$') {
        snprintf(err, errlen, "a path starts with \"$\" (the whole value), as in \"$.id\"");
        goto fail;
    }
    while (*p) {
        struct jsonpath_step *step = &path->steps[path->nsteps];
        if (*p == '.') {
            const char *start = ++p;
            while (is_name_char(*p))
                p++;
            if (p == start) {
                snprintf(err, errlen, "empty field name at position %zu of \"%s\"", (size_t)(start - expr), expr);
                goto fail;
            }
            step->key_len = (size_t)(p - start);
            step->key = strndup(start, step->key_len);
        } else if (p[0] == '[' && p[1] == '"') {
            const char *start = p + 2, *end = strstr(start, "\"]");
            if (!end) {
                snprintf(err, errlen, "unterminated [\"...\"] in \"%s\"", expr);
                goto fail;
            }
            step->key_len = (size_t)(end - start);
            step->key = strndup(start, step->key_len);
            p = end + 2;
        } else if (*p == '[') {
            char *end;
            unsigned long long idx = strtoull(p + 1, &end, 10);
            if (p[1] < '0' || p[1] > '9' || *end != ']') {   /* strtoull takes " 1", "+1", "-1" */
                snprintf(err, errlen, "expected an index like [0] at position %zu of \"%s\"", (size_t)(p - expr), expr);
                goto fail;
            }
            step->index = (size_t)idx;
            p = end + 1;
        } else {
            snprintf(err, errlen, "unexpected '%c' at position %zu of \"%s\"", *p, (size_t)(p - expr), expr);
            goto fail;
        }
        if (step->key == NULL && p[-1] != ']') {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        path->nsteps++;
    }
    return path;
fail:
    jsonpath_free(path);
    return NULL;
}

json_t *jsonpath_get(const struct jsonpath *path, json_t *doc)
{
    for (size_t i = 0; doc && i < path->nsteps; i++) {
        const struct jsonpath_step *step = &path->steps[i];
        if (step->key)
            doc = json_is_object(doc) ? json_object_get(doc, step->key) : NULL;
        else
            doc = json_is_array(doc) ? json_array_get(doc, step->index) : NULL;
    }
    return doc;
}

size_t jsonpath_nsteps(const struct jsonpath *path)
{
    return path->nsteps;
}

const struct jsonpath_step *jsonpath_steps(const struct jsonpath *path)
{
    return path->steps;
}
