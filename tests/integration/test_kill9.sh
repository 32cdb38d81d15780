#!/usr/bin/env bash
# kill -9 in the middle of the stream, twice, loses nothing and writes nothing twice: the file
# sink records its positions with the data and cuts an interrupted tail at start, and the
# router starts each partition from the lowest of the committed and stored positions.
#
# Each kill lands mid-stream by construction, not by a poll being quick enough: while sluice
# runs, its commits are made to fail (the mock answers every OffsetCommit with an error), so
# every record it writes from then on is written but not committed when the kill comes; and the
# records after the kill point are only produced after the kill. Before each restart the test
# checks that the committed offsets lag behind the file sink's stored positions, and after it
# that sluice started every partition at its stored position: the restart depends on them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
lib_init

N=10000
GROUP=kill9-test
lib_start_kafka events:4 sluice.dlq:1
sluice_write_config "$WORK/sluice.json" "$GROUP"
OUT=$WORK/events.ndjson
cat >"$WORK/sinks.d/events.json" <<JSON
{ "name": "events-file", "type": "file", "topics": ["events"],
  "batch": { "max_records": 40, "linger_ms": 0 },
  "file": { "path": "$OUT" } }
JSON

# produce FROM COUNT: records seq FROM..FROM+COUNT-1 (53 keys), acknowledged when it returns.
produce() {
    make_records "$2" 53 "$WORK/chunk.tsv" "$1"
    lib_produce events "$WORK/chunk.tsv"
}

# "partition next" for every partition of the file sink's stored positions.
stored_positions() {
    jq -r '.positions.events // {} | to_entries[] | "\(.key) \(.value)"' "$OUT.positions" | sort -n
}

# "partition committed" for every partition of the group (-1: nothing committed).
committed_offsets() {
    timeout "$(lib_tmout 20)" "$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g "$GROUP" -t events |
        awk '{ print $1, $2 }' | sort -n
}

commits_fail() {
    lib_kafka_ctl push-errors OffsetCommit OFFSET_METADATA_TOO_LARGE 100000 >/dev/null ||
        lib_fail "mock-kafka refused push-errors"
}

commits_work() {
    lib_kafka_ctl clear-errors OffsetCommit >/dev/null || lib_fail "mock-kafka refused clear-errors"
}

# After a kill: the file holds records beyond the committed offsets (so a restart from the
# commit alone would write them twice). Prints how many.
uncommitted_written() {
    local stored committed
    stored=$(stored_positions)
    committed=$(committed_offsets) || lib_fail "kafka-committed failed"
    lib_log "stored positions: $(tr "\n" " " <<<"$stored"); committed: $(tr "\n" " " <<<"$committed")"
    join <(echo "$stored") <(echo "$committed") | awk '
        { n++; c = $3 < 0 ? 0 : $3; if (c > $2) bad = 1; lag += $2 - c }
        END { if (n != 4 || bad || lag <= 0) exit 1; print lag }' ||
        lib_fail "the committed offsets do not lag behind the stored positions at the kill"
}

# After a restart: sluice logs "assigned events [P]: committed C, starting at S" when it takes
# a partition; "P S" of each partition's first such line.
first_starts() {
    sed -n 's/.*msg="assigned events \[\([0-9]*\)\]: committed -\{0,1\}[0-9]*, starting at \([0-9]*\)".*/\1 \2/p' "$1" |
        awk '!seen[$1]++' | sort -n
}

all_assigned() {
    [ "$(first_starts "$1" | wc -l)" -eq 4 ]
}

# Each partition started at the stored position (saved before the restart in $WORK/stored).
started_at_stored() {
    TIMEOUT=60 lib_wait_for all_assigned "$1"
    first_starts "$1" >"$WORK/started"
    cmp -s "$WORK/started" "$WORK/stored" ||
        lib_fail "sluice did not start at the stored positions: started: $(tr "\n" " " <"$WORK/started"), stored: $(tr "\n" " " <"$WORK/stored")"
}

# kill_uncommitted WHICH FROM COUNT AT: with sluice running, every commit fails from now on;
# records FROM..FROM+COUNT-1 come, and once the file holds AT lines, kill -9.
kill_uncommitted() {
    local lag
    commits_fail
    produce "$2" "$3"
    TIMEOUT=60 lib_wait_for has_lines "$OUT" "$4"
    sluice_kill9
    lag=$(uncommitted_written)
    lib_log "$1 kill: $(lines_of "$OUT") lines in the file, $lag records written but not committed"
    stored_positions >"$WORK/stored"
}

# restart FROM COUNT: commits work again; records FROM..FROM+COUNT-1, after the kill point, are
# produced after the kill; sluice starts again, at the stored positions.
restart() {
    commits_work
    produce "$1" "$2"
    sluice_start "$WORK/sluice.json"
    started_at_stored "$SLUICE_LOG"
}

# Run 1: 2000 records written and committed, then commits fail while 3000 more come.
produce 0 2000
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for has_lines "$OUT" 2000
TIMEOUT=60 lib_wait_for rel_committed_at_end "$GROUP" events
kill_uncommitted first 2000 3000 3000

# Run 2: once all is written and committed, commits fail again for the second kill.
restart 5000 2500
TIMEOUT=60 lib_wait_for has_lines "$OUT" 7500
TIMEOUT=60 lib_wait_for rel_committed_at_end "$GROUP" events
kill_uncommitted second 7500 1500 8000

# Run 3: the rest.
restart 9000 1000
TIMEOUT=90 lib_wait_for has_lines "$OUT" "$N" ||
    lib_fail "only $(lines_of "$OUT") of $N records after two kills"
TIMEOUT=60 lib_wait_for rel_committed_at_end "$GROUP" events
sleep 1   # anything written twice would show up now (the count below fails either way)
sluice_stop
check_file_output "$OUT" "$N"
lib_pass "two kill -9 with written but uncommitted records, restarts at the stored positions: $N records, each exactly once, in order"
lib_summary
