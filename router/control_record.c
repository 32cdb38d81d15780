/* The control topic's records (control_record.h): parsed strictly, as any input from Kafka. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "control_record.h"

static const char *const kind_prefix[] = { "replica/", "pause/", "replay/" };

#define CONTROL_VALUE_MAX 8192   /* a control record is a few hundred bytes; more is not one */

static int text_field(json_t *obj, const char *field, char *out, size_t outlen, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, field);

    out[0] = '\0';
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= outlen) {
        snprintf(err, errlen, "\"%s\" must be a string of at most %zu bytes", field, outlen - 1);
        return -1;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* An integer field at least @p min, @p def when absent. */
static int int_field(json_t *obj, const char *field, int64_t min, int64_t def, int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, field);

    *out = def;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min) {
        snprintf(err, errlen, "\"%s\" must be an integer of at least %lld", field, (long long)min);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= CONTROL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '@' || c == ':'))
            return 0;
    }
    return 1;
}

int control_record_parse(const void *key, size_t key_len, const void *value, size_t value_len,
                         struct control_record *rec, char *err, size_t errlen)
{
    const char *k = key;
    json_t *root = NULL, *paused;
    json_error_t jerr;
    size_t prefix_len = 0;
    int kind = -1, rc = -1;
    int64_t partition;

    memset(rec, 0, sizeof *rec);
    rec->offset = rec->timestamp_ms = -1;
    rec->partition = -1;
    for (int i = 0; i < 3 && k; i++) {
        size_t n = strlen(kind_prefix[i]);
        if (key_len > n && memcmp(k, kind_prefix[i], n) == 0) {
            kind = i;
            prefix_len = n;
        }
    }
    if (kind < 0) {
        snprintf(err, errlen, "a key that is not replica/, pause/ or replay/");
        return -1;
    }
    if (!name_ok(k + prefix_len, key_len - prefix_len)) {
        snprintf(err, errlen, "a name of 1..%d characters of A-Z a-z 0-9 . _ - @ : is expected after \"%s\"",
                 CONTROL_NAME_MAX - 1, kind_prefix[kind]);
        return -1;
    }
    rec->kind = (enum control_kind)kind;
    memcpy(rec->name, k + prefix_len, key_len - prefix_len);
    rec->name[key_len - prefix_len] = '\0';
    if (!value) {
        rec->tombstone = 1;
        return 0;
    }
    if (value_len > CONTROL_VALUE_MAX) {
        snprintf(err, errlen, "a value of %zu bytes (at most %d)", value_len, CONTROL_VALUE_MAX);
        return -1;
    }
    if (!(root = json_loadb(value, value_len, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(root)) {
        snprintf(err, errlen, "the value is not a JSON object%s%s", root ? "" : ": ", root ? "" : jerr.text);
        goto out;
    }
    if (int_field(root, "at_ms", 0, 0, &rec->at_ms, err, errlen) != 0 ||
        text_field(root, "by", rec->by, sizeof rec->by, err, errlen) != 0)
        goto out;
    switch (rec->kind) {
    case CONTROL_REPLICA:
        if (text_field(root, "admin", rec->admin, sizeof rec->admin, err, errlen) != 0 ||
            text_field(root, "host", rec->host, sizeof rec->host, err, errlen) != 0 ||
            int_field(root, "pid", 0, 0, &rec->pid, err, errlen) != 0 ||
            int_field(root, "started_ms", 0, 0, &rec->started_ms, err, errlen) != 0 ||
            int_field(root, "heartbeat_ms", 1, 10000, &rec->heartbeat_ms, err, errlen) != 0)
            goto out;
        break;
    case CONTROL_PAUSE:
        paused = json_object_get(root, "paused");
        if (!json_is_boolean(paused)) {
            snprintf(err, errlen, "\"paused\" must be true or false");
            goto out;
        }
        rec->paused = json_is_true(paused);
        break;
    case CONTROL_REPLAY:
        if (int_field(root, "offset", 0, -1, &rec->offset, err, errlen) != 0 ||
            int_field(root, "timestamp_ms", 0, -1, &rec->timestamp_ms, err, errlen) != 0 ||
            int_field(root, "partition", 0, -1, &partition, err, errlen) != 0 ||
            text_field(root, "topic", rec->topic, sizeof rec->topic, err, errlen) != 0)
            goto out;
        if ((rec->offset < 0) == (rec->timestamp_ms < 0)) {
            snprintf(err, errlen, "a replay needs exactly one of \"offset\" and \"timestamp_ms\"");
            goto out;
        }
        if (partition > INT32_MAX) {
            snprintf(err, errlen, "\"partition\" is out of range");
            goto out;
        }
        rec->partition = (int32_t)partition;
        break;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int control_record_key(const struct control_record *rec, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s%s", kind_prefix[rec->kind], rec->name);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

char *control_record_value(const struct control_record *rec)
{
    json_t *v;
    char *text;

    if (rec->tombstone)
        return NULL;
    if (!(v = json_pack("{s:I}", "at_ms", (json_int_t)rec->at_ms)))
        return NULL;
    if (rec->by[0])
        json_object_set_new(v, "by", json_string(rec->by));
    switch (rec->kind) {
    case CONTROL_REPLICA:
        json_object_set_new(v, "admin", json_string(rec->admin));
        json_object_set_new(v, "host", json_string(rec->host));
        json_object_set_new(v, "pid", json_integer(rec->pid));
        json_object_set_new(v, "started_ms", json_integer(rec->started_ms));
        json_object_set_new(v, "heartbeat_ms", json_integer(rec->heartbeat_ms));
        break;
    case CONTROL_PAUSE:
        json_object_set_new(v, "paused", json_boolean(rec->paused));
        break;
    case CONTROL_REPLAY:
        if (rec->offset >= 0)
            json_object_set_new(v, "offset", json_integer(rec->offset));
        else
            json_object_set_new(v, "timestamp_ms", json_integer(rec->timestamp_ms));
        if (rec->topic[0])
            json_object_set_new(v, "topic", json_string(rec->topic));
        if (rec->partition >= 0)
            json_object_set_new(v, "partition", json_integer(rec->partition));
        break;
    }
    text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return text;
}
