#!/usr/bin/env bash
# Broker faults while records stream in (a paced producer, chunks of 250): the mock Kafka's
# only broker goes down until sluice sees a refused connection, and comes back; OffsetCommit
# requests fail ("rebalance in progress", then retriable errors); Fetch requests fail; the
# dead-letter producer's Produce requests fail (the test's producer holds meanwhile, so only
# sluice produces: the postgres sink, paused through the admin API, is resumed to catch up on
# records that include bad ones); the broker answers 2.5 s late, past socket.timeout.ms, until
# a request timed out; then it goes down until the member's session timed out, so sluice must
# join the group again and reload its positions. Each fault lasts until sluice's log shows it,
# not for a fixed time. A postgres insert-mode sink (exactly once: positions in the same
# transaction) and a file sink (exactly once: positions file) read the topic; every 500th
# record is not JSON, which the postgres sink dead-letters and the file sink writes as a
# string. At the end: the table holds every good record once (count, (partition, offset) and
# seq uniqueness), the file every record once and in offset order, each bad record is on the
# dead-letter topic, the group committed the end of every partition, the log shows each fault
# reached sluice, and sluice, alive throughout, exits 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
lib_init

CHUNK=250
BAD_EVERY=500
GROUP=broker-faults
lib_start_kafka events:4 sluice.dlq:1
lib_start_postgres
lib_psql "CREATE TABLE events (seq integer NOT NULL, part integer NOT NULL, off bigint NOT NULL)"
sluice_write_config "$WORK/sluice.json" "$GROUP"
# Requests time out after 2 s (socket.timeout.ms), so the slow-broker phase below produces real
# request timeouts; reconnects back off up to 2 s instead of 10 (shorter waits, same faults).
jq '.kafka += {"socket.timeout.ms": "2000", "reconnect.backoff.max.ms": "2000"}' "$WORK/sluice.json" >"$WORK/tmp.json" && mv "$WORK/tmp.json" "$WORK/sluice.json"
pg_sink_file db events '"table": "events", "mode": "insert",
    "columns": {"seq": "$.seq", "part": "@partition", "off": "@offset"}' '{ "max_records": 100, "linger_ms": 5 }'
cat >"$WORK/sinks.d/file.json" <<JSON
{ "name": "file", "type": "file", "topics": ["events"],
  "batch": { "max_records": 100, "linger_ms": 5 },
  "file": { "path": "$WORK/events.ndjson" } }
JSON

rows() { lib_psql "SELECT count(*) FROM events" 2>/dev/null || echo 0; }
has_rows() { [ "$(rows)" -ge "$1" ]; }
# progress WHAT: waits until the postgres sink applied 500 more rows than now.
progress() {
    local from
    from=$(rows)
    TIMEOUT=60 lib_wait_for has_rows $((from + 500))
    rel_alive "$SLUICE_PID" sluice
    lib_log "$1: $(rows) rows, $(lines_of "$WORK/events.ndjson") lines"
}
admin_req() {   # METHOD PATH: a request to the admin API of the running sluice
    curl -fsS -m 10 -X "$1" "http://127.0.0.1:$ADMIN_PORT$2" >/dev/null || lib_fail "admin API: $1 $2 failed"
}
dlq_count() {
    kcat -C -q -b "$KAFKA_BROKERS" -t sluice.dlq -o beginning -e -f 'x\n' 2>/dev/null | wc -l
}
# committed_sum: the sum of the offsets the group committed (-1 counts as 0).
committed_sum() {
    timeout 20 "$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g "$GROUP" -t events 2>/dev/null |
        awk '$2 > 0 { s += $2 } END { print s + 0 }'
}
committed_above() { [ "$(committed_sum)" -gt "$1" ]; }
# commits_move: waits until the group's committed offsets move on from where they are now.
commits_move() {
    TIMEOUT=60 lib_wait_for committed_above "$(committed_sum)"
}
ctl() {
    lib_kafka_ctl "$@" >/dev/null || lib_fail "mock-kafka refused: $*"
}
# seen PATTERN: how many lines of the log match; seen_more PATTERN N: more than N do.
seen() { grep -c -- "$1" "$SLUICE_LOG" || true; }
seen_more() { [ "$(seen "$1")" -gt "$2" ]; }
# fault_until PATTERN ON OFF: sends the mock command ON, waits (bounded) until the log shows
# PATTERN once more than before, then sends OFF: the fault lasts until it reached sluice.
fault_until() {
    local before
    before=$(seen "$1")
    # shellcheck disable=SC2086 # ON and OFF are commands of several words
    ctl $2
    TIMEOUT=60 lib__wait_until "$SLUICE_PID" seen_more "$1" "$before" ||
        lib_fail "sluice did not log '$1' after '$2'"
    # shellcheck disable=SC2086
    ctl $3
}

sluice_start "$WORK/sluice.json"
ADMIN_PORT=$(rel_admin_port "$SLUICE_LOG")
rel_start_producer events "$WORK/producer" "$CHUNK" 0.2 97 "$BAD_EVERY"
TIMEOUT=60 lib_wait_for has_rows 1000
lib_log "streaming: $(rows) rows"

# 1. The broker goes away for 2 s (less than session.timeout.ms 6000) and comes back.
# The outage lasts until sluice saw it (a refused connection), usually well under the session
# timeout.
fault_until 'Connection refused' 'broker-down 1' 'broker-up 1'
progress "after a short broker outage"

# 2. Commits fail. First "rebalance in progress", which reaches sluice (the positions are sent
# again with the next commit); it is pushed once commits flow again after the outage, since the
# commits deferred during an outage go out in a burst whose errors librdkafka may swallow while
# it reconnects. Then retriable errors: the consumer retries, or looks the coordinator up again.
commits_move
ctl push-errors OffsetCommit REBALANCE_IN_PROGRESS 1
TIMEOUT=30 lib_wait_for grep -q 'failed: Broker: Group rebalance in progress' "$SLUICE_LOG"
commits_move
ctl push-errors OffsetCommit REQUEST_TIMED_OUT 2
ctl push-errors OffsetCommit NOT_COORDINATOR 2
ctl push-errors OffsetCommit COORDINATOR_NOT_AVAILABLE 2
progress "after failed commits"

# 3. Fetches fail (leadership "moved", then an error from the broker's storage).
ctl push-errors Fetch NOT_LEADER_FOR_PARTITION 5
ctl push-errors Fetch KAFKA_STORAGE_ERROR 3
ctl push-errors Fetch UNKNOWN 3
progress "after failed fetches"

# 4. Produces fail, and only sluice produces: the test's producer holds while the postgres sink,
# paused through the admin API, is resumed and catches up on records that include bad ones,
# whose dead letters meet the errors (retriable: the idempotent producer retries them).
rel_hold_producer
admin_req POST /sinks/db/pause
# 5 chunks produced after the pause hold at least 2 bad records that only the resumed sink sees.
chunks_at_pause=$(lines_of "$WORK/producer/produced")
rel_release_producer
TIMEOUT=60 lib_wait_for has_lines "$WORK/producer/produced" $((chunks_at_pause + 5))
rel_hold_producer
letters=$(dlq_count)
ctl push-errors Produce NOT_ENOUGH_REPLICAS 3
ctl push-errors Produce NOT_LEADER_FOR_PARTITION 3
ctl push-errors Produce REQUEST_TIMED_OUT 2
admin_req POST /sinks/db/resume
TIMEOUT=60 lib_wait_for topic_has sluice.dlq $((letters + 2))
rel_release_producer
progress "after failed produces of dead letters"

# 5. The broker answers 2.5 s late until a request timed out (socket.timeout.ms 2000).
fault_until 'REQTMOUT' 'broker-rtt 1 2500' 'broker-rtt 1 0'
progress "after a slow broker"

# 6. The broker is away longer than session.timeout.ms (6 s): until the member's session
# expired; it must join the group again and reload its positions.
fault_until 'Consumer group session timed out' 'broker-down 1' 'broker-up 1'
progress "after a broker outage past the session timeout"

rel_stop_producer
N=$((REL_CHUNKS * CHUNK))
BAD=$(((N - 1) / BAD_EVERY))
GOOD=$((N - BAD))
lib_log "produced $N records ($BAD not JSON)"
TIMEOUT=90 lib_wait_for pg_positions_reach db "$N"
TIMEOUT=60 lib_wait_for has_lines "$WORK/events.ndjson" "$N"
TIMEOUT=60 lib__wait_until "$SLUICE_PID" rel_committed_at_end "$GROUP" events ||
    lib_fail "the group did not commit the end of every partition: $("$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g "$GROUP" -t events | tr '\n' ' ')"
sleep 1   # anything applied twice would show up now
rel_alive "$SLUICE_PID" sluice
lib_pass "sluice stayed up through every fault; the group committed the end of all 4 partitions ($N records)"

# postgres: every good record once, no bad one.
report=$(lib_psql "SELECT count(*), count(DISTINCT (part, off)), count(DISTINCT seq), count(*) FILTER (WHERE seq % $BAD_EVERY = 0 AND seq > 0), min(seq), max(seq) FROM events")
want="$GOOD|$GOOD|$GOOD|0|0|$((N - 1))"
[ "$report" = "$want" ] || lib_fail "rows|distinct (partition, offset)|distinct seq|bad seq|min|max = $report, expected $want"
lib_pass "postgres: $GOOD rows, each (partition, offset) once, every good seq, no bad one"

# file: every record once, per partition in offset order.
report=$(jq -rs '
    [.[] | {p: .partition, o: .offset, seq: (if (.value | type) == "object" then .value.seq else (.value | ltrimstr("bad-json-") | tonumber) end)}]
    | "\(length) \([.[].seq] | unique | length) \(map("\(.p):\(.o)") | unique | length) \([group_by(.p)[] | [.[].o] | . == sort] | all) \([.[].seq] | min) \([.[].seq] | max)"' \
    "$WORK/events.ndjson")
[ "$report" = "$N $N $N true 0 $((N - 1))" ] ||
    lib_fail "file: records|distinct seq|distinct (partition, offset)|ordered|min|max = $report, expected $N $N $N true 0 $((N - 1))"
lib_pass "file: $N records, each once, in offset order per partition"

# dead letters: each bad record, from the postgres sink, with its key and value.
LIB_CONSUME_FORMAT='%h\t%k\t%s\n' lib_consume sluice.dlq $((BAD * 10)) >"$WORK/dlq.txt" || true
letters=$(wc -l <"$WORK/dlq.txt")
distinct=$(grep -c 'sluice.sink=db,' "$WORK/dlq.txt" || true)
bad_seqs=$(awk -F'\t' '$1 ~ /sluice.sink=db,/ { print $3 }' "$WORK/dlq.txt" | sort -u | sed 's/bad-json-//' | sort -n | paste -sd' ')
want_seqs=$(seq "$BAD_EVERY" "$BAD_EVERY" $((N - 1)) | paste -sd' ')
[ "$bad_seqs" = "$want_seqs" ] || lib_fail "dead letters for seq: '$bad_seqs', expected '$want_seqs'"
[ "$distinct" -eq "$letters" ] || lib_fail "$((letters - distinct)) dead letters not from the postgres sink"
lib_pass "dead letters: each of the $BAD bad records ($letters letters, $((letters - BAD)) repeated)"

# The faults reached sluice (each leaves its mark in the log).
grep -q 'Connection refused' "$SLUICE_LOG" || lib_fail "sluice never saw the broker down"
grep -q 'failed: Broker: Group rebalance in progress' "$SLUICE_LOG" || lib_fail "no commit failed"
grep -q 'Fetch from broker 1 failed' "$SLUICE_LOG" || lib_fail "no fetch failed"
grep -q 'REQTMOUT' "$SLUICE_LOG" || lib_fail "no request timed out during the slow-broker phase"
grep -q 'Consumer group session timed out' "$SLUICE_LOG" || lib_fail "the member's session never expired"
[ "$(grep -c 'msg="partitions assigned' "$SLUICE_LOG")" -ge 2 ] || lib_fail "the group was never joined again after the session expired"
lib_pass "the faults hit: refused connections, failed commits and fetches, request timeouts, an expired session and a new group join"
sluice_stop
lib_pass "sluice exits 0 on SIGTERM after the faults"
lib_summary
