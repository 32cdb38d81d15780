#!/usr/bin/env bash
# A bad configuration is refused with every problem at once, each with file:line:column, the
# JSON path and the reason; `sluice check --strict` and `sluice run --strict` both exit 2 and run
# starts nothing. Without --strict a broken main file still refuses, with its own problems only
# (broken sink files are set aside: test_sink_isolation.sh). A secret from the environment never
# appears in any message; a value that is not a secret is not masked.
source "$(dirname "$0")/lib.sh"
lib_init
SLUICE=$SLUICE_BUILD_DIR/sluice

mkdir -p "$WORK/cfg/sinks.d"
cd "$WORK/cfg"
cat >main.json <<'JSON'
{
  "kafka": { "bootstrap.servers": "127.0.0.1:1", "group.id": "g", "fetch.wait.max.mss": "50" },
  "dead_letter_topc": "x",
  "admin": { "token": "${SLUICE_TEST_TOKEN}" },
  "sinks_dir": "sinks.d",
  "sinks": [
    { "name": "a", "type": "file", "topics": ["t"], "file": { "path": "/tmp/a" } },
    { "name": "b", "type": "fiel", "topics": [] }
  ]
}
JSON
cat >sinks.d/a.json <<'JSON'
{ "name": "a", "type": "file", "topics": ["t"],
  "batch": { "max_records": 0, "linger_ms": "10" },
  "retry": { "initial_backoff_ms": 5000, "max_backoff_ms": 100 },
  "file": { "path": "/tmp/b" } }
JSON
cat >sinks.d/broken.json <<'JSON'
{ "name": "c", "type": "file",
  "topics": ["t"] "file": {} }
JSON
cat >expected <<'TXT'
main.json:2:89: kafka["fetch.wait.max.mss"]: No such configuration property: "fetch.wait.max.mss"; did you mean "fetch.wait.max.ms"?
main.json:3:23: dead_letter_topc: unknown key "dead_letter_topc"; did you mean "dead_letter_topic"?
main.json:4:23: admin.token: environment variable SLUICE_TEST_TOKEN is not set
main.json:8:28: sinks[1].type: unknown sink type "fiel"; did you mean "file"?
main.json:8:46: sinks[1].topics: a sink needs at least one topic
sinks.d/a.json:1:11: name: duplicate sink name "a" (first declared at main.json:7)
sinks.d/a.json:2:29: batch.max_records: must be 1..1000000
sinks.d/a.json:2:45: batch.linger_ms: expected an integer
sinks.d/a.json:3:60: retry.max_backoff_ms: must be at least retry.initial_backoff_ms (5000)
sinks.d/broken.json:2:24: JSON syntax error: '}' expected near '"file"'
10 problems found
TXT

rc=0
env -u SLUICE_TEST_TOKEN "$SLUICE" check --strict -c main.json >check.out 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "sluice check exited $rc, expected 2"
diff -u expected check.out || lib_fail "sluice check printed other messages"
lib_pass "check --strict reports all 10 problems with file:line:column, path and reason, exit 2"

rc=0
env -u SLUICE_TEST_TOKEN "$SLUICE" check -c main.json >check.out 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "sluice check without --strict exited $rc on a broken main file, expected 2"
{ grep '^main.json:' expected; echo '5 problems found'; } >expected.main
diff -u expected.main check.out || lib_fail "sluice check without --strict printed other messages"
lib_pass "without --strict a broken main file still refuses, with its 5 problems"

rc=0
SLUICE_TEST_TOKEN='s3cret-Token' timeout 20 "$SLUICE" run --strict -c main.json >run.out 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "sluice run exited $rc, expected 2"
grep -v 'SLUICE_TEST_TOKEN' expected | sed 's/^10 problems/9 problems/' >expected.run
diff -u expected.run run.out || lib_fail "sluice run printed other messages"
grep -q 's3cret' run.out && lib_fail "the secret appeared in the output"
grep -q 'running' run.out && lib_fail "sluice run started despite the errors"
lib_pass "run refuses the same configuration with exit 2, starts nothing, never prints the secret"

# A secret (admin.token is declared one) is masked wherever its value appears, here in a
# librdkafka message about another property that took the same value.
cat >secret.json <<'JSON'
{ "kafka": { "bootstrap.servers": "127.0.0.1:1", "security.protocol": "${SLUICE_TEST_TOKEN}" },
  "admin": { "token": "${SLUICE_TEST_TOKEN}" },
  "sinks": [ { "name": "a", "type": "file", "topics": ["t"], "file": { "path": "/tmp/a" } } ] }
JSON
rc=0
SLUICE_TEST_TOKEN='s3cret-Token' "$SLUICE" check -c secret.json >secret.out 2>&1 || rc=$?
grep -q 's3cret' secret.out && lib_fail "the secret appeared in a librdkafka error"
[ "$rc" -eq 2 ] || lib_fail "an invalid security.protocol passed check (exit $rc)"
grep -q '^secret.json:1:[0-9]*: kafka\["security.protocol"\]: .*\*\*\*' secret.out ||
    lib_fail "expected a located, masked message: $(cat secret.out)"
lib_pass "a secret substituted into a kafka property never appears in messages"

# A value that is not a secret (a user name) is not masked: not where it is used, nor inside an
# unrelated word of another message.
cat >user.json <<'JSON'
{ "kafka": { "bootstrap.servers": "127.0.0.1:1", "sasl.username": "${SLUICE_TEST_USER}",
             "security.protocol": "plaintextual" },
  "sinks": [ { "name": "a", "type": "file", "topics": ["t"], "file": { "path": "/tmp/a" } } ] }
JSON
rc=0
SLUICE_TEST_USER='text' "$SLUICE" check -c user.json >user.out 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "an invalid security.protocol passed check (exit $rc)"
grep -q 'kafka\["security.protocol"\]: .*"plaintextual"' user.out ||
    lib_fail "a non-secret value was masked inside another word: $(cat user.out)"
lib_pass "a value that is not a secret is not masked"

# A sink type's own checks report every problem of its section at once, with the common ones.
cat >hook.json <<'JSON'
{ "name": "hook", "type": "webhook", "topics": ["t"], "batch": { "max_records": 0 },
  "webhook": { "url": "ftp://hooks.example.com/x", "secret": "not-a-whsec",
               "headers": { "Bad Header": "v" } } }
JSON
rc=0
"$SLUICE" check --sink hook.json >hook.out 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "a webhook with four problems passed check (exit $rc): $(cat hook.out)"
for want in 'hook.json:1:[0-9]*: batch.max_records: ' 'hook.json:2:[0-9]*: webhook.url: url must be an http:// or https:// URL, not ftp://' \
            'hook.json:2:[0-9]*: webhook.secret: must be whsec_' 'hook.json:3:[0-9]*: webhook.headers: '; do
    grep -q "$want" hook.out || lib_fail "check did not report '$want' with the others: $(cat hook.out)"
done
grep -q '^4 problems found' hook.out || lib_fail "check counted: $(tail -1 hook.out)"
lib_pass "a webhook's four problems (a common option, url, secret, headers) are reported in one check"

# Usage errors exit 2 too; a valid file passes check with exit 0.
rc=0; "$SLUICE" frobnicate >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "an unknown command exited $rc"
rc=0; "$SLUICE" check >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || lib_fail "check without -c exited $rc"
"$SLUICE" check -c "$SLUICE_SOURCE_DIR/config/sluice.json" >ok.out || lib_fail "the example config fails check"
grep -q 'ok (1 sink)' ok.out || lib_fail "check of the example printed: $(cat ok.out)"
lib_pass "usage errors exit 2; the example configuration passes check"
lib_summary
