#!/usr/bin/env bash
# A reload starts the postgres sink again from inside a callback of the running loop: it must
# not connect or check the table with blocking calls there. Here the server stops answering
# (its postmaster is stopped with SIGSTOP: new connections hang until connect_timeout, 120 s)
# while sluice reloads. The reload must end at once, the admin API must answer all along, and
# once the server answers again the table is checked on the new connection and records flow.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
lib_init

lib_start_kafka events:1 sluice.dlq:1
lib_start_postgres
lib_psql "CREATE TABLE events (off bigint PRIMARY KEY, seq integer NOT NULL)"
sluice_write_config "$WORK/sluice.json" pg-reload
sluice_admin_on "$WORK/sluice.json"
# A connect_timeout of 2 minutes: a blocking connect would hold the loop for that long, far past
# the bounds below (which leave a slow machine room), so the verdict does not hang on speed.
pg_sink_file events events '"table": "events", "mode": "insert", "columns": {"off": "@offset", "seq": "$.seq"},
    "connect_timeout_ms": 120000'
make_records 100 1 "$WORK/first.tsv" 0
make_records 100 1 "$WORK/second.tsv" 100
lib_produce events "$WORK/first.tsv"

sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for pg_positions_reach events 100
[ "$(grep -c 'table public.events checked' "$SLUICE_LOG")" -eq 1 ] || lib_fail "the first start did not check the table"

POSTMASTER=$(head -n 1 "$LIB_PG_DATA/postmaster.pid")
# Whatever happens below, the server must be able to stop at the cleanup.
trap 'rc=$?; kill -CONT "$POSTMASTER" 2>/dev/null; (exit $rc); lib_cleanup' EXIT
kill -STOP "$POSTMASTER"
started=$(lib_now_ms)
kill -HUP "$SLUICE_PID"
# Until the new pipeline runs, the loop must keep answering (a blocking connect would hold it
# for the 120 s of connect_timeout).
until grep -q 'reloaded ' "$SLUICE_LOG"; do
    curl -sS -f -m "$(lib_tmout 10)" "$ADMIN/healthz" >/dev/null ||
        lib_fail "the admin API did not answer within $(lib_tmout 10) s during the reload: the loop was blocked"
    [ $(($(lib_now_ms) - started)) -lt $(($(lib_tmout 30) * 1000)) ] ||
        lib_fail "the reload did not end within $(lib_tmout 30) s while the server did not answer"
    sleep 0.2
done
took=$(($(lib_now_ms) - started))
grep -q 'started on the running loop (a reload): the table is checked once connected' "$SLUICE_LOG" ||
    lib_fail "the reloaded sink did not take the asynchronous check"
! grep -q 'cannot connect at start' "$SLUICE_LOG" || lib_fail "the reload tried a blocking connection"
lib_pass "a reload while PostgreSQL does not answer ends in $took ms; the admin API answered all along"

kill -CONT "$POSTMASTER"
checked_twice() { [ "$(grep -c 'table public.events checked' "$SLUICE_LOG")" -eq 2 ]; }
TIMEOUT=30 lib_wait_for checked_twice
lib_produce events "$WORK/second.tsv"
TIMEOUT=60 lib_wait_for pg_positions_reach events 200
report=$(lib_psql "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM events")
[ "$report" = "200|200|0|199" ] || lib_fail "events: count|distinct seq|min|max = $report, expected 200|200|0|199"
sluice_stop
lib_pass "once the server answers, the table is checked on the new connection and the records flow, each once"
lib_summary
