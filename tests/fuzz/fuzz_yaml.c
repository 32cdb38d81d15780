/* libFuzzer target: YAML configuration text read into a tree and its marks. Whatever the
 * bytes, the reader ends in a tree or in a located reason; a tree holds only what JSON can
 * (it prints and reads back the same), has one mark per value, and every value's path is
 * located by those marks. No crash, no leak, no undefined behaviour. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "lib/cfg_yaml.h"

/* Counts the values under @p v and checks that each path locates. */
static size_t walk(const struct cfg_doc *doc, const json_t *v, const char *path)
{
    char sub[CFG_PATH_MAX];
    const char *key;
    json_t *item;
    size_t n = 1, i;
    int line = 0, column = 0;

    /* a path cut at CFG_PATH_MAX cannot be followed: only whole ones are checked */
    if (strlen(path) < CFG_PATH_MAX - 2) {
        CHECK(cfg_doc_locate(doc, path, &line, &column) == 0);
        CHECK(line >= 1 && column >= 1);
    }
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, item) {
            cfg_path_key(sub, sizeof sub, path, key);
            n += walk(doc, item, sub);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            cfg_path_index(sub, sizeof sub, path, i);
            n += walk(doc, item, sub);
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_marks marks;
    struct cfg_yaml_error err;
    struct cfg_errors errs = { 0 };
    json_t *root = cfg_yaml_load((const char *)data, size, &marks, &err), *back;
    struct cfg_doc doc = { .file = "f.yaml", .text = (const char *)data, .len = size, .marks = &marks };
    char *printed;

    if (!root) {
        CHECK(marks.n == 0 && marks.v == NULL);
        CHECK(err.line >= 1 && err.column >= 1 && err.reason[0]);
        return 0;
    }
    CHECK(walk(&doc, root, "") == marks.n);
    printed = json_dumps(root, JSON_ENCODE_ANY | JSON_COMPACT);
    CHECK(printed != NULL);
    back = json_loads(printed, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    CHECK(back != NULL && json_equal(back, root));
    cfg_error(&errs, &doc, "sinks[0].batch.max_records", "checked");
    CHECK(errs.n == 1);
    cfg_errors_clear(&errs);
    json_decref(back);
    free(printed);
    json_decref(root);
    cfg_marks_free(&marks);
    return 0;
}
