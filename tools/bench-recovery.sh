#!/usr/bin/env bash
# bench-recovery: how soon a backlog flows again after its target stood still. One redis sink
# (shape string, the sink's defaults) reads a topic of 16 partitions; each round redis-server
# holds writes (CLIENT PAUSE WRITE) for HOLD_MS while RECORDS records are produced, then lets
# them go, and the round is timed from the release until Redis holds them all. A hold longer
# than the router's own (1 s: it stops taking records, then pauses the partitions in
# librdkafka, which drops their prefetch) also shows how fast fetching restarts.
#
#   SLUICE_BUILD_DIR=build-rel bash tools/bench-recovery.sh [ROUNDS] [RECORDS] [HOLD_MS]
#
# Defaults: 5 rounds of 100,000 records (~60-byte JSON values), held 2000 ms (at most 9000:
# the sink's command timeout is 10 s). BENCH_OLD=<another sluice binary> runs it beside this
# build's, as a second process with its own group, topic and redis database, through the same
# holds: each round prints both drain times and their ratio, old/new, then the medians.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SLUICE_SOURCE_DIR:=$(cd "$here/.." && pwd)}"
source "$SLUICE_SOURCE_DIR/tests/integration/lib.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/sluice_lib.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/redis_lib.sh"

ROUNDS=${1:-5}
RECORDS=${2:-100000}
HOLD_MS=${3:-2000}
[ "$HOLD_MS" -le 9000 ] || { echo "bench-recovery: HOLD_MS at most 9000 (the sink's command timeout is 10 s)" >&2; exit 2; }
lib_init
for tool in redis-server kcat jq; do
    command -v "$tool" >/dev/null || lib_fail "$tool is needed"
done
lib_start_kafka new:16 old:16 sluice.dlq:1
lib_start_redis

# One process: its config, its sinks directory, one redis sink into database DB.
names=(new)
[ -z "${BENCH_OLD:-}" ] || names+=(old)
declare -A pid log db
start_process() {
    local name=$1 dir="$WORK/$1"
    mkdir -p "$dir/sinks.d"
    sluice_write_config "$dir/sluice.json" "recovery-$name"
    jq --arg d "$dir/sinks.d" '.sinks_dir = $d' "$dir/sluice.json" >"$dir/tmp.json" && mv "$dir/tmp.json" "$dir/sluice.json"
    redis_sink_file "$dir/sinks.d/cache.json" cache "$name" \
        "{\"shape\": \"string\", \"key\": \"$name:{\$.seq}\", \"url\": \"redis://127.0.0.1:$REDIS_PORT/${db[$name]}\"}" \
        '{"batch": {"max_records": 1000, "linger_ms": 5}}'
    if [ "$name" = old ]; then
        # sluice_start runs $SLUICE_BUILD_DIR/sluice: a directory of links with the old one in its place
        mkdir -p "$WORK/bin"
        for f in "$SLUICE_BUILD_DIR"/*; do ln -sf "$(readlink -f "$f")" "$WORK/bin/"; done
        ln -sf "$(readlink -f "$BENCH_OLD")" "$WORK/bin/sluice"
        SLUICE_BUILD_DIR=$WORK/bin sluice_start "$dir/sluice.json"
    else
        sluice_start "$dir/sluice.json"
    fi
    pid[$name]=$SLUICE_PID
    log[$name]=$SLUICE_LOG
}
keys_of() { rcli -n "${db[$1]}" DBSIZE; }

db[new]=0
db[old]=1
for name in "${names[@]}"; do start_process "$name"; done
make_records 1 1 "$WORK/warm.tsv" 0
# shellcheck disable=SC2317 # called by lib_wait_for
has_one() { [ "$(keys_of "$1")" -ge 2 ]; }   # the record's key and the positions hash
for name in "${names[@]}"; do
    lib_produce "$name" "$WORK/warm.tsv"
    TIMEOUT=60 lib_wait_for has_one "$name"
done

declare -A times
seq=1
for round in $(seq "$ROUNDS"); do
    declare -A want=() end=()
    make_records "$RECORDS" 1000 "$WORK/burst.tsv" "$seq"
    seq=$((seq + RECORDS))
    for name in "${names[@]}"; do want[$name]=$(($(keys_of "$name") + RECORDS)); done
    rcli CLIENT PAUSE $((HOLD_MS + 10000)) WRITE >/dev/null
    t0=$(lib_now_ms)
    producers=()
    for name in "${names[@]}"; do
        lib_produce "$name" "$WORK/burst.tsv" &
        producers+=($!)
    done
    for p in "${producers[@]}"; do wait "$p" || lib_fail "kcat could not produce a round"; done
    produced_ms=$(($(lib_now_ms) - t0))
    [ "$produced_ms" -le "$HOLD_MS" ] || lib_log "round $round: producing took $produced_ms ms, more than the hold"
    left=$((HOLD_MS - produced_ms))
    [ "$left" -le 0 ] || sleep "$(awk -v ms="$left" 'BEGIN { printf "%.3f", ms / 1000 }')"
    start=$(lib_now_ms)
    rcli CLIENT UNPAUSE >/dev/null
    deadline=$((start + 120000))
    while [ "${#end[@]}" -lt "${#names[@]}" ]; do
        for name in "${names[@]}"; do
            [ -z "${end[$name]:-}" ] || continue
            [ "$(keys_of "$name")" -lt "${want[$name]}" ] || end[$name]=$(($(lib_now_ms) - start))
        done
        [ "$(lib_now_ms)" -lt "$deadline" ] || lib_fail "round $round: not drained within 120 s"
        sleep 0.005
    done
    line="round $round: held $((start - t0)) ms;"
    for name in "${names[@]}"; do
        times[$name]+="${end[$name]} "
        line+=" $name drained $RECORDS records in ${end[$name]} ms after the release"
        line+=" ($(awk -v n="$RECORDS" -v ms="${end[$name]}" 'BEGIN { printf "%.0f", n * 1000 / (ms > 0 ? ms : 1) }') records/s);"
    done
    [ -z "${BENCH_OLD:-}" ] ||
        line+=" old/new $(awk -v o="${end[old]}" -v n="${end[new]}" 'BEGIN { printf "%.2f", o / (n > 0 ? n : 1) }')"
    echo "$line"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
summary="median of $ROUNDS rounds (records $RECORDS, hold $HOLD_MS ms):"
for name in "${names[@]}"; do
    summary+=" $name $(median <<<"${times[$name]}") ms;"
done
echo "$summary"
for name in "${names[@]}"; do
    SLUICE_PID=${pid[$name]} SLUICE_LOG=${log[$name]} sluice_stop
done
