/* libFuzzer target: the file sink's line of a record. The input is [KEY 0x1F] VALUE. A record
 * is refused only when its key, or its value that is not JSON, is not valid UTF-8, and then with
 * a reason; an accepted record's line is one line of JSON that reads back as the record: the
 * key, and the value as jansson reads it (when jansson can: it refuses numbers it cannot hold)
 * or, for a value that is not JSON, the value's bytes as a string. Never a crash or a leak. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "lib/json.h"
#include "sinks/file_line.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sink_record rec = { .topic = "orders.v1", .partition = 3, .offset = 77, .timestamp_ms = -1 };
    char err[256] = "";
    int value_is_json, key_ok, value_text_ok;
    json_t *line_doc, *value_doc, *line_value;

    FUZZ_SPLIT_RECORD(&rec, data, size);
    value_is_json = json_check(rec.value, rec.value_len, NULL, 0) == 0;
    key_ok = !rec.key || json_utf8_valid(rec.key, rec.key_len);
    value_text_ok = json_utf8_valid(rec.value, rec.value_len);
    if (file_line_prepare(&rec, err, sizeof err) != 0) {
        CHECK(!key_ok || (!value_is_json && !value_text_ok));
        CHECK(err[0] != '\0' && rec.prepared == NULL);
        return 0;
    }
    CHECK(key_ok && (value_is_json || value_text_ok));
    CHECK(rec.prepared_len > 0 && ((char *)rec.prepared)[rec.prepared_len - 1] == '\n');
    CHECK(memchr(rec.prepared, '\n', rec.prepared_len - 1) == NULL);
    CHECK(memchr(rec.prepared, '\r', rec.prepared_len) == NULL);
    line_doc = json_loadb(rec.prepared, rec.prepared_len, JSON_ALLOW_NUL, NULL);
    value_doc = value_is_json ? json_loadb(rec.value, rec.value_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    if (!value_is_json || value_doc) {
        CHECK(line_doc != NULL);
        line_value = json_object_get(line_doc, "value");
        if (value_is_json)
            CHECK(json_equal(line_value, value_doc));
        else
            CHECK(json_string_length(line_value) == rec.value_len &&
                  memcmp(json_string_value(line_value), rec.value, rec.value_len) == 0);
        if (rec.key)
            CHECK(json_string_length(json_object_get(line_doc, "key")) == rec.key_len &&
                  memcmp(json_string_value(json_object_get(line_doc, "key")), rec.key, rec.key_len) == 0);
        else
            CHECK(json_is_null(json_object_get(line_doc, "key")));
        CHECK(json_integer_value(json_object_get(line_doc, "offset")) == 77);
    }
    json_decref(line_doc);
    json_decref(value_doc);
    file_line_release(&rec);
    return 0;
}
