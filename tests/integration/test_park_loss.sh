#!/usr/bin/env bash
# Parking under on_failure block, and loss reported when retention outruns a parked sink.
#   block: a webhook sink with on_failure block whose receiver refuses records (400) is parked
#   once a batch runs out of attempts; nothing is dead-lettered; when the receiver accepts
#   again, the sink unparks by itself and every record arrives.
#   loss: a webhook sink parked behind a hanging receiver while a file sink takes a flood of
#   records into a one-partition topic, more than the embedded Kafka keeps (~5 MiB): the log
#   start moves past the parked sink's position. The loss is counted (metric), logged, shown in
#   /sinks and marked in the dead-letter topic with the lost range; once the receiver answers,
#   the sink goes on from the log start, and lost + delivered = produced, exactly.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

lib_start_kafka strict:1 flood:1 sluice.dlq:1
lib_start_receiver --mode '{"mode":"status","status":400}'
STRICT_URL=$RECEIVER_URL STRICT_OUT=$RECEIVER_OUT
lib_start_receiver --mode '{"mode":"hang"}'
FLOOD_URL=$RECEIVER_URL FLOOD_OUT=$RECEIVER_OUT
use_strict() { RECEIVER_URL=$STRICT_URL RECEIVER_OUT=$STRICT_OUT; }
use_flood() { RECEIVER_URL=$FLOOD_URL RECEIVER_OUT=$FLOOD_OUT; }

sluice_write_config "$WORK/sluice.json" park-loss
sluice_admin_on "$WORK/sluice.json"

cat >"$WORK/sinks.d/strict.json" <<JSON
{ "name": "strict", "type": "webhook", "topics": ["strict"], "on_failure": "block",
  "batch": { "max_records": 10, "linger_ms": 50 },
  "retry": { "max_attempts": 2, "initial_backoff_ms": 100, "max_backoff_ms": 300 },
  "webhook": { "url": "$STRICT_URL/strict", "batch_format": "json_array", "allow_private_networks": true } }
JSON
cat >"$WORK/sinks.d/flood-file.json" <<JSON
{ "name": "flood-file", "type": "file", "topics": ["flood"], "file": { "path": "$WORK/flood.ndjson" } }
JSON
cat >"$WORK/sinks.d/flood-hook.json" <<JSON
{ "name": "flood-hook", "type": "webhook", "topics": ["flood"], "park_after_ms": 500,
  "max_buffered_records": 2000,
  "batch": { "max_records": 500, "linger_ms": 20 },
  "retry": { "max_attempts": 100000, "initial_backoff_ms": 100, "max_backoff_ms": 500 },
  "webhook": { "url": "$FLOOD_URL/flood", "batch_format": "json_array", "timeout_ms": 500,
               "allow_private_networks": true, "circuit_breaker": { "failures": 1000 } } }
JSON

make_records 20 5 "$WORK/strict.tsv" 0
lib_produce strict "$WORK/strict.tsv"
sluice_start "$WORK/sluice.json"

# --- on_failure block -------------------------------------------------------------------------
TIMEOUT=60 lib_wait_for admin_sink_is strict parked
reason=$(admin_sink strict .parked.reason)
case $reason in *"HTTP 400"*"on_failure block"*) ;; *) lib_fail "unexpected park reason: $reason" ;; esac
sleep 1
! topic_has sluice.dlq 1 || lib_fail "a sink with on_failure block dead-lettered: $(lib_consume sluice.dlq 3)"
lib_pass "on_failure block: refused records park the sink (\"$reason\"), nothing dead-lettered"
use_strict
lib_receiver_mode '{"mode":"ok"}'
TIMEOUT=60 lib_wait_for admin_sink_is strict running
TIMEOUT=30 lib_wait_for rx_has /strict 2 200
# every record once after deduplicating on its id (a redelivery of a refused batch is allowed)
repeats=$(rx_check_exactly_once /strict 20) || lib_fail "strict: $repeats"
lib_pass "once the receiver accepts, the blocked sink unparks by itself and all 20 records arrive"

# --- loss below the log start -----------------------------------------------------------------
# ~270-byte records: 40,000 of them are ~10 MiB, about twice what the mock keeps per partition.
FLOOD=40000
awk -v n="$FLOOD" 'BEGIN { pad = sprintf("%200s", ""); gsub(/ /, "x", pad)
    for (i = 0; i < n; i++) printf "k-%d\t{\"id\":\"k-%d\",\"seq\":%d,\"pad\":\"%s\"}\n", i % 100, i % 100, i, pad }' >"$WORK/flood.tsv"
make_records 1 1 "$WORK/first.tsv" 0
lib_produce flood "$WORK/first.tsv"
TIMEOUT=60 lib_wait_for has_lines "$WORK/flood.ndjson" 1
# In chunks the file sink takes as they come (it must lose nothing): the hanging receiver makes
# flood-hook fill its 2000-record buffer, hold the partition paused for 500 ms and be parked;
# the file sink goes on.
split -l 2000 "$WORK/flood.tsv" "$WORK/flood.chunk."
done_lines=1
for chunk in "$WORK"/flood.chunk.*; do
    lib_produce flood "$chunk"
    done_lines=$((done_lines + $(wc -l <"$chunk")))
    TIMEOUT=60 lib_wait_for has_lines "$WORK/flood.ndjson" "$done_lines"
    [ "$done_lines" -ne 2001 ] || TIMEOUT=60 lib_wait_for admin_sink_is flood-hook parked
done
[ "$(lines_of "$WORK/flood.ndjson")" -eq $((FLOOD + 1)) ] || lib_fail "the file sink lost records"
[ "$(admin /metrics | awk '$1 == "sluice_sink_records_lost_total{sink=\"flood-file\",type=\"file\"}" { print $2 }')" = 0 ] ||
    lib_fail "the healthy file sink reports a loss"
lost_metric() { admin /metrics | awk '$1 == "sluice_sink_records_lost_total{sink=\"flood-hook\",type=\"webhook\"}" { print $2 }'; }
# Every record is produced: the log start no longer moves. The sink looks at it every 250 ms;
# the loss is complete once it counts every offset from 1 (offset 0 was delivered) up to it.
log_start=$(kcat -C -q -b "$KAFKA_BROKERS" -t flood -o beginning -c 1 -e -f '%o\n')
[ "$log_start" -gt 1 ] || lib_fail "the flood did not move the log start (it is $log_start)"
loss_complete() { local n; n=$(lost_metric); [ -n "$n" ] && [ $((1 + n)) -eq "$log_start" ]; }
TIMEOUT=30 lib__wait_until "$SLUICE_PID" loss_complete ||
    lib_fail "flood-hook counts $(lost_metric) lost records, the log start is $log_start"
lost=$(lost_metric)
lib_log "flood-hook lost $lost records while parked"
grep -q 'sink=flood-hook .*lost: offsets 1\.\.' "$SLUICE_LOG" || lib_fail "no log line for the lost range"
[ "$(admin_sink flood-hook .loss.records)" = "$lost" ] || lib_fail "/sinks does not show the loss: $(admin_sink flood-hook .loss)"
case $(admin_sink flood-hook .loss.last) in lost:*) ;; *) lib_fail "/sinks does not say what was lost: $(admin_sink flood-hook .loss)" ;; esac
# One marker per range reported; together they cover 1 .. 1 + lost, without a gap or overlap.
# The markers are produced as the ranges are found: wait until one ends at the log start.
markers() { LIB_CONSUME_FORMAT='%h\n' lib_consume sluice.dlq 100 | grep 'sluice.sink=flood-hook' >"$WORK/markers" || true; }
markers_reach_log_start() { markers; grep -q "sluice\.lost\.end=$log_start\([^0-9]\|\$\)" "$WORK/markers"; }
TIMEOUT=30 lib_wait_for markers_reach_log_start
ranges=$(sed -n 's/.*sluice\.offset=\([0-9]*\),.*sluice\.lost\.end=\([0-9]*\).*/\1 \2/p' "$WORK/markers" | sort -n)
[ -n "$ranges" ] || lib_fail "no loss marker in the dead-letter topic: $(cat "$WORK/markers")"
covered=$(awk 'BEGIN { end = 1 } { if ($1 != end) { print "gap"; exit } end = $2 } END { print end }' <<<"$ranges")
lost_end=$(tail -1 <<<"$covered")
[ "$lost_end" = $((1 + lost)) ] || lib_fail "the markers cover 1..$covered, not the $lost lost records: $ranges"
lib_pass "retention outran the parked sink: $lost records lost, counted, logged, in /sinks and marked in the dead-letter topic (offsets 1..$((lost_end - 1)))"

use_flood
lib_receiver_mode '{"mode":"ok"}'
want=$((FLOOD + 1 - lost))
flood_distinct() { rx_records_ok /flood | jq -rs 'map(.offset) | unique | length'; }
flood_has() { [ "$(flood_distinct)" -ge "$1" ]; }
TIMEOUT=120 lib_wait_for flood_has "$want"
sleep 1
got=$(flood_distinct)
[ "$got" -eq "$want" ] || lib_fail "flood-hook received $got distinct records, expected $want (= $((FLOOD + 1)) produced - $lost lost)"
first=$(rx_records_ok /flood | jq -rs 'map(.offset) | map(select(. > 0)) | min')
[ "$first" -eq "$lost_end" ] || lib_fail "after the loss the sink went on from offset $first, not the log start $lost_end"
lib_pass "after the loss the sink went on from the log start: $got records delivered + $lost lost = $((FLOOD + 1)) produced"
sluice_stop
lib_summary
