#!/usr/bin/env bash
# config/examples (issue 15): every sink file there passes `sluice check` (with the environment
# variables it references set to placeholders); the Postgres example's CREATE TABLE runs on a
# real PostgreSQL and records delivered through the example, unchanged, upsert and delete its
# rows (so the table and the mapping agree); the Redis example, unchanged, keeps its hashes; and
# the webhook example (with its allow_private_networks line uncommented, for the loopback) is
# verified by the Node receiver beside it with the official `standardwebhooks` library, when
# tools/setup.sh could install that (Node.js and npm present; otherwise this part says SKIP).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
lib_init
EXAMPLES=$SLUICE_SOURCE_DIR/config/examples

# --- sluice check on all of them ------------------------------------------------------------
mkdir -p "$WORK/check/sinks.d"
cp "$EXAMPLES"/*.yaml "$WORK/check/sinks.d/"
nfiles=$(find "$WORK/check/sinks.d" -name '*.yaml' | wc -l)
[ "$nfiles" -eq 6 ] || lib_fail "config/examples should hold 6 sink files (redis, postgres, webhook, 3 http), has $nfiles"
printf 'sinks_dir: sinks.d\n' >"$WORK/check/sluice.yaml"
placeholders=(REDIS_URL=redis://cache.internal:6379/0 CUSTOMERS_DB='host=db.internal dbname=app'
    CUSTOMERS_WEBHOOK_URL=https://hooks.example.com/sluice/customers
    CUSTOMERS_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw HUBSPOT_TOKEN=x
    SALESFORCE_CLIENT_ID=x SALESFORCE_CLIENT_SECRET=x SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/X)
got=$(env "${placeholders[@]}" "$SLUICE_BUILD_DIR/sluice" check -c "$WORK/check/sluice.yaml" 2>&1) ||
    lib_fail "sluice check refused config/examples: $got"
[ "$got" = "$WORK/check/sluice.yaml: ok (6 sinks)" ] || lib_fail "sluice check said: $got"
lib_pass "sluice check accepts the 6 sink files of config/examples"

# --- Postgres and Redis: the examples as they are, against real servers -------------------------
lib_start_kafka customers.v1:2 sluice.dlq:1
lib_start_postgres
lib_start_redis
"$PG_BINDIR/psql" "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -f "$EXAMPLES/postgres-upsert.sql" \
    >"$WORK/psql.log" 2>&1 || lib_fail "postgres-upsert.sql failed: $(cat "$WORK/psql.log")"
lib_pass "postgres-upsert.sql creates its table"

sluice_write_config "$WORK/sluice.json" examples-test
cp "$EXAMPLES/postgres-upsert.yaml" "$EXAMPLES/redis-hash-cache.yaml" "$WORK/sinks.d/"

# The webhook example goes to the Node receiver when its library is installed.
node_dir=$SLUICE_SOURCE_DIR/tests/integration/node
node_receiver=0
if command -v node >/dev/null && [ -d "$node_dir/node_modules/standardwebhooks" ]; then
    node_receiver=1
    mkdir -p "$WORK/node"
    cp "$EXAMPLES/webhook-receiver.mjs" "$WORK/node/"
    ln -s "$node_dir/node_modules" "$WORK/node/node_modules"
    CUSTOMERS_WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64)"
    export CUSTOMERS_WEBHOOK_SECRET
    node_port=$(lib_free_port)
    PORT=$node_port lib__spawn "$WORK/node/receiver.log" node "$WORK/node/webhook-receiver.mjs"
    node_pid=$LIB_LAST_PID
    lib__wait_until "$node_pid" grep -q "^listening on $node_port\$" "$WORK/node/receiver.log" ||
        lib_fail "the Node receiver did not start: $(cat "$WORK/node/receiver.log")"
    export CUSTOMERS_WEBHOOK_URL=http://127.0.0.1:$node_port/customers
    grep -q '^  # allow_private_networks: true$' "$EXAMPLES/webhook-signed.yaml" ||
        lib_fail "webhook-signed.yaml lacks its commented allow_private_networks line"
    sed 's/^  # allow_private_networks: true$/  allow_private_networks: true/' \
        "$EXAMPLES/webhook-signed.yaml" >"$WORK/sinks.d/webhook-signed.yaml"
fi

export CUSTOMERS_DB=$PG_CONNINFO REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
sluice_start "$WORK/sluice.json"
printf '%s\t%s\n' c-1 '{"id":"c-1","name":"Ada","tier":"gold"}' \
    c-2 '{"id":"c-2","name":"Grace","tier":"silver","since":2019}' \
    c-3 '{"id":"c-3","name":"Linus"}' >"$WORK/round1.tsv"
lib_produce customers.v1 "$WORK/round1.tsv"
rows_are() { [ "$(lib_psql "$1")" = "$2" ]; }
# wait_rows SQL WANT: until SQL answers WANT; sluice exiting (it refuses a table that does not
# fit the mapping) fails at once with its reason.
wait_rows() {
    local rc=0
    TIMEOUT=60 lib__wait_until "$SLUICE_PID" rows_are "$1" "$2" || rc=$?
    case $rc in
        0) ;;
        2) lib_fail "sluice exited: $(tail -n 5 "$SLUICE_LOG")" ;;
        *) lib_fail "timed out waiting for '$1' to be '$2' (it is '$(lib_psql "$1")')" ;;
    esac
}
wait_rows 'SELECT count(*) FROM customers' 3
# The second round only once the first is in, so that c-1's update is a batch of its own.
printf '%s\t%s\n' c-1 '{"id":"c-1","name":"Ada Lovelace","tier":"platinum"}' >"$WORK/round2.tsv"
lib_produce customers.v1 "$WORK/round2.tsv"
redis_produce_tombstone customers.v1 c-2
wait_rows "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM customers" 'c-1:Ada Lovelace,c-3:Linus'

rows=$(lib_psql "SELECT id, name, coalesce(tier, 'NULL'), doc::text, source_offset >= 0, updated_at IS NOT NULL
                 FROM customers ORDER BY id")
expect='c-1|Ada Lovelace|platinum|{"id": "c-1", "name": "Ada Lovelace", "tier": "platinum"}|t|t
c-3|Linus|NULL|{"id": "c-3", "name": "Linus"}|t|t'
[ "$rows" = "$expect" ] || lib_fail "the customers table holds:
$rows
expected:
$expect"
lib_pass "postgres-upsert.yaml upserts its table's rows (c-1 updated, c-3 without a tier) and a tombstone deletes c-2"

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
hash_is() { [ "$(rcli HGETALL "$1" | paste -d= - - | LC_ALL=C sort | paste -sd' ')" = "$2" ]; }
TIMEOUT=30 lib_wait_for hash_is customer:c-1 'id=c-1 name=Ada Lovelace tier=platinum'
hash_is customer:c-3 'id=c-3 name=Linus' || lib_fail "customer:c-3 holds: $(rcli HGETALL customer:c-3 | paste -sd' ')"
[ "$(rcli EXISTS customer:c-2)" = 0 ] || lib_fail "the tombstone left customer:c-2"
lib_pass "redis-hash-cache.yaml keeps one hash per customer (c-1 replaced, c-2 deleted)"

if [ "$node_receiver" = 1 ]; then
    verified_lines() { grep -c '^verified webhook-id=customer-hook:customers\.v1:' "$WORK/node/receiver.log"; }
    five_verified() { [ "$(verified_lines)" -ge 5 ]; }
    TIMEOUT=60 lib_wait_for five_verified
    ! grep -q '^refused ' "$WORK/node/receiver.log" || lib_fail "the Node receiver refused: $(grep '^refused ' "$WORK/node/receiver.log")"
    for want in 'key=c-1 value={"id":"c-1","name":"Ada","tier":"gold"}' \
        'key=c-1 value={"id":"c-1","name":"Ada Lovelace","tier":"platinum"}' \
        'key=c-2 value={"id":"c-2","name":"Grace","tier":"silver","since":2019}' 'key=c-2 value=null' \
        'key=c-3 value={"id":"c-3","name":"Linus"}'; do
        grep -qF " $want" "$WORK/node/receiver.log" || lib_fail "the Node receiver did not verify $want: $(cat "$WORK/node/receiver.log")"
    done
    lib_pass "webhook-signed.yaml: the Node receiver verified all 5 requests with the standardwebhooks library"
    # A request signed with another secret is refused: the receiver does check.
    status=$(curl -s -o /dev/null -w '%{http_code}' -m "$(lib_tmout 10)" -H 'webhook-id: msg_forged' \
        -H "webhook-timestamp: $(date +%s)" -H 'webhook-signature: v1,MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq=' \
        -d '{"key":"c-9"}' "$CUSTOMERS_WEBHOOK_URL")
    [ "$status" = 401 ] || lib_fail "the Node receiver answered $status to a forged signature"
    grep -q '^refused webhook-id=msg_forged ' "$WORK/node/receiver.log" || lib_fail "the Node receiver did not print the refusal"
    lib_pass "webhook-receiver.mjs refuses a forged signature (401)"
else
    echo "SKIP: webhook-receiver.mjs: node or tests/integration/node/node_modules missing (bash tools/setup.sh installs it where npm is)"
fi
sluice_stop
lib_summary
