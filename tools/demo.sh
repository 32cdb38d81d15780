#!/usr/bin/env bash
# The first command of the README: shows what sluice does. It installs what the demo needs
# (tools/setup.sh --demo), builds sluice and the demo's webhook receiver, and starts, on free
# loopback ports under build/demo/: Redis, PostgreSQL (with the table of
# config/examples/postgres-upsert.sql), a receiver that verifies Standard Webhooks signatures
# (tools/webhook-receiver.c) and `sluice dev` (an embedded Kafka) on config/demo/sluice.yaml.
# Then it produces sample customer records in two rounds and shows where they landed: Redis
# hashes, upserted Postgres rows (one updated exactly once), verified webhooks, a tombstone
# that deletes the key and the row, and a record that is not JSON on the dead-letter topic
# with its reason. It stops everything it started when done.
#
#   bash tools/demo.sh [--keep] [--no-setup]
#     --keep      leave everything running after the tour, until Ctrl-C, to look around
#     --no-setup  neither install nor build: use the binaries in $SLUICE_BUILD_DIR (default
#                 build/); tests/integration/test_demo.sh runs it so
# SLUICE_DEMO_DIR moves the demo's directory (default $SLUICE_BUILD_DIR/demo; new, empty or an
# earlier demo's); it is emptied at start and its logs are kept afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
SLUICE_SOURCE_DIR=$(pwd)

keep_running=0
setup=1
for arg in "$@"; do
    case $arg in
        --keep) keep_running=1 ;;
        --no-setup) setup=0 ;;
        *) echo "usage: tools/demo.sh [--keep] [--no-setup]" >&2; exit 2 ;;
    esac
done

: "${SLUICE_BUILD_DIR:=$SLUICE_SOURCE_DIR/build}"
if [ "$setup" = 1 ]; then
    bash tools/setup.sh --demo
    if [ -f "$SLUICE_BUILD_DIR/CMakeCache.txt" ]; then
        # A build directory of one's own (perhaps with the tests on) keeps its settings.
        cmake -S . -B "$SLUICE_BUILD_DIR" >/dev/null
    else
        # The tests (and cmocka, which only the tests need) are left out; tools/test.sh turns them on.
        cmake -S . -B "$SLUICE_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_TESTS=OFF >/dev/null
    fi
    cmake --build "$SLUICE_BUILD_DIR" -j"$(nproc)" --target sluice webhook-receiver
fi
SLUICE_BUILD_DIR=$(cd "$SLUICE_BUILD_DIR" && pwd)
export SLUICE_SOURCE_DIR SLUICE_BUILD_DIR
for tool in sluice webhook-receiver; do
    [ -x "$SLUICE_BUILD_DIR/$tool" ] || { echo "demo: $SLUICE_BUILD_DIR/$tool is missing: build it" >&2; exit 1; }
done

# The servers are started and stopped by the integration tests' helpers, in the demo's directory.
# shellcheck source=tests/integration/lib.sh
source tests/integration/lib.sh
lib_log() { printf 'demo: %s\n' "$*"; }
WORK=${SLUICE_DEMO_DIR:-$SLUICE_BUILD_DIR/demo}
# As root, PostgreSQL runs as `nobody`, which cannot reach a checkout under a private home
# (/root): the demo's directory then goes to /tmp, said below.
if [ -z "${SLUICE_DEMO_DIR:-}" ] && [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -x "$SLUICE_BUILD_DIR"; then
    WORK=${TMPDIR:-/tmp}/sluice-demo
    echo "demo: $SLUICE_BUILD_DIR is out of reach of nobody (PostgreSQL's user here): the demo's files go to $WORK"
fi
# Emptied only when a demo made it (its mark is there): a mistyped SLUICE_DEMO_DIR is not wiped.
if [ -d "$WORK" ] && [ -n "$(ls -A "$WORK")" ] && [ ! -e "$WORK/.sluice-demo" ]; then
    echo "demo: $WORK holds files of something else: choose an empty or new SLUICE_DEMO_DIR" >&2
    exit 1
fi
rm -rf "$WORK"
mkdir -p "$WORK"
: >"$WORK/.sluice-demo"
WORK=$(cd "$WORK" && pwd)
chmod 755 "$WORK"   # PostgreSQL runs as `nobody` when the demo runs as root
export WORK
KEEP_WORK=1         # the logs stay for a look; the next run empties the directory
demo_cleanup() {
    local rc=$?
    lib_cleanup
    echo "demo: stopped everything it started; logs in $WORK"
    return "$rc"
}
trap demo_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# As root, PostgreSQL runs as `nobody`, which must reach its directory; a checkout under a
# private home (/root) is out of its reach.
if [ "$(id -u)" -eq 0 ] && ! runuser -u nobody -- test -x "$WORK"; then
    echo "demo: PostgreSQL runs as nobody, who cannot reach $WORK: set SLUICE_DEMO_DIR to a directory it can" >&2
    exit 1
fi

lib_start_redis --appendonly
lib_start_postgres
"$PG_BINDIR/psql" "$PG_CONNINFO" -X -q -v ON_ERROR_STOP=1 -f config/examples/postgres-upsert.sql \
    -f config/demo/update-count.sql >"$WORK/psql.log" 2>&1 || lib_fail "could not create the table (see psql.log)"

secret="whsec_$(head -c 32 /dev/urandom | base64)"
mkdir -p "$WORK/receiver"
lib__spawn "$WORK/receiver/receiver.log" "$SLUICE_BUILD_DIR/webhook-receiver" --secret "$secret" \
    --port-file "$WORK/receiver/port"
receiver_pid=$LIB_LAST_PID
lib__wait_until "$receiver_pid" test -s "$WORK/receiver/port" || lib_fail "the webhook receiver did not start"
receiver_log=$WORK/receiver/receiver.log

admin_port=$(lib_free_port)
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export CUSTOMERS_DB="$PG_CONNINFO"
receiver_port=$(cat "$WORK/receiver/port")
export CUSTOMERS_WEBHOOK_URL="http://127.0.0.1:$receiver_port/customers"
export CUSTOMERS_WEBHOOK_SECRET="$secret"
export DEMO_ADMIN_LISTEN="127.0.0.1:$admin_port"
sluice_log=$WORK/sluice.log
lib__spawn "$sluice_log" "$SLUICE_BUILD_DIR/sluice" dev -c config/demo/sluice.yaml
sluice_pid=$LIB_LAST_PID
# Everything this run started, for a check that nothing is left (tests/integration/test_demo.sh).
printf '%s\n' "${LIB_PIDS[@]}" "$(head -n 1 "$LIB_PG_DATA/postmaster.pid")" >"$WORK/pids"

has_bootstrap() { grep -q '^sluice dev: embedded Kafka at ' "$sluice_log"; }
lib__wait_until "$sluice_pid" has_bootstrap || lib_fail "sluice dev did not start (see sluice.log)"
KAFKA_BROKERS=$(sed -n 's/^sluice dev: embedded Kafka at //p' "$sluice_log")
export KAFKA_BROKERS
lib_log "sluice dev is running on an embedded Kafka at $KAFKA_BROKERS"

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
psql_rows() { lib_psql "$1"; }
verified() { grep -c '^verified ' "$receiver_log" || true; }
dead_letters() {
    LIB_CONSUME_FORMAT='%h\t%k\n' lib_consume sluice.dlq 100 2>/dev/null | awk -F'\t' -v missing=- "$LIB_AWK_HEADER"'
        { printf "key=%s sink=%s reason=%s\n", $2, header($1, "sluice.sink"), header($1, "sluice.reason") }'
}
# produce LINE...: "key:value" records into customers.v1; "key:" is a tombstone (a null value).
produce() {
    printf '%s\n' "$@" | timeout "$(lib_tmout 30)" kcat -P -q -b "$KAFKA_BROKERS" -t customers.v1 -K: -Z ||
        lib_fail "kcat could not produce to customers.v1"
}

# A predicate for lib_wait_for: every target has the first round.
first_round_landed() {
    [ "$(rcli EXISTS customer:c-1 customer:c-2 customer:c-3)" = 3 ] &&
        [ "$(psql_rows 'SELECT count(*) FROM customers')" = 3 ] &&
        [ "$(verified)" -ge 3 ]
}
# ... and the second: c-1 updated, c-2 deleted, c-4 dead-lettered by each of the three sinks.
second_round_landed() {
    [ "$(rcli HGET customer:c-1 tier)" = platinum ] &&
        [ "$(rcli EXISTS customer:c-2)" = 0 ] &&
        [ "$(psql_rows "SELECT tier || ' ' || updates FROM customers WHERE id = 'c-1'")" = "platinum 1" ] &&
        [ "$(psql_rows "SELECT count(*) FROM customers WHERE id = 'c-2'")" = 0 ] &&
        [ "$(verified)" -ge 5 ] &&
        [ "$(dead_letters | wc -l)" -ge 3 ]
}

echo
echo "== round 1: three new customers"
produce 'c-1:{"id":"c-1","name":"Ada","tier":"gold"}' \
    'c-2:{"id":"c-2","name":"Grace","tier":"silver"}' \
    'c-3:{"id":"c-3","name":"Linus","tier":"bronze"}'
TIMEOUT=60 lib_wait_for first_round_landed
echo "redis: HGETALL customer:c-1"
rcli HGETALL customer:c-1 | paste -d= - - | sed 's/^/  /'

echo
echo "== round 2: c-1 moves to platinum, c-2 is deleted (a tombstone), c-4 is not JSON"
produce 'c-1:{"id":"c-1","name":"Ada","tier":"platinum"}' 'c-2:' 'c-4:this is not JSON'
TIMEOUT=60 lib_wait_for second_round_landed

echo
echo "== where the records landed"
for key in c-1 c-2 c-3; do
    echo "redis: HGETALL customer:$key"
    if [ "$(rcli EXISTS "customer:$key")" = 1 ]; then
        rcli HGETALL "customer:$key" | paste -d= - - | sed 's/^/  /'
    else
        echo "  (no such key: the tombstone deleted it)"
    fi
done
echo "postgres: SELECT id, name, tier, source_offset, updates FROM customers ORDER BY id"
psql_rows 'SELECT id, name, tier, source_offset, updates FROM customers ORDER BY id' | sed 's/^/  /'
echo "  (c-1 was upserted: inserted, then updated in place once; c-2 was deleted by its tombstone)"
echo "webhook receiver: each request's Standard Webhooks signature, verified with the shared secret"
grep -E '^(verified|refused) ' "$receiver_log" | sed 's/^/  /'
echo "dead-letter topic sluice.dlq: the record that is not JSON, once per sink that read it"
dead_letters | sed 's/^/  /'

echo
echo "== where to look"
echo "  redis:        redis-cli -p $REDIS_PORT HGETALL customer:c-1"
echo "  postgres:     $PG_BINDIR/psql '$PG_CONNINFO' -c 'TABLE customers'"
echo "  status page:  http://127.0.0.1:$admin_port/   (JSON: http://127.0.0.1:$admin_port/sinks)"
printf '%s\n' "  dead letters: kcat -C -b $KAFKA_BROKERS -t sluice.dlq -e -f '%h %k %s\\n'"
echo "  produce more: kcat -P -b $KAFKA_BROKERS -t customers.v1 -K:   (lines key:json)"
echo "  logs:         $WORK (sluice.log, receiver/receiver.log, redis/, pg/)"
if [ "$keep_running" = 1 ]; then
    echo "demo: everything keeps running; Ctrl-C stops it"
    # Returns on Ctrl-C (whose trap exits and stops the rest), or when sluice stops (it drains
    # on a SIGINT of its own, e.g. Ctrl-C reaching the whole process group first).
    rc=0
    wait "$sluice_pid" || rc=$?
    lib__forget_pid "$sluice_pid"
    lib_log "sluice stopped (exit status $rc); stopping the rest"
fi
