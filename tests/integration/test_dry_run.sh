#!/usr/bin/env bash
# sluice run --dry-run maps and batches records and prints what it would send, sending nothing:
# the sink's file is never written, no dead letter is produced (it is printed), nothing is
# committed, and the real consumer group is left alone.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init

lib_start_kafka preview:2 sluice.dlq:1
sluice_write_config "$WORK/sluice.json" dry-test
cat >"$WORK/sinks.d/preview.json" <<JSON
{ "name": "preview", "type": "file", "topics": ["preview"], "batch": { "max_records": 5, "linger_ms": 5 },
  "file": { "path": "$WORK/never.ndjson" } }
JSON
make_records 20 3 "$WORK/r.tsv"
printf '\xff\t{"id":"bad","seq":99}\n' >>"$WORK/r.tsv"
lib_produce preview "$WORK/r.tsv"

lib__spawn "$WORK/dry.out" "$SLUICE_BUILD_DIR/sluice" run --dry-run -c "$WORK/sluice.json"
SLUICE_PID=$LIB_LAST_PID
SLUICE_LOG=$WORK/dry.out
dry_done() { [ "$(jq -R 'fromjson? | select(.records) | .records | length' "$WORK/dry.out" 2>/dev/null | awk '{s += $1} END {print s + 0}')" -ge 20 ] &&
             grep -q '"dead_letter"' "$WORK/dry.out"; }
TIMEOUT=60 lib_wait_for dry_done
sluice_stop

shown=$(jq -R 'fromjson? | select(.records) | .records[] | .would_send' "$WORK/dry.out" | jq -rs 'map(fromjson | .value.seq) | sort | map(tostring) | join(",")')
[ "$shown" = "$(seq -s, 0 19)" ] || lib_fail "the dry run showed seqs $shown"
jq -R 'fromjson? | select(.records) | .records_in_batch' "$WORK/dry.out" | awk '$1 > 5 { exit 1 }' ||
    lib_fail "a printed batch is larger than max_records"
grep -q '"reason":"key is not valid UTF-8"' "$WORK/dry.out" || lib_fail "the bad record's dead letter was not shown"
lib_pass "the dry run printed all 20 records as the sink would write them, in batches of at most 5, and the dead letter"

[ ! -e "$WORK/never.ndjson" ] || [ ! -s "$WORK/never.ndjson" ] || lib_fail "the dry run wrote the sink's file"
[ "$(kcat -C -q -b "$KAFKA_BROKERS" -t sluice.dlq -o beginning -e 2>/dev/null | wc -l)" -eq 0 ] || lib_fail "the dry run produced a dead letter"
for g in dry-test dry-test.dry-run; do
    "$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g "$g" -t preview | awk '$2 != -1 { exit 1 }' ||
        lib_fail "group $g has committed offsets after a dry run"
done
lib_pass "nothing was written, produced or committed"
lib_summary
