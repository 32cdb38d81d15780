#!/usr/bin/env bash
# bench-products: one data product drained as JSON and as Confluent-framed Avro in the same run,
# through the same sink: records/s and CPU per record of each, side by side (issue 13: decoding
# Avro should cost no more CPU per record than parsing the same record's JSON). A figure, not an
# assertion.
#
#   SLUICE_BUILD_DIR=build bash tools/bench-products.sh [RECORDS]
#
# RECORDS (default 1,000,000) customer records of ~250 bytes of JSON (make_customer_records) are
# produced before any clock starts into the embedded Kafka (librdkafka's mock), over 64
# partitions, twice: as they are (kcat) into bench.json, and by build/avro-produce as Avro
# (magic byte 0, the schema id, the binary datum) into bench.avro, with the schema avro-produce
# prints registered in the project's registry tool (build/schema-registry) under
# bench.avro-value. Both producers hash the key to pick the partition, so both topics hold the
# same records in the same partitions. Then, per case, a fresh `sluice run` (its own consumer
# group, so it reads from the start) drains one topic into a file sink (fsync off):
#   json   bench.json, a topic without a format: the values are JSON already;
#   parse  bench.json again, with a filter every record passes ($.seq exists), which makes the
#          router parse each value with jansson once: parse - json is what parsing the JSON
#          costs, to set beside avro - json, what decoding the Avro costs;
#   avro   bench.avro, "value_format": "confluent": each value decoded through the registry.
#   contract  bench.json with topics.bench.json.contract.json_schema: a 12-property draft-07
#          contract of the customer records (tools/bench-contract.json), checked once per record
#          (which parses it once): contract - parse is what the validation costs;
#   rules  bench.avro with "contract": "registry": the schema was registered with a ruleSet of
#          four CEL conditions (READ), each run on each decoded record: rules - avro is their cost.
# It prints, per case: records, seconds from the first delivery to the last, records/s, the CPU
# seconds of the sluice process (utime + stime of /proc/PID/stat, all its threads, read when the
# sink has every record, right before it is stopped), CPU µs per record, peak RSS (VmHWM), and
# whether the values the sink wrote equal the json case's (jq -cS, sorted); then the ratios
# avro/json of CPU per record (the figure the issue's goal compares: <= 1.0) and of records/s.
# If build/bench-decode exists (the decoders' micro-benchmark), its output follows.
#
# Environment: BENCH_CASES (default "json avro"; a case may be repeated, e.g. "json avro json
# avro": the ratios then use each case's median), BENCH_PARTITIONS (default 64),
# BENCH_VERIFY=0 (skip the comparison of the values, which costs a jq pass over each sink file),
# BENCH_KEEP_LOGS=1 (keep each case's sluice log in the work directory; with KEEP_WORK=1 it stays).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SLUICE_SOURCE_DIR:=$(cd "$here/.." && pwd)}"
source "$SLUICE_SOURCE_DIR/tests/integration/lib.sh"
source "$SLUICE_SOURCE_DIR/tests/integration/sluice_lib.sh"

N=${1:-1000000}
PARTITIONS=${BENCH_PARTITIONS:-64}
CASES=${BENCH_CASES:-json parse contract avro rules}
VERIFY=${BENCH_VERIFY:-1}
lib_init
for tool in kcat jq curl; do
    command -v "$tool" >/dev/null || lib_fail "$tool is needed"
done
for tool in sluice kafka-committed avro-produce schema-registry; do
    lib__need_tool "$tool"
done
TICKS=$(getconf CLK_TCK)

lib_start_kafka "bench.json:$PARTITIONS" "bench.avro:$PARTITIONS" sluice.dlq:1
# shellcheck disable=SC2119 # no options: a plain registry
lib_start_registry
lib_log "writing $N records"
make_customer_records "$N" "$((N / 10 > 0 ? N / 10 : 1))" "$WORK/records.tsv"
AVG_JSON=$(awk -F'\t' '{ s += length($2) } END { printf "%.1f", s / NR }' "$WORK/records.tsv")
t0=$(lib_now_ms)
SLUICE_TMOUT_MULTIPLIER=${SLUICE_TMOUT_MULTIPLIER:-5} lib_produce bench.json "$WORK/records.tsv"
lib_log "produced $N JSON records of $AVG_JSON bytes on average in $(($(lib_now_ms) - t0)) ms"

# The data contract's rules travel with the schema; they run only where a topic's contract is
# "registry" (the rules case), so the avro case decodes the same records without them.
RULES='{"domainRules": [
  {"name": "email", "kind": "CONDITION", "type": "CEL", "mode": "READ", "expr": "message.email.contains(\"@\")"},
  {"name": "visits", "kind": "CONDITION", "type": "CEL", "mode": "READ", "expr": "message.visits >= 0 && message.visits < 100000"},
  {"name": "country", "kind": "CONDITION", "type": "CEL", "mode": "READ", "expr": "message.country.matches(\"^[A-Z]{2}$\")"},
  {"name": "tags", "kind": "CONDITION", "type": "CEL", "mode": "READ", "expr": "size(message.tags) <= 5 && message.seq >= 0"}]}'
SCHEMA_ID=$("$SLUICE_BUILD_DIR/avro-produce" --schema | jq -Rs --argjson rules "$RULES" '{schema: rtrimstr("\n"), ruleSet: $rules}' |
    curl -fsS -m 10 -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data-binary @- \
        "$REGISTRY_URL/subjects/bench.avro-value/versions" | jq -er .id) ||
    lib_fail "the registry did not register avro-produce's schema"
t0=$(lib_now_ms)
produced=$(timeout "$(lib_tmout 600)" "$SLUICE_BUILD_DIR/avro-produce" -b "$KAFKA_BROKERS" -t bench.avro \
    -i "$SCHEMA_ID" "$WORK/records.tsv") || lib_fail "avro-produce failed"
AVG_AVRO=$(awk '{ gsub(/[()]/, ""); print $(NF - 2) }' <<<"$produced")
lib_log "$produced, schema id $SCHEMA_ID, in $(($(lib_now_ms) - t0)) ms"
rm -f "$WORK/records.tsv"
for t in bench.json bench.avro; do
    in_topic=$("$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g bench-probe -t "$t" | awk '{ s += $3 } END { print s + 0 }')
    [ "$in_topic" -eq "$N" ] || lib_fail "$t holds $in_topic records, expected $N"
done

cpu_ticks() {   # PID: utime + stime of the process (all its threads), in clock ticks
    local stat
    read -r stat <"/proc/$1/stat"
    stat=${stat##*) }   # after the command name, which may hold blanks: field 3 (state) on
    awk '{ print $12 + $13 }' <<<"$stat"
}
sinks_json() {   # GET /sinks, or nothing while the admin API is not listening yet
    curl -sS -m 5 "http://$ADMIN/sinks" 2>/dev/null || true
}

RESULTS=()
run=0
run_case() {
    local name=$1 topic d delivered first_ms first_ticks start_ms end_ms deadline hwm ticks lost failures
    local note sinks values=-
    run=$((run + 1))
    d="$WORK/case-$run-$name"
    case $name in
        json | parse | contract) topic=bench.json ;;
        avro | rules) topic=bench.avro ;;
        *) lib_fail "unknown case $name (json, parse, contract, avro, rules)" ;;
    esac
    mkdir -p "$d/sinks.d"
    ADMIN=127.0.0.1:$(lib_free_port)
    sluice_write_config "$d/sluice.json" "products-$run-$name"
    cp "$SLUICE_SOURCE_DIR/tools/bench-contract.json" "$d/contract.json"
    jq --arg l "$ADMIN" --arg s "$d/sinks.d" --arg url "$REGISTRY_URL" --arg case "$name" \
        '.admin.listen = $l | .sinks_dir = $s | .registry = {url: $url}
         | .topics = {"bench.avro": ({value_format: "confluent"} + (if $case == "rules" then {contract: "registry"} else {} end))}
         | if $case == "contract" then .topics["bench.json"] = {contract: {json_schema: "contract.json"}} else . end' \
        "$d/sluice.json" >"$d/tmp.json"
    mv "$d/tmp.json" "$d/sluice.json"
    jq -n --arg t "$topic" --arg p "$d/out.ndjson" --arg case "$name" \
        '{name: "out", type: "file", topics: [$t],
          batch: {max_records: 1000, max_bytes: 4194304, linger_ms: 5},
          file: {path: $p, fsync: false}}
         + (if $case == "parse" then {filter: {path: "$.seq", exists: true}} else {} end)' >"$d/sinks.d/out.json"
    "$SLUICE_BUILD_DIR/sluice" check -c "$d/sluice.json" >"$d/check.log" 2>&1 ||
        { cat "$d/check.log" >&2; lib_fail "sluice check refuses the $name case's configuration"; }

    start_ms=$(lib_now_ms)
    sluice_start "$d/sluice.json"
    deadline=$((start_ms + $(lib_tmout 600) * 1000))
    # The first delivery is the first batch in the sink's file: looked for every 5 ms with the
    # shell's own test (the group join takes seconds, a small drain less than the admin API's
    # poll). The last is the file's modification time once the sink reports every record.
    until [ -s "$d/out.ndjson" ]; do
        lib__alive "$SLUICE_PID" || lib_fail "sluice died in the $name case (see $SLUICE_LOG)"
        [ "$(lib_now_ms)" -lt "$deadline" ] || lib_fail "$name: nothing delivered in $(lib_tmout 600) s"
        sleep 0.005
    done
    first_ms=$(lib_now_ms)
    first_ticks=$(cpu_ticks "$SLUICE_PID")
    while :; do
        lib__alive "$SLUICE_PID" || lib_fail "sluice died in the $name case (see $SLUICE_LOG)"
        delivered=$(sinks_json | jq -r '.sinks[] | select(.name == "out") | .delivered' 2>/dev/null || true)
        [ "${delivered:-0}" -lt "$N" ] || break
        [ "$(lib_now_ms)" -lt "$deadline" ] ||
            lib_fail "$name: the sink delivered ${delivered:-0} of $N records in $(lib_tmout 600) s"
        sleep 0.1
    done
    end_ms=$(stat -c %.3Y "$d/out.ndjson")
    end_ms=${end_ms/./}
    ticks=$(cpu_ticks "$SLUICE_PID")
    hwm=$(proc_vm_kib VmHWM "$SLUICE_PID")
    sinks=$(sinks_json)
    lost=$(jq -r '.sinks[] | select(.name == "out") | .records_lost // 0' <<<"$sinks")
    [ "${lost:-0}" -eq 0 ] || lib_fail "$name: retention deleted $lost records before the sink read them"
    failures=$(jq -r --arg t "$topic" '.topics[$t].decode_failures // 0' <<<"$sinks")
    [ "${failures:-0}" -eq 0 ] || lib_fail "$name: $failures decode failures: $(jq -c --arg t "$topic" '.topics[$t]' <<<"$sinks")"
    if [ "$name" = contract ] || [ "$name" = rules ]; then
        failures=$(jq -r --arg t "$topic" '.topics[$t].contract.valid // 0' <<<"$sinks")
        [ "$failures" -eq "$N" ] || lib_fail "$name: $failures of $N records met the contract: $(jq -c --arg t "$topic" '.topics[$t]' <<<"$sinks")"
    fi
    sluice_stop_noted
    note=$SLUICE_STOP_NOTE
    if [ "${BENCH_KEEP_LOGS:-0}" = 1 ]; then cp "$SLUICE_LOG" "$d/"; fi
    if [ "$VERIFY" = 1 ]; then
        # The values as canonical JSON (keys sorted), in a canonical order: a case's values are
        # the json case's if and only if the two files are equal.
        jq -cS '.value' "$d/out.ndjson" | LC_ALL=C sort >"$d/values"
        [ "$(wc -l <"$d/values")" -eq "$N" ] || lib_fail "$name: the sink's file holds $(wc -l <"$d/values") values, expected $N"
        if [ ! -f "$WORK/values.json" ] && [ "$name" = json ]; then
            mv "$d/values" "$WORK/values.json"
            values="(the reference)"
        elif [ ! -f "$WORK/values.json" ]; then
            values="(no json case before it)"
        elif cmp -s "$d/values" "$WORK/values.json"; then
            values="= json's"
        else
            values="DIFFER from json's"
            lib_log "$name: the first values that differ from the json case's:"
            diff "$WORK/values.json" "$d/values" | head -n 6 >&2 || true
        fi
        rm -f "$d/values"
    fi
    rm -f "$d"/*.ndjson
    RESULTS+=("$name|$((end_ms - first_ms))|$((end_ms - start_ms))|$ticks|$hwm|$values|$note|$((ticks - first_ticks))")
    lib_log "$name: $N records in $((end_ms - first_ms)) ms after the first delivery, CPU $ticks ticks, VmHWM $((hwm / 1024)) MiB"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for c in $CASES; do
    run_case "$c"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

printf '\n'
printf 'records     %d customer records, 11 fields (%d partitions, produced before the clocks start)\n' "$N" "$PARTITIONS"
printf 'values      json %s bytes on average; avro %s bytes (5-byte framing + datum), schema id %s\n' \
    "$AVG_JSON" "$AVG_AVRO" "$SCHEMA_ID"
printf 'sink        one file sink, fsync off, batches of 1000\n'
printf 'sluice      %s\n' "$SLUICE_BUILD_DIR/sluice"
printf 'machine     %s cores; load average %s before the cases, %s after\n' "$(nproc)" "$load_before" "$load_after"
printf '%-5s %8s %8s %10s %8s %11s %11s %13s  %s\n' case records seconds records/s "CPU s" "CPU µs/rec" "drain µs/rec" "peak RSS MiB" values
for r in "${RESULTS[@]}"; do
    IFS='|' read -r name ms total_ms ticks hwm values note drain <<<"$r"
    awk -v name="$name" -v ms="$ms" -v n="$N" -v t="$ticks" -v hz="$TICKS" -v hwm="$hwm" -v values="$values" \
        -v note="$note" -v total="$total_ms" -v drain="$drain" 'BEGIN {
        printf "%-5s %8d %8.2f %10d %8.2f %11.2f %12.2f %13.1f  %s (%.1f s from start)%s\n", name, n, ms / 1000,
            n * 1000 / (ms > 0 ? ms : 1), t / hz, t / hz * 1e6 / n, drain / hz * 1e6 / n, hwm / 1024, values,
            total / 1000, (note == "" ? "" : "; " note)
    }'
done
# The ratios, from each case's median (a case may be run more than once).
median_of() {   # CASE FIELD(2: ms, 4: ticks, 8: drain ticks)
    local r
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r -a f <<<"$r"
        [ "${f[0]}" != "$1" ] || echo "${f[$(($2 - 1))]}"
    done | sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
json_ticks=$(median_of json 4)
avro_ticks=$(median_of avro 4)
json_ms=$(median_of json 2)
json_drain=$(median_of json 8)
avro_drain=$(median_of avro 8)
parse_ticks=$(median_of parse 4)
avro_ms=$(median_of avro 2)
parse_ms=$(median_of parse 2)
contract_ticks=$(median_of contract 4)
contract_ms=$(median_of contract 2)
rules_ticks=$(median_of rules 4)
rules_ms=$(median_of rules 2)
if [ -n "$json_ticks" ] && [ -n "$avro_ticks" ]; then
    awk -v jt="$json_ticks" -v at="$avro_ticks" -v jm="$json_ms" -v am="$avro_ms" -v jd="$json_drain" \
        -v ad="$avro_drain" -v pt="$parse_ticks" -v n="$N" -v hz="$TICKS" 'BEGIN {
        printf "\navro/json   CPU per record %.2f   <- the issue'"'"'s goal compares this: Avro decoding should\n", at / (jt > 0 ? jt : 1)
        printf "            cost no more CPU per record than the same record'"'"'s JSON, i.e. a ratio <= 1.0\n"
        printf "            (drain only    %.2f)\n", ad / (jd > 0 ? jd : 1)
        printf "            records/s      %.2f\n", (am > 0 ? jm / am : 0)
        printf "            avro - json    %+.2f CPU µs per record: the Avro decode, over a path that parses no JSON\n", (at - jt) / hz * 1e6 / n
        if (pt != "") {
            printf "parse       parse - json   %+.2f CPU µs per record: one jansson parse of the JSON value\n", (pt - jt) / hz * 1e6 / n
            if (pt > jt)
                printf "            decode / parse %.2f   (the Avro decode'"'"'s CPU over the JSON parse'"'"'s, both on top of the json case)\n", (at - jt) / (pt - jt)
        }
    }'
fi
# With and without the contract, in the same run: records/s and CPU per record.
contract_ratio() {   # LABEL WITH_MS WITH_TICKS WITHOUT_MS WITHOUT_TICKS WITHOUT_NAME
    [ -n "$2" ] && [ -n "$4" ] || return 0
    awk -v label="$1" -v wm="$2" -v wt="$3" -v om="$4" -v ot="$5" -v base="$6" -v n="$N" -v hz="$TICKS" 'BEGIN {
        printf "%-11s records/s %.2f of the %s case'"'"'s (%d vs %d); CPU per record %.2f (%+.2f µs)\n", label,
            (wm > 0 ? om / wm : 0), base, n * 1000 / (wm > 0 ? wm : 1), n * 1000 / (om > 0 ? om : 1),
            wt / (ot > 0 ? ot : 1), (wt - ot) / hz * 1e6 / n
    }'
}
printf '\n'
contract_ratio "contract" "$contract_ms" "$contract_ticks" "$parse_ms" "$parse_ticks" parse
contract_ratio "rules" "$rules_ms" "$rules_ticks" "$avro_ms" "$avro_ticks" avro

cat <<TEXT

seconds: from the first write to the sink's file (looked for every 5 ms) to its last (the
file's mtime); the process's start and its group join are not counted. CPU: the whole sluice
process (librdkafka's threads, the decode, the file sink, which checks every value's JSON and
copies it into its line) from its start to the last delivery, in ${TICKS} Hz ticks; "drain":
only from the first delivery to the last (without the start and the group join). In the json
case the router neither decodes nor parses (a file sink without a filter takes the values as they
are; the sink checks and copies each one, in every case), so the avro case pays its decode and
the parse case one jansson parse on top of the same work; the avro case also fetches values of
less than half the size.
TEXT

if [ -x "$SLUICE_BUILD_DIR/bench-decode" ]; then
    printf '\nbench-decode (the decoders alone, %s):\n' "$SLUICE_BUILD_DIR/bench-decode"
    timeout 600 "$SLUICE_BUILD_DIR/bench-decode" || printf '(bench-decode exited %d)\n' "$?"
fi
exit 0
