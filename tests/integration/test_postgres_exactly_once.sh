#!/usr/bin/env bash
# Exactly once in PostgreSQL across faults, counted: records stream into an insert-mode
# table (no unique constraint, so a record applied twice would show as a second row) while
# sluice's backends are killed with pg_terminate_backend, the server is restarted like a
# crash, commits are made to hang after they were written (synchronous replication to a
# standby that does not exist) and then cut off, so sluice cannot know whether they happened
# (its retries find out from the stored positions), and sluice is killed with SIGKILL and
# started again while the server is down (it checks the table once the server is back). The
# table ends with exactly one row per record produced, each source (partition, offset) once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
lib_init

lib_start_kafka events:4 sluice.dlq:1
lib_start_postgres
lib_psql "CREATE TABLE events (seq integer NOT NULL, part integer NOT NULL, off bigint NOT NULL)"
sluice_write_config "$WORK/sluice.json" pg-eo
pg_sink_file events events '"table": "events", "mode": "insert",
    "columns": {"seq": "$.seq", "part": "@partition", "off": "@offset"}' '{ "max_records": 100, "linger_ms": 5 }'

# The records stream in (chunks of 500, 0.5 s apart) until the faults are done, so each fault
# below hits a live stream whatever the speed of the machine.
CHUNK=500
rel_start_producer events "$WORK/producer" "$CHUNK" 0.5 997

rows() { lib_psql "SELECT count(*) FROM events" 2>/dev/null || echo 0; }
has_rows() { [ "$(rows)" -ge "$1" ]; }
kill_backends() {
    local n=0
    for _ in $(seq "$1"); do
        n=$((n + $(pg_kill_backends)))
        sleep 0.3
    done
    KILLED=$((KILLED + n))
    lib_log "terminated $n backends; $(rows) rows so far"
}
KILLED=0

sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for has_rows 500
kill_backends 5

pg_restart 0.5
lib_log "server crashed and restarted; $(rows) rows so far"
TIMEOUT=60 lib_wait_for has_rows $(($(rows) + 500))

# Commits written but not confirmed: they wait for a standby that never answers, and their
# connections are cut while they wait.
lib_psql "ALTER SYSTEM SET synchronous_standby_names = 'nobody'" >/dev/null
lib_psql "SELECT pg_reload_conf()" >/dev/null
TIMEOUT=30 lib_wait_for pg_commits_hanging
sleep 0.5
kill_backends 1
lib_psql "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
lib_psql "SELECT pg_reload_conf()" >/dev/null
TIMEOUT=60 lib_wait_for has_rows $(($(rows) + 500))

sluice_kill9
lib_log "sluice killed at $(rows) rows"
before=$(rows)
pg_crash
sluice_start "$WORK/sluice.json"
TIMEOUT=30 lib_wait_for grep -q 'cannot connect at start' "$SLUICE_LOG"
sleep 1
pg_start_again
lib_log "server back"
TIMEOUT=60 lib_wait_for has_rows $((before + 500))
grep -q 'table public.events checked' "$SLUICE_LOG" || lib_fail "the table was not checked after the server came back"
kill_backends 3
[ "$KILLED" -gt 0 ] || lib_fail "no backend of sluice was terminated: the fault did not happen"

rel_stop_producer
N=$((REL_CHUNKS * CHUNK))
lib_log "produced $N records"
TIMEOUT=120 lib_wait_for pg_positions_reach events "$N"
sleep 1   # anything applied twice would show up now
sluice_stop

report=$(lib_psql "SELECT count(*), count(DISTINCT (part, off)), count(DISTINCT seq), min(seq), max(seq) FROM events")
[ "$report" = "$N|$N|$N|0|$((N - 1))" ] ||
    lib_fail "rows|distinct (partition, offset)|distinct seq|min|max = $report, expected $N|$N|$N|0|$((N - 1))"
lib_pass "$N records through $KILLED killed backends, a server crash-restart and a kill -9 of sluice: $N rows, each offset once"
applied=$(cat "$WORK"/sluice.*.log | grep -c 'was applied already' || true)
[ "$applied" -ge 1 ] || lib_fail "no retried batch was found applied already: the unconfirmed commits were not exercised"
lib_pass "$applied batch(es) whose commit was cut off unconfirmed were found applied on retry, and not applied again"
lib_summary
