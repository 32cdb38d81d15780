/* libFuzzer target: the JSON reader of lib/json.c against jansson. The input is one JSON text.
 * json_read must accept exactly what jansson accepts (but numbers jansson cannot hold, \u0000 in
 * a member name, and a raw NUL byte, which ends jansson's text), refuse with "<what> at byte N" (N inside the input), and
 * on a text both accept, walking every value with the reader must find jansson's tree: the
 * same kinds, the same members (names unescaped, the last of a repeated name as jansson keeps),
 * the same elements, the same characters in every string, the same integers; and the paths that
 * lead to each value find it again, one at a time and all in one walk. Never a crash or a leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/json.h"

#include "fuzz_check.h"

/* What jansson refuses and JSON allows: numbers it cannot hold, \u0000 in a member name. */
static int jansson_stricter(const json_error_t *jerr)
{
    return strstr(jerr->text, "too big") != NULL || strstr(jerr->text, "overflow") != NULL ||
           strstr(jerr->text, "NUL byte in object key") != NULL;
}

static void same_string(const struct json_slice *v, const char *s, size_t n)
{
    struct buf out = { 0 };

    CHECK(json_unescape(&out, v) == 0);
    CHECK(out.len == n && (n == 0 || memcmp(out.p, s, n) == 0));
    CHECK(json_string_equals(v, s, n));
    buf_free(&out);
}

/* @p v (the reader's) holds what @p j (jansson's) holds. */
static void same_value(const struct json_slice *v, json_t *j)
{
    struct json_slice name, item;
    struct json_iter it;
    struct buf key = { 0 };
    int64_t i64;
    size_t n = 0;

    switch (v->kind) {
    case JK_STRING:
        CHECK(json_is_string(j));
        same_string(v, json_string_value(j), json_string_length(j));
        break;
    case JK_NUMBER:
        CHECK(json_is_number(j));
        if (json_is_integer(j) && json_number_i64(v, &i64) == 0)
            CHECK(i64 == json_integer_value(j));
        break;
    case JK_TRUE: CHECK(json_is_true(j)); break;
    case JK_FALSE: CHECK(json_is_false(j)); break;
    case JK_NULL: CHECK(json_is_null(j)); break;
    case JK_ARRAY:
        CHECK(json_is_array(j));
        json_iter_init(&it, v);
        while (json_iter_next(&it, NULL, &item)) {
            struct json_slice at = json_at(v, n);
            CHECK(n < json_array_size(j) && at.p == item.p && at.n == item.n);
            same_value(&item, json_array_get(j, n));
            n++;
        }
        CHECK(n == json_array_size(j));
        break;
    case JK_OBJECT:
        CHECK(json_is_object(j));
        json_iter_init(&it, v);
        while (json_iter_next(&it, &name, &item)) {
            struct json_slice last;
            json_t *member;
            buf_reset(&key);
            CHECK(json_unescape(&key, &name) == 0);
            member = json_object_getn(j, key.p ? key.p : "", key.len);
            CHECK(member != NULL);
            last = json_get(v, key.p ? key.p : "", key.len);
            CHECK(last.kind != JK_NONE && last.p >= item.p);
            if (last.p == item.p)   /* the member jansson kept */
                same_value(&item, member);
            n++;
        }
        CHECK(json_object_size(j) <= n);
        buf_free(&key);
        break;
    default:
        CHECK(0);
    }
}

/* $.a, $["a"], $[0] ... built from the first members and elements, as deep as they go (up to
 * 8 steps): json_lookup finds the value at each prefix where jansson's jsonpath_get does. */
static void check_paths(const struct json_slice *doc, json_t *tree)
{
    struct jsonpath *paths[9] = { 0 };
    struct json_slice v = *doc, found[9];
    struct buf expr = { 0 };
    size_t n = 0;
    char err[256];

    CHECK(buf_adds(&expr, "$") == 0);
    for (;;) {
        struct json_slice name, item;
        struct json_iter it;
        CHECK((paths[n] = jsonpath_compile(expr.p, err, sizeof err)) != NULL);
        n++;
        if (n == 9 || (v.kind != JK_OBJECT && v.kind != JK_ARRAY))
            break;
        json_iter_init(&it, &v);
        if (!json_iter_next(&it, &name, &item))
            break;
        if (v.kind == JK_ARRAY) {
            CHECK(buf_adds(&expr, "[0]") == 0);
        } else {
            /* only names the path syntax can spell: no quote, backslash or NUL */
            if (memchr(name.p, '\\', name.n) || memchr(name.p + 1, '"', name.n - 2))
                break;
            CHECK(buf_adds(&expr, "[") == 0 && buf_add(&expr, name.p, name.n) == 0 && buf_adds(&expr, "]") == 0);
        }
        v = item;
    }
    json_lookup_many(doc, (const struct jsonpath *const *)paths, n, found);
    for (size_t i = 0; i < n; i++) {
        struct json_slice one = json_lookup(doc, paths[i]);
        json_t *want = jsonpath_get(paths[i], tree);
        CHECK(one.kind == found[i].kind && one.p == found[i].p && one.n == found[i].n);
        CHECK((one.kind == JK_NONE) == (want == NULL));
        if (want)
            same_value(&one, want);
        jsonpath_free(paths[i]);
    }
    buf_free(&expr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct json_slice root = { 0 };
    char err[256];
    json_error_t jerr;
    json_t *doc;
    int ok;

    err[0] = '\0';
    ok = json_read(text, size, &root, err, sizeof err) == 0;
    doc = json_loadb(text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (doc)
        CHECK(ok || memchr(text, '\0', size));   /* jansson ends the text at a raw NUL byte */
    else
        CHECK(!ok || jansson_stricter(&jerr));
    if (!ok) {
        const char *at = strstr(err, " at byte ");
        CHECK(at != NULL && strtoull(at + 9, NULL, 10) <= size);
    }
    if (ok && doc) {
        CHECK(root.p >= text && root.p + root.n <= text + size);
        same_value(&root, doc);
        check_paths(&root, doc);
    }
    json_decref(doc);
    return 0;
}
