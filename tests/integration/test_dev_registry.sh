#!/usr/bin/env bash
# sluice dev --registry: an embedded Kafka and an embedded Schema Registry in one process. The
# registry starts from the fixtures' dump (--registry-load); the Avro records the real Confluent
# serializer made reach a file sink decoded, equal to the fixtures' expected JSON; a schema
# registered through the embedded registry reads back by id; registry.url may be absent from the
# file (sluice check still wants it), and a url in the file is replaced, also after a reload.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=sluice_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/sluice_lib.sh"
lib_init

FIX=$SLUICE_SOURCE_DIR/tests/fixtures/registry
CUSTOMERS=$FIX/customers
N=$(wc -l <"$CUSTOMERS/customers.expected.ndjson")
OUT=$WORK/customers.ndjson
CONF=$WORK/sluice.json

# The main file, without a registry section ($1: extra top-level JSON members, e.g. a registry).
# A short session timeout: after the reload the new consumer's group waits for it to join.
write_config() {
    jq -n --arg out "$OUT" --argjson extra "${1:-{\}}" '{
        kafka: {"group.id": "dev-registry", "session.timeout.ms": "6000"},
        admin: {listen: "127.0.0.1:0"},
        dead_letter_topic: "sluice.dlq",
        topics: {"customers.avro": {value_format: "confluent"}},
        sinks: [{name: "customers-file", type: "file", topics: ["customers.avro"],
                 batch: {linger_ms: 10}, file: {path: $out, fsync: false}}]
    } + $extra' >"$CONF"
}
write_config

rc=0
"$SLUICE_BUILD_DIR/sluice" check -c "$CONF" >"$WORK/check.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "sluice check of a confluent topic without registry.url: exit $rc, want 2"
grep -q 'needs the registry section (registry.url)' "$WORK/check.log" || lib_fail "check: $(cat "$WORK/check.log")"
rc=0
"$SLUICE_BUILD_DIR/sluice" run --registry 0 -c "$CONF" >"$WORK/run.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "sluice run --registry: exit $rc, want 2"
lib_pass "sluice check and run still want registry.url; --registry is for dev only"

SLUICE_LOG=$WORK/sluice-dev.log
lib__spawn "$SLUICE_LOG" "$SLUICE_BUILD_DIR/sluice" dev -c "$CONF" --registry 0 --registry-load "$FIX/registry-state.json"
SLUICE_PID=$LIB_LAST_PID
started() { grep -q '^sluice dev: embedded Schema Registry at ' "$SLUICE_LOG"; }
lib__wait_until "$SLUICE_PID" started || lib_fail "sluice dev did not print its registry (log: $(tail -5 "$SLUICE_LOG"))"
BROKERS=$(sed -n 's/^sluice dev: embedded Kafka at //p' "$SLUICE_LOG")
REGISTRY=$(sed -n 's/^sluice dev: embedded Schema Registry at //p' "$SLUICE_LOG")
[[ $REGISTRY =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || lib_fail "registry URL '$REGISTRY'"
[ -n "$BROKERS" ] || lib_fail "no Kafka bootstrap line"
lib_log "sluice dev: kafka $BROKERS, registry $REGISTRY"

got=$(curl -fsS -m "$(lib_tmout 10)" "$REGISTRY/subjects/customers.avro-value/versions/latest" | jq -c '[.id, .version]')
[ "$got" = '[6,1]' ] || lib_fail "customers.avro-value from the loaded dump: $got"
lib_pass "the embedded registry serves the loaded dump ($REGISTRY)"

produce() {
    timeout "$(lib_tmout 60)" kcat -P -q -b "$BROKERS" -t customers.avro -z none "$CUSTOMERS"/customers.avro.bin.* ||
        lib_fail "kcat could not produce the Avro records"
}
produce
TIMEOUT=60 lib_wait_for has_lines "$OUT" "$N"
jq -cS . "$CUSTOMERS/customers.expected.ndjson" | sort >"$WORK/want"
jq -cS .value "$OUT" | sort >"$WORK/got"
diff "$WORK/want" "$WORK/got" >"$WORK/values.diff" || lib_fail "decoded values differ: $(head -6 "$WORK/values.diff")"
lib_pass "$N Avro records reach the file sink decoded, equal to customers.expected.ndjson"

SCHEMA='{"type":"record","name":"Ping","namespace":"dev","fields":[{"name":"n","type":"long"}]}'
body=$(jq -cn --arg s "$SCHEMA" '{schema: $s}')
id=$(curl -fsS -m "$(lib_tmout 10)" -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data-binary "$body" \
    "$REGISTRY/subjects/ping-value/versions" | jq -r .id)
[ "$id" = 8 ] || lib_fail "registered id '$id', want 8 (the dump's ids go to 7)"
got=$(curl -fsS -m "$(lib_tmout 10)" "$REGISTRY/schemas/ids/$id" | jq -r .schema)
[ "$got" = "$SCHEMA" ] || lib_fail "schema $id reads back as '$got'"
got=$(curl -sS -m "$(lib_tmout 10)" -w ' %{http_code}' "$REGISTRY/schemas/ids/99")
[ "$got" = '{"error_code":40403,"message":"Schema 99 not found"} 404' ] || lib_fail "unknown id: $got"
lib_pass "a schema registered through the embedded registry reads back by id ($id); an unknown id is 40403"

# A url in the file is replaced by the embedded registry's, on a reload too.
write_config '{"registry": {"url": "http://127.0.0.1:9"}}'
kill -HUP "$SLUICE_PID"
reloaded() { grep -q 'reloaded ' "$SLUICE_LOG"; }
lib_wait_for reloaded
produce
TIMEOUT=60 lib_wait_for has_lines "$OUT" $((2 * N))
jq -cS .value "$OUT" | sort | uniq -c | awk '$1 != 2 { bad = 1 } END { exit bad }' ||
    lib_fail "after the reload, not every customer twice: $(jq -cS .value "$OUT" | sort | uniq -c | head -3)"
lib_pass "reload with registry.url in the file: still decoded through the embedded registry"

sluice_stop
lib_summary
