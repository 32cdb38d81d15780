#!/usr/bin/env bash
# The SSRF guard: without allow_private_networks a sink may not reach loopback, private or
# link-local addresses. A literal address is refused by `sluice check` with the reason and
# the place in the file; a name that resolves to one (localhost) is refused when connecting,
# on the address actually used: nothing reaches the receiver and the records are
# dead-lettered with the reason. The same URL with allow_private_networks: true is delivered.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

lib_start_kafka events:1 sluice.dlq:1
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
sluice_write_config "$WORK/sluice.json" http-ssrf
sluice_admin_on "$WORK/sluice.json"

# --- literal addresses: refused by the configuration check ----------------------------------
cat >"$WORK/sinks.d/literal.json" <<JSON
{ "name": "literal", "type": "webhook", "topics": ["events"],
  "webhook": { "url": "$RECEIVER_URL/hook" } }
JSON
cat >"$WORK/sinks.d/metadata.json" <<JSON
{ "name": "metadata", "type": "http", "topics": ["events"],
  "http": { "url": "http://169.254.169.254/latest/meta-data/{key}" } }
JSON
rc=0
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/sluice.json" >"$WORK/check.out" 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "sluice check exited $rc on private destinations: $(cat "$WORK/check.out")"
grep -q "literal.json:2:[0-9]*: webhook.url: url points at 127.0.0.1, a loopback address: the SSRF guard refuses non-public destinations; set \"allow_private_networks\": true" \
    "$WORK/check.out" || lib_fail "no located, clear message for 127.0.0.1: $(cat "$WORK/check.out")"
grep -q "metadata.json:2:[0-9]*: http.url: url points at 169.254.169.254, a link-local address" "$WORK/check.out" ||
    lib_fail "no message for 169.254.169.254: $(cat "$WORK/check.out")"
rm "$WORK/sinks.d/literal.json" "$WORK/sinks.d/metadata.json"
lib_pass "sluice check refuses 127.0.0.1 and 169.254.169.254 without allow_private_networks, with file:line and the fix"

# --- names that look cluster-internal: valid, but check warns (the guard will refuse them) ---
mkdir -p "$WORK/teams"
for host in crm-bridge.apps.svc.cluster.local crm-bridge orders.internal; do
    printf '{ "name": "w", "type": "webhook", "topics": ["events"],\n  "webhook": { "url": "http://%s:8080/hook" } }\n' \
        "$host" >"$WORK/teams/$host.json"
    out=$("$SLUICE_BUILD_DIR/sluice" check --sink "$WORK/teams/$host.json" 2>&1) ||
        lib_fail "check refused a webhook to $host: $out"
    grep -qF "$WORK/teams/$host.json:2:23: webhook.url: warning: url host \"$host\" looks cluster-internal" <<<"$out" &&
        grep -qF 'set "allow_private_networks": true if the receiver is in your network' <<<"$out" ||
        lib_fail "no located warning for $host: $out"
done
printf '{ "name": "t", "type": "http", "topics": ["events"],\n  "http": { "url": "http://api.svc/items/{key}" } }\n' >"$WORK/teams/tmpl.json"
out=$("$SLUICE_BUILD_DIR/sluice" check --sink "$WORK/teams/tmpl.json" 2>&1) || lib_fail "check refused tmpl.json: $out"
grep -qF 'http.url: warning: url host "api.svc" looks cluster-internal' <<<"$out" || lib_fail "no warning for a templated http url: $out"
printf '{ "name": "w", "type": "webhook", "topics": ["events"],\n  "webhook": { "url": "http://crm-bridge.apps.svc.cluster.local/hook", "allow_private_networks": true } }\n' \
    >"$WORK/teams/allowed.json"
printf '{ "name": "w", "type": "webhook", "topics": ["events"],\n  "webhook": { "url": "https://hooks.example.com/hook" } }\n' \
    >"$WORK/teams/public.json"
for f in allowed public; do
    out=$("$SLUICE_BUILD_DIR/sluice" check --sink "$WORK/teams/$f.json" 2>&1) || lib_fail "check refused $f.json: $out"
    ! grep -q warning <<<"$out" || lib_fail "$f.json warned: $out"
done
lib_pass "sluice check warns (file:line, the reason, the fix) for single-label names and names under .svc, .cluster.local, .internal; not when allowed or public"

# --- a name that resolves to loopback: refused when connecting ------------------------------
cat >"$WORK/sinks.d/guarded.json" <<JSON
{ "name": "guarded", "type": "webhook", "topics": ["events"],
  "retry": { "max_attempts": 5, "initial_backoff_ms": 50, "max_backoff_ms": 100 },
  "webhook": { "url": "http://localhost:$RECEIVER_PORT/guarded", "batch_format": "json_array",
               "circuit_breaker": { "failures": 1, "cooldown_ms": 60000 } } }
JSON
cat >"$WORK/sinks.d/allowed.json" <<JSON
{ "name": "allowed", "type": "webhook", "topics": ["events"],
  "webhook": { "url": "http://localhost:$RECEIVER_PORT/allowed", "batch_format": "json_array",
               "allow_private_networks": true } }
JSON
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/sluice.json" >/dev/null || lib_fail "a host name was refused by check"
make_records 5 5 "$WORK/records.tsv"
lib_produce events "$WORK/records.tsv"
sluice_start "$WORK/sluice.json"
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 5
TIMEOUT=30 lib_wait_for rx_has /allowed 1 200
# The refusals are visible where an operator looks, not only in the dead letters.
# (the metrics are read whole first: grep -q stopping early would cut curl off, a failure under pipefail)
refused_5() { grep -qx 'sluice_sink_records_refused_total{sink="guarded",type="webhook",reason="ssrf"} 5' <<<"$(admin /metrics)"; }
TIMEOUT=30 lib_wait_for refused_5 || lib_fail "/metrics: $(admin /metrics | grep records_refused)"
grep -qx 'sluice_sink_records_refused_total{sink="allowed",type="webhook",reason="ssrf"} 0' <<<"$(admin /metrics)" ||
    lib_fail "/metrics for the allowed sink: $(admin /metrics | grep records_refused)"
[ "$(admin_sink guarded .state)" = degraded ] || lib_fail "guarded is $(admin_sink guarded .state), want degraded"
[[ $(admin_sink guarded .last_error.message) == 'refused to connect to '*'the SSRF guard allows only public destinations unless "allow_private_networks": true' ]] ||
    lib_fail "guarded's last_error: $(admin_sink guarded .last_error)"
[ "$(admin_sink allowed .state)" = running ] || lib_fail "allowed is $(admin_sink allowed .state)"
lib_pass "GET /sinks shows the guarded sink degraded with the refusal as its last error; /metrics counts 5 refused (ssrf)"
sluice_stop

[ "$(rx_count /guarded)" -eq 0 ] || lib_fail "the guarded sink reached the receiver"
dlq=$(LIB_CONSUME_FORMAT='%h\n' lib_consume sluice.dlq 10)
[ "$(grep -c 'sluice.sink=guarded' <<<"$dlq")" -eq 5 ] || lib_fail "expected 5 dead letters from guarded: $dlq"
# The reason is the refusal itself (a permanent failure: no "gave up after N attempts").
[ "$(grep 'sluice.sink=guarded' <<<"$dlq" | grep -c -E 'sluice.reason=refused to connect to (127\.0\.0\.1|::1) \(localhost:[0-9]+ resolves to it\): a loopback address; the SSRF guard allows only public destinations unless "allow_private_networks": true')" -eq 5 ] ||
    lib_fail "the dead letters lack the refusal as their reason: $(head -1 <<<"$dlq")"
grep -q 'refused to connect to' "$SLUICE_LOG" || lib_fail "the refusal is not in the log"
! grep 'sink=guarded' "$SLUICE_LOG" | grep -q -E 'attempt [0-9]+ failed|gave up after' ||
    lib_fail "the refusal was retried: $(grep 'sink=guarded' "$SLUICE_LOG" | grep -E 'attempt|gave up' | head -1)"
! grep 'sink=guarded' "$SLUICE_LOG" | grep -q 'circuit open' ||
    lib_fail "the refusal counted toward the circuit breaker (failures: 1)"
lib_pass "localhost: refused on connect (nothing sent), dead-lettered at once with the refusal as the reason, breaker untouched"
[ "$(rx_records_ok /allowed | wc -l)" -eq 5 ] || lib_fail "the allowed sink did not deliver the 5 records"
lib_pass "the same URL with allow_private_networks: true delivered all 5 records"
lib_summary
