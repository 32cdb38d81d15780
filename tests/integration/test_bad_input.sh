#!/usr/bin/env bash
# A corpus of bad records mixed into good ones, on one topic read by four sinks that each need
# something different of a record: a redis hash whose key comes from $.id, a postgres upsert
# with key column id <- $.id and an integer column, an http sink whose URL and body map fields,
# and a webhook that forwards any JSON. Bad kinds: values that are not JSON (truncated, text,
# empty, trailing garbage, control bytes, Latin-1, nested 3000 deep), JSON that is not an object
# (array, number, string), a missing or null key field, a string or an out-of-range number for
# the integer column, a NUL escape (PostgreSQL text cannot hold it), a tombstone where the key
# comes from the value, a key that is not UTF-8, and records over the sinks' max_record_bytes.
# For every (record, sink) the outcome is written down: each dead letter comes out exactly once
# per sink that cannot take the record, with sluice.sink, sluice.reason (naming the problem),
# sluice.topic/partition/offset pointing at the source record, sluice.timestamp, and the
# source's key and value byte for byte; /metrics counts dead letters and deliveries per sink
# exactly; every other record reaches its target (hashes, rows, requests, compared field by
# field); the end of every partition is committed; sluice stays up and exits 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/redis_lib.sh"
source "$(dirname "$0")/http_lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
lib_init

SINKS=(cache db api hook)
lib_start_kafka items:3 sluice.dlq:1
# shellcheck disable=SC2119 # started without --appendonly
lib_start_redis
lib_start_postgres
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
lib_psql "CREATE TABLE items (id text PRIMARY KEY, qty integer, name text)"
sluice_write_config "$WORK/sluice.json" bad-input
BATCH='"batch": { "max_records": 50, "linger_ms": 20 }, "retry": { "max_attempts": 5, "initial_backoff_ms": 50, "max_backoff_ms": 500 }'
cat >"$WORK/sinks.d/cache.json" <<JSON
{ "name": "cache", "type": "redis", "topics": ["items"], $BATCH, "max_record_bytes": 8192,
  "redis": { "url": "redis://127.0.0.1:$REDIS_PORT/0", "key": "item:{\$.id}", "shape": "hash" } }
JSON
cat >"$WORK/sinks.d/db.json" <<JSON
{ "name": "db", "type": "postgres", "topics": ["items"], $BATCH,
  "postgres": { "conninfo": "$PG_CONNINFO", "table": "items", "key_columns": ["id"],
                "columns": { "id": "\$.id", "qty": "\$.qty", "name": "\$.name" } } }
JSON
cat >"$WORK/sinks.d/api.json" <<JSON
{ "name": "api", "type": "http", "topics": ["items"], $BATCH,
  "http": { "method": "PUT", "url": "$RECEIVER_URL/api/items/{\$.id}",
            "body": { "item": { "name": "{\$.name}", "qty": "{\$.qty}" }, "source": "{topic}/{partition}/{offset}" },
            "allow_private_networks": true } }
JSON
cat >"$WORK/sinks.d/hook.json" <<JSON
{ "name": "hook", "type": "webhook", "topics": ["items"], $BATCH, "max_record_bytes": 2048,
  "webhook": { "url": "$RECEIVER_URL/hook", "allow_private_networks": true } }
JSON
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/sluice.json" >"$WORK/check.out" 2>&1 ||
    lib_fail "sluice check refused the sinks: $(cat "$WORK/check.out")"

# ---- the corpus ------------------------------------------------------------------------------
# rec NAME KEY VALUE CACHE DB API HOOK: a record (VALUE is a printf format, so \xff and \n can be
# written; "@null" is a tombstone, "@empty" a value of zero bytes) and what each sink must do
# with it: "ok" (delivered), "skip" (left out without a dead letter), or an extended regular
# expression the reason of its one dead letter from that sink must match.
NAMES=()
declare -A KEY VALUE_FILE EXPECT
rec() {
    local name=$1 key=$2 value=$3
    NAMES+=("$name")
    KEY[$name]=$key
    VALUE_FILE[$name]=$WORK/values/$name
    mkdir -p "$WORK/values"
    if [ "$value" = @null ]; then
        rm -f "${VALUE_FILE[$name]}"
    elif [ "$value" = @empty ]; then
        : >"${VALUE_FILE[$name]}"
    else
        # shellcheck disable=SC2059 # the value is a printf format on purpose
        printf -- "$value" >"${VALUE_FILE[$name]}"
    fi
    EXPECT[$name,cache]=$4
    EXPECT[$name,db]=$5
    EXPECT[$name,api]=$6
    EXPECT[$name,hook]=$7
}
good() {   # good N: a record every sink takes
    rec "good-$1" "good-$1" "{\"id\":\"g-$1\",\"qty\":$1,\"name\":\"item $1\"}" ok ok ok ok
}
# One wording for a value that is not JSON, everywhere: "value is not JSON: <reason> at byte N".
# The redis, postgres and webhook sinks read values with lib/json.c, so the same value gets the
# same reason from each (not_json REASON N); the http sink's comes from the router's parser.
NOT_JSON='^value is not JSON: .+ at byte [0-9]+$'
not_json() { printf '^value is not JSON: %s at byte %s$' "$1" "$2"; }
NOT_OBJECT_REDIS='^(hash: the value is an? [a-z]+, not a JSON object|key template: \$\.id is missing)'
NO_ID_PG='^key column "id" is missing or null in the value'
NO_ID_API='^url: missing field \$\.id \(write \{\$\.id\?\} to allow it\)'

for i in $(seq 0 9); do good "$i"; done
r=$(not_json 'unexpected end of the text' 18)
rec truncated   bad-truncated   '{"id":"t-1","qty":'                       "$r" "$r" "$NOT_JSON" "$r"
r=$(not_json 'unexpected character' 0)
rec plain-text  bad-text        'hello, world'                            "$r" "$r" "$NOT_JSON" "$r"
r=$(not_json 'text after the value' 32)
rec trailing    bad-trailing    '{"id":"t-2","qty":1,"name":"x"} tail'    "$r" "$r" "$NOT_JSON" "$r"
r=$(not_json 'unexpected end of the text' 0)
rec empty       bad-empty       @empty                                    "$r" "$r" "$NOT_JSON" "$r"
r=$(not_json 'control character in a string' 21)
rec binary      bad-binary      '{"id":"t-3",\n"name":"\x00\x01"}\n'       "$r" "$r" "$NOT_JSON" "$r"
for i in $(seq 10 19); do good "$i"; done
rec array       bad-array       '[1,2,3]'                                 "$NOT_OBJECT_REDIS" "$NO_ID_PG" "$NO_ID_API" ok
rec number      bad-number      '42'                                      "$NOT_OBJECT_REDIS" "$NO_ID_PG" "$NO_ID_API" ok
rec string      bad-string      '"just text"'                             "$NOT_OBJECT_REDIS" "$NO_ID_PG" "$NO_ID_API" ok
rec no-id       bad-no-id       '{"qty":5,"name":"no id"}'                '^key template: \$\.id is missing' "$NO_ID_PG" "$NO_ID_API" ok
# A null field would leave a hole in the URL (/api/items/ is the collection): refused too.
rec null-id     bad-null-id     '{"id":null,"qty":5,"name":"null id"}'    '^key template: \$\.id is null' "$NO_ID_PG" \
    '^url: field \$\.id is empty or null, which would leave a hole in the URL' ok
# Latin-1 text where JSON must be UTF-8; a NUL escape (valid JSON, but PostgreSQL text cannot
# hold NUL); arrays nested 3000 deep (each parser has a depth limit; none may crash).
r=$(not_json 'not valid UTF-8' 31)
rec latin1      bad-latin1      '{"id":"u-1","qty":1,"name":"caf\xe9"}'    "$r" "$r" "$NOT_JSON" "$r"
rec nul-escape  bad-nul-escape  '{"id":"n-1","qty":1,"name":"a\\u0000b"}' \
    ok '^column "name": a string holds a NUL character, which PostgreSQL text cannot store' ok ok
rec deep        bad-deep        "{\"id\":\"d-1\",\"x\":$(printf '%*s' 3000 '' | tr ' ' '[')$(printf '%*s' 3000 '' | tr ' ' ']')}" \
    "$(not_json 'nested too deep' 2063)" "$(not_json 'nested too deep' 2063)" '^value is not JSON: maximum parsing depth.* at byte [0-9]+$' \
    '^record of 6025 bytes is over max_record_bytes \(2048\)$'
for i in $(seq 20 29); do good "$i"; done
rec qty-text    bad-qty-text    '{"id":"w-1","qty":"abc","name":"text in an integer"}' \
    ok '^postgres refused the row: 22P02: invalid input syntax for type integer: "abc"' ok ok
rec qty-huge    bad-qty-huge    '{"id":"w-2","qty":12345678901,"name":"out of range"}' \
    ok '^postgres refused the row: 22003: value "12345678901" is out of range for type integer' ok ok
rec tombstone   bad-tombstone   @null \
    '^key template: a tombstone has no value to fill \{\$\.id\}' '^tombstone: key column "id" is read from the value' skip ok
rec key-latin1  $'\xff\xfe-key' '{"id":"k-1","qty":7,"name":"key not UTF-8"}' ok ok ok '^key is not valid UTF-8'
for i in $(seq 30 39); do good "$i"; done

# One kcat per record, in corpus order: a file is sent as one value, byte for byte (newlines
# and NUL included); a tombstone and an empty value go through the key delimiter (-Z: an empty
# value is null).
produce_corpus() {
    local name
    for name in "$@"; do
        if [ ! -e "${VALUE_FILE[$name]}" ]; then
            printf '%s\t\n' "${KEY[$name]}" | kcat -P -q -b "$KAFKA_BROKERS" -t items -K '\t' -Z
        elif [ ! -s "${VALUE_FILE[$name]}" ]; then
            printf '%s\t\n' "${KEY[$name]}" | kcat -P -q -b "$KAFKA_BROKERS" -t items -K '\t'
        else
            kcat -P -q -b "$KAFKA_BROKERS" -t items -k "${KEY[$name]}" "${VALUE_FILE[$name]}"
        fi || lib_fail "kcat could not produce $name"
    done
}

# big_value ID LEN: a good JSON object of exactly LEN bytes.
big_value() {
    local head="{\"id\":\"$1\",\"qty\":1,\"name\":\"" pad
    pad=$(($2 - ${#head} - 2))
    printf '%s%s"}' "$head" "$(head -c "$pad" /dev/zero | tr '\0' 'x')"
}

sluice_start "$WORK/sluice.json"
ADMIN_PORT=$(rel_admin_port "$SLUICE_LOG")
produce_corpus "${NAMES[@]}"
lib_log "produced ${#NAMES[@]} records"

# Last: max_record_bytes (2048 in hook, 8192 in cache, the default 1 MiB in db and api). The
# limit counts key + value: 2048 bytes in all pass, 2049 are over for hook only.
first_big=${#NAMES[@]}
rec big-at-limit big-at-limit "$(big_value b-1 $((2048 - 12)))" ok ok ok ok
rec big-over     big-over-lim "$(big_value b-2 $((2049 - 12)))" ok ok ok '^record of 2049 bytes is over max_record_bytes \(2048\)$'
rec big-huge     big-huge-rec "$(big_value b-3 200000)" \
    '^record of 200012 bytes is over max_record_bytes \(8192\)$' ok ok '^record of 200012 bytes is over max_record_bytes \(2048\)$'
for i in $(seq 40 44); do good "$i"; done
produce_corpus "${NAMES[@]:$first_big}"
N=${#NAMES[@]}

# ---- what each sink must end with ------------------------------------------------------------
declare -A WANT_DL WANT_OK WANT_SKIP
for s in "${SINKS[@]}"; do WANT_DL[$s]=0; WANT_OK[$s]=0; WANT_SKIP[$s]=0; done
for name in "${NAMES[@]}"; do
    for s in "${SINKS[@]}"; do
        case ${EXPECT[$name,$s]} in
            ok) WANT_OK[$s]=$((WANT_OK[$s] + 1)) ;;
            skip) WANT_SKIP[$s]=$((WANT_SKIP[$s] + 1)) ;;
            *) WANT_DL[$s]=$((WANT_DL[$s] + 1)) ;;
        esac
    done
done
DL_TOTAL=0
for s in "${SINKS[@]}"; do DL_TOTAL=$((DL_TOTAL + WANT_DL[$s])); done

# Everything is finished (applied, skipped or dead-lettered and acknowledged) once the group
# committed the end of every partition.
# (not fatal here: the checks below say what is missing, should anything be)
TIMEOUT=90 lib__wait_until "$SLUICE_PID" rel_committed_at_end bad-input items || lib_log "the end of the topic is not committed"
TIMEOUT=10 lib__wait_until "$SLUICE_PID" topic_has sluice.dlq "$DL_TOTAL" || lib_log "fewer dead letters than expected"
sleep 1   # a late or repeated delivery would show up now
rel_alive "$SLUICE_PID" "sluice"
lib_pass "sluice is alive after $N records"

# ---- dead letters: one per (record, sink) that cannot take it, reason, origin, bytes ---------
lib_log "checking"
rel_dump_topic items >"$WORK/source.tsv"
rel_dead_letters sluice.dlq >"$WORK/dlq.tsv"
[ "$(wc -l <"$WORK/source.tsv")" -eq "$N" ] || lib_fail "the topic holds $(wc -l <"$WORK/source.tsv") records, produced $N"
declare -A NAME_OF_KEY SRC_NAME SRC_KEY SRC_VALUE
for name in "${NAMES[@]}"; do NAME_OF_KEY[$(rel_hex "${KEY[$name]}")]=$name; done
while IFS=$'\t' read -r p o k v _; do
    name=${NAME_OF_KEY[$k]:-}
    [ -n "$name" ] || lib_fail "the topic holds a record with an unknown key at $p/$o"
    want=-
    [ -e "${VALUE_FILE[$name]}" ] && want=$(rel_hex_file "${VALUE_FILE[$name]}")
    [ "$v" = "$want" ] || lib_fail "kcat did not produce $name as written"
    SRC_NAME[$p/$o]=$name; SRC_KEY[$p/$o]=$k; SRC_VALUE[$p/$o]=$v
    printf '%s\t%s\t%s\t%s\n' "$name" "$p" "$o" "${KEY[$name]}" >>"$WORK/positions.tsv"
done <"$WORK/source.tsv"
jq -R -n '[inputs | split("\t") | {(.[0]): {p: (.[1] | tonumber), o: (.[2] | tonumber), key: .[3]}}] | add' \
    "$WORK/positions.tsv" >"$WORK/positions.json"

declare -A SEEN GOT_DL
for s in "${SINKS[@]}"; do GOT_DL[$s]=0; done
while IFS=$'\t' read -r dlq_offset k v sink reason topic part off ts; do
    where="dead letter @$dlq_offset"
    for h in sink reason topic part off ts; do
        [ "${!h}" != "?" ] || lib_fail "$where lacks a header ($h)"
    done
    [ "$topic" = items ] || lib_fail "$where: sluice.topic=$topic"
    name=${SRC_NAME[$part/$off]:-}
    [ -n "$name" ] || lib_fail "$where points at $part/$off, which is not a record of the topic"
    where="$where ($name, sink $sink)"
    [ "$k" = "${SRC_KEY[$part/$off]}" ] || lib_fail "$where: the key changed: $k, was ${SRC_KEY[$part/$off]}"
    [ "$v" = "${SRC_VALUE[$part/$off]}" ] || lib_fail "$where: the value changed: ${v:0:80}..., was ${SRC_VALUE[$part/$off]:0:80}..."
    want=${EXPECT[$name,$sink]:-}
    case $want in
        '') lib_fail "$where: no sink $sink" ;;
        ok | skip) lib_fail "$where: $name should have been ${want/ok/delivered} by $sink, was dead-lettered: $reason" ;;
    esac
    [[ $reason =~ $want ]] || lib_fail "$where: reason '$reason' does not match /$want/"
    [ -z "${SEEN[$name,$sink]:-}" ] || lib_fail "$where: dead-lettered twice"
    SEEN[$name,$sink]=1
    GOT_DL[$sink]=$((GOT_DL[$sink] + 1))
done <"$WORK/dlq.tsv"
for name in "${NAMES[@]}"; do
    for s in "${SINKS[@]}"; do
        case ${EXPECT[$name,$s]} in
            ok | skip) ;;
            *) [ -n "${SEEN[$name,$s]:-}" ] || lib_fail "$name was not dead-lettered by $s (expected a reason like /${EXPECT[$name,$s]}/)" ;;
        esac
    done
done
lib_pass "$DL_TOTAL dead letters, one per (record, sink) expected, with sink, reason, topic, partition, offset, timestamp, key and value byte-exact"

for s in "${SINKS[@]}"; do
    type=$(jq -r .type "$WORK/sinks.d/$s.json")
    got=$(rel_metric "$ADMIN_PORT" sluice_sink_records_dead_lettered_total "sink=\"$s\",type=\"$type\"")
    [ "$got" = "${WANT_DL[$s]}" ] || lib_fail "/metrics: $s dead_lettered_total = '$got', expected ${WANT_DL[$s]}"
    [ "${GOT_DL[$s]}" -eq "${WANT_DL[$s]}" ] || lib_fail "$s: ${GOT_DL[$s]} dead letters, expected ${WANT_DL[$s]}"
    # A skipped tombstone counts as delivered (done, nothing to send).
    got=$(rel_metric "$ADMIN_PORT" sluice_sink_records_delivered_total "sink=\"$s\",type=\"$type\"")
    [ "$got" = $((WANT_OK[$s] + WANT_SKIP[$s])) ] ||
        lib_fail "/metrics: $s delivered_total = '$got', expected $((WANT_OK[$s] + WANT_SKIP[$s]))"
done
lib_pass "dead letters per sink, on the topic and in /metrics: cache ${WANT_DL[cache]}, db ${WANT_DL[db]}, api ${WANT_DL[api]}, hook ${WANT_DL[hook]}; delivered_total exact too"

lib_log "dead letters checked"
# ---- the good records reached each target -----------------------------------------------------
# ok_values SINK: the record every record SINK must have delivered, one per line, as
# {"p": partition, "o": offset, "key": key, "v": value}.
ok_values() {
    local name
    for name in "${NAMES[@]}"; do
        [ "${EXPECT[$name,$1]}" = ok ] || continue
        printf '"%s"\n' "$name"
        if [ -e "${VALUE_FILE[$name]}" ]; then cat "${VALUE_FILE[$name]}"; else printf null; fi
        printf '\n'
    done | jq -c -n --slurpfile pos "$WORK/positions.json" \
        '[inputs] | _nwise(2) | $pos[0][.[0]] as $at | {p: $at.p, o: $at.o, key: $at.key, v: .[1]}'
}

# redis: one hash per record, holding exactly its non-null top-level fields as text.
ok_values cache | jq -cS '.v | {key: "item:\(.id)", hash: with_entries(select(.value != null)
    | .value |= (if type == "string" then . else tojson end))}' | sort >"$WORK/want.redis"
rcli --scan --pattern 'item:*' | sort >"$WORK/redis.keys"
sed 's/^/HGETALL /' "$WORK/redis.keys" | timeout 10 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --json | paste "$WORK/redis.keys" - |
while IFS=$'\t' read -r k hash; do
    jq -cS --arg k "$k" '{key: $k, hash: .}' <<<"$hash"
done | sort >"$WORK/got.redis"
diff "$WORK/want.redis" "$WORK/got.redis" >"$WORK/diff.redis" || lib_fail "redis hashes differ (want < > got): $(head -20 "$WORK/diff.redis")"
lib_pass "redis: the ${WANT_OK[cache]} records cache can take are hashes with exactly their fields, nothing else"

# postgres: one row per record.
ok_values db | jq -r '.v | "\(.id)|\(.qty)|\(.name)"' | sort >"$WORK/want.pg"
lib_psql "SELECT id, qty, name FROM items" | sort >"$WORK/got.pg"
diff "$WORK/want.pg" "$WORK/got.pg" >"$WORK/diff.pg" || lib_fail "postgres rows differ (want < > got): $(head -20 "$WORK/diff.pg")"
lib_pass "postgres: exactly the ${WANT_OK[db]} rows db can take, with their values"

# http: one PUT per record, to its URL, with the mapped body.
ok_values api | jq -c '{path: "/api/items/\(.v.id // "")", body: {item: {name: .v.name, qty: .v.qty}, source: "items/\(.p)/\(.o)"}}' |
    jq -cS . | sort >"$WORK/want.api"
jq -c 'select(.path | startswith("/api/")) | {method, status, path, body: (.body | fromjson)}' "$RECEIVER_OUT" >"$WORK/api.requests"
jq -e -s 'all(.method == "PUT" and .status == 200)' "$WORK/api.requests" >/dev/null || lib_fail "api: a request was not a PUT answered 200"
jq -cS '{path, body}' "$WORK/api.requests" | sort >"$WORK/got.api"
diff "$WORK/want.api" "$WORK/got.api" >"$WORK/diff.api" || lib_fail "api requests differ (want < > got): $(head -20 "$WORK/diff.api")"
lib_pass "http: exactly ${WANT_OK[api]} PUTs, one per record api can take, each with its mapped body; the tombstone skipped"

# webhook: one request per record, carrying its key and its value.
ok_values hook | jq -cS '{id: "hook:items:\(.p):\(.o)", partition: .p, offset: .o, key, value: .v}' | sort >"$WORK/want.hook"
jq -c 'select(.path == "/hook")' "$RECEIVER_OUT" >"$WORK/hook.requests"
jq -e -s 'all(.status == 200)' "$WORK/hook.requests" >/dev/null || lib_fail "hook: a request was not answered 200"
jq -c '.body | fromjson | {id, partition, offset, key, value}' "$WORK/hook.requests" | jq -cS . | sort >"$WORK/got.hook"
diff "$WORK/want.hook" "$WORK/got.hook" >"$WORK/diff.hook" || lib_fail "webhook deliveries differ (want < > got): $(head -20 "$WORK/diff.hook")"
lib_pass "webhook: exactly ${WANT_OK[hook]} deliveries, arrays, numbers, strings and the tombstone included, each with its key and value"

rel_committed_at_end bad-input items || lib_fail "the group did not commit the end of every partition"
lib_pass "every record finished in every sink: the end of every partition is committed"
rel_alive "$SLUICE_PID" "sluice"
sluice_stop
lib_pass "sluice exits 0 on SIGTERM after the whole corpus"
lib_summary
