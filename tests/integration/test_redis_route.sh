#!/usr/bin/env bash
# The optimistic route (issue 17: WATCH of a per-partition position key, MULTI/EXEC of plain
# commands; the hash shape's default, the string shape's with route "optimistic"), counted
# where a mistake would show:
#   - upgrade in place: positions an older sluice left in the positions hash are where the
#     route continues: nothing below them is applied again, nothing above is lost;
#   - a zombie: the partition's position moved on (another owner wrote it as the route does,
#     position key and hash in one MULTI): the batch expecting the old one is refused whole,
#     not dead-lettered, and the sink resumes at the stored position;
#   - exactly once while every connection of the sink is killed again and again: redis' own
#     count of HSET calls says each record was applied once;
#   - keys of another type are never overwritten or deleted; their records are dead-lettered
#     with the reason.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

lib_start_kafka customers:1 orders:4 sluice.dlq:1
# shellcheck disable=SC2119 # no AOF wanted
lib_start_redis
sluice_write_config "$WORK/sluice.json" redis-route-test
redis_sink_file "$WORK/sinks.d/cache.json" cache customers '{"key": "customer:{key}", "shape": "hash"}' \
    '{"batch": {"max_records": 50, "linger_ms": 20}}'
redis_sink_file "$WORK/sinks.d/str.json" str customers '{"key": "s:{key}", "shape": "string", "route": "optimistic"}' \
    '{"batch": {"max_records": 50, "linger_ms": 20}}'
redis_sink_file "$WORK/sinks.d/orders.json" orders orders \
    '{"key": "order:{key}", "shape": "hash", "connections": 3, "reconnect_min_ms": 20, "reconnect_max_ms": 200}' \
    '{"batch": {"max_records": 100, "linger_ms": 5}, "retry": {"max_attempts": 1000, "initial_backoff_ms": 20, "max_backoff_ms": 200}}'
"$SLUICE_BUILD_DIR/sluice" check -c "$WORK/sluice.json" >/dev/null || lib_fail "sluice check refused the sinks"
# The route is for the shapes it can keep exactly: a list sink asking for it is refused.
mkdir -p "$WORK/bad.d"
sed "s|\"sinks_dir\": *\"[^\"]*\"|\"sinks_dir\": \"$WORK/bad.d\"|" "$WORK/sluice.json" >"$WORK/bad.json"
redis_sink_file "$WORK/bad.d/feed.json" feed customers '{"key": "feed", "shape": "list", "route": "optimistic"}'
out=$("$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/bad.json" 2>&1) &&
    lib_fail "sluice check --strict took route optimistic for a list: $out"
grep -q 'redis.route: the optimistic route is for the hash and string shapes' <<<"$out" || lib_fail "sluice check said: $out"

# --- upgrade in place ------------------------------------------------------------------------
# What an older sluice (the script route) leaves: its positions hash, no position keys. Records
# 0..99 are "applied" by it; their keys are left absent so that applying them again would show.
rcli HSET sluice:positions:cache customers:0 100 >/dev/null
rcli HSET sluice:positions:str customers:0 100 >/dev/null
make_records 200 200 "$WORK/first.tsv" 0
lib_produce customers "$WORK/first.tsv"
sluice_start "$WORK/sluice.json"
position_is() { [ "$(rcli HGET "sluice:positions:$1" customers:0)" = "$2" ]; }
TIMEOUT=60 lib_wait_for position_is cache 200
TIMEOUT=30 lib_wait_for position_is str 200
count_keys() { rcli --scan --pattern "$1" | wc -l; }
[ "$(count_keys 'customer:k-*')" -eq 100 ] || lib_fail "cache holds $(count_keys 'customer:k-*') keys, want 100"
[ "$(count_keys 's:k-*')" -eq 100 ] || lib_fail "str holds $(count_keys 's:k-*') keys, want 100"
for k in 0 99; do
    [ "$(rcli EXISTS "customer:k-$k" "s:k-$k")" = 0 ] || lib_fail "k-$k was applied again after the upgrade"
done
for k in 100 199; do
    [ "$(rcli EXISTS "customer:k-$k" "s:k-$k")" = 2 ] || lib_fail "k-$k is missing after the upgrade"
done
[ "$(rcli GET sluice:positions:cache:customers:0)" = 200 ] ||
    lib_fail "position key of cache is '$(rcli GET sluice:positions:cache:customers:0)', want 200"
[ "$(rcli GET sluice:positions:str:customers:0)" = 200 ] || lib_fail "no position key for str"
lib_pass "upgrade in place: the route continues from the positions an older sluice stored (100), once"

# --- a zombie --------------------------------------------------------------------------------
# Another owner wrote 200..229 meanwhile, as the route writes a position (only it matters
# here); the sink's next batch is 200..249 (50 records), which must not be taken as applied.
printf 'MULTI\nHSET sluice:positions:cache customers:0 230\nSET sluice:positions:cache:customers:0 230\nEXEC\n' |
    rcli >/dev/null
make_records 100 300 "$WORK/second.tsv" 200
lib_produce customers "$WORK/second.tsv"
TIMEOUT=60 lib_wait_for position_is cache 300
TIMEOUT=30 lib_wait_for position_is str 300
[ "$(count_keys 'customer:k-*')" -eq 170 ] || lib_fail "cache holds $(count_keys 'customer:k-*') keys, want 170"
for k in 200 229; do
    [ "$(rcli EXISTS "customer:k-$k")" = 0 ] || lib_fail "the fenced batch wrote k-$k"
done
for k in 230 299; do
    [ "$(rcli EXISTS "customer:k-$k")" = 1 ] || lib_fail "k-$k is missing after the resync"
done
[ "$(count_keys 's:k-*')" -eq 200 ] || lib_fail "str (not fenced) holds $(count_keys 's:k-*') keys, want 200"
grep -q 'stored position moved under us (stored position is 230, expected 200' "$SLUICE_LOG" ||
    lib_fail "no fenced batch in the log: $(grep -i 'fenc\|moved' "$SLUICE_LOG" | tail -5)"
grep -q 'resumed at stored position 230' "$SLUICE_LOG" || lib_fail "the sink did not resume at 230"
! topic_has sluice.dlq 1 || lib_fail "fenced records must not be dead-lettered: $(lib_consume sluice.dlq 1)"
lib_pass "a batch expecting an old position is refused whole, not dead-lettered; the sink resumes at 230"

# --- exactly once while connections are killed -------------------------------------------------
# Every record has its own key: each applied batch is its records' HSETs, one HSET of the
# positions hash and one SET of the position key, so HSET calls - SET calls = records applied.
N=20000
rcli CONFIG RESETSTAT >/dev/null
make_records "$N" "$N" "$WORK/orders.tsv" 0
split -l 2000 "$WORK/orders.tsv" "$WORK/orders.part."
orders_done() { redis_positions_sum sluice:positions:orders; }
orders_reach() { [ "$(orders_done)" -ge "$1" ]; }
# Ten chunks; after each the connections are killed while the sink writes it, twice.
kills=0
for part in "$WORK"/orders.part.*; do
    lib_produce orders "$part"
    for _ in 1 2; do
        rcli CLIENT KILL TYPE normal SKIPME yes >/dev/null
        kills=$((kills + 1))
        sleep 0.05
    done
done
TIMEOUT=120 lib_wait_for orders_reach "$N"
sleep 0.5   # a late duplicate would show in the counts
calls() { rcli INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v c="cmdstat_$1" '$1 == c { print $3 }'; }
hset=$(calls hset)
set=$(calls set)
applied=$((hset - set))
[ "$applied" -eq "$N" ] || lib_fail "orders: $applied record writes applied (HSET $hset - SET $set), want $N"
[ "$(count_keys 'order:k-*')" -eq "$N" ] || lib_fail "orders holds $(count_keys 'order:k-*') keys, want $N"
grep -c 'connection lost\|reconnecting' "$SLUICE_LOG" >/dev/null || lib_fail "no connection was lost: the test killed nothing"
lib_pass "exactly once over $kills rounds of killed connections: $N records, $applied writes (3 connections, 4 partitions)"

# --- keys of another type ----------------------------------------------------------------------
rcli SET order:x-1 "someone else's string" >/dev/null
rcli HSET s:y-1 owner someone-else >/dev/null
printf 'x-1\t{"id":"x-1","seq":1}\n' >"$WORK/x.tsv"
printf 'y-1\t{"id":"y-1","seq":1}\n' >"$WORK/y.tsv"
lib_produce orders "$WORK/x.tsv"
lib_produce customers "$WORK/y.tsv"
redis_produce_tombstone customers y-1
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 3
TIMEOUT=30 lib_wait_for position_is str 302
redis_dead_letters 3 | sort >"$WORK/dlq"
grep -qxF "orders|WRONGTYPE: key order:x-1 holds a string, the hash shape needs a hash or no key|x-1|{\"id\":\"x-1\",\"seq\":1}" "$WORK/dlq" ||
    lib_fail "no WRONGTYPE dead letter for order:x-1: $(cat "$WORK/dlq")"
[ "$(grep -cxF 'str|WRONGTYPE: key s:y-1 holds a hash, the string shape needs a string or no key|y-1|{"id":"y-1","seq":1}' "$WORK/dlq")" -eq 1 ] ||
    lib_fail "no WRONGTYPE dead letter for s:y-1: $(cat "$WORK/dlq")"
grep -qxF 'str|WRONGTYPE: key s:y-1 holds a hash, the string shape needs a string or no key|y-1|' "$WORK/dlq" ||
    lib_fail "no WRONGTYPE dead letter for the tombstone of s:y-1: $(cat "$WORK/dlq")"
[ "$(rcli GET order:x-1)" = "someone else's string" ] || lib_fail "order:x-1 was overwritten"
[ "$(rcli HGET s:y-1 owner)" = someone-else ] || lib_fail "s:y-1 was overwritten or deleted"
[ "$(rcli EXISTS customer:y-1)" = 0 ] || lib_fail "the hash sink did not delete customer:y-1 on its tombstone"
sluice_stop
lib_pass "keys of another type are left alone (SET, GETDEL, HSET refused); their records are dead-lettered"
lib_summary
