#!/usr/bin/env bash
# Scale-out: three `sluice run` processes with one group.id share an 8-partition topic while a
# paced producer streams records; each runs the same two transactional sinks, a postgres
# insert-mode table and a redis list, whose positions live in the targets. Process A is killed
# with SIGKILL mid-stream: B and C take its partitions over (after the session timeout). Then B
# gets SIGTERM: it drains and hands everything to C (a clean handover between two processes).
# Then A is started again and shares the topic with C. At the end the table has exactly one
# row per record (N rows, each (partition, offset) once, each seq once) and the list exactly N
# entries, each seq once; the logs show that the partitions were shared at the start and moved
# on the kill, on the SIGTERM and on the restart; the group committed the end of every
# partition; the processes still running exit 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
lib_init

P=8
CHUNK=200
GROUP=scaleout
ALL=$(seq 0 $((P - 1)) | paste -sd' ')
lib_start_kafka events:$P sluice.dlq:1
# shellcheck disable=SC2119 # started without --appendonly
lib_start_redis
lib_start_postgres
lib_psql "CREATE TABLE events (seq integer NOT NULL, part integer NOT NULL, off bigint NOT NULL)"
sluice_write_config "$WORK/sluice.json" "$GROUP"
pg_sink_file db events '"table": "events", "mode": "insert",
    "columns": {"seq": "$.seq", "part": "@partition", "off": "@offset"}' '{ "max_records": 100, "linger_ms": 5 }'
redis_sink_file "$WORK/sinks.d/feed.json" feed events '{"key": "feed", "shape": "list"}' \
    '{"batch": {"max_records": 100, "linger_ms": 5}}'

rows() { lib_psql "SELECT count(*) FROM events" 2>/dev/null || echo 0; }
has_rows() { [ "$(rows)" -ge "$1" ]; }
# owned NAME: the partitions process NAME holds now (from its log), space-separated.
owned() { rel_owned "${LOG[$1]}" events | paste -sd' '; }
# share NAME...: true when the named processes hold every partition, each exactly once, and
# each of them holds at least one.
share() {
    local n all
    for n in "$@"; do
        [ -n "$(owned "$n")" ] || return 1
    done
    all=$(for n in "$@"; do rel_owned "${LOG[$n]}" events; done | sort -n)
    [ "$(paste -sd' ' <<<"$all")" = "$ALL" ]
}
# wait_share NAME...: waits until the named processes share the partitions (share); fails at
# once, with its error, when one of them exited.
wait_share() {
    local n
    TIMEOUT=60 lib_wait_for settled "$@"
    for n in "$@"; do
        lib__alive "${PID[$n]}" ||
            lib_fail "sluice $n exited: $(grep -m1 -E 'level=(error|fatal)' "${LOG[$n]}" || tail -n 1 "${LOG[$n]}")"
    done
}
settled() {
    local n
    for n in "$@"; do
        lib__alive "${PID[$n]}" || return 0
    done
    share "$@"
}
declare -A PID LOG
start() {   # start NAME: one more sluice process of the group
    sluice_start "$WORK/sluice.json"
    PID[$1]=$SLUICE_PID
    LOG[$1]=$SLUICE_LOG
}
show() {
    local n
    for n in "$@"; do printf '%s: [%s]  ' "$n" "$(owned "$n")"; done
}

start A
start B
start C
wait_share A B C
lib_pass "three processes share the $P partitions: $(show A B C)"

rel_start_producer events "$WORK/producer" "$CHUNK" 0.2 101
TIMEOUT=60 lib_wait_for has_rows 2000

# A dies without a word, while it writes: B and C take its partitions once the group notices
# (B and C cover every partition only once A's are theirs).
a_had=$(owned A)
a_rows() { [ "$(lib_psql "SELECT count(*) FROM events WHERE part IN ($(tr ' ' ',' <<<"$a_had"))")" -gt 0 ]; }
TIMEOUT=30 lib_wait_for a_rows
kill -KILL "${PID[A]}"
wait "${PID[A]}" 2>/dev/null || true
lib__forget_pid "${PID[A]}"
lib_log "A killed with SIGKILL at $(rows) rows, holding [$a_had]"
wait_share B C
TIMEOUT=60 lib_wait_for has_rows $(($(rows) + 1000))
lib_pass "after kill -9 of A ([$a_had]), B and C hold every partition: $(show B C)"

# B leaves cleanly: it finishes its batches, commits, and C gets everything.
b_had=$(owned B)
SLUICE_PID=${PID[B]} SLUICE_LOG=${LOG[B]} sluice_stop
grep -q 'partitions revoked' "${LOG[B]}" || lib_fail "B did not log its revoke"
wait_share C
TIMEOUT=60 lib_wait_for has_rows $(($(rows) + 1000))
lib_pass "B stopped with SIGTERM (exit 0) holding [$b_had]; C took over: $(show C)"

# A comes back and shares the topic with C again.
start A2
wait_share C A2
TIMEOUT=60 lib_wait_for has_rows $(($(rows) + 1000))
lib_pass "A started again and shares the topic with C: $(show C A2)"

rel_stop_producer
N=$((REL_CHUNKS * CHUNK))
lib_log "produced $N records"
TIMEOUT=90 lib_wait_for pg_positions_reach db "$N"
TIMEOUT=90 lib_wait_for redis_positions_reach sluice:positions:feed "$N"
TIMEOUT=60 lib_wait_for rel_committed_at_end "$GROUP" events
sleep 1   # anything applied twice would show up now

report=$(lib_psql "SELECT count(*), count(DISTINCT (part, off)), count(DISTINCT seq), min(seq), max(seq) FROM events")
[ "$report" = "$N|$N|$N|0|$((N - 1))" ] ||
    lib_fail "postgres rows|distinct (partition, offset)|distinct seq|min|max = $report, expected $N|$N|$N|0|$((N - 1))"
lib_pass "postgres: $N rows, each (partition, offset) once, each seq once"

rcli LRANGE feed 0 -1 | jq -r '.seq' >"$WORK/feed.seqs"
report="$(wc -l <"$WORK/feed.seqs") $(sort -n -u "$WORK/feed.seqs" | wc -l) $(sort -n "$WORK/feed.seqs" | sed -n '1p;$p' | paste -sd' ')"
[ "$report" = "$N $N 0 $((N - 1))" ] || lib_fail "redis list entries|distinct seq|min max = $report, expected $N $N 0 $((N - 1))"
[ "$(rcli LLEN feed)" = "$N" ] || lib_fail "LLEN feed = $(rcli LLEN feed), expected $N"
lib_pass "redis: the list holds $N entries, each seq once"

for n in C A2; do
    SLUICE_PID=${PID[$n]} SLUICE_LOG=${LOG[$n]} sluice_stop
done
lib_pass "the two remaining processes exit 0 on SIGTERM"
lib_summary
