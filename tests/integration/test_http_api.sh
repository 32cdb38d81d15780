#!/usr/bin/env bash
# The http sink calls APIs the way three common SaaS shapes want, against the project's
# receiver:
#   a CRM batch upsert: {"inputs": {"$each": ...}} with batch.max_records 10, a bearer token
#   from the environment, an Idempotency-Key, several updates of one key collapsed to the last,
#   values JSON-escaped (quotes, backslashes, non-ASCII come back exactly);
#   an upsert by external id: PATCH .../External_Id__c/{key} with the key percent-encoded,
#   OAuth2 client credentials (one token for many calls, a new one once after a 401), and a
#   tombstone sent as DELETE;
#   a chat incoming webhook: a text template, an API-key header, a filter.
# A record the template cannot render is dead-lettered with the reason. (The ready-made sink
# files in config/examples are checked by test_examples.sh.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sluice_lib.sh"
source "$(dirname "$0")/http_lib.sh"
lib_init

export CRM_TOKEN=crm-token-0123456789 CHAT_KEY=chat-key-abc OAUTH_SECRET=s3cr3t-value
lib_start_kafka contacts:2 accounts:1 sluice.dlq:1
lib_start_receiver --token-path /oauth/token
sluice_write_config "$WORK/sluice.json" http-api
cat >"$WORK/sinks.d/crm.json" <<JSON
{ "name": "crm", "type": "http", "topics": ["contacts"],
  "batch": { "max_records": 10, "linger_ms": 200 },
  "http": { "method": "POST", "url": "$RECEIVER_URL/crm/v3/objects/contacts/batch/upsert",
            "auth": { "type": "bearer", "token": "\${CRM_TOKEN}" },
            "idempotency_header": "Idempotency-Key",
            "body": { "inputs": { "\$each": { "idProperty": "email", "id": "{\$.email}",
                      "properties": { "firstname": "{\$.name}", "tier": "{\$.tier}", "seq": "{\$.seq}" } } } },
            "allow_private_networks": true } }
JSON
cat >"$WORK/sinks.d/chat.json" <<JSON
{ "name": "chat", "type": "http", "topics": ["contacts"],
  "filter": { "path": "\$.tier", "equals": "gold" },
  "http": { "url": "$RECEIVER_URL/services/T000/B000/XXXX",
            "auth": { "type": "header", "header": "X-Api-Key", "value": "\${CHAT_KEY}" },
            "body": { "text": "New gold customer: {\$.name} ({key}), seq {\$.seq}" },
            "allow_private_networks": true } }
JSON
cat >"$WORK/sinks.d/accounts.json" <<JSON
{ "name": "accounts", "type": "http", "topics": ["accounts"],
  "batch": { "linger_ms": 20 },
  "http": { "method": "PATCH", "url": "$RECEIVER_URL/sobjects/Account/External_Id__c/{key}",
            "auth": { "type": "oauth2", "token_url": "$RECEIVER_URL/oauth/token", "client_id": "sluice-client",
                      "client_secret": "\${OAUTH_SECRET}", "scope": "api" },
            "body": { "Name": "{\$.name}", "Seq": "{\$.seq}", "Revenue": "{\$.revenue?}" },
            "tombstones": "delete", "delete_url": "$RECEIVER_URL/sobjects/Account/External_Id__c/{key}",
            "allow_private_networks": true } }
JSON
"$SLUICE_BUILD_DIR/sluice" check --strict -c "$WORK/sluice.json" >/dev/null || lib_fail "sluice check refused the sinks"

# 60 contacts over 12 keys (so batches hold several updates of a key), names that need escaping.
awk 'BEGIN {
    for (i = 0; i < 60; i++) {
        k = i % 12
        printf "c-%d\t{\"email\":\"c%d@example.com\",\"name\":\"Ad\\\"a\\\\ L\\u00f6v %d\",\"seq\":%d,\"tier\":\"%s\"}\n",
            k, k, i, i, (i % 5 == 0 ? "gold" : "basic")
    }
}' >"$WORK/contacts.tsv"
printf 'acme corp/%d\t{"name":"Acme %d","seq":%d}\n' 1 1 1 2 2 2 3 3 3 >"$WORK/accounts.tsv"
lib_produce contacts "$WORK/contacts.tsv"
lib_produce accounts "$WORK/accounts.tsv"
sluice_start "$WORK/sluice.json"

CRM=/crm/v3/objects/contacts/batch/upsert
crm_last_seqs() {   # per email, the highest seq received; prints "email seq" lines
    jq -r --arg p "$CRM" 'select(.path == $p and .status == 200) | .body | fromjson | .inputs[]
        | "\(.id) \(.properties.seq)"' "$RECEIVER_OUT" | sort -k1,1 -k2,2n | awk '{last[$1] = $2} END {for (e in last) print e, last[e]}' | sort
}
crm_done() {
    [ "$(crm_last_seqs | awk '$2 >= 48' | wc -l)" -eq 12 ]
}
TIMEOUT=60 lib_wait_for crm_done
TIMEOUT=30 lib_wait_for rx_has /services/T000/B000/XXXX 12 200
TIMEOUT=30 lib_wait_for rx_has "/sobjects/Account/External_Id__c/acme%20corp%2F3" 1 200

# --- CRM batch upsert ----------------------------------------------------------------------
want=$(for k in $(seq 0 11); do echo "c$k@example.com $((48 + k))"; done | sort)
[ "$(crm_last_seqs)" = "$want" ] || lib_fail "CRM: last value per contact: $(crm_last_seqs | tr '\n' ' ')"
jq -e -s --arg p "$CRM" '[.[] | select(.path == $p)] | length > 0 and all(
        (.body | fromjson | .inputs) as $in
        | ($in | length) >= 1 and ($in | length) <= 10
        and ([$in[].id] | unique | length) == ($in | length)
        and .headers.authorization == "Bearer crm-token-0123456789"
        and (.headers["idempotency-key"] | test("^crm:contacts:[01]:[0-9]+-[0-9]+$"))
        and .headers["content-type"] == "application/json" and .method == "POST")' "$RECEIVER_OUT" >/dev/null ||
    lib_fail "CRM: a body over 10 inputs, a key twice in one body, or a wrong header"
name=$(jq -r --arg p "$CRM" 'select(.path == $p) | .body | fromjson | .inputs[] | select(.properties.seq == 59) | .properties.firstname' "$RECEIVER_OUT")
[ "$name" = 'Ad"a\ Löv 59' ] || lib_fail "CRM: a name came back as '$name'"
[ "$(rx_count "$CRM" 200)" -le 12 ] || lib_fail "CRM: $(rx_count "$CRM" 200) requests for 60 records in batches of 10"
lib_pass "CRM batch upsert: bodies of at most 10 inputs, one per key (the last), bearer token, Idempotency-Key, escaping intact"

# --- chat incoming webhook -----------------------------------------------------------------
[ "$(rx_count /services/T000/B000/XXXX 200)" -eq 12 ] || lib_fail "chat: $(rx_count /services/T000/B000/XXXX) messages for 12 gold records"
text=$(jq -r 'select(.path == "/services/T000/B000/XXXX") | .body | fromjson | .text' "$RECEIVER_OUT" | grep 'seq 55$')
[ "$text" = 'New gold customer: Ad"a\ Löv 55 (c-7), seq 55' ] || lib_fail "chat: text '$text'"
jq -e -s 'all(.[] | select(.path == "/services/T000/B000/XXXX"); .headers["x-api-key"] == "chat-key-abc")' \
    "$RECEIVER_OUT" >/dev/null || lib_fail "chat: the API key header is missing"
lib_pass "chat webhook: one message per gold record, text rendered, X-Api-Key sent"

# --- upsert by external id with OAuth2 -------------------------------------------------------
[ "$(rx_count /oauth/token 200)" -eq 1 ] || lib_fail "OAuth2: $(rx_count /oauth/token) token requests for 3 calls (expected one, cached)"
basic=$(printf 'sluice-client:s3cr3t-value' | base64)
jq -e -s --arg b "Basic $basic" '[.[] | select(.path == "/oauth/token")][0]
        | .method == "POST" and .headers.authorization == $b
        and .headers["content-type"] == "application/x-www-form-urlencoded"
        and .body == "grant_type=client_credentials&scope=api"' "$RECEIVER_OUT" >/dev/null ||
    lib_fail "OAuth2: the token request is not client credentials with Basic auth: $(rx_lines /oauth/token | sed -n 1p)"
for i in 1 2 3; do
    p="/sobjects/Account/External_Id__c/acme%20corp%2F$i"
    jq -e -s --arg p "$p" --argjson i "$i" '[.[] | select(.path == $p)] | length == 1 and all(
            .method == "PATCH" and .headers.authorization == "Bearer token-1"
            and (.body | fromjson) == {"Name": "Acme \($i)", "Seq": $i, "Revenue": null})' "$RECEIVER_OUT" >/dev/null ||
        lib_fail "upsert by id: no single PATCH $p with token-1 and the right body"
done
lib_pass "upsert by external id: PATCH to the percent-encoded key, one OAuth2 token (Basic client auth) for all calls"

lib_receiver_mode '{"mode":"status","status":401,"count":1}'
printf 'acme corp/4\t{"name":"Acme 4","seq":4,"revenue":12.5}\n' >"$WORK/acc4.tsv"
lib_produce accounts "$WORK/acc4.tsv"
P4="/sobjects/Account/External_Id__c/acme%20corp%2F4"
TIMEOUT=30 lib_wait_for rx_has "$P4" 1 200
statuses=$(jq -r --arg p "$P4" 'select(.path == $p) | "\(.status):\(.headers.authorization)"' "$RECEIVER_OUT" | tr '\n' ' ')
[ "$statuses" = "401:Bearer token-1 200:Bearer token-2 " ] || lib_fail "after a 401: $statuses"
[ "$(rx_count /oauth/token 200)" -eq 2 ] || lib_fail "OAuth2: $(rx_count /oauth/token) token requests after one 401"
lib_pass "a 401 fetched a new token once and the call went through with it"

kafka_produce_tombstone accounts "acme corp/2"
TIMEOUT=30 lib_wait_for rx_has "/sobjects/Account/External_Id__c/acme%20corp%2F2" 2 200
jq -e -s '[.[] | select(.path == "/sobjects/Account/External_Id__c/acme%20corp%2F2")][1]
        | .method == "DELETE" and .body == "" and .headers.authorization == "Bearer token-2"' "$RECEIVER_OUT" >/dev/null ||
    lib_fail "the tombstone was not sent as DELETE"
lib_pass "a tombstone became DELETE .../External_Id__c/acme%20corp%2F2"

# --- a record the template cannot render ---------------------------------------------------
printf 'c-x\t{"name":"no email","seq":999,"tier":"basic"}\n' >"$WORK/bad.tsv"
lib_produce contacts "$WORK/bad.tsv"
TIMEOUT=30 lib_wait_for topic_has sluice.dlq 1
dlq=$(LIB_CONSUME_FORMAT='%h\n' lib_consume sluice.dlq 5)
if ! grep -q 'sluice.sink=crm' <<<"$dlq" || ! grep -q 'missing field \$.email' <<<"$dlq"; then
    lib_fail "dead letter without the reason: $dlq"
fi
lib_pass "a record without the field the template needs is dead-lettered: missing field \$.email"
sluice_stop
lib_summary
