# shellcheck shell=bash
# Helpers shared by the tests that run sluice itself (on top of lib.sh).

# Writes a main config to $1 for the running mock Kafka, with sinks_dir $WORK/sinks.d. The admin
# API listens on a free port (several sluice processes may run at once).
sluice_write_config() {
    local file=$1 group=${2:-sluice-test}
    mkdir -p "$WORK/sinks.d"
    cat >"$file" <<JSON
{
  "kafka": {
    "bootstrap.servers": "$KAFKA_BROKERS",
    "group.id": "$group",
    "fetch.wait.max.ms": "50",
    "session.timeout.ms": "6000",
    "topic.metadata.refresh.interval.ms": "1000"
  },
  "admin": { "listen": "127.0.0.1:0" },
  "dead_letter_topic": "sluice.dlq",
  "shutdown_timeout_ms": 10000,
  "commit_interval_ms": 200,
  "sinks_dir": "$WORK/sinks.d"
}
JSON
}

# sluice_admin_on FILE: the main config FILE gets an admin API on a free port with a random
# token; sets ADMIN (its base URL) and SLUICE_ADMIN_TOKEN. `admin PATH` then GETs from it.
sluice_admin_on() {
    export SLUICE_ADMIN_TOKEN="tok-$RANDOM-$RANDOM"
    ADMIN_PORT=$(lib_free_port)
    ADMIN=http://127.0.0.1:$ADMIN_PORT
    jq --arg listen "127.0.0.1:$ADMIN_PORT" '. + {admin: {listen: $listen, token: "${SLUICE_ADMIN_TOKEN}"}}' \
        "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

admin() {
    curl -sS -f -m "$(lib_tmout 10)" -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "$ADMIN$1"
}

# admin_sink NAME JQ: a field of sink NAME in GET /sinks (e.g. .state); admin_sink_is NAME STATE.
admin_sink() {
    admin /sinks | jq -r --arg n "$1" ".sinks[] | select(.name == \$n) | $2"
}

admin_sink_is() {
    [ "$(admin_sink "$1" .state)" = "$2" ]
}

# admin_post PATH [BODY]: an authorized POST to the admin API.
admin_post() {
    curl -sS -f -m "$(lib_tmout 10)" -X POST -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" ${2:+-d "$2"} "$ADMIN$1"
}

# sluice_start FILE [OPTION...]: starts sluice run in the background: SLUICE_PID, log in
# $WORK/sluice.N.log.
SLUICE_RUNS=0
sluice_start() {
    SLUICE_RUNS=$((SLUICE_RUNS + 1))
    SLUICE_LOG=$WORK/sluice.$SLUICE_RUNS.log
    lib__spawn "$SLUICE_LOG" "$SLUICE_BUILD_DIR/sluice" run -c "$1" "${@:2}"
    SLUICE_PID=$LIB_LAST_PID
    lib_log "sluice run #$SLUICE_RUNS (pid $SLUICE_PID), log $SLUICE_LOG"
}

# Sends SIGTERM and waits (bounded) for a clean exit; fails on any other exit code.
sluice_stop() {
    local rc=0 limit
    limit=$(lib_tmout 30)
    kill -TERM "$SLUICE_PID"
    for _ in $(seq $((limit * 10))); do
        kill -0 "$SLUICE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SLUICE_PID" 2>/dev/null; then
        cat "$SLUICE_LOG" >&2
        lib_fail "sluice did not stop within ${limit}s of SIGTERM"
    fi
    wait "$SLUICE_PID" || rc=$?
    lib__forget_pid "$SLUICE_PID"
    [ "$rc" -eq 0 ] || { cat "$SLUICE_LOG" >&2; lib_fail "sluice exited $rc after SIGTERM (expected 0)"; }
}

# The benchmarks' stop, which never fails the run: SIGTERM, up to 40 s for the drain (a hanging
# target may make it wait its shutdown_timeout_ms), then SIGKILL. SLUICE_STOP_NOTE says what went
# wrong, for a table ("did not stop in 40 s; exit status 137; "), or is empty.
sluice_stop_noted() {
    local rc=0
    SLUICE_STOP_NOTE=
    kill -TERM "$SLUICE_PID"
    timeout 40 tail --pid="$SLUICE_PID" -f /dev/null || true
    if lib__alive "$SLUICE_PID"; then SLUICE_STOP_NOTE="did not stop in 40 s; "; fi
    lib__stop_pid "$SLUICE_PID" KILL 1
    wait "$SLUICE_PID" 2>/dev/null || rc=$?
    [ "$rc" -eq 0 ] || SLUICE_STOP_NOTE+="exit status $rc; "
}

# proc_vm_kib FIELD PID: a VmXXX figure (VmRSS, VmHWM) of /proc/PID/status in KiB.
proc_vm_kib() {
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/status" 2>/dev/null || echo 0
}

sluice_kill9() {
    kill -KILL "$SLUICE_PID"
    wait "$SLUICE_PID" 2>/dev/null || true
    lib__forget_pid "$SLUICE_PID"
    lib_log "sluice killed with SIGKILL"
}

# make_customer_records N KEYS OUT: N "key<TAB>json" lines of ~250-byte customer profiles (11
# fields, a nested object and an array) over KEYS keys, seq 0..N-1: the benchmarks' data.
make_customer_records() {
    awk -v n="$1" -v k="$2" 'BEGIN {
        tiers[0] = "gold"; tiers[1] = "silver"; tiers[2] = "basic"
        for (i = 0; i < n; i++) {
            id = i % k
            printf "c-%d\t{\"id\":\"c-%08d\",\"name\":\"Customer %d\",\"email\":\"customer%d@example.com\",", id, id, id, id
            printf "\"tier\":\"%s\",\"country\":\"DE\",\"balance\":%d.%02d,\"visits\":%d,", tiers[i % 3], i % 100000, i % 100, i % 1000
            printf "\"created_at\":\"2024-01-01T00:00:00Z\",\"tags\":[\"news\",\"beta\"],"
            printf "\"address\":{\"city\":\"Berlin\",\"zip\":\"1%04d\"},\"seq\":%d}\n", i % 10000, i
        }
    }' >"$3"
}

# True when FILE has at least N lines (for lib_wait_for, which runs it again each time).
has_lines() {
    [ "$(lines_of "$1")" -ge "$2" ]
}

# True when TOPIC holds at least N records.
topic_has() {
    [ "$(kcat -C -q -b "$KAFKA_BROKERS" -t "$1" -o beginning -e -f 'x\n' 2>/dev/null | wc -l)" -ge "$2" ]
}

# Lines in a file (0 when it does not exist yet).
lines_of() {
    if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

# Writes N records "key<TAB>json" to a file: keys k-0..k-(K-1) round robin, seq 0..N-1.
make_records() {
    local n=$1 keys=$2 out=$3 start=${4:-0}
    awk -v n="$n" -v k="$keys" -v s="$start" 'BEGIN {
        for (i = s; i < s + n; i++)
            printf "k-%d\t{\"id\":\"k-%d\",\"seq\":%d,\"tier\":\"%s\"}\n", i % k, i % k, i, (i % 10 == 0 ? "gold" : "basic")
    }' >"$out"
}

# Checks an NDJSON file sink output: every seq in [0, N) exactly once, offsets unique and
# increasing per partition in file order, and seq increasing per key in file order.
check_file_output() {
    local file=$1 n=$2 report
    report=$(jq -rs --argjson n "$n" '
        . as $all
        | ($all | length) as $count
        | ([$all[] | .value.seq] | unique | length) as $distinct
        | ([$all[] | "\(.partition):\(.offset)"] | unique | length) as $positions
        | ([$all | group_by(.partition)[] | [.[].offset] | . == (sort) ] | all) as $ordered
        | ([$all | group_by(.key)[] | [.[].value.seq] | . == (sort) ] | all) as $keyordered
        | ([$all[] | .value.seq] | min) as $min | ([$all[] | .value.seq] | max) as $max
        | "\($count) \($distinct) \($positions) \($ordered) \($keyordered) \($min) \($max)"' "$file")
    read -r count distinct positions ordered keyordered min max <<<"$report"
    [ "$count" -eq "$n" ] || lib_fail "$file has $count records, expected $n"
    [ "$distinct" -eq "$n" ] || lib_fail "$file has $distinct distinct records of $n (duplicates or losses)"
    [ "$positions" -eq "$n" ] || lib_fail "$file repeats a (partition, offset)"
    [ "$ordered" = true ] || lib_fail "$file: offsets out of order within a partition"
    [ "$keyordered" = true ] || lib_fail "$file: records of one key out of order"
    [ "$min" -eq 0 ] && [ "$max" -eq $((n - 1)) ] || lib_fail "$file: seq range $min..$max, expected 0..$((n - 1))"
}

# browse ARGS... URL: headless Chromium on the admin API's status page, e.g. --dump-dom (the DOM
# after the page's script ran) or --screenshot=FILE.
browse() {
    timeout "$(lib_tmout 60)" chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$WORK/chromium" --virtual-time-budget=4000 "$@"
}
