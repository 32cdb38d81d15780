/* The records of the group's control topic (control.topic): what `sluice ctl` asks of the whole
 * group and what each replica says of itself. The key names the subject, the value is JSON:
 *   replica/<id>   {"admin": URL, "host", "pid", "started_ms", "at_ms", "heartbeat_ms"}; a
 *                  tombstone (no value) when the replica stopped cleanly
 *   pause/<sink>   {"paused": true|false, "at_ms", "by"}
 *   replay/<sink>  {"offset": N | "timestamp_ms": T, "topic"?, "partition"?, "at_ms", "by"}; the
 *                  record's own offset in the control topic is the replay's id
 * The topic is compacted: the last record of each key is the state. */
#ifndef SLUICE_ROUTER_CONTROL_RECORD_H
#define SLUICE_ROUTER_CONTROL_RECORD_H

#include <stddef.h>
#include <stdint.h>

enum control_kind { CONTROL_REPLICA, CONTROL_PAUSE, CONTROL_REPLAY };

#define CONTROL_NAME_MAX 128    /* a sink name (at most 100) or a replica id */

struct control_record {
    enum control_kind kind;
    char name[CONTROL_NAME_MAX];    /* the replica's id or the sink's name */
    int tombstone;                  /* no value: a replica that left, or a cleared state */
    int64_t at_ms;                  /* wall clock of the writer */
    char by[CONTROL_NAME_MAX];      /* who asked (user@host), informative */
    /* replica */
    char admin[256];                /* the admin API's URL, "" when it has none */
    char host[128];
    int64_t pid, started_ms, heartbeat_ms;
    /* pause */
    int paused;
    /* replay: exactly one of offset, timestamp_ms is >= 0 */
    int64_t offset, timestamp_ms;
    char topic[256];                /* "" for every topic of the sink */
    int32_t partition;              /* -1 for every partition */
};

/**
 * @brief Parse one record of the control topic. @return 0, or -1 with the reason in @p err (a
 * record of an unknown kind, a bad value: the reader skips it and counts it).
 */
int control_record_parse(const void *key, size_t key_len, const void *value, size_t value_len,
                         struct control_record *rec, char *err, size_t errlen);

/** @brief The key of @p rec ("pause/NAME") into @p buf; its length, or -1 when it does not fit. */
int control_record_key(const struct control_record *rec, char *buf, size_t len);

/** @brief The value of @p rec as JSON (malloc'd, the caller frees), NULL for a tombstone or OOM. */
char *control_record_value(const struct control_record *rec);

#endif
