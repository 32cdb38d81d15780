/* The file sink's NDJSON line of a record: topic, partition, offset, key, value (embedded as
 * JSON when it parses, else as a string; null for a tombstone) and timestamp.
 *
 * Nothing in the line depends on the sink, so the router's N file sinks of one topic would
 * format the same record N times: that was most of the CPU of a fan-out. The line is made once
 * and kept, reference-counted; the next file sink that prepares the same record (the router
 * hands a record to the sinks of its topic one after the other) takes a reference to it.
 * "The same record" is decided on its content (topic, partition, offset, timestamp, key and
 * value bytes), never on a pointer that may have been freed and reused: the line is a function
 * of exactly those, so a shared line is always the line the sink would have made. */
#include <stdlib.h>
#include <string.h>

#include "file_line.h"

struct file_line {
    unsigned refs;
    char text[];
};

/* The last line made and what it was made of (loop thread only). Kept only while more than
 * one file sink runs: with one, nothing would ever take it again. */
static struct {
    struct file_line *line;   /* one reference is the memo's */
    size_t len;
    int32_t partition;
    int64_t offset, timestamp_ms;
    int has_key, has_value;
    size_t topic_len, key_len, value_len;
    char *bytes;              /* topic, key, value, one after the other */
    size_t cap;
    unsigned users;
} memo;

static struct file_line *line_of(void *text)
{
    return (struct file_line *)((char *)text - offsetof(struct file_line, text));
}

static void line_unref(struct file_line *line)
{
    if (line && --line->refs == 0)
        free(line);
}

static void memo_clear(void)
{
    line_unref(memo.line);
    memo.line = NULL;
}

static int memo_matches(const struct sink_record *rec)
{
    size_t topic_len;

    if (!memo.line || memo.partition != rec->partition || memo.offset != rec->offset ||
        memo.timestamp_ms != rec->timestamp_ms || memo.has_key != (rec->key != NULL) ||
        memo.has_value != (rec->value != NULL) || memo.key_len != rec->key_len || memo.value_len != rec->value_len)
        return 0;
    topic_len = strlen(rec->topic);
    return topic_len == memo.topic_len && memcmp(memo.bytes, rec->topic, topic_len) == 0 &&
           (!rec->key || memcmp(memo.bytes + topic_len, rec->key, rec->key_len) == 0) &&
           (!rec->value || memcmp(memo.bytes + topic_len + rec->key_len, rec->value, rec->value_len) == 0);
}

/* Keeps @p line (a reference is taken) as the line of @p rec; on no memory, keeps nothing. */
static void memo_keep(const struct sink_record *rec, struct file_line *line, size_t len)
{
    size_t topic_len = strlen(rec->topic), key_len = rec->key ? rec->key_len : 0,
           value_len = rec->value ? rec->value_len : 0, need = topic_len + key_len + value_len;

    memo_clear();
    if (need > memo.cap) {
        char *bytes = realloc(memo.bytes, need);
        if (!bytes)
            return;
        memo.bytes = bytes;
        memo.cap = need;
    }
    memcpy(memo.bytes, rec->topic, topic_len);
    if (key_len)
        memcpy(memo.bytes + topic_len, rec->key, key_len);
    if (value_len)
        memcpy(memo.bytes + topic_len + key_len, rec->value, value_len);
    memo.topic_len = topic_len;
    memo.key_len = rec->key_len;
    memo.value_len = rec->value_len;
    memo.has_key = rec->key != NULL;
    memo.has_value = rec->value != NULL;
    memo.partition = rec->partition;
    memo.offset = rec->offset;
    memo.timestamp_ms = rec->timestamp_ms;
    memo.len = len;
    memo.line = line;
    line->refs++;
}

/* The line as jansson writes it: the value parsed and written again compactly. */
static struct file_line *line_make(const struct sink_record *rec, size_t *len, char *err, size_t errlen)
{
    json_t *obj = json_object(), *key = json_null(), *value = json_null();
    struct file_line *line = NULL;
    char scratch[4096];
    size_t n;

    if (rec->key && !(key = json_stringn(rec->key, rec->key_len))) {
        snprintf(err, errlen, "key is not valid UTF-8");
        goto fail;
    }
    if (rec->value) {
        value = json_loadb(rec->value, rec->value_len, JSON_DECODE_ANY, NULL);
        if (!value && !(value = json_stringn(rec->value, rec->value_len))) {
            snprintf(err, errlen, "value is neither JSON nor valid UTF-8 text");
            goto fail;
        }
    }
    if (!obj || json_object_set_new(obj, "topic", json_string(rec->topic)) ||
        json_object_set_new(obj, "partition", json_integer(rec->partition)) ||
        json_object_set_new(obj, "offset", json_integer(rec->offset)) ||
        json_object_set_new(obj, "key", key) || json_object_set_new(obj, "value", value) ||
        json_object_set_new(obj, "timestamp", rec->timestamp_ms >= 0 ? json_integer(rec->timestamp_ms) : json_null())) {
        key = value = NULL;   /* set_new took them, even on failure */
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    key = value = NULL;
    /* Written once onto the stack, copied behind the reference count; a longer line is
     * written a second time, in place. */
    n = json_dumpb(obj, scratch, sizeof scratch, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n > 0 && (line = malloc(sizeof *line + n + 1))) {
        if (n <= sizeof scratch) {
            memcpy(line->text, scratch, n);
        } else if (json_dumpb(obj, line->text, n, JSON_COMPACT | JSON_ENCODE_ANY) != n) {
            free(line);
            line = NULL;
        }
    }
    if (!line) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    line->text[n] = '\n';
    line->refs = 1;
    *len = n + 1;
fail:
    json_decref(key);
    json_decref(value);
    json_decref(obj);
    return line;
}

int file_line_prepare(struct sink_record *rec, char *err, size_t errlen)
{
    struct file_line *line;
    size_t len;

    if (memo.users > 1 && memo_matches(rec)) {
        memo.line->refs++;
        rec->prepared = memo.line->text;
        rec->prepared_len = memo.len;
        return 0;
    }
    if (!(line = line_make(rec, &len, err, errlen)))
        return -1;
    if (memo.users > 1)
        memo_keep(rec, line, len);
    rec->prepared = line->text;
    rec->prepared_len = len;
    return 0;
}

void file_line_release(struct sink_record *rec)
{
    if (rec->prepared)
        line_unref(line_of(rec->prepared));
    rec->prepared = NULL;
}

void file_line_users(int delta)
{
    memo.users += (unsigned)delta;
    if (memo.users <= 1) {
        memo_clear();
        free(memo.bytes);
        memo.bytes = NULL;
        memo.cap = 0;
    }
}
