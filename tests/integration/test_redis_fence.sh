#!/usr/bin/env bash
# The position write is a compare-and-set: a process whose partition moved on without it (a
# zombie after a rebalance) cannot apply its batch. Here the "other owner" is played by hand:
# after 100 records are in, the positions hash is moved to 150 as if another process had
# written records 100..149. sluice's next batch (expecting 100) must be refused whole, the sink
# must reload its position and continue from 150: records 100..149 are never written by it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

lib_start_kafka events:1 sluice.dlq:1
# shellcheck disable=SC2119 # no AOF wanted
lib_start_redis
sluice_write_config "$WORK/sluice.json" redis-fence-test
redis_sink_file "$WORK/sinks.d/feed.json" feed events '{"key": "feed", "shape": "list"}' \
    '{"batch": {"max_records": 1000, "linger_ms": 50}}'
make_records 100 1 "$WORK/first.tsv" 0
make_records 100 1 "$WORK/second.tsv" 100
lib_produce events "$WORK/first.tsv"
sluice_start "$WORK/sluice.json"
position_is() { [ "$(rcli HGET sluice:positions:feed events:0)" = "$1" ]; }
TIMEOUT=60 lib_wait_for position_is 100

# Another owner wrote 100..149 meanwhile (only its position matters here).
rcli HSET sluice:positions:feed events:0 150 >/dev/null
lib_produce events "$WORK/second.tsv"
TIMEOUT=60 lib_wait_for position_is 200
sleep 0.5
seqs=$(rcli LRANGE feed 0 -1 | jq -r .seq | paste -sd' ')
[ "$seqs" = "$(seq 0 99 | paste -sd' ') $(seq 150 199 | paste -sd' ')" ] ||
    lib_fail "feed holds $(rcli LLEN feed) entries: $seqs"
grep -q 'stored position moved under us (stored position is 150, expected 100' "$SLUICE_LOG" ||
    lib_fail "no fenced batch in the log: $(grep -i 'redis\|fenc' "$SLUICE_LOG" | tail -5)"
grep -q 'resumed at stored position 150' "$SLUICE_LOG" || lib_fail "the sink did not resume at 150"
lib_pass "a batch expecting an old position is refused whole; the sink resumes at the stored one"
[ "$(lib_consume sluice.dlq 1 | wc -l)" -eq 0 ] || lib_fail "fenced records must not be dead-lettered"
lib_pass "records fenced off are left to their owner, not dead-lettered"
sluice_stop
lib_summary
