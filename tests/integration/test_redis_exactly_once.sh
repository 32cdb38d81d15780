#!/usr/bin/env bash
# Exactly once into Redis across faults, counted where a duplicate would show: shape list
# (RPUSH), 20,000 records over 50 keys. First a lost reply made on purpose: redis stops
# answering (SIGSTOP) while a batch is in flight, the sink gives up on it (command timeout)
# and reconnects, redis then runs the batch anyway; the retry must find it applied. Then, while
# a producer keeps feeding records, redis-server is killed (-9) and restarted from its AOF,
# sluice is killed (-9) and restarted, and redis is killed again. At the end every list holds
# its records exactly once, in order: 20,000 entries, each seq once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

N=20000
CHUNK=1000
KEYS=50
lib_start_kafka events:4 sluice.dlq:1
redis_start_durable
sluice_write_config "$WORK/sluice.json" redis-eo-test
redis_sink_file "$WORK/sinks.d/feed.json" feed events \
    '{"key": "feed:{key}", "shape": "list", "command_timeout_ms": 300, "connect_timeout_ms": 5000,
      "reconnect_min_ms": 50, "reconnect_max_ms": 300}' \
    '{"on_failure": "block", "batch": {"max_records": 250, "linger_ms": 5},
      "retry": {"max_attempts": 10, "initial_backoff_ms": 50, "max_backoff_ms": 300}}'

for c in $(seq 0 $((N / CHUNK - 1))); do
    make_records "$CHUNK" "$KEYS" "$WORK/chunk.$c.tsv" $((c * CHUNK))
done
applied() { redis_positions_sum sluice:positions:feed 2>/dev/null || echo 0; }
applied_at_least() { [ "$(applied)" -ge "$1" ]; }

sluice_start "$WORK/sluice.json"
lib_produce events "$WORK/chunk.0.tsv"
TIMEOUT=60 lib_wait_for applied_at_least "$CHUNK"

# A reply lost for sure: redis-server is stopped (SIGSTOP) before the next records come, so
# the sink's batch waits in redis's socket; the sink times out after 300 ms and reconnects; only
# once the log says so does redis go on (SIGCONT), and it runs the old connection's batch first.
timeouts() { grep -c 'no reply within command_timeout_ms' "$SLUICE_LOG" || true; }
timeouts_before=$(timeouts)
timed_out() { [ "$(timeouts)" -gt "$timeouts_before" ]; }
kill -STOP "$REDIS_PID"
lib_produce events "$WORK/chunk.1.tsv"
TIMEOUT=30 lib_wait_for timed_out
kill -CONT "$REDIS_PID"
TIMEOUT=60 lib_wait_for applied_at_least $((2 * CHUNK))
grep -q 'no reply within command_timeout_ms' "$SLUICE_LOG" || lib_fail "the sink never timed out on the stopped redis"
# The old batch moves the positions before the retry reads them and logs its finding.
TIMEOUT=30 lib__wait_until "$SLUICE_PID" grep -q 'already applied by an earlier attempt' "$SLUICE_LOG" ||
    lib_fail "no retry found its batch already applied: $(grep -E 'redis|attempt' "$SLUICE_LOG" | tail -5)"
lib_pass "a batch applied after its reply was lost is recognised by the retry, not applied twice"

# The rest, paced, while things get killed.
(
    for c in $(seq 2 $((N / CHUNK - 1))); do
        kcat -P -q -b "$KAFKA_BROKERS" -t events -K '\t' -z none -l "$WORK/chunk.$c.tsv" || exit 1
        sleep 0.3
    done
) </dev/null >"$WORK/producer.log" 2>&1 &
producer=$!

TIMEOUT=60 lib_wait_for applied_at_least 5000
lib_kill_redis
lib_log "redis killed at $(($(lib_now_ms))) with sluice writing"
sleep 0.5
redis_start_durable
TIMEOUT=60 lib_wait_for applied_at_least 9000
sluice_kill9
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for applied_at_least 14000
lib_kill_redis
sleep 0.3
redis_start_durable

timeout "$(lib_tmout 120)" tail --pid="$producer" -f /dev/null || lib_fail "the producer did not finish"
wait "$producer" || lib_fail "the producer failed: $(cat "$WORK/producer.log")"
TIMEOUT=120 lib_wait_for applied_at_least "$N"
sleep 1   # anything applied twice would show by now
sluice_stop
grep -q 'connection lost\|not connected to redis\|cannot connect' "$WORK"/sluice.*.log ||
    lib_fail "the sink never saw redis go away: the faults missed"

# Every list, every entry: N in all, each seq once, in order within each key.
for k in $(seq 0 $((KEYS - 1))); do
    rcli LRANGE "feed:k-$k" 0 -1 | jq -r --arg k "k-$k" 'select(.id == $k) | .seq' >"$WORK/seqs.$k" ||
        lib_fail "feed:k-$k holds something else than its records"
    sort -n -c "$WORK/seqs.$k" 2>/dev/null || lib_fail "feed:k-$k is out of order"
done
total=$(cat "$WORK"/seqs.* | wc -l)
distinct=$(cat "$WORK"/seqs.* | sort -n -u | wc -l)
range=$(cat "$WORK"/seqs.* | sort -n | sed -n '1p;$p' | paste -sd-)
[ "$total" -eq "$N" ] || lib_fail "the lists hold $total entries, want $N (distinct: $distinct)"
[ "$distinct" -eq "$N" ] || lib_fail "$distinct distinct records of $N"
[ "$range" = "0-$((N - 1))" ] || lib_fail "seq range $range"
[ "$(rcli LLEN feed:k-0)" -eq $((N / KEYS)) ] || lib_fail "feed:k-0 has $(rcli LLEN feed:k-0) entries"
lib_pass "$N records through two redis kills and a sluice kill -9: $total list entries, each once, in per-key order"
lib_log "lost replies recognised on retry: $(grep -c 'already applied by an earlier attempt' "$WORK"/sluice.*.log | paste -sd' ')"
lib_summary
