#!/usr/bin/env bash
# The position write is a compare-and-set: a process that lost the partition (a zombie after a
# rebalance) cannot apply the batch it has in flight. The "other owner" is played by hand, at
# the worst moment: after records 0..99 are in, a session takes the partition's row in
# sluice_offsets and moves it to 150, as if another process had written 100..149. sluice's next
# batch (100..199, expecting 100) is sent while that transaction holds the row, so it is in
# flight, blocked on the row, when the move commits. It must be refused whole (FENCED), none of
# its rows written, nothing dead-lettered; the sink reloads its position and goes on from 150.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
lib_init

lib_start_kafka events:1 sluice.dlq:1
lib_start_postgres
lib_psql "CREATE TABLE events (seq integer NOT NULL, off bigint NOT NULL)"
sluice_write_config "$WORK/sluice.json" pg-fence
# One batch for each hundred records produced together (linger), so its end is 200, not 150.
pg_sink_file events events '"table": "events", "mode": "insert", "columns": {"seq": "$.seq", "off": "@offset"}' \
    '{ "max_records": 1000, "linger_ms": 500 }'
make_records 100 1 "$WORK/first.tsv" 0
make_records 100 1 "$WORK/second.tsv" 100
lib_produce events "$WORK/first.tsv"
sluice_start "$WORK/sluice.json"
position_is() { [ "$(pg_value "SELECT next_offset FROM sluice_offsets WHERE sink = 'events' AND topic = 'events' AND partition = 0")" = "$1" ]; }
TIMEOUT=60 lib_wait_for position_is 100

# The other owner: takes the row, waits until sluice's batch is blocked on it, then commits.
cat >"$WORK/move.sql" <<'SQL'
BEGIN;
UPDATE sluice_offsets SET next_offset = 150 WHERE sink = 'events' AND topic = 'events' AND partition = 0;
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity
                          WHERE application_name LIKE 'sluice:%' AND wait_event_type = 'Lock');
        PERFORM pg_sleep(0.05);
    END LOOP;
    PERFORM pg_stat_clear_snapshot();
    IF NOT EXISTS (SELECT 1 FROM pg_stat_activity
                   WHERE application_name LIKE 'sluice:%' AND wait_event_type = 'Lock') THEN
        RAISE EXCEPTION 'no batch of sluice waited for the offsets row';
    END IF;
END $$;
COMMIT;
SQL
lib__spawn "$WORK/move.log" "$PG_BINDIR/psql" "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -f "$WORK/move.sql"
MOVER_PID=$LIB_LAST_PID
row_taken() {
    [ "$(pg_value "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psql' AND query LIKE 'DO %'")" -ge 1 ]
}
TIMEOUT=30 lib_wait_for row_taken
lib_produce events "$WORK/second.tsv"
wait "$MOVER_PID" || lib_fail "the session moving the position failed: $(cat "$WORK/move.log")"
lib__forget_pid "$MOVER_PID"
lib_pass "sluice's batch 100..199 was in flight, blocked on the offsets row, when the position moved to 150"

TIMEOUT=60 lib_wait_for position_is 200
sleep 0.5
grep -q 'stored position moved under us (stored position is 150, expected 100)' "$SLUICE_LOG" ||
    lib_fail "no fenced batch in the log: $(grep -i 'fenc\|moved\|events \[0\]' "$SLUICE_LOG" | tail -5)"
grep -q 'resumed at stored position 150' "$SLUICE_LOG" || lib_fail "the sink did not resume at 150"
seqs=$(pg_value "SELECT string_agg(seq::text, ' ' ORDER BY off) FROM events")
[ "$seqs" = "$(seq 0 99 | paste -sd' ') $(seq 150 199 | paste -sd' ')" ] ||
    lib_fail "events holds $(pg_value "SELECT count(*) FROM events") rows: $seqs"
[ "$(pg_value "SELECT count(*) FROM events WHERE off <> seq")" = 0 ] || lib_fail "a row has the wrong offset"
lib_pass "the batch in flight was refused whole (FENCED): 100..149 never written; the sink resumed at 150"
[ "$(lib_consume sluice.dlq 1 | wc -l)" -eq 0 ] || lib_fail "fenced records must not be dead-lettered"
lib_pass "records fenced off are left to their owner, not dead-lettered"
sluice_stop
lib_summary
