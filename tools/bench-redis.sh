#!/usr/bin/env bash
# bench-redis: how fast the redis sink drains a Kafka backlog into Redis (hash shape), next to
# what redis-benchmark -P 64 SET reaches on the same server.
#
#   SLUICE_BUILD_DIR=build bash tools/bench-redis.sh [RECORDS] [KEYS]
#
# RECORDS (default 1,000,000) JSON values of ~250 bytes (11 top-level fields, two of them
# nested) over KEYS distinct keys (default RECORDS/10: a cache being refreshed; the keys of a
# partition cycle, so a batch no larger than KEYS/partitions holds no key twice and every
# record is written, none collapsed), produced first into the embedded Kafka
# (librdkafka's mock) over 64 partitions, which keeps them all; then `sluice run` drains them
# through one redis sink (shape hash). The clock runs from the first position stored
# in Redis to the last, so the 3 s group join is not counted; the rate is the sink's.
# Environment: BENCH_BATCH (batch.max_records, default 1000), BENCH_IN_FLIGHT (max_in_flight,
# default 16), BENCH_PARTITIONS (default 64), BENCH_TTL (ttl_s, default 0: one EXPIRE more per
# record when set), BENCH_SHAPE (default hash; string compares with SET directly),
# BENCH_KAFKA (extra consumer properties, JSON), BENCH_SINK_OPTS (JSON merged into the sink's
# file, e.g. '{"max_buffered_bytes": 33554432}'), BENCH_ROUTE (route: auto, script, optimistic;
# default the sink's), BENCH_CONNECTIONS (connections of the optimistic route), BENCH_SLUICE (another sluice binary to measure, e.g. an older
# build: the rest comes from SLUICE_BUILD_DIR), PERF=FILE to record a perf profile of sluice
# while it drains into FILE (PERF_CALLGRAPH=dwarf for call chains through libc and hiredis).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SLUICE_SOURCE_DIR:=$(cd "$here/.." && pwd)}"
source "$SLUICE_SOURCE_DIR/tests/integration/lib.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/sluice_lib.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/redis_lib.sh"

N=${1:-1000000}
KEYS=${2:-$((N / 10))}
PARTITIONS=${BENCH_PARTITIONS:-64}
BATCH=${BENCH_BATCH:-1000}
IN_FLIGHT=${BENCH_IN_FLIGHT:-16}
TTL=${BENCH_TTL:-0}
SHAPE=${BENCH_SHAPE:-hash}
lib_init
if [ -n "${BENCH_SLUICE:-}" ]; then
    # sluice_start runs $SLUICE_BUILD_DIR/sluice: a directory of links with this one in its place
    mkdir -p "$WORK/bin"
    for f in "$SLUICE_BUILD_DIR"/*; do ln -s "$(readlink -f "$f")" "$WORK/bin/"; done
    rm -f "$WORK/bin/sluice"
    ln -s "$(readlink -f "$BENCH_SLUICE")" "$WORK/bin/sluice"
    SLUICE_BUILD_DIR=$WORK/bin
fi
[ "$BATCH" -le $((KEYS / PARTITIONS)) ] ||
    lib_log "note: batches of $BATCH > $((KEYS / PARTITIONS)) keys per partition: updates of one key collapse, fewer writes"
for tool in redis-server redis-benchmark kcat jq; do
    command -v "$tool" >/dev/null || lib_fail "$tool is needed"
done

lib_start_kafka "bench:$PARTITIONS" sluice.dlq:1
# shellcheck disable=SC2119 # no AOF wanted
lib_start_redis

lib_log "writing $N records over $KEYS keys"
make_customer_records "$N" "$KEYS" "$WORK/records.tsv"
avg=$(awk -F'\t' '{ s += length($2) } END { printf "%d", s / NR }' "$WORK/records.tsv")
lib_log "average value: $avg bytes; producing to $PARTITIONS partitions"
t0=$(lib_now_ms)
SLUICE_TMOUT_MULTIPLIER=${SLUICE_TMOUT_MULTIPLIER:-5} lib_produce bench "$WORK/records.tsv"
lib_log "produced in $(($(lib_now_ms) - t0)) ms"
rm -f "$WORK/records.tsv"

sluice_write_config "$WORK/sluice.json" bench
# Extra librdkafka properties for the consumer, e.g. BENCH_KAFKA='{"queued.min.messages":"5000"}'
if [ -n "${BENCH_KAFKA:-}" ]; then
    jq --argjson extra "$BENCH_KAFKA" '.kafka += $extra' "$WORK/sluice.json" >"$WORK/sluice.json.new"
    mv "$WORK/sluice.json.new" "$WORK/sluice.json"
fi
conn_json=
[ -z "${BENCH_CONNECTIONS:-}" ] || conn_json=", \"connections\": $BENCH_CONNECTIONS"
[ -z "${BENCH_ROUTE:-}" ] || conn_json="$conn_json, \"route\": \"$BENCH_ROUTE\""
cat >"$WORK/sinks.d/bench.json" <<JSON
{ "name": "bench", "type": "redis", "topics": ["bench"],
  "batch": { "max_records": $BATCH, "max_bytes": 4194304, "linger_ms": 5 },
  "max_buffered_records": 1000000,
  "redis": { "url": "redis://127.0.0.1:$REDIS_PORT/0", "key": "customer:{key}", "shape": "$SHAPE",
             "ttl_s": $TTL, "max_in_flight": $IN_FLIGHT$conn_json } }
JSON
# Extra keys of the sink's file, e.g. BENCH_SINK_OPTS='{"max_buffered_bytes": 33554432}'
if [ -n "${BENCH_SINK_OPTS:-}" ]; then
    jq --argjson extra "$BENCH_SINK_OPTS" '. * $extra' "$WORK/sinks.d/bench.json" >"$WORK/bench.json.new"
    mv "$WORK/bench.json.new" "$WORK/sinks.d/bench.json"
fi
sluice_start "$WORK/sluice.json"

cpu_ticks() {   # utime + stime of a process, in clock ticks
    awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
# The machine's idle time over all cores (a shared machine: is anyone waiting for a CPU?)
idle_ticks() {
    awk '/^cpu / { print $5; exit }' /proc/stat
}
# Wait for the first stored position, then time until all N are stored.
TIMEOUT=60 lib_wait_for redis_positions_reach sluice:positions:bench 1
start_ms=$(lib_now_ms)
start_done=$(redis_positions_sum sluice:positions:bench)
sluice_cpu0=$(cpu_ticks "$SLUICE_PID")
redis_cpu0=$(cpu_ticks "$REDIS_PID")
kafka_cpu0=$(cpu_ticks "$KAFKA_PID")
idle0=$(idle_ticks)
if [ -n "${PERF:-}" ]; then
    perf record --call-graph "${PERF_CALLGRAPH:-fp}" -o "$PERF" -p "$SLUICE_PID" >/dev/null 2>&1 &
    perf_pid=$!
fi
deadline=$((start_ms + 600000))
while :; do
    done_now=$(redis_positions_sum sluice:positions:bench)
    [ "$done_now" -ge "$N" ] && break
    [ "$(lib_now_ms)" -lt "$deadline" ] || lib_fail "only $done_now of $N records after 600 s"
    sleep 0.1
done
end_ms=$(lib_now_ms)
sluice_cpu1=$(cpu_ticks "$SLUICE_PID")
redis_cpu1=$(cpu_ticks "$REDIS_PID")
kafka_cpu1=$(cpu_ticks "$KAFKA_PID")
idle1=$(idle_ticks)
if [ -n "${PERF:-}" ]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
fi
elapsed=$((end_ms - start_ms))
# Also from the moment the partitions were assigned (consumption starts), for comparison.
assigned_ms=$(awk -F'time=| level' '/partitions assigned/ { print $2; exit }' "$SLUICE_LOG" |
    xargs -I{} date -d {} +%s%3N 2>/dev/null || true)
timed=$((N - start_done))
sink_rate=$((timed * 1000 / (elapsed > 0 ? elapsed : 1)))
hz=$(getconf CLK_TCK)
sluice_cpu=$(awk -v a="$sluice_cpu0" -v b="$sluice_cpu1" -v hz="$hz" -v ms="$elapsed" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (ms / 1000) }')
redis_cpu=$(awk -v a="$redis_cpu0" -v b="$redis_cpu1" -v hz="$hz" -v ms="$elapsed" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (ms / 1000) }')
kafka_cpu=$(awk -v a="$kafka_cpu0" -v b="$kafka_cpu1" -v hz="$hz" -v ms="$elapsed" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (ms / 1000) }')
idle_cpu=$(awk -v a="$idle0" -v b="$idle1" -v hz="$hz" -v ms="$elapsed" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / (ms / 1000) }')
keys_in_redis=$(rcli DBSIZE)
# The server's own account: how many batches (script calls) and the time it spent in them.
evalsha=$(rcli INFO commandstats | tr -d '\r' | awk -F'[:,=]' '/^cmdstat_evalsha:/ { print $3, $5 }')
# The optimistic route (hash, string): its batches are MULTI/EXEC; the server's time in them all.
exec_stats=$(rcli INFO commandstats | tr -d '\r' | awk -F'[:,=]' '/^cmdstat_exec:/ { print $3, $5 }')
all_usec=$(rcli INFO commandstats | tr -d '\r' | awk -F'[:,=]' '/^cmdstat_/ { s += $5 } END { print s + 0 }')
sluice_stop

# The same server, the same size of value: redis-benchmark, 50 clients pipelining 64 commands.
bench_line() {
    redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -q -P 64 "$@" 2>/dev/null | tr '\r' '\n' |
        awk '/requests per second/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "requests") { print int($i); exit } }'
}
set_rate=$(bench_line -n 1000000 -d "$avg" -t set)
set_random_rate=$(bench_line -n 1000000 -d "$avg" -r "$KEYS" -t set)
hset_rate=$(bench_line -n 1000000 -r "$KEYS" HSET 'bench:__rand_int__' id c-00000001 name 'Customer 1' \
    email customer1@example.com tier gold country DE balance 1234.56 visits 42 \
    created_at 2024-01-01T00:00:00Z tags '["news","beta"]' \
    address '{"city":"Berlin","zip":"10115"}' seq 1)

printf '\n'
printf 'records                      %d (%d-byte JSON values, %d keys, %d partitions)\n' "$N" "$avg" "$KEYS" "$PARTITIONS"
printf 'timed                        %d records in %d ms (batch.max_records %d, max_in_flight %d, ttl_s %d%s)\n' "$timed" "$elapsed" "$BATCH" "$IN_FLIGHT" "$TTL" "$conn_json"
printf 'redis sink, %-6s shape     %d records/s   (CPU while draining: sluice %s%%, redis-server %s%%)\n' "$SHAPE" "$sink_rate" "$sluice_cpu" "$redis_cpu"
printf '  the rest of the machine      mock Kafka broker %s%%, idle %s%% of %d cores\n' "$kafka_cpu" "$idle_cpu" "$(nproc)"
# CPU time per record: on a busy shared machine steadier than the rate
awk -v s0="$sluice_cpu0" -v s1="$sluice_cpu1" -v r0="$redis_cpu0" -v r1="$redis_cpu1" -v hz="$hz" -v n="$timed" 'BEGIN {
    if (n > 0) printf "  CPU per record             sluice %.2f us, redis-server %.2f us\n", (s1 - s0) / hz * 1e6 / n, (r1 - r0) / hz * 1e6 / n
}'
if [ -n "$assigned_ms" ]; then
    printf '  from assignment to the end %d records/s   (%d ms, group join excluded)\n' \
        "$((N * 1000 / (end_ms - assigned_ms)))" "$((end_ms - assigned_ms))"
fi
printf 'redis-benchmark -P 64 SET    %d requests/s  (-d %d, one key, as in the issue)\n' "$set_rate" "$avg"
printf '  same, -r %-8d            %d requests/s  (random keys, like the sink'"'"'s)\n' "$KEYS" "$set_random_rate"
printf '  HSET of the same 11 fields %d requests/s  (what redis itself does for this work, no script)\n' "$hset_rate"
awk -v s="$sink_rate" -v b="$set_rate" -v r="$set_random_rate" -v h="$hset_rate" 'BEGIN {
    printf "ratio sink / SET -P 64       %.2f (target 0.50)\n", s / b
    printf "ratio sink / SET -P 64 -r    %.2f\n", s / r
    printf "ratio sink / native HSET     %.2f\n", s / h
}'
if [ -n "$evalsha" ]; then
    read -r batches batch_usec <<<"$evalsha"
    printf 'redis-server, EVALSHA        %d batches (%d records each on average), %d ms inside them (%d%% of the drain)\n' \
        "$batches" "$((N / (batches > 0 ? batches : 1)))" "$((batch_usec / 1000))" "$((batch_usec / 10 / (elapsed > 0 ? elapsed : 1)))"
fi
if [ -n "$exec_stats" ]; then
    read -r batches _ <<<"$exec_stats"
    printf 'redis-server, MULTI/EXEC     %d batches (%d records each on average), %d ms in all commands (%d%% of the drain)\n' \
        "$batches" "$((N / (batches > 0 ? batches : 1)))" "$((all_usec / 1000))" "$((all_usec / 10 / (elapsed > 0 ? elapsed : 1)))"
fi
printf 'sluice binary                %s\n' "$(readlink -f "$SLUICE_BUILD_DIR/sluice")"
printf 'keys in redis                %s (positions hash and position keys included)\n' "$keys_in_redis"
if [ -n "${PERF:-}" ]; then printf 'perf profile                 perf report -i %s\n' "$PERF"; fi
exit 0
