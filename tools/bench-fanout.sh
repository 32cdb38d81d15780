#!/usr/bin/env bash
# bench-fanout: the CPU one topic costs sluice with 8 file sinks on it, next to 1 file sink, in
# one run. A figure, not an assertion (issue 17's goal: 8 sinks at most 4x the CPU of 1).
#
#   SLUICE_BUILD_DIR=build-rel bash tools/bench-fanout.sh [RECORDS]
#
# RECORDS (default 300,000) JSON values of ~250 bytes are produced first into the embedded Kafka
# (librdkafka's mock) over 64 partitions, which keeps them all. Then, for each binary and each
# sink count, a fresh `sluice run` (its own consumer group, so it reads everything from the
# start) drains the topic into that many file sinks (fsync off, so the figure is sluice's and
# not the disk's) until every sink has delivered every record (the admin API's /sinks), and the
# CPU the process used (utime + stime of every thread, /proc/PID/stat) is read at that moment;
# every sink's file is then checked to hold exactly RECORDS lines.
# It prints, per binary and sink count: seconds (first delivery to the last), CPU seconds, CPU
# per 100,000 records, and per binary the ratio of the CPU with the most sinks to the CPU with 1.
#
# Environment: BENCH_SINKS (default "1 8"), BENCH_PARTITIONS (default 64), BENCH_FSYNC (default
# false: the file sinks' "fsync"), BENCH_BASELINE=PATH (a second sluice binary, e.g. a copy of
# an older build, run on the same records in the same run, before the one under
# SLUICE_BUILD_DIR), BENCH_PERF=DIR (record each case with `perf record -g` into DIR/<case>.data;
# BENCH_PERF_ARGS replaces -g, e.g. "--call-graph dwarf" where libraries lack frame pointers),
# BENCH_KEEP_LOGS=1 (keep each case's sluice log in the work directory; with KEEP_WORK=1 it
# stays after the run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SLUICE_SOURCE_DIR:=$(cd "$here/.." && pwd)}"
source "$SLUICE_SOURCE_DIR/tests/integration/lib.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/sluice_lib.sh"

N=${1:-300000}
PARTITIONS=${BENCH_PARTITIONS:-64}
SINK_COUNTS=${BENCH_SINKS:-1 8}
FSYNC=${BENCH_FSYNC:-false}
lib_init
for tool in kcat jq curl; do
    command -v "$tool" >/dev/null || lib_fail "$tool is needed"
done
lib__need_tool sluice
lib__need_tool kafka-committed
BINARIES=()
if [ -n "${BENCH_BASELINE:-}" ]; then
    [ -x "$BENCH_BASELINE" ] || lib_fail "BENCH_BASELINE=$BENCH_BASELINE is not an executable"
    BINARIES+=("$BENCH_BASELINE")
fi
BINARIES+=("$SLUICE_BUILD_DIR/sluice")
TICK=$(getconf CLK_TCK)

lib_start_kafka "bench:$PARTITIONS" sluice.dlq:1
lib_log "writing $N records"
make_customer_records "$N" "$((N / 10 > 0 ? N / 10 : 1))" "$WORK/records.tsv"
AVG=$(awk -F'\t' '{ s += length($2) } END { printf "%d", s / NR }' "$WORK/records.tsv")
SLUICE_TMOUT_MULTIPLIER=${SLUICE_TMOUT_MULTIPLIER:-5} lib_produce bench "$WORK/records.tsv"
rm -f "$WORK/records.tsv"
in_topic=$("$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g bench-probe -t bench | awk '{ s += $3 } END { print s + 0 }')
[ "$in_topic" -eq "$N" ] || lib_fail "the topic holds $in_topic records, expected $N"

# The least "delivered" over the sinks of the admin API's /sinks; empty while it is not up.
least_delivered() {
    { curl -sS -m 5 "http://$ADMIN/sinks" 2>/dev/null || true; } |
        jq -r '[.sinks[].delivered] | min // empty' 2>/dev/null || true
}

# utime + stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat, after the command).
cpu_ticks() {
    local stat
    read -r stat <"/proc/$1/stat"
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}

RESULTS=()
run_case() {   # BINARY_INDEX SINKS
    local bin=${BINARIES[$1]} nsinks=$2 name="b$1-s$2"
    local d="$WORK/case-$name" delivered first_ms=0 start_ms end_ms deadline ticks lines perf_pid=
    mkdir -p "$d/sinks.d"
    ADMIN=127.0.0.1:$(lib_free_port)
    sluice_write_config "$d/sluice.json" "fanout-$name"
    jq --arg l "$ADMIN" --arg s "$d/sinks.d" '.admin.listen = $l | .sinks_dir = $s' "$d/sluice.json" >"$d/tmp.json"
    mv "$d/tmp.json" "$d/sluice.json"
    for i in $(seq 1 "$nsinks"); do
        cat >"$d/sinks.d/file$i.json" <<JSON
{ "name": "file$i", "type": "file", "topics": ["bench"],
  "batch": { "max_records": 1000, "max_bytes": 4194304, "linger_ms": 5 },
  "file": { "path": "$d/file$i.ndjson", "fsync": $FSYNC } }
JSON
    done
    "$bin" check -c "$d/sluice.json" >"$d/check.log" 2>&1 ||
        { cat "$d/check.log" >&2; lib_fail "$bin check refuses the configuration of $nsinks sinks"; }

    start_ms=$(lib_now_ms)
    SLUICE_RUNS=$((SLUICE_RUNS + 1))
    SLUICE_LOG=$WORK/sluice.$SLUICE_RUNS.log
    lib__spawn "$SLUICE_LOG" "$bin" run -c "$d/sluice.json"
    SLUICE_PID=$LIB_LAST_PID
    if [ -n "${BENCH_PERF:-}" ]; then
        mkdir -p "$BENCH_PERF"
        # shellcheck disable=SC2086
        lib__spawn "$d/perf.log" perf record ${BENCH_PERF_ARGS:--g} -F 499 -p "$SLUICE_PID" -o "$BENCH_PERF/$name.data"
        perf_pid=$LIB_LAST_PID
    fi
    deadline=$((start_ms + $(lib_tmout 600) * 1000))
    while :; do
        lib__alive "$SLUICE_PID" || lib_fail "sluice died with $nsinks sinks (see $SLUICE_LOG)"
        delivered=$(least_delivered)
        delivered=${delivered:-0}
        if [ "$first_ms" -eq 0 ] && [ "$delivered" -gt 0 ]; then first_ms=$(lib_now_ms); fi
        [ "$delivered" -lt "$N" ] || break
        [ "$(lib_now_ms)" -lt "$deadline" ] ||
            lib_fail "$name: the slowest sink delivered $delivered of $N records in $(lib_tmout 600) s"
        sleep 0.2
    done
    end_ms=$(lib_now_ms)
    ticks=$(cpu_ticks "$SLUICE_PID")
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        timeout 60 tail --pid="$perf_pid" -f /dev/null || true
    fi
    sluice_stop_noted
    if [ "${BENCH_KEEP_LOGS:-0}" = 1 ]; then cp "$SLUICE_LOG" "$d/"; fi
    for i in $(seq 1 "$nsinks"); do
        lines=$(wc -l <"$d/file$i.ndjson")
        [ "$lines" -eq "$N" ] || lib_fail "$name: file$i.ndjson has $lines lines, expected $N"
    done
    rm -f "$d"/*.ndjson
    RESULTS+=("$1|$nsinks|$((end_ms - first_ms))|$ticks|$SLUICE_STOP_NOTE")
    lib_log "$name: $nsinks sinks, $N records each in $((end_ms - first_ms)) ms, CPU $ticks ticks"
}

for b in "${!BINARIES[@]}"; do
    for s in $SINK_COUNTS; do
        run_case "$b" "$s"
    done
done

printf '\n'
printf 'records     %d (%d-byte JSON values, %d partitions, produced before the clock starts), file sinks, fsync %s\n' \
    "$N" "$AVG" "$PARTITIONS" "$FSYNC"
printf '%-40s %5s %8s %8s %13s\n' binary sinks seconds "CPU s" "CPU s/100k"
for r in "${RESULTS[@]}"; do
    IFS='|' read -r b nsinks ms ticks note <<<"$r"
    awk -v bin="${BINARIES[$b]}" -v s="$nsinks" -v ms="$ms" -v t="$ticks" -v hz="$TICK" -v n="$N" -v note="$note" 'BEGIN {
        printf "%-40s %5d %8.1f %8.2f %13.3f  %s\n", bin, s, ms / 1000, t / hz, t / hz * 100000 / n, note
    }'
done
printf '\nCPU s: utime + stime of the sluice process (all its threads) from its start to the moment\n'
printf 'every sink had delivered all %d records; this includes the start and the group join.\n' "$N"
for b in "${!BINARIES[@]}"; do
    base=
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r rb nsinks _ ticks _ <<<"$r"
        [ "$rb" = "$b" ] || continue
        if [ -z "$base" ]; then base=$ticks; base_sinks=$nsinks; continue; fi
        awk -v bin="${BINARIES[$b]}" -v s="$nsinks" -v bs="$base_sinks" -v t="$ticks" -v base="$base" 'BEGIN {
            printf "ratio %-34s CPU of %d sinks / CPU of %d: %.2fx\n", bin, s, bs, t / (base > 0 ? base : 1)
        }'
    done
done
exit 0
