#!/usr/bin/env bash
# A batch's webhook-id ("<sink>:<topic>:<partition>:<first>-<last>") stays its idempotency key
# across a kill -9: records come in bursts of odd sizes with pauses, so most json_array batches
# are cut by linger, not by max_records; a slow receiver keeps batches in flight; sluice is
# killed mid-stream and restarted. Every batch sent again after the restart covers the same
# offsets as the first time (the router recorded the end of each linger-cut batch in the Kafka
# commit metadata before sending it), so a receiver may dedupe on the webhook-id alone: a
# repeated webhook-id always carries the same body, and a record delivered twice was delivered
# both times under the same webhook-id.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

N=1500
MAX_RECORDS=20
lib_start_kafka events:3 sluice.dlq:1
lib_start_receiver --mode '{"mode":"slow","delay_ms":40}'
sluice_write_config_with "$WORK/sluice.json" webhook-batch-ids
cat >"$WORK/sinks.d/array.json" <<JSON
{ "name": "hook-array", "type": "webhook", "topics": ["events"],
  "batch": { "max_records": $MAX_RECORDS, "linger_ms": 20 },
  "webhook": { "url": "$RECEIVER_URL/array", "batch_format": "json_array", "secret": "$HTTP_TEST_SECRET",
               "allow_private_networks": true } }
JSON
make_records "$N" 97 "$WORK/records.tsv"

# Bursts of 3..41 records (odd sizes, spread over the 3 partitions by key), 60..180 ms apart.
produce_bursts() {
    local sizes=(7 13 29 3 17 41 11 5 23 37 9 31) pauses=(0.06 0.18 0.09 0.12 0.15) i=0 from=1 size
    while [ "$from" -le "$N" ]; do
        size=${sizes[i % ${#sizes[@]}]}
        sed -n "${from},$((from + size - 1))p" "$WORK/records.tsv" >"$WORK/burst.tsv"
        lib_produce events "$WORK/burst.tsv"
        from=$((from + size))
        sleep "${pauses[i % ${#pauses[@]}]}"
        i=$((i + 1))
    done
    echo "produced $N records in $i bursts"
}

distinct_ids() { rx_records_ok /array | jq -s 'unique_by(.id) | length'; }
at_least() { [ "$(distinct_ids)" -ge "$1" ]; }

# The producer starts once sluice has its partitions, so batches are cut as records come (not
# from a backlog, where they would be full).
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for grep -q 'assigned events \[2\]' "$SLUICE_LOG"
lib__spawn "$WORK/producer.log" produce_bursts
PRODUCER_PID=$LIB_LAST_PID
TIMEOUT=60 lib_wait_for at_least 300
# The kill lands with a batch in flight on every partition: the receiver holds the next
# requests unanswered until one of each partition waits.
lib_receiver_mode '{"mode":"hang"}'
pending() { [ "$(lib_receiver_stats | jq .pending)" -ge 3 ]; }
TIMEOUT=30 lib_wait_for pending
sleep 0.5   # a periodic commit (commit_interval_ms 200) after the batches went
sluice_kill9
lib_receiver_mode '{"mode":"slow","delay_ms":40}'
before=$(distinct_ids)
lib__alive "$PRODUCER_PID" || lib_fail "the producer had finished before the kill: the kill did not land mid-stream"
[ "$before" -lt "$N" ] || lib_fail "all $N records went before the kill"
lib_log "killed mid-stream: $before of $N records delivered, the producer still running"

sluice_start "$WORK/sluice.json"
rc=0
wait "$PRODUCER_PID" || rc=$?
lib__forget_pid "$PRODUCER_PID"
[ "$rc" -eq 0 ] || lib_fail "the producer failed ($rc): $(cat "$WORK/producer.log")"
TIMEOUT=120 lib_wait_for at_least "$N"
sleep 0.5
sluice_stop

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
    lib_fail "a record was delivered under $ids_per_record_max different webhook-ids (batches cut differently after the restart)"
[ "$records_repeated" -eq "$records_in_repeated_batches" ] ||
    lib_fail "$records_repeated records were delivered more than once, but the repeated batches hold $records_in_repeated_batches"
lib_pass "$records_repeated records delivered more than once, each time under the same webhook-id"

# A repeated webhook-id always carries a byte-identical body.
read -r repeated_ids differing <<<"$(jq -rs 'group_by(.w) | map(select(length > 1))
    | "\(length) \(map(select((map(.body) | unique | length) > 1)) | length)"' "$WORK/requests.ndjson")"
[ "$repeated_ids" -gt 0 ] || lib_fail "no webhook-id was sent twice: nothing was in flight at the kill"
[ "$differing" -eq 0 ] || lib_fail "$differing of $repeated_ids repeated webhook-ids carried different bodies"
lib_pass "$repeated_ids webhook-ids were sent more than once, each time with the same body"

# The case this is about: batches cut by linger (fewer than max_records), sent again whole.
partial_repeats=$(jq -s --argjson max "$MAX_RECORDS" \
    'group_by(.w) | map(select(length > 1 and (.[0].records | length) < $max)) | length' "$WORK/requests.ndjson")
partial_total=$(jq -s --argjson max "$MAX_RECORDS" \
    '[.[] | select((.records | length) < $max) | .w] | unique | length' "$WORK/requests.ndjson")
recorded=$(grep -c 'the last commit recorded a batch' "$WORK/sluice.2.log" || true)
[ "$recorded" -gt 0 ] || lib_fail "the restarted sluice found no batch end in the commit metadata"
lib_pass "$partial_total of the batches were cut by linger; $partial_repeats of them were re-sent after the restart" \
    "with the same offsets ($recorded batch ends read back from the commit metadata)"

n=$(verify_all_signatures /array "$HTTP_TEST_SECRET" 20)
lib_pass "signatures verify across the restart ($n checked)"
lib_summary
