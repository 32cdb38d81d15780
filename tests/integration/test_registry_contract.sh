#!/usr/bin/env bash
# The registry's data contract (topics.<name>.contract "registry"), through `sluice run` and the
# project's Schema Registry:
# - 10,000 Avro customers whose schema carries a Confluent ruleSet: CEL conditions in READ and
#   WRITEREAD mode (one with a guard, one with a doc, one that errors on some records, one with
#   onFailure NONE), and a WRITE-only and a disabled rule that would refuse everything. A seeded
#   400 break a rule; PostgreSQL and Redis hold exactly the others, the dead-letter topic exactly
#   those 400, once each, with the rule (sluice.rule, __rule.name, __rule.mode) and the reason;
#   the NONE rule's failures are counted, not dead-lettered; the WRITE and disabled rules never run.
# - a JSON Schema data product: each payload is validated against its registry schema.
# - a schema whose ruleSet holds a rule sluice cannot run (ENCRYPT): its records are held and its
#   sink is parked with the reason; nothing is delivered or dead-lettered.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

N=10000
lib_start_kafka customers.avro:4 customers.json:1 customers.secret:1 sluice.dlq:1
lib_start_registry
lib_start_postgres
lib_start_redis
lib_psql "CREATE TABLE customers (id text PRIMARY KEY, email text, visits integer, zip text)"

# Registers schema text $2 (type $3) with ruleSet $4 under subject $1; prints the id.
register() {
    jq -n --arg schema "$2" --arg type "$3" --argjson rules "$4" \
        '{schema: $schema, schemaType: $type} + (if $rules == null then {} else {ruleSet: $rules} end)' |
        curl -fsS -m "$(lib_tmout 10)" -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data-binary @- \
            "$REGISTRY_URL/subjects/$1/versions" | jq -er .id
}

# Listed in this order, run last first (as Confluent's deserializers run READ rules).
RULES='{"domainRules": [
  {"name": "email_has_at", "kind": "CONDITION", "type": "CEL", "mode": "WRITEREAD",
   "expr": "message.email.contains(\"@\") && !message.email.endsWith(\"@\")", "onFailure": "NONE,DLQ"},
  {"name": "visits_in_range", "doc": "visits is a count", "kind": "CONDITION", "type": "CEL", "mode": "READ",
   "expr": "message.visits >= 0", "onFailure": "DLQ"},
  {"name": "german_zip", "kind": "CONDITION", "type": "CEL", "mode": "READ",
   "expr": "message.country == \"DE\" ; message.address.zip.matches(\"^[0-9]{5}$\")"},
  {"name": "tier_not_basic", "kind": "CONDITION", "type": "CEL", "mode": "READ",
   "expr": "message.tier != \"basic\"", "onFailure": "NONE"},
  {"name": "write_only", "kind": "CONDITION", "type": "CEL", "mode": "WRITE", "expr": "false"},
  {"name": "switched_off", "kind": "CONDITION", "type": "CEL", "mode": "READ", "expr": "false", "disabled": true},
  {"name": "first_tag_not_blocked", "kind": "CONDITION", "type": "CEL", "mode": "READ",
   "expr": "message.tags[0] != \"blocked\""}
]}'
AVRO_SCHEMA=$("$SLUICE_BUILD_DIR/avro-produce" --schema)
AVRO_ID=$(register customers.avro-value "$AVRO_SCHEMA" AVRO "$RULES") || lib_fail "could not register the Avro schema"
SECRET_ID=$(register customers.secret-value "$AVRO_SCHEMA" AVRO '{"domainRules": [
  {"name": "encrypt_pii", "kind": "TRANSFORM", "type": "ENCRYPT", "mode": "WRITEREAD", "tags": ["PII"],
   "params": {"encrypt.kek.name": "kek-1"}}]}') || lib_fail "could not register the encrypted schema"
JSON_SCHEMA='{"type": "object", "properties": {"id": {"type": "integer"}, "email": {"type": "string", "format": "email"}},
              "required": ["id", "email"]}'
JSON_ID=$(register customers.json-value "$JSON_SCHEMA" JSON null) || lib_fail "could not register the JSON schema"
[ "$AVRO_ID" != "$SECRET_ID" ] || lib_fail "the same schema text with other rules must get its own id"

sluice_write_config "$WORK/sluice.json" registry-contract-test
jq --arg url "$REGISTRY_URL" '. + {registry: {url: $url}, topics: {
      "customers.avro": {value_format: "confluent", contract: "registry"},
      "customers.json": {value_format: "confluent", contract: "registry"},
      "customers.secret": {value_format: "confluent", contract: "registry"}}}' \
    "$WORK/sluice.json" >"$WORK/sluice.tmp" && mv "$WORK/sluice.tmp" "$WORK/sluice.json"
sluice_admin_on "$WORK/sluice.json"
pg_sink_file pg customers.avro '"table": "customers", "key_columns": ["id"],
    "columns": {"id": "$.id", "email": "$.email", "visits": "$.visits", "zip": "$.address.zip"}'
redis_sink_file "$WORK/sinks.d/redis.json" cache customers.avro '{"key": "customer:{$.id}", "shape": "hash"}'
for t in json secret; do
    printf '{ "name": "%s-file", "type": "file", "topics": ["customers.%s"], "file": { "path": "%s" } }\n' \
        "$t" "$t" "$WORK/$t.ndjson" >"$WORK/sinks.d/$t.json"
done
"$SLUICE_BUILD_DIR/sluice" check -c "$WORK/sluice.json" >/dev/null || lib_fail "sluice check refused contract \"registry\""

# Ids 1..N. By id % 100: 7 an email ending in @, 13 negative visits, 29 a German zip that is not
# one (30: the same zip in France, which the guard lets through), 41 no tags (the rule errors).
awk -v n=$N 'BEGIN {
    split("gold silver basic", tiers, " ")
    for (id = 1; id <= n; id++) {
        m = id % 100
        email = m == 7 ? "bob@" : "customer" id "@example.com"
        visits = m == 13 ? -1 : id % 1000
        country = m == 30 ? "FR" : "DE"
        zip = (m == 29 || m == 30) ? "ABC" : sprintf("1%04d", id % 10000)
        tags = m == 41 ? "[]" : "[\"news\"]"
        printf "c-%d\t{\"id\":\"c-%08d\",\"name\":\"Customer %d\",\"email\":\"%s\",\"tier\":\"%s\",\"country\":\"%s\",", id, id, id, email, tiers[id % 3 + 1], country
        printf "\"balance\":%d.%02d,\"visits\":%d,\"created_at\":\"2024-01-01T00:00:00Z\",\"tags\":%s,", id, id % 100, visits, tags
        printf "\"address\":{\"city\":\"Berlin\",\"zip\":\"%s\"},\"seq\":%d}\n", zip, id
    }
}' >"$WORK/records.tsv"
timeout "$(lib_tmout 120)" "$SLUICE_BUILD_DIR/avro-produce" -b "$KAFKA_BROKERS" -t customers.avro -i "$AVRO_ID" \
    "$WORK/records.tsv" >/dev/null || lib_fail "avro-produce failed"
head -5 "$WORK/records.tsv" >"$WORK/secret.tsv"
timeout "$(lib_tmout 60)" "$SLUICE_BUILD_DIR/avro-produce" -b "$KAFKA_BROKERS" -t customers.secret -i "$SECRET_ID" \
    "$WORK/secret.tsv" >/dev/null || lib_fail "avro-produce failed on the encrypted topic"
# JSON Schema records: the magic byte, the id (4 bytes, big-endian), the JSON; ids 5 and 15 break
# the schema (an email that is not one).
mkdir -p "$WORK/json"
for id in $(seq 1 20); do
    email="j$id@example.com"
    [ $((id % 10)) -eq 5 ] && email="nope"
    { printf '\000'; printf "\\$(printf '%03o' $((JSON_ID >> 24 & 255)))\\$(printf '%03o' $((JSON_ID >> 16 & 255)))"
      printf "\\$(printf '%03o' $((JSON_ID >> 8 & 255)))\\$(printf '%03o' $((JSON_ID & 255)))"
      printf '{"id":%d,"email":"%s"}' "$id" "$email"; } >"$WORK/json/$(printf '%02d' "$id")"
done
timeout "$(lib_tmout 60)" kcat -P -q -b "$KAFKA_BROKERS" -t customers.json -z none "$WORK"/json/* ||
    lib_fail "kcat could not produce the JSON Schema records"
sluice_start "$WORK/sluice.json"

BAD=$((4 * N / 100))
VALID=$((N - BAD))
rows_are() { [ "$(lib_psql "SELECT count(*) FROM customers")" = "$1" ]; }
TIMEOUT=120 lib_wait_for rows_are "$VALID" || lib_fail "the table has $(lib_psql "SELECT count(*) FROM customers") rows, want $VALID"
keys_are() { [ "$(rcli --scan --pattern 'customer:*' | wc -l)" = "$1" ]; }
TIMEOUT=60 lib_wait_for keys_are "$VALID" || lib_fail "redis holds $(rcli --scan --pattern 'customer:*' | wc -l) customers, want $VALID"
TIMEOUT=60 lib_wait_for has_lines "$WORK/json.ndjson" 18 || lib_fail "$(lines_of "$WORK/json.ndjson") of 18 JSON Schema records"
TIMEOUT=60 lib_wait_for topic_has sluice.dlq $((BAD + 2)) || lib_fail "fewer than $((BAD + 2)) dead letters"

awk '{ m = substr($1, 3) % 100; if (m != 7 && m != 13 && m != 29 && m != 41) printf "c-%08d\n", substr($1, 3) }' \
    "$WORK/records.tsv" | sort >"$WORK/valid.ids"
lib_psql "SELECT id FROM customers" | sort >"$WORK/pg.ids"
diff -q "$WORK/valid.ids" "$WORK/pg.ids" >/dev/null || lib_fail "the table's ids are not exactly the valid ones"
rcli --scan --pattern 'customer:*' | sed 's/^customer://' | sort >"$WORK/redis.ids"
diff -q "$WORK/valid.ids" "$WORK/redis.ids" >/dev/null || lib_fail "the cache's ids are not exactly the valid ones"
[ "$(lib_psql "SELECT zip FROM customers WHERE id = 'c-00000030'")" = "ABC" ] ||
    lib_fail "the guarded rule refused a French zip it should not judge"
lib_pass "PostgreSQL and Redis hold exactly the $VALID Avro records that meet the registry's rules"

# Every dead letter: the key, the topic, stage, rule, __rule.name, __rule.mode and the reason.
LIB_CONSUME_FORMAT='%k\t%h\n' lib_consume sluice.dlq $((N)) >"$WORK/dlq"
awk -F'\t' -v missing=- "$LIB_AWK_HEADER"'
    { print $1 "\t" header($2, "sluice.topic") "\t" header($2, "sluice.stage") "\t" header($2, "sluice.rule") "\t" header($2, "__rule.name") "\t" header($2, "__rule.mode") "\t" header($2, "sluice.reason") }' \
    "$WORK/dlq" >"$WORK/letters"
[ "$(wc -l <"$WORK/letters")" -eq $((BAD + 2)) ] || lib_fail "$(wc -l <"$WORK/letters") dead letters, want $((BAD + 2))"
grep -q $'\tcustomers.secret\t' "$WORK/letters" && lib_fail "a record of the held topic was dead-lettered"
awk -F'\t' '$2 == "customers.avro" { print $1 }' "$WORK/letters" | sort >"$WORK/dlq.keys"
awk '{ m = substr($1, 3) % 100; if (m == 7 || m == 13 || m == 29 || m == 41) print $1 }' "$WORK/records.tsv" | sort >"$WORK/bad.keys"
diff -q "$WORK/bad.keys" "$WORK/dlq.keys" >/dev/null || lib_fail "the Avro dead letters are not exactly the $BAD records that break a rule"
while IFS=$'\t' read -r key topic stage rule rname rmode reason; do
    [ "$topic" = customers.avro ] || continue
    case $((${key#c-} % 100)) in
        7) want_rule=email_has_at
           want_reason="contract: rule \"email_has_at\" is false: message.email.contains(\"@\") && !message.email.endsWith(\"@\")" ;;
        13) want_rule=visits_in_range
            want_reason='contract: rule "visits_in_range" (visits is a count) is false: message.visits >= 0' ;;
        29) want_rule=german_zip
            want_reason='contract: rule "german_zip" is false: message.country == "DE" ; message.address.zip.matches("^[0-9]{5}$")' ;;
        41) want_rule=first_tag_not_blocked
            want_reason='contract: rule "first_tag_not_blocked" could not be evaluated (' ;;
    esac
    [ "$stage|$rule|$rname|$rmode" = "contract|$want_rule|$want_rule|READ" ] ||
        lib_fail "letter of $key: stage|rule|__rule.name|__rule.mode = $stage|$rule|$rname|$rmode"
    case $want_rule in
        first_tag_not_blocked) [[ $reason == "$want_reason"*'): message.tags[0] != "blocked"' ]] ;;
        *) [ "$reason" = "$want_reason" ] ;;
    esac || lib_fail "letter of $key: reason '$reason', want '$want_reason'"
done <"$WORK/letters"
lib_pass "the dead-letter topic holds exactly the $BAD Avro records that break a rule, once each, with the rule and why"

awk -F'\t' '$2 == "customers.json" { print $1 "|" $3 "|" $4 "|" $7 }' "$WORK/letters" | sort >"$WORK/json.letters"
want='|contract|format at $.properties.email.format|contract: $.email: "nope" is not an email (format)'
[ "$(cat "$WORK/json.letters")" = "$want"$'\n'"$want" ] || lib_fail "JSON Schema letters: $(cat "$WORK/json.letters")"
jq -r .value.email "$WORK/json.ndjson" | grep -c '@example.com$' | grep -qx 18 || lib_fail "the JSON file sink: $(cat "$WORK/json.ndjson")"
lib_pass "JSON Schema payloads are checked against their registry schema: 18 delivered, 2 dead-lettered with the keyword"

# onFailure NONE: counted, passed on. Rules run last first, so a record refused by
# first_tag_not_blocked never reached tier_not_basic; the other refused records did.
NOTED=$(awk '{ id = substr($1, 3); if (id % 3 == 2 && id % 100 != 41) n++ } END { print n }' "$WORK/records.tsv")
metrics=$(admin /metrics)
for pair in "email_has_at 100" "visits_in_range 100" "german_zip 100" "first_tag_not_blocked 100" "tier_not_basic $NOTED"; do
    line="sluice_topic_contract_violations_total{topic=\"customers.avro\",rule=\"${pair% *}\"} ${pair#* }"
    grep -qxF "$line" <<<"$metrics" || lib_fail "/metrics lacks: $line ($(grep 'customers.avro",rule' <<<"$metrics" | tr '\n' ' '))"
done
grep -q 'rule="write_only"\|rule="switched_off"' <<<"$metrics" && lib_fail "a WRITE-only or disabled rule ran"
grep -qx "sluice_topic_contract_valid_total{topic=\"customers.avro\"} $VALID" <<<"$metrics" ||
    lib_fail "valid count: $(grep contract_valid <<<"$metrics")"
lib_pass "onFailure NONE failures are counted ($NOTED) and passed on; WRITE-only and disabled rules never run"

# The rule sluice cannot run: held, parked, said.
TIMEOUT=30 lib_wait_for admin_sink_is secret-file parked || lib_fail "secret-file: $(admin /sinks | jq -c '.sinks[] | select(.name == "secret-file")')"
reason=$(admin_sink secret-file .parked.reason)
[[ $reason == *'rule "encrypt_pii": ENCRYPT rules change records (kind TRANSFORM), which sluice cannot do'*'its records are held, not passed on unchecked' ]] ||
    lib_fail "park reason: $reason"
[ "$(lines_of "$WORK/secret.ndjson")" -eq 0 ] || lib_fail "records of the held topic were delivered"
grep -qx 'sluice_topic_contract_held{topic="customers.secret"} 1' <<<"$metrics" || lib_fail "held gauge: $(grep contract_held <<<"$metrics")"
grep -qx 'sluice_topic_contract_held{topic="customers.avro"} 0' <<<"$metrics" || lib_fail "held gauge: $(grep contract_held <<<"$metrics")"
admin /sinks | jq -e '.topics["customers.secret"].contract | .kind == "registry" and (.held | contains("encrypt_pii"))' >/dev/null ||
    lib_fail "GET /sinks: $(admin /sinks | jq -c '.topics["customers.secret"].contract')"
admin_sink_is pg running && admin_sink_is cache running || lib_fail "the held topic parked the other sinks"
lib_pass "a rule sluice cannot run (ENCRYPT) holds its topic's records and parks its sink with the reason"
sluice_stop

# A registry contract needs a registry format.
jq '.topics["customers.plain"] = {contract: "registry"}' "$WORK/sluice.json" >"$WORK/bad-main.json"
out=$("$SLUICE_BUILD_DIR/sluice" check -c "$WORK/bad-main.json" 2>&1) && lib_fail "sluice check accepted contract \"registry\" on a JSON topic"
grep -qF 'topics["customers.plain"].contract: "registry" (the rules of each record'"'"'s registry schema) needs value_format "confluent"' <<<"$out" ||
    lib_fail "sluice check said: $out"
lib_pass "sluice check refuses contract \"registry\" on a topic without a registry format"
lib_summary
