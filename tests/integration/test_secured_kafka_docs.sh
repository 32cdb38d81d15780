#!/usr/bin/env bash
# README's "Secured Kafka" blocks, exactly as written: each one marked accepted passes
# `sluice check` as the kafka section of a main file (its ${NAME}s set), and the one marked
# refused is refused with the reason the README quotes (librdkafka's own, for Debian's build).
# The secrets' values must not leak into the messages.
source "$(dirname "$0")/lib.sh"
lib_init

README=$SLUICE_SOURCE_DIR/README.md
awk '/^### Secured Kafka/ { on = 1; next } on && /^### / { exit } on' "$README" >"$WORK/section.md"
# Split into one file per block: example.N.json, and example.N.want (accepted, or the reason).
awk -v dir="$WORK" '
    /<!-- kafka-example: / { n++; want = $0; sub(/.*<!-- kafka-example: /, "", want); sub(/ -->.*/, "", want)
                             print want >(dir "/example." n ".want"); next }
    /^ *```json/ && n && !done[n] { inblock = 1; next }
    /^ *```/ && inblock { inblock = 0; done[n] = 1; next }
    inblock { sub(/^  /, ""); print >(dir "/example." n ".json") }' "$WORK/section.md"
count=$(find "$WORK" -maxdepth 1 -name 'example.*.json' | wc -l)
[ "$count" -ge 4 ] || lib_fail "found $count kafka examples in README's Secured Kafka section, expected at least 4"

mkdir -p "$WORK/sinks.d"
cat >"$WORK/sinks.d/file.json" <<JSON
{ "name": "out", "type": "file", "topics": ["customers.v1"], "file": { "path": "$WORK/out.ndjson" } }
JSON
export KAFKA_USER=sluice-user KAFKA_PASSWORD=s3cret-password KAFKA_KEY_PASSWORD=key-pass-123 \
    CONFLUENT_API_KEY=ABCDEFGHIJKLMNOP CONFLUENT_API_SECRET=api-secret-456
for f in "$WORK"/example.*.json; do
    n=${f#"$WORK/example."}; n=${n%.json}
    want=$(cat "$WORK/example.$n.want")
    { printf '{\n'; cat "$f"; printf ',\n"sinks_dir": "sinks.d"\n}\n'; } >"$WORK/main.$n.json"
    jq -e . "$WORK/main.$n.json" >/dev/null || lib_fail "example $n is not valid JSON: $(cat "$f")"
    rc=0
    out=$("$SLUICE_BUILD_DIR/sluice" check -c "$WORK/main.$n.json" 2>&1) || rc=$?
    case $want in
        accepted) [ "$rc" -eq 0 ] || lib_fail "example $n was refused (exit $rc): $out" ;;
        refused:*)
            [ "$rc" -eq 2 ] || lib_fail "example $n: exit $rc, expected 2: $out"
            grep -qF "${want#refused: }" <<<"$out" || lib_fail "example $n: '$out' lacks '${want#refused: }'" ;;
        *) lib_fail "example $n: unknown mark '$want'" ;;
    esac
    for secret in "$KAFKA_PASSWORD" "$KAFKA_KEY_PASSWORD" "$CONFLUENT_API_SECRET"; do
        ! grep -qF "$secret" <<<"$out" || lib_fail "example $n: sluice check printed a secret: $out"
    done
done
lib_pass "README's $count Secured Kafka examples: the accepted ones pass sluice check, the refused one says why"
lib_summary
