#!/usr/bin/env bash
# "start" per sink (issue 15). A webhook sink A consumes a topic alone; a commit without sink
# names (an older sluice's) does not make it load again; then sinks are added to the same group:
#   by a restart: B (redis list, start earliest, transactional), W (webhook, earliest), C
#   (webhook, committed) and L (webhook, latest). B and W load every retained record exactly once,
#   A gets only the new ones and nothing twice, C gets what follows the group's committed offset,
#   L only what is produced after it joined;
#   a second restart: nobody loads again (B and W have positions now: B stored, W named in the
#   group's commit metadata);
#   a reload (SIGHUP) adding D (redis list, earliest) and E (webhook, earliest): both load the
#   whole topic once, the kept sinks get only the new records, once.
# Every webhook count is of deliveries answered 200, not deduplicated: a repeat fails the test.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

lib_start_kafka feed:2 sluice.dlq:1
lib_start_redis
lib_start_receiver
sluice_write_config "$WORK/sluice.json" start-test

# hook_sink NAME START: a webhook sink of the topic posting JSON arrays to /NAME.
hook_sink() {
    cat >"$WORK/sinks.d/$1.json" <<JSON
{ "name": "$1", "type": "webhook", "topics": ["feed"], "start": "$2",
  "batch": { "max_records": 50, "linger_ms": 5 },
  "webhook": { "url": "$RECEIVER_URL/$1", "batch_format": "json_array", "allow_private_networks": true } }
JSON
}

# list_sink NAME: a redis sink of the topic appending every record to the list NAME (start earliest
# by default: the option is left out).
list_sink() {
    redis_sink_file "$WORK/sinks.d/$1.json" "$1" feed "{\"shape\": \"list\", \"key\": \"$1\"}"
}

# delivered NAME: records the webhook sink NAME delivered (answered 200), repeats included.
delivered() {
    rx_records_ok "/$1" | wc -l
}

# listed NAME: records in the redis list NAME.
listed() {
    rcli LLEN "$1"
}

reaches() {
    [ "$("$1" "$2")" -ge "$3" ]
}

# hook_holds NAME COUNT FIRST LAST: the webhook sink NAME got COUNT deliveries, each a distinct
# record, whose seq are exactly FIRST..LAST.
hook_holds() {
    local report
    report=$(rx_records_ok "/$1" | jq -rs '"\(length) \(unique_by(.id) | length) \([.[].value.seq] | unique | length) \([.[].value.seq] | min) \([.[].value.seq] | max)"')
    [ "$report" = "$2 $2 $2 $3 $4" ] ||
        lib_fail "$1: deliveries, distinct ids, distinct seq, min, max = $report; expected $2 $2 $2 $3 $4"
}

# list_holds NAME COUNT: the redis list NAME holds seq 0..COUNT-1, each once.
list_holds() {
    local report
    report=$(rcli LRANGE "$1" 0 -1 | jq -rs '"\(length) \([.[].seq] | unique | length) \([.[].seq] | min) \([.[].seq] | max)"')
    [ "$report" = "$2 $2 0 $(($2 - 1))" ] ||
        lib_fail "$1: entries, distinct seq, min, max = $report; expected $2 $2 0 $(($2 - 1))"
}

# kept_sinks_reach TOTAL: B, W and A reach seq 0..TOTAL-1, C and L seq 200..TOTAL-1 (what was
# produced after they joined); kept_sinks_hold TOTAL: each holds exactly those, once each.
kept_sinks_reach() {
    TIMEOUT=60 lib_wait_for reaches listed b "$1"
    for s in w a; do TIMEOUT=60 lib_wait_for reaches delivered "$s" "$1"; done
    for s in c l; do TIMEOUT=60 lib_wait_for reaches delivered "$s" $(($1 - 200)); done
}
kept_sinks_hold() {
    list_holds b "$1"
    for s in w a; do hook_holds "$s" "$1" 0 $(($1 - 1)); done
    for s in c l; do hook_holds "$s" $(($1 - 200)) 200 $(($1 - 1)); done
}

# Phase 1: A alone.
hook_sink a committed
make_records 200 37 "$WORK/r1.tsv" 0
lib_produce feed "$WORK/r1.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for reaches delivered a 200
sluice_stop
hook_holds a 200 0 199
lib_pass "A alone delivered the first 200 records once each"

# Phase 1b: an upgrade. A sluice before "start" named no sink in its commits: the group's commit is
# made again without metadata. A restarts alone and must not load again (nothing but the commit
# tells it has a position); its first commit then names it, even without new records.
committed_metadata() {
    timeout "$(lib_tmout 30)" "$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g start-test -t feed -m "$@" |
        cut -d' ' -f4- | sort -u | tr '\n' '|'
}
committed_metadata -r >/dev/null
[ "$(committed_metadata)" = "-|" ] || lib_fail "the commit still has metadata: $(committed_metadata)"
sluice_start "$WORK/sluice.json"
names_a() { [ "$(committed_metadata)" = "sluice1 sinks:a|" ]; }
TIMEOUT=30 lib_wait_for names_a
sluice_stop
! grep -q 'no position of its own yet' "$SLUICE_LOG" || lib_fail "after the upgrade, A was taken as new"
hook_holds a 200 0 199
lib_pass "upgrade: a commit that names no sink counts as A's position: nothing loaded again; the next commit names A"

# Phase 2: a restart with four new sinks.
list_sink b
hook_sink w earliest
hook_sink c committed
hook_sink l latest
sluice_start "$WORK/sluice.json"
# L begins at the log end of both partitions; what is produced from here on is "after it started".
latest_joined() { [ "$(grep -c 'start latest: begins at' "$SLUICE_LOG")" -eq 2 ]; }
TIMEOUT=30 lib_wait_for latest_joined
make_records 100 37 "$WORK/r2.tsv" 200
lib_produce feed "$WORK/r2.tsv"
kept_sinks_reach 300
sluice_stop
kept_sinks_hold 300
lib_pass "restart: new sinks with start earliest loaded all 300 records once (redis list b, webhook w)"
lib_pass "restart: A got only the 100 new records, nothing twice"
lib_pass "restart: start committed began at the group's committed offset, start latest at the log end"

# Phase 3: a restart after the loads: nobody has to load again.
make_records 50 37 "$WORK/r3.tsv" 300
lib_produce feed "$WORK/r3.tsv"
sluice_start "$WORK/sluice.json"
kept_sinks_reach 350
! grep -q 'no position of its own yet' "$SLUICE_LOG" || lib_fail "a sink was taken as new after it had loaded"
kept_sinks_hold 350
lib_pass "restart after the loads: every sink went on from its position, nothing loaded or delivered twice"

# Phase 4: a reload that adds D and E, while the others keep running.
list_sink d
hook_sink e earliest
kill -HUP "$SLUICE_PID"
reloaded() { grep -q 'reloaded ' "$SLUICE_LOG"; }
TIMEOUT=30 lib_wait_for reloaded
make_records 50 37 "$WORK/r4.tsv" 350
lib_produce feed "$WORK/r4.tsv"
TIMEOUT=60 lib_wait_for reaches listed d 400
TIMEOUT=60 lib_wait_for reaches delivered e 400
kept_sinks_reach 400
new_sinks=$(grep 'no position of its own yet' "$SLUICE_LOG" | grep -o ' sink=[a-z]* ' | sort -u | tr -d '\n')
[ "$new_sinks" = " sink=d  sink=e " ] || lib_fail "after the reload, the sinks taken as new were:$new_sinks (expected d and e)"
sluice_stop
list_holds d 400
hook_holds e 400 0 399
lib_pass "reload: the added sinks loaded all 400 records once (redis list d, webhook e)"
kept_sinks_hold 400
lib_pass "reload: the kept sinks got only the 50 new records, nothing twice"
lib_summary
