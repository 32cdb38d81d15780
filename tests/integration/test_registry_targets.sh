#!/usr/bin/env bash
# One data product, three encodings, identical targets: the fixtures' "customers" records as
# Avro and as Protobuf (through the project's registry tool) and as plain JSON go through
# `sluice run` into PostgreSQL upserts and Redis hashes; the three tables hold the same rows and
# the three sets of hashes the same fields and values, each exactly the product's records.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init

FIX=$SLUICE_SOURCE_DIR/tests/fixtures/registry
N=$(wc -l <"$FIX/customers/customers.expected.ndjson")
FORMATS=(avro protobuf plain)
lib_start_kafka customers.avro:2 customers.protobuf:2 customers.plain:2 sluice.dlq:1
lib_start_registry --load "$FIX/registry-state.json"
lib_start_postgres
lib_start_redis
for f in "${FORMATS[@]}"; do
    lib_psql "CREATE TABLE customers_$f (id integer PRIMARY KEY, name text, email text, phone text, street text,
              city text, country text, age integer, score double precision, active boolean, tier text)"
done

sluice_write_config "$WORK/sluice.json" registry-targets
jq --arg url "$REGISTRY_URL" '. + {registry: {url: $url}, topics: {
      "customers.avro": {value_format: "confluent"}, "customers.protobuf": {value_format: "confluent"}}}' \
    "$WORK/sluice.json" >"$WORK/sluice.tmp" && mv "$WORK/sluice.tmp" "$WORK/sluice.json"
columns='"columns": {"id": "$.id", "name": "$.name", "email": "$.email", "phone": "$.phone", "street": "$.street",
    "city": "$.city", "country": "$.country", "age": "$.age", "score": "$.score", "active": "$.active", "tier": "$.tier"}'
for f in "${FORMATS[@]}"; do
    pg_sink_file "pg-$f" "customers.$f" "\"table\": \"customers_$f\", \"key_columns\": [\"id\"], $columns"
    redis_sink_file "$WORK/sinks.d/redis-$f.json" "redis-$f" "customers.$f" "{\"key\": \"$f:{\$.id}\", \"shape\": \"hash\"}"
done
"$SLUICE_BUILD_DIR/sluice" check -c "$WORK/sluice.json" >/dev/null || lib_fail "sluice check refused the sinks"
sluice_start "$WORK/sluice.json"

for f in "${FORMATS[@]}"; do
    timeout "$(lib_tmout 60)" kcat -P -q -b "$KAFKA_BROKERS" -t "customers.$f" -z none "$FIX"/customers/customers.$f.bin.* ||
        lib_fail "kcat could not produce customers.$f"
done
rows_are() { [ "$(lib_psql "SELECT count(*) FROM customers_$1")" = "$2" ]; }
keys_are() { [ "$(rcli --scan --pattern "$1:*" | wc -l)" = "$2" ]; }
for f in "${FORMATS[@]}"; do
    TIMEOUT=60 lib_wait_for rows_are "$f" "$N" || lib_fail "customers_$f has $(lib_psql "SELECT count(*) FROM customers_$f") rows"
    TIMEOUT=60 lib_wait_for keys_are "$f" "$N" || lib_fail "redis has $(rcli --scan --pattern "$f:*" | wc -l) $f keys"
done

# The rows: each table equals the others, and the plain one equals the product's records.
for f in avro protobuf; do
    diff=$(lib_psql "SELECT count(*) FROM ((TABLE customers_$f EXCEPT TABLE customers_plain)
                     UNION ALL (TABLE customers_plain EXCEPT TABLE customers_$f)) d")
    [ "$diff" = 0 ] || lib_fail "customers_$f and customers_plain differ in $diff rows: $(lib_psql "TABLE customers_$f EXCEPT TABLE customers_plain")"
done
jq -r '[.id, .name, .email, .phone, .street, .city, .country, .age, .score, .active, .tier] | @tsv' \
    "$FIX/customers/customers.expected.ndjson" | sort >"$WORK/expected.tsv"
lib_psql "COPY (SELECT id, name, email, phone, street, city, country, age, score, active, tier FROM customers_plain
          ORDER BY id) TO STDOUT" | sed 's/\tt\t/\ttrue\t/; s/\tf\t/\tfalse\t/' | sort >"$WORK/plain.tsv"
diff -u "$WORK/expected.tsv" "$WORK/plain.tsv" || lib_fail "the rows are not the product's records"
lib_pass "PostgreSQL: the Avro, Protobuf and plain JSON tables hold the same $N rows, the product's records"

# The hashes: field by field.
hash_of() { rcli HGETALL "$1" | paste -d= - - | sort | paste -sd'|'; }
while read -r id; do
    want=$(hash_of "plain:$id")
    [ -n "$want" ] || lib_fail "no hash plain:$id"
    for f in avro protobuf; do
        got=$(hash_of "$f:$id")
        [ "$got" = "$want" ] || lib_fail "$f:$id is $got, plain:$id is $want"
    done
done < <(jq -r '.id' "$FIX/customers/customers.expected.ndjson")
first=$(jq -r 'select(.id == 1) | to_entries | map("\(.key)=\(.value)") | sort | join("|")' "$FIX/customers/customers.expected.ndjson")
[ "$(hash_of avro:1)" = "$first" ] || lib_fail "avro:1 is $(hash_of avro:1), want $first"
lib_pass "Redis: the Avro, Protobuf and plain JSON hashes hold the same fields and values for all $N customers"

[ "$(LIB_CONSUME_FORMAT='%o\n' lib_consume sluice.dlq 1 | wc -l)" -eq 0 ] || lib_fail "something was dead-lettered"
sluice_stop
lib_summary
