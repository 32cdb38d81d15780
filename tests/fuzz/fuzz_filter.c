/* libFuzzer target: record filters and JSON paths. The first line of the input is a filter spec
 * (JSON), the rest a record value; compiling and matching must never crash, and a spec that
 * filter_validate accepts must compile. The first line is also tried as a JSON path. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/jsonpath.h"
#include "router/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *newline = memchr(data, '\n', size);
    size_t speclen = newline ? (size_t)(newline - data) : size;
    json_t *spec = json_loadb((const char *)data, speclen, JSON_DECODE_ANY, NULL);
    json_t *doc = newline ? json_loadb((const char *)newline + 1, size - speclen - 1, JSON_DECODE_ANY, NULL) : NULL;
    char err[256], *expr = malloc(speclen + 1);

    if (expr) {
        struct jsonpath *path;
        memcpy(expr, data, speclen);
        expr[speclen] = '\0';
        if ((path = jsonpath_compile(expr, err, sizeof err))) {
            jsonpath_get(path, doc);
            jsonpath_free(path);
        }
        free(expr);
    }
    if (spec) {
        int valid = filter_validate(spec, err, sizeof err) == 0;
        struct filter *f = filter_compile(spec, err, sizeof err);
        if (valid && !f)
            abort();   /* validate and compile disagree */
        if (f)
            filter_match(f, doc);
        filter_free(f);
    }
    json_decref(spec);
    json_decref(doc);
    return 0;
}
