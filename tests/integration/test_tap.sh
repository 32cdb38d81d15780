#!/usr/bin/env bash
# GET /sinks/NAME/tap against real processes: two clients at once see every record exactly once
# and every batch's verdict; a client that never reads loses events (told with a "dropped"
# count) while delivery goes on at full count and sluice's memory stays bounded; a reload that
# removes the sink ends every stream with a reason; no configured secret (the webhook secret, a
# bearer token in the sink's headers, the admin token) appears in any stream; no token: 401;
# sluice ctl tap for a person and as JSON, with --limit and --partition; a file sink's line cut
# at 4 KiB.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init
lib__need_tool http-receiver
# Under ASan, freed memory waits in a quarantine (256 MiB by default) and would count as growth.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"

N=3000
BEARER="tap-test-bearer-$RANDOM$RANDOM"
lib_start_kafka events:2 big:1 sluice.dlq:1
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
sluice_write_config "$WORK/sluice.json" tap
sluice_admin_on "$WORK/sluice.json"
cat >"$WORK/sinks.d/hook.json" <<JSON
{ "name": "hook", "type": "webhook", "topics": ["events"],
  "batch": { "max_records": 50, "linger_ms": 50 },
  "webhook": { "url": "$RECEIVER_URL/hook", "batch_format": "json_array", "secret": "$HTTP_TEST_SECRET",
               "headers": { "Authorization": "Bearer $BEARER" }, "allow_private_networks": true } }
JSON
sluice_start "$WORK/sluice.json"
TIMEOUT=30 lib_wait_for curl -sf "$ADMIN/healthz"

code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$ADMIN/sinks/hook/tap")
[ "$code" = 401 ] || lib_fail "a tap without the token answered $code, expected 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H 'Authorization: Bearer wrong' "$ADMIN/sinks/hook/tap")
[ "$code" = 401 ] || lib_fail "a tap with a wrong token answered $code, expected 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "$ADMIN/sinks/nope/tap")
[ "$code" = 404 ] || lib_fail "a tap of an unknown sink answered $code, expected 404"
lib_pass "the tap takes the admin token (401 without or with a wrong one), 404 for an unknown sink"

for i in 1 2; do
    lib__spawn "$WORK/tap$i.err" curl -sS -N -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" \
        -o "$WORK/tap$i.ndjson" "$ADMIN/sinks/hook/tap"
done
# A client that asks for the tap, then never reads until $WORK/go exists: then it reads to the
# end (bash's /dev/tcp: the kernel's buffers fill, then sluice's bound).
lib__spawn "$WORK/slow.err" bash -c '
exec 7<>"/dev/tcp/127.0.0.1/$1"
printf "GET /sinks/hook/tap HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" "$2" >&7
while [ ! -e "$4" ]; do sleep 0.05; done
cat <&7 >"$3"' _ "$ADMIN_PORT" "$SLUICE_ADMIN_TOKEN" "$WORK/slow.raw" "$WORK/go"
SLOW_PID=$LIB_LAST_PID
# sluice ctl tap: the admin URL and the token from the main file; one reads 100 records for a
# person, one 10 records of partition 1 as JSON.
lib__spawn "$WORK/ctl.err" bash -c '"$1" ctl tap hook -c "$2" --limit 100 >"$3"' _ \
    "$SLUICE_BUILD_DIR/sluice" "$WORK/sluice.json" "$WORK/ctl.out"
CTL_PID=$LIB_LAST_PID
lib__spawn "$WORK/ctl_json.err" bash -c '"$1" ctl tap hook -c "$2" --json --partition 1 --limit 10 >"$3"' _ \
    "$SLUICE_BUILD_DIR/sluice" "$WORK/sluice.json" "$WORK/ctl.json"
CTL_JSON_PID=$LIB_LAST_PID
tapping() {
    [ "$(cat "$WORK/tap1.ndjson" "$WORK/tap2.ndjson" "$WORK/ctl.json" | grep -c '"event":"tap"')" -eq 3 ] &&
        grep -q '^tapping sink hook' "$WORK/ctl.out"
}
TIMEOUT=10 lib_wait_for tapping
rss_before=$(proc_vm_kib VmRSS "$SLUICE_PID")

# Values of ~3 KB: the slow client's share of events is ~10 MB, beyond the socket buffers (a few MB).
pad=$(head -c 3000 /dev/zero | tr '\0' x)
for i in $(seq 0 $((N - 1))); do
    printf 'k%d\t{"seq":%d,"pad":"%s"}\n' $((i % 50)) "$i" "$pad"
done >"$WORK/records.tsv"
lib_produce events "$WORK/records.tsv"
delivered() { [ "$(rx_records_ok /hook | wc -l)" -ge "$N" ]; }
TIMEOUT=120 lib_wait_for delivered
verdicts() { [ "$(jq -s '[.[] | select(.event == "batch" and .result == "ok") | .records] | add' "$1")" -ge "$N" ]; }
TIMEOUT=30 lib_wait_for verdicts "$WORK/tap1.ndjson"
TIMEOUT=30 lib_wait_for verdicts "$WORK/tap2.ndjson"
rss_after=$(proc_vm_kib VmRSS "$SLUICE_PID")
lib__alive "$SLOW_PID" || lib_fail "the slow client died: $(cat "$WORK/slow.err")"

[ "$(rx_check_exactly_once /hook "$N")" -eq 0 ] || lib_fail "a record was delivered twice"
lib_pass "$N records delivered, each once, with a client that never reads attached"

for i in 1 2; do
    f=$WORK/tap$i.ndjson
    report=$(jq -rs '[.[] | select(.event == "record")] as $r
        | "\($r | length) \($r | unique_by([.partition, .offset]) | length) \([$r[] | .value | fromjson | .seq] | unique | length) \([.[] | select(.event == "dropped")] | length)"' "$f")
    read -r total distinct seqs drops <<<"$report"
    [ "$total" -eq "$N" ] && [ "$distinct" -eq "$N" ] && [ "$seqs" -eq "$N" ] ||
        lib_fail "tap $i: $total record events, $distinct distinct offsets, $seqs distinct seq (expected $N each)"
    [ "$drops" -eq 0 ] || lib_fail "tap $i, a reading client, was told of dropped events"
    jq -e -s '[.[] | select(.event == "record")] | all(.sink == "hook" and .topic == "events" and (.key | startswith("k")))' "$f" \
        >/dev/null || lib_fail "tap $i: a record event lacks its sink, topic or key"
    jq -e -s '[.[] | select(.event == "batch")] | length > 0 and all(.attempt >= 1 and .records >= 1
        and (.duration_ms | type) == "number" and (.detail | test("^POST ")))' "$f" \
        >/dev/null || lib_fail "tap $i: a batch event lacks its attempt, records, duration or the target's answer"
done
lib_pass "two clients at once: each saw the $N records exactly once (by offset and by seq) and every batch's verdict"

# The value as produced (a webhook maps records while it writes, so the tap shows the value and
# says so), under the 4 KiB bound here: shown whole.
jq -e -s --arg pad "$pad" '[.[] | select(.event == "record")] | all((.value | fromjson) as $v
        | $v.pad == $pad and .key == "k\($v.seq % 50)" and (has("truncated") | not)
        and .as == "record value (the sink'"'"'s mapped form is not text)")' \
    "$WORK/tap1.ndjson" >/dev/null || lib_fail "a record's key or value differs from what was produced"
lib_pass "record keys and values are shown as produced (the webhook maps them while writing, and the event says so)"

exited() { ! lib__alive "$1"; }
TIMEOUT=30 lib_wait_for exited "$CTL_PID"
TIMEOUT=30 lib_wait_for exited "$CTL_JSON_PID"
wait "$CTL_PID" || lib_fail "sluice ctl tap --limit 100 failed: $(cat "$WORK/ctl.err")"
wait "$CTL_JSON_PID" || lib_fail "sluice ctl tap --json failed: $(cat "$WORK/ctl_json.err")"
lib__forget_pid "$CTL_PID"
lib__forget_pid "$CTL_JSON_PID"
[ "$(grep -c '^record events\[[01]\]@[0-9]* key=k[0-9]* {"seq":' "$WORK/ctl.out")" -eq 100 ] ||
    lib_fail "sluice ctl tap --limit 100 printed $(grep -c '^record ' "$WORK/ctl.out") records"
grep -q '^batch  events\[[01]\] [0-9]*-[0-9]*: [0-9]* records, attempt 1: ok in [0-9]* ms (POST ' "$WORK/ctl.out" ||
    lib_fail "sluice ctl tap printed no batch verdict"
[ "$(tail -n 1 "$WORK/ctl.out")" = "end: limit of 100 records reached" ] ||
    lib_fail "sluice ctl tap did not end at its limit: $(tail -n 1 "$WORK/ctl.out")"
jq -e -s '([.[] | select(.event == "record")] | length == 10 and all(.partition == 1))
        and ([.[] | select(.event == "batch")] | all(.partition == 1)) and .[-1].event == "end"' "$WORK/ctl.json" \
    >/dev/null || lib_fail "sluice ctl tap --json --partition 1 --limit 10: wrong events"
rc=0
SLUICE_ADMIN_TOKEN=wrong "$SLUICE_BUILD_DIR/sluice" ctl tap hook --admin "$ADMIN" >/dev/null 2>"$WORK/ctl401.err" || rc=$?
[ "$rc" = 1 ] && grep -q 'answered 401' "$WORK/ctl401.err" ||
    lib_fail "sluice ctl tap with a wrong token: exit $rc, $(cat "$WORK/ctl401.err")"
lib_pass "sluice ctl tap (admin URL and token from the main file): 100 records and verdicts for a person, then the limit's end; --json --partition 1 --limit 10; a wrong token: exit 1, 401"

# A reload that removes the sink ends every stream with a reason.
rm "$WORK/sinks.d/hook.json"
echo '{ "name": "other", "type": "file", "topics": ["big"], "file": { "path": "'"$WORK"'/other.out" } }' \
    >"$WORK/sinks.d/other.json"
admin_post /reload >/dev/null || lib_fail "reload refused"
ended() { grep -q '"event":"end"' "$1"; }
TIMEOUT=30 lib_wait_for ended "$WORK/tap1.ndjson"
TIMEOUT=30 lib_wait_for ended "$WORK/tap2.ndjson"
touch "$WORK/go"
TIMEOUT=30 lib_wait_for test ! -d "/proc/$SLOW_PID"
for i in 1 2; do
    tail -n 1 "$WORK/tap$i.ndjson" | jq -e '.event == "end" and (.reason | test("reload"))' >/dev/null ||
        lib_fail "tap $i did not end with a reason: $(tail -n 1 "$WORK/tap$i.ndjson")"
done
# The slow client's body, unchunked: what it got, the count it lost, and the end.
sed -e '1,/^\r$/d' "$WORK/slow.raw" | grep '^{' >"$WORK/slow.ndjson" || true
slow_records=$(grep -c '"event":"record"' "$WORK/slow.ndjson" || true)
slow_dropped=$(jq -s '[.[] | select(.event == "dropped") | .count] | add // 0' "$WORK/slow.ndjson")
[ "$slow_dropped" -gt 0 ] || lib_fail "the slow client was not told of dropped events"
[ "$slow_records" -lt "$N" ] || lib_fail "the slow client got all $N records: nothing was bounded"
tail -n 1 "$WORK/slow.ndjson" | jq -e '.event == "end"' >/dev/null || lib_fail "the slow client's stream did not end with a reason"
growth=$(( (rss_after - rss_before) / 1024 ))
lib_log "slow client: $slow_records records, $slow_dropped events dropped; RSS $((rss_before / 1024)) -> $((rss_after / 1024)) MiB"
[ "$growth" -lt 32 ] || lib_fail "sluice's RSS grew by $growth MiB with a client that never reads"
lib_pass "a client that never reads lost $slow_dropped events (told), got $slow_records records, sluice grew $growth MiB; streams end with a reason on a reload removing the sink"

# A sink whose mapped form is text (a file sink's line, with its newline): the tap shows that,
# cut at 4 KiB with the rest counted.
others() { admin /sinks | jq -e '.sinks | map(.name) == ["other"]'; }
TIMEOUT=30 lib_wait_for others
lib__spawn "$WORK/ctl_big.err" bash -c '"$1" ctl tap other --admin "$2" --json --limit 1 >"$3"' _ \
    "$SLUICE_BUILD_DIR/sluice" "$ADMIN" "$WORK/big.ndjson"
BIG_PID=$LIB_LAST_PID
TIMEOUT=10 lib_wait_for grep -q '"event":"tap"' "$WORK/big.ndjson"
printf 'big\t{"big":"%s"}\n' "$(head -c 10000 /dev/zero | tr '\0' y)" >"$WORK/big.tsv"
lib_produce big "$WORK/big.tsv"
TIMEOUT=30 lib_wait_for exited "$BIG_PID"
wait "$BIG_PID" || lib_fail "sluice ctl tap other failed: $(cat "$WORK/ctl_big.err")"
lib__forget_pid "$BIG_PID"
line=$(head -n 1 "$WORK/other.out")
jq -e -s --arg line "$line" '[.[] | select(.event == "record")] | length == 1 and (.[0] | .key == "big"
        and (has("as") | not) and (.value | length) == 4096 and (.value as $v | $line | startswith($v))
        and (.value | length) + .truncated == ($line | length) + 1)' "$WORK/big.ndjson" >/dev/null ||
    lib_fail "the file sink's line of 10 KB was not shown cut at 4 KiB: $(cut -c1-300 "$WORK/big.ndjson")"
lib_pass "a file sink's record is shown as the line it writes, cut at 4 KiB with the rest counted in truncated"

for f in "$WORK"/tap1.ndjson "$WORK"/tap2.ndjson "$WORK"/slow.raw "$WORK"/ctl.out "$WORK"/ctl.json "$WORK"/big.ndjson; do
    for secret in "$HTTP_TEST_SECRET" "${HTTP_TEST_SECRET#whsec_}" "$BEARER" "$SLUICE_ADMIN_TOKEN"; do
        ! grep -qF "$secret" "$f" || lib_fail "a secret appears in ${f#"$WORK"/}"
    done
done
lib_pass "no secret (webhook secret, bearer token, admin token) appears in any stream"
sluice_stop
lib_summary
