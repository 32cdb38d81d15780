#!/usr/bin/env bash
# Tests tools/schema-registry with curl: the registry API the Confluent clients call (register,
# ids, subjects, versions, references, lookup, errors), the request log and counts, the fault
# modes, authentication, the state dump and --load of the golden fixtures' state.
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init

FIXTURES=$SLUICE_SOURCE_DIR/tests/fixtures/registry

# reg METHOD PATH [BODY]: prints "STATUS BODY" (curl's own failures print "000").
reg() {
    local data=()
    [ $# -lt 3 ] || data=(-H 'Content-Type: application/vnd.schemaregistry.v1+json' --data-binary "$3")
    curl -sS -m "$(lib_tmout 10)" "${CURL_AUTH[@]}" -X "$1" "${data[@]}" -o "$WORK/body" \
        -w '%{http_code}' "$REGISTRY_URL$2" || true
    printf ' %s\n' "$(cat "$WORK/body" 2>/dev/null)"
}
CURL_AUTH=()

# codes METHOD PATH [BODY]: prints "STATUS ERROR_CODE".
codes() {
    local out
    out=$(reg "$@")
    printf '%s %s\n' "${out%% *}" "$(jq -r .error_code <<<"${out#* }")"
}

# expect WHAT GOT WANT: fails unless GOT is exactly WANT.
expect() {
    [ "$2" = "$3" ] || lib_fail "$1: got '$2', want '$3'"
}

ctl() {
    curl -fsS -m "$(lib_tmout 10)" "${CTL_AUTH[@]}" -H 'Content-Type: application/json' -d "$1" \
        "$REGISTRY_URL/_control" >/dev/null || lib_fail "mode $1 refused"
}
CTL_AUTH=()

requests_arrived() {
    curl -fsS "$REGISTRY_URL/_stats" | jq -e --argjson n "$1" '.requests >= $n'
}

# stop_registry: SIGTERM, and the exit status must be 0.
stop_registry() {
    local rc=0
    kill -TERM "$REGISTRY_PID"
    wait "$REGISTRY_PID" || rc=$?
    lib__forget_pid "$REGISTRY_PID"
    expect "exit status on SIGTERM" "$rc" 0
}

AVRO_A='{"schema":"{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}"}'
AVRO_B='{"schema":"{\"type\":\"record\",\"name\":\"B\",\"fields\":[{\"name\":\"a\",\"type\":\"A\"}]}","references":[{"name":"A","subject":"a-value","version":1}]}'
PROTO='{"schemaType":"PROTOBUF","schema":"c3ludGF4ID0gInByb3RvMyI7"}'

# --- The registry API ----------------------------------------------------------------------
lib_start_registry --dump "$WORK/dump.json"

expect "register A" "$(reg POST '/subjects/a-value/versions?normalize=false' "$AVRO_A")" '200 {"id":1}'
expect "register A again" "$(reg POST /subjects/a-value/versions "$AVRO_A")" '200 {"id":1}'
expect "A under another subject keeps its id" "$(reg POST /subjects/other/versions "$AVRO_A")" '200 {"id":1}'
expect "A with references null, [] and AVRO spelled out" "$(reg POST /subjects/a-value/versions \
    "$(jq -c '.references = null' <<<"$AVRO_A")")$(reg POST /subjects/a-value/versions \
    "$(jq -c '.references = [] | .schemaType = "AVRO"' <<<"$AVRO_A")")" '200 {"id":1}200 {"id":1}'
expect "register B referring to A" "$(reg POST /subjects/b-value/versions "$AVRO_B")" '200 {"id":2}'
expect "register a Protobuf schema" "$(reg POST /subjects/p%2Fvalue/versions "$PROTO")" '200 {"id":3}'
expect "A is version 1 of a-value" "$(reg GET /subjects/a-value/versions)" '200 [1]'
lib_pass "register: ids global from 1, the same schema keeps its id across subjects"

expect "subjects" "$(reg GET /subjects)" '200 ["a-value","other","b-value","p/value"]'
got=$(reg GET /schemas/ids/1?subject=a-value)
expect "schema 1 (Avro: no schemaType, no references)" "$got" \
    '200 {"schema":"{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}"}'
got=$(reg GET /schemas/ids/2 | cut -d' ' -f2- | jq -c '.references')
expect "schema 2's references" "$got" '[{"name":"A","subject":"a-value","version":1}]'
got=$(reg GET '/schemas/ids/3?subject=p%2Fvalue&format=serialized')
expect "Protobuf, format=serialized" "$got" '200 {"schema":"c3ludGF4ID0gInByb3RvMyI7","schemaType":"PROTOBUF"}'
got=$(reg GET /subjects/b-value/versions/latest | cut -d' ' -f2- | jq -c '[.subject, .version, .id, .references[0].subject]')
expect "latest of b-value" "$got" '["b-value",1,2,"a-value"]'
expect "version 1 of a-value by number" "$(reg GET /subjects/a-value/versions/1 | cut -d' ' -f2- | jq -c '[.id,.version]')" '[1,1]'
expect "schema text alone" "$(reg GET /schemas/ids/3/schema)" '200 c3ludGF4ID0gInByb3RvMyI7'
expect "where schema 1 is used" "$(reg GET /schemas/ids/1/versions)" \
    '200 [{"subject":"a-value","version":1},{"subject":"other","version":1}]'
got=$(reg POST /subjects/other "$AVRO_A" | cut -d' ' -f2- | jq -c '[.subject,.id,.version]')
expect "lookup under a subject" "$got" '["other",1,1]'
lib_pass "ids, latest, versions, references, format=serialized, lookup"

expect "unknown id" "$(reg GET /schemas/ids/99)" '404 {"error_code":40403,"message":"Schema 99 not found"}'
expect "unknown subject" "$(reg GET /subjects/nope/versions/latest)" \
    "404 {\"error_code\":40401,\"message\":\"Subject 'nope' not found.\"}"
expect "unknown version" "$(reg GET /subjects/a-value/versions/2)" '404 {"error_code":40402,"message":"Version 2 not found."}'
expect "bad version" "$(codes GET /subjects/a-value/versions/x)" '422 42202'
expect "lookup of a schema not under the subject" "$(reg POST /subjects/b-value "$AVRO_A")" \
    '404 {"error_code":40403,"message":"Schema not found"}'
expect "reference to a missing version" \
    "$(reg POST /subjects/c/versions '{"schema":"\"int\"","references":[{"name":"A","subject":"a-value","version":7}]}')" \
    '422 {"error_code":42201,"message":"Invalid schema: references[0]: a-value version 7 is not registered"}'
expect "Avro that is not JSON" "$(codes POST /subjects/c/versions '{"schema":"{nope"}')" '422 42201'
expect "associations (the JS client asks, tolerates 404)" \
    "$(reg GET '/associations/resources/-/t?resourceType=topic&associationType=value')" \
    '404 {"error_code":404,"message":"HTTP 404 Not Found"}'
expect "subject c was not created by the refused registrations" "$(reg GET /subjects/c/versions | cut -c1-3)" 404
expect "a path of many segments" "$(codes GET /subjects/a/b/c/d/e/f/g/h/i/j)" '404 404'
expect "a body over 8 MiB" "$(head -c 9000000 /dev/zero | tr '\0' a | curl -sS -o /dev/null -w '%{http_code}' \
    --data-binary @- "$REGISTRY_URL/subjects/big/versions")" 413
expect "a body that is not JSON" "$(codes POST /subjects/big/versions '[1,')" '422 42201'
expect "a schemaType nobody knows" "$(codes POST /subjects/big/versions '{"schema":"x","schemaType":"XML"}')" '422 42201'
lib_pass "errors: 40401, 40402, 40403, 42201, 42202, 404, 413"

# The request log and the counts per path.
for _ in 1 2 3; do reg GET /schemas/ids/2 >/dev/null; done
got=$(jq -s -c '[.[] | select(.path == "/schemas/ids/2")] | [length, (map(.status) | unique)]' "$REGISTRY_OUT")
expect "/schemas/ids/2 in --out" "$got" '[4,[200]]'
expect "/schemas/ids/2 in /_stats" "$(curl -fsS "$REGISTRY_URL/_stats" | jq '.by_path["/schemas/ids/2"]')" 4
got=$(jq -s -c '.[0] | [.seq, .method, .path, .query, .auth, .status]' "$REGISTRY_OUT")
expect "first --out line" "$got" '[1,"POST","/subjects/a-value/versions","normalize=false",false,200]'
lib_pass "every request logged with method, path, query, auth, status; counted per path"

# The dump follows every registration.
got=$(jq -c '[.subjects["a-value"], .subjects["other"], .subjects["b-value"], (.schemas | map(.id)),
              (.schemas | map(.schemaType))]' "$WORK/dump.json")
expect "--dump" "$got" '[[1],[1],[2],[1,2,3],["AVRO","AVRO","PROTOBUF"]]'
curl -fsS "$REGISTRY_URL/_dump" | jq -S . >"$WORK/get-dump.json"
jq -S . "$WORK/dump.json" | cmp -s - "$WORK/get-dump.json" || lib_fail "GET /_dump differs from the --dump file"
lib_pass "--dump written after each registration, the same as GET /_dump"

# --- Fault modes -------------------------------------------------------------------------------
ctl '{"mode":"status","status":503,"retry_after":7,"count":2}'
for i in 1 2; do
    headers=$(curl -sS -m 5 -D - -o /dev/null "$REGISTRY_URL/subjects")
    grep -q '^HTTP/1.1 503' <<<"$headers" || lib_fail "request $i in status mode: $headers"
    grep -qi '^Retry-After: 7' <<<"$headers" || lib_fail "request $i: no Retry-After: 7"
done
expect "after the count, back to ok" "$(reg GET /subjects/a-value/versions)" '200 [1]'
for s in 401 403 404 429 500; do
    ctl "{\"mode\":\"status\",\"status\":$s,\"count\":1}"
    expect "status $s on demand" "$(reg GET /schemas/ids/1 | cut -c1-3)" "$s"
done
lib_pass "status mode: 503 + Retry-After for count requests, then ok; 401/403/404/429/500"

ctl '{"mode":"slow","delay_ms":400,"count":1}'
t=$(curl -sS -m 5 -o /dev/null -w '%{time_total}' "$REGISTRY_URL/schemas/ids/1")
awk -v t="$t" 'BEGIN { exit !(t >= 0.4) }' || lib_fail "slow mode answered in ${t}s, before 0.4 s"
lib_pass "slow mode: answered after delay_ms (${t}s)"

ctl '{"mode":"hang"}'
n=$(curl -fsS "$REGISTRY_URL/_stats" | jq .requests)
rc=0
curl -sS -m 1 -o /dev/null "$REGISTRY_URL/schemas/ids/1" 2>/dev/null || rc=$?
expect "a hung request times out at the client (curl exit)" "$rc" 28
curl -sS -m "$(lib_tmout 10)" -o "$WORK/held.body" -w '%{http_code}' "$REGISTRY_URL/schemas/ids/1" >"$WORK/held.code" &
held=$!
lib_wait_for requests_arrived $((n + 2))
ctl '{"mode":"ok"}'
wait "$held" || lib_fail "the held request failed after the mode change"
expect "held request released by the mode change" "$(cat "$WORK/held.code")" 200
expect "released answer" "$(jq -c '.id // .schema | type' "$WORK/held.body")" '"string"'
# Both are logged when settled: the one whose client left is found gone at the release.
last_two_ids1() {
    jq -s -c '[.[] | select(.path == "/schemas/ids/1")] | sort_by(.seq) | .[-2:] | map(.status)' "$REGISTRY_OUT"
}
lib__wait_until "" eval '[ "$(last_two_ids1)" = "[null,200]" ]' ||
    lib_fail "timed-out request logged unanswered, released one 200: got $(last_two_ids1)"
lib_pass "hang mode: requests held until the mode changes, then answered"

ctl '{"mode":"down","count":1}'
rc=0
curl -sS -m 5 -o /dev/null "$REGISTRY_URL/schemas/ids/1" 2>/dev/null || rc=$?
expect "down: connection closed without an answer (curl exit)" "$rc" 52
expect "after down's count, back to ok" "$(reg GET /schemas/ids/1 | cut -c1-3)" 200
lib_wait_for jq -e -s '[.[] | select(.path == "/schemas/ids/1")] | sort_by(.seq) | .[-2].status == null' "$REGISTRY_OUT"
lib_pass "down mode: connection closed at once, logged unanswered"

expect "bad mode refused" "$(curl -sS -o /dev/null -w '%{http_code}' -d '{"mode":"sleepy"}' "$REGISTRY_URL/_control")" 400
stop_registry
lib_pass "SIGTERM: exit 0"

# --- State: --load of its own dump continues the ids ---------------------------------------
lib_start_registry --load "$WORK/dump.json"
expect "loaded id 2" "$(reg GET /subjects/b-value/versions/latest | cut -d' ' -f2- | jq -c '[.id, .references[0].name]')" '[2,"A"]'
expect "next id after a load" "$(reg POST /subjects/d/versions '{"schema":"\"string\""}')" '200 {"id":4}'
stop_registry
printf '{"schemas":[{"id":1,"schemaType":"AVRO","schema":"\\"int\\""}],"subjects":{"s":[2]}}' >"$WORK/bad.json"
rc=0
"$SLUICE_BUILD_DIR/schema-registry" --port 0 --load "$WORK/bad.json" >"$WORK/bad.log" 2>&1 || rc=$?
expect "a dump naming a missing id is refused" "$rc" 1
grep -q 'subjects.s\[0\]: no schema with that id' "$WORK/bad.log" || lib_fail "no clear reason: $(cat "$WORK/bad.log")"
lib_pass "--load: ids kept, the next id follows; an inconsistent dump refused with the reason"

# The golden fixtures' state: every case's id serves its format.
lib_start_registry --load "$FIXTURES/registry-state.json"
while read -r c id fmt subject; do
    got=$(reg GET "/schemas/ids/$id?subject=$subject&format=serialized" | cut -d' ' -f2- | jq -r '.schemaType // "AVRO"')
    want=$(tr '[:lower:]' '[:upper:]' <<<"$fmt")
    expect "fixture $c (id $id)" "$got" "$want"
    frame=$(head -c 5 "$FIXTURES/$c.bin" | od -An -tx1 | tr -d ' \n')
    expect "fixture $c's frame" "$frame" "$(printf '00%08x' "$id")"
done < <(jq -r '.cases[] | "\(.case) \(.schema_id) \(.format) \(.subject)"' "$FIXTURES/index.json")
lib_pass "the fixtures' registry-state.json serves every case's schema id"
stop_registry

# Where the fixture script can run (node, its npm packages, protoc), it must make the committed
# fixtures again byte for byte with this build of the tool.
GEN=$SLUICE_SOURCE_DIR/tools/registry-fixtures
if command -v node >/dev/null && command -v protoc >/dev/null && [ -d "$GEN/node_modules/@confluentinc" ]; then
    node "$GEN/make-fixtures.mjs" "$SLUICE_BUILD_DIR/schema-registry" "$WORK/regenerated" >"$WORK/regen.log" 2>&1 ||
        lib_fail "make-fixtures.mjs failed: $(tail -5 "$WORK/regen.log")"
    diff -r "$FIXTURES" "$WORK/regenerated" >"$WORK/regen.diff" ||
        lib_fail "regenerated fixtures differ from the committed ones: $(head -5 "$WORK/regen.diff")"
    lib_pass "the real Confluent serializers, run again against this build, make the committed fixtures byte for byte"
else
    lib_log "no node, protoc or tools/registry-fixtures/node_modules: the fixtures are not regenerated"
fi

# --- Authentication --------------------------------------------------------------------------
lib_start_registry --user alice --password 's3cr:t' --control-token ctl-token
expect "no credentials" "$(reg GET /subjects)" '401 {"error_code":401,"message":"Unauthorized"}'
CURL_AUTH=(-u alice:wrong)
expect "wrong password" "$(reg GET /subjects | cut -c1-3)" 401
CURL_AUTH=(-u 'alice:s3cr:t')
expect "basic auth" "$(reg GET /subjects)" '200 []'
expect "control without its token" "$(curl -sS -o /dev/null -w '%{http_code}' -d '{"mode":"ok"}' "$REGISTRY_URL/_control")" 401
CTL_AUTH=(-H 'X-Control-Token: ctl-token')
ctl '{"mode":"status","status":500,"count":1}'
expect "control with its token" "$(reg GET /subjects | cut -c1-3)" 500
got=$(jq -s -c 'map(.auth)' "$REGISTRY_OUT")
expect "auth header presence logged" "$got" '[false,true,true,true]'
stop_registry
lib_start_registry --bearer tok-1
CURL_AUTH=(-H 'Authorization: Bearer tok-2')
expect "wrong bearer" "$(reg GET /subjects | cut -c1-3)" 401
CURL_AUTH=(-H 'Authorization: Bearer tok-1')
expect "bearer" "$(reg GET /subjects | cut -c1-3)" 200
stop_registry
lib_pass "basic and bearer auth: 401 without or with wrong credentials; control token separate"

lib_summary
