#!/usr/bin/env bash
# One broken target does not stall the others. A redis sink and a webhook sink read one topic; a
# paced producer writes 2000 records/s into it throughout.
#   Unimpeded (10 s): both targets answer; redis's delivery rate over the window is the baseline.
#   Outage (30 s): the webhook receiver hangs for 15 s, then answers 503 for 15 s. The webhook
#   sink fills its buffer, holds its partitions paused for park_after_ms, and is parked; redis
#   goes on: its rate over each half of the outage must be at least half the baseline.
#   The parked state shows in /sinks and /metrics; nothing is dead-lettered.
#   Recovery: the receiver answers again; the webhook sink unparks, the consumer rewinds for it
#   and it receives every record of both phases; redis got every record exactly once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

lib_start_kafka iso:8 sluice.dlq:1
lib_start_redis
lib_start_receiver

sluice_write_config "$WORK/sluice.json" isolation
sluice_admin_on "$WORK/sluice.json"

redis_sink_file "$WORK/sinks.d/cache.json" cache iso '{"shape": "string", "key": "iso:{$.seq}"}'
# The webhook never gives a batch up here (it must catch up with everything afterwards); with
# 5000 records buffered it holds its partitions paused, and is parked after 1 s of that.
cat >"$WORK/sinks.d/hook.json" <<JSON
{ "name": "hook", "type": "webhook", "topics": ["iso"],
  "batch": { "max_records": 100, "linger_ms": 20 },
  "retry": { "max_attempts": 100000, "initial_backoff_ms": 100, "max_backoff_ms": 1000 },
  "park_after_ms": 1000, "max_buffered_records": 5000,
  "webhook": { "url": "$RECEIVER_URL/hook", "batch_format": "json_array", "timeout_ms": 1000,
               "allow_private_networks": true } }
JSON

redis_keys() { echo $(($(rcli DBSIZE) - $(rcli EXISTS sluice:positions:cache))); }
redis_has() { [ "$(redis_keys)" -ge "$1" ]; }
# Distinct (partition, offset) pairs the receiver answered 200 for.
hook_distinct() { rx_records_ok /hook | jq -rs 'map("\(.partition):\(.offset)") | unique | length'; }
hook_has() { [ "$(hook_distinct)" -ge "$1" ]; }

# Produces TICKS chunks of CHUNK records, one every 0.5 s, from seq FROM (a paced producer:
# the rate a data product flows at, well within what both sinks can do when healthy).
CHUNK=${SLUICE_ISOLATION_CHUNK:-1000}
paced_produce() {
    local from=$1 ticks=$2 next
    for ((i = 0; i < ticks; i++)); do
        next=$(($(lib_now_ms) + 500))
        make_records "$CHUNK" 1000 "$WORK/chunk.tsv" $((from + i * CHUNK))
        lib_produce iso "$WORK/chunk.tsv"
        while [ "$(lib_now_ms)" -lt "$next" ]; do sleep 0.05; done
    done
}
# window_rate FROM SECONDS: produces for SECONDS from seq FROM; WINDOW_RATE: the records per
# second redis delivered over that window.
window_rate() {
    local from=$1 seconds=$2 before start
    before=$(redis_keys)
    start=$(lib_now_ms)
    paced_produce "$from" $((seconds * 2))
    WINDOW_RATE=$(awk -v d=$(($(redis_keys) - before)) -v t=$(($(lib_now_ms) - start)) 'BEGIN { printf "%.0f", d * 1000 / t }')
}

sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for admin /readyz
# A first record through both sinks: the group has joined and both targets are connected.
make_records 1 1 "$WORK/warm.tsv" 0
lib_produce iso "$WORK/warm.tsv"
TIMEOUT=60 lib_wait_for redis_has 1
TIMEOUT=60 lib_wait_for hook_has 1

# --- unimpeded: both targets answer ------------------------------------------------------------
window_rate 1 10
rate_ok=$WINDOW_RATE
A=$((1 + 20 * CHUNK))
lib_log "unimpeded: redis delivered $rate_ok records/s"

# --- outage: 15 s of hanging, then 15 s of 503 --------------------------------------------------
lib_receiver_mode '{"mode":"hang"}'
window_rate "$A" 15
rate_hang=$WINDOW_RATE
state=$(admin /sinks | jq -c '.sinks[] | select(.name == "hook") | {state, parked, parks}')
lib_log "webhook after 15 s of hanging: $state"
[ "$(jq -r .state <<<"$state")" = parked ] || lib_fail "the webhook sink is not parked after 15 s of a hanging receiver"
admin /metrics >"$WORK/metrics.txt"
grep -q '^sluice_sink_parked{sink="hook",type="webhook"} 1$' "$WORK/metrics.txt" ||
    lib_fail "sluice_sink_parked is not 1 for the parked webhook sink"
grep -q '^sluice_sink_parked{sink="cache",type="redis"} 0$' "$WORK/metrics.txt" ||
    lib_fail "sluice_sink_parked is not 0 for the redis sink"
lib_receiver_mode '{"mode":"status","status":503}'
window_rate $((A + 30 * CHUNK)) 15
rate_503=$WINDOW_RATE
TOTAL=$((A + 60 * CHUNK))
admin_sink_is hook parked ||
    lib_fail "the webhook sink is not parked while its receiver answers 503"
lib_log "redis rate: unimpeded $rate_ok records/s; receiver hanging $rate_hang; receiver answering 503 $rate_503"
for rate in "$rate_hang" "$rate_503"; do
    ratio=$(awk -v a="$rate_ok" -v b="$rate" 'BEGIN { printf "%.2f", b / a }')
    awk -v r="$ratio" 'BEGIN { exit !(r >= 0.5) }' ||
        lib_fail "redis slowed down to $ratio of its unimpeded rate while the webhook was down (at least 0.5 expected)"
done
lib_pass "during a 30 s webhook outage redis kept delivering: $rate_hang and $rate_503 records/s against $rate_ok unimpeded (ratios $(awk -v a="$rate_ok" -v b="$rate_hang" -v c="$rate_503" 'BEGIN { printf "%.2f and %.2f", b / a, c / a }')); the webhook sink was parked"

# --- recovery ---------------------------------------------------------------------------------
lib_receiver_mode '{"mode":"ok"}'
TIMEOUT=300 lib_wait_for hook_has "$TOTAL"
TIMEOUT=30 lib_wait_for admin_sink_is hook running
grep -q 'unparked after' "$SLUICE_LOG" || lib_fail "no 'unparked' line in the log"
got=$(redis_keys)
[ "$got" -eq "$TOTAL" ] || lib_fail "redis holds $got keys, expected $TOTAL"
skipped=$(admin_sink cache .skipped)
[ "$skipped" -gt 0 ] || lib_fail "redis skipped nothing: the consumer did not rewind for the webhook sink"
sluice_stop
! topic_has sluice.dlq 1 || lib_fail "records were dead-lettered: $(lib_consume sluice.dlq 3)"
hook=$(hook_distinct)
[ "$hook" -eq "$TOTAL" ] || lib_fail "the webhook receiver has $hook distinct records, expected $TOTAL"
lib_pass "after the outage the webhook sink caught up: all $TOTAL records; redis skipped $skipped records it had while the consumer rewound for it"
lib_summary
