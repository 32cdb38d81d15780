#!/usr/bin/env bash
# The webhook sink delivers 1000 records in its three body formats to the project's HTTP
# receiver: json_array with max_records 100 sends ten 100-record bodies, ndjson 250 lines per
# body, single one record per request (records of a key in order). Each record carries id,
# topic, partition, offset, key, value and timestamp; webhook-id and Idempotency-Key name the
# record or the batch; signatures verify with the OpenSSL command line.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

N=1000
lib_start_kafka events:1 sluice.dlq:1
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
sluice_write_config "$WORK/sluice.json" webhook-delivery
# A linger of 10 minutes: every batch is cut by max_records (1000 records make whole batches),
# so the body sizes below hold however slowly the records come in.
for spec in array:json_array:100 ndjson:ndjson:250 single:single:100; do
    IFS=: read -r name format max <<<"$spec"
    cat >"$WORK/sinks.d/$name.json" <<JSON
{ "name": "hook-$name", "type": "webhook", "topics": ["events"],
  "batch": { "max_records": $max, "linger_ms": 600000 },
  "webhook": { "url": "$RECEIVER_URL/$name", "batch_format": "$format", "secret": "$HTTP_TEST_SECRET",
               "headers": { "X-Team": "growth" }, "allow_private_networks": true } }
JSON
done
"$SLUICE_BUILD_DIR/sluice" check -c "$WORK/sluice.json" >/dev/null || lib_fail "sluice check refused the sinks"

make_records "$N" 37 "$WORK/records.tsv"
lib_produce events "$WORK/records.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=60 lib_wait_for rx_has /single "$N" 200
TIMEOUT=30 lib_wait_for rx_has /array 10 200
TIMEOUT=30 lib_wait_for rx_has /ndjson 4 200
sleep 0.5   # anything extra would show up now
sluice_stop

# json_array, max_records 100: exactly ten bodies of exactly 100 records.
sizes=$(jq -r 'select(.path == "/array") | .body | fromjson | length' "$RECEIVER_OUT" | tr '\n' ' ')
[ "$sizes" = "100 100 100 100 100 100 100 100 100 100 " ] || lib_fail "json_array body sizes: $sizes"
[ "$(rx_check_exactly_once /array "$N")" -eq 0 ] || lib_fail "json_array delivered a record twice"
lib_pass "json_array: 10 bodies of 100 records, $N records in all, each once"

# The batch's webhook-id names its range; Idempotency-Key is the same; records in offset order.
jq -e -s '[.[] | select(.path == "/array")] | all(
        (.body | fromjson) as $r
        | .headers["webhook-id"] == "hook-array:events:0:\($r[0].offset)-\($r[-1].offset)"
        and .headers["idempotency-key"] == .headers["webhook-id"]
        and ([$r[].offset] == [range($r[0].offset; $r[0].offset + 100)])
        and .headers["content-type"] == "application/json" and .headers["x-team"] == "growth")' \
    "$RECEIVER_OUT" >/dev/null || lib_fail "json_array: webhook-id, Idempotency-Key, order or headers wrong"
lib_pass "json_array: webhook-id = Idempotency-Key = sink:topic:partition:first-last, records in offset order"

sizes=$(jq -r 'select(.path == "/ndjson") | .body | split("\n") | map(select(. != "")) | length' "$RECEIVER_OUT" | tr '\n' ' ')
[ "$sizes" = "250 250 250 250 " ] || lib_fail "ndjson body sizes: $sizes"
jq -e -s '[.[] | select(.path == "/ndjson")] | all(.headers["content-type"] == "application/x-ndjson"
        and (.body | endswith("\n")))' "$RECEIVER_OUT" >/dev/null || lib_fail "ndjson content type or line ends"
[ "$(rx_check_exactly_once /ndjson "$N")" -eq 0 ] || lib_fail "ndjson delivered a record twice"
lib_pass "ndjson: 4 bodies of 250 lines, $N records, each once"

[ "$(rx_count /single)" -eq "$N" ] || lib_fail "single: $(rx_count /single) requests, expected $N"
[ "$(rx_check_exactly_once /single "$N")" -eq 0 ] || lib_fail "single delivered a record twice"
jq -e -s '[.[] | select(.path == "/single")] | all((.body | fromjson) as $r
        | .headers["webhook-id"] == $r.id and .headers["idempotency-key"] == $r.id
        and $r.id == "hook-single:\($r.topic):\($r.partition):\($r.offset)"
        and ($r | has("key") and has("value") and has("timestamp") and has("topic") and has("partition") and has("offset"))
        and $r.key == $r.value.id and ($r.timestamp | type) == "number")' "$RECEIVER_OUT" >/dev/null ||
    lib_fail "single: a body lacks a field, or its id differs from webhook-id"
# Records of one key arrive in offset order (requests of different keys go in parallel).
jq -e -s '[.[] | select(.path == "/single") | .body | fromjson] | group_by(.key)
        | all([.[].offset] == ([.[].offset] | sort))' "$RECEIVER_OUT" >/dev/null ||
    lib_fail "single: records of one key arrived out of order"
lib_pass "single: $N requests, one record each with every field, webhook-id = record id, per-key order kept"

n=$(verify_all_signatures /array "$HTTP_TEST_SECRET")
m=$(verify_all_signatures /ndjson "$HTTP_TEST_SECRET")
k=$(verify_all_signatures /single "$HTTP_TEST_SECRET" 25)
# The check is not vacuous: a changed body or another key fails it.
line=$(rx_lines /array | sed -n 1p)
if verify_signature "$(jq -c '.body |= sub("\"seq\":"; "\"seq\": ")' <<<"$line")" "$HTTP_TEST_SECRET"; then
    lib_fail "a tampered body still verified"
fi
if verify_signature "$line" whsec_c2x1aWNlLXRlc3Qtb3RoZXIta2V5; then
    lib_fail "another key verified the signature"
fi
lib_pass "signatures verify with openssl over id.timestamp.body ($n array, $m ndjson, $k single); tampering is caught"

dlq=$(lib_consume sluice.dlq 10 | wc -l)
[ "$dlq" -eq 0 ] || lib_fail "$dlq records were dead-lettered"
lib_summary
