#!/usr/bin/env bash
# SIGTERM stops a sluice whose webhook sink is parked by a 410: sluice exits 0, the committed
# offset is exactly what the receiver acknowledged (200) before the 410, nothing is
# dead-lettered, and a restart delivers the held records.
# The bound: the parked sink never answers its held batch, so the router waits
# shutdown_timeout_ms for the drain, then again for the revoke when the consumer closes, and
# hands the partition over: 2 x shutdown_timeout_ms + 5 s. (Ending the drain at once needs the
# router to ask sinks, when the drain starts, to hand back what they hold, and to take a
# retry verdict during the drain as "not done, position kept" instead of retrying it.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

GROUP=webhook-park-stop SHUTDOWN_MS=3000
lib_start_kafka gone:1 sluice.dlq:1
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
sluice_write_config_with "$WORK/sluice.json" "$GROUP" shutdown_timeout_ms=$SHUTDOWN_MS
cat >"$WORK/sinks.d/gone.json" <<JSON
{ "name": "hook-gone", "type": "webhook", "topics": ["gone"],
  "batch": { "max_records": 10, "linger_ms": 50 },
  "retry": { "max_attempts": 3, "initial_backoff_ms": 50, "max_backoff_ms": 100 },
  "webhook": { "url": "$RECEIVER_URL/gone", "batch_format": "json_array", "allow_private_networks": true } }
JSON
make_records 20 5 "$WORK/first.tsv" 0
make_records 30 5 "$WORK/second.tsv" 20
lib_produce gone "$WORK/first.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for rx_has /gone 2 200
# Let the commit of the acknowledged 20 go out (commit_interval_ms 200), then the endpoint goes.
committed() { "$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g "$GROUP" -t gone 2>/dev/null | awk '$1 == 0 { print $2 }'; }
committed_is() { [ "$(committed)" = "$1" ]; }
TIMEOUT=20 lib_wait_for committed_is 20
lib_receiver_mode '{"mode":"status","status":410}'
lib_produce gone "$WORK/second.tsv"
TIMEOUT=30 lib_wait_for rx_has /gone 1 410
# The receiver records the 410 when it answers; sluice logs the park once it has read it.
TIMEOUT=30 lib_wait_for grep -q 'PARKED: HTTP 410' "$SLUICE_LOG"
acked=$(rx_records_ok /gone | jq -s 'map(.offset) | max + 1')
[ "$acked" -eq 20 ] || lib_fail "$acked records acknowledged before the 410, expected 20"

t0=$(date +%s%N)
sluice_stop
elapsed=$((($(date +%s%N) - t0) / 1000000))
# (the 5 s of slack scale with SLUICE_TMOUT_MULTIPLIER, as every allowance for a slow build)
[ "$elapsed" -le $((2 * SHUTDOWN_MS + $(lib_tmout 5) * 1000)) ] ||
    lib_fail "SIGTERM of a parked sink took $elapsed ms (2 x shutdown_timeout_ms $SHUTDOWN_MS + 5000)"
grep -q 'shutdown: sinks did not finish within' "$SLUICE_LOG" || lib_fail "the drain's timeout is not logged"
lib_pass "SIGTERM with a 410-parked webhook sink: exit 0 after $elapsed ms"

c=$(committed)
[ "$c" = "$acked" ] || lib_fail "committed offset $c after the stop, but the receiver acknowledged up to $acked"
! topic_has sluice.dlq 1 || lib_fail "records were dead-lettered: $(lib_consume sluice.dlq 5)"
lib_pass "committed $c, exactly what was acknowledged; nothing dead-lettered"

lib_receiver_mode '{"mode":"ok"}'
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for rx_has /gone 5 200
sleep 0.5
sluice_stop
[ "$(rx_check_exactly_once /gone 50)" -eq 0 ] || lib_fail "records went twice"
lib_pass "after a restart the held records were delivered, once each"
lib_summary
