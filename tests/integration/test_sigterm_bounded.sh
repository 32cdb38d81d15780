#!/usr/bin/env bash
# SIGTERM's drain is bounded: with a webhook receiver that never answers, sluice waits up to
# shutdown_timeout_ms for the batches at the sinks, then commits only what every sink finished
# and exits 0. Nothing the hanging sink did not acknowledge is committed: a restart with the
# receiver answering delivers all of it, and the file sink on the same topic writes nothing twice.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

N=300
lib_start_kafka events:2 sluice.dlq:1
lib_start_receiver
sluice_write_config "$WORK/sluice.json" bounded-drain
jq '.shutdown_timeout_ms = 3000' "$WORK/sluice.json" >"$WORK/s.tmp" && mv "$WORK/s.tmp" "$WORK/sluice.json"
cat >"$WORK/sinks.d/file.json" <<JSON
{ "name": "events-file", "type": "file", "topics": ["events"],
  "batch": { "max_records": 50, "linger_ms": 5 }, "file": { "path": "$WORK/events.ndjson" } }
JSON
cat >"$WORK/sinks.d/hook.json" <<JSON
{ "name": "hook", "type": "webhook", "topics": ["events"],
  "batch": { "max_records": 50, "linger_ms": 5 },
  "retry": { "max_attempts": 1000, "initial_backoff_ms": 100, "max_backoff_ms": 1000 },
  "webhook": { "url": "$RECEIVER_URL/hook", "batch_format": "json_array", "timeout_ms": 60000,
               "allow_private_networks": true } }
JSON

lib_receiver_mode '{"mode":"hang"}'
make_records "$N" 20 "$WORK/records.tsv"
lib_produce events "$WORK/records.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for has_lines "$WORK/events.ndjson" "$N"
hook_pending() { [ "$(lib_receiver_stats | jq .pending)" -ge 1 ]; }
TIMEOUT=30 lib_wait_for hook_pending
lib_pass "the file sink has all $N records; the webhook's requests hang"

start=$(lib_now_ms)
sluice_stop
took=$(( $(lib_now_ms) - start ))
[ "$took" -lt $(( (3 + 5) * 1000 * ${SLUICE_TMOUT_MULTIPLIER:-1} )) ] || lib_fail "the drain took $took ms, shutdown_timeout_ms is 3000"
[ "$took" -ge 2500 ] || lib_fail "sluice stopped after $took ms without waiting for the hanging sink"
grep -q 'Terminated: draining' "$SLUICE_LOG" || lib_fail "no drain logged"
lib_pass "SIGTERM with a hanging sink: sluice waited the shutdown timeout and exited 0 after $took ms"

"$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g bounded-drain -t events >"$WORK/committed"
[ "$(wc -l <"$WORK/committed")" -eq 2 ] || lib_fail "committed offsets: $(cat "$WORK/committed")"
awk '$2 > 0 { exit 1 }' "$WORK/committed" || lib_fail "offsets the webhook never acknowledged were committed: $(cat "$WORK/committed")"
lib_pass "nothing past what every sink acknowledged was committed: $(tr '\n' ' ' <"$WORK/committed")"

lib_receiver_mode '{"mode":"ok"}'
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for rx_has /hook 1 200
wait_all() { [ "$(rx_records_ok /hook | jq -rs 'map(.value.seq) | unique | length')" -ge "$N" ]; }
TIMEOUT=60 lib_wait_for wait_all
sluice_stop
repeats=$(rx_check_exactly_once /hook "$N")
check_file_output "$WORK/events.ndjson" "$N"
lib_pass "after a restart the webhook got all $N records ($repeats repeated deliveries), the file sink wrote none twice"
lib_summary
