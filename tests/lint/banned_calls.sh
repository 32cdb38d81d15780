#!/usr/bin/env bash
# Calls that would block the event loop are banned in lib/, router/ and sinks/ (checksrc-style):
# a blocking query, a sleep, a synchronous commit or close, a blocking poll, a blocking HTTP
# transfer. A line may opt out with a comment "banned-ok: <reason>" (code that runs on a worker
# thread, or after the loop has stopped).
set -uo pipefail
root=${SLUICE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
patterns=(
    '\bPQexec(Params|Prepared)?\s*\('
    '\bPQconnectdb(Params)?\s*\('
    '\bPQgetResult\s*\(.*\bPQblocking'
    '\b(u|nano)?sleep\s*\('
    '\bcurl_easy_perform\s*\('
    '\brd_kafka_commit(_message)?\s*\([^;]*,\s*0\s*\)'
    '\brd_kafka_consumer_close\s*\('
    '\brd_kafka_(consumer_)?poll\s*\([^;]*,\s*[1-9-]'
    '\bredisConnect(WithTimeout)?\s*\('
    '\bredisCommand\s*\('
)
status=0
for p in "${patterns[@]}"; do
    hits=$(grep -rnE "$p" "$root/lib" "$root/router" "$root/sinks" --include='*.c' | grep -v 'banned-ok:' || true)
    if [ -n "$hits" ]; then
        printf 'banned call (%s):\n%s\n' "$p" "$hits"
        status=1
    fi
done
[ $status -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $status
