#!/usr/bin/env bash
# The health listener (health.listen) as a kubelet and Prometheus use it: with an admin token set,
# it answers /healthz, /readyz and /metrics without one while the admin API still requires it;
# it serves nothing else (404 for every admin path, a POST /reload there reloads nothing). The
# metrics a platform team alerts on move as they should: HTTP answers by status class against
# the receiver's own count, the dead-letter producer's acknowledged letters against the
# records dead-lettered, rebalances and assigned partitions, the process_* families against
# /proc. A health listener alone (admin.listen "") works, and an address in use stops the start.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

lib_start_kafka ops:2 sluice.dlq:1
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
sluice_write_config "$WORK/sluice.json" health-test
sluice_admin_on "$WORK/sluice.json"
HEALTH_PORT=$(lib_free_port)
HEALTH=http://127.0.0.1:$HEALTH_PORT
jq --arg listen "127.0.0.1:$HEALTH_PORT" '. + {health: {listen: $listen}}' "$WORK/sluice.json" >"$WORK/tmp.json" &&
    mv "$WORK/tmp.json" "$WORK/sluice.json"
cat >"$WORK/sinks.d/hook.json" <<JSON
{ "name": "hook", "type": "webhook", "topics": ["ops"], "batch": { "max_records": 10, "linger_ms": 5 },
  "retry": { "max_attempts": 1 },
  "webhook": { "url": "$RECEIVER_URL/hook", "batch_format": "json_array", "allow_private_networks": true } }
JSON

status_of() {   # prints the HTTP status of a request with the given curl arguments
    curl -s -o /dev/null -m "$(lib_tmout 10)" -w '%{http_code}' "$@"
}
health_ready() {
    [ "$(status_of "$HEALTH/readyz")" = 200 ]
}
scrape() {   # the health listener's /metrics, no token
    curl -sS -f -m "$(lib_tmout 10)" "$HEALTH/metrics"
}
metric() {   # NAME [LABELS]: the value of one sample (empty when absent)
    local want=$1
    [ -z "${2:-}" ] || want="$1{$2}"
    scrape | awk -v want="$want" '$1 == want { print $2 }'
}
metric_is() {   # NAME LABELS VALUE
    [ "$(metric "$1" "$2")" = "$3" ]
}

sluice_start "$WORK/sluice.json"
TIMEOUT=30 lib_wait_for health_ready
grep -q "health listener listening on 127.0.0.1:$HEALTH_PORT" "$SLUICE_LOG" || lib_fail "no 'health listener listening' line"
lib_pass "the health listener's /readyz answers 200 without a token once the group is joined"

[ "$(status_of "$HEALTH/healthz")" = 200 ] || lib_fail "health /healthz"
[ "$(status_of "$HEALTH/metrics")" = 200 ] || lib_fail "health /metrics without a token"
[ "$(status_of -H 'Authorization: Bearer wrong' "$HEALTH/metrics")" = 200 ] || lib_fail "health /metrics with a wrong token"
[ "$(status_of "$ADMIN/metrics")" = 401 ] || lib_fail "the admin API's /metrics without a token was not refused"
[ "$(status_of "$ADMIN/readyz")" = 401 ] || lib_fail "the admin API's /readyz without a token was not refused"
[ "$(status_of -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "$ADMIN/metrics")" = 200 ] || lib_fail "admin /metrics with the token"
lib_pass "probes and /metrics need no token on the health listener; the admin API still requires it"

for path in / /sinks /sinks/hook/debug /status /readyz/ /metrics.txt; do
    [ "$(status_of "$HEALTH$path")" = 404 ] || lib_fail "health GET $path answered $(status_of "$HEALTH$path"), expected 404"
    [ "$(status_of -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "$HEALTH$path")" = 404 ] ||
        lib_fail "health GET $path with the admin token was not 404"
done
for path in /reload /sinks/hook/pause /sinks/hook/resume /sinks/hook/replay /metrics /readyz; do
    [ "$(status_of -X POST -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" -d '{"offset":0}' "$HEALTH$path")" = 404 ] ||
        lib_fail "health POST $path was not 404"
done
! grep -q 'reload' "$SLUICE_LOG" || lib_fail "a POST to the health listener reloaded: $(grep reload "$SLUICE_LOG")"
[ "$(admin_sink hook .state)" = running ] || lib_fail "the hook sink is no longer running after POSTs to the health listener"
lib_pass "the health listener answers 404 to every admin path and method, with or without the token, and acts on none"

# Ready once the group is joined; the partitions appear as their committed offsets are loaded.
TIMEOUT=30 lib_wait_for metric_is sluice_consumer_assigned_partitions '' 2
[ "$(metric sluice_consumer_rebalances_total 'kind="assign"')" -ge 1 ] || lib_fail "no assign rebalance counted"
[ "$(metric sluice_consumer_rebalances_total 'kind="error"')" = 0 ] || lib_fail "a rebalance error was counted"
lib_pass "one member holds both partitions: sluice_consumer_assigned_partitions 2, rebalances by kind counted"

# 20 records answered 400 (permanent): every one dead-lettered, each letter acknowledged.
lib_receiver_mode '{"mode":"status","status":400}'
make_records 20 5 "$WORK/r1.tsv" 0
lib_produce ops "$WORK/r1.tsv"
TIMEOUT=60 lib_wait_for metric_is sluice_sink_records_dead_lettered_total 'sink="hook",type="webhook"' 20
TIMEOUT=30 lib_wait_for metric_is sluice_dlq_letters_stored_total '' 20
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 20
[ "$(metric sluice_dlq_letters_pending)" = 0 ] || lib_fail "letters still pending: $(metric sluice_dlq_letters_pending)"
[ "$(metric sluice_dlq_produce_errors_total)" = 0 ] || lib_fail "produce errors: $(metric sluice_dlq_produce_errors_total)"
requests_400=$(lib_receiver_stats | jq .requests)
[ "$(metric sluice_sink_http_responses_total 'sink="hook",type="webhook",class="4xx"')" = "$requests_400" ] ||
    lib_fail "4xx answers $(metric sluice_sink_http_responses_total 'sink="hook",type="webhook",class="4xx"'), receiver counted $requests_400 requests"
lib_pass "20 records refused with 400: 20 letters stored and none pending; $requests_400 answers counted as 4xx, as the receiver saw"

lib_receiver_mode '{"mode":"ok"}'
make_records 30 5 "$WORK/r2.tsv" 20
lib_produce ops "$WORK/r2.tsv"
TIMEOUT=60 lib_wait_for metric_is sluice_sink_records_delivered_total 'sink="hook",type="webhook"' 30
scrape >"$WORK/metrics.health"
requests=$(lib_receiver_stats | jq .requests)
batches=$(awk '$1 == "sluice_sink_batches_total{sink=\"hook\",type=\"webhook\"}" { print $2 }' "$WORK/metrics.health")
ok=$(awk '$1 == "sluice_sink_http_responses_total{sink=\"hook\",type=\"webhook\",class=\"2xx\"}" { print $2 }' "$WORK/metrics.health")
[ "$ok" = "$batches" ] || lib_fail "2xx answers $ok, batches applied $batches"
[ "$((ok + requests_400))" = "$requests" ] || lib_fail "2xx $ok + 4xx $requests_400 != receiver's $requests requests"
for class in none 1xx 3xx 5xx; do
    grep -qx "sluice_sink_http_responses_total{sink=\"hook\",type=\"webhook\",class=\"$class\"} 0" "$WORK/metrics.health" ||
        lib_fail "class $class is not 0"
done
lib_pass "30 records delivered in $batches batches: $ok answers counted as 2xx, 2xx + 4xx = the receiver's $requests requests"

promtool check metrics <"$WORK/metrics.health" || lib_fail "promtool rejects the health listener's /metrics"
# The scrape's own connection at least (an earlier client's close may not be seen yet).
[ "$(awk '$1 == "sluice_health_http_connections" { print $2 }' "$WORK/metrics.health")" -ge 1 ] ||
    lib_fail "the scrape's own connection is not counted"
start=$(awk '$1 == "process_start_time_seconds" { print int($2) }' "$WORK/metrics.health")
started_at=$(date -d "$(ps -o lstart= -p "$SLUICE_PID")" +%s)
[ "$start" -ge $((started_at - 2)) ] && [ "$start" -le $((started_at + 2)) ] ||
    lib_fail "process_start_time_seconds $start, ps says $started_at"
max_fds=$(awk '$1 == "Max" && $2 == "open" && $3 == "files" { print $4 }' "/proc/$SLUICE_PID/limits")
[ "$(awk '$1 == "process_max_fds" { print $2 }' "$WORK/metrics.health")" = "$max_fds" ] || lib_fail "process_max_fds is not $max_fds"
fds=$(awk '$1 == "process_open_fds" { print $2 }' "$WORK/metrics.health")
now_fds=$(find "/proc/$SLUICE_PID/fd" -mindepth 1 | wc -l)
[ "$fds" -ge $((now_fds - 3)) ] && [ "$fds" -le $((now_fds + 3)) ] || lib_fail "process_open_fds $fds, /proc/PID/fd holds $now_fds"
cpu=$(awk '$1 == "process_cpu_seconds_total" { print $2 }' "$WORK/metrics.health")
awk -v c="$cpu" 'BEGIN { exit !(c > 0 && c < 600) }' || lib_fail "process_cpu_seconds_total $cpu"
lib_pass "promtool accepts it; process_start_time_seconds matches ps, process_max_fds and process_open_fds /proc ($fds fds), CPU $cpu s"

# A reload: the unchanged sink keeps its HTTP answers; the health listener answers throughout.
admin_post /reload >/dev/null || lib_fail "POST /reload refused"
TIMEOUT=60 lib_wait_for grep -q 'msg="reloaded ' "$SLUICE_LOG"   # the new pipeline runs
TIMEOUT=30 lib_wait_for health_ready
[ "$(metric sluice_sink_http_responses_total 'sink="hook",type="webhook",class="2xx"')" = "$ok" ] ||
    lib_fail "2xx answers after the reload: $(metric sluice_sink_http_responses_total 'sink="hook",type="webhook",class="2xx"'), before $ok"
[ "$(metric sluice_sink_http_responses_total 'sink="hook",type="webhook",class="4xx"')" = "$requests_400" ] ||
    lib_fail "4xx answers did not survive the reload"
lib_pass "after a reload the unchanged sink still counts $ok 2xx and $requests_400 4xx answers"
sluice_stop

# A health listener alone: no admin API at all (so an admin.token that expands to nothing
# protects nothing and does not stop the start).
jq '.admin.listen = ""' "$WORK/sluice.json" >"$WORK/health-only.json"
SLUICE_ADMIN_TOKEN='' sluice_start "$WORK/health-only.json"
TIMEOUT=30 lib_wait_for health_ready
! grep -q 'admin API listening' "$SLUICE_LOG" || lib_fail "the admin API listens though admin.listen is empty"
scrape >"$WORK/metrics.health-only"
grep -qx 'sluice_ready 1' "$WORK/metrics.health-only" || lib_fail "health-only /metrics has no sluice_ready 1"
grep -q '^sluice_health_http_connections [1-9]' "$WORK/metrics.health-only" || lib_fail "health-only /metrics lacks its listener's connections"
! grep -q '^sluice_admin_http' "$WORK/metrics.health-only" || lib_fail "admin listener metrics without an admin listener"
lib_pass "with admin.listen empty (and admin.token empty) the health listener alone serves the probes and /metrics"
sluice_stop

# The address is taken (by the receiver): sluice does not start, and says why.
jq --arg listen "127.0.0.1:$RECEIVER_PORT" '.health.listen = $listen' "$WORK/sluice.json" >"$WORK/taken.json"
rc=0
timeout "$(lib_tmout 30)" "$SLUICE_BUILD_DIR/sluice" run -c "$WORK/taken.json" >"$WORK/taken.out" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || lib_fail "sluice with health.listen in use exited $rc"
grep -q "health: cannot listen on 127.0.0.1:$RECEIVER_PORT" "$WORK/taken.out" || lib_fail "no reason given: $(cat "$WORK/taken.out")"
lib_pass "health.listen on an address in use stops the start (exit $rc) with the reason"

lib_summary
