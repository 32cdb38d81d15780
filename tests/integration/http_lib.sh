# shellcheck shell=bash
# Helpers for the webhook and http sink tests, on top of lib.sh and sluice_lib.sh. They read
# what tools/http-receiver recorded in $RECEIVER_OUT (one JSON line per request).

# A Standard Webhooks secret for the tests (the spec's published example key).
# shellcheck disable=SC2034 # used by the tests that source this file
HTTP_TEST_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

# The requests recorded for PATH (every request when PATH is empty), one JSON line each.
rx_lines() {
    jq -c --arg p "${1:-}" 'select($p == "" or .path == $p)' "$RECEIVER_OUT"
}

# rx_count PATH [STATUS]: how many requests PATH got (answered with STATUS when given;
# "null" counts the ones never answered).
rx_count() {
    jq -s --arg p "$1" --arg s "${2:-}" \
        '[.[] | select(.path == $p) | select($s == "" or (.status | tostring) == $s)] | length' "$RECEIVER_OUT"
}

# True when PATH got at least N answers with status STATUS (for lib_wait_for).
rx_has() {
    [ "$(rx_count "$1" "$3")" -ge "$2" ]
}

# rx_records_ok PATH: the record objects in the bodies answered 200 on PATH, one per line,
# whatever the body's shape (one object, a JSON array, or NDJSON).
rx_records_ok() {
    jq -r --arg p "$1" 'select(.path == $p and .status == 200) | .body' "$RECEIVER_OUT" |
        jq -c 'if type == "array" then .[] else . end'
}

# rx_check_exactly_once PATH N: after deduplicating on the record id (what a receiver that
# dedupes does), the records answered 200 on PATH are seq 0..N-1, each exactly once; prints
# how many deliveries were repeats.
rx_check_exactly_once() {
    local path=$1 n=$2 report total distinct seqs min max
    report=$(rx_records_ok "$path" | jq -rs '
        (length) as $total
        | (unique_by(.id)) as $u
        | "\($total) \($u | length) \([$u[] | .value.seq] | unique | length) \([$u[] | .value.seq] | min) \([$u[] | .value.seq] | max)"')
    read -r total distinct seqs min max <<<"$report"
    [ "$distinct" -eq "$n" ] || lib_fail "$path: $distinct distinct record ids answered 200, expected $n"
    [ "$seqs" -eq "$n" ] || lib_fail "$path: $seqs distinct seq values among $n ids: an id stands for two records"
    if [ "$min" -ne 0 ] || [ "$max" -ne $((n - 1)) ]; then
        lib_fail "$path: seq range $min..$max, expected 0..$((n - 1))"
    fi
    echo $((total - distinct))
}

# The hex of a whsec_ secret's key, for openssl.
whsec_hex() {
    printf '%s' "${1#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n'
}

# verify_signature LINE SECRET: checks a recorded request's webhook-signature against an
# HMAC-SHA256 the OpenSSL command line computes over id.timestamp.body (an implementation
# independent of sluice's). 0 when one of the v1 signatures matches.
verify_signature() {
    local line=$1 key id ts sigs want s
    key=$(whsec_hex "$2")
    id=$(jq -r '.headers["webhook-id"] // empty' <<<"$line")
    ts=$(jq -r '.headers["webhook-timestamp"] // empty' <<<"$line")
    sigs=$(jq -r '.headers["webhook-signature"] // empty' <<<"$line")
    [ -n "$id" ] && [ -n "$ts" ] && [ -n "$sigs" ] || return 1
    want=$({ printf '%s.%s.' "$id" "$ts"; jq -j '.body' <<<"$line"; } |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
    for s in $sigs; do
        [ "$s" = "v1,$want" ] && return 0
    done
    return 1
}

# verify_all_signatures PATH SECRET [MAX]: every (or the first MAX) request on PATH verifies.
verify_all_signatures() {
    local path=$1 secret=$2 max=${3:-1000000} n=0 line
    while IFS= read -r line; do
        verify_signature "$line" "$secret" ||
            lib_fail "$path: signature does not verify: $(head -c 400 <<<"$line")"
        n=$((n + 1))
        [ "$n" -lt "$max" ] || break
    done < <(rx_lines "$path")
    [ "$n" -gt 0 ] || lib_fail "$path: no request to verify"
    echo "$n"
}

# kafka_produce_tombstone TOPIC KEY: a record with KEY and a null value.
kafka_produce_tombstone() {
    printf '%s\t\n' "$2" | timeout "$(lib_tmout 30)" kcat -P -q -b "$KAFKA_BROKERS" -t "$1" -K '\t' -Z -z none ||
        lib_fail "kcat could not produce a tombstone to $1"
}

# sluice_write_config_with MAIN GROUP KEY=VALUE...: like sluice_write_config, then sets
# top-level keys (numbers) in the main file, e.g. commit_interval_ms=60000.
sluice_write_config_with() {
    local file=$1 group=$2 kv k v
    shift 2
    sluice_write_config "$file" "$group"
    for kv in "$@"; do
        k=${kv%%=*}
        v=${kv#*=}
        jq --arg k "$k" --argjson v "$v" '.[$k] = $v' "$file" >"$file.tmp" && mv "$file.tmp" "$file"
    done
}
