#!/usr/bin/env bash
# Two ways the webhook sink stops sending instead of burning retries:
#   410 Gone parks the sink: nothing more is sent, nothing is dead-lettered, the records wait
#   (their partition pauses) until sluice restarts, and then they are all delivered;
#   the circuit breaker: after 3 consecutive 503s it holds requests for the cool-down and
#   probes with one request at a time, so a batch with 8 attempts survives a 503 spell that
#   would have used them up, and goes through once the receiver answers again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

lib_start_kafka gone:1 flaky:1 sluice.dlq:1
lib_start_receiver --mode '{"mode":"status","status":410}'
GONE_URL=$RECEIVER_URL GONE_OUT=$RECEIVER_OUT
# 503 for exactly 5 requests, then 200: 3 failures open the breaker, two probes a cool-down
# apart fail, the third gets through (by count: the batch's 8 attempts never run out, however
# slowly the test looks).
lib_start_receiver --mode '{"mode":"status","status":503,"count":5}'
FLAKY_URL=$RECEIVER_URL FLAKY_OUT=$RECEIVER_OUT

use_gone() { RECEIVER_URL=$GONE_URL RECEIVER_OUT=$GONE_OUT; }
use_flaky() { RECEIVER_URL=$FLAKY_URL RECEIVER_OUT=$FLAKY_OUT; }

sluice_write_config "$WORK/sluice.json" webhook-park
cat >"$WORK/sinks.d/gone.json" <<JSON
{ "name": "hook-gone", "type": "webhook", "topics": ["gone"],
  "batch": { "max_records": 10, "linger_ms": 100 },
  "retry": { "max_attempts": 3, "initial_backoff_ms": 50, "max_backoff_ms": 100 },
  "webhook": { "url": "$GONE_URL/gone", "batch_format": "json_array", "allow_private_networks": true } }
JSON
cat >"$WORK/sinks.d/flaky.json" <<JSON
{ "name": "hook-breaker", "type": "webhook", "topics": ["flaky"],
  "batch": { "max_records": 10, "linger_ms": 100 },
  "retry": { "max_attempts": 8, "initial_backoff_ms": 50, "max_backoff_ms": 200 },
  "webhook": { "url": "$FLAKY_URL/flaky", "batch_format": "json_array", "allow_private_networks": true,
               "circuit_breaker": { "failures": 3, "cooldown_ms": 1500 } } }
JSON
make_records 20 5 "$WORK/gone.tsv" 0
make_records 10 5 "$WORK/flaky.tsv" 0
lib_produce gone "$WORK/gone.tsv"
lib_produce flaky "$WORK/flaky.tsv"
sluice_start "$WORK/sluice.json"

# --- circuit breaker --------------------------------------------------------------------------
use_flaky
TIMEOUT=60 lib_wait_for rx_has /flaky 1 200
[ "$(rx_count /flaky 503)" -eq 5 ] || lib_fail "expected 5 answers 503 before the 200, got $(rx_count /flaky 503)"
gaps=$(jq -rs '[.[] | select(.path == "/flaky")] as $r
    | [range(3; $r | length) | $r[.].received_ms - $r[. - 1].answered_ms] | map(tostring) | join(" ")' "$FLAKY_OUT")
for g in $gaps; do
    [ "$g" -ge 1490 ] || lib_fail "the breaker let a request through ${g} ms after a failure (cool-down 1500): gaps $gaps"
done
failed=$(rx_count /flaky 503)
grep -q 'circuit open after 3 consecutive failures' "$SLUICE_LOG" || lib_fail "the breaker's opening is not logged"
grep -q 'circuit closed' "$SLUICE_LOG" || lib_fail "the breaker's closing is not logged"
lib_pass "circuit breaker: after 3 failures one probe per 1500 ms cool-down (gaps after the third: $gaps ms)"

RECEIVER_OUT=$FLAKY_OUT
[ "$(rx_check_exactly_once /flaky 10)" -eq 0 ] || lib_fail "the breaker's batch was delivered twice"
lib_pass "the batch survived $failed failed requests on 8 attempts and was delivered once"

# --- 410 parks the sink ---------------------------------------------------------------------
use_gone
TIMEOUT=30 lib_wait_for rx_has /gone 1 410
# The receiver records the 410 when it answers; sluice logs the park once it has read it.
TIMEOUT=30 lib_wait_for grep -q 'PARKED: HTTP 410 from POST 127.0.0.1' "$SLUICE_LOG"
sleep 2
[ "$(rx_count /gone)" -eq 1 ] || lib_fail "a parked sink sent $(rx_count /gone) requests"
lib_receiver_mode '{"mode":"ok"}'
sleep 1
[ "$(rx_count /gone)" -eq 1 ] || lib_fail "a parked sink sent again before a restart"
! topic_has sluice.dlq 1 || lib_fail "a parked sink dead-lettered records: $(lib_consume sluice.dlq 5)"
lib_pass "410 parks the sink: one request, nothing dead-lettered, nothing sent for 3 s, even once the endpoint is back"

# The operator's restart, here with kill -9 (SIGTERM of a parked sink, which waits out the
# shutdown timeout, is test_webhook_park_stop.sh).
sluice_kill9
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for rx_has /gone 2 200
sleep 0.5
sluice_stop
[ "$(rx_check_exactly_once /gone 20)" -eq 0 ] || lib_fail "records went twice after the restart"
! topic_has sluice.dlq 1 || lib_fail "records were dead-lettered: $(lib_consume sluice.dlq 5)"
lib_pass "after a restart the parked records were all delivered, once each"
lib_summary
