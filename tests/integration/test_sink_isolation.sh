#!/usr/bin/env bash
# A broken sink file among valid ones (issue 15): four sink files, two valid (a, b), one that is
# not JSON (broken.json, named after its file) and one whose ${NAME} is unset (d).
#   check: without --strict it passes and lists what run sets aside; --strict refuses;
#   --sink checks one file, alone or among the main file's sinks; --env-optional checks the
#   structure without the secrets (a webhook's whsec_ secret left unset passes).
#   run: a and b deliver every record; GET /sinks shows the other two "invalid" with their
#   messages; /metrics has sluice_sink_config_valid 0 for them, 1 for a and b,
#   sluice_config_last_reload_successful 0, and sluice_sink_info with a's owner; the status
#   page shows them invalid with their messages.
#   Both files fixed and SIGHUP: the reload succeeds, the two sinks run and get every record
#   produced after it (whatever a new sink's start position is), a and b still every record.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init
SLUICE=$SLUICE_BUILD_DIR/sluice

N=400
lib_start_kafka iso:2 sluice.dlq:1
sluice_write_config "$WORK/sluice.json" sink-isolation
sluice_admin_on "$WORK/sluice.json"

file_sink() {   # file_sink NAME PATH [EXTRA-JSON-MEMBERS]
    printf '{ "name": "%s", "type": "file", "topics": ["iso"], %s\n  "batch": { "linger_ms": 5 },\n  "file": { "path": "%s" } }\n' \
        "$1" "${3:-}" "$2"
}
file_sink a "$WORK/a.ndjson" '"owner": "team-a", "description": "every record, for the audit",' >"$WORK/sinks.d/a.json"
file_sink b "$WORK/b.ndjson" >"$WORK/sinks.d/b.json"
printf '{ "name": "c", "type": "file", "topics": ["iso"]\n  "file": { "path": "%s" } }\n' "$WORK/c.ndjson" \
    >"$WORK/sinks.d/broken.json"
# shellcheck disable=SC2016  # ${SLUICE_ISO_DIR} is for sluice to expand
file_sink d '${SLUICE_ISO_DIR}/d.ndjson' >"$WORK/sinks.d/d.json"
unset SLUICE_ISO_DIR

# ---- check ----
rc=0
"$SLUICE" check -c "$WORK/sluice.json" >"$WORK/check.out" 2>"$WORK/check.err" || rc=$?
[ "$rc" -eq 0 ] || lib_fail "check without --strict exited $rc: $(cat "$WORK/check.err")"
grep -q 'ok (2 sinks, 2 set aside as invalid: broken.json d)' "$WORK/check.out" ||
    lib_fail "check printed: $(cat "$WORK/check.out")"
grep -q "broken.json:2:8: JSON syntax error" "$WORK/check.err" || lib_fail "no syntax error: $(cat "$WORK/check.err")"
grep -q "d.json:3:21: file.path: environment variable SLUICE_ISO_DIR is not set" "$WORK/check.err" ||
    lib_fail "no unset variable: $(cat "$WORK/check.err")"
rc=0
"$SLUICE" check --strict -c "$WORK/sluice.json" >/dev/null 2>"$WORK/strict.err" || rc=$?
[ "$rc" -eq 2 ] || lib_fail "check --strict exited $rc, expected 2"
grep -q '^2 problems found$' "$WORK/strict.err" || lib_fail "check --strict printed: $(cat "$WORK/strict.err")"
lib_pass "check lists the two sink files run sets aside (exit 0); --strict refuses them (exit 2)"

rc=0
"$SLUICE" check --sink "$WORK/sinks.d/broken.json" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "check --sink of the broken file exited $rc"
"$SLUICE" check --sink "$WORK/sinks.d/a.json" -c "$WORK/sluice.json" >"$WORK/one.out" ||
    lib_fail "check --sink a.json -c main refused a valid file (counted twice?)"
file_sink b "$WORK/b2.ndjson" >"$WORK/other-b.json"
rc=0
"$SLUICE" check --sink "$WORK/other-b.json" -c "$WORK/sluice.json" >/dev/null 2>"$WORK/dup.err" || rc=$?
{ [ "$rc" -eq 2 ] && grep -q 'duplicate sink name "b"' "$WORK/dup.err"; } ||
    lib_fail "a name taken in the main configuration passed check --sink -c (exit $rc): $(cat "$WORK/dup.err")"
"$SLUICE" check --sink "$WORK/other-b.json" >/dev/null || lib_fail "check --sink alone refused a valid file"
lib_pass "check --sink checks one file, alone or among the main file's sinks"

# shellcheck disable=SC2016
printf '{ "name": "hook", "type": "webhook", "topics": ["iso"],\n  "webhook": { "url": "https://example.com/hook", "secret": "${SLUICE_ISO_WHSEC}" } }\n' \
    >"$WORK/hook.json"
rc=0
"$SLUICE" check --sink "$WORK/hook.json" >/dev/null 2>"$WORK/hook.err" || rc=$?
{ [ "$rc" -eq 2 ] && grep -q 'environment variable SLUICE_ISO_WHSEC is not set' "$WORK/hook.err"; } ||
    lib_fail "an unset secret passed check --sink (exit $rc)"
[ "$(grep -c 'webhook.secret' "$WORK/hook.err")" -eq 1 ] ||
    lib_fail "an unset variable also got the checks of its placeholder: $(cat "$WORK/hook.err")"
"$SLUICE" check --env-optional --sink "$WORK/hook.json" >/dev/null ||
    lib_fail "--env-optional refused a file whose only gap is the unset secret"
sed -i 's|https://example.com/hook|ftp://example.com/hook|' "$WORK/hook.json"
rc=0
"$SLUICE" check --env-optional --sink "$WORK/hook.json" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "--env-optional passed a structural problem (an ftp url)"
lib_pass "--env-optional checks the structure without the secrets (whsec_ not checked on a placeholder)"

# ---- run with two sinks set aside ----
make_records "$N" 13 "$WORK/first.tsv"
lib_produce iso "$WORK/first.tsv"
sluice_start "$WORK/sluice.json"
lib_wait_for has_lines "$WORK/a.ndjson" "$N"
lib_wait_for has_lines "$WORK/b.ndjson" "$N"
check_file_output "$WORK/a.ndjson" "$N"
check_file_output "$WORK/b.ndjson" "$N"
lib_pass "the two valid sinks delivered all $N records"

admin /sinks >"$WORK/sinks.json"
[ "$(jq -r '.sinks[] | select(.name == "broken.json") | .state' "$WORK/sinks.json")" = invalid ] ||
    lib_fail "broken.json is not invalid in /sinks: $(cat "$WORK/sinks.json")"
jq -e '.sinks[] | select(.name == "broken.json") | .messages[0] | test("broken.json:2:8: JSON syntax error")' \
    "$WORK/sinks.json" >/dev/null || lib_fail "broken.json's message is missing"
jq -e '.sinks[] | select(.name == "d") | .state == "invalid" and
       (.messages | any(test("file.path: environment variable SLUICE_ISO_DIR is not set")))' \
    "$WORK/sinks.json" >/dev/null || lib_fail "d (unset variable) is not shown invalid with its message"
jq -e '.sinks[] | select(.name == "a") | .state == "running" and .owner == "team-a" and
       .description == "every record, for the audit"' "$WORK/sinks.json" >/dev/null ||
    lib_fail "a's state, owner or description: $(jq -c '.sinks[] | select(.name == "a")' "$WORK/sinks.json")"
grep -q 'sink d set aside: .*environment variable SLUICE_ISO_DIR is not set' "$SLUICE_LOG" ||
    lib_fail "the log does not say why d was set aside"
lib_pass "GET /sinks shows the two invalid sinks with their messages, a with its owner"

browse --dump-dom "$ADMIN/?token=$SLUICE_ADMIN_TOKEN" >"$WORK/page.html" 2>"$WORK/chromium.log" ||
    lib_fail "chromium failed: $(tail -5 "$WORK/chromium.log")"
grep -q 'id="sink-d" data-state="invalid"' "$WORK/page.html" || lib_fail "the status page does not show d invalid"
grep -q 'id="sink-a" data-state="running"' "$WORK/page.html" || lib_fail "the status page does not show a running"
grep -q 'environment variable SLUICE_ISO_DIR is not set' "$WORK/page.html" ||
    lib_fail "the status page does not show d's message"
lib_pass "the status page shows d invalid with its message"

admin /metrics >"$WORK/metrics"
for want in 'sluice_sink_config_valid{sink="broken.json"} 0' 'sluice_sink_config_valid{sink="d"} 0' \
            'sluice_sink_config_valid{sink="a"} 1' 'sluice_sink_config_valid{sink="b"} 1' \
            'sluice_config_last_reload_successful 0' \
            'sluice_config_last_reload_success_timestamp_seconds 0.000' \
            'sluice_config_reloads_total{result="applied"} 0' 'sluice_config_reloads_total{result="partial"} 0' \
            'sluice_sink_info{sink="a",type="file",owner="team-a"} 1' \
            'sluice_sink_info{sink="b",type="file",owner=""} 1'; do
    grep -qxF "$want" "$WORK/metrics" || lib_fail "/metrics lacks: $want"
done
lib_pass "/metrics: config_valid per sink, last reload unsuccessful, sink_info with the owner"

# ---- fix both files, reload ----
file_sink c "$WORK/c.ndjson" >"$WORK/sinks.d/broken.json"
file_sink d "$WORK/d.ndjson" >"$WORK/sinks.d/d.json"
kill -HUP "$SLUICE_PID"
sink_running() { admin_sink "$1" .state | grep -qx running; }
lib_wait_for sink_running c
lib_wait_for sink_running d
admin /metrics >"$WORK/metrics"
grep -qxF 'sluice_config_last_reload_successful 1' "$WORK/metrics" || lib_fail "the reload is not successful"
grep -q '^sluice_config_last_reload_success_timestamp_seconds [1-9]' "$WORK/metrics" ||
    lib_fail "no timestamp of the successful reload"
grep -q 'sluice_sink_config_valid{sink="broken.json"}' "$WORK/metrics" && lib_fail "broken.json is still listed"
for want in 'sluice_config_reloads_total{result="applied"} 1' 'sluice_config_reloads_total{result="partial"} 0' \
            'sluice_config_reloads_total{result="refused"} 0' 'sluice_config_reloads_total{result="failed"} 0'; do
    grep -qxF "$want" "$WORK/metrics" || lib_fail "/metrics lacks: $want ($(grep reloads_total "$WORK/metrics" | tr '\n' ' '))"
done

make_records "$N" 13 "$WORK/second.tsv" "$N"
lib_produce iso "$WORK/second.tsv"
lib_wait_for has_lines "$WORK/a.ndjson" $((2 * N))
lib_wait_for has_lines "$WORK/b.ndjson" $((2 * N))
check_file_output "$WORK/a.ndjson" $((2 * N))
check_file_output "$WORK/b.ndjson" $((2 * N))
# A new sink may start at the group's position or at the start of the topic: either way it has
# every record produced after the reload, once.
after_reload() { [ "$(jq -s --argjson n "$N" '[.[] | select(.value.seq >= $n)] | length' "$1")" -ge "$N" ]; }
for s in c d; do
    lib_wait_for after_reload "$WORK/$s.ndjson"
    got=$(jq -s --argjson n "$N" '[.[] | select(.value.seq >= $n) | .value.seq] | [length, (unique | length)] | @tsv' \
        -r "$WORK/$s.ndjson")
    [ "$got" = "$N	$N" ] || lib_fail "$s holds (records, distinct) $got of the $N produced after the fix"
done
lib_pass "fixed and reloaded: c and d run and got every record produced after; a and b have all $((2 * N))"

sluice_stop
lib_summary
