#!/usr/bin/env bash
# 10,000 keyed records over 4 partitions go through `sluice run` into the file sink and arrive
# complete, once each, in per-partition (and so per-key) order. A second sink on the same topic
# with a filter gets exactly the matching records; a record the file sink cannot take (a key that
# is not UTF-8) reaches the dead-letter topic with its reason and origin; SIGTERM drains and
# commits the end of every partition.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init

N=10000
lib_start_kafka orders:4 sluice.dlq:1
sluice_write_config "$WORK/sluice.json" file-test
cat >"$WORK/sinks.d/all.json" <<JSON
{ "name": "orders-all", "type": "file", "topics": ["orders"],
  "batch": { "max_records": 300, "linger_ms": 5 },
  "file": { "path": "$WORK/all.ndjson" } }
JSON
cat >"$WORK/sinks.d/gold.json" <<JSON
{ "name": "orders-gold", "type": "file", "topics": ["orders"],
  "filter": { "path": "$.tier", "equals": "gold" },
  "file": { "path": "$WORK/gold.ndjson" } }
JSON
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/sluice.json" || lib_fail "sluice check refused a valid config"

make_records "$N" 97 "$WORK/records.tsv"
lib_produce orders "$WORK/records.tsv"
sluice_start "$WORK/sluice.json"

TIMEOUT=60 lib_wait_for has_lines "$WORK/all.ndjson" "$N" ||
    lib_fail "only $(lines_of "$WORK/all.ndjson") of $N records arrived"
check_file_output "$WORK/all.ndjson" "$N"
lib_pass "$N records arrived once each, in partition and key order"

for p in 0 1 2 3; do
    got=$(jq -r "select(.partition == $p) | .offset" "$WORK/all.ndjson" | wc -l)
    [ "$got" -gt 0 ] || lib_fail "partition $p got no records"
done
lib_pass "all 4 partitions were consumed"

TIMEOUT=30 lib_wait_for has_lines "$WORK/gold.ndjson" $((N / 10)) ||
    lib_fail "gold sink: $(lines_of "$WORK/gold.ndjson") of $((N / 10))"
gold=$(jq -r '.value.tier' "$WORK/gold.ndjson" | sort | uniq -c | awk '{print $1, $2}')
[ "$gold" = "$((N / 10)) gold" ] || lib_fail "gold sink holds: $gold"
lib_pass "the filtered sink on the same topic holds exactly the $((N / 10)) gold records"

# A key that is not UTF-8: the file sink cannot write it as JSON, so it is dead-lettered.
printf '\xff\xfe\t{"id":"bad","seq":-1,"tier":"gold"}\n' >"$WORK/bad.tsv"
lib_produce orders "$WORK/bad.tsv"
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 2
dlq=$(LIB_CONSUME_FORMAT='%h|%s\n' lib_consume sluice.dlq 2 | sort -u)
[ "$(printf '%s\n' "$dlq" | grep -c .)" -eq 2 ] || lib_fail "expected 2 dead letters (one per sink), got: $dlq"
for sink in orders-all orders-gold; do
    line=$(printf '%s\n' "$dlq" | grep "sluice.sink=$sink" || true)
    [ -n "$line" ] || lib_fail "no dead letter from $sink: $dlq"
    case $line in
        *"sluice.topic=orders"*"sluice.partition="*"sluice.offset="*) ;;
        *) lib_fail "dead letter lacks origin headers: $line" ;;
    esac
    case $line in *'|{"id":"bad","seq":-1,"tier":"gold"}') ;; *) lib_fail "dead letter value changed: $line" ;; esac
done
printf '%s\n' "$dlq" | grep -q 'sluice.reason=key is not valid UTF-8' || lib_fail "dead letter reason missing: $dlq"
lib_pass "a bad record reached the dead-letter topic from each sink with reason and origin"

sluice_stop
# SIGTERM drained and committed: the group's committed offset is the end of every partition.
"$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g file-test -t orders >"$WORK/committed"
while read -r p committed end; do
    [ "$committed" -eq "$end" ] || lib_fail "partition $p committed $committed, end is $end"
done <"$WORK/committed"
[ "$(wc -l <"$WORK/committed")" -eq 4 ] || lib_fail "committed offsets: $(cat "$WORK/committed")"
lib_pass "SIGTERM drained and committed the end of all 4 partitions"

# A restart reads nothing twice.
sluice_start "$WORK/sluice.json"
make_records 100 97 "$WORK/more.tsv" "$N"
lib_produce orders "$WORK/more.tsv"
# A tombstone (null value, kcat -Z) is written with "value": null, not dropped.
printf 'k-5\t\n' | timeout "$(lib_tmout 30)" kcat -P -q -Z -b "$KAFKA_BROKERS" -t orders -K '\t' -z none ||
    lib_fail "kcat could not produce the tombstone"
TIMEOUT=60 lib_wait_for has_lines "$WORK/all.ndjson" $((N + 101)) ||
    lib_fail "after restart: $(lines_of "$WORK/all.ndjson") records"
sluice_stop
jq -c 'select(.value != null)' "$WORK/all.ndjson" >"$WORK/all-values.ndjson"
check_file_output "$WORK/all-values.ndjson" $((N + 100))
lib_pass "after a restart the next 100 records arrived and nothing was written twice"
tomb=$(jq -c 'select(.value == null) | [.key, .topic, (.timestamp | type), (.offset | type)]' "$WORK/all.ndjson")
[ "$tomb" = '["k-5","orders","number","number"]' ] ||
    lib_fail "expected one tombstone line for k-5 with value null and a timestamp, got: $tomb"
lib_pass "a tombstone is written once, as \"value\": null with its key, offset and timestamp"
dlq_count=$(kcat -C -q -b "$KAFKA_BROKERS" -t sluice.dlq -o beginning -e 2>/dev/null | wc -l)
[ "$dlq_count" -eq 2 ] || lib_fail "the dead-letter topic holds $dlq_count letters after the restart, expected 2"
lib_pass "the restart dead-lettered nothing again: the sinks' stored positions had moved past the bad record"
lib_summary
