# shellcheck shell=bash
# Helpers for the redis sink's tests (on top of lib.sh and sluice_lib.sh).

# rcli ARGS...: redis-cli against the test's server, raw output (no "(integer)" decorations).
rcli() {
    timeout "$(lib_tmout 10)" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw "$@"
}

# redis_start_durable: a redis-server child like lib_start_redis's (same directory and, once
# started, the same port on every call) with an AOF fsynced on every write, so whatever a batch
# script was acknowledged for survives a SIGKILL of the server and is reloaded on restart; and
# DEBUG enabled, for DEBUG SLEEP (a server that stops answering for a while).
redis_start_durable() {
    local d="$WORK/redis" port rc=0
    mkdir -p "$d"
    port=${LIB_REDIS_PORT:-$(lib_free_port)}
    lib__spawn "$d/redis.log" redis-server --bind 127.0.0.1 --port "$port" --dir "$d" --save '' \
        --appendonly yes --appendfsync always --enable-debug-command yes --daemonize no
    REDIS_PID=$LIB_LAST_PID
    lib__wait_until "$REDIS_PID" lib__redis_pong "$port" || rc=$?
    [ "$rc" -eq 0 ] || lib_fail "redis-server did not start on port $port (see redis/redis.log)"
    REDIS_PORT=$port
    REDIS_DIR=$d
    LIB_REDIS_PORT=$port
    export REDIS_PORT REDIS_PID REDIS_DIR
    lib_log "redis on port $port (pid $REDIS_PID, appendonly, appendfsync always)"
}

# redis_positions_sum KEY: the sum of every position stored in a sink's positions hash (with
# offsets from 0, the number of records the sink finished); 0 when the hash does not exist.
redis_positions_sum() {
    rcli HVALS "$1" | awk '{ s += $1 } END { print s + 0 }'
}

# True when the positions in hash $1 add up to at least $2 (for lib_wait_for).
redis_positions_reach() {
    [ "$(redis_positions_sum "$1")" -ge "$2" ]
}

# redis_sink_file FILE NAME TOPIC JSON-OF-THE-REDIS-SECTION [EXTRA-TOP-LEVEL-JSON]: writes a
# sink file for the test's redis; the section gets "url" added.
redis_sink_file() {
    local file=$1 name=$2 topic=$3 section=$4 extra=${5:-}
    jq -n --arg name "$name" --arg topic "$topic" --arg url "redis://127.0.0.1:$REDIS_PORT/0" \
        --argjson section "$section" --argjson extra "${extra:-{\}}" \
        '{name: $name, type: "redis", topics: [$topic],
          batch: {max_records: 200, linger_ms: 5},
          redis: ({url: $url} + $section)} + $extra' >"$file"
}

# redis_produce_tombstone TOPIC KEY: one record with a NULL value (a tombstone).
redis_produce_tombstone() {
    printf '%s\t\n' "$2" | timeout "$(lib_tmout 30)" kcat -P -q -b "$KAFKA_BROKERS" -t "$1" -K '\t' -Z -z none ||
        lib_fail "kcat could not produce a tombstone for $2"
}

# redis_dead_letters COUNT: the dead-letter topic's records as "sink|reason|key|value" lines
# (a reason may hold commas: it runs up to the next sluice.* header).
redis_dead_letters() {
    LIB_CONSUME_FORMAT='%h\t%k\t%s\n' lib_consume sluice.dlq "$1" | awk -F'\t' -v missing= "$LIB_AWK_HEADER"'
        { print header($1, "sluice.sink") "|" header($1, "sluice.reason") "|" $2 "|" $3 }'
}

# redis_tls_certs DIR: a test PKI made with openssl: ca.crt (the CA), other-ca.crt (an unrelated
# CA), server.crt/key (for 127.0.0.1 and localhost), ip-only.crt/key (for 127.0.0.1 alone) and
# client.crt/key (a client certificate), all signed by ca.crt; EC P-256 keys, valid 2 days.
redis_tls_certs() {
    local d=$1 name
    mkdir -p "$d"
    newkey() { echo -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes; }
    for name in ca other-ca; do
        # shellcheck disable=SC2046 # the options are words
        openssl req -x509 -new $(newkey) -keyout "$d/$name.key" -out "$d/$name.crt" -days 2 \
            -subj "/CN=sluice test $name" 2>>"$d/openssl.log" || lib_fail "openssl: the $name certificate"
    done
    issue() {   # issue NAME EXTENSIONS: a key and a certificate signed by ca.crt
        printf '%s\n' "$2" >"$d/$1.ext"
        # shellcheck disable=SC2046
        openssl req -new $(newkey) -keyout "$d/$1.key" -out "$d/$1.csr" -subj "/CN=sluice test $1" \
            2>>"$d/openssl.log" &&
            openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
                -out "$d/$1.crt" -days 2 -extfile "$d/$1.ext" >>"$d/openssl.log" 2>&1 ||
            lib_fail "openssl: the $1 certificate"
    }
    issue server 'subjectAltName=IP:127.0.0.1,DNS:localhost'
    issue ip-only 'subjectAltName=IP:127.0.0.1'
    issue client 'extendedKeyUsage=clientAuth'
}

# redis_tls_pong PORT CERT-DIR: PONG from a TLS redis (with the client certificate).
redis_tls_pong() {
    [ "$(rcli_tls "$1" "$2" ping 2>/dev/null)" = PONG ]
}

# rcli_tls PORT CERT-DIR ARGS...: redis-cli over TLS, raw output.
rcli_tls() {
    local port=$1 d=$2
    shift 2
    timeout "$(lib_tmout 10)" redis-cli --tls --cacert "$d/ca.crt" --cert "$d/client.crt" --key "$d/client.key" \
        -h 127.0.0.1 -p "$port" --raw "$@"
}

# redis_start_tls NAME CERT-DIR CERT AUTH-CLIENTS: a redis-server child listening on TLS only
# (a free port, plain port 0, on 127.0.0.1 and ::1) with CERT.crt/key, trusting ca.crt for client certificates
# (AUTH-CLIENTS: no, optional, yes); sets REDIS_TLS_PORT and REDIS_TLS_PID. Log in $WORK/NAME.
redis_start_tls() {
    local name=$1 d=$2 cert=$3 auth=$4 dir="$WORK/$1" port rc=0
    mkdir -p "$dir"
    port=$(lib_free_port)
    # ::1 too where it exists ("-": optional), in case localhost resolves to it first
    lib__spawn "$dir/redis.log" redis-server --bind '127.0.0.1 -::1' --port 0 --tls-port "$port" --dir "$dir" \
        --save '' --appendonly no --daemonize no --tls-cert-file "$d/$cert.crt" --tls-key-file "$d/$cert.key" \
        --tls-ca-cert-file "$d/ca.crt" --tls-auth-clients "$auth"
    REDIS_TLS_PID=$LIB_LAST_PID
    lib__wait_until "$REDIS_TLS_PID" redis_tls_pong "$port" "$d" || rc=$?
    [ "$rc" -eq 0 ] || lib_fail "TLS redis-server $name did not start on port $port (see $name/redis.log)"
    REDIS_TLS_PORT=$port
    lib_log "TLS redis $name on port $port (pid $REDIS_TLS_PID, $cert certificate, client certificates: $auth)"
}
