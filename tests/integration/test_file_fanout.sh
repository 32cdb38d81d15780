#!/usr/bin/env bash
# Four file sinks on one topic (issue 17's fan-out): the NDJSON line of a record is made once and
# shared by the sinks, and each sink writes the batches that gathered while its disk thread was
# busy in one group (one write, one positions file). Each sink still holds every record exactly
# once, in order, with the very bytes a sink alone writes, across a kill -9 that leaves written
# but uncommitted records in every file: the sinks' own stored positions bring each back.
#
# The kill lands after records were written and not committed by construction: every commit
# fails while the first part is written (the mock answers OffsetCommit with an error), and the
# second part is produced only after the kill.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
lib_init

N=6000
GROUP=fanout-test
lib_start_kafka events:8 sluice.dlq:1
sluice_write_config "$WORK/sluice.json" "$GROUP"
# Batches of 1, 7 and 500 records: the groups of each sink are made of different batches.
for s in one:1 seven:7 many:500; do
    cat >"$WORK/sinks.d/${s%%:*}.json" <<JSON
{ "name": "${s%%:*}", "type": "file", "topics": ["events"],
  "batch": { "max_records": ${s#*:}, "linger_ms": 2 },
  "file": { "path": "$WORK/${s%%:*}.ndjson" } }
JSON
done
cat >"$WORK/sinks.d/gold.json" <<JSON
{ "name": "gold", "type": "file", "topics": ["events"],
  "filter": { "path": "$.tier", "equals": "gold" },
  "batch": { "max_records": 50, "linger_ms": 2 },
  "file": { "path": "$WORK/gold.ndjson" } }
JSON
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/sluice.json" || lib_fail "sluice check refused a valid config"

produce() {   # FROM COUNT
    make_records "$2" 53 "$WORK/chunk.tsv" "$1"
    lib_produce events "$WORK/chunk.tsv"
}

# Part one: 4000 records while every commit fails; kill -9 once the slowest sink has half.
lib_kafka_ctl push-errors OffsetCommit OFFSET_METADATA_TOO_LARGE 100000 >/dev/null || lib_fail "mock-kafka refused push-errors"
produce 0 4000
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for has_lines "$WORK/one.ndjson" 2000
sluice_kill9
for s in one seven many; do
    [ "$(lines_of "$WORK/$s.ndjson")" -gt 0 ] || lib_fail "sink $s wrote nothing before the kill"
done
committed=$(timeout "$(lib_tmout 20)" "$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g "$GROUP" -t events |
    awk '{ s += ($2 > 0 ? $2 : 0) } END { print s + 0 }')
[ "$committed" -eq 0 ] || lib_fail "$committed records were committed while every commit failed"
lib_log "killed with $(lines_of "$WORK/one.ndjson") / $(lines_of "$WORK/seven.ndjson") / $(lines_of "$WORK/many.ndjson") lines written, none committed"

# Part two: commits work; 2000 more records, produced after the kill.
lib_kafka_ctl clear-errors OffsetCommit >/dev/null || lib_fail "mock-kafka refused clear-errors"
produce 4000 2000
sluice_start "$WORK/sluice.json"
for s in one seven many; do
    TIMEOUT=90 lib_wait_for has_lines "$WORK/$s.ndjson" "$N" ||
        lib_fail "sink $s: $(lines_of "$WORK/$s.ndjson") of $N records"
done
TIMEOUT=60 lib_wait_for has_lines "$WORK/gold.ndjson" $((N / 10))
TIMEOUT=60 lib_wait_for rel_committed_at_end "$GROUP" events
sleep 1   # anything written twice would show up now (the counts below fail either way)
sluice_stop

for s in one seven many; do
    check_file_output "$WORK/$s.ndjson" "$N"
done
lib_pass "3 file sinks with batches of 1, 7 and 500 records: $N records each, exactly once and in order, across a kill -9"

sort "$WORK/one.ndjson" >"$WORK/one.sorted"
for s in seven many; do
    sort "$WORK/$s.ndjson" | cmp -s - "$WORK/one.sorted" || lib_fail "sink $s's lines differ from sink one's"
done
gold=$(jq -r '.value.tier' "$WORK/gold.ndjson" | sort | uniq -c | awk '{ print $1, $2 }')
[ "$gold" = "$((N / 10)) gold" ] || lib_fail "the gold sink holds: $gold"
grep -F '"tier":"gold"' "$WORK/one.sorted" | cmp -s - <(sort "$WORK/gold.ndjson") ||
    lib_fail "the gold sink's lines are not the very lines of the others"
lib_pass "every sink wrote the same bytes for a record (the filtered one: exactly its $((N / 10)) records)"
lib_summary
