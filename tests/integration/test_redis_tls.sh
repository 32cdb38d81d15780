#!/usr/bin/env bash
# The redis sink over TLS (rediss://), against Debian's redis-server on TLS ports, with a test
# PKI made by openssl at run time. Two servers: A (certificate for 127.0.0.1 and localhost, no
# client certificates) and B (certificate for 127.0.0.1 only, client certificates required).
# Checks: records arrive exactly once over TLS (counted in the lists, with the connections
# killed by the server while records flow), into A by address as the ACL user of
# rediss://ingest@host, into A by name (localhost), and into B with a client certificate; each
# refusal says why in the log: an unrelated CA (certificate verify failed), a name the
# certificate does not hold (hostname mismatch), no client certificate for B (the server's
# alert); sluice check refuses a missing CA file, tls with redis://, a user without password.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init
command -v openssl >/dev/null || lib_fail "openssl is not installed (tools/setup.sh installs it)"

N=3000
KEYS=30
PKI=$WORK/pki
redis_tls_certs "$PKI"
lib_start_kafka events:4 idle:1 sluice.dlq:1
redis_start_tls redis-a "$PKI" server no
PORT_A=$REDIS_TLS_PORT
redis_start_tls redis-b "$PKI" ip-only yes
PORT_B=$REDIS_TLS_PORT

# tls_sink DIR NAME TOPIC URL TLS-SECTION: a list sink (key feed:{key}) with quick reconnects.
tls_sink() {
    local dir=$1
    shift
    mkdir -p "$dir"
    jq -n --arg name "$1" --arg topic "$2" --arg url "$3" --argjson tls "$4" \
        '{name: $name, type: "redis", topics: [$topic], on_failure: "block",
          batch: {max_records: 200, linger_ms: 5},
          retry: {max_attempts: 20, initial_backoff_ms: 50, max_backoff_ms: 300},
          redis: {url: $url, key: "feed:{key}", shape: "list", tls: $tls,
                  reconnect_min_ms: 50, reconnect_max_ms: 300}}' >"$dir/$1.json"
}

# with_sinks_dir CONFIG DIR GROUP: a main config like sluice_write_config's, with its own sinks
# directory and consumer group.
with_sinks_dir() {
    sluice_write_config "$1" "$3"
    jq --arg d "$2" '.sinks_dir = $d' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
}

# A missing CA file: refused by check, with the file and OpenSSL's reason.
with_sinks_dir "$WORK/check.json" "$WORK/sinks.check" redis-tls-check
tls_sink "$WORK/sinks.check" nofile events "rediss://127.0.0.1:$PORT_A" "{\"ca_file\": \"$PKI/missing.crt\"}"
if "$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/check.json" >"$WORK/check.out" 2>&1; then
    lib_fail "sluice check accepted a missing tls.ca_file"
fi
grep -q "cannot load the CA certificates $PKI/missing.crt: .*[Nn]o such file" "$WORK/check.out" ||
    lib_fail "sluice check did not say which CA file and why: $(cat "$WORK/check.out")"
tls_sink "$WORK/sinks.check" nofile events "redis://127.0.0.1:$PORT_A" "{\"ca_file\": \"$PKI/ca.crt\"}"
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/check.json" >"$WORK/check.out" 2>&1 &&
    lib_fail "sluice check accepted a tls section with a redis:// URL"
grep -q "rediss:// URLs only" "$WORK/check.out" || lib_fail "no reason for tls with redis://: $(cat "$WORK/check.out")"
tls_sink "$WORK/sinks.check" nofile events "rediss://ingest@127.0.0.1:$PORT_A" "{\"ca_file\": \"$PKI/ca.crt\"}"
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/check.json" >"$WORK/check.out" 2>&1 &&
    lib_fail "sluice check accepted redis://USER@host without a password"
grep -q "needs the user's password in the password option" "$WORK/check.out" ||
    lib_fail "no reason for a user without a password: $(cat "$WORK/check.out")"
lib_pass "sluice check: a missing CA file, a tls section on redis://, a user without a password are refused with their reasons"

sluice_write_config "$WORK/sluice.json" redis-tls-test
# over-tls authenticates as an ACL user: redis://USER@host, the password from the option.
rcli_tls "$PORT_A" "$PKI" ACL SETUSER ingest on '>ingest-secret' '~*' '+@all' >/dev/null || lib_fail "ACL SETUSER"
tls_sink "$WORK/sinks.d" over-tls events "rediss://ingest@127.0.0.1:$PORT_A/0" "{\"ca_file\": \"$PKI/ca.crt\"}"
jq '.redis.password = "ingest-secret"' "$WORK/sinks.d/over-tls.json" >"$WORK/over-tls.tmp" &&
    mv "$WORK/over-tls.tmp" "$WORK/sinks.d/over-tls.json"
# by-name reaches A by its name (resolved, sent as SNI, matched against the DNS entry), in db 1.
tls_sink "$WORK/sinks.d" by-name events "rediss://localhost:$PORT_A/1" "{\"ca_file\": \"$PKI/ca.crt\"}"
tls_sink "$WORK/sinks.d" client-cert events "rediss://127.0.0.1:$PORT_B/0" \
    "{\"ca_file\": \"$PKI/ca.crt\", \"cert_file\": \"$PKI/client.crt\", \"key_file\": \"$PKI/client.key\"}"
"$SLUICE_BUILD_DIR/sluice" check -c "$WORK/sluice.json" >/dev/null || lib_fail "sluice check refused the TLS sinks"

make_records "$N" "$KEYS" "$WORK/records.tsv"
head -n 500 "$WORK/records.tsv" >"$WORK/first.tsv"
tail -n +501 "$WORK/records.tsv" | split -l 100 - "$WORK/chunk."
# applied PORT DB SINK: the records SINK finished (the sum of its positions).
applied() { rcli_tls "$1" "$PKI" -n "$2" HVALS "sluice:positions:$3" | awk '{ s += $1 } END { print s + 0 }'; }
applied_is() { [ "$(applied "$1" "$2" "$3")" -ge "$4" ]; }
sluice_start "$WORK/sluice.json"
lib_produce events "$WORK/first.tsv"
TIMEOUT=60 lib_wait_for applied_is "$PORT_A" 0 over-tls 500

# The server kills the sink's connections while the rest comes in paced chunks: batches whose
# replies were lost are retried over a new TLS connection and must be found applied, not
# applied again. (The pauses pace the load; nothing below depends on their length.)
(
    for f in "$WORK"/chunk.*; do
        kcat -P -q -b "$KAFKA_BROKERS" -t events -K '\t' -z none -l "$f" || exit 1
        sleep 0.1
    done
) </dev/null >"$WORK/producer.log" 2>&1 &
producer=$!
killed=0
while lib__alive "$producer"; do
    k=$(rcli_tls "$PORT_A" "$PKI" CLIENT KILL TYPE normal SKIPME yes) || k=0
    killed=$((killed + k))
    sleep 0.2
done
wait "$producer" || lib_fail "the producer failed: $(cat "$WORK/producer.log")"
TIMEOUT=60 lib_wait_for applied_is "$PORT_A" 0 over-tls "$N"
TIMEOUT=60 lib_wait_for applied_is "$PORT_A" 1 by-name "$N"
TIMEOUT=60 lib_wait_for applied_is "$PORT_B" 0 client-cert "$N"

rcli_tls "$PORT_A" "$PKI" CLIENT LIST | grep -q ' user=ingest ' ||
    lib_fail "the sink is not connected as ingest: $(rcli_tls "$PORT_A" "$PKI" CLIENT LIST)"
sluice_stop
grep -q "connected to redis 127.0.0.1:$PORT_A db 0 over TLS" "$SLUICE_LOG" || lib_fail "no TLS connection logged"

# Exactly once, counted in the targets: every record once per sink, in per-key order.
for target in "$PORT_A 0" "$PORT_A 1" "$PORT_B 0"; do
    read -r port db <<<"$target"
    for k in $(seq 0 $((KEYS - 1))); do
        rcli_tls "$port" "$PKI" -n "$db" LRANGE "feed:k-$k" 0 -1 | jq -r --arg k "k-$k" 'select(.id == $k) | .seq' \
            >"$WORK/seqs.$port.$db.$k" || lib_fail "feed:k-$k on $port db $db holds something else than its records"
        sort -n -c "$WORK/seqs.$port.$db.$k" 2>/dev/null || lib_fail "feed:k-$k on $port db $db is out of order"
    done
    total=$(cat "$WORK"/seqs."$port.$db".* | wc -l)
    distinct=$(cat "$WORK"/seqs."$port.$db".* | sort -n -u | wc -l)
    [ "$total" -eq "$N" ] && [ "$distinct" -eq "$N" ] ||
        lib_fail "redis on $port db $db holds $total entries ($distinct distinct), want $N"
done
retries=$(grep -o 'sink=over-tls .*retries=[0-9]*' "$SLUICE_LOG" | grep -o '[0-9]*$' | tail -1)
[ "$killed" -gt 0 ] || lib_fail "CLIENT KILL never found the sink's connection"
lib_pass "$N records over TLS exactly once in each of 3 targets, one reached by name ($killed connections killed by the server, over-tls retried ${retries:-?} batches)"
lib_pass "a client certificate opens the server that requires one"
lib_pass "rediss://ingest@host with the password option authenticates as the ACL user ingest"

# The refusals, in a sluice of their own (a sink that cannot load its positions holds up the
# group's assignment), each with its reason in the log: the first failure of a sink is logged
# at once, and its reason is the one a reader of the log would act on.
with_sinks_dir "$WORK/refused.json" "$WORK/sinks.refused" redis-tls-refused
tls_sink "$WORK/sinks.refused" wrong-ca idle "rediss://127.0.0.1:$PORT_A" "{\"ca_file\": \"$PKI/other-ca.crt\"}"
tls_sink "$WORK/sinks.refused" wrong-name idle "rediss://localhost:$PORT_B" \
    "{\"ca_file\": \"$PKI/ca.crt\", \"cert_file\": \"$PKI/client.crt\", \"key_file\": \"$PKI/client.key\"}"
tls_sink "$WORK/sinks.refused" no-client-cert idle "rediss://127.0.0.1:$PORT_B" "{\"ca_file\": \"$PKI/ca.crt\"}"
sluice_start "$WORK/refused.json"
refused() { grep -q "$1" "$SLUICE_LOG"; }
TIMEOUT=30 lib_wait_for refused "sink=wrong-ca .*redis 127.0.0.1:$PORT_A: TLS handshake failed: certificate verify failed: self-signed certificate in certificate chain"
TIMEOUT=30 lib_wait_for refused "sink=wrong-name .*redis localhost:$PORT_B: TLS handshake failed: certificate verify failed: hostname mismatch"
TIMEOUT=30 lib_wait_for refused "sink=no-client-cert .*redis 127.0.0.1:$PORT_B: .*certificate required"
sluice_stop
lib_pass "refused with reasons: an unrelated CA, a name not in the certificate, no client certificate"
lib_summary
