#!/usr/bin/env bash
# SIGTERM drains: records waiting in a batch (a linger of 10 minutes) are flushed, acknowledged
# and committed, and sluice exits 0 well before the linger would have passed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init

N=777
lib_start_kafka slow:3 sluice.dlq:1
sluice_write_config "$WORK/sluice.json" drain-test
sluice_admin_on "$WORK/sluice.json"
cat >"$WORK/sinks.d/slow.json" <<JSON
{ "name": "lingering", "type": "file", "topics": ["slow"],
  "batch": { "max_records": 100000, "max_bytes": 104857600, "linger_ms": 600000 },
  "file": { "path": "$WORK/slow.ndjson" } }
JSON
make_records "$N" 31 "$WORK/records.tsv"
lib_produce slow "$WORK/records.tsv"

sluice_start "$WORK/sluice.json"
# Wait until every record is consumed and sits in a batch: the sink reports all of them
# buffered (GET /sinks), and nothing can have been written because no batch is full and none
# lingered out.
all_buffered() { [ "$(admin_sink lingering .buffered)" = "$N" ]; }
TIMEOUT=30 lib_wait_for all_buffered
sleep 1   # a batch written or an offset committed too early would show up now
[ "$(lines_of "$WORK/slow.ndjson")" -eq 0 ] || lib_fail "records were written before the linger ran out"
"$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g drain-test -t slow >"$WORK/before"
# Committed may be -1 (nothing yet) or 0 (nothing below the first record is finished): never more.
awk '$2 > 0 { exit 1 }' "$WORK/before" || lib_fail "offsets committed before anything was written: $(cat "$WORK/before")"
lib_pass "records wait in the batcher, nothing written or committed"

start=$(lib_now_ms)
sluice_stop
took=$(( $(lib_now_ms) - start ))
check_file_output "$WORK/slow.ndjson" "$N"
lib_pass "SIGTERM flushed all $N waiting records and exited 0 (in ${took} ms)"

"$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g drain-test -t slow >"$WORK/after"
while read -r p committed end; do
    [ "$committed" -eq "$end" ] || lib_fail "partition $p committed $committed, end is $end"
done <"$WORK/after"
[ "$(wc -l <"$WORK/after")" -eq 3 ] || lib_fail "expected committed offsets of 3 partitions: $(cat "$WORK/after")"
lib_pass "the drain committed the end of every partition: $(tr '\n' ' ' <"$WORK/after")"
lib_summary
