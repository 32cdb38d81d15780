# shellcheck shell=bash
# Helpers of the postgres sink's tests (on top of lib.sh and sluice_lib.sh).

# pg_sink_file NAME TOPIC POSTGRES_JSON [BATCH_JSON]: writes $WORK/sinks.d/NAME.json for a
# postgres sink on $PG_CONNINFO; POSTGRES_JSON is the rest of its "postgres" section.
pg_sink_file() {
    local name=$1 topic=$2 section=$3 batch=${4:-'{ "max_records": 200, "linger_ms": 5 }'}
    mkdir -p "$WORK/sinks.d"
    cat >"$WORK/sinks.d/$name.json" <<JSON
{ "name": "$name", "type": "postgres", "topics": ["$topic"],
  "batch": $batch,
  "retry": { "max_attempts": 1000, "initial_backoff_ms": 50, "max_backoff_ms": 1000 },
  "postgres": { "conninfo": "$PG_CONNINFO", $section } }
JSON
}

# pg_produce TOPIC FILE: like lib_produce, but a line "key<TAB>" (empty value) is a tombstone.
pg_produce() {
    timeout "$(lib_tmout 60)" kcat -P -q -Z -b "$KAFKA_BROKERS" -t "$1" -K '\t' -z none \
        -X message.timeout.ms=$(($(lib_tmout 30) * 1000)) -l "$2" ||
        lib_fail "kcat could not produce $2 to $1"
}

# pg_value SQL: the single value SQL returns.
pg_value() {
    lib_psql "$1"
}

# pg_positions_reach SINK N: true once the positions the sink stored add up to N (every record
# of its topics, when they start at offset 0).
pg_positions_reach() {
    [ "$(lib_psql "SELECT coalesce(sum(next_offset), 0) FROM sluice_offsets WHERE sink = '$1'" 2>/dev/null)" = "$2" ]
}

# pg_run_refused CONFIG EXPECTED: sluice run must exit non-zero (within 30 s) and say EXPECTED.
pg_run_refused() {
    local log=$WORK/refused.$RANDOM.log rc=0
    timeout "$(lib_tmout 30)" "$SLUICE_BUILD_DIR/sluice" run -c "$1" </dev/null >"$log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
        cat "$log" >&2
        lib_fail "sluice run did not refuse to start (exit $rc)"
    fi
    # The log is logfmt, which escapes the quotes of the message: compare without backslashes.
    if ! tr -d '\134' <"$log" | grep -qF -- "$2"; then
        cat "$log" >&2
        lib_fail "the refusal does not say: $2"
    fi
}

# pg_kill_backends: pg_terminate_backend on every connection of sluice; prints how many.
pg_kill_backends() {
    lib_psql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'sluice:%'" ||
        echo 0
}

# pg_commits_hanging: true while a commit of sluice waits for a synchronous standby (set
# synchronous_standby_names to one that does not exist: commits are written, not confirmed).
pg_commits_hanging() {
    [ "$(lib_psql "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'sluice:%'
                   AND wait_event = 'SyncRep'")" -ge 1 ]
}

# pg_crash: stops the server like a crash (immediate: no checkpoint, clients cut).
pg_crash() {
    lib__as_pg "$PG_BINDIR/pg_ctl" -D "$WORK/pg/data" -m immediate -w -t 10 stop >>"$WORK/pg-ctl.log" 2>&1 ||
        lib_fail "postgres did not stop"
}

# pg_start_again: starts the server again on the same port; it replays its WAL.
pg_start_again() {
    local d=$WORK/pg
    lib__as_pg "$PG_BINDIR/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t "$(lib_tmout 60)" \
        -o "-p $PG_PORT -k $d -c listen_addresses=127.0.0.1 -c fsync=off" start \
        </dev/null >>"$WORK/pg-ctl.log" 2>&1 || lib_fail "postgres did not start again on port $PG_PORT"
}

# pg_restart [PAUSE]: a crash, PAUSE seconds (default 0.5) down, and a start.
pg_restart() {
    pg_crash
    sleep "${1:-0.5}"
    pg_start_again
}
