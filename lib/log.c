#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "log.h"

#define REPEAT_WINDOW_S 10
#define REPEAT_SLOTS 64

enum log_level log_min_level = LOG_INFO;
enum log_format log_format = LOG_FORMAT_LOGFMT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

/* Recent lines by hash: a repeat within the window is counted instead of written. */
struct repeat_slot {
    uint64_t hash;
    time_t first;
    unsigned suppressed;
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct repeat_slot repeats[REPEAT_SLOTS];

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static uint64_t hash_line(enum log_level level, const char *subject, const char *msg)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)level;   /* FNV-1a */
    for (const char *p = subject ? subject : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (const char *p = msg; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

/* logfmt: a value is quoted when it holds a space, quote, equals sign or control character. */
static void logfmt_value(FILE *out, const char *value)
{
    int quote = value[0] == '\0';
    for (const char *p = value; *p && !quote; p++)
        quote = *p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20;
    if (!quote) {
        fputs(value, out);
        return;
    }
    fputc('"', out);
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if ((unsigned char)*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* "sink:TYPE:NAME" becomes the fields sink=NAME type=TYPE; anything else is component=... */
static void subject_fields(const char *subject, char *kind, size_t kindlen, char *name, size_t namelen, char *type, size_t typelen)
{
    kind[0] = name[0] = type[0] = '\0';
    if (!subject)
        return;
    if (strncmp(subject, "sink:", 5) == 0) {
        const char *colon = strchr(subject + 5, ':');
        snprintf(kind, kindlen, "sink");
        if (colon) {
            snprintf(type, typelen, "%.*s", (int)(colon - (subject + 5)), subject + 5);
            snprintf(name, namelen, "%s", colon + 1);
        } else {
            snprintf(name, namelen, "%s", subject + 5);
        }
    } else {
        snprintf(kind, kindlen, "component");
        snprintf(name, namelen, "%s", subject);
    }
}

void log_write(enum log_level level, const char *subject, const char *fmt, ...)
{
    char msg[2048], when[40], kind[16], name[200], type[64];
    struct timespec now;
    struct repeat_slot *slot;
    unsigned held_back = 0;
    struct tm tm;
    uint64_t hash;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + strlen(when), sizeof when - strlen(when), ".%03ldZ", now.tv_nsec / 1000000);
    subject_fields(subject, kind, sizeof kind, name, sizeof name, type, sizeof type);

    hash = hash_line(level, subject, msg);
    pthread_mutex_lock(&log_lock);
    slot = &repeats[hash % REPEAT_SLOTS];
    if (level >= LOG_WARN && slot->hash == hash && now.tv_sec - slot->first < REPEAT_WINDOW_S) {
        slot->suppressed++;
        pthread_mutex_unlock(&log_lock);
        return;
    }
    if (slot->hash == hash)
        held_back = slot->suppressed;
    slot->hash = hash;
    slot->first = now.tv_sec;
    slot->suppressed = 0;

    if (log_format == LOG_FORMAT_JSON) {
        json_t *line = json_pack("{s:s, s:s}", "time", when, "level", level_names[level]);
        char *text;
        if (kind[0])
            json_object_set_new(line, kind, json_string(name));
        if (type[0])
            json_object_set_new(line, "type", json_string(type));
        json_object_set_new(line, "msg", json_string(msg));
        if (held_back)
            json_object_set_new(line, "repeated", json_integer(held_back));
        text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(line);
        if (text) {
            fprintf(stderr, "%s\n", text);
            free(text);
        }
    } else {
        flockfile(stderr);
        fprintf(stderr, "time=%s level=%s", when, level_names[level]);
        if (kind[0]) {
            fprintf(stderr, " %s=", kind);
            logfmt_value(stderr, name);
        }
        if (type[0]) {
            fputs(" type=", stderr);
            logfmt_value(stderr, type);
        }
        fputs(" msg=", stderr);
        logfmt_value(stderr, msg);
        if (held_back)
            fprintf(stderr, " repeated=%u", held_back);
        fputc('\n', stderr);
        funlockfile(stderr);
    }
    pthread_mutex_unlock(&log_lock);
}

void log_kafka(const rd_kafka_t *rk, int syslog_level, const char *facility, const char *text)
{
    enum log_level level = syslog_level <= 3 ? LOG_ERROR : syslog_level == 4 ? LOG_WARN
                         : syslog_level <= 6 ? LOG_INFO : LOG_DEBUG;
    (void)rk;
    if (level >= log_min_level)
        log_write(level, "kafka", "%s: %s", facility, text);
}
