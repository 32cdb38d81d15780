#!/usr/bin/env bash
# bench-memory: the peak memory of sluice while 1,000,000 records flow to a healthy sink past a
# parked one, next to the same run with the healthy sink alone. A figure, not an assertion.
#
#   SLUICE_BUILD_DIR=build bash tools/bench-memory.sh [RECORDS]
#
# RECORDS (default 1,000,000) JSON values of ~250 bytes are produced first into the embedded
# Kafka (librdkafka's mock) over 64 partitions, which keeps them all. Then, for each case, a
# fresh `sluice run` (its own consumer group, so it reads everything from the start) drains the
# topic into a healthy sink (a file sink, fsync off) while the process's peak resident memory
# (VmHWM in /proc/PID/status) is read until the healthy sink has delivered every record:
#   alone   the healthy sink only: the baseline;
#   pause   plus a second file sink paused through the admin API right after start
#           (POST /sinks/parked/pause: its queue dropped, its positions kept);
#   hang    plus a webhook sink whose receiver never answers: its buffer fills, holds its
#           partitions for park_after_ms and the router parks it by itself.
#   fan8    eight healthy file sinks on the topic (the clock stops when the last has every record).
# It prints, per case: records, seconds (first delivery to the last), records/s, CPU seconds, peak RSS MiB,
# and the ratio of the peak to the baseline's, then checks the stated bounds (below).
#
# Environment: BENCH_CASES (default "alone pause hang fan8"), BENCH_PARTITIONS (default 64),
# BENCH_OLD=PATH (another sluice binary, e.g. a copy of the previous build: each case runs with
# it too, in the same run, and the table gets its figures and the ratio of the drain rates),
# BENCH_ROUNDS (default 1: how many times each case runs; with BENCH_OLD the two binaries take
# turns going first, round after round, and each round's ratio is of that round's two runs),
# BENCH_KAFKA (JSON merged into the kafka section, e.g. '{"queued.max.messages.kbytes": 8192}'),
# BENCH_MAIN_OPTS (JSON merged into the main file, e.g. '{"max_buffered_bytes": 12582912}'; BENCH_OLD's
# binary gets it too and must know its keys: the previous release refuses that one),
# BENCH_SINK_OPTS (JSON merged into each healthy sink's file), BENCH_PARKED_OPTS (JSON merged into the parked
# webhook sink's file, e.g. '{"max_buffered_bytes": 16777216}'), BENCH_TRACE=FILE (append one
# line per sample: case, ms since start, VmRSS KiB, each sink's delivered/buffered/state),
# BENCH_KEEP_LOGS=1 (keep each
# case's sluice log in the work directory; with KEEP_WORK=1 it stays after the run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SLUICE_SOURCE_DIR:=$(cd "$here/.." && pwd)}"
source "$SLUICE_SOURCE_DIR/tests/integration/lib.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/sluice_lib.sh"

N=${1:-1000000}
PARTITIONS=${BENCH_PARTITIONS:-64}
CASES=${BENCH_CASES:-alone pause hang fan8}
ROUNDS=${BENCH_ROUNDS:-1}
FAN=8
lib_init
for tool in kcat jq curl; do
    command -v "$tool" >/dev/null || lib_fail "$tool is needed"
done
lib__need_tool sluice
lib__need_tool kafka-committed

lib_start_kafka "bench:$PARTITIONS" sluice.dlq:1
lib_log "writing $N records"
make_customer_records "$N" "$((N / 10 > 0 ? N / 10 : 1))" "$WORK/records.tsv"
AVG=$(awk -F'\t' '{ s += length($2) } END { printf "%d", s / NR }' "$WORK/records.tsv")
t0=$(lib_now_ms)
SLUICE_TMOUT_MULTIPLIER=${SLUICE_TMOUT_MULTIPLIER:-5} lib_produce bench "$WORK/records.tsv"
lib_log "produced $N records of $AVG bytes on average in $(($(lib_now_ms) - t0)) ms"
rm -f "$WORK/records.tsv"
in_topic=$("$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g bench-probe -t bench | awk '{ s += $3 } END { print s + 0 }')
[ "$in_topic" -eq "$N" ] || lib_fail "the topic holds $in_topic records, expected $N"

if [[ " $CASES " == *" hang "* ]]; then
    # A receiver that holds every request and never answers; what it records does not matter.
    lib_start_receiver --mode '{"mode":"hang"}'
fi

sink_field() {   # SINK FIELD: a field of the sink in the admin API's /sinks
    # Empty while the admin API is not listening yet (set -e must not stop the run on that).
    { curl -sS -m 5 "http://$ADMIN/sinks" 2>/dev/null || true; } |
        jq -r --arg n "$1" --arg f "$2" '.sinks[] | select(.name == $n) | .[$f] // empty' 2>/dev/null || true
}

# The fewest records any healthy sink has delivered (empty while the admin API is not up).
min_delivered() {
    { curl -sS -m 5 "http://$ADMIN/sinks" 2>/dev/null || true; } |
        jq -r '[.sinks[] | select(.name | startswith("healthy")) | .delivered] | min // empty' 2>/dev/null || true
}

healthy_sink() {   # NAME DIR: a healthy file sink's file
    jq -n --arg n "$1" --arg p "$2/$1.ndjson" --argjson extra "${BENCH_SINK_OPTS:-{\}}" \
        '{name: $n, type: "file", topics: ["bench"],
          batch: {max_records: 1000, max_bytes: 4194304, linger_ms: 5},
          file: {path: $p, fsync: false}} * $extra' >"$2/sinks.d/$1.json"
}

RESULTS=()
run_case() {   # CASE LABEL BINARY ROUND
    local name=$1 label=$2 bin=$3 round=$4
    local d="$WORK/case-$name-$label-$round" delivered=0 first_ms=0 start_ms end_ms deadline hwm rss max_rss=0
    local parks=- state=- lost note sinks cpu per_batch
    mkdir -p "$d/sinks.d"
    ADMIN=127.0.0.1:$(lib_free_port)
    sluice_write_config "$d/sluice.json" "mem-$name-$label-$round"
    jq --arg l "$ADMIN" --arg s "$d/sinks.d" --argjson k "${BENCH_KAFKA:-{\}}" --argjson m "${BENCH_MAIN_OPTS:-{\}}" \
        '.admin.listen = $l | .sinks_dir = $s | .kafka += $k | . * $m' "$d/sluice.json" >"$d/tmp.json"
    mv "$d/tmp.json" "$d/sluice.json"
    healthy_sink healthy "$d"
    case $name in
        alone) ;;
        pause)
            cat >"$d/sinks.d/parked.json" <<JSON
{ "name": "parked", "type": "file", "topics": ["bench"],
  "batch": { "max_records": 1000, "max_bytes": 4194304, "linger_ms": 5 },
  "file": { "path": "$d/parked.ndjson", "fsync": false } }
JSON
            ;;
        hang)
            jq -n --arg url "$RECEIVER_URL/hook" --argjson extra "${BENCH_PARKED_OPTS:-{\}}" \
                '{name: "parked", type: "webhook", topics: ["bench"],
                  batch: {max_records: 500, linger_ms: 5},
                  webhook: {url: $url, allow_private_networks: true}} * $extra' >"$d/sinks.d/parked.json"
            ;;
        fan8)
            for i in $(seq 2 "$FAN"); do healthy_sink "healthy$i" "$d"; done
            ;;
        *) lib_fail "unknown case $name (alone, pause, hang, fan8)" ;;
    esac
    "$bin" check -c "$d/sluice.json" >"$d/check.log" 2>&1 ||
        { cat "$d/check.log" >&2; lib_fail "sluice check refuses the $name case's configuration"; }

    start_ms=$(lib_now_ms)
    SLUICE_RUNS=$((SLUICE_RUNS + 1))
    SLUICE_LOG=$WORK/sluice.$SLUICE_RUNS.log
    lib__spawn "$SLUICE_LOG" "$bin" run -c "$d/sluice.json"
    SLUICE_PID=$LIB_LAST_PID
    lib_log "$name ($label): sluice run #$SLUICE_RUNS (pid $SLUICE_PID), log $SLUICE_LOG"
    if [ "$name" = pause ]; then
        TIMEOUT=10 lib_wait_for curl -sf -o /dev/null "http://$ADMIN/healthz"
        curl -sSf -m 5 -X POST -o /dev/null "http://$ADMIN/sinks/parked/pause" || lib_fail "cannot pause the parked sink"
        [ "$(sink_field parked state)" = paused ] || lib_fail "the parked sink is not shown paused"
    fi
    deadline=$((start_ms + $(lib_tmout 600) * 1000))
    while :; do
        lib__alive "$SLUICE_PID" || lib_fail "sluice died in the $name case (see $SLUICE_LOG)"
        rss=$(proc_vm_kib VmRSS "$SLUICE_PID")
        [ "${rss:-0}" -le "$max_rss" ] || max_rss=$rss
        if [ -n "${BENCH_TRACE:-}" ]; then
            sinks=$(curl -sS -m 5 "http://$ADMIN/sinks" 2>/dev/null || true)
            printf '%s %s %d %s %s\n' "$name" "$label" "$(($(lib_now_ms) - start_ms))" "$rss" \
                "$(jq -r '[.sinks[] | "\(.name):delivered=\(.delivered),buffered=\(.buffered),bytes=\(.buffered_bytes),state=\(.state)"] | join(" ")' <<<"$sinks" 2>/dev/null)" \
                >>"$BENCH_TRACE"
        fi
        delivered=$(min_delivered)
        delivered=${delivered:-0}
        if [ "$first_ms" -eq 0 ] && [ "$delivered" -gt 0 ]; then first_ms=$(lib_now_ms); fi
        [ "$delivered" -lt "$N" ] || break
        [ "$(lib_now_ms)" -lt "$deadline" ] ||
            lib_fail "$name: the healthy sinks delivered $delivered of $N records in $(lib_tmout 600) s"
        sleep 0.2
    done
    end_ms=$(lib_now_ms)
    hwm=$(proc_vm_kib VmHWM "$SLUICE_PID")
    # CPU seconds (user + system) of the process so far, group join included.
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' "/proc/$SLUICE_PID/stat" 2>/dev/null || echo 0)
    # Records per batch, over the healthy sinks: how finely the buffers cut the drain.
    per_batch=$({ curl -sS -m 5 "http://$ADMIN/sinks" 2>/dev/null || true; } |
        jq -r '[.sinks[] | select(.name | startswith("healthy"))] | ([.[].delivered] | add) / ([.[].batches] | add) | floor' \
        2>/dev/null || echo 0)
    lost=$(sink_field healthy records_lost)
    [ "${lost:-0}" -eq 0 ] || lib_fail "$name: retention deleted $lost records before the healthy sink read them"
    if [ "$name" = pause ] || [ "$name" = hang ]; then
        parks=$(sink_field parked parks)
        state=$(sink_field parked state)
    fi
    # Stop; a hanging target may make the drain wait its shutdown_timeout_ms.
    sluice_stop_noted
    note=$SLUICE_STOP_NOTE
    if [ "${BENCH_KEEP_LOGS:-0}" = 1 ]; then cp "$SLUICE_LOG" "$d/"; fi
    rm -f "$d"/*.ndjson
    RESULTS+=("$name|$label|$round|$((end_ms - first_ms))|$((end_ms - start_ms))|$hwm|$max_rss|$parks|$state|$note|$cpu|${per_batch:-0}")
    lib_log "$name ($label): $N records in $((end_ms - first_ms)) ms after the first delivery, VmHWM $((hwm / 1024)) MiB"
}

for round in $(seq 1 "$ROUNDS"); do
    for c in $CASES; do
        if [ -n "${BENCH_OLD:-}" ] && [ $((round % 2)) -eq 1 ]; then run_case "$c" old "$BENCH_OLD" "$round"; fi
        run_case "$c" new "$SLUICE_BUILD_DIR/sluice" "$round"
        if [ -n "${BENCH_OLD:-}" ] && [ $((round % 2)) -eq 0 ]; then run_case "$c" old "$BENCH_OLD" "$round"; fi
    done
done

# The stated bounds, for the defaults: peak RSS at most 64 MiB with one healthy sink (alone), and
# 64 MiB + 8 MiB for each further sink (fan8: 64 + 7 x 8 = 120 MiB). A parked (or paused) sink
# beside the healthy one is a further sink too: 72 MiB.
BOUND_ONE_KIB=$((64 * 1024))
BOUND_PER_SINK_KIB=$((8 * 1024))
bound_kib() {   # CASE
    case $1 in
        alone) echo "$BOUND_ONE_KIB" ;;
        fan8) echo $((BOUND_ONE_KIB + (FAN - 1) * BOUND_PER_SINK_KIB)) ;;
        *) echo $((BOUND_ONE_KIB + BOUND_PER_SINK_KIB)) ;;
    esac
}

printf '\n'
printf 'records     %d (%d-byte JSON values, %d partitions, produced before the clock starts)\n' "$N" "$AVG" "$PARTITIONS"
printf 'sluice      new: %s%s\n' "$SLUICE_BUILD_DIR/sluice" "${BENCH_OLD:+, old: $BENCH_OLD}"
printf '%-6s %-4s %5s %8s %10s %6s %7s %13s %12s %9s %11s  %s\n' case bin round seconds records/s "cpu s" batch "peak RSS MiB" "max sampled" "bound MiB" "rate/old" "parked sink"
declare -A base_ms=()
for r in "${RESULTS[@]}"; do
    IFS='|' read -r name label round ms _ <<<"$r"
    [ "$label" != old ] || base_ms[$name-$round]=$ms
done
for r in "${RESULTS[@]}"; do
    IFS='|' read -r name label round ms total_ms hwm max_rss parks state note cpu per_batch <<<"$r"
    awk -v name="$name" -v label="$label" -v round="$round" -v ms="$ms" -v n="$N" -v hwm="$hwm" -v rss="$max_rss" -v cpu="$cpu" \
        -v per_batch="$per_batch" \
        -v bound="$(bound_kib "$name")" -v old="${base_ms[$name-$round]:-0}" \
        -v parks="$parks" -v state="$state" -v note="$note" -v total="$total_ms" 'BEGIN {
        printf "%-6s %-4s %5d %8.1f %10d %6.1f %7d %13.1f %12.1f %9.0f %11s  %s\n", name, label, round, ms / 1000,
            n * 1000 / (ms > 0 ? ms : 1), cpu, per_batch, hwm / 1024, rss / 1024, bound / 1024,
            (label == "new" && old > 0 ? sprintf("%.2fx", old / (ms > 0 ? ms : 1)) : "-"),
            (name == "alone" || name == "fan8" ? "-" : "state " state ", parks " parks) (note == "" ? "" : "; " note) \
            " (" sprintf("%.1f", total / 1000) " s from start)"
    }'
done
printf '\nseconds: first delivery to the healthy sinks to the last record in the slowest of them (the\n'
printf 'group join is not counted); peak RSS: VmHWM of the sluice process when every healthy sink had\n'
printf 'all %d records; "max sampled": the largest VmRSS seen in the 0.2 s samples; rate/old: the\n' "$N"
printf 'drain rate over the old binary'"'"'s in the same case (BENCH_OLD); cpu s: user + system CPU\n'
printf 'seconds of the process from its start (group join included) to the last record; batch: records\n'
printf 'per batch the healthy sinks delivered (delivered / batches in the admin API'"'"'s /sinks).\n'
printf '\nbound: peak RSS <= 64 MiB with one sink, + 8 MiB for each further sink (defaults):\n'
for r in "${RESULTS[@]}"; do
    IFS='|' read -r name label round _ _ hwm _ <<<"$r"
    b=$(bound_kib "$name")
    if [ "$hwm" -le "$b" ]; then verdict=within; else verdict=OVER; fi
    printf '  %-6s %-4s round %d %6.1f MiB: %s the bound of %d MiB\n' "$name" "$label" "$round" \
        "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')" "$verdict" $((b / 1024))
done

exit 0
