#!/usr/bin/env bash
# bench-redis-server: what the same records cost redis-server itself, by route, with no sluice,
# no Kafka and no client in the measure: the server's own CPU time (utime + stime) for
#   script  the sink's batch script (EVALSHA, as sinks/redis.c sends it: positions checked,
#           keys probed, values written, position stored), in batches of BATCH records;
#   native  the same writes as plain pipelined commands (HSET or SET), no position;
#   multi   the optimistic route: WATCH + GET of a per-partition position key, MULTI, the plain
#           commands, SET of the position, EXEC, per batch (no key probe, no stale-field HDEL).
#   tx      the optimistic route with what the script guarantees (tools/bench-redis-route.sh runs
#           it end to end): WATCH + GET of the position key, HGET of the positions hash (the old
#           place, for an upgrade), HKEYS of each key (hash: its type and the fields to remove),
#           MULTI, HSET (hash) or SET key value GET (string: refuses another type), SET of the
#           position key and HSET of the positions hash (a mirror), EXEC.
#   tx+watch the same with every key of the batch WATCHed too (so that nothing can change between
#           the probe and EXEC): Redis 7.0 checks each WATCH against the connection's list of
#           watched keys, so a batch of n keys costs it n^2/2 comparisons.
# Each route's commands are piped in one connection (redis-cli --pipe) into a fresh server whose
# keys already exist (a cache being refreshed); the server's CPU is the ceiling of each route
# when Redis is the bottleneck: a route at twice the CPU reaches half the records per second.
#
#   bash tools/bench-redis-server.sh [SHAPE (hash|string)] [RECORDS] [KEYS] [BATCH]
# PERF=FILE records a perf profile of redis-server while it runs the script route.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SHAPE=${1:-hash}
N=${2:-200000}
KEYS=${3:-100000}
BATCH=${4:-500}
case $SHAPE in hash | string) ;; *) echo "shape: hash or string" >&2; exit 2 ;; esac
for tool in redis-server redis-cli awk; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done

dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cleanup() {
    redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/pid" >/dev/null
for _ in $(seq 100); do
    redis-cli -p "$port" PING >/dev/null 2>&1 && [ -s "$dir/pid" ] && break
    sleep 0.1
done
pid=$(cat "$dir/pid")

# The batch script, from the C literal in sinks/redis.c (each line "...\n").
sed -n '/redis_batch_script\[\] =/,/^    "return res\\n";/p' "$here/../sinks/redis.c" |
    sed -n 's/^    "\(.*\)\\n"[;]*$/\1/p' >"$dir/script.lua"
sha=$(redis-cli -p "$port" SCRIPT LOAD "$(cat "$dir/script.lua")")
[ ${#sha} -eq 40 ] || { echo "SCRIPT LOAD failed: $sha" >&2; exit 1; }

# Records like tools/bench-redis.sh's: 11 fields (hash) or their JSON (string), KEYS keys.
awk -v shape="$SHAPE" -v n="$N" -v nkeys="$KEYS" -v batch="$BATCH" -v sha="$sha" -v out="$dir" '
function bulk(s) { return "$" length(s) "\r\n" s "\r\n" }
function cmd(argc, body) { return "*" argc "\r\n" body }
BEGIN {
    pos = "sluice:position:bench:t:0"
    for (b = 0; b * batch < n; b++) {
        nb = (b + 1) * batch <= n ? batch : n - b * batch
        keys = ""; vals = ""; native = ""; nargs = 0; probes = ""; txw = ""
        for (j = 0; j < nb; j++) {
            i = b * batch + j
            key = "customer:" (i % nkeys)
            keys = keys bulk(key)
            if (shape == "hash") probes = probes cmd(2, bulk("HKEYS") bulk(key))
            if (shape == "hash") {
                f = bulk("id") bulk(sprintf("c-%08d", i)) bulk("name") bulk("Customer " i) \
                    bulk("email") bulk("customer" i "@example.com") bulk("tier") bulk("gold") \
                    bulk("country") bulk("DE") bulk("balance") bulk("1234.56") bulk("visits") bulk("42") \
                    bulk("created_at") bulk("2024-01-01T00:00:00Z") bulk("tags") bulk("[\"news\",\"beta\"]") \
                    bulk("address") bulk("{\"city\":\"Berlin\",\"zip\":\"10115\"}") bulk("seq") bulk(i)
                vals = vals bulk(22) f; nargs += 23
                native = native cmd(24, bulk("HSET") bulk(key) f)
            } else {
                v = sprintf("{\"id\":\"c-%08d\",\"name\":\"Customer %d\",\"email\":\"customer%d@example.com\",\"tier\":\"gold\",\"country\":\"DE\",\"balance\":1234.56,\"visits\":42,\"created_at\":\"2024-01-01T00:00:00Z\",\"tags\":[\"news\",\"beta\"],\"address\":{\"city\":\"Berlin\",\"zip\":\"10115\"},\"seq\":%d}", i, i, i, i)
                vals = vals bulk(1) bulk(v); nargs += 2
                native = native cmd(3, bulk("SET") bulk(key) bulk(v))
                txw = txw cmd(4, bulk("SET") bulk(key) bulk(v) bulk("GET"))
            }
        }
        prev = b == 0 ? -1 : b * batch
        printf "%s", cmd(4 + nb + 7 + nargs, bulk("EVALSHA") bulk(sha) bulk(1 + nb) bulk("sluice:positions:bench") keys \
            bulk("t:0") bulk(prev) bulk(b * batch + nb) bulk(shape) bulk(0) bulk(0) bulk(1) vals) > (out "/script.resp")
        printf "%s", native > (out "/native.resp")
        printf "%s%s%s%s%s%s", cmd(2, bulk("WATCH") bulk(pos)), cmd(2, bulk("GET") bulk(pos)), cmd(1, bulk("MULTI")),
            native, cmd(3, bulk("SET") bulk(pos) bulk(b * batch + nb)), cmd(1, bulk("EXEC")) > (out "/multi.resp")
        writes = shape == "hash" ? native : txw
        tail = cmd(3, bulk("SET") bulk(pos) bulk(b * batch + nb)) \
            cmd(4, bulk("HSET") bulk("sluice:positions:mirror") bulk("t:0") bulk(b * batch + nb)) cmd(1, bulk("EXEC"))
        reads = cmd(2, bulk("GET") bulk(pos)) cmd(3, bulk("HGET") bulk("sluice:positions:mirror") bulk("t:0")) probes
        printf "%s%s%s%s%s", cmd(2, bulk("WATCH") bulk(pos)), reads, cmd(1, bulk("MULTI")), writes, tail > (out "/tx.resp")
        printf "%s%s%s%s%s", cmd(2 + nb, bulk("WATCH") bulk(pos) keys), reads, cmd(1, bulk("MULTI")), writes, tail > (out "/txw.resp")
    }
}'

cpu_ms() {   # the server's utime + stime, in ms
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz }' "/proc/$pid/stat"
}
pipe() {   # sends a file, fails on any error reply
    local summary
    summary=$(redis-cli -p "$port" --pipe <"$1" | tail -1)
    case $summary in "errors: 0,"*) ;; *) echo "$1: $summary" >&2; exit 1 ;; esac
}
pipe "$dir/native.resp"   # the keys exist from here on: every route updates them
redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
if [ -n "${PERF:-}" ]; then
    perf record -g -o "$PERF" -p "$pid" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5   # perf attaches: a profile of what follows, not a race on the result
fi
t0=$(cpu_ms); pipe "$dir/script.resp"; t1=$(cpu_ms)
if [ -n "${PERF:-}" ]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
fi
pipe "$dir/native.resp"; t2=$(cpu_ms)
pipe "$dir/multi.resp"; t3=$(cpu_ms)
pipe "$dir/tx.resp"; t4=$(cpu_ms)
pipe "$dir/txw.resp"; t5=$(cpu_ms)
stored=$(redis-cli -p "$port" HGET sluice:positions:bench t:0)
[ "$stored" = "$N" ] || { echo "the script stored position $stored, not $N: batches were refused" >&2; exit 1; }
script=$((t1 - t0)) native=$((t2 - t1)) multi=$((t3 - t2)) tx=$((t4 - t3)) txw=$((t5 - t4))
printf 'redis-server CPU for %d %s records (batches of %d, %d keys), one connection each:\n' "$N" "$SHAPE" "$BATCH" "$KEYS"
printf '  script (EVALSHA)              %5d ms\n' "$script"
printf '  native pipelined %-4s         %5d ms\n' "$([ "$SHAPE" = hash ] && echo HSET || echo SET)" "$native"
printf '  WATCH+GET, MULTI..EXEC        %5d ms\n' "$multi"
printf '  tx (probes, type-safe writes) %5d ms\n' "$tx"
printf '  tx, every key WATCHed         %5d ms\n' "$txw"
awk -v s="$script" -v n="$native" -v m="$multi" -v t="$tx" -v w="$txw" 'BEGIN {
    printf "ceiling when redis is the limit: script %.2fx native, MULTI %.2fx native\n", n / (s > 0 ? s : 1), n / (m > 0 ? m : 1)
    printf "  tx %.2fx native, tx with the keys WATCHed %.2fx native\n", n / (t > 0 ? t : 1), n / (w > 0 ? w : 1)
}'
