#!/usr/bin/env bash
# tools/demo.sh, the README's first command, shows what it says (issue 15): run without its
# install and build (--no-setup, the binaries of SLUICE_BUILD_DIR) and with --keep, its output
# holds the Redis hashes, the Postgres rows (c-1 updated exactly once), a verified Standard
# Webhooks signature for each of the five records, the tombstone's deleted key and row, and the
# record that is not JSON on the dead-letter topic with its reason from each sink. While it
# keeps running its status page answers; SIGTERM stops it with everything it started.
source "$(dirname "$0")/lib.sh"
lib_init

demo_dir=$WORK/demo
out=$WORK/demo.out
SLUICE_DEMO_DIR=$demo_dir lib__spawn "$out" bash "$SLUICE_SOURCE_DIR/tools/demo.sh" --no-setup --keep
demo_pid=$LIB_LAST_PID
rc=0
TIMEOUT=120 lib__wait_until "$demo_pid" grep -q '^demo: everything keeps running; Ctrl-C stops it$' "$out" || rc=$?
[ "$rc" -eq 0 ] || { cat "$out" >&2; lib_fail "the demo did not finish its tour (wait status $rc)"; }

status_url=$(sed -n 's|^  status page:  \(http://127.0.0.1:[0-9]*/\) .*|\1|p' "$out")
[ -n "$status_url" ] || lib_fail "the demo printed no status page address"
page=$(curl -fsS -m "$(lib_tmout 10)" "$status_url") || lib_fail "the status page $status_url did not answer"
grep -q 'sluice' <<<"$page" || lib_fail "the status page does not look like sluice's: ${page:0:200}"
sinks=$(curl -fsS -m "$(lib_tmout 10)" "${status_url}sinks" | jq -r '[.sinks[].name] | sort | join(",")')
[ "$sinks" = customer-cache,customer-hook,customers-table ] || lib_fail "the demo runs the sinks $sinks"
lib_pass "while it keeps running, its status page answers with the three sinks"

lib__stop_pid "$demo_pid" TERM "$(lib_tmout 30)"
grep -q '^demo: stopped everything it started' "$out" || lib_fail "the demo did not say it stopped"
left=()
while read -r pid; do
    if lib__alive "$pid"; then left+=("$pid"); fi
done <"$demo_dir/pids"
[ ${#left[@]} -eq 0 ] || lib_fail "still running after the demo: ${left[*]}"
[ "$(wc -l <"$demo_dir/pids")" -eq 4 ] || lib_fail "the demo recorded $(wc -l <"$demo_dir/pids") processes, expected 4"
lib_pass "SIGTERM stopped the demo and all 4 processes it started (redis, receiver, sluice, postgres)"

# The section of the output after its heading, up to the next heading or blank line.
section() {
    awk -v h="$1" '$0 == h { on = 1; next } /^$/ || /^(== |redis: |postgres: |webhook receiver: |dead-letter)/ { on = 0 } on' "$out"
}
expect_section() {
    local got
    got=$(section "$1")
    [ "$got" = "$2" ] || lib_fail "the demo's '$1' shows:
$got
expected:
$2"
}

final=$(sed -n '/^== where the records landed$/,$p' "$out")
[ -n "$final" ] || { cat "$out" >&2; lib_fail "the demo printed no results"; }
out=$WORK/final.out
printf '%s\n' "$final" >"$out"

expect_section 'redis: HGETALL customer:c-1' '  id=c-1
  name=Ada
  tier=platinum'
expect_section 'redis: HGETALL customer:c-3' '  id=c-3
  name=Linus
  tier=bronze'
lib_pass "redis: the hashes hold the latest record of each key (c-1 now platinum)"
expect_section 'redis: HGETALL customer:c-2' '  (no such key: the tombstone deleted it)'
lib_pass "redis: the tombstone deleted customer:c-2"

rows=$(section 'postgres: SELECT id, name, tier, source_offset, updates FROM customers ORDER BY id' | grep '|')
# The offsets are those of the records' partitions: c-1 and c-3 may share one (same offsets
# counted together) or not, so the row's offset is checked against the webhook's for the key.
c1=$(grep '^  c-1|' <<<"$rows") || lib_fail "postgres: no row c-1 in: $rows"
c3=$(grep '^  c-3|' <<<"$rows") || lib_fail "postgres: no row c-3 in: $rows"
[ "$(wc -l <<<"$rows")" -eq 2 ] || lib_fail "postgres: expected the rows c-1 and c-3 only, got: $rows"
[[ $c1 =~ ^\ \ c-1\|Ada\|platinum\|([0-9]+)\|1$ ]] || lib_fail "postgres: row c-1 is '$c1', expected platinum, updated once"
c1_offset=${BASH_REMATCH[1]}
[[ $c3 =~ ^\ \ c-3\|Linus\|bronze\|[0-9]+\|0$ ]] || lib_fail "postgres: row c-3 is '$c3', expected bronze, never updated"
lib_pass "postgres: c-1 upserted (updated exactly once, now platinum), c-3 inserted, c-2 deleted by its tombstone"

hooks=$(section "webhook receiver: each request's Standard Webhooks signature, verified with the shared secret")
! grep -q '^  refused ' <<<"$hooks" || lib_fail "the receiver refused a request: $hooks"
sig_re='^  verified webhook-id=customer-hook:customers\.v1:[0-9]+:[0-9]+ signature=v1,[A-Za-z0-9+/]{43}= body='
[ "$(grep -cE "$sig_re" <<<"$hooks")" -eq 5 ] || lib_fail "expected 5 verified requests: $hooks"
grep -qE "$sig_re"'\{"id":"customer-hook:customers\.v1:[0-9]+:[0-9]+","topic":"customers\.v1","partition":[0-9]+,"offset":'"$c1_offset"',"key":"c-1","value":\{"id":"c-1","name":"Ada","tier":"platinum"\}' <<<"$hooks" ||
    lib_fail "no verified request with c-1's update at the row's offset $c1_offset: $hooks"
grep -qE "$sig_re"'\{.*"key":"c-2","value":null,' <<<"$hooks" || lib_fail "no verified tombstone for c-2: $hooks"
lib_pass "webhook: 5 requests, each with a verified v1 signature (c-1's update, c-2's tombstone among them)"

letters=$(section 'dead-letter topic sluice.dlq: the record that is not JSON, once per sink that read it' | LC_ALL=C sort)
expect='  key=c-4 sink=customer-cache reason=value is not JSON: unexpected character at byte 0
  key=c-4 sink=customer-hook reason=value is not JSON: unexpected character at byte 0
  key=c-4 sink=customers-table reason=value is not JSON: unexpected character at byte 0'
[ "$letters" = "$expect" ] || lib_fail "dead letters:
$letters
expected:
$expect"
lib_pass "the record that is not JSON is on the dead-letter topic, once per sink, with its reason"

for look in '  redis:        redis-cli -p [0-9]+ HGETALL customer:c-1' \
    "  postgres:     .*/psql 'host=127.0.0.1 port=[0-9]+ user=postgres dbname=postgres' -c 'TABLE customers'" \
    '  dead letters: kcat -C -b 127\.0\.0\.1:[0-9]+ -t sluice\.dlq '; do
    grep -qE "^$look" "$out" || lib_fail "the demo does not say where to look: $look"
done
lib_pass "it prints where to look (redis-cli, psql, the status page, the dead-letter topic)"
lib_summary
