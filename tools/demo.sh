#!/usr/bin/env bash
# The first command of the README: installs what sluice needs, builds it, runs `sluice dev` on
# config/sluice.json (an embedded Kafka in the process), produces a few sample records into
# customers.v1 with kcat, and shows where they landed (the file sink's NDJSON). Stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh --demo
# The tests (and cmocka, which only the tests need) are left out; tools/test.sh turns them on.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target sluice

out=sluice-demo.ndjson
rm -f "$out" "$out.positions"
# The log stays inside the checkout (build/ is ignored by git): nothing is left elsewhere.
log=build/sluice-demo.log
./build/sluice dev -c config/sluice.json >"$log" 2>&1 </dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  brokers=$(sed -n 's/^sluice dev: embedded Kafka at //p' "$log")
  [ -n "$brokers" ] && break
  sleep 0.1
done
[ -n "$brokers" ] || { cat "$log"; echo "demo: sluice dev did not start (log: $(pwd)/$log)" >&2; exit 1; }
echo "demo: sluice dev is running on an embedded Kafka at $brokers"

printf '%s\n' \
  'c-1:{"id":"c-1","name":"Ada","tier":"gold"}' \
  'c-2:{"id":"c-2","name":"Grace","tier":"silver"}' \
  'c-3:{"id":"c-3","name":"Linus","tier":"bronze"}' \
  'c-1:{"id":"c-1","name":"Ada","tier":"platinum"}' \
  | kcat -P -b "$brokers" -t customers.v1 -K:
echo "demo: produced 4 records to customers.v1"

for _ in $(seq 200); do
  [ -f "$out" ] && [ "$(wc -l <"$out")" -ge 4 ] && break
  sleep 0.1
done
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
if [ ! -f "$out" ] || [ "$(wc -l <"$out")" -lt 4 ]; then
  cat "$log"; echo "demo: the records did not arrive (log: $(pwd)/$log)" >&2; exit 1
fi
echo "demo: the file sink wrote them to $(pwd)/$out:"
cat "$out"
echo "demo: sluice's log is in $(pwd)/$log"
