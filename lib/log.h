/* Logging: one line per event on stderr, as logfmt (time=... level=... sink=... msg="...") or
 * JSON, chosen by log.format. LOG checks the level before it evaluates its arguments. A line
 * repeated identically within 10 seconds is written once, then counted: the next one written
 * says how many were held back. Thread-safe (librdkafka's threads log through it too). */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

extern enum log_level log_min_level;
extern enum log_format log_format;

/** @brief Write one line. @p subject names what it is about ("sink:file:orders", "kafka"),
 * or NULL. */
void log_write(enum log_level level, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG(level, ...) \
    do { if ((level) >= log_min_level) log_write((level), NULL, __VA_ARGS__); } while (0)

/* A line about @p subject ("registry", "sink:webhook:orders"). */
#define LOG_AS(level, subject, ...) \
    do { if ((level) >= log_min_level) log_write((level), (subject), __VA_ARGS__); } while (0)

struct rd_kafka_s;
/** @brief librdkafka's log callback: its lines go out in the same format, as component=kafka. */
void log_kafka(const struct rd_kafka_s *rk, int syslog_level, const char *facility, const char *text);

/** @brief Parse "debug", "info", "warn", "error"; -1 when unknown. */
int log_level_parse(const char *name);

#endif
