#!/usr/bin/env bash
# The postgres sink against a real PostgreSQL:
# - a missing table, a missing column, or key columns without a unique constraint stop
#   `sluice run` at start with a message naming the table and the column;
# - upsert mode: 3,000 updates and tombstones of 150 keys over 4 partitions end with the table
#   equal to the last value of every key (deleted when it was a tombstone), including a jsonb
#   column holding the whole document, an array column and a numeric one;
# - insert mode on the same topic: every record that is not a tombstone is a row, once, with
#   its topic, partition, offset and timestamp;
# - a poison record (a string where the column is an integer) in the middle of a batch is
#   dead-lettered with the server's message, and the batch's other records are applied in
#   order; when the poison was the last record of its key, the key's earlier record stands;
#   a violation of a deferred foreign key (checked at COMMIT) is found and dead-lettered too.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
lib_init

lib_start_kafka accounts:4 items:1 sluice.dlq:1
lib_start_postgres
lib_psql "CREATE TABLE accounts (id text PRIMARY KEY, name varchar(40) NOT NULL, balance numeric(12,2),
                                 tags text[], doc jsonb, seen_at timestamptz);
          CREATE TABLE events (seq integer NOT NULL, k text, topic text, part integer, off bigint, ts timestamptz);
          CREATE TABLE items (id integer PRIMARY KEY, qty integer NOT NULL, note text);
          CREATE TABLE items_log (n bigserial, id integer, qty integer);
          CREATE TABLE known_qty (q integer PRIMARY KEY);
          INSERT INTO known_qty VALUES (1), (2), (5), (7), (11);
          CREATE TABLE items_ref (id integer PRIMARY KEY,
                                  qty integer REFERENCES known_qty DEFERRABLE INITIALLY DEFERRED);"
sluice_write_config "$WORK/sluice.json" pg-test

# ---- refused at start -----------------------------------------------------------------------
pg_sink_file bad accounts '"table": "acounts", "key_columns": ["id"], "columns": {"name": "$.name"}'
pg_run_refused "$WORK/sluice.json" 'table acounts does not exist in the search_path (public)'
pg_sink_file bad accounts '"table": "accounts", "key_columns": ["id"], "columns": {"nmae": "$.name"}'
pg_run_refused "$WORK/sluice.json" 'table public.accounts has no column "nmae" (did you mean "name"?)'
pg_sink_file bad accounts '"table": "public.accounts", "key_columns": ["name"], "columns": {"id": "$.id"}'
pg_run_refused "$WORK/sluice.json" 'table public.accounts has no unique constraint on (name)'
rm "$WORK/sinks.d/bad.json"
lib_pass "a missing table, a missing column and a key without a unique constraint stop sluice at start, named"

# ---- upsert, insert, jsonb, poison ----------------------------------------------------------
pg_sink_file accounts accounts '"table": "accounts", "key_columns": ["id"],
    "columns": {"name": "$.name", "balance": "$.balance", "tags": "$.tags", "doc": "$", "seen_at": "@timestamp"}'
pg_sink_file events accounts '"table": "events", "mode": "insert",
    "columns": {"seq": "$.seq", "k": "@key", "topic": "@topic", "part": "@partition", "off": "@offset", "ts": "@timestamp"}'
# One batch per partition (linger) so the poison lands in the middle of one.
pg_sink_file items items '"table": "items", "key_columns": ["id"], "columns": {"id": "$.id", "qty": "$.qty"}' \
    '{ "max_records": 100, "linger_ms": 1500 }'
pg_sink_file items-log items '"table": "items_log", "mode": "insert", "columns": {"id": "$.id", "qty": "$.qty"}' \
    '{ "max_records": 100, "linger_ms": 1500 }'
pg_sink_file items-ref items '"table": "items_ref", "key_columns": ["id"], "columns": {"id": "$.id", "qty": "$.qty"}' \
    '{ "max_records": 100, "linger_ms": 1500 }'

# 3,000 records of 150 keys; every 7th record of a key is a tombstone, and so is the last one
# of every third key.
N=3000
awk -v n=$N 'BEGIN {
    for (i = 0; i < n; i++) {
        k = i % 150; v = int(i / 150);
        if (v % 7 == 6 || (v == n / 150 - 1 && k % 3 == 0)) { printf "k-%d\t\n", k; continue }
        printf "k-%d\t{\"name\":\"n-%d-%d\",\"balance\":%d.25,\"tags\":[\"t%d\",\"b c\"],\"seq\":%d,\"nested\":{\"v\":%d}}\n", k, k, v, i, v, i, v
    } }' >"$WORK/accounts.tsv"
pg_produce accounts "$WORK/accounts.tsv"
records=$(wc -l <"$WORK/accounts.tsv")
tombstones=$(grep -c $'\t$' "$WORK/accounts.tsv")

cat >"$WORK/items.tsv" <<'TSV'
i1	{"id":1,"qty":1}
i2	{"id":2,"qty":2}
i1	{"id":1,"qty":11}
i3	{"id":3,"qty":"three"}
i4	{"id":4,"qty":4}
i1	{"id":1,"qty":"x"}
i5	{"id":5,"qty":5}
i6	{"qty":6}
i7	{"id":7,"qty":7}
TSV
pg_produce items "$WORK/items.tsv"

sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for pg_positions_reach accounts "$records"
TIMEOUT=60 lib_wait_for pg_positions_reach events "$records"
TIMEOUT=60 lib_wait_for pg_positions_reach items 9
TIMEOUT=60 lib_wait_for pg_positions_reach items-log 9
TIMEOUT=60 lib_wait_for pg_positions_reach items-ref 9
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 9

# The expected table: the last record of every key, unless it was a tombstone.
awk -F '\t' '{ last[$1] = $2 } END { for (k in last) if (last[k] != "") printf "%s\t%s\n", k, last[k] }' \
    "$WORK/accounts.tsv" | sort >"$WORK/expected.tsv"
lib_psql "CREATE TABLE expected (id text, doc jsonb)"
lib_psql "\\copy expected FROM '$WORK/expected.tsv'"
diff=$(lib_psql "SELECT count(*) FROM accounts a FULL JOIN expected e USING (id)
                 WHERE a.doc IS DISTINCT FROM e.doc OR a.name IS DISTINCT FROM e.doc->>'name'
                    OR a.balance IS DISTINCT FROM (e.doc->>'balance')::numeric
                    OR a.tags IS DISTINCT FROM ARRAY(SELECT jsonb_array_elements_text(e.doc->'tags'))
                    OR a.seen_at IS NULL")
rows=$(lib_psql "SELECT count(*) FROM accounts")
[ "$diff" = 0 ] || lib_fail "accounts differs from the last value of each key in $diff rows"
# 150 keys, the last record of every third one a tombstone: 100 rows, as the expected table says.
if [ "$rows" != 100 ] || [ "$(wc -l <"$WORK/expected.tsv")" != 100 ]; then
    lib_fail "accounts has $rows rows, expected 100 (50 keys deleted by their last record)"
fi
lib_pass "upsert: $records updates and tombstones left $rows rows, each the last value of its key (jsonb document, array, numeric)"

report=$(lib_psql "SELECT count(*), count(DISTINCT (part, off)), count(DISTINCT seq), min(seq), max(seq),
                          count(*) FILTER (WHERE topic <> 'accounts' OR ts IS NULL OR k IS NULL)
                   FROM events")
[ "$report" = "$((records - tombstones))|$((records - tombstones))|$((records - tombstones))|0|$((N - 1))|0" ] ||
    lib_fail "events (insert mode): count|distinct positions|distinct seq|min|max|bad = $report"
lib_pass "insert: $((records - tombstones)) rows, one per record, tombstones ignored, topic/partition/offset/timestamp filled"

items=$(lib_psql "SELECT string_agg(id || '=' || qty, ',' ORDER BY id) FROM items")
[ "$items" = "1=11,2=2,4=4,5=5,7=7" ] || lib_fail "items holds $items"
log=$(lib_psql "SELECT string_agg(coalesce(id::text, '-') || '=' || qty, ',' ORDER BY n) FROM items_log")
[ "$log" = "1=1,2=2,1=11,4=4,5=5,-=6,7=7" ] || lib_fail "items_log (insert order) holds $log"
dlq=$(LIB_CONSUME_FORMAT='%h|%s\n' lib_consume sluice.dlq 9 | sort)
[ "$(printf '%s\n' "$dlq" | grep -c 'invalid input syntax for type integer: \\\?"three\\\?"')" -eq 3 ] ||
    lib_fail "the poison record was not dead-lettered by the three sinks with the server's message: $dlq"
[ "$(printf '%s\n' "$dlq" | grep -c 'invalid input syntax for type integer: \\\?"x\\\?"')" -eq 3 ] ||
    lib_fail "the second poison record was not dead-lettered by the three sinks: $dlq"
printf '%s\n' "$dlq" | grep 'sluice.sink=items,' | grep -q 'key column "id" is missing or null in the value' ||
    lib_fail "the record without id was not dead-lettered by the upsert sink: $dlq"
grep -q 'postgres refused the row: 22P02' <<<"$dlq" || lib_fail "dead letters lack the SQLSTATE: $dlq"
lib_pass "poison records in the middle of a batch were dead-lettered with the server's message; the rest applied in order"

refs=$(lib_psql "SELECT string_agg(id || '=' || qty, ',' ORDER BY id) FROM items_ref")
[ "$refs" = "1=11,2=2,5=5,7=7" ] || lib_fail "items_ref holds $refs"
printf '%s\n' "$dlq" | grep 'sluice.sink=items-ref,' | grep -q '23503: insert or update on table' ||
    lib_fail "the record breaking the deferred foreign key was not dead-lettered with the server's message: $dlq"
lib_pass "a record breaking a deferred foreign key (checked at COMMIT) was found and dead-lettered; the rest applied"

sluice_stop
for s in items items-log items-ref; do
    grep "sink=$s type=postgres" "$SLUICE_LOG" | grep -qE 'delivered=[0-9]+ dead_lettered=[0-9]+ .*batches=1([^0-9]|$)' ||
        lib_fail "$s: the 9 items records did not go in one batch"
done
lib_pass "the items records went in one batch per sink"

# ---- a record dropped at a partition's tail -------------------------------------------------
# The last record of items has no id: items and items-ref dead-letter it, so no batch of theirs
# carries it. Their stored positions must still move past it (a batch of no record), or a
# restart would read it again and dead-letter it a second time.
printf 'i8\t{"qty":8}\n' >"$WORK/tail.tsv"
pg_produce items "$WORK/tail.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 11
for s in items items-log items-ref; do
    TIMEOUT=30 lib_wait_for pg_positions_reach "$s" 10
done
lib_pass "the positions of items and items-ref moved past a dead-lettered record at the partition's tail"
sluice_stop
sluice_start "$WORK/sluice.json"
TIMEOUT=30 lib_wait_for grep -q 'assigned items \[0\]' "$SLUICE_LOG"
grep -q 'assigned items \[0\]: committed 10, starting at 10' "$SLUICE_LOG" ||
    lib_fail "after a restart items [0] does not start past its last record: $(grep 'assigned items' "$SLUICE_LOG")"
sleep 2   # a record read again would be dead-lettered by now
dlq=$(lib_consume sluice.dlq 20 | wc -l)
[ "$dlq" -eq 11 ] || lib_fail "the dead-letter topic holds $dlq records after a restart, expected 11"
sluice_stop
lib_pass "after a restart the record dropped at the tail is not read again, nor dead-lettered twice"

# ---- an upsert of the same values leaves the row alone --------------------------------------
# Item 1 comes again with its stored qty, item 2 with a new one: only item 2 gets a new row
# version (xmin), so an unchanged record costs the server no write (nor update triggers).
same=$(lib_psql "SELECT qty FROM items WHERE id = 1")
other=$(lib_psql "SELECT qty FROM items WHERE id = 2")
xmin1=$(lib_psql "SELECT xmin FROM items WHERE id = 1")
xmin2=$(lib_psql "SELECT xmin FROM items WHERE id = 2")
[ "$same" = 11 ] && [ "$other" = 2 ] || lib_fail "items 1 and 2 hold $same and $other, expected 11 and 2"
printf 'i1\t{"id":1,"qty":11}\ni2\t{"id":2,"qty":5}\n' >"$WORK/again.tsv"   # 5: known to items-ref too
pg_produce items "$WORK/again.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=30 lib_wait_for pg_positions_reach items 12
sluice_stop
got=$(lib_psql "SELECT string_agg(id || '=' || qty || ':' || (xmin::text = CASE id WHEN 1 THEN '$xmin1' ELSE '$xmin2' END)::text,
                                  ',' ORDER BY id) FROM items WHERE id IN (1, 2)")
[ "$got" = "1=11:true,2=5:false" ] ||
    lib_fail "after an unchanged and a changed record: $got, expected 1=11:true,2=5:false (qty:same row version)"
lib_pass "upsert: a record with the stored values left its row version alone, a changed one was written"
lib_summary
