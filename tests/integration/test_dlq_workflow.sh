#!/usr/bin/env bash
# Dead letters as a workflow (`sluice dlq`), end to end with a running sluice, PostgreSQL and a
# file sink on the same topic:
# - 200 orders of which 20 break a CHECK constraint of the table: PostgreSQL dead-letters them
#   with the server's message; the file sink takes all 200;
# - `sluice dlq list` groups the 20 letters by sink, stage and reason; `show` prints them, filtered;
# - the cause is fixed (the constraint dropped); `redrive` sends the chosen letters (first one
#   partition's by --topic/--partition/--offsets, then the rest by --sink) through redrive_topic:
#   PostgreSQL applies each exactly once (an insert-mode table without a key: a duplicate would be
#   a second row), the file sink gets none of them, and a redrive run again sends nothing;
# - --sink chooses that sink's letters (never another sink's); without redrive_topic, redrive refuses.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
lib_init

lib_start_kafka orders:2 sluice.dlq:1 sluice.redrive:2 other:1
lib_start_postgres
lib_psql "CREATE TABLE orders (id integer NOT NULL, amount integer CONSTRAINT amount_not_negative CHECK (amount >= 0))"
sluice_write_config "$WORK/sluice.json" dlq-workflow
jq '. + {redrive_topic: "sluice.redrive"}' "$WORK/sluice.json" >"$WORK/tmp.json" && mv "$WORK/tmp.json" "$WORK/sluice.json"
sluice_admin_on "$WORK/sluice.json"
pg_sink_file pg orders '"table": "orders", "mode": "insert", "columns": {"id": "$.id", "amount": "$.amount"}'
cat >"$WORK/sinks.d/audit.json" <<JSON
{ "name": "audit", "type": "file", "topics": ["orders"], "file": { "path": "$WORK/audit.ndjson" } }
JSON
cat >"$WORK/sinks.d/other.json" <<JSON
{ "name": "other", "type": "file", "topics": ["other"], "file": { "path": "$WORK/other.ndjson" } }
JSON

N=200
awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "o-%d\t{\"id\":%d,\"amount\":%d}\n", i, i, (i % 10 == 0 ? -i : i) }' \
    >"$WORK/orders.tsv"
lib_produce orders "$WORK/orders.tsv"
sluice_start "$WORK/sluice.json"
rows_are() { [ "$(lib_psql "SELECT count(*) FROM orders")" = "$1" ]; }
TIMEOUT=60 lib_wait_for rows_are $((N - N / 10)) || lib_fail "orders has $(lib_psql "SELECT count(*) FROM orders") rows"
TIMEOUT=60 lib_wait_for topic_has sluice.dlq $((N / 10)) || lib_fail "fewer than $((N / 10)) dead letters"
TIMEOUT=60 lib_wait_for has_lines "$WORK/audit.ndjson" $N || lib_fail "audit has $(lines_of "$WORK/audit.ndjson") lines"

dlq() { "$SLUICE_BUILD_DIR/sluice" dlq "$@" -c "$WORK/sluice.json"; }
list=$(dlq list --json)
[ "$(jq -s length <<<"$list")" = 1 ] || lib_fail "sluice dlq list: $list"
jq -e --argjson n $((N / 10)) '.count == $n and .sink == "pg" and .stage == "sink" and .topic == "orders"
    and (.reason | contains("amount_not_negative"))' <<<"$list" >/dev/null || lib_fail "sluice dlq list: $list"
grep -qE "^ +20  pg +sink +orders \[" <<<"$(dlq list)" || lib_fail "sluice dlq list (table): $(dlq list)"
lib_pass "sluice dlq list groups the 20 letters by sink, stage and reason (the constraint's name in it)"

show=$(dlq show --sink pg --limit 3)
[ "$(wc -l <<<"$show")" = 3 ] || lib_fail "show --limit 3 printed $(wc -l <<<"$show") lines"
jq -e '.sink == "pg" and (.key | startswith("o-")) and (.value | fromjson | .amount < 0) and .letter.offset >= 0' \
    <<<"$(head -1 <<<"$show")" >/dev/null || lib_fail "sluice dlq show: $show"
[ -z "$(dlq show --sink audit)" ] || lib_fail "show --sink audit found letters"
lib_pass "sluice dlq show prints the letters (key, value, place), filtered by sink and limited"

# --sink chooses a sink's letters: another sink's are not re-driven to it.
out=$(dlq redrive --sink other) || lib_fail "redrive --sink other: $out"
grep -q "^re-drove 0 letters to sluice.redrive; 0 already re-driven, 0 refused (of 0 chosen)" <<<"$out" ||
    lib_fail "redrive --sink other said: $out"

# The cause is fixed; one partition's letters first, then the rest.
lib_psql "ALTER TABLE orders DROP CONSTRAINT amount_not_negative" >/dev/null
in_p0=$(dlq show --topic orders --partition 0 | wc -l)
[ "$in_p0" -gt 0 ] && [ "$in_p0" -lt $((N / 10)) ] || lib_fail "partition 0 holds $in_p0 of the letters (the test wants some in each)"
out=$(dlq redrive --topic orders --partition 0 --offsets 0-1000000) || lib_fail "redrive of partition 0: $out"
grep -q "^re-drove $in_p0 letters to sluice.redrive; 0 already re-driven" <<<"$out" || lib_fail "redrive said: $out"
TIMEOUT=60 lib_wait_for rows_are $((N - N / 10 + in_p0)) || lib_fail "after partition 0's re-drive: $(lib_psql "SELECT count(*) FROM orders") rows"
out=$(dlq redrive --sink pg) || lib_fail "redrive --sink pg: $out"
grep -q "^re-drove $((N / 10 - in_p0)) letters to sluice.redrive; $in_p0 already re-driven" <<<"$out" || lib_fail "redrive said: $out"
TIMEOUT=60 lib_wait_for rows_are $N || lib_fail "after the re-drive: $(lib_psql "SELECT count(*) FROM orders") rows"
out=$(dlq redrive --sink pg) || lib_fail "redrive again: $out"
grep -q "^re-drove 0 letters to sluice.redrive; $((N / 10)) already re-driven" <<<"$out" || lib_fail "redrive again said: $out"
# Settled: every sink's position on the redrive topic is at its end, and so is the commit.
redrive_settled() {
    admin /sinks | jq -e '[.sinks[].positions[] | select(.topic == "sluice.redrive")] as $p
        | ($p | length) == 6 and ([$p[] | .next == .high_watermark and .committed == .high_watermark] | all)' >/dev/null
}
TIMEOUT=30 lib_wait_for redrive_settled ||
    lib_fail "the redrive topic is not consumed to its end: $(admin /sinks | jq -c '[.sinks[] | {name, positions}]')"
[ "$(lib_psql "SELECT count(*) FROM orders")" = $N ] || lib_fail "orders has $(lib_psql "SELECT count(*) FROM orders") rows"
[ "$(lib_psql "SELECT count(DISTINCT id) FROM orders")" = $N ] || lib_fail "a re-driven record was applied twice"
[ "$(lib_psql "SELECT count(*) FROM orders WHERE amount < 0")" = $((N / 10)) ] || lib_fail "the re-driven rows are not the refused ones"
[ "$(lines_of "$WORK/audit.ndjson")" = $N ] || lib_fail "the file sink got re-driven records: $(lines_of "$WORK/audit.ndjson") lines"
lib_pass "re-driven by partition and offsets, then by sink: each of the 20 applied once, by pg only; a second run sends none"
sluice_stop

jq 'del(.redrive_topic)' "$WORK/sluice.json" >"$WORK/no-redrive.json"
rc=0
out=$("$SLUICE_BUILD_DIR/sluice" dlq redrive -c "$WORK/no-redrive.json" --sink pg 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q 'set "redrive_topic"' <<<"$out" || lib_fail "redrive without redrive_topic: exit $rc: $out"
lib_pass "redrive refuses without redrive_topic, saying what to set"
lib_summary
