#!/usr/bin/env bash
# The redis sink's batch script, run by itself against a real redis-server (no Kafka, no
# sluice), so every branch of the compare-and-set is reached on purpose: a first batch, the
# same batch again after a lost reply (applied once), a stale writer (fenced, nothing written),
# a hash that loses fields, tombstones, keys of another type (skipped and reported, or the
# whole batch refused), lists and streams with maxlen, TTLs, and OOM writing nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

# shellcheck disable=SC2119 # no AOF wanted
lib_start_redis
# The script as the sink sends it, from the C string in sinks/redis.c.
awk '/^static const char redis_batch_script\[\] =/ { on = 1; next }
     on { line = $0; sub(/^ *"/, "", line); last = (line ~ /";$/); sub(/\\n";?$/, "", line)
          gsub(/\\"/, "\"", line); gsub(/\\\\/, "\\", line); print line; if (last) exit }' \
    "$SLUICE_SOURCE_DIR/sinks/redis.c" >"$WORK/batch.lua"
head -1 "$WORK/batch.lua" | grep -qx '#!lua' || lib_fail "could not extract the script from sinks/redis.c"
P=sluice:positions:t

# batch FIELD PREV NEXT SHAPE TTL MAXLEN SKIP -- KEYS... -- OPS...: one script call, like the sink's.
batch() {
    local field=$1 prev=$2 next=$3 shape=$4 ttl=$5 maxlen=$6 skip=$7 keys=() ops=()
    shift 8
    while [ $# -gt 0 ] && [ "$1" != -- ]; do keys+=("$1"); shift; done
    shift
    ops=("$@")
    rcli EVAL "$(cat "$WORK/batch.lua")" $((1 + ${#keys[@]})) "$P" "${keys[@]}" \
        "$field" "$prev" "$next" "$shape" "$ttl" "$maxlen" "$skip" "${ops[@]}" | paste -sd' '
}
expect() {   # expect WHAT GOT WANT
    [ "$2" = "$3" ] || lib_fail "$1: got '$2', want '$3'"
}

# A first batch, then the same batch again (its reply was lost): applied once.
out=$(batch t:0 -1 2 hash 0 0 1 -- h:1 h:2 -- 4 name Ann tier gold 2 name Bob)
expect "first batch" "$out" OK
expect "position" "$(rcli HGET $P t:0)" 2
rcli HSET h:1 tier platinum >/dev/null   # a change the retry must not undo
out=$(batch t:0 -1 2 hash 0 0 1 -- h:1 h:2 -- 4 name Ann tier gold 2 name Bob)
expect "same batch again" "$out" APPLIED
expect "not applied twice" "$(rcli HGET h:1 tier)" platinum
lib_pass "a batch whose reply was lost is recognised on retry and not applied again"

# A writer that lost the partition (it expects an older position): nothing written.
out=$(batch t:0 -1 7 hash 0 0 1 -- h:9 -- 2 name Zed)
expect "stale writer" "$out" "FENCED 2"
expect "stale data" "$(rcli EXISTS h:9)" 0
expect "stale position" "$(rcli HGET $P t:0)" 2
out=$(batch t:1 -1 5 hash 0 0 1 -- h:9 -- 2 name Zed)
expect "another partition has its own position" "$out" OK
lib_pass "a stale writer is fenced and writes nothing; partitions keep separate positions"

# Hash replaced, not merged: a field the value lost disappears; an empty value deletes.
rcli HSET h:2 extra 1 legacy 2 >/dev/null
out=$(batch t:0 2 3 hash 0 0 1 -- h:1 h:2 -- 2 name Ann 4 name Bob tier silver)
expect "replace" "$out" OK
expect "h:1 fields" "$(rcli HGETALL h:1 | paste -sd,)" "name,Ann"
expect "h:2 fields" "$(rcli HGETALL h:2 | sort | paste -sd,)" "Bob,name,silver,tier"
out=$(batch t:0 3 4 hash 0 0 1 -- h:2 -- 0)
expect "tombstone" "$(rcli EXISTS h:2)" 0
lib_pass "a hash that loses fields loses them; a tombstone deletes it"

# TTL on hashes and strings; strings set with and without TTL, and deleted.
batch t:0 4 5 hash 60 0 1 -- h:3 -- 2 a 1 >/dev/null
ttl=$(rcli TTL h:3)
if [ "$ttl" -le 0 ] || [ "$ttl" -gt 60 ]; then lib_fail "hash ttl $ttl"; fi
batch s:0 -1 3 string 0 0 1 -- s:1 s:2 s:3 -- 1 '{"v":1}' 1 '{"v":2}' 0 >/dev/null
expect "string" "$(rcli GET s:1)" '{"v":1}'
expect "no ttl" "$(rcli TTL s:1)" -1
rcli SET s:3 old >/dev/null
batch s:0 3 5 string 30 0 1 -- s:3 s:1 -- 0 1 '{"v":3}' >/dev/null
expect "string delete" "$(rcli EXISTS s:3)" 0
ttl=$(rcli TTL s:1)
if [ "$ttl" -le 0 ] || [ "$ttl" -gt 30 ]; then lib_fail "string ttl $ttl"; fi
lib_pass "ttl_s expires hashes and strings; string tombstones delete"

# Lists append in order and keep maxlen; streams add entries with MAXLEN.
batch l:0 -1 6 list 0 3 1 -- l:1 -- 5 a b c d e >/dev/null
expect "list maxlen" "$(rcli LRANGE l:1 0 -1 | paste -sd,)" "c,d,e"
batch x:0 -1 3 stream 0 2 1 -- x:1 x:1 x:1 -- 2 seq 1 2 seq 2 4 seq 3 k v >/dev/null
expect "stream maxlen" "$(rcli XLEN x:1)" 2
expect "stream last" "$(rcli XREVRANGE x:1 + - COUNT 1 | tail -4 | paste -sd,)" "seq,3,k,v"
lib_pass "lists and streams append in order and keep maxlen"

# A key of another type: skipped and reported (on_failure dead_letter), the rest applied...
rcli SET l:bad i-am-a-string >/dev/null
out=$(batch l:1 -1 2 list 0 0 1 -- l:2 l:bad -- 1 first 1 second)
expect "skip wrong type" "$out" "OK 2 string"
expect "others applied" "$(rcli LRANGE l:2 0 -1)" first
expect "wrong type untouched" "$(rcli GET l:bad)" i-am-a-string
expect "position moved" "$(rcli HGET $P l:1)" 2
# ...or the whole batch refused (on_failure block), nothing written, position kept.
out=$(batch l:1 2 4 list 0 0 0 -- l:2 l:bad -- 1 third 1 fourth)
expect "refuse wrong type" "$out" "WRONGTYPE 2 string"
expect "nothing applied" "$(rcli LLEN l:2)" 1
expect "position kept" "$(rcli HGET $P l:1)" 2
rcli HSET h:bad f v >/dev/null
out=$(batch s:0 5 6 string 0 0 1 -- h:bad -- 1 x)
expect "string shape does not overwrite a hash" "$out" "OK 1 hash"
lib_pass "keys of another type are never overwritten: skipped and reported, or the batch refused whole"

# Out of memory with noeviction: refused before anything is written.
rcli CONFIG SET maxmemory-policy noeviction >/dev/null
rcli CONFIG SET maxmemory 1 >/dev/null
out=$(batch t:0 5 6 hash 0 0 1 -- h:oom -- 2 a 1 2>&1 || true)
rcli CONFIG SET maxmemory 0 >/dev/null
case $out in OOM*) ;; *) lib_fail "expected OOM, got '$out'" ;; esac
expect "nothing written under OOM" "$(rcli EXISTS h:oom)" 0
expect "position kept under OOM" "$(rcli HGET $P t:0)" 5
lib_pass "OOM (noeviction) refuses the whole batch: no data, no position"
lib_summary
