#!/usr/bin/env bash
# The admin API as an operator uses it: token required (but on /healthz); /metrics parses with
# promtool and moves as records flow; pause stops delivery to one sink while the other goes on,
# and resume catches up without duplicates; replay re-delivers to one sink alone; /debug shows
# deliveries; a reload adds, changes and removes sinks while records flow; an invalid reload is
# refused with the loader's messages and changes nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init

export SLUICE_ADMIN_TOKEN="tok-$RANDOM-$RANDOM"
lib_start_kafka ops:2 sluice.dlq:1
sluice_write_config "$WORK/sluice.json" admin-test
ADMIN_PORT=$(lib_free_port)
ADMIN=http://127.0.0.1:$ADMIN_PORT
jq --arg listen "127.0.0.1:$ADMIN_PORT" '. + {admin: {listen: $listen, token: "${SLUICE_ADMIN_TOKEN}"}}' \
    "$WORK/sluice.json" >"$WORK/tmp.json" && mv "$WORK/tmp.json" "$WORK/sluice.json"
for s in alpha beta; do
    cat >"$WORK/sinks.d/$s.json" <<JSON
{ "name": "$s", "type": "file", "topics": ["ops"], "batch": { "max_records": 100, "linger_ms": 5 },
  "file": { "path": "$WORK/$s.ndjson" } }
JSON
done

api() {   # METHOD PATH [BODY]: prints the body, fails on a non-2xx status
    local method=$1 path=$2 body=${3:-}
    curl -sS -f -X "$method" -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" ${body:+-d "$body"} "$ADMIN$path"
}
status_of() {   # prints the HTTP status of a request with the given extra curl arguments
    curl -s -o /dev/null -w '%{http_code}' "$@"
}
ready() {
    [ "$(status_of -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "$ADMIN/readyz")" = 200 ]
}
metric() {   # NAME LABELS: the value of one sample
    api GET /metrics | awk -v want="$1{$2}" '$1 == want { print $2 }'
}
sink_state() {
    api GET /sinks | jq -r --arg n "$1" '.sinks[] | select(.name == $n) | .state'
}

sluice_start "$WORK/sluice.json"
TIMEOUT=30 lib_wait_for ready
lib_pass "/readyz answers 200 once the group is joined"

[ "$(status_of "$ADMIN/healthz")" = 200 ] || lib_fail "/healthz needs no token"
[ "$(status_of "$ADMIN/metrics")" = 401 ] || lib_fail "/metrics without a token was not refused"
[ "$(status_of -H 'Authorization: Bearer wrong' "$ADMIN/metrics")" = 401 ] || lib_fail "a wrong token was not refused"
[ "$(status_of -X POST -H 'Authorization: Bearer wrong' "$ADMIN/sinks/alpha/pause")" = 401 ] || lib_fail "pause with a wrong token was not refused"
[ "$(sink_state alpha)" = running ] || lib_fail "alpha should still run"
lib_pass "the token is required everywhere but /healthz, and a wrong one changes nothing"

make_records 1000 17 "$WORK/r1.tsv" 0
lib_produce ops "$WORK/r1.tsv"
TIMEOUT=60 lib_wait_for has_lines "$WORK/alpha.ndjson" 1000
TIMEOUT=60 lib_wait_for has_lines "$WORK/beta.ndjson" 1000
api GET /metrics >"$WORK/metrics.1"
promtool check metrics <"$WORK/metrics.1" || lib_fail "promtool rejects /metrics"
[ "$(metric sluice_sink_records_delivered_total 'sink="alpha",type="file"')" = 1000 ] ||
    lib_fail "alpha delivered_total is $(metric sluice_sink_records_delivered_total 'sink="alpha",type="file"')"
grep -q '^sluice_sink_delivery_latency_seconds_count{sink="beta",type="file"} 1000$' "$WORK/metrics.1" ||
    lib_fail "beta's latency histogram did not count 1000 records"
grep -q '^sluice_partition_committed_offset{topic="ops",partition="0"}' "$WORK/metrics.1" || lib_fail "no partition metrics"
lib_pass "/metrics passes promtool and counts exactly 1000 deliveries per sink"

# The Grafana dashboard queries only metrics that exist.
jq -r '.. | .expr? // empty' "$SLUICE_SOURCE_DIR/config/grafana/sluice-dashboard.json" |
    grep -oE '\b(sluice|process)_[a-z_]+' | sed -E 's/_(bucket|sum|count)$//' | sort -u >"$WORK/dashboard.metrics"
[ -s "$WORK/dashboard.metrics" ] || lib_fail "no metric found in the dashboard"
while read -r name; do
    grep -q "^# TYPE $name " "$WORK/metrics.1" || lib_fail "the dashboard queries $name, which /metrics does not export"
done <"$WORK/dashboard.metrics"
lib_pass "every metric the Grafana dashboard queries ($(wc -l <"$WORK/dashboard.metrics")) is exported"

api POST /sinks/beta/pause >/dev/null
[ "$(sink_state beta)" = paused ] || lib_fail "beta is not shown paused"
make_records 500 17 "$WORK/r2.tsv" 1000
lib_produce ops "$WORK/r2.tsv"
TIMEOUT=60 lib_wait_for has_lines "$WORK/alpha.ndjson" 1500
sleep 1
[ "$(lines_of "$WORK/beta.ndjson")" -eq 1000 ] || lib_fail "paused beta received records: $(lines_of "$WORK/beta.ndjson")"
lib_pass "pause: beta stays at 1000 while alpha goes on to 1500"

api POST /sinks/beta/resume >/dev/null
TIMEOUT=60 lib_wait_for has_lines "$WORK/beta.ndjson" 1500
sleep 1
check_file_output "$WORK/beta.ndjson" 1500
check_file_output "$WORK/alpha.ndjson" 1500
lib_pass "resume: beta catches up to exactly 1500, and alpha got nothing twice"

out=$(api POST /sinks/alpha/replay '{"offset": 0}')
[ "$(jq -r .partitions_rewound <<<"$out")" = 2 ] || lib_fail "replay answered $out"
TIMEOUT=60 lib_wait_for has_lines "$WORK/alpha.ndjson" 3000
sleep 1
[ "$(lines_of "$WORK/alpha.ndjson")" -eq 3000 ] || lib_fail "alpha holds $(lines_of "$WORK/alpha.ndjson") after the replay"
[ "$(jq -r .value.seq "$WORK/alpha.ndjson" | sort -n | uniq -c | awk '$1 != 2' | wc -l)" -eq 0 ] ||
    lib_fail "after the replay alpha should hold every record exactly twice"
[ "$(lines_of "$WORK/beta.ndjson")" -eq 1500 ] || lib_fail "the replay reached beta too"
lib_pass "replay from offset 0 re-delivers all 1500 records to alpha alone"

out=$(api POST /sinks/alpha/replay "{\"timestamp_ms\": $(lib_now_ms)}")
[ "$(jq -r '.partitions_rewound + .partitions_without_records_after' <<<"$out")" = 2 ] ||
    lib_fail "replay by time answered $out"
lib_pass "replay by timestamp asks Kafka for the offsets and answers per partition: $out"

api GET /sinks/alpha/debug >"$WORK/debug.json"
jq -e '.deliveries | length > 0 and all(.result == "ok") and (.[0].records > 0) and (.[0].detail | test("^appended [0-9]+ bytes"))' "$WORK/debug.json" >/dev/null ||
    lib_fail "debug view: $(head -c 400 "$WORK/debug.json")"
api GET /metrics >"$WORK/metrics.2"
[ "$(metric sluice_sink_records_delivered_total 'sink="alpha",type="file"')" = 3000 ] || lib_fail "alpha's counter did not move to 3000"
lib_pass "/sinks/alpha/debug lists its deliveries; the counters moved to 3000"

# Reload while records flow: gamma added, beta changed (a filter), alpha removed.
rm "$WORK/sinks.d/alpha.json"
cat >"$WORK/sinks.d/beta.json" <<JSON
{ "name": "beta", "type": "file", "topics": ["ops"], "filter": { "path": "$.tier", "equals": "gold" },
  "file": { "path": "$WORK/beta.ndjson" } }
JSON
cat >"$WORK/sinks.d/gamma.json" <<JSON
{ "name": "gamma", "type": "file", "topics": ["ops"], "file": { "path": "$WORK/gamma.ndjson" } }
JSON
make_records 300 17 "$WORK/r3.tsv" 1500 &&
    { lib_produce ops "$WORK/r3.tsv" & }
producer=$!
api POST /reload >"$WORK/reload.json" || lib_fail "reload refused: $(cat "$WORK/reload.json")"
wait "$producer"
TIMEOUT=60 lib_wait_for has_lines "$WORK/gamma.ndjson" 300
TIMEOUT=60 lib_wait_for has_lines "$WORK/beta.ndjson" 1530
sleep 1
[ "$(lines_of "$WORK/gamma.ndjson")" -eq 300 ] || lib_fail "gamma holds $(lines_of "$WORK/gamma.ndjson"), expected the 300 new records"
[ "$(jq -r .value.seq "$WORK/gamma.ndjson" | sort -n | head -1)" = 1500 ] || lib_fail "gamma did not start at the committed position"
[ "$(lines_of "$WORK/beta.ndjson")" -eq 1530 ] || lib_fail "beta (now gold only) holds $(lines_of "$WORK/beta.ndjson"), expected 1500 + 30"
[ "$(lines_of "$WORK/alpha.ndjson")" -eq 3000 ] || lib_fail "removed alpha still received records"
names=$(api GET /sinks | jq -r '[.sinks[].name] | sort | join(",")')
[ "$names" = beta,gamma ] || lib_fail "sinks after reload: $names"
lib_pass "reload while records flow: gamma added from the committed position, beta's new filter applies, alpha gone"

printf '{ "name": "delta", "type": "file", "topics": ["ops"], "batch": { "max_records": -1 }, "file": {} }\n' >"$WORK/sinks.d/delta.json"
code=$(curl -s -o "$WORK/bad-reload.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "$ADMIN/reload")
[ "$code" = 400 ] || lib_fail "an invalid reload answered $code"
jq -r .error "$WORK/bad-reload.json" | grep -q 'delta.json:1:[0-9]*: batch.max_records: must be 1..1000000' ||
    lib_fail "the refusal does not locate the problem: $(cat "$WORK/bad-reload.json")"
jq -r .error "$WORK/bad-reload.json" | grep -q 'file: missing required key "path"' ||
    lib_fail "the refusal misses a problem: $(cat "$WORK/bad-reload.json")"
make_records 100 17 "$WORK/r4.tsv" 1800
lib_produce ops "$WORK/r4.tsv"
TIMEOUT=60 lib_wait_for has_lines "$WORK/gamma.ndjson" 400
[ "$(api GET /sinks | jq -r '[.sinks[].name] | sort | join(",")')" = beta,gamma ] || lib_fail "the invalid reload changed the sinks"
lib_pass "an invalid reload is refused with located messages; the running sinks go on"

rm "$WORK/sinks.d/delta.json"
kill -HUP "$SLUICE_PID"
TIMEOUT=60 lib_wait_for grep -q 'msg="reloaded ' "$SLUICE_LOG"
TIMEOUT=30 lib_wait_for ready
lib_pass "SIGHUP reloads too"

sluice_stop
lib_summary
