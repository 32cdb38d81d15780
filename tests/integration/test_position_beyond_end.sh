#!/usr/bin/env bash
# A sink whose stored position lies past the log end (the topic was recreated, here: a fresh
# embedded Kafka) would skip the new records below that position. sluice says so loudly (an
# error line, the sink's last error, a metric) instead of skipping in silence, and a replay from
# offset 0 delivers them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init

setup_config() {
    sluice_write_config "$WORK/sluice.json" beyond-test
    sluice_admin_on "$WORK/sluice.json"
    cat >"$WORK/sinks.d/events.json" <<JSON
{ "name": "events-file", "type": "file", "topics": ["events"],
  "batch": { "max_records": 10, "linger_ms": 0 },
  "file": { "path": "$WORK/events.ndjson" } }
JSON
}

lib_start_kafka events:1 sluice.dlq:1
setup_config
make_records 50 7 "$WORK/first.tsv" 0
lib_produce events "$WORK/first.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for has_lines "$WORK/events.ndjson" 50
sluice_stop
lib_pass "50 records delivered; the file sink stored position 50"

# The topic is recreated: a new, empty Kafka whose log ends at 10.
lib__stop_pid "$KAFKA_PID" TERM 5
lib_start_kafka events:1 sluice.dlq:1
setup_config
make_records 10 7 "$WORK/second.tsv" 1000
lib_produce events "$WORK/second.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for grep -q 'position 50 of events \[0\] is past the log end 10' "$SLUICE_LOG" ||
    lib_fail "no error about the position past the log end: $(grep -i error "$SLUICE_LOG" | head -5)"
grep 'past the log end' "$SLUICE_LOG" | grep -q 'sink=events-file' || lib_fail "the error line does not name the sink"
[ "$(grep -c 'past the log end' "$SLUICE_LOG")" -eq 1 ] || lib_fail "the error was logged more than once per partition"
lib_pass "the skip is reported once, as an error naming the sink"

metric=$(admin /metrics | awk '$1 == "sluice_sink_positions_beyond_end_total{sink=\"events-file\",type=\"file\"}" { print $2 }')
[ "$metric" = 1 ] || lib_fail "sluice_sink_positions_beyond_end_total is '$metric', expected 1"
admin_sink events-file .last_error | grep -q 'past the log end' || lib_fail "GET /sinks shows no last error"
[ "$(lines_of "$WORK/events.ndjson")" -eq 50 ] || lib_fail "records were written although below the position"
lib_pass "metric and GET /sinks show it; nothing was written yet"

admin_post /sinks/events-file/replay '{"offset": 0}' >/dev/null || lib_fail "replay refused"
TIMEOUT=60 lib_wait_for has_lines "$WORK/events.ndjson" 60 ||
    lib_fail "after the replay: $(lines_of "$WORK/events.ndjson") lines, expected 60"
sluice_stop
got=$(jq -r 'select(.value.seq >= 1000) | .value.seq' "$WORK/events.ndjson" | sort -n | tr '\n' ' ')
[ "$got" = "1000 1001 1002 1003 1004 1005 1006 1007 1008 1009 " ] || lib_fail "replayed records: $got"
lib_pass "a replay from offset 0 delivered the 10 new records once each"
lib_summary
