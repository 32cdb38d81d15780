#!/usr/bin/env bash
# How the webhook sink meets a failing receiver, one fault after the other on one sink
# (json_array batches of 10 on one partition):
#   a burst of 503s: retried with the same webhook-id and the same body until a 200; with one
#   record per request, only the records not yet accepted are sent again;
#   429 with Retry-After: 2 and with an HTTP date, and 408 and 500 with Retry-After: 2: nothing
#   is sent before that time (measured by the receiver between that answer and the next request);
#   a 400: the batch goes to the dead-letter topic with the status and the response body;
#   a receiver that never answers: the request times out after timeout_ms, then is retried.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

lib_start_kafka events:1 spread:3 sluice.dlq:1
# A second sink, one record per request (default order: "partition"), reading the same records
# from a topic of 3 partitions, to its own receiver that answers 503 three times.
lib_start_receiver --mode '{"mode":"status","status":503,"count":3}'
SINGLE_OUT=$RECEIVER_OUT SINGLE_URL=$RECEIVER_URL
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
sluice_write_config "$WORK/sluice.json" webhook-faults
cat >"$WORK/sinks.d/single.json" <<JSON
{ "name": "hook-single", "type": "webhook", "topics": ["spread"],
  "batch": { "max_records": 10, "linger_ms": 100 },
  "retry": { "max_attempts": 20, "initial_backoff_ms": 100, "max_backoff_ms": 400 },
  "webhook": { "url": "$SINGLE_URL/single", "allow_private_networks": true } }
JSON
cat >"$WORK/sinks.d/hook.json" <<JSON
{ "name": "hook", "type": "webhook", "topics": ["events"],
  "batch": { "max_records": 10, "linger_ms": 100 },
  "retry": { "max_attempts": 20, "initial_backoff_ms": 100, "max_backoff_ms": 400 },
  "webhook": { "url": "$RECEIVER_URL/hook", "batch_format": "json_array", "secret": "$HTTP_TEST_SECRET",
               "timeout_ms": 1000, "circuit_breaker": { "failures": 10 }, "allow_private_networks": true } }
JSON
sluice_start "$WORK/sluice.json"

# phase SEQ_START COUNT: produce COUNT records, wait until they are all answered 200 (or, with
# a third argument, until that many more requests in all were recorded).
ok_records() {
    rx_records_ok /hook | jq -s 'unique_by(.id) | length'
}
at_least() {
    [ "$("$1")" -ge "$2" ]
}
produce() {
    make_records "$2" 7 "$WORK/batch.$1.tsv" "$1"
    lib_produce events "$WORK/batch.$1.tsv"
}

# --- 503 burst --------------------------------------------------------------------------------
lib_receiver_mode '{"mode":"status","status":503,"count":3}'
produce 0 30
lib_produce spread "$WORK/batch.0.tsv"
TIMEOUT=60 lib_wait_for at_least ok_records 30
[ "$(rx_count /hook 503)" -eq 3 ] || lib_fail "expected 3 answers 503, got $(rx_count /hook 503)"
# Every id answered 503 came again, same id and same body, until a 200.
jq -e -s '[.[] | select(.path == "/hook")] as $all
    | [$all[] | select(.status == 503)] | all(. as $bad
        | [$all[] | select(.seq > $bad.seq and .headers["webhook-id"] == $bad.headers["webhook-id"])] as $later
        | ($later | length) > 0 and ($later | all(.body == $bad.body)) and ($later | any(.status == 200)))' \
    "$RECEIVER_OUT" >/dev/null || lib_fail "a batch answered 503 was not retried with the same id and body"
jq -e -s '[.[] | select(.path == "/hook" and .status == 503)] | (map(.headers["webhook-timestamp"]) | length) == 3' \
    "$RECEIVER_OUT" >/dev/null || lib_fail "503 requests lack webhook-timestamp"
lib_pass "503 burst: each failed batch was retried with the same webhook-id and body until 200"

# One record per request: a batch retried after 503s sends again only what was not accepted.
single_ok() { RECEIVER_OUT=$SINGLE_OUT rx_count /single 200; }
TIMEOUT=30 lib_wait_for at_least single_ok 30
report=$(jq -rs '[.[] | select(.path == "/single")] as $r | "\($r | length) \([$r[] | select(.status == 503)] | length) \(
    [$r[] | select(.status == 200) | .headers["webhook-id"]] | (length - (unique | length)))"' "$SINGLE_OUT")
read -r sent failed twice <<<"$report"
if [ "$failed" -ne 3 ] || [ "$sent" -ne 33 ] || [ "$twice" -ne 0 ]; then
    lib_fail "single: $sent requests, $failed answered 503, $twice records accepted twice (want 33, 3, 0)"
fi
lib_pass "single: 3 records answered 503 were sent again, the 27 accepted ones were not (33 requests for 30 records)"
# Retries never reorder a partition: per partition, in arrival order, the first 2xx answer of
# each record has a higher offset than the one before (with order "key" a later record of
# another key could be accepted while an earlier one waited for its retry).
report=$(jq -rs '[.[] | select(.path == "/single" and .status == 200) | .body | fromjson]
    | unique_by(.id) | group_by(.partition) as $parts
    | "\($parts | length) \([$parts[] | select(length > 1)] | length)"' "$SINGLE_OUT")
read -r nparts nmulti <<<"$report"
[ "$nparts" -ge 2 ] && [ "$nmulti" -ge 2 ] || lib_fail "the 30 records should spread over the partitions: $nparts partitions"
bad=$(jq -rs '[.[] | select(.path == "/single" and .status == 200)] | sort_by(.seq) | map(.body | fromjson)
    | reduce .[] as $r ({seen: {}, list: []}; if .seen[$r.id] then . else .seen[$r.id] = true | .list += [$r] end)
    | .list | group_by(.partition)[] | . as $p
    | [range(1; length) | select($p[.].offset <= $p[. - 1].offset) | "\($p[.].partition):\($p[. - 1].offset)->\($p[.].offset)"][]' \
    "$SINGLE_OUT")
[ -z "$bad" ] || lib_fail "a later record of a partition was accepted before an earlier one: $bad"
lib_pass "single, 3 partitions, 503s then 200: per partition the first accepted deliveries have increasing offsets"

# --- 429 + Retry-After in seconds -------------------------------------------------------------
lib_receiver_mode '{"mode":"retry_after","status":429,"retry_after":"2","count":1}'
produce 30 10
TIMEOUT=60 lib_wait_for at_least ok_records 40
gap=$(jq -s '[.[] | select(.path == "/hook")] as $all | [$all[] | select(.status == 429)][0] as $r
    | [$all[] | select(.seq > $r.seq)][0].received_ms - $r.answered_ms' "$RECEIVER_OUT")
[ "$gap" -ge 1990 ] || lib_fail "after 429 with Retry-After: 2 the next request came ${gap} ms later"
[ "$gap" -lt 10000 ] || lib_fail "after Retry-After: 2 the next request took ${gap} ms"
lib_pass "429 with Retry-After: 2: the next request came ${gap} ms after the 429 (>= 2000)"

# --- 429 + Retry-After as an HTTP date ------------------------------------------------------
when=$(($(date +%s) + 3))
http_date=$(LC_ALL=C date -u -d "@$when" '+%a, %d %b %Y %H:%M:%S GMT')
lib_receiver_mode "{\"mode\":\"retry_after\",\"status\":429,\"retry_after\":\"$http_date\",\"count\":1}"
produce 40 10
TIMEOUT=60 lib_wait_for at_least ok_records 50
next=$(jq -s '[.[] | select(.path == "/hook")] as $all | [$all[] | select(.status == 429)][1] as $r
    | [$all[] | select(.seq > $r.seq)][0].received_ms' "$RECEIVER_OUT")
[ "$next" -ge $((when * 1000)) ] || lib_fail "Retry-After: $http_date, but the next request came $((when * 1000 - next)) ms early"
lib_pass "429 with Retry-After: $http_date: nothing was sent before that time"

# --- Retry-After on other retried statuses (408, 5xx) ----------------------------------------
# Without it the retry would come within max_backoff_ms (400 ms).
next_seq=70 ok=50
for status in 408 500; do
    lib_receiver_mode "{\"mode\":\"retry_after\",\"status\":$status,\"retry_after\":\"2\",\"count\":1}"
    produce $next_seq 1
    next_seq=$((next_seq + 1)) ok=$((ok + 1))
    TIMEOUT=60 lib_wait_for at_least ok_records $ok
    gap=$(jq -s --argjson s "$status" '[.[] | select(.path == "/hook")] as $all | [$all[] | select(.status == $s)][0] as $r
        | [$all[] | select(.seq > $r.seq)][0].received_ms - $r.answered_ms' "$RECEIVER_OUT")
    [ "$gap" -ge 1990 ] || lib_fail "after $status with Retry-After: 2 the next request came ${gap} ms later"
    lib_pass "$status with Retry-After: 2: the next request came ${gap} ms after it (>= 2000)"
done

# --- a 400 ----------------------------------------------------------------------------------
lib_receiver_mode '{"mode":"status","status":400,"count":1}'
produce 50 10
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 10
dlq=$(LIB_CONSUME_FORMAT='%h\n' lib_consume sluice.dlq 10)
[ "$(grep -c . <<<"$dlq")" -eq 10 ] || lib_fail "expected 10 dead letters: $dlq"
grep -v -q 'sluice.reason=HTTP 400 from POST 127.0.0.1' <<<"$dlq" &&
    lib_fail "a dead letter lacks the status: $(head -1 <<<"$dlq")"
grep -q '{"ok":false,"status":400}' <<<"$dlq" || lib_fail "the dead letters lack the response body: $(head -1 <<<"$dlq")"
[ "$(rx_count /hook 400)" -eq 1 ] || lib_fail "the 400 batch was sent $(rx_count /hook 400) times (a 400 is not retried)"
lib_pass "400: the batch was sent once and its 10 records dead-lettered with the status and the body"

# --- a receiver that does not answer --------------------------------------------------------
lib_receiver_mode '{"mode":"hang","count":1}'
produce 60 10
TIMEOUT=60 lib_wait_for at_least ok_records 62
sleep 0.5
sluice_stop
# The receiver records a request it never answered when it stops.
lib__stop_pid "$RECEIVER_PID" TERM "$(lib_tmout 10)"
report=$(jq -rs '[.[] | select(.path == "/hook")] as $all | [$all[] | select(.status == null)] as $hung
    | ($hung | length) as $n | $hung[0] as $h
    | [$all[] | select(.headers["webhook-id"] == $h.headers["webhook-id"] and .status == 200)][0] as $ok
    | "\($n) \($ok.received_ms - $h.received_ms) \($ok.body == $h.body)"' "$RECEIVER_OUT")
read -r hung retry_gap same_body <<<"$report"
[ "$hung" -eq 1 ] || lib_fail "expected 1 request left unanswered, got $hung"
[ "$same_body" = true ] || lib_fail "the retry after the timeout carried another body"
[ "$retry_gap" -ge 1000 ] || lib_fail "the retry came ${retry_gap} ms after the hung request (timeout_ms is 1000)"
grep -q 'no complete answer within 1000 ms' "$SLUICE_LOG" || lib_fail "the timeout is not in the log"
lib_pass "hanging receiver: timed out after 1000 ms, the same batch was sent again ${retry_gap} ms after the first try"

# --- everything else arrived once per id ----------------------------------------------------
got=$(rx_records_ok /hook | jq -s '[unique_by(.id)[] | .value.seq] | sort | map(tostring) | join(",")')
want=$(jq -n '[range(0; 50), range(60; 72)] | map(tostring) | join(",")')
[ "$got" = "$want" ] || lib_fail "records answered 200 (deduplicated by id): $got"
lib_pass "after the faults: records 0-49 and 60-71 delivered (50-59 dead-lettered), deduplicated by id once each"
lib_summary
