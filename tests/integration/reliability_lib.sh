# shellcheck shell=bash
# Helpers of the reliability tests (bad input, broker faults, scale-out), on top of lib.sh and
# sluice_lib.sh.

# rel_dump_topic TOPIC [COUNT]: every record of TOPIC (up to COUNT, default all), one line each:
#   partition<TAB>offset<TAB>KEY<TAB>VALUE<TAB>headers
# KEY and VALUE are "x" followed by the bytes in hex ("x" alone: empty), or "-" for null, so a
# comparison is byte-exact whatever the bytes (newlines, NUL, invalid UTF-8). kcat gives the
# lengths (%K, %S) ahead of the raw bytes, and perl (perl-base is part of every Debian) cuts
# them; headers come as kcat prints them ("k=v,k2=v2").
rel_dump_topic() {
    local topic=$1 count=${2:-}
    timeout "$(lib_tmout 60)" kcat -C -q -b "$KAFKA_BROKERS" -t "$topic" -o beginning -e ${count:+-c "$count"} \
        -f '%p %o %K %S %h\n%k%s\n' | perl -e '
        binmode STDIN;
        sub take { my ($n) = @_; return "-" if $n < 0; my $b = ""; read(STDIN, $b, $n) == $n or die "short record\n" if $n > 0; return "x" . unpack("H*", $b); }
        while (defined(my $line = <STDIN>)) {
            chomp $line;
            my ($p, $o, $kl, $vl, $h) = split / /, $line, 5;
            my $k = take($kl);
            my $v = take($vl);
            my $nl;
            read(STDIN, $nl, 1) == 1 && $nl eq "\n" or die "record $p/$o: no newline after the value\n";
            $h = "" unless defined $h;
            print "$p\t$o\t$k\t$v\t$h\n";
        }'
}

# rel_dead_letters [TOPIC]: the dead-letter topic (default sluice.dlq) as rel_dump_topic prints it, with the
# headers sluice writes cut into columns:
#   dlq_offset<TAB>KEY<TAB>VALUE<TAB>sink<TAB>reason<TAB>topic<TAB>partition<TAB>offset<TAB>timestamp
# A missing header is printed as "?".
rel_dead_letters() {
    rel_dump_topic "${1:-sluice.dlq}" | awk -F'\t' -v OFS='\t' -v missing='?' "$LIB_AWK_HEADER"'
        { print $2, $3, $4, header($5, "sluice.sink"), header($5, "sluice.reason"), header($5, "sluice.topic"),
                header($5, "sluice.partition"), header($5, "sluice.offset"), header($5, "sluice.timestamp") }'
}

# rel_hex STRING: the "x<hex>" form rel_dump_topic prints, for a value written by a test.
rel_hex() {
    printf 'x%s' "$(printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n')"
}

# rel_hex_file FILE: the same for a file's bytes.
rel_hex_file() {
    printf 'x%s' "$(od -An -v -tx1 <"$1" | tr -d ' \n')"
}

# rel_admin_port LOG: the port sluice's admin API bound (it listens on 127.0.0.1:0), from its
# log line "admin API listening on 127.0.0.1:PORT"; waits for it.
rel_admin_port() {
    TIMEOUT=30 lib_wait_for grep -q 'admin API listening on ' "$1"
    grep -o 'admin API listening on [0-9.]*:[0-9]*' "$1" | tail -n 1 | sed 's/.*://'
}

# rel_metric PORT NAME LABELS: one sample of GET /metrics, e.g.
#   rel_metric 4711 sluice_sink_records_dead_lettered_total 'sink="cache",type="redis"'
# prints nothing when the sample is absent.
rel_metric() {
    curl -fsS -m "$(lib_tmout 10)" "http://127.0.0.1:$1/metrics" | awk -v want="$2{$3}" '$1 == want { print $2 }'
}

# rel_owned LOG TOPIC: the partitions of TOPIC the process holds at the end of its log: those
# of its last assignment, none when a revoke came after it.
rel_owned() {
    awk -v t="$2" '
        /msg="partitions assigned: / { delete own }
        /msg="partitions revoked: / { delete own }
        index($0, "msg=\"assigned " t " [") {
            s = $0; sub(".*msg=\"assigned " t " \\[", "", s); sub("\\].*", "", s); own[s] = 1
        }
        END { for (p in own) print p }' "$1" | sort -n
}

# rel_committed_at_end GROUP TOPIC: true when GROUP committed the log end of every partition of
# TOPIC (tools/kafka-committed prints "partition committed end" lines).
rel_committed_at_end() {
    local out
    out=$(timeout "$(lib_tmout 20)" "$SLUICE_BUILD_DIR/kafka-committed" -b "$KAFKA_BROKERS" -g "$1" -t "$2" 2>/dev/null) ||
        return 1
    [ -n "$out" ] && awk '$2 != $3 { bad = 1 } END { exit bad }' <<<"$out"
}

# rel_records FROM COUNT KEYS [BAD_EVERY]: records FROM..FROM+COUNT-1 as "key<TAB>value" lines,
# keys k-0..k-(KEYS-1) round robin, values {"id":"k-N","seq":S}; with BAD_EVERY, every record
# whose seq is a multiple of it (0 excepted) gets the value "bad-json-S" instead (not JSON).
rel_records() {
    awk -v s="$1" -v n="$2" -v k="$3" -v bad="${4:-0}" 'BEGIN {
        for (i = s; i < s + n; i++)
            if (bad > 0 && i > 0 && i % bad == 0)
                printf "k-%d\tbad-json-%d\n", i % k, i
            else
                printf "k-%d\t{\"id\":\"k-%d\",\"seq\":%d}\n", i % k, i % k, i
    }'
}

# rel_start_producer TOPIC DIR CHUNK PAUSE KEYS [BAD_EVERY]: produces chunks of CHUNK records
# (rel_records, seq from 0 on) in the background, PAUSE seconds apart, one kcat per chunk, until
# the file DIR/stop exists (at most 1000 chunks; see also rel_hold_producer); each chunk that kcat acknowledged in full adds
# a line to DIR/produced, so once it stopped the records are seq 0..(lines x CHUNK - 1). kcat
# retries for up to 60 s (message.timeout.ms) and, with -E, does not give up when every broker
# is down, so a broker outage delays a chunk rather than cutting it. PID in REL_PRODUCER_PID, log in DIR/producer.log.
rel_start_producer() {
    mkdir -p "$2"
    rm -f "$2/stop"
    : >"$2/produced"
    lib__spawn "$2/producer.log" rel__producer "$@"
    REL_PRODUCER_PID=$LIB_LAST_PID
    REL_PRODUCER_DIR=$2
}

rel__producer() {
    local topic=$1 dir=$2 chunk=$3 pause=$4 keys=$5 bad=${6:-0} c
    for ((c = 0; c < 1000; c++)); do
        while [ -e "$dir/hold" ] && [ ! -e "$dir/stop" ]; do
            : >"$dir/holding"
            sleep 0.1
        done
        rm -f "$dir/holding"
        [ ! -e "$dir/stop" ] || return 0
        rel_records $((c * chunk)) "$chunk" "$keys" "$bad" >"$dir/chunk"
        kcat -P -q -E -b "$KAFKA_BROKERS" -t "$topic" -K '\t' -z none -X message.timeout.ms=60000 \
            -X linger.ms=5 -l "$dir/chunk" || { echo "kcat failed on chunk $c"; return 1; }
        echo "$c" >>"$dir/produced"
        sleep "$pause"
    done
}

# rel_hold_producer / rel_release_producer: the producer stops between two chunks (the hold
# returns once it waits: from then on the test's producer sends nothing) / goes on.
rel_hold_producer() {
    : >"$REL_PRODUCER_DIR/hold"
    TIMEOUT=90 lib_wait_for test -e "$REL_PRODUCER_DIR/holding"
}

rel_release_producer() {
    rm -f "$REL_PRODUCER_DIR/hold"
}

# rel_stop_producer: asks the producer to stop after its current chunk, waits for it (bounded),
# fails the test if it failed; sets REL_CHUNKS to how many chunks it produced. (Not in $(...):
# only this shell can wait for the producer.)
rel_stop_producer() {
    local rc=0
    : >"$REL_PRODUCER_DIR/stop"
    timeout "$(lib_tmout 90)" tail --pid="$REL_PRODUCER_PID" -f /dev/null || lib_fail "the producer did not stop"
    wait "$REL_PRODUCER_PID" || rc=$?
    lib__forget_pid "$REL_PRODUCER_PID"
    [ "$rc" -eq 0 ] || lib_fail "the producer failed: $(tail -n 3 "$REL_PRODUCER_DIR/producer.log")"
    # shellcheck disable=SC2034 # read by the tests
    REL_CHUNKS=$(wc -l <"$REL_PRODUCER_DIR/produced")
}

# rel_alive PID WHAT: fails the test when PID is no longer running.
rel_alive() {
    lib__alive "$1" || lib_fail "$2 (pid $1) is not running any more"
}
