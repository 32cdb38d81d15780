#!/usr/bin/env bash
# Data contracts at the edge (topics.<name>.contract.json_schema), through `sluice run`:
# - 10,000 customer records of which a seeded 400 break the contract (100 each: an email that is
#   not one, a negative age, a missing tier, a country that is not two capitals); the PostgreSQL
#   table and the Redis cache hold exactly the 9,600 valid ones, the dead-letter topic exactly the
#   400 others, once each (not once per sink), each with the rule it broke (sluice.rule and
#   Confluent's __rule.name/__rule.mode), sluice.stage=contract and a reason a person can act on;
#   /metrics and GET /sinks count them by rule;
# - the same contract protects an Avro topic: it judges the decoded JSON;
# - `sluice check` refuses a schema with an unsupported keyword, naming the schema file's line and
#   the JSON path in it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

FIX=$SLUICE_SOURCE_DIR/tests/fixtures
N=10000
lib_start_kafka customers.v1:4 customers.avro:1 sluice.dlq:1
lib_start_registry --load "$FIX/registry/registry-state.json"
lib_start_postgres
lib_start_redis
lib_psql "CREATE TABLE customers (id integer PRIMARY KEY, name text, email text, country text, age integer, tier text)"
mkdir -p "$WORK/contracts"
cp "$FIX/contracts/customers.v1.json" "$WORK/contracts/"

sluice_write_config "$WORK/sluice.json" contract-test
jq --arg url "$REGISTRY_URL" '. + {registry: {url: $url}, topics: {
      "customers.v1": {contract: {json_schema: "contracts/customers.v1.json"}},
      "customers.avro": {value_format: "confluent", contract: {json_schema: "contracts/customers.v1.json"}}}}' \
    "$WORK/sluice.json" >"$WORK/sluice.tmp" && mv "$WORK/sluice.tmp" "$WORK/sluice.json"
sluice_admin_on "$WORK/sluice.json"
pg_sink_file pg customers.v1 '"table": "customers", "key_columns": ["id"],
    "columns": {"id": "$.id", "name": "$.name", "email": "$.email", "country": "$.country", "age": "$.age", "tier": "$.tier"}'
redis_sink_file "$WORK/sinks.d/redis.json" cache customers.v1 '{"key": "customer:{$.id}", "shape": "hash"}'
cat >"$WORK/sinks.d/avro.json" <<JSON
{ "name": "avro-file", "type": "file", "topics": ["customers.avro"], "file": { "path": "$WORK/avro.ndjson" } }
JSON
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/sluice.json" >/dev/null || lib_fail "sluice check refused a valid contract"

# Ids 1..N; by id % 100: 7 an email that is not one, 13 a negative age, 29 no tier, 41 a lower-case country.
awk -v n=$N 'BEGIN {
    split("BRONZE SILVER GOLD", tiers, " ")
    for (id = 1; id <= n; id++) {
        email = "customer" id "@example.com"; age = 20 + id % 50; tier = "\"tier\":\"" tiers[id % 3 + 1] "\","; country = "PT"
        if (id % 100 == 7) email = "bob@"
        if (id % 100 == 13) age = -1
        if (id % 100 == 29) tier = ""
        if (id % 100 == 41) country = "pt"
        printf "%d\t{\"id\":%d,\"name\":\"Customer %d\",\"email\":\"%s\",%s\"country\":\"%s\",\"age\":%d}\n", id, id, id, email, tier, country, age
    }
}' >"$WORK/records.tsv"
lib_produce customers.v1 "$WORK/records.tsv"
sluice_start "$WORK/sluice.json"

VALID=$((N - 4 * N / 100))
rows_are() { [ "$(lib_psql "SELECT count(*) FROM customers")" = "$1" ]; }
TIMEOUT=120 lib_wait_for rows_are "$VALID" || lib_fail "the table has $(lib_psql "SELECT count(*) FROM customers") rows, want $VALID"
TIMEOUT=60 lib_wait_for topic_has sluice.dlq $((4 * N / 100))
keys_are() { [ "$(rcli --scan --pattern 'customer:*' | wc -l)" = "$1" ]; }
TIMEOUT=60 lib_wait_for keys_are "$VALID" || lib_fail "redis holds $(rcli --scan --pattern 'customer:*' | wc -l) customers, want $VALID"

# Exactly the valid ids in the table and the cache.
awk '{ m = $1 % 100; if (m != 7 && m != 13 && m != 29 && m != 41) print $1 }' "$WORK/records.tsv" | sort >"$WORK/valid.ids"
lib_psql "SELECT id FROM customers" | sort >"$WORK/pg.ids"
diff -q "$WORK/valid.ids" "$WORK/pg.ids" >/dev/null || lib_fail "the table's ids are not exactly the valid ones"
rcli --scan --pattern 'customer:*' | sed 's/^customer://' | sort >"$WORK/redis.ids"
diff -q "$WORK/valid.ids" "$WORK/redis.ids" >/dev/null || lib_fail "the cache's ids are not exactly the valid ones"
lib_pass "PostgreSQL and Redis hold exactly the $VALID records that meet the contract"

# Exactly the others on the dead-letter topic, once each, with rule and reason.
LIB_CONSUME_FORMAT='%h\t%s\n' lib_consume sluice.dlq $((N)) >"$WORK/dlq"
[ "$(wc -l <"$WORK/dlq")" -eq $((4 * N / 100)) ] || lib_fail "$(wc -l <"$WORK/dlq") dead letters, want $((4 * N / 100))"
awk -F'\t' -v missing=- "$LIB_AWK_HEADER"'
    { id = $2; sub(/^\{"id":/, "", id); sub(/,.*/, "", id)
      print id "\t" header($1, "sluice.stage") "\t" header($1, "sluice.rule") "\t" header($1, "__rule.name") "\t" header($1, "__rule.mode") "\t" header($1, "sluice.sink") "\t" header($1, "sluice.reason") }' \
    "$WORK/dlq" | sort -n >"$WORK/letters"
awk -F'\t' '{ print $1 }' "$WORK/letters" | sort >"$WORK/dlq.ids"
awk '{ m = $1 % 100; if (m == 7 || m == 13 || m == 29 || m == 41) print $1 }' "$WORK/records.tsv" | sort >"$WORK/bad.ids"
diff -q "$WORK/bad.ids" "$WORK/dlq.ids" >/dev/null || lib_fail "the dead letters are not exactly the 400 records that break the contract"
while IFS=$'\t' read -r id stage rule rname rmode sink reason; do
    case $((id % 100)) in
        7) want_rule='format at $.properties.email.format'; want_reason='contract: $.email: "bob@" is not an email (format)' ;;
        13) want_rule='minimum at $.properties.age.minimum'; want_reason='contract: $.age: -1 is less than the minimum 0 (minimum)' ;;
        29) want_rule='required at $.required'; want_reason='contract: $: required property "tier" is missing (required)' ;;
        41) want_rule='pattern at $.properties.country.pattern'; want_reason='contract: $.country: "pt" does not match the pattern "^[A-Z]{2}$" (pattern)' ;;
    esac
    [ "$stage|$rule|$rname|$rmode|$sink" = "contract|$want_rule|$want_rule|READ|-" ] ||
        lib_fail "letter of id $id: stage|rule|__rule.name|__rule.mode|sink = $stage|$rule|$rname|$rmode|$sink"
    [ "$reason" = "$want_reason" ] || lib_fail "letter of id $id: reason '$reason', want '$want_reason'"
done <"$WORK/letters"
lib_pass "the dead-letter topic holds exactly the 400 others, once each, with the rule they broke and why"

metrics=$(admin /metrics)
for rule in 'format at $.properties.email.format' 'minimum at $.properties.age.minimum' 'required at $.required' \
            'pattern at $.properties.country.pattern'; do
    line="sluice_topic_contract_violations_total{topic=\"customers.v1\",rule=\"$rule\"} 100"
    grep -qxF "$line" <<<"$metrics" || lib_fail "/metrics lacks: $line"
done
grep -qx "sluice_topic_contract_valid_total{topic=\"customers.v1\"} $VALID" <<<"$metrics" || lib_fail "valid count: $(grep contract_valid <<<"$metrics")"
[ "$(admin /sinks | jq -r '.topics["customers.v1"].contract.valid')" = "$VALID" ] &&
    admin /sinks | jq -e '.topics["customers.v1"].contract.last_violation | startswith("[")' >/dev/null ||
    lib_fail "GET /sinks: $(admin /sinks | jq -c '.topics["customers.v1"].contract')"
lib_pass "/metrics and GET /sinks count the valid records and the violations by rule"

# The contract judges a decoded data product too: the fixtures' Avro customers all meet it.
timeout "$(lib_tmout 60)" kcat -P -q -b "$KAFKA_BROKERS" -t customers.avro -z none "$FIX"/registry/customers/customers.avro.bin.* ||
    lib_fail "kcat could not produce the Avro records"
M=$(wc -l <"$FIX/registry/customers/customers.expected.ndjson")
TIMEOUT=60 lib_wait_for has_lines "$WORK/avro.ndjson" "$M" || lib_fail "$(lines_of "$WORK/avro.ndjson") of $M Avro records"
grep -qx "sluice_topic_contract_valid_total{topic=\"customers.avro\"} $M" <<<"$(admin /metrics)" ||
    lib_fail "the Avro topic's valid count: $(admin /metrics | grep 'contract_valid')"
lib_pass "the $M decoded Avro records were judged by the same contract and met it"
sluice_stop

# A schema sluice cannot enforce fully is refused at load, with the schema's own line and path.
printf '{\n  "type": "object",\n  "properties": {\n    "email": { "type": "string", "format": "hostname" }\n  }\n}\n' \
    >"$WORK/contracts/bad.json"
jq '.topics["customers.v1"].contract.json_schema = "contracts/bad.json"' "$WORK/sluice.json" >"$WORK/bad-main.json"
out=$("$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/bad-main.json" 2>&1) && lib_fail "sluice check accepted an unsupported format"
grep -qF "contracts/bad.json:4:44: \$.properties.email.format: unsupported format \"hostname\"" <<<"$out" ||
    lib_fail "sluice check said: $out"
lib_pass "sluice check refuses an unsupported format with the schema file's line and the JSON path"
lib_summary
