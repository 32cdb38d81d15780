#!/usr/bin/env bash
# A database outage longer than the sink's retries is not the records' fault: batches that ran
# out of attempts while PostgreSQL was down (or whose connection dropped mid-commit, so they may
# be applied) are not dead-lettered. The sink is parked and keeps trying; when the server is
# back every record is applied exactly once and the dead-letter topic stays empty.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
lib_init

lib_start_kafka events:2 sluice.dlq:1
lib_start_postgres
lib_psql "CREATE TABLE events (seq integer NOT NULL, part integer NOT NULL, off bigint NOT NULL)"
sluice_write_config "$WORK/sluice.json" pg-outage
cat >"$WORK/sinks.d/events.json" <<JSON
{ "name": "events", "type": "postgres", "topics": ["events"],
  "batch": { "max_records": 50, "linger_ms": 5 },
  "retry": { "max_attempts": 2, "initial_backoff_ms": 50, "max_backoff_ms": 200 },
  "postgres": { "conninfo": "$PG_CONNINFO", "table": "events", "mode": "insert",
                "connect_timeout_ms": 1000, "request_timeout_ms": 500,
                "columns": { "seq": "\$.seq", "part": "@partition", "off": "@offset" } } }
JSON
rows() { pg_value "SELECT count(*) FROM events" 2>/dev/null || echo 0; }
has_rows() { [ "$(rows)" -ge "$1" ]; }

make_records 500 50 "$WORK/first.tsv" 0
make_records 500 50 "$WORK/second.tsv" 500
lib_produce events "$WORK/first.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for has_rows 500

pg_crash
lib_produce events "$WORK/second.tsv"
# Two attempts with backoffs of at most 200 ms are spent many times over in these seconds.
TIMEOUT=30 lib_wait_for grep -q 'attempts failed: .*(the target did not answer: retrying, not skipped)' "$SLUICE_LOG"
sleep 3
! topic_has sluice.dlq 1 || lib_fail "records were dead-lettered during the outage: $(lib_consume sluice.dlq 1)"
lib_pass "PostgreSQL down past retry.max_attempts: the sink is parked, nothing dead-lettered"

pg_start_again
TIMEOUT=90 lib_wait_for has_rows 1000
sleep 1   # anything applied twice would show up now
report=$(pg_value "SELECT count(*) || '|' || count(DISTINCT (part, off)) || '|' || count(DISTINCT seq) || '|' || min(seq) || '|' || max(seq) FROM events")
[ "$report" = "1000|1000|1000|0|999" ] || lib_fail "rows|distinct (partition, offset)|distinct seq|min|max = $report, expected 1000|1000|1000|0|999"
! topic_has sluice.dlq 1 || lib_fail "records were dead-lettered: $(lib_consume sluice.dlq 1)"
sluice_stop
lib_pass "after the outage all 1000 records are in the table once each; the dead-letter topic is empty"
lib_summary
