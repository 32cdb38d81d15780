#!/usr/bin/env bash
# sluice run --dry-run maps and batches records and prints what it would send, sending nothing:
# no sink starts, so the file sinks' files are neither created nor touched (not even truncated
# or recovered), the webhook and http sinks make no request, no dead letter is produced (it is
# printed), nothing is committed, and the real consumer group is left alone. Sinks whose mapped
# form is not text (webhook, http) show the key and value they map, never their private bytes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

lib_start_kafka preview:2 sluice.dlq:1
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
sluice_write_config "$WORK/sluice.json" dry-test
cat >"$WORK/sinks.d/preview.json" <<JSON
{ "name": "preview", "type": "file", "topics": ["preview"], "batch": { "max_records": 5, "linger_ms": 5 },
  "file": { "path": "$WORK/never.ndjson" } }
JSON
# A file sink whose file exists, without positions: starting it would truncate the file.
printf '{"left":"alone"}\n{"by":"the dry run"}\n' >"$WORK/kept.ndjson"
touch -d '2020-01-01 00:00:00' "$WORK/kept.ndjson"
kept_before=$(stat -c '%s %Y' "$WORK/kept.ndjson"; sha256sum <"$WORK/kept.ndjson")
cat >"$WORK/sinks.d/kept.json" <<JSON
{ "name": "kept", "type": "file", "topics": ["preview"], "file": { "path": "$WORK/kept.ndjson" } }
JSON
cat >"$WORK/sinks.d/hook.json" <<JSON
{ "name": "hook", "type": "webhook", "topics": ["preview"], "batch": { "max_records": 7, "linger_ms": 5 },
  "webhook": { "url": "$RECEIVER_URL/hook", "secret": "$HTTP_TEST_SECRET", "allow_private_networks": true } }
JSON
cat >"$WORK/sinks.d/api.json" <<JSON
{ "name": "api", "type": "http", "topics": ["preview"], "batch": { "max_records": 3, "linger_ms": 5 },
  "http": { "method": "PUT", "url": "$RECEIVER_URL/things/{key}", "body": { "seq": "{\$.seq}" },
            "allow_private_networks": true } }
JSON
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/sluice.json" >/dev/null || lib_fail "sluice check refused the sinks"
make_records 20 3 "$WORK/r.tsv"
printf '\xff\t{"id":"bad","seq":99}\n' >>"$WORK/r.tsv"
lib_produce preview "$WORK/r.tsv"

lib__spawn "$WORK/dry.out" "$SLUICE_BUILD_DIR/sluice" run --dry-run -c "$WORK/sluice.json"
SLUICE_PID=$LIB_LAST_PID
SLUICE_LOG=$WORK/dry.out
shown_count() {   # SINK: records printed in its batches
    jq -R --arg s "$1" 'fromjson? | select(.records and .sink == $s) | .records | length' "$WORK/dry.out" 2>/dev/null |
        awk '{s += $1} END {print s + 0}'
}
dry_done() { [ "$(shown_count preview)" -ge 20 ] && [ "$(shown_count kept)" -ge 20 ] &&
             [ "$(shown_count hook)" -ge 20 ] && [ "$(shown_count api)" -ge 21 ] &&
             grep -q '"dead_letter"' "$WORK/dry.out"; }
TIMEOUT=60 lib_wait_for dry_done
sleep 0.5   # anything extra would show up now
sluice_stop

shown=$(jq -R 'fromjson? | select(.records and .sink == "preview") | .records[] | .would_send' "$WORK/dry.out" |
        jq -rs 'map(fromjson | .value.seq) | sort | map(tostring) | join(",")')
[ "$shown" = "$(seq -s, 0 19)" ] || lib_fail "the dry run showed seqs $shown"
jq -R 'fromjson? | select(.records and .sink == "preview") | .records_in_batch' "$WORK/dry.out" | awk '$1 > 5 { exit 1 }' ||
    lib_fail "a printed batch is larger than max_records"
grep -q '"sink":"preview","dead_letter":.*"reason":"key is not valid UTF-8"' "$WORK/dry.out" ||
    lib_fail "the bad record's dead letter was not shown"
lib_pass "the dry run printed all 20 records as the file sink would write them, in batches of at most 5, and the dead letter"

# webhook and http: the key and the value they map, with the sink's type; never their
# private prepared structures read as text (ASan catches an out-of-bounds read there).
for spec in hook:webhook:7:20 api:http:3:21; do
    IFS=: read -r name type max count <<<"$spec"
    [ "$(jq -R --arg s "$name" 'fromjson? | select(.records and .sink == $s) | .type' "$WORK/dry.out" | sort -u)" = "\"$type\"" ] ||
        lib_fail "$name's batches do not say type $type"
    jq -R --arg s "$name" 'fromjson? | select(.records and .sink == $s) | .records_in_batch' "$WORK/dry.out" |
        awk -v m="$max" '$1 > m { exit 1 }' || lib_fail "a printed $name batch is larger than $max"
    jq -R --arg s "$name" 'fromjson? | select(.records and .sink == $s) | .records[]' "$WORK/dry.out" >"$WORK/$name.shown"
    [ "$(jq -s 'map(select(has("would_send"))) | length' "$WORK/$name.shown")" = 0 ] ||
        lib_fail "$name showed its prepared form as text"
    seqs=$(jq -rs 'map(select(.key != null) | (.value | fromjson) as $v | select($v.id == .key) | $v.seq) | sort | map(tostring) | join(",")' "$WORK/$name.shown")
    [ "$seqs" = "$(seq -s, 0 19)" ] || lib_fail "$name showed key/value pairs for seqs $seqs"
    [ "$(jq -s length "$WORK/$name.shown")" = "$count" ] || lib_fail "$name showed $(jq -s length "$WORK/$name.shown") records, expected $count"
done
grep -q '"sink":"hook","dead_letter":.*"reason":"key is not valid UTF-8"' "$WORK/dry.out" ||
    lib_fail "the webhook sink's dead letter for the bad key was not shown"
lib_pass "webhook and http sinks show the key and value they map for each record, with their type"

[ "$(lib_receiver_stats | jq .requests)" = 0 ] || lib_fail "the dry run sent requests: $(lib_receiver_stats)"
[ ! -e "$WORK/never.ndjson" ] || lib_fail "the dry run created the file sink's file"
[ ! -e "$WORK/never.ndjson.positions" ] || lib_fail "the dry run created the file sink's positions"
[ ! -e "$WORK/kept.ndjson.positions" ] || lib_fail "the dry run created the kept file's positions"
kept_after=$(stat -c '%s %Y' "$WORK/kept.ndjson"; sha256sum <"$WORK/kept.ndjson")
[ "$kept_after" = "$kept_before" ] || lib_fail "the dry run changed an existing sink file: $kept_before -> $kept_after"
[ "$(kcat -C -q -b "$KAFKA_BROKERS" -t sluice.dlq -o beginning -e 2>/dev/null | wc -l)" -eq 0 ] || lib_fail "the dry run produced a dead letter"
for g in dry-test dry-test.dry-run; do
    "$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g "$g" -t preview | awk '$2 != -1 { exit 1 }' ||
        lib_fail "group $g has committed offsets after a dry run"
done
lib_pass "no request was sent, no file created or changed, nothing produced or committed"
lib_summary
