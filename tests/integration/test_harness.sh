#!/usr/bin/env bash
# Tests the test harness itself: lib.sh's helpers and the two test tools (mock-kafka,
# http-receiver), against the real servers the other integration tests rely on.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init

# --- Kafka: produce 1000 keyed records into 4 partitions, read them all back ---------------
lib_start_kafka --brokers 3 harness.events:4
for i in $(seq 1 1000); do
    printf 'key-%04d\t{"id":%d,"payload":"value-%d"}\n' "$i" "$i" "$i"
done >"$WORK/records.tsv"
lib_produce harness.events "$WORK/records.tsv"
lib_consume harness.events 1000 >"$WORK/consumed.tsv"

n=$(wc -l <"$WORK/consumed.tsv")
[ "$n" -eq 1000 ] || lib_fail "consumed $n records, expected 1000"
lib_pass "1000 records produced and consumed back"

for p in 0 1 2 3; do
    c=$(awk -F'\t' -v p="$p" '$1 == p' "$WORK/consumed.tsv" | wc -l)
    [ "$c" -gt 0 ] || lib_fail "partition $p got no records"
done
lib_pass "keys spread over all 4 partitions"

# Same key/value pairs as produced, each exactly once (format: partition, offset, key, headers, value).
diff <(sort "$WORK/records.tsv") <(cut -f3,5 "$WORK/consumed.tsv" | sort) >"$WORK/diff.txt" ||
    lib_fail "consumed records differ from produced ones: $(head -5 "$WORK/diff.txt")"
lib_pass "every key and value came back exactly once"

# Offsets per partition are 0..count-1 with no gap.
awk -F'\t' '{ if ($2 != seen[$1]++) bad = 1 } END { exit bad }' "$WORK/consumed.tsv" ||
    lib_fail "offsets are not contiguous from 0 in every partition"
lib_pass "offsets contiguous from 0 in each partition"

# --- Kafka control interface --------------------------------------------------------------
lib_kafka_ctl broker-down 1 >/dev/null || lib_fail "broker-down 1 refused"
lib_kafka_ctl broker-up 1 >/dev/null || lib_fail "broker-up 1 refused"
lib_kafka_ctl push-errors OffsetCommit REBALANCE_IN_PROGRESS 2 >/dev/null || lib_fail "push-errors refused"
lib_kafka_ctl clear-errors OffsetCommit >/dev/null || lib_fail "clear-errors refused"
if reply=$(lib_kafka_ctl no-such-command 1); then
    lib_fail "an unknown command was accepted: $reply"
fi
[[ $reply == *"ERR unknown command"* ]] || lib_fail "unexpected reply to a bad command: $reply"
lib_pass "mock control: broker-down/up, push-errors, clear-errors accepted; bad command refused"

lib_kafka_ctl create-topic harness.created 2 >/dev/null || lib_fail "create-topic refused"
printf 'a\t1\nb\t2\nc\t3\n' >"$WORK/three.tsv"
lib_produce harness.created "$WORK/three.tsv"
n=$(lib_consume harness.created 3 | wc -l)
[ "$n" -eq 3 ] || lib_fail "topic made through the control FIFO returned $n records, expected 3"
lib_pass "create-topic through the control FIFO, then produce and consume on it"

# --- Redis --------------------------------------------------------------------------------
lib_start_redis --appendonly
redis-cli -p "$REDIS_PORT" set harness:key hello >/dev/null
[ "$(redis-cli -p "$REDIS_PORT" get harness:key)" = hello ] || lib_fail "redis GET did not return the value SET"
lib_pass "redis set/get"

old_pid=$REDIS_PID
lib_stop_redis
lib__alive "$old_pid" && lib_fail "redis still runs after lib_stop_redis"
lib_start_redis --appendonly
[ "$(redis-cli -p "$REDIS_PORT" get harness:key)" = hello ] || lib_fail "the key did not survive a redis restart with AOF"
lib_kill_redis
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && lib_fail "redis answers after lib_kill_redis"
lib_pass "redis stop, restart on the same port with its AOF, kill"

# --- PostgreSQL ---------------------------------------------------------------------------
lib_start_postgres
lib_psql "CREATE TABLE harness (id int PRIMARY KEY, v text)"
lib_psql "INSERT INTO harness VALUES (1, 'one')"
n=$(lib_psql "SELECT count(*) FROM harness")
[ "$n" = 1 ] || lib_fail "expected 1 row, psql printed '$n'"
lib_pass "postgres as nobody: create table, insert, count = 1"

# --- HTTP receiver ------------------------------------------------------------------------
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
post() {   # post BODY [curl args]: prints the status code
    curl -s -o /dev/null -m 10 -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$@" \
        "$RECEIVER_URL/hooks/test"
}

for i in 1 2 3; do
    code=$(post "{\"n\":$i}")
    [ "$code" = 200 ] || lib_fail "POST $i answered $code, expected 200"
done
lib_pass "3 POSTs answered 200"

lib_receiver_mode '{"mode":"status","status":503,"count":2}'
codes="$(post '{"n":4}') $(post '{"n":5}') $(post '{"n":6}')"
[ "$codes" = "503 503 200" ] || lib_fail "status mode answered '$codes', expected '503 503 200'"
lib_pass "status mode: 503 twice, then 200"

lib_receiver_mode '{"mode":"retry_after","status":429,"retry_after":"2","count":1}'
headers=$(curl -s -o /dev/null -m 10 -D - --data-binary '{"n":7}' "$RECEIVER_URL/hooks/test" | tr -d '\r')
[[ $headers == "HTTP/1.1 429"* ]] || lib_fail "retry_after mode did not answer 429: $headers"
grep -qix 'retry-after: 2' <<<"$headers" || lib_fail "no 'Retry-After: 2' header in: $headers"
lib_pass "retry_after mode: 429 with Retry-After: 2"

lib_receiver_mode '{"mode":"slow","delay_ms":1000,"count":1}'
t0=$(lib_now_ms)
code=$(post '{"n":8}')
elapsed=$(($(lib_now_ms) - t0))
[ "$code" = 200 ] || lib_fail "slow mode answered $code"
[ "$elapsed" -ge 1000 ] || lib_fail "slow mode answered after ${elapsed} ms, expected >= 1000"
lib_pass "slow mode: 200 after ${elapsed} ms (>= 1000)"

lib_receiver_mode '{"mode":"hang"}'
code=$(post '{"n":9}' -m 1) || true
[ "$code" = 000 ] || lib_fail "hang mode answered $code, expected no answer"
# curl gave up after 1 s; the receiver holds the request from when it has read it.
stats_hanging() { [ "$(lib_receiver_stats)" = '{"requests":9,"answered":8,"pending":1}' ]; }
TIMEOUT=10 lib__wait_until "$RECEIVER_PID" stats_hanging || lib_fail "stats while hanging: $(lib_receiver_stats)"
lib_receiver_mode '{"mode":"ok"}'
TIMEOUT=5 lib_wait_for grep -q '"seq":9' "$RECEIVER_OUT"
lib_pass "hang mode: no answer until the mode changed, then released"

n=$(wc -l <"$RECEIVER_OUT")
[ "$n" -eq 9 ] || lib_fail "receiver recorded $n lines, expected 9"
bodies=$(jq -r '.body' "$RECEIVER_OUT" | tr '\n' ' ')
want='{"n":1} {"n":2} {"n":3} {"n":4} {"n":5} {"n":6} {"n":7} {"n":8} {"n":9} '
[ "$bodies" = "$want" ] || lib_fail "recorded bodies '$bodies', expected '$want'"
statuses=$(jq -r '.status' "$RECEIVER_OUT" | tr '\n' ' ')
[ "$statuses" = "200 200 200 503 503 200 429 200 200 " ] || lib_fail "recorded statuses '$statuses'"
jq -s -e '.[0] | .seq == 1 and .method == "POST" and .path == "/hooks/test"
       and .headers["content-type"] == "application/json" and (.received_ms | type) == "number"' \
    "$RECEIVER_OUT" >/dev/null || lib_fail "first record lacks method, path, headers or received_ms"
lib_pass "receiver recorded 9 NDJSON lines with bodies, statuses, headers"

# --- A command that fails outside lib_fail names itself (set -e alone would say nothing) -----
cat >"$WORK/failing_test.sh" <<EOF
source "$SLUICE_SOURCE_DIR/tests/integration/lib.sh"
lib_init
expected() { false; }
expected || true
handled=\$(false; echo x) || true
stage() { grep -q never-there /dev/null; }
stage
echo "not reached"
EOF
rc=0
bash "$WORK/failing_test.sh" >"$WORK/failing.out" 2>&1 || rc=$?
out=$(cat "$WORK/failing.out")
[ "$rc" -eq 1 ] || lib_fail "a failing command ended the test with status $rc, not 1: $out"
[ "$(grep -c '^FAIL:' "$WORK/failing.out")" -eq 1 ] || lib_fail "expected one FAIL line for one failure: $out"
grep -qx 'FAIL: failing_test.sh:6: exit status 1 of: grep -q never-there /dev/null' "$WORK/failing.out" ||
    lib_fail "the failing command was not named with its line: $out"
case $out in *"not reached"*) lib_fail "the test went on after the failure: $out" ;; esac
lib_pass "a failing command outside lib_fail is named with its file, line and status; handled failures are not"

lib_summary
