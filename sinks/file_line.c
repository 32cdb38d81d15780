/* The file sink's NDJSON line of a record: topic, partition, offset, key, value (embedded as
 * JSON when it is JSON, else as a string; null for a tombstone) and timestamp.
 *
 * Nothing in the line depends on the sink, so the router's N file sinks of one topic would
 * format the same record N times: that was most of the CPU of a fan-out. The line is made once
 * and kept, reference-counted; the next file sink that prepares the same record (the router
 * hands a record to the sinks of its topic one after the other) takes a reference to it.
 * "The same record" is decided on its content (topic, partition, offset, timestamp, key and
 * value bytes), never on a pointer that may have been freed and reused: the line is a function
 * of exactly those, so a shared line is always the line the sink would have made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_line.h"
#include "lib/decimal.h"
#include "lib/json.h"
#include "template.h"

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

/* The line, written directly: the value's JSON is embedded as the producer wrote it, white
 * space between its tokens removed (numbers and string escapes kept as they are); a value that
 * is not JSON is embedded as a string. A jansson parse and dump of every value was most of the
 * CPU of a file sink (bench-fanout's profile: 36%). */
static struct file_line *line_make(const struct sink_record *rec, size_t *len, char *err, size_t errlen)
{
    size_t topic_len = strlen(rec->topic), room;
    long long topic_esc = tpl_json_escaped_len(rec->topic, topic_len), key_esc = 0, value_esc = 0;
    struct json_slice value = { 0 };
    int value_is_json = 0;
    struct file_line *line;
    char *out;

    if (topic_esc < 0) {
        snprintf(err, errlen, "topic is not valid UTF-8");
        return NULL;
    }
    if (rec->key && (key_esc = tpl_json_escaped_len(rec->key, rec->key_len)) < 0) {
        snprintf(err, errlen, "key is not valid UTF-8");
        return NULL;
    }
    if (rec->value) {
        value_is_json = json_read(rec->value, rec->value_len, &value, NULL, 0) == 0;
        if (!value_is_json && (value_esc = tpl_json_escaped_len(rec->value, rec->value_len)) < 0) {
            snprintf(err, errlen, "value is neither JSON nor valid UTF-8 text");
            return NULL;
        }
    }
    room = LIT_LEN("{\"topic\":\"") + (size_t)topic_esc + LIT_LEN("\",\"partition\":") + decimal_len(rec->partition) +
           LIT_LEN(",\"offset\":") + decimal_len(rec->offset) + LIT_LEN(",\"key\":") + (rec->key ? (size_t)key_esc + 2 : 4) +
           LIT_LEN(",\"value\":") + (!rec->value ? 4 : value_is_json ? value.n : (size_t)value_esc + 2) +
           LIT_LEN(",\"timestamp\":") + (rec->timestamp_ms >= 0 ? decimal_len(rec->timestamp_ms) : 4) + LIT_LEN("}\n");
    if (!(line = malloc(sizeof *line + room))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    out = line->text;
    PUT_LIT(out, "{\"topic\":\"");
    out = tpl_json_escape_to(out, rec->topic, topic_len);
    PUT_LIT(out, "\",\"partition\":");
    out = decimal_put(out, rec->partition);
    PUT_LIT(out, ",\"offset\":");
    out = decimal_put(out, rec->offset);
    PUT_LIT(out, ",\"key\":");
    out = tpl_json_quote_to(out, rec->key, rec->key_len);
    PUT_LIT(out, ",\"value\":");
    if (value_is_json)
        out = json_compact_to(out, &value);   /* a raw CR or LF in JSON is white space: removed */
    else
        out = tpl_json_quote_to(out, rec->value, rec->value_len);
    PUT_LIT(out, ",\"timestamp\":");
    if (rec->timestamp_ms >= 0)
        out = decimal_put(out, rec->timestamp_ms);
    else
        PUT_LIT(out, "null");
    PUT_LIT(out, "}\n");
    line->refs = 1;
    *len = (size_t)(out - line->text);
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
