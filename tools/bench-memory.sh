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
# It prints, per case: records, seconds (first delivery to the last), records/s, peak RSS MiB,
# and the ratio of the peak to the baseline's.
#
# Environment: BENCH_CASES (default "alone pause hang"), BENCH_PARTITIONS (default 64), BENCH_PARKED_OPTS (JSON merged into the parked
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
CASES=${BENCH_CASES:-alone pause hang}
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

RESULTS=()
run_case() {
    local name=$1
    local d="$WORK/case-$name" delivered=0 first_ms=0 start_ms end_ms deadline hwm rss max_rss=0
    local parks=- state=- lost note sinks
    mkdir -p "$d/sinks.d"
    ADMIN=127.0.0.1:$(lib_free_port)
    sluice_write_config "$d/sluice.json" "mem-$name"
    jq --arg l "$ADMIN" --arg s "$d/sinks.d" '.admin.listen = $l | .sinks_dir = $s' "$d/sluice.json" >"$d/tmp.json"
    mv "$d/tmp.json" "$d/sluice.json"
    cat >"$d/sinks.d/healthy.json" <<JSON
{ "name": "healthy", "type": "file", "topics": ["bench"],
  "batch": { "max_records": 1000, "max_bytes": 4194304, "linger_ms": 5 },
  "file": { "path": "$d/healthy.ndjson", "fsync": false } }
JSON
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
        *) lib_fail "unknown case $name (alone, pause, hang)" ;;
    esac
    "$SLUICE_BUILD_DIR/sluice" check -c "$d/sluice.json" >"$d/check.log" 2>&1 ||
        { cat "$d/check.log" >&2; lib_fail "sluice check refuses the $name case's configuration"; }

    start_ms=$(lib_now_ms)
    sluice_start "$d/sluice.json"
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
            delivered=$(jq -r '.sinks[] | select(.name == "healthy") | .delivered' <<<"$sinks" 2>/dev/null || true)
            printf '%s %d %s %s\n' "$name" "$(($(lib_now_ms) - start_ms))" "$rss" \
                "$(jq -r '[.sinks[] | "\(.name):delivered=\(.delivered),buffered=\(.buffered),bytes=\(.buffered_bytes),state=\(.state)"] | join(" ")' <<<"$sinks" 2>/dev/null)" \
                >>"$BENCH_TRACE"
        else
            delivered=$(sink_field healthy delivered)
        fi
        delivered=${delivered:-0}
        if [ "$first_ms" -eq 0 ] && [ "$delivered" -gt 0 ]; then first_ms=$(lib_now_ms); fi
        [ "$delivered" -lt "$N" ] || break
        [ "$(lib_now_ms)" -lt "$deadline" ] ||
            lib_fail "$name: the healthy sink delivered $delivered of $N records in $(lib_tmout 600) s"
        sleep 0.2
    done
    end_ms=$(lib_now_ms)
    hwm=$(proc_vm_kib VmHWM "$SLUICE_PID")
    lost=$(sink_field healthy records_lost)
    [ "${lost:-0}" -eq 0 ] || lib_fail "$name: retention deleted $lost records before the healthy sink read them"
    if [ "$name" != alone ]; then
        parks=$(sink_field parked parks)
        state=$(sink_field parked state)
    fi
    # Stop; a hanging target may make the drain wait its shutdown_timeout_ms.
    sluice_stop_noted
    note=$SLUICE_STOP_NOTE
    if [ "${BENCH_KEEP_LOGS:-0}" = 1 ]; then cp "$SLUICE_LOG" "$d/"; fi
    rm -f "$d"/*.ndjson
    RESULTS+=("$name|$((end_ms - first_ms))|$((end_ms - start_ms))|$hwm|$max_rss|$parks|$state|$note")
    lib_log "$name: $N records in $((end_ms - first_ms)) ms after the first delivery, VmHWM $((hwm / 1024)) MiB"
}

for c in $CASES; do
    run_case "$c"
done

base_hwm=
printf '\n'
printf 'records     %d (%d-byte JSON values, %d partitions, produced before the clock starts)\n' "$N" "$AVG" "$PARTITIONS"
printf 'sluice      %s\n' "$SLUICE_BUILD_DIR/sluice"
printf '%-6s %8s %10s %13s %12s %9s %11s  %s\n' case seconds records/s "peak RSS MiB" "max sampled" "vs alone" "over alone" "parked sink"
for r in "${RESULTS[@]}"; do
    IFS='|' read -r name ms total_ms hwm max_rss parks state note <<<"$r"
    [ "$name" != alone ] || base_hwm=$hwm
    awk -v name="$name" -v ms="$ms" -v n="$N" -v hwm="$hwm" -v rss="$max_rss" -v base="${base_hwm:-0}" \
        -v parks="$parks" -v state="$state" -v note="$note" -v total="$total_ms" 'BEGIN {
        printf "%-6s %8.1f %10d %13.1f %12.1f %9s %11s  %s\n", name, ms / 1000, n * 1000 / (ms > 0 ? ms : 1),
            hwm / 1024, rss / 1024, (base > 0 ? sprintf("%.2fx", hwm / base) : "-"),
            (base > 0 ? sprintf("%+.0f MiB", (hwm - base) / 1024) : "-"),
            (name == "alone" ? "-" : "state " state ", parks " parks) (note == "" ? "" : "; " note) \
            " (" sprintf("%.1f", total / 1000) " s from start)"
    }'
done
printf '\nseconds: first delivery to the healthy sink to its last (the group join is not counted);\n'
printf 'peak RSS: VmHWM of the sluice process when the healthy sink had all %d records; "max sampled":\n' "$N"
printf 'the largest VmRSS seen in the 0.2 s samples. The parked sink of "hang" may hold up to its\n'
printf 'max_buffered_records / max_buffered_bytes (defaults 100000 / 64 MiB, as counted by the router)\n'
printf 'before it is parked, plus one batch per partition in flight after.\n'
# The stated bound: a parked (or paused) sink costs at most twice its max_buffered_bytes over
# the healthy sink alone (the router's count of a record's memory is an estimate; malloc's
# overhead and the batches in flight come on top of it).
if [ -n "$base_hwm" ]; then
    parked_bytes=$(jq -n --argjson o "${BENCH_PARKED_OPTS:-{\}}" '$o.max_buffered_bytes // 67108864')
    bound_kib=$((base_hwm + 2 * parked_bytes / 1024))
    printf '\nbound: peak RSS <= alone + 2 x max_buffered_bytes of the parked sink = %.1f MiB\n' \
        "$(awk -v k="$bound_kib" 'BEGIN { printf "%.1f", k / 1024 }')"
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r name _ _ hwm _ <<<"$r"
        [ "$name" != alone ] || continue
        if [ "$hwm" -le "$bound_kib" ]; then verdict=within; else verdict=OVER; fi
        printf '  %-6s %.1f MiB: %s the bound\n' "$name" "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')" "$verdict"
    done
fi

exit 0
