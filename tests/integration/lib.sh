# shellcheck shell=bash
# Helpers for sluice's integration tests: real servers on 127.0.0.1, started by the test itself
# on free ports, under a throwaway directory, and stopped on exit whatever happens.
#
#   source "$(dirname "$0")/lib.sh"
#   lib_init
#   lib_start_kafka orders:4          # KAFKA_BROKERS, KAFKA_CONTROL, KAFKA_LOG, KAFKA_PID
#   lib_start_redis                   # REDIS_PORT, REDIS_PID, REDIS_DIR
#   lib_start_postgres                # PG_PORT, PG_CONNINFO, PG_BINDIR
#   lib_start_receiver                # RECEIVER_PORT, RECEIVER_URL, RECEIVER_OUT, RECEIVER_PID
#   lib_start_registry                # REGISTRY_URL, REGISTRY_OUT, REGISTRY_PID (tools/schema-registry)
#   ...
#   lib_pass "records reached redis"
#   lib_summary                       # "N passed, 0 failed"
#
# Environment: SLUICE_BUILD_DIR (where mock-kafka, http-receiver and sluice are; ctest sets it),
# SLUICE_SOURCE_DIR, SLUICE_TMOUT_MULTIPLIER (scales every timeout, for valgrind and slow CI),
# TIMEOUT (lib_wait_for's limit in seconds, default 30), KEEP_WORK=1 (keep $WORK for a look).
#
# Rules the helpers follow, and tests should too: start servers with lib__spawn (stdin from
# /dev/null, output to a log file, PID recorded for the cleanup); never call a lib_start_*
# inside $(...) (a subshell would lose the PID); wait for specific PIDs, never a bare `wait`,
# which would also wait for the servers; every wait has a limit.

LIB_PIDS=()            # servers started by this shell, stopped by lib_cleanup
LIB_LAST_PID=
LIB_PASSED=0
LIB_PG_DATA=           # set once PostgreSQL runs: lib_cleanup stops it
LIB_REDIS_PORT=        # kept so that a restarted redis comes back on the same port
LIB_RECEIVERS=0

# ---------------------------------------------------------------------------------------------
# Basics

lib_init() {
    set -euo pipefail
    : "${SLUICE_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
    : "${SLUICE_BUILD_DIR:=$SLUICE_SOURCE_DIR/build}"
    : "${SLUICE_TMOUT_MULTIPLIER:=1}"
    export SLUICE_SOURCE_DIR SLUICE_BUILD_DIR SLUICE_TMOUT_MULTIPLIER
    WORK=$(mktemp -d /tmp/sluice-test.XXXXXX)
    # Servers running as `nobody` (PostgreSQL) must be able to reach their directories.
    chmod 755 "$WORK"
    export WORK
    trap lib_cleanup EXIT
    # Turn signals into a normal exit so the EXIT trap runs and the servers are stopped.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # A command that fails outside lib_fail ends the test through set -e, which says nothing:
    # say which, in the test or a function of it (set -E). Not in subshells ($(...), &): -e does
    # not end those the same way, and a failure there may be expected and handled.
    set -E
    trap 'lib__on_error $? "${BASH_SOURCE[0]}" "$LINENO" "$BASH_COMMAND"' ERR
    lib_log "work dir $WORK"
}

lib__on_error() {
    [ -z "${LIB__EXITING:-}" ] && [ "$BASH_SUBSHELL" -eq 0 ] || return 0   # (bash runs it once more for the EXIT trap's status)
    printf 'FAIL: %s:%s: exit status %s of: %s\n' "$(basename "$2")" "$3" "$1" "$4" >&2
    lib__dump_logs
}

lib_log() {
    printf '# %s %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

lib_fail() {
    printf 'FAIL: %s\n' "$*" >&2
    lib__dump_logs
    exit 1
}

lib_pass() {
    LIB_PASSED=$((LIB_PASSED + 1))
    printf 'PASS: %s\n' "$*"
}

# The last line of a test: only reached when nothing failed, since lib_fail exits.
lib_summary() {
    printf '%d passed, 0 failed\n' "$LIB_PASSED"
}

# Milliseconds since the epoch, without forking (EPOCHREALTIME is bash 5).
lib_now_ms() {
    local t=${EPOCHREALTIME//[.,]/}
    echo $((t / 1000))
}

# SECONDS scaled by SLUICE_TMOUT_MULTIPLIER (which may be fractional), rounded up.
lib_tmout() {
    awk -v s="$1" -v m="${SLUICE_TMOUT_MULTIPLIER:-1}" \
        'BEGIN { v = s * m; i = int(v); if (i < v) i++; if (i < 1) i = 1; print i }'
}

# Retries CMD every 0.1 s until it succeeds; fails the test after TIMEOUT (default 30) seconds
# times the multiplier. CMD's output is discarded: it is a predicate.
lib_wait_for() {
    local rc=0
    lib__wait_until "" "$@" || rc=$?
    [ "$rc" -eq 0 ] || lib_fail "timed out after $(lib_tmout "${TIMEOUT:-30}")s waiting for: $*"
}

# 0 when CMD succeeded, 1 on timeout, 2 when PID (if not empty) died first.
lib__wait_until() {
    local pid=$1 deadline
    shift
    deadline=$(($(lib_now_ms) + $(lib_tmout "${TIMEOUT:-30}") * 1000))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [ -n "$pid" ] && ! lib__alive "$pid"; then
            return 2
        fi
        if [ "$(lib_now_ms)" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.1
    done
}

# True while PID runs. A dead child stays a zombie until waited for, and `kill -0` succeeds on
# a zombie, so look at its state.
lib__alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# lib__spawn LOG CMD...: starts a server in the background, stdin from /dev/null, stdout and
# stderr appended to LOG; its PID goes to LIB_LAST_PID and to the cleanup list.
lib__spawn() {
    local log=$1
    shift
    "$@" </dev/null >>"$log" 2>&1 &
    LIB_LAST_PID=$!
    LIB_PIDS+=("$LIB_LAST_PID")
}

lib__forget_pid() {
    local keep=() p
    for p in "${LIB_PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    LIB_PIDS=("${keep[@]}")
}

# lib__stop_pid PID SIGNAL GRACE: signal, wait up to GRACE seconds, then SIGKILL; reaps it.
# After a SIGKILL the `wait` comes at once: if bash reaped the child while running some other
# command, it would print a "Killed" line for it (it stays quiet for SIGTERM).
lib__stop_pid() {
    local pid=$1 sig=$2 grace=$3 deadline
    if [ "$sig" != KILL ]; then
        kill -"$sig" "$pid" 2>/dev/null || true
        deadline=$(($(lib_now_ms) + grace * 1000))
        while lib__alive "$pid" && [ "$(lib_now_ms)" -lt "$deadline" ]; do
            sleep 0.1
        done
    fi
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    lib__forget_pid "$pid"
}

lib_cleanup() {
    local rc=$? pid deadline
    set +e
    LIB__EXITING=1
    trap - INT TERM ERR
    for pid in "${LIB_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    deadline=$(($(lib_now_ms) + 3000))
    for pid in "${LIB_PIDS[@]}"; do
        while lib__alive "$pid" && [ "$(lib_now_ms)" -lt "$deadline" ]; do
            sleep 0.1
        done
        if lib__alive "$pid"; then
            lib_log "pid $pid ignored SIGTERM for 3 s: SIGKILL"
        fi
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    LIB_PIDS=()
    if [ -n "$LIB_PG_DATA" ]; then
        lib__as_pg "$PG_BINDIR/pg_ctl" -D "$LIB_PG_DATA" -m immediate -w -t 10 stop >/dev/null 2>&1
        LIB_PG_DATA=
    fi
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        if [ "${KEEP_WORK:-0}" = 1 ]; then
            lib_log "kept $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    return "$rc"
}

# The tail of every log under $WORK, so a failure in CI shows what the servers said.
lib__dump_logs() {
    local f
    [ -n "${WORK:-}" ] && [ -d "$WORK" ] || return 0
    while IFS= read -r f; do
        printf -- '--- last lines of %s\n' "${f#"$WORK"/}" >&2
        tail -n 15 "$f" >&2
    done < <(find "$WORK" -name '*.log' -type f 2>/dev/null | sort)
}

lib__need_tool() {
    [ -x "$SLUICE_BUILD_DIR/$1" ] ||
        lib_fail "$SLUICE_BUILD_DIR/$1 not found: build it first (SLUICE_BUILD_DIR=$SLUICE_BUILD_DIR)"
}

# ---------------------------------------------------------------------------------------------
# Ports

# True when some TCP socket (any state, IPv4 or IPv6) has local port $1. Reads /proc rather
# than running ss, which a minimal Debian may lack (iproute2 is not installed everywhere).
lib__port_in_use() {
    local want=$1 f laddr rest
    for f in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$f" ] || continue
        while read -r _ laddr rest; do
            [[ $laddr == *:* ]] || continue   # the header line
            if ((16#${laddr##*:} == want)); then
                return 0
            fi
        done <"$f"
    done
    return 1
}

# Prints a TCP port on 127.0.0.1 that nothing uses. It picks below the kernel's ephemeral range
# (which the mock brokers and every outgoing connection draw from), and never hands out the
# same port twice in one test. A race with another process remains possible: the lib_start_*
# helpers retry on another port when their server cannot bind.
lib_free_port() {
    local lo=20000 hi=60000 eph p i
    read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph=
    if [ -n "$eph" ] && [ "$eph" -gt 21000 ]; then
        hi=$((eph - 1))
    fi
    for ((i = 0; i < 500; i++)); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        if [ -f "$WORK/.ports" ] && grep -qx "$p" "$WORK/.ports"; then
            continue
        fi
        if ! lib__port_in_use "$p"; then
            echo "$p" >>"$WORK/.ports"
            echo "$p"
            return 0
        fi
    done
    lib_fail "no free TCP port found in $lo-$hi"
}

# ---------------------------------------------------------------------------------------------
# Kafka: librdkafka's mock cluster in its own process (tools/mock-kafka.c)

# lib_start_kafka [--brokers N] [TOPIC:PARTITIONS]...
lib_start_kafka() {
    local d="$WORK/kafka" brokers=1 args=() rc=0
    while [ $# -gt 0 ]; do
        case $1 in
            --brokers) brokers=$2; shift 2 ;;
            *) args+=(--topic "$1"); shift ;;
        esac
    done
    lib__need_tool mock-kafka
    mkdir -p "$d"
    rm -f "$d/bootstrap"
    lib__spawn "$d/mock-kafka.log" "$SLUICE_BUILD_DIR/mock-kafka" --brokers "$brokers" "${args[@]}" \
        --bootstrap-file "$d/bootstrap" --control "$d/control"
    KAFKA_PID=$LIB_LAST_PID
    KAFKA_LOG=$d/mock-kafka.log
    KAFKA_CONTROL=$d/control
    lib__wait_until "$KAFKA_PID" test -s "$d/bootstrap" || rc=$?
    case $rc in
        0) ;;
        2) lib_fail "mock-kafka exited during start" ;;
        *) lib_fail "mock-kafka wrote no bootstrap file" ;;
    esac
    KAFKA_BROKERS=$(cat "$d/bootstrap")
    export KAFKA_BROKERS KAFKA_PID KAFKA_LOG KAFKA_CONTROL
    lib_log "kafka (mock, $brokers broker(s)) at $KAFKA_BROKERS"
}

# lib_kafka_ctl COMMAND [ARGS...]: sends one command to the mock's control FIFO, waits for its
# numbered reply in the log, prints it; returns 1 when the mock answered ERR.
lib_kafka_ctl() {
    local n line
    n=$(grep -c '^CONTROL ' "$KAFKA_LOG" || true)
    n=$((n + 1))
    # The mock holds the FIFO open, so this never blocks while it runs; the timeout covers a
    # mock that died (the open would then wait for a reader forever).
    # shellcheck disable=SC2016 # $1 and $2 belong to the inner shell
    timeout "$(lib_tmout 5)" bash -c 'printf "%s\n" "$1" >"$2"' _ "$*" "$KAFKA_CONTROL" ||
        lib_fail "mock-kafka control FIFO not accepting '$*'"
    TIMEOUT=10 lib_wait_for grep -q "^CONTROL $n " "$KAFKA_LOG"
    line=$(grep "^CONTROL $n " "$KAFKA_LOG")
    echo "$line"
    [[ $line == "CONTROL $n OK "* ]]
}

# lib_produce TOPIC FILE: one record per line of FILE, "key<TAB>value"; the default
# partitioner hashes the key, so keys spread over the partitions. Returns when all are acked.
lib_produce() {
    timeout "$(lib_tmout 60)" kcat -P -q -b "$KAFKA_BROKERS" -t "$1" -K '\t' -z none \
        -X message.timeout.ms=$(( $(lib_tmout 30) * 1000 )) -l "$2" ||
        lib_fail "kcat could not produce $2 to $1"
}

# An awk function for kcat's "%h" headers ("k=v,k2=v2"): header(h, name) is the value of
# header name (it may hold commas: it runs up to the next sluice.* or __rule.* header), or the
# awk variable missing when there is none. Use as: awk -v missing=? "$LIB_AWK_HEADER"' { ... }'.
# shellcheck disable=SC2034 # used by the helpers of the tests
LIB_AWK_HEADER='
function header(h, name,   i, rest, j, k) {
    i = index("," h, "," name "=")
    if (!i) return missing
    rest = substr(h, i + length(name) + 1)
    j = index(rest, ",sluice.")
    k = index(rest, ",__rule.")
    if (k && (!j || k < j)) j = k
    return j ? substr(rest, 1, j - 1) : rest
}'

# lib_consume TOPIC COUNT: prints up to COUNT records from the beginning of every partition,
# one per line: "partition<TAB>offset<TAB>key<TAB>headers<TAB>value" (headers as
# "k=v,k2=v2"); stops early at the end of the topic. LIB_CONSUME_FORMAT overrides the format.
lib_consume() {
    timeout "$(lib_tmout 60)" kcat -C -q -b "$KAFKA_BROKERS" -t "$1" -o beginning -e -c "$2" \
        -f "${LIB_CONSUME_FORMAT:-%p\t%o\t%k\t%h\t%s\n}"
}

# ---------------------------------------------------------------------------------------------
# Redis

# lib_start_redis [--appendonly]: a redis-server child on a free port, data in $WORK/redis.
# Called again after lib_stop_redis/lib_kill_redis, it comes back on the same port and
# directory (pass --appendonly again to reload an AOF).
lib_start_redis() {
    local aof=no d="$WORK/redis" port attempt rc
    [ "${1:-}" = --appendonly ] && aof=yes
    mkdir -p "$d"
    for attempt in 1 2 3; do
        port=${LIB_REDIS_PORT:-$(lib_free_port)}
        lib__spawn "$d/redis.log" redis-server --bind 127.0.0.1 --port "$port" --dir "$d" \
            --save '' --appendonly "$aof" --daemonize no
        REDIS_PID=$LIB_LAST_PID
        rc=0
        TIMEOUT=${TIMEOUT:-30} lib__wait_until "$REDIS_PID" lib__redis_pong "$port" || rc=$?
        if [ "$rc" -eq 0 ]; then
            REDIS_PORT=$port
            REDIS_DIR=$d
            LIB_REDIS_PORT=$port
            export REDIS_PORT REDIS_PID REDIS_DIR
            lib_log "redis on port $port (pid $REDIS_PID, appendonly $aof)"
            return 0
        fi
        lib__stop_pid "$REDIS_PID" KILL 1
        # A fixed port (a restart) that cannot be bound is a failure, not a reason to move.
        if [ "$rc" -ne 2 ] || [ -n "$LIB_REDIS_PORT" ]; then
            break
        fi
        lib_log "redis could not start on port $port (attempt $attempt), trying another"
    done
    lib_fail "redis-server did not start (see redis/redis.log)"
}

lib__redis_pong() {
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

# Clean shutdown (SIGTERM: redis writes its AOF), waited for.
lib_stop_redis() {
    lib__stop_pid "$REDIS_PID" TERM "$(lib_tmout 10)"
}

# Crash (SIGKILL), waited for.
lib_kill_redis() {
    lib__stop_pid "$REDIS_PID" KILL 1
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: initdb + pg_ctl as `nobody` (the server refuses root), data under $WORK

lib__as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

lib__pg_bindir() {
    local d
    if [ -n "${PG_BINDIR:-}" ]; then
        echo "$PG_BINDIR"
        return 0
    fi
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -n -r); do
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    done
    lib_fail "no PostgreSQL server binaries under /usr/lib/postgresql (install postgresql-15)"
}

lib_start_postgres() {
    local d="$WORK/pg" port attempt
    PG_BINDIR=$(lib__pg_bindir)
    mkdir -p "$d"
    chmod 755 "$d"
    [ "$(id -u)" -ne 0 ] || chown nobody: "$d"
    lib__as_pg "$PG_BINDIR/initdb" -D "$d/data" -U postgres --auth=trust --no-sync -E UTF8 \
        --locale=C >"$WORK/pg-initdb.log" 2>&1 || lib_fail "initdb failed (see pg-initdb.log)"
    for attempt in 1 2 3; do
        port=$(lib_free_port)
        # pg_ctl -w returns once the server accepts connections, or fails (port taken...).
        if lib__as_pg "$PG_BINDIR/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t "$(lib_tmout 60)" \
            -o "-p $port -k $d -c listen_addresses=127.0.0.1 -c fsync=off" start \
            </dev/null >>"$WORK/pg-ctl.log" 2>&1; then
            LIB_PG_DATA=$d/data
            PG_PORT=$port
            PG_CONNINFO="host=127.0.0.1 port=$port user=postgres dbname=postgres"
            export PG_PORT PG_CONNINFO PG_BINDIR
            lib_log "postgres on port $port"
            return 0
        fi
        # It may have half-started; make sure nothing is left before the next try.
        lib__as_pg "$PG_BINDIR/pg_ctl" -D "$d/data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
        lib_log "postgres could not start on port $port (attempt $attempt)"
    done
    lib_fail "postgres did not start (see pg/postgres.log, pg-ctl.log)"
}

# lib_psql SQL [PSQL ARGS...]: runs SQL, prints tuples only, unaligned ("a|b" per row).
lib_psql() {
    local sql=$1
    shift
    PGCONNECT_TIMEOUT=5 timeout "$(lib_tmout 60)" "$PG_BINDIR/psql" "$PG_CONNINFO" -X -q -t -A \
        -v ON_ERROR_STOP=1 -c "$sql" "$@"
}

# ---------------------------------------------------------------------------------------------
# HTTP receiver (tools/http-receiver.c)

# lib__start_http_tool TOOL DIR [args...]: starts TOOL (http-receiver, schema-registry) on a free
# port with DIR/port, DIR/out.ndjson and DIR/TOOL.log; its PID is LIB_LAST_PID.
lib__start_http_tool() {
    local tool=$1 d=$2 rc=0
    shift 2
    lib__need_tool "$tool"
    mkdir -p "$d"
    : >"$d/out.ndjson"
    lib__spawn "$d/$tool.log" "$SLUICE_BUILD_DIR/$tool" --port 0 --port-file "$d/port" \
        --out "$d/out.ndjson" "$@"
    lib__wait_until "$LIB_LAST_PID" test -s "$d/port" || rc=$?
    [ "$rc" -eq 0 ] || lib_fail "$tool did not start (see ${d#"$WORK"/}/$tool.log)"
}

# lib_start_receiver [http-receiver args...], e.g. --mode '{"mode":"status","status":503}'.
# With RECEIVER_TOKEN set, the control API requires it (lib_receiver_* send it).
lib_start_receiver() {
    local d extra=()
    LIB_RECEIVERS=$((LIB_RECEIVERS + 1))
    d="$WORK/receiver.$LIB_RECEIVERS"
    [ -z "${RECEIVER_TOKEN:-}" ] || extra=(--control-token "$RECEIVER_TOKEN")
    lib__start_http_tool http-receiver "$d" "${extra[@]}" "$@"
    RECEIVER_PID=$LIB_LAST_PID
    RECEIVER_PORT=$(cat "$d/port")
    RECEIVER_URL=http://127.0.0.1:$RECEIVER_PORT
    RECEIVER_OUT=$d/out.ndjson
    export RECEIVER_PORT RECEIVER_URL RECEIVER_OUT RECEIVER_PID
    lib_log "http receiver at $RECEIVER_URL"
}

# lib_start_registry [schema-registry args...], e.g. --load FILE --user U --password P: the
# project's Schema Registry (tools/schema-registry.c) on a free port. Sets REGISTRY_URL,
# REGISTRY_PORT, REGISTRY_PID, REGISTRY_OUT (its NDJSON request log) and REGISTRY_DIR.
LIB_REGISTRIES=0
lib_start_registry() {
    local d
    LIB_REGISTRIES=$((LIB_REGISTRIES + 1))
    d="$WORK/registry.$LIB_REGISTRIES"
    lib__start_http_tool schema-registry "$d" "$@"
    REGISTRY_PID=$LIB_LAST_PID
    REGISTRY_PORT=$(cat "$d/port")
    REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT
    REGISTRY_OUT=$d/out.ndjson
    REGISTRY_DIR=$d
    export REGISTRY_PORT REGISTRY_URL REGISTRY_OUT REGISTRY_PID REGISTRY_DIR
    lib_log "schema registry at $REGISTRY_URL"
}

lib__receiver_curl() {
    local auth=()
    [ -z "${RECEIVER_TOKEN:-}" ] || auth=(-H "X-Control-Token: $RECEIVER_TOKEN")
    curl -fsS -m "$(lib_tmout 10)" "${auth[@]}" "$@"
}

# lib_receiver_mode JSON: switches the receiver's behaviour (see tools/http-receiver.c).
lib_receiver_mode() {
    lib__receiver_curl -o /dev/null -H 'Content-Type: application/json' -d "$1" \
        "$RECEIVER_URL/_control" || lib_fail "receiver refused mode $1"
}

# Prints {"requests":N,"answered":N,"pending":N}.
lib_receiver_stats() {
    lib__receiver_curl "$RECEIVER_URL/_control/stats"
}
