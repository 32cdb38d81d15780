#!/usr/bin/env bash
# Four redis sinks read one topic into one redis-server, one per shape: hash (with TTL), string
# (key from value fields, a projection of fields), list, stream (maxlen). Checks what an app
# team would look at with redis-cli: exact hash fields (numbers as written, nested values as
# JSON, nulls left out), a hash that loses fields, 500 updates of one key ending in the last
# value, tombstones, lists in order, stream trimming, each sink's own positions hash, dead
# letters with their reasons (missing key field, key of another type, not JSON), and that a
# restart applies nothing twice.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

lib_start_kafka customers:4 sluice.dlq:1
# shellcheck disable=SC2119 # no AOF wanted
lib_start_redis
sluice_write_config "$WORK/sluice.json" redis-sink-test
redis_sink_file "$WORK/sinks.d/hash.json" cache-hash customers '{"key": "customer:{key}", "shape": "hash", "ttl_s": 300}'
redis_sink_file "$WORK/sinks.d/string.json" cache-string customers \
    '{"key": "profile:{$.tenant}:{$.id}", "shape": "string", "fields": ["id", "seq", "name"]}'
redis_sink_file "$WORK/sinks.d/list.json" feed-list customers '{"key": "feed:{key}", "shape": "list"}'
redis_sink_file "$WORK/sinks.d/stream.json" events-stream customers '{"key": "events:{key}", "shape": "stream", "maxlen": 3}'
"$SLUICE_BUILD_DIR/sluice" check -c "$WORK/sluice.json" >/dev/null || lib_fail "sluice check refused the sinks"

# c-1 has every kind of field; c-2 is updated 500 times; c-3 will be deleted; c-4 lacks the
# tenant the string sink's key needs; feed:c-5 already holds a string; c-6 is not JSON.
{
    printf 'c-1\t{"id":"c-1","tenant":"t1","seq":0,"name":"Ann","email":"ann@example.com","balance":10.50,'
    printf '"address":{"city":"Berlin", "zip":"10115"},"tags":["a","b"],"vip":true,"note":null}\n'
    for i in $(seq 0 499); do printf 'c-2\t{"id":"c-2","tenant":"t1","seq":%d,"name":"Bob"}\n' "$i"; done
    printf 'c-3\t{"id":"c-3","tenant":"t2","seq":0,"name":"Cy"}\n'
    printf 'c-4\t{"id":"c-4","seq":0,"name":"NoTenant"}\n'
    printf 'c-5\t{"id":"c-5","tenant":"t1","seq":0}\n'
    printf 'c-6\tnot json\n'
} >"$WORK/first.tsv"
rcli SET feed:c-5 "someone else's string" >/dev/null
lib_produce customers "$WORK/first.tsv"
sluice_start "$WORK/sluice.json"

feed_has() { [ "$(rcli LLEN "$1")" -ge "$2" ]; }
TIMEOUT=60 lib_wait_for feed_has feed:c-2 500
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 6
TIMEOUT=30 lib_wait_for rcli EXISTS profile:t2:c-3

# Hash: every non-null top-level field, strings as they are, numbers as written, nested as JSON.
got=$(rcli HGETALL customer:c-1 | paste -d= - - | sort | paste -sd'|')
want='address={"city":"Berlin","zip":"10115"}|balance=10.50|email=ann@example.com|id=c-1|name=Ann|seq=0|tags=["a","b"]|tenant=t1|vip=true'
[ "$got" = "$want" ] || lib_fail "customer:c-1 is $got, want $want"
ttl=$(rcli TTL customer:c-1)
if [ "$ttl" -le 0 ] || [ "$ttl" -gt 300 ]; then lib_fail "customer:c-1 ttl is $ttl"; fi
lib_pass "hash shape: top-level fields, numbers as written, nested as JSON, null left out, ttl set"

# 500 updates of one key (several in each batch): the last value wins everywhere.
[ "$(rcli HGET customer:c-2 seq)" = 499 ] || lib_fail "customer:c-2 seq is $(rcli HGET customer:c-2 seq)"
[ "$(rcli GET profile:t1:c-2)" = '{"id":"c-2","seq":499,"name":"Bob"}' ] ||
    lib_fail "profile:t1:c-2 is $(rcli GET profile:t1:c-2)"
lib_pass "500 updates of one key end in the last value (hash and string)"

# List: every record once, in order; stream: trimmed to maxlen, newest last.
seqs=$(rcli LRANGE feed:c-2 0 -1 | jq -r .seq | paste -sd' ')
[ "$seqs" = "$(seq 0 499 | paste -sd' ')" ] || lib_fail "feed:c-2 is not seq 0..499 in order"
[ "$(rcli XLEN events:c-2)" = 3 ] || lib_fail "events:c-2 has $(rcli XLEN events:c-2) entries, want 3 (maxlen)"
last=$(rcli XREVRANGE events:c-2 + - COUNT 1 | tail -n +2 | paste -d= - - | paste -sd'|')
[ "$last" = 'id=c-2|tenant=t1|seq=499|name=Bob' ] || lib_fail "last entry of events:c-2 is $last"
lib_pass "list shape appends every record in order; stream shape keeps the newest 3"

# Dead letters: which sink, why.
redis_dead_letters 6 | sort >"$WORK/dlq"
grep -qxF 'cache-string|key template: $.tenant is missing|c-4|{"id":"c-4","seq":0,"name":"NoTenant"}' "$WORK/dlq" ||
    lib_fail "no dead letter for the missing key field: $(cat "$WORK/dlq")"
grep -q '^feed-list|WRONGTYPE: key feed:c-5 holds a string, the list shape needs a list or no key|c-5|' "$WORK/dlq" ||
    lib_fail "no WRONGTYPE dead letter: $(cat "$WORK/dlq")"
for sink in cache-hash cache-string feed-list events-stream; do
    grep -q "^$sink|value is not JSON: unexpected character at byte 0|c-6|not json\$" "$WORK/dlq" ||
        lib_fail "$sink did not dead-letter the value that is not JSON: $(cat "$WORK/dlq")"
done
[ "$(wc -l <"$WORK/dlq")" -eq 6 ] || lib_fail "expected 6 dead letters: $(cat "$WORK/dlq")"
[ "$(rcli GET feed:c-5)" = "someone else's string" ] || lib_fail "feed:c-5 was overwritten"
rcli EXISTS customer:c-4 | grep -qx 1 || lib_fail "cache-hash should still have applied c-4"
lib_pass "dead letters carry the sink and the reason; a key of another type is left alone"

# Each sink keeps its positions in its own hash, one field per partition.
for sink in cache-hash cache-string feed-list events-stream; do
    fields=$(rcli HKEYS "sluice:positions:$sink" | sort | paste -sd' ')
    [ -n "$fields" ] || lib_fail "no positions for $sink"
    for f in $fields; do case $f in customers:[0-3]) ;; *) lib_fail "$sink: odd position field $f" ;; esac; done
done
lib_pass "four sinks on one topic and one redis keep separate positions"

# The entity changes: a field is removed, nested value changes; then c-3 is deleted.
printf 'c-1\t{"id":"c-1","tenant":"t1","seq":1,"name":"Ann B","balance":11,"address":{"city":"Paris"}}\n' >"$WORK/second.tsv"
lib_produce customers "$WORK/second.tsv"
redis_produce_tombstone customers c-3
hash_seq_is() { [ "$(rcli HGET "$1" seq)" = "$2" ]; }
TIMEOUT=30 lib_wait_for hash_seq_is customer:c-1 1
gone() { [ "$(rcli EXISTS "$1")" = 0 ]; }
TIMEOUT=30 lib_wait_for gone customer:c-3
got=$(rcli HGETALL customer:c-1 | paste -d= - - | sort | paste -sd'|')
want='address={"city":"Paris"}|balance=11|id=c-1|name=Ann B|seq=1|tenant=t1'
[ "$got" = "$want" ] || lib_fail "after the update customer:c-1 is $got, want $want"
lib_pass "a hash that loses fields (email, tags, vip) loses them: replaced, not merged"
# string: deleted by record key? Its key comes from the value, which a tombstone lacks.
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 7
redis_dead_letters 7 | grep -q '^cache-string|key template: a tombstone has no value to fill {\$.tenant}|c-3|$' ||
    lib_fail "the string sink should dead-letter a tombstone it cannot key"
[ "$(rcli LLEN feed:c-3)" = 1 ] || lib_fail "a tombstone must not touch a list"
lib_pass "a tombstone deletes the hash; a sink that cannot compute its key says why"

# Restart: nothing applied twice, new records still arrive.
sluice_stop
sluice_start "$WORK/sluice.json"
printf 'c-2\t{"id":"c-2","tenant":"t1","seq":500,"name":"Bob"}\n' >"$WORK/third.tsv"
lib_produce customers "$WORK/third.tsv"
TIMEOUT=60 lib_wait_for feed_has feed:c-2 501
sleep 1   # anything applied twice would show by now
[ "$(rcli LLEN feed:c-2)" = 501 ] || lib_fail "feed:c-2 has $(rcli LLEN feed:c-2) entries after the restart, want 501"
[ "$(rcli LLEN feed:c-1)" = 2 ] || lib_fail "feed:c-1 has $(rcli LLEN feed:c-1) entries, want 2"
[ "$(rcli HGET customer:c-2 seq)" = 500 ] || lib_fail "customer:c-2 did not take seq 500"
sluice_stop
lib_pass "after a restart the next record arrives and nothing is applied twice"
lib_summary
