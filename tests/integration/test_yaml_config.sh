#!/usr/bin/env bash
# YAML configuration beside JSON (issue 15): the same main file and sink files written as JSON
# and as YAML (with comments) make sluice write byte-identical targets from the same records.
# A YAML syntax error, a duplicate key and a type error are refused by `sluice check` (exit 2)
# with file:line:column and the reason, a type error at the line:column of its YAML key.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init
SLUICE=$SLUICE_BUILD_DIR/sluice

N=600
# One partition: both runs see the records in the same order, so their files can match byte
# for byte.
lib_start_kafka orders:1 sluice.dlq:1

# Both forms take the group and the output directory from the environment, so their text says
# the same thing and each run still gets its own group and files.
mkdir -p "$WORK/json/sinks.d" "$WORK/yaml/sinks.d" "$WORK/out-json" "$WORK/out-yaml"
cat >"$WORK/json/main.json" <<JSON
{
  "kafka": {
    "bootstrap.servers": "$KAFKA_BROKERS",
    "group.id": "\${RUN_GROUP}",
    "fetch.wait.max.ms": "50",
    "session.timeout.ms": "6000"
  },
  "admin": { "listen": "127.0.0.1:0" },
  "dead_letter_topic": "sluice.dlq",
  "commit_interval_ms": 200,
  "sinks_dir": "sinks.d",
  "sinks": [
    { "name": "gold", "type": "file", "topics": ["orders"],
      "filter": { "path": "$.tier", "equals": "gold" },
      "batch": { "max_records": 7, "linger_ms": 5 },
      "file": { "path": "\${RUN_OUT}/gold.ndjson", "fsync": false } }
  ]
}
JSON
cat >"$WORK/json/sinks.d/all.json" <<'JSON'
{ "name": "all", "type": "file", "topics": ["orders"],
  "batch": { "max_records": 50, "linger_ms": 5 },
  "retry": { "max_attempts": 3, "initial_backoff_ms": 10, "max_backoff_ms": 100 },
  "on_failure": "dead_letter",
  "file": { "path": "${RUN_OUT}/all.ndjson" } }
JSON
cat >"$WORK/yaml/main.yaml" <<YAML
# The YAML form of json/main.json.
kafka:
  bootstrap.servers: $KAFKA_BROKERS
  group.id: \${RUN_GROUP}
  fetch.wait.max.ms: "50"      # librdkafka takes strings
  session.timeout.ms: "6000"
admin: {listen: 127.0.0.1:0}
dead_letter_topic: sluice.dlq
commit_interval_ms: 200
sinks_dir: sinks.d
sinks:
  - name: gold
    type: file
    topics: [orders]
    filter:
      path: $.tier
      equals: gold
    batch: {max_records: 7, linger_ms: 5}
    file:
      path: \${RUN_OUT}/gold.ndjson
      fsync: false
YAML
cat >"$WORK/yaml/sinks.d/all.yml" <<'YAML'
# The YAML form of json/sinks.d/all.json.
name: all
type: file
topics:
  - orders
batch:
  max_records: 50
  linger_ms: 5
retry: {max_attempts: 3, initial_backoff_ms: 10, max_backoff_ms: 100}
on_failure: dead_letter
file:
  path: '${RUN_OUT}/all.ndjson'
YAML

for form in json/main.json yaml/main.yaml; do
    out=$(RUN_GROUP=g RUN_OUT=/tmp "$SLUICE" check -c "$WORK/$form") || lib_fail "check refused $form: $out"
    [ "$out" = "$WORK/$form: ok (2 sinks)" ] || lib_fail "check of $form said: $out"
done
lib_pass "sluice check accepts both forms (2 sinks each)"

make_records "$N" 13 "$WORK/records.tsv"
lib_produce orders "$WORK/records.tsv"

# run FORM: sluice on FORM until both files are complete, then SIGTERM.
run() {
    local form=$1 out=$WORK/out-$2
    RUN_GROUP=yaml-test-$2 RUN_OUT=$out sluice_start "$WORK/$form"
    TIMEOUT=60 lib_wait_for has_lines "$out/all.ndjson" "$N" ||
        lib_fail "$form: only $(lines_of "$out/all.ndjson") of $N records in all.ndjson"
    TIMEOUT=30 lib_wait_for has_lines "$out/gold.ndjson" $((N / 10)) ||
        lib_fail "$form: only $(lines_of "$out/gold.ndjson") of $((N / 10)) records in gold.ndjson"
    sluice_stop
}
run json/main.json json
run yaml/main.yaml yaml
check_file_output "$WORK/out-json/all.ndjson" "$N"
[ "$(lines_of "$WORK/out-json/gold.ndjson")" -eq $((N / 10)) ] ||
    lib_fail "the JSON run's gold sink holds $(lines_of "$WORK/out-json/gold.ndjson") records"
for f in all.ndjson gold.ndjson; do
    cmp "$WORK/out-json/$f" "$WORK/out-yaml/$f" || lib_fail "$f differs between the JSON and YAML runs"
done
lib_pass "the JSON and YAML forms wrote byte-identical targets ($N records, $((N / 10)) filtered)"

# Refusals, each located in the YAML text.
cd "$WORK/yaml"
expect_refused() {
    local file=$1 want=$2 rc=0 got
    got=$("$SLUICE" check -c "$file" 2>&1) || rc=$?
    [ "$rc" -eq 2 ] || lib_fail "check of $file exited $rc, expected 2"
    [ "$got" = "$want" ] || lib_fail "check of $file said:
$got
expected:
$want"
}
printf 'kafka:\n  bootstrap.servers: 127.0.0.1:1\nsinks: [\n  {name: a, type: file\n' >syntax.yaml
expect_refused syntax.yaml "syntax.yaml:5:1: YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping at line 4, column 3)
1 problem found"
printf 'kafka:\n  bootstrap.servers: 127.0.0.1:1\n  # again\n  bootstrap.servers: 127.0.0.1:2\n' >dup.yaml
expect_refused dup.yaml 'dup.yaml:4:3: duplicate key "bootstrap.servers" (first at line 2, column 3)
1 problem found'
cat >types.yml <<'YAML'
kafka: {bootstrap.servers: "127.0.0.1:1"}
sinks:
  - name: a
    type: file
    topics: [t]
    batch:
      max_records: "x"     # a string, not an integer
    file: {path: /tmp/a, fsync: yes}
YAML
expect_refused types.yml 'types.yml:7:7: sinks[0].batch.max_records: expected an integer
types.yml:8:26: sinks[0].file.fsync: expected true or false (YAML 1.2 reads yes, no, on and off as strings)
2 problems found'
lib_pass "a syntax error, a duplicate key and type errors are refused with file:line:column and the reason"
lib_summary
