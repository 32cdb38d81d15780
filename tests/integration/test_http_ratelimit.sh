#!/usr/bin/env bash
# rate_limit holds under a backlog.
# Part 1 (the issue's check): 200 records wait in Kafka; an http sink limited to 20 requests/s
# (burst 5) sends one request per record; no 429 comes. The first to the last request take
# about 10 s (9..11.5 s), and at every request i (0-based, by arrival at the receiver)
# i + 1 <= burst + 20 * (t_i - t_0) + 1: never more than the burst above the line (one token
# of slack for the clock's granularity).
# Part 2: 300 records, 16 requests in flight allowed, 40/s, burst 5: the receiver sees at most
# burst + rate requests in any second (tolerance +2 for the jitter between sending and arrival
# on a loaded machine) and about 40/s over the run (between half and 105% of it). A 429 without
# Retry-After halves the rate for a while.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

N=300 RATE=40 BURST=5
PACED_N=200 PACED_RATE=20 PACED_BURST=5
lib_start_kafka events:4 paced:4 sluice.dlq:1
# shellcheck disable=SC2119 # started without extra options
lib_start_receiver
PACED_URL=$RECEIVER_URL PACED_OUT=$RECEIVER_OUT
# shellcheck disable=SC2119
lib_start_receiver
sluice_write_config "$WORK/sluice.json" http-ratelimit
cat >"$WORK/sinks.d/paced.json" <<JSON
{ "name": "paced", "type": "http", "topics": ["paced"],
  "batch": { "max_records": 100, "linger_ms": 10 },
  "http": { "url": "$PACED_URL/paced/{key}", "max_in_flight": 16,
            "rate_limit": { "requests_per_second": $PACED_RATE, "burst": $PACED_BURST },
            "allow_private_networks": true } }
JSON
cat >"$WORK/sinks.d/api.json" <<JSON
{ "name": "api", "type": "http", "topics": ["events"],
  "batch": { "max_records": 100, "linger_ms": 10 },
  "http": { "url": "$RECEIVER_URL/rl/{key}", "max_in_flight": 16,
            "rate_limit": { "requests_per_second": $RATE, "burst": $BURST },
            "allow_private_networks": true } }
JSON
make_records "$N" 50 "$WORK/records.tsv"
lib_produce events "$WORK/records.tsv"
make_records "$PACED_N" 200 "$WORK/paced.tsv"
lib_produce paced "$WORK/paced.tsv"
sluice_start "$WORK/sluice.json"

# --- part 2: 429 slows the bucket down (its 429 is asked for first, then part 1 is checked) ---

ok_count() { jq -s '[.[] | select(.status == 200)] | length' "$RECEIVER_OUT"; }
at_least() { [ "$(ok_count)" -ge "$1" ]; }
TIMEOUT=60 lib_wait_for at_least 100
lib_receiver_mode '{"mode":"status","status":429,"count":1}'

# --- part 1: 200 records at 20/s -------------------------------------------------------------
paced_ok() { [ "$(jq -s '[.[] | select(.status == 200)] | length' "$PACED_OUT")" -ge "$PACED_N" ]; }
TIMEOUT=60 lib_wait_for paced_ok
[ "$(jq -s 'length' "$PACED_OUT")" -eq "$PACED_N" ] ||
    lib_fail "the paced sink sent $(jq -s 'length' "$PACED_OUT") requests for $PACED_N records"
# The first request i (0-based) that came before the line allows, or -1; and the span in ms.
report=$(jq -rs --argjson rate "$PACED_RATE" --argjson burst "$PACED_BURST" '
    [.[] | .received_ms] | sort | . as $t
    | [range(0; length) | select(. + 1 > $burst + $rate * ($t[.] - $t[0]) / 1000 + 1)] as $over
    | "\($t[-1] - $t[0]) \(if ($over | length) > 0 then $over[0] else -1 end) \(if ($over | length) > 0 then $t[$over[0]] - $t[0] else 0 end)"' "$PACED_OUT")
read -r span over over_at <<<"$report"
lib_log "paced: $PACED_N requests from first to last in $span ms"
[ "$span" -ge 9000 ] && [ "$span" -le 11500 ] ||
    lib_fail "$PACED_N requests at $PACED_RATE/s (burst $PACED_BURST) took $span ms, expected 9000..11500"
[ "$over" -eq -1 ] ||
    lib_fail "request $over arrived $over_at ms after the first: above burst $PACED_BURST + $PACED_RATE/s + 1"
lib_pass "rate limit: $PACED_N requests at $PACED_RATE/s took $span ms, none above the burst line"

TIMEOUT=60 lib_wait_for at_least "$N"
sleep 0.5
sluice_stop

# Arrival times, sorted; the most requests in any window of 1000 ms starting at a request;
# the mean rate from the first request to the 429 (after it the rate is lower on purpose).
jq -s '[.[] | .received_ms] | sort' "$RECEIVER_OUT" >"$WORK/times.json"
t429=$(jq -s '[.[] | select(.status == 429)][0].received_ms' "$RECEIVER_OUT")
report=$(jq -r --argjson burst "$BURST" --argjson t429 "$t429" '. as $t | ($t | length) as $n
    | [range(0; $n) as $i | [$t[$i:][] | select(. < $t[$i] + 1000)] | length] | max as $peak
    | [$t[] | select(. < $t429)] as $before
    | ((($before | length) - 1 - $burst) * 1000 / ($t429 - $t[0])) as $rate
    | "\($n) \($peak) \($rate * 100 | floor / 100)"' "$WORK/times.json")
read -r total peak rate <<<"$report"
lib_log "requests $total, busiest second $peak, mean rate before the 429 $rate/s"
[ "$peak" -le $((RATE + BURST + 2)) ] || lib_fail "$peak requests within one second (limit $RATE/s, burst $BURST)"
awk -v r="$rate" -v want="$RATE" 'BEGIN { exit !(r <= want * 1.05 && r >= want * 0.5) }' ||
    lib_fail "mean rate $rate/s, expected about $RATE/s"
lib_pass "rate limit under a backlog: busiest second $peak requests (<= $RATE + burst $BURST), mean $rate/s for $RATE/s"

grep -q 'HTTP 429 from 127.0.0.1:[0-9]*: rate lowered to 20.00 requests/s (configured 40.00)' "$SLUICE_LOG" ||
    lib_fail "the 429 did not lower the rate"
after=$(jq -r --argjson at "$t429" '[.[] | select(. > $at and . <= $at + 1000)] | length' "$WORK/times.json")
[ "$after" -le 25 ] || lib_fail "$after requests in the second after a 429 (the rate should be about 20/s)"
lib_pass "a 429 halved the rate: $after requests in the second after it"

distinct=$(jq -s '[.[] | select(.status == 200) | .path] | unique | length' "$RECEIVER_OUT")
ok=$(ok_count)
[ "$ok" -eq "$N" ] || lib_fail "$ok records answered 200, expected $N (each once)"
[ "$distinct" -eq 50 ] || lib_fail "$distinct distinct keys in the paths, expected 50"
lib_pass "all $N records delivered once"
lib_summary
