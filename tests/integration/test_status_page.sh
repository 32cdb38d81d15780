#!/usr/bin/env bash
# The status page, as a person sees it in a browser (headless Chromium): it loads with no
# external assets, shows every configured sink, and shows a paused sink as paused.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
lib_init
command -v chromium >/dev/null || lib_fail "chromium is not installed (tools/setup.sh installs it)"

export SLUICE_ADMIN_TOKEN="page-$RANDOM"
lib_start_kafka shop:2 sluice.dlq:1
sluice_write_config "$WORK/sluice.json" page-test
ADMIN_PORT=$(lib_free_port)
jq --arg listen "127.0.0.1:$ADMIN_PORT" '. + {admin: {listen: $listen, token: "${SLUICE_ADMIN_TOKEN}"}}' \
    "$WORK/sluice.json" >"$WORK/tmp.json" && mv "$WORK/tmp.json" "$WORK/sluice.json"
for s in carts orders-cache invoices; do
    cat >"$WORK/sinks.d/$s.json" <<JSON
{ "name": "$s", "type": "file", "topics": ["shop"], "file": { "path": "$WORK/$s.ndjson" } }
JSON
done
sluice_start "$WORK/sluice.json"
ready() { curl -sf -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null; }
TIMEOUT=30 lib_wait_for ready
make_records 200 7 "$WORK/r.tsv"
lib_produce shop "$WORK/r.tsv"
TIMEOUT=30 lib_wait_for has_lines "$WORK/invoices.ndjson" 200
curl -sf -X POST -H "Authorization: Bearer $SLUICE_ADMIN_TOKEN" "http://127.0.0.1:$ADMIN_PORT/sinks/orders-cache/pause" >/dev/null

URL="http://127.0.0.1:$ADMIN_PORT/?token=$SLUICE_ADMIN_TOKEN"
browse --dump-dom "$URL" >"$WORK/page.html" 2>"$WORK/chromium.log" || lib_fail "chromium failed: $(tail -5 "$WORK/chromium.log")"
browse --screenshot="$WORK/status.png" --window-size=1200,400 "$URL" >/dev/null 2>&1 || true
[ -n "${SLUICE_KEEP_SCREENSHOT:-}" ] && cp "$WORK/status.png" "$SLUICE_KEEP_SCREENSHOT"

for s in carts orders-cache invoices; do
    grep -q "id=\"sink-$s\"" "$WORK/page.html" || lib_fail "the page does not show sink $s"
done
grep -q 'id="sink-orders-cache" data-state="paused"' "$WORK/page.html" || lib_fail "orders-cache is not shown paused"
grep -q 'id="sink-carts" data-state="running"' "$WORK/page.html" || lib_fail "carts is not shown running"
grep -q '<td class="num">200</td>' "$WORK/page.html" || lib_fail "the delivered counts (200) are not shown"
grep -qE 'src="http|href="http' "$WORK/page.html" && lib_fail "the page refers to an external asset"
lib_pass "the status page shows all 3 sinks, their counts, and orders-cache as paused"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/")
[ "$code" = 401 ] || lib_fail "the page without a token answered $code"
lib_pass "the page needs the token"
sluice_stop
lib_summary
