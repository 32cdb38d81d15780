#!/usr/bin/env bash
# A batch's webhook-id ("<sink>:<topic>:<partition>:<first>-<last>") stays its idempotency key
# across a kill -9 and a rebalance: records come in bursts of odd sizes with pauses, so most
# json_array batches are cut by linger, not by max_records; a slow receiver keeps batches in
# flight. Phase 1: sluice is killed mid-stream with a batch of every partition in flight, and
# restarted. Phase 2: a second process joins the group while a batch of every partition is in
# flight; the first gives the partitions up unsettled (after shutdown_timeout_ms). Every batch
# sent again covers the same offsets as the first time (the router recorded the end of each
# linger-cut batch in the Kafka commit metadata before sending it), so a receiver may dedupe on
# the webhook-id alone: a repeated webhook-id always carries the same body, and a record
# delivered twice was delivered both times under the same webhook-id.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

N=1500   # records per phase
MAX_RECORDS=20
lib_start_kafka events:3 sluice.dlq:1
lib_start_receiver --mode '{"mode":"slow","delay_ms":40}'
sluice_write_config_with "$WORK/sluice.json" webhook-batch-ids shutdown_timeout_ms=3000
cat >"$WORK/sinks.d/array.json" <<JSON
{ "name": "hook-array", "type": "webhook", "topics": ["events"],
  "batch": { "max_records": $MAX_RECORDS, "linger_ms": 20 },
  "webhook": { "url": "$RECEIVER_URL/array", "batch_format": "json_array", "secret": "$HTTP_TEST_SECRET",
               "allow_private_networks": true } }
JSON
make_records $((2 * N)) 97 "$WORK/records.tsv"

# produce_bursts FROM COUNT: records FROM..FROM+COUNT-1 (lines of records.tsv, from 0) in bursts
# of 3..41 (odd sizes, spread over the 3 partitions by key), 60..180 ms apart. It holds twice
# until the test lets it go on (let_producer_go): once 600 records are out, and 300 before the
# end, so the kill and the rebalance come while records flow, and before the last ones, by
# construction.
produce_bursts() {
    local sizes=(7 13 29 3 17 41 11 5 23 37 9 31) pauses=(0.06 0.18 0.09 0.12 0.15) i=0 gate=1
    local from=$(($1 + 1)) end=$(($1 + $2)) size
    while [ "$from" -le "$end" ]; do
        if { [ "$gate" -eq 1 ] && [ $((from - $1 - 1)) -ge 600 ]; } ||
           { [ "$gate" -eq 2 ] && [ $((end - from + 1)) -le 300 ]; }; then
            await_go "$WORK/go.$1.$gate" || { echo "not let go at gate $gate"; return 1; }
            gate=$((gate + 1))
        fi
        size=${sizes[i % ${#sizes[@]}]}
        [ $((from + size - 1)) -le "$end" ] || size=$((end - from + 1))
        sed -n "${from},$((from + size - 1))p" "$WORK/records.tsv" >"$WORK/burst.tsv"
        lib_produce events "$WORK/burst.tsv"
        from=$((from + size))
        sleep "${pauses[i % ${#pauses[@]}]}"
        i=$((i + 1))
    done
    echo "produced $2 records from $1 in $i bursts"
}
await_go() {   # FILE: waits (bounded) until FILE exists
    local n
    for ((n = $(lib_tmout 120) * 10; n > 0; n--)); do
        [ ! -e "$1" ] || return 0
        sleep 0.1
    done
    return 1
}
start_producer() {
    PRODUCER_FROM=$1
    PRODUCER_GATE=0
    lib__spawn "$WORK/producer.log" produce_bursts "$1" "$2"
    PRODUCER_PID=$LIB_LAST_PID
}
# let_producer_go: the producer passes its next gate.
let_producer_go() {
    PRODUCER_GATE=$((PRODUCER_GATE + 1))
    : >"$WORK/go.$PRODUCER_FROM.$PRODUCER_GATE"
}
wait_producer() {
    local rc=0
    wait "$PRODUCER_PID" || rc=$?
    lib__forget_pid "$PRODUCER_PID"
    [ "$rc" -eq 0 ] || lib_fail "the producer failed ($rc): $(cat "$WORK/producer.log")"
}

distinct_ids() { rx_records_ok /array | jq -s 'unique_by(.id) | length'; }
at_least() { [ "$(distinct_ids)" -ge "$1" ]; }
pending() { [ "$(lib_receiver_stats | jq .pending)" -ge "$1" ]; }
# The receiver holds the next requests unanswered; then the producer goes on past its first
# gate, so new records reach every partition, until a batch of every partition waits; and a
# periodic commit (commit_interval_ms 200) has gone after them.
hold_a_batch_per_partition() {
    lib_receiver_mode '{"mode":"hang"}'
    let_producer_go
    TIMEOUT=30 lib_wait_for pending 3
    sleep 0.5
}
release_batches() {
    lib_receiver_mode '{"mode":"slow","delay_ms":40}'
}
recorded_cuts_read() { cat "$WORK"/sluice.*.log | grep -c 'the last commit recorded a batch' || true; }

# Phase 1: kill -9. The producer starts once sluice has its partitions, so batches are cut as
# records come (not from a backlog, where they would be full).
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for grep -q 'assigned events \[2\]' "$SLUICE_LOG"
start_producer 0 "$N"
TIMEOUT=60 lib_wait_for at_least 300
hold_a_batch_per_partition
sluice_kill9
release_batches
before=$(distinct_ids)
lib__alive "$PRODUCER_PID" || lib_fail "the producer ended before the kill: $(cat "$WORK/producer.log")"
[ "$before" -lt "$N" ] || lib_fail "all $N records went before the kill"
lib_log "killed mid-stream: $before of $N records delivered, the producer holding before the last 300"

sluice_start "$WORK/sluice.json"
pid_a=$SLUICE_PID
log_a=$SLUICE_LOG
let_producer_go
wait_producer
TIMEOUT=120 lib_wait_for at_least "$N"
cuts_phase1=$(recorded_cuts_read)

# Phase 2: a rebalance with a batch of every partition in flight.
start_producer "$N" "$N"
TIMEOUT=60 lib_wait_for at_least $((N + 300))
hold_a_batch_per_partition
lib__alive "$PRODUCER_PID" || lib_fail "the producer ended before the rebalance began: $(cat "$WORK/producer.log")"
sluice_start "$WORK/sluice.json"   # the second process; sluice_stop below stops it first
log_b=$SLUICE_LOG
TIMEOUT=60 lib_wait_for grep -q 'partitions revoked' "$log_a"
TIMEOUT=60 lib_wait_for grep -q 'assigned events' "$log_b"
release_batches
let_producer_go
wait_producer
TIMEOUT=120 lib_wait_for at_least $((2 * N))
cuts_phase2=$(($(recorded_cuts_read) - cuts_phase1))
[ -n "$(grep 'assigned events' "$log_a" | tail -n +4)" ] ||
    lib_fail "the first process got no partition back after the rebalance"
sleep 0.5
sluice_stop
SLUICE_PID=$pid_a
SLUICE_LOG=$log_a
sluice_stop
N=$((2 * N))

# Every record at least once; after deduplicating on the per-record ids, each exactly once.
repeats=$(rx_check_exactly_once /array "$N")
[ "$repeats" -gt 0 ] || lib_fail "no record was delivered twice: the restart re-sent nothing"
lib_pass "every record arrived ($N distinct, seq 0..$((N - 1))); $repeats deliveries were repeats"

# Every request (answered or cut off by the kill), with its webhook-id and records.
jq -c 'select(.path == "/array") | {w: .headers["webhook-id"], body, records: (.body | fromjson)}' \
    "$RECEIVER_OUT" >"$WORK/requests.ndjson"

# The webhook-id names the batch's partition and first and last offsets.
bad=$(jq -s '[.[] | select(.w != "hook-array:events:\(.records[0].partition):\(.records[0].offset)-\(.records[-1].offset)")] | length' \
    "$WORK/requests.ndjson")
[ "$bad" -eq 0 ] || lib_fail "$bad requests carry a webhook-id other than <sink>:<topic>:<partition>:<first>-<last>"

# Each record travelled under exactly one webhook-id, however often it was sent; the records
# sent more than once are exactly those of the repeated batches.
read -r ids_per_record_max records_repeated records_in_repeated_batches <<<"$(jq -rs '
    ([.[] | .w as $w | .records[] | {id, w: $w}] | group_by(.id)) as $by_record
    | (group_by(.w) | map(select(length > 1) | .[0].records | length) | add // 0) as $in_repeated
    | "\($by_record | map(map(.w) | unique | length) | max) \($by_record | map(select(length > 1)) | length) \($in_repeated)"' \
    "$WORK/requests.ndjson")"
[ "$ids_per_record_max" -eq 1 ] ||
    lib_fail "a record was delivered under $ids_per_record_max different webhook-ids (batches cut differently when sent again)"
[ "$records_repeated" -eq "$records_in_repeated_batches" ] ||
    lib_fail "$records_repeated records were delivered more than once, but the repeated batches hold $records_in_repeated_batches"
lib_pass "$records_repeated records delivered more than once, each time under the same webhook-id"

# A repeated webhook-id always carries a byte-identical body.
read -r repeated_ids differing <<<"$(jq -rs 'group_by(.w) | map(select(length > 1))
    | "\(length) \(map(select((map(.body) | unique | length) > 1)) | length)"' "$WORK/requests.ndjson")"
[ "$repeated_ids" -gt 0 ] || lib_fail "no webhook-id was sent twice: no batch was sent again"
[ "$differing" -eq 0 ] || lib_fail "$differing of $repeated_ids repeated webhook-ids carried different bodies"
lib_pass "$repeated_ids webhook-ids were sent more than once, each time with the same body"

# The case this is about: batches cut by linger (fewer than max_records), sent again whole.
partial_repeats=$(jq -s --argjson max "$MAX_RECORDS" \
    'group_by(.w) | map(select(length > 1 and (.[0].records | length) < $max)) | length' "$WORK/requests.ndjson")
partial_total=$(jq -s --argjson max "$MAX_RECORDS" \
    '[.[] | select((.records | length) < $max) | .w] | unique | length' "$WORK/requests.ndjson")
[ "$partial_repeats" -gt 0 ] || lib_fail "no batch cut by linger was sent again"
[ "$cuts_phase1" -gt 0 ] || lib_fail "after the kill, sluice found no batch end in the commit metadata"
[ "$cuts_phase2" -gt 0 ] || lib_fail "after the rebalance, no process found a batch end in the commit metadata"
lib_pass "$partial_total of the batches were cut by linger; $partial_repeats of them were re-sent with the same offsets" \
    "(batch ends read back from the commit metadata: $cuts_phase1 after the kill, $cuts_phase2 after the rebalance)"

n=$(verify_all_signatures /array "$HTTP_TEST_SECRET" 20)
lib_pass "signatures verify across the kill and the rebalance ($n checked)"
lib_summary
