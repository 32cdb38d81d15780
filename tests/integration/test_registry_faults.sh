#!/usr/bin/env bash
# The Schema Registry when it fails, with `sluice run` and the project's registry tool:
# - down at start: the records wait (nothing delivered, nothing dead-lettered, no offset committed
#   past the first), /readyz says why, /metrics answers at once while the registry hangs; when it
#   comes back every record is delivered once, in partition order;
# - killed after warm-up: records with a schema already fetched keep flowing;
# - 401 (wrong password): the topic's sinks are parked with the reason, nothing is dead-lettered,
#   and the password never appears in the log.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init

FIX=$SLUICE_SOURCE_DIR/tests/fixtures/registry
AVRO=("$FIX"/customers/customers.avro.bin.*)
N=${#AVRO[@]}
lib_start_kafka customers.avro:2 secured.avro:1 sluice.dlq:1
lib_start_registry --load "$FIX/registry-state.json" --mode '{"mode":"down"}'

with_registry() {   # FILE URL [EXTRA JSON]: the main config gets the registry and the topics
    jq --arg url "$2" --argjson extra "${3:-{\}}" '. + {registry: ({url: $url, retry_initial_ms: 50, retry_max_ms: 500} + $extra),
        topics: {"customers.avro": {value_format: "confluent"}, "secured.avro": {value_format: "confluent"}}}' \
        "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}
registry_mode() {
    curl -fsS -m "$(lib_tmout 10)" -o /dev/null -d "$1" "$REGISTRY_URL/_control" || lib_fail "registry refused mode $1"
}
metric() {
    admin /metrics | awk -v m="$1" '$1 == m {print $2}'
}
metric_is() {
    [ "$(metric "$1")" = "$2" ]
}
metric_at_least() {
    [ "$(metric "$1")" -ge "$2" ] 2>/dev/null
}
produce_files() {
    local topic=$1
    shift
    timeout "$(lib_tmout 60)" kcat -P -q -b "$KAFKA_BROKERS" -t "$topic" -z none "$@" ||
        lib_fail "kcat could not produce to $topic"
}

sluice_write_config "$WORK/sluice.json" registry-faults
with_registry "$WORK/sluice.json" "$REGISTRY_URL"
sluice_admin_on "$WORK/sluice.json"
cat >"$WORK/sinks.d/file.json" <<JSON
{ "name": "customers-file", "type": "file", "topics": ["customers.avro"], "batch": { "linger_ms": 5 },
  "file": { "path": "$WORK/customers.ndjson" } }
JSON
sluice_start "$WORK/sluice.json"

# 1. Down at start.
produce_files customers.avro "${AVRO[@]}"
TIMEOUT=60 lib_wait_for metric_is sluice_registry_records_waiting "$N" ||
    lib_fail "records waiting: $(metric sluice_registry_records_waiting)"
TIMEOUT=30 lib_wait_for metric_at_least 'sluice_registry_requests_total{outcome="retried"}' 3 ||
    lib_fail "retried requests: $(admin /metrics | grep requests_total)"
metric_is sluice_registry_up 0 || lib_fail "sluice_registry_up is $(metric sluice_registry_up) while the registry is down"
[ ! -s "$WORK/customers.ndjson" ] || lib_fail "records were delivered without their schema"
[ "$(LIB_CONSUME_FORMAT='%o\n' lib_consume sluice.dlq 1 | wc -l)" -eq 0 ] || lib_fail "a record was dead-lettered"
code=$(curl -sS -o "$WORK/readyz" -w '%{http_code}' -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "$ADMIN/readyz")
[ "$code" = 503 ] && grep -q "schema registry down" "$WORK/readyz" && grep -q "$N records wait for a schema" "$WORK/readyz" ||
    lib_fail "/readyz answered $code: $(cat "$WORK/readyz")"
sleep_ms=$(( $(sed -n 's/.*"commit_interval_ms": \([0-9]*\).*/\1/p' "$WORK/sluice.json") ))
"$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g registry-faults -t customers.avro >"$WORK/committed"
while read -r p committed _end; do
    [ "$committed" -le 0 ] || lib_fail "customers.avro [$p] committed $committed while its records wait (commit interval ${sleep_ms} ms)"
done <"$WORK/committed"
lib_pass "registry down at start: $N records wait, none delivered, none dead-lettered, nothing committed past them, /readyz says why"

# The status page shows it too.
command -v chromium >/dev/null || lib_fail "chromium is not installed (tools/setup.sh installs it)"
browse --dump-dom "$ADMIN/?token=$SLUICE_ADMIN_TOKEN" >"$WORK/page.html" 2>"$WORK/chromium.log" ||
    lib_fail "chromium failed: $(tail -5 "$WORK/chromium.log")"
grep -q 'id="registry-state" class="state down">down<' "$WORK/page.html" || lib_fail "the status page does not show the registry down"
grep -q "id=\"topic-customers.avro\"><td>customers.avro</td><td>confluent</td><td>bytes</td><td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">$N</td>" \
    "$WORK/page.html" || lib_fail "the status page does not show the $N waiting records of customers.avro"
lib_pass "the status page shows the registry down and the $N records waiting"

# /metrics while the registry hangs: the loop never waits for it.
registry_mode '{"mode":"hang"}'
TIMEOUT=30 lib_wait_for metric_is sluice_registry_records_waiting "$N"
limit_ms=$((100 * SLUICE_TMOUT_MULTIPLIER))
for i in 1 2 3 4 5; do
    ms=$(curl -sS -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "$ADMIN/metrics" |
        awk '{printf "%d", $1 * 1000}')
    [ "$ms" -le "$limit_ms" ] || lib_fail "/metrics took $ms ms (try $i) while the registry hangs (limit $limit_ms ms)"
done
lib_pass "/metrics answered within $limit_ms ms five times while the registry hangs"

registry_mode '{"mode":"ok"}'
TIMEOUT=60 lib_wait_for has_lines "$WORK/customers.ndjson" "$N" || lib_fail "$(lines_of "$WORK/customers.ndjson") of $N after the registry came back"
jq -cS '.value' "$WORK/customers.ndjson" | sort >"$WORK/got"
jq -cS . "$FIX/customers/customers.expected.ndjson" | sort >"$WORK/want"
diff -u "$WORK/want" "$WORK/got" || lib_fail "records after the registry came back differ"
for p in 0 1; do
    jq -r "select(.partition == $p) | .offset" "$WORK/customers.ndjson" >"$WORK/offsets.$p"
    sort -n "$WORK/offsets.$p" | diff -q - "$WORK/offsets.$p" >/dev/null || lib_fail "partition $p out of order"
    [ "$(sort -u "$WORK/offsets.$p" | wc -l)" -eq "$(wc -l <"$WORK/offsets.$p")" ] || lib_fail "partition $p delivered twice"
done
TIMEOUT=10 lib_wait_for metric_is sluice_registry_up 1
lib_pass "the registry came back: all $N records delivered once each, in partition order"

# 2. Killed after warm-up: the kept schema goes on decoding.
kill -KILL "$REGISTRY_PID"
produce_files customers.avro "${AVRO[@]}"
TIMEOUT=60 lib_wait_for has_lines "$WORK/customers.ndjson" $((2 * N)) ||
    lib_fail "$(lines_of "$WORK/customers.ndjson") of $((2 * N)) with the registry gone"
lib_pass "with the registry killed, $N more records of a kept schema were delivered"
sluice_stop

# 3. 401: a registry that wants a password sluice does not have.
lib_start_registry --load "$FIX/registry-state.json" --user reader --password right-password
sluice_write_config "$WORK/secured.json" registry-secured
with_registry "$WORK/secured.json" "$REGISTRY_URL" '{"user": "reader", "password": "${SR_PASSWORD}"}'
sluice_admin_on "$WORK/secured.json"
rm -f "$WORK/sinks.d/file.json"
cat >"$WORK/sinks.d/secured.json" <<JSON
{ "name": "secured-file", "type": "file", "topics": ["secured.avro"], "file": { "path": "$WORK/secured.ndjson" } }
JSON
export SR_PASSWORD=wrong-password-123
sluice_start "$WORK/secured.json"
produce_files secured.avro "${AVRO[@]}"
TIMEOUT=60 lib_wait_for admin_sink_is secured-file parked || lib_fail "the sink is $(admin_sink secured-file .state)"
reason=$(admin_sink secured-file .parked.reason)
case $reason in
    "schema registry: the registry refuses sluice's credentials (HTTP 401)"*) ;;
    *) lib_fail "park reason: $reason" ;;
esac
metric_is sluice_registry_unauthorized 1 || lib_fail "sluice_registry_unauthorized is $(metric sluice_registry_unauthorized)"
[ ! -s "$WORK/secured.ndjson" ] || lib_fail "records were delivered"
[ "$(LIB_CONSUME_FORMAT='%o\n' lib_consume sluice.dlq 1 | wc -l)" -eq 0 ] || lib_fail "a record was dead-lettered on a 401"
! grep -q "$SR_PASSWORD" "$SLUICE_LOG" || lib_fail "the registry password is in the log"
jq -e 'select(.auth == true)' "$REGISTRY_OUT" >/dev/null || lib_fail "sluice sent no credentials: $(cat "$REGISTRY_OUT")"
lib_pass "401: the sink is parked with the reason, nothing dead-lettered, the password in no log line"
sluice_stop
lib_summary
