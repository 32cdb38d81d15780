#!/usr/bin/env bash
# Refused rows of a batch whose final commit was cut off unconfirmed are still dead-lettered
# when a later attempt finds the batch applied, even when an attempt in between failed.
# A batch of three records, the middle one refused by the server ("two" into an integer): the
# sink finds it by probing, then commits the two others in a final transaction. That commit
# waits for a synchronous standby that does not exist (written, not confirmed) when the server
# crashes. The server stays down long enough for the next attempt to fail (no connection within
# request_timeout_ms); it comes back with the commit replayed, and the attempt after that finds
# the batch applied: the refused record must be dead-lettered then, once.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
lib_init

lib_start_kafka items:1 sluice.dlq:1
lib_start_postgres
lib_psql "CREATE TABLE items (id integer PRIMARY KEY, qty integer NOT NULL)"
sluice_write_config "$WORK/sluice.json" pg-unconfirmed
pg_sink_file items items '"table": "items", "key_columns": ["id"], "columns": {"id": "$.id", "qty": "$.qty"},
    "request_timeout_ms": 1000' '{ "max_records": 100, "linger_ms": 1000 }'
sluice_start "$WORK/sluice.json"
TIMEOUT=30 lib_wait_for grep -q 'assigned items \[0\]' "$SLUICE_LOG"
grep -q 'table public.items checked' "$SLUICE_LOG" || lib_fail "the table was not checked at start"

lib_psql "ALTER SYSTEM SET synchronous_standby_names = 'nobody'" >/dev/null
lib_psql "SELECT pg_reload_conf()" >/dev/null
printf '%s\n' 'i1	{"id":1,"qty":1}' 'i2	{"id":2,"qty":"two"}' 'i3	{"id":3,"qty":3}' >"$WORK/items.tsv"
pg_produce items "$WORK/items.tsv"
TIMEOUT=30 lib_wait_for pg_commits_hanging
pg_crash
# Commits are confirmed again once the server is back.
lib__as_pg sed -i '/synchronous_standby_names/d' "$LIB_PG_DATA/postgresql.auto.conf"
TIMEOUT=30 lib_wait_for grep -q 'attempt [0-9]* failed: no connection to PostgreSQL within 1000 ms' "$SLUICE_LOG"
pg_start_again
lib_log "server back"

TIMEOUT=60 lib_wait_for pg_positions_reach items 3
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 1
grep -q 'items \[0\] up to 3 was applied already' "$SLUICE_LOG" ||
    lib_fail "the retry did not find the batch applied: the cut-off commit was not exercised"
items=$(pg_value "SELECT string_agg(id || '=' || qty, ',' ORDER BY id) FROM items")
[ "$items" = "1=1,3=3" ] || lib_fail "items holds $items, expected 1=1,3=3"
sleep 1   # a second dead letter would show by now
dlq=$(LIB_CONSUME_FORMAT='%k|%h\n' lib_consume sluice.dlq 5)
[ "$(printf '%s\n' "$dlq" | wc -l)" -eq 1 ] || lib_fail "expected one dead letter, got: $dlq"
grep -q '^i2|.*postgres refused the row: 22P02: invalid input syntax for type integer: \\\?"two' <<<"$dlq" ||
    lib_fail "the refused record was not dead-lettered with the server's message: $dlq"
sluice_stop
lib_pass "a refused record of a batch committed unconfirmed is dead-lettered once, after a failed attempt in between"
lib_summary
