#!/usr/bin/env bash
# A dead letter larger than the dead-letter producer takes (librdkafka's message.max.bytes,
# 1,000,000 by default) would be retried forever and hold the sink's commits. sluice sends the
# start of its value instead, marked sluice.truncated with the original size; the headers point
# at the source record, which stays whole. The sink goes on and the partition's end is committed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
lib_init

lib_start_kafka events:1 sluice.dlq:1
sluice_write_config "$WORK/sluice.json" oversized-test
# The file sink refuses a key that is not UTF-8: that record becomes a dead letter.
cat >"$WORK/sinks.d/events.json" <<JSON
{ "name": "events-file", "type": "file", "topics": ["events"], "max_record_bytes": 4000000,
  "batch": { "max_records": 10, "linger_ms": 0 },
  "file": { "path": "$WORK/events.ndjson" } }
JSON
sluice_start "$WORK/sluice.json"

make_records 5 5 "$WORK/before.tsv" 0
lib_produce events "$WORK/before.tsv"
head -c 1500000 /dev/zero | tr '\0' 'v' >"$WORK/big.value"
kcat -P -q -b "$KAFKA_BROKERS" -t events -k $'\xff-big' -X message.max.bytes=4000000 "$WORK/big.value" ||
    lib_fail "kcat could not produce the big record"
make_records 5 5 "$WORK/after.tsv" 5
lib_produce events "$WORK/after.tsv"

TIMEOUT=60 lib_wait_for has_lines "$WORK/events.ndjson" 10 ||
    lib_fail "only $(lines_of "$WORK/events.ndjson") of 10 good records arrived"
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 1 || lib_fail "no dead letter for the 1.5 MB record"
TIMEOUT=30 lib_wait_for rel_committed_at_end oversized-test events ||
    lib_fail "the end of the partition was not committed: the big letter holds the sink"
lib_pass "the 10 good records around a 1.5 MB bad one arrived, and the end of the partition is committed"

LIB_CONSUME_FORMAT='%h|%S\n' lib_consume sluice.dlq 1 >"$WORK/dlq.txt"
letter=$(cat "$WORK/dlq.txt")
case $letter in *'sluice.sink=events-file'*) ;; *) lib_fail "dead letter lacks its sink: ${letter:0:300}" ;; esac
case $letter in *'sluice.reason=key is not valid UTF-8'*) ;; *) lib_fail "dead letter lacks its reason: ${letter:0:300}" ;; esac
case $letter in *'sluice.offset=5'*) ;; *) lib_fail "dead letter does not point at offset 5: ${letter:0:300}" ;; esac
case $letter in *'sluice.truncated=1500000|65536') ;; *) lib_fail "expected sluice.truncated=1500000 and a 65536-byte value: ${letter:0:300}" ;; esac
grep -q 'is too large: sending its first 65536 bytes' "$SLUICE_LOG" || lib_fail "the cut is not logged"
sluice_stop
lib_pass "the dead letter holds the first 64 KiB, sluice.truncated=1500000 and the source's topic, partition and offset"
lib_summary
