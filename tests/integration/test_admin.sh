#!/usr/bin/env bash
# The admin API as an operator uses it: token required (but on /healthz); /metrics parses with
# promtool and moves as records flow; pause stops delivery to one sink while the other goes on,
# and resume catches up without duplicates; replay re-delivers to one sink alone; /debug shows
# deliveries; a reload keeps an operator pause, the counters of unchanged sinks and the
# positions of a webhook sink (nothing is sent twice); a reload adds, changes and removes sinks
# while records are produced across it, each record reaching a kept sink exactly once and the
# removed and added sinks meeting at one offset; under --strict an invalid reload (a broken sink
# file), by POST /reload or SIGHUP, is refused with the loader's messages (logged too) and changes
# nothing (without --strict the file is set aside: test_sink_isolation.sh).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

export SLUICE_ADMIN_TOKEN="tok-$RANDOM-$RANDOM"
lib_start_kafka ops:2 sluice.dlq:1
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
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
# A webhook sink: at least once, its positions only in memory, so a reload must carry them.
cat >"$WORK/sinks.d/hook.json" <<JSON
{ "name": "hook", "type": "webhook", "topics": ["ops"], "batch": { "max_records": 100, "linger_ms": 5 },
  "webhook": { "url": "$RECEIVER_URL/hook", "batch_format": "json_array", "allow_private_networks": true } }
JSON

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

sluice_start "$WORK/sluice.json" --strict
TIMEOUT=30 lib_wait_for ready
lib_pass "/readyz answers 200 once the group is joined"

[ "$(status_of "$ADMIN/healthz")" = 200 ] || lib_fail "/healthz needs no token"
[ "$(status_of "$ADMIN/metrics")" = 401 ] || lib_fail "/metrics without a token was not refused"
[ "$(status_of -H 'Authorization: Bearer wrong' "$ADMIN/metrics")" = 401 ] || lib_fail "a wrong token was not refused"
[ "$(status_of -X POST -H 'Authorization: Bearer wrong' "$ADMIN/sinks/alpha/pause")" = 401 ] || lib_fail "pause with a wrong token was not refused"
[ "$(sink_state alpha)" = running ] || lib_fail "alpha should still run"
[ "$(status_of -H "Authorization: bEARER $SLUICE_ADMIN_TOKEN" "$ADMIN/metrics")" = 200 ] ||
    lib_fail "the Bearer scheme was matched case-sensitively"
lib_pass "the token is required everywhere but /healthz, a wrong one changes nothing, the scheme is case-insensitive"

rc=0
SLUICE_ADMIN_TOKEN='' "$SLUICE_BUILD_DIR/sluice" run -c "$WORK/sluice.json" >"$WORK/empty-token.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || lib_fail "an empty admin.token exited $rc, expected 2"
grep -q 'admin.token is set but empty' "$WORK/empty-token.out" || lib_fail "no reason for the empty token: $(cat "$WORK/empty-token.out")"
lib_pass "an admin.token that expands to nothing is refused (exit 2) rather than running the admin API open"

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
grep -q '^sluice_sink_delivery_latency_seconds_bucket{sink="beta",type="file",le="21600"} 1000$' "$WORK/metrics.1" ||
    lib_fail "no 6 h latency bucket"
grep -q '^sluice_sink_records_retried_total{sink="alpha",type="file"} 0$' "$WORK/metrics.1" || lib_fail "no records_retried counter"
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

reloads_at_least() {   # N: the log says "reloaded" N times or more
    [ "$(grep -c 'msg="reloaded ' "$SLUICE_LOG")" -ge "$1" ]
}
hook_has() {   # N: the webhook receiver has answered at least N records
    [ "$(rx_records_ok /hook | wc -l)" -ge "$1" ]
}
TIMEOUT=60 lib_wait_for hook_has 1500

# A reload keeps an operator pause; it must not lift it, nor make a kept webhook sink re-send
# what it had acknowledged while the paused sink held the committed offset back.
api POST /sinks/beta/pause >/dev/null
make_records 200 17 "$WORK/r3.tsv" 1500
lib_produce ops "$WORK/r3.tsv"
TIMEOUT=60 lib_wait_for has_lines "$WORK/alpha.ndjson" 3200
TIMEOUT=60 lib_wait_for hook_has 1700
cat >"$WORK/sinks.d/gamma.json" <<JSON
{ "name": "gamma", "type": "file", "topics": ["ops"], "start": "committed", "batch": { "linger_ms": 5 }, "file": { "path": "$WORK/gamma.ndjson" } }
JSON
api POST /reload >"$WORK/reload.json" || lib_fail "reload refused: $(cat "$WORK/reload.json")"
TIMEOUT=60 lib_wait_for reloads_at_least 1
# gamma (start committed) begins at the committed offset, which paused beta held at 1500.
TIMEOUT=60 lib_wait_for has_lines "$WORK/gamma.ndjson" 200
sleep 1   # anything extra would show up now
[ "$(sink_state beta)" = paused ] || lib_fail "beta is $(sink_state beta) after the reload, expected paused"
[ "$(lines_of "$WORK/beta.ndjson")" -eq 1500 ] || lib_fail "paused beta received records across the reload: $(lines_of "$WORK/beta.ndjson")"
[ "$(jq -r .value.seq "$WORK/gamma.ndjson" | sort -n | tr '\n' ,)" = "$(seq -s, 1500 1699)," ] ||
    lib_fail "gamma should hold 1500..1699 once each"
[ "$(rx_check_exactly_once /hook 1700)" -eq 0 ] || lib_fail "the kept webhook sink re-sent records after the reload"
[ "$(metric sluice_sink_records_delivered_total 'sink="alpha",type="file"')" = 3200 ] ||
    lib_fail "alpha's counter is $(metric sluice_sink_records_delivered_total 'sink="alpha",type="file"') after the reload, expected 3200 (kept)"
lib_pass "a reload adding gamma keeps beta paused and alpha's counters, and the webhook sink sends nothing twice"

api POST /sinks/beta/resume >/dev/null
TIMEOUT=60 lib_wait_for has_lines "$WORK/beta.ndjson" 1700
sleep 1
check_file_output "$WORK/beta.ndjson" 1700
lib_pass "resumed after the reload, beta catches up to exactly 1700"

# Reload while records are produced across it: delta added, beta changed (gold only), alpha
# removed; gamma and hook unchanged.
# The producer sends half of its chunks, then holds until the reload is done, then sends
# the rest: records flow before and during the reload whatever the speed, and at least 500 come
# after it (so alpha and delta both get some by construction).
produce_slowly() {   # 1000 records, 25 at a time, over several seconds
    for c in $(seq 0 39); do
        if [ "$c" -eq 20 ]; then
            for _ in $(seq $(($(lib_tmout 60) * 10))); do
                [ ! -e "$WORK/reloaded" ] || break
                sleep 0.1
            done
        fi
        make_records 25 17 "$WORK/c$c.tsv" $((1700 + 25 * c))
        lib_produce ops "$WORK/c$c.tsv"
        sleep 0.2
    done
}
produce_slowly &
producer=$!
TIMEOUT=60 lib_wait_for has_lines "$WORK/alpha.ndjson" 3300   # the flow has reached alpha
rm "$WORK/sinks.d/alpha.json"
cat >"$WORK/sinks.d/beta.json" <<JSON
{ "name": "beta", "type": "file", "topics": ["ops"], "filter": { "path": "$.tier", "equals": "gold" },
  "file": { "path": "$WORK/beta.ndjson" } }
JSON
cat >"$WORK/sinks.d/delta.json" <<JSON
{ "name": "delta", "type": "file", "topics": ["ops"], "start": "committed", "file": { "path": "$WORK/delta.ndjson" } }
JSON
api POST /reload >"$WORK/reload.json" || lib_fail "reload refused: $(cat "$WORK/reload.json")"
TIMEOUT=60 lib_wait_for reloads_at_least 2   # the new sinks run: the old pipeline is gone
: >"$WORK/reloaded"
wait "$producer" || lib_fail "the producer failed"
TIMEOUT=90 lib_wait_for has_lines "$WORK/gamma.ndjson" 1200
TIMEOUT=60 lib_wait_for hook_has 2700
sleep 1
names=$(api GET /sinks | jq -r '[.sinks[].name] | sort | join(",")')
[ "$names" = beta,delta,gamma,hook ] || lib_fail "sinks after reload: $names"
[ "$(jq -r .value.seq "$WORK/gamma.ndjson" | sort -n | tr '\n' ,)" = "$(seq -s, 1500 2699)," ] ||
    lib_fail "kept gamma does not hold 1500..2699 exactly once"
[ "$(rx_check_exactly_once /hook 2700)" -eq 0 ] || lib_fail "the kept webhook sink got a record twice across the reload"
alpha_new=$(jq -r 'select(.value.seq >= 1700) | .value.seq' "$WORK/alpha.ndjson" | wc -l)
delta_all=$(lines_of "$WORK/delta.ndjson")
{ [ "$alpha_new" -ge 100 ] && [ "$delta_all" -ge 100 ]; } ||
    lib_fail "the records did not flow across the reload: alpha got $alpha_new, delta $delta_all"
[ "$( { jq -r 'select(.value.seq >= 1700) | .value.seq' "$WORK/alpha.ndjson"; jq -r .value.seq "$WORK/delta.ndjson"; } |
      sort -n | tr '\n' ,)" = "$(seq -s, 1700 2699)," ] ||
    lib_fail "removed alpha and added delta do not split 1700..2699 between them exactly once"
for p in 0 1; do
    last=$(jq -s --argjson p "$p" '[.[] | select(.partition == $p and .value.seq >= 1700) | .offset] | max // -1' "$WORK/alpha.ndjson")
    first=$(jq -s --argjson p "$p" '[.[] | select(.partition == $p) | .offset] | min // -1' "$WORK/delta.ndjson")
    [ "$last" -lt 0 ] || [ "$first" -lt 0 ] || [ "$first" -eq $((last + 1)) ] ||
        lib_fail "partition $p: alpha stopped after offset $last but delta started at $first"
done
# beta: everything up to the switch (what alpha got), then only gold records (what delta got).
want=$( { jq -r 'select(.value.seq >= 1700) | .value.seq' "$WORK/alpha.ndjson"
          jq -r 'select(.value.tier == "gold") | .value.seq' "$WORK/delta.ndjson"; } | sort -n | tr '\n' ,)
[ "$(jq -r 'select(.value.seq >= 1700) | .value.seq' "$WORK/beta.ndjson" | sort -n | tr '\n' ,)" = "$want" ] ||
    lib_fail "changed beta does not hold everything before the switch and only gold records after it"
[ "$(lines_of "$WORK/alpha.ndjson")" -eq $((3200 + alpha_new)) ] || lib_fail "alpha holds records twice"
lib_pass "reload while records flow: gamma and hook got each record once, alpha stopped where delta started ($alpha_new / $delta_all), beta's filter applies from the switch"

printf '{ "name": "broken", "type": "file", "topics": ["ops"], "batch": { "max_records": -1 }, "file": {} }\n' >"$WORK/sinks.d/broken.json"
code=$(curl -s -o "$WORK/bad-reload.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "$ADMIN/reload")
[ "$code" = 400 ] || lib_fail "an invalid reload answered $code"
jq -r .error "$WORK/bad-reload.json" | grep -q 'broken.json:1:[0-9]*: batch.max_records: must be 1..1000000' ||
    lib_fail "the refusal does not locate the problem: $(cat "$WORK/bad-reload.json")"
jq -r .error "$WORK/bad-reload.json" | grep -q 'file: missing required key "path"' ||
    lib_fail "the refusal misses a problem: $(cat "$WORK/bad-reload.json")"
make_records 100 17 "$WORK/r4.tsv" 2700
lib_produce ops "$WORK/r4.tsv"
TIMEOUT=60 lib_wait_for has_lines "$WORK/gamma.ndjson" 1300
[ "$(api GET /sinks | jq -r '[.sinks[].name] | sort | join(",")')" = beta,delta,gamma,hook ] || lib_fail "the invalid reload changed the sinks"
lib_pass "an invalid reload is refused with located messages; the running sinks go on"

# The same by SIGHUP: no one to answer, so the log says why, in `sluice check`'s words.
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/sluice.json" 2>"$WORK/check.err" >/dev/null &&
    lib_fail "sluice check --strict accepts broken.json"
kill -HUP "$SLUICE_PID"
TIMEOUT=30 lib_wait_for grep -q 'msg="reload (SIGHUP) refused: [0-9]* problem' "$SLUICE_LOG"
grep -q 'broken.json' "$WORK/check.err" || lib_fail "sluice check does not name broken.json"
while read -r problem; do
    case $problem in *"problem found"|*"problems found") continue ;; esac
    grep -qF "reload (SIGHUP) refused: ${problem//\"/\\\"}" "$SLUICE_LOG" || lib_fail "the log misses: $problem"
done <"$WORK/check.err"
grep -q 'msg="reload (SIGHUP) refused: [^"]*broken.json:1:[0-9]*: batch.max_records: must be 1..1000000"' "$SLUICE_LOG" ||
    lib_fail "the log does not locate the problem as file:line:column: message"
make_records 100 17 "$WORK/r5.tsv" 2800
lib_produce ops "$WORK/r5.tsv"
TIMEOUT=60 lib_wait_for has_lines "$WORK/gamma.ndjson" 1400
[ "$(api GET /sinks | jq -r '[.sinks[].name] | sort | join(",")')" = beta,delta,gamma,hook ] || lib_fail "the invalid SIGHUP reload changed the sinks"
lib_pass "an invalid SIGHUP reload logs each problem as sluice check prints it; the running sinks go on"

rm "$WORK/sinks.d/broken.json"
kill -HUP "$SLUICE_PID"
TIMEOUT=60 lib_wait_for reloads_at_least 3
TIMEOUT=30 lib_wait_for ready
lib_pass "SIGHUP reloads too"

sluice_stop
lib_summary
