#!/usr/bin/env bash
# Schema Registry data products through `sluice run`, with the project's registry tool serving the
# fixtures' schemas (tests/fixtures/registry, made by the real Confluent serializers):
# - the same "customers" product as Avro, Protobuf, JSON Schema and plain JSON reaches file sinks
#   as identical JSON values, each exactly the expected one;
# - every golden case (unions, enums, decimals, timestamps, references, nested Protobuf messages
#   with message indexes [1] and [1,0], unknown fields, defaults) decodes to its expected JSON;
# - ten records that share a schema id make one request for it (single flight), and a schema is
#   never asked for again once kept;
# - a record with an unknown id, one that is not framed, and one that claims a string longer than
#   what is left each make exactly one dead letter (not one per sink) with the original bytes,
#   sluice.stage=decode, sluice.schema.id and the exact reason; every sink counts them done, so
#   the committed offsets reach the end of every partition.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init

FIX=$SLUICE_SOURCE_DIR/tests/fixtures/registry
lib_start_kafka customers.avro:2 customers.proto:2 customers.json:2 customers.plain:2 \
    profiles.avro:1 orders.proto:1 profiles.json:1 keyed.avro:1 keyed.text:1 sluice.dlq:1
lib_start_registry --load "$FIX/registry-state.json"

sluice_write_config "$WORK/sluice.json" registry-decode
jq --arg url "$REGISTRY_URL" '. + {registry: {url: $url}, topics: {
      "customers.avro": {value_format: "confluent"}, "customers.proto": {value_format: "confluent"},
      "customers.json": {value_format: "confluent"}, "profiles.avro": {value_format: "confluent"},
      "orders.proto": {value_format: "confluent"}, "profiles.json": {value_format: "confluent"},
      "keyed.avro": {key_format: "confluent"}, "keyed.text": {key_format: "string"}}}' \
    "$WORK/sluice.json" >"$WORK/sluice.tmp" && mv "$WORK/sluice.tmp" "$WORK/sluice.json"
sluice_admin_on "$WORK/sluice.json"
for t in customers.avro customers.proto customers.json customers.plain profiles.avro orders.proto profiles.json keyed.avro keyed.text; do
    cat >"$WORK/sinks.d/$t.json" <<JSON
{ "name": "file-$t", "type": "file", "topics": ["$t"], "batch": { "linger_ms": 5 },
  "file": { "path": "$WORK/$t.ndjson" } }
JSON
done
# A second sink on one topic: a record no sink can read still makes one dead letter.
cat >"$WORK/sinks.d/avro-copy.json" <<JSON
{ "name": "file-avro-copy", "type": "file", "topics": ["customers.avro"], "file": { "path": "$WORK/avro-copy.ndjson" } }
JSON
"$SLUICE_BUILD_DIR/sluice" check -c "$WORK/sluice.json" || lib_fail "sluice check refused a valid config"
sluice_start "$WORK/sluice.json"

produce_files() {   # TOPIC FILE...: one message per file, as the serializer made it
    local topic=$1
    shift
    timeout "$(lib_tmout 60)" kcat -P -q -b "$KAFKA_BROKERS" -t "$topic" -z none "$@" ||
        lib_fail "kcat could not produce to $topic"
}
values_of() {   # FILE: the values it holds, one canonical JSON per line, sorted
    jq -cS '.value' "$1" | sort
}

# 1. One product, four encodings, one result.
jq -cS . "$FIX/customers/customers.expected.ndjson" | sort >"$WORK/expected"
N=$(wc -l <"$WORK/expected")
# The registry holds its answers until every framed record waits for its schema: then each id
# must have been asked for once, however many records wait for it.
registry_mode() {
    curl -fsS -m "$(lib_tmout 10)" -o /dev/null -d "$1" "$REGISTRY_URL/_control" || lib_fail "registry refused mode $1"
}
waiting() {
    [ "$(admin /metrics | awk '$1 == "sluice_registry_records_waiting" {print $2}')" = "$1" ]
}
registry_mode '{"mode":"hang"}'
produce_files customers.avro "$FIX"/customers/customers.avro.bin.*
produce_files customers.proto "$FIX"/customers/customers.protobuf.bin.*
produce_files customers.json "$FIX"/customers/customers.json.bin.*
produce_files customers.plain "$FIX"/customers/customers.plain.bin.*
TIMEOUT=60 lib_wait_for waiting $((3 * N)) || lib_fail "records waiting for a schema: $(admin /metrics | grep records_waiting)"
registry_mode '{"mode":"ok"}'
for t in customers.avro customers.proto customers.json customers.plain; do
    TIMEOUT=60 lib_wait_for has_lines "$WORK/$t.ndjson" "$N" || lib_fail "$t: $(lines_of "$WORK/$t.ndjson") of $N records"
    values_of "$WORK/$t.ndjson" >"$WORK/$t.values"
    diff -u "$WORK/expected" "$WORK/$t.values" || lib_fail "$t: the decoded values differ from the product's JSON"
done
lib_pass "the customers product as Avro, Protobuf, JSON Schema and plain JSON reached the sinks as the same $N JSON values"

# 2. Single flight: ten Avro records waited for schema 6, which was asked for once (Protobuf's
# twice: the schema, then its descriptor with format=serialized).
avro_id=$(jq -r '.customers.avro.schema_id' "$FIX/index.json")
proto_id=$(jq -r '.customers.protobuf.schema_id' "$FIX/index.json")
n=$(jq -r --arg p "/schemas/ids/$avro_id" 'select(.path == $p) | .path' "$REGISTRY_OUT" | wc -l)
[ "$n" -eq 1 ] || lib_fail "schema $avro_id was asked for $n times (want 1): $(cat "$REGISTRY_OUT")"
n=$(jq -r --arg p "/schemas/ids/$proto_id" 'select(.path == $p and .query == "format=serialized") | .path' "$REGISTRY_OUT" | wc -l)
[ "$n" -eq 1 ] || lib_fail "schema $proto_id's descriptor was asked for $n times (want 1)"
lib_pass "$N records sharing a schema id made one request for it"

# 3. Every golden case decodes to its expected JSON, in the order produced (one partition).
for topic in profiles.avro orders.proto profiles.json; do
    jq -r --arg t "$topic" '.cases[] | select(.topic == $t) | .case' "$FIX/index.json" >"$WORK/$topic.cases"
    files=()
    while read -r c; do files+=("$FIX/$c.bin"); done <"$WORK/$topic.cases"
    produce_files "$topic" "${files[@]}"
    TIMEOUT=60 lib_wait_for has_lines "$WORK/$topic.ndjson" "${#files[@]}" ||
        lib_fail "$topic: $(lines_of "$WORK/$topic.ndjson") of ${#files[@]} golden records"
    i=0
    while read -r c; do
        i=$((i + 1))
        want=$(jq -cS . "$FIX/$c.expected.json")
        got=$(sed -n "${i}p" "$WORK/$topic.ndjson" | jq -cS '.value')
        [ "$got" = "$want" ] || lib_fail "golden case $c: got $got, want $want"
    done <"$WORK/$topic.cases"
    lib_pass "$topic: ${#files[@]} golden cases decoded to their expected JSON"
done

# 4. Records no sink can read: one dead letter each, for all sinks of the topic.
printf '\x00\x00\x00\x03\xe7\x02\x06abc' >"$WORK/unknown-id.bin"
printf '{"id":1}' >"$WORK/not-framed.bin"
printf '\x00\x00\x00\x00%b\x02\xfe\xff\xff\xff\x0f' "\\x$(printf %02x "$avro_id")" >"$WORK/huge-string.bin"
produce_files customers.avro "$WORK/unknown-id.bin" "$WORK/not-framed.bin" "$WORK/huge-string.bin"
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 3
LIB_CONSUME_FORMAT='%p\t%o\t%h\n' lib_consume sluice.dlq 10 >"$WORK/dlq"
[ "$(wc -l <"$WORK/dlq")" -eq 3 ] || lib_fail "expected 3 dead letters (one per record), got: $(cat "$WORK/dlq")"
expect_letter() {   # REASON SCHEMA_ID(or -) VALUE_FILE
    local line p o
    line=$(grep -F "sluice.reason=$1," "$WORK/dlq") || lib_fail "no dead letter with reason '$1': $(cat "$WORK/dlq")"
    case $line in *sluice.stage=decode*) ;; *) lib_fail "letter lacks sluice.stage=decode: $line" ;; esac
    case $line in *sluice.sink=*) lib_fail "a decode letter names a sink: $line" ;; esac
    if [ "$2" = - ]; then
        case $line in *sluice.schema.id=*) lib_fail "letter has a schema id: $line" ;; esac
    else
        case $line in *"sluice.schema.id=$2,"*) ;; *) lib_fail "letter lacks sluice.schema.id=$2: $line" ;; esac
    fi
    IFS=$'\t' read -r p o _ <<<"$line"
    timeout "$(lib_tmout 30)" kcat -C -q -b "$KAFKA_BROKERS" -t sluice.dlq -p "$p" -o "$o" -c 1 -e -f '%s' >"$WORK/letter.bin"
    cmp -s "$WORK/letter.bin" "$3" || lib_fail "the letter's value is not the original bytes: $line"
}
expect_letter "decode: value: schema 999 does not exist in the registry (40403)" 999 "$WORK/unknown-id.bin"
expect_letter "decode: value: unknown magic byte 0x7b at byte 0 (not schema registry framing; is the topic JSON?)" - "$WORK/not-framed.bin"
expect_letter "decode: value: schema $avro_id: string length 2147483647 exceeds the 0 bytes left at byte 6" "$avro_id" "$WORK/huge-string.bin"
lib_pass "3 undecodable records: one dead letter each, with the original bytes, the stage, the schema id and the reason"

# 5. Keys: an Avro-framed key (schema "string") is the string itself; a key that must be text
# but is not UTF-8 is one dead letter.
key_id=$(curl -fsS -m "$(lib_tmout 10)" -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
    -d '{"schema": "\"string\""}' "$REGISTRY_URL/subjects/keyed.avro-key/versions" | jq -r .id)
{   # kcat -D/-K reads keys and values binary-safe from stdin: "key|value@@@"
    printf '\x00\x00\x00\x00%b\x06c-1|{"id":"c-1"}@@@' "\\x$(printf %02x "$key_id")"
    printf 'plain-key|{"id":"c-2"}@@@'
} | timeout "$(lib_tmout 30)" kcat -P -q -b "$KAFKA_BROKERS" -t keyed.avro -z none -D '@@@' -K '|' ||
    lib_fail "kcat could not produce the keyed records"
printf '\xff\xfe|{"id":"k-1"}@@@ok-key|{"id":"k-2"}@@@' |
    timeout "$(lib_tmout 30)" kcat -P -q -b "$KAFKA_BROKERS" -t keyed.text -z none -D '@@@' -K '|' ||
    lib_fail "kcat could not produce the text-keyed records"
TIMEOUT=30 lib_wait_for has_lines "$WORK/keyed.avro.ndjson" 1
TIMEOUT=30 lib_wait_for has_lines "$WORK/keyed.text.ndjson" 1
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 5
[ "$(jq -c '[.key, .value.id]' "$WORK/keyed.avro.ndjson")" = '["c-1","c-1"]' ] ||
    lib_fail "keyed.avro delivered: $(cat "$WORK/keyed.avro.ndjson")"
[ "$(jq -c '[.key, .value.id]' "$WORK/keyed.text.ndjson")" = '["ok-key","k-2"]' ] ||
    lib_fail "keyed.text delivered: $(cat "$WORK/keyed.text.ndjson")"
LIB_CONSUME_FORMAT='%h\n' lib_consume sluice.dlq 10 >"$WORK/dlq-keys"
grep -q 'sluice.reason=decode: key: unknown magic byte 0x70 at byte 0 (not schema registry framing),sluice.topic=keyed.avro' "$WORK/dlq-keys" ||
    lib_fail "no dead letter for the unframed key: $(cat "$WORK/dlq-keys")"
grep -q 'sluice.reason=decode: key: not UTF-8 text (key_format "string"),sluice.topic=keyed.text' "$WORK/dlq-keys" ||
    lib_fail "no dead letter for the key that is not UTF-8: $(cat "$WORK/dlq-keys")"
lib_pass "keys: an Avro string key arrives as the string; an unframed key and a key that is not UTF-8 are dead-lettered once each"

# The record that claims a 2 GiB string was refused before anything was allocated for it: the
# process's peak resident memory stays under a bound far below the claim.
peak_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$SLUICE_PID/status")
bound_kib=$((64 * 1024))
lib_log "sluice's peak RSS after the hostile record: $((peak_kib / 1024)) MiB (bound $((bound_kib / 1024)) MiB)"
[ "$peak_kib" -lt "$bound_kib" ] || lib_fail "peak RSS $((peak_kib / 1024)) MiB is over the $((bound_kib / 1024)) MiB bound"
lib_pass "a record claiming a 2 GiB string was dead-lettered with peak RSS at $((peak_kib / 1024)) MiB (bound 64 MiB)"

failures=$(admin /metrics | awk '/^sluice_topic_decode_failures_total\{topic="customers.avro"\}/ {print $2}')
[ "$failures" = 3 ] || lib_fail "sluice_topic_decode_failures_total{topic=\"customers.avro\"} is '$failures', want 3"
[ "$(admin /sinks | jq -r '.topics["customers.avro"].decode_failures')" = 3 ] || lib_fail "GET /sinks: $(admin /sinks | jq -c .topics)"
lib_pass "the 3 decode failures are counted once each in /metrics and GET /sinks"
sluice_stop
"$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g registry-decode -t customers.avro >"$WORK/committed"
while read -r p committed end; do
    [ "$committed" -eq "$end" ] || lib_fail "customers.avro [$p] committed $committed, end is $end"
done <"$WORK/committed"
[ "$(wc -l <"$WORK/avro-copy.ndjson")" -eq "$N" ] || lib_fail "the second avro sink holds $(wc -l <"$WORK/avro-copy.ndjson") records"
lib_pass "every sink counted the dead-lettered records done: customers.avro committed to its end"
lib_summary
