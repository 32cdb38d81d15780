#!/usr/bin/env bash
# bench-redis-route: what the optimistic route of issue 17 reaches end to end, before it is
# built into the sink: a small C client (compiled here, hiredis) runs batches the way the sink
# would, on C connections (one thread each, partitions p = c mod C), and the same run measures
# redis-benchmark -P 64 on the same server, so the ratios are the issue's. Per batch (one
# partition, BATCH records), the route keeps what the script guarantees:
#   phase 1  WATCH pos-key; GET pos-key; HGET positions-hash field; (hash) HKEYS of each key:
#            its type (WRONGTYPE answers another type: that key is not written) and the fields
#            the new value lacks; the client checks the stored position (else: fenced)
#   phase 2  MULTI; string: SET key value GET (refuses another type, writes nothing then);
#            hash: HSET key fields..., HDEL key <stale fields> when there are any;
#            SET pos-key next; HSET positions-hash field next (the mirror); EXEC
# and, for comparison, the route the sink has now: one EVALSHA of the sink's batch script per
# batch (sinks/redis.c), pipelined on the same C connections (up to 16 batches in flight).
# No Kafka, no sluice: a ceiling of each route on this machine, client CPU included.
#
#   bash tools/bench-redis-route.sh [RECORDS] [KEYS] [BATCH] [CONNECTIONS...]
# defaults 1,000,000 records of ~254 bytes (11 fields), 100,000 keys, batches of 1,000, 64
# partitions, connections "1 4". PERF=FILE records a perf profile of redis-server while it runs
# the hash shape's optimistic route on the last number of connections.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
N=${1:-1000000}
KEYS=${2:-100000}
BATCH=${3:-1000}
shift $(($# < 3 ? $# : 3))
CONNS=("$@")
[ ${#CONNS[@]} -gt 0 ] || CONNS=(1 4)
for tool in redis-server redis-cli redis-benchmark cc; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
dir=$(mktemp -d)
redis_pid=
cleanup() {
    [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
    [ -z "$redis_pid" ] || wait "$redis_pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/route.c" <<'C'
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PARTS 64
static int port, nconn, batch, nkeys, hash, script;
static long total;
static const char *sha;

static void fail(const char *what, redisReply *r)
{
    fprintf(stderr, "%s: %s\n", what, r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    exit(1);
}

static redisReply *get(redisContext *c)
{
    redisReply *r = NULL;
    if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
        fail("connection", NULL);
    return r;
}

/* One record: the key and its HSET fields (argv[2..23]) or its JSON (vals[0]). */
struct rec { char key[32], id[16], name[32], email[48], seq[16], json[400]; };

static void rec_make(struct rec *r, long i)
{
    snprintf(r->key, sizeof r->key, "%s:%ld", hash ? "h" : "s", (i * 7919) % nkeys);
    snprintf(r->id, sizeof r->id, "c-%08ld", i);
    snprintf(r->name, sizeof r->name, "Customer %ld", i);
    snprintf(r->email, sizeof r->email, "customer%ld@example.com", i);
    snprintf(r->seq, sizeof r->seq, "%ld", i);
    snprintf(r->json, sizeof r->json, "{\"id\":\"c-%08ld\",\"name\":\"Customer %ld\",\"email\":\"customer%ld@example.com\","
             "\"tier\":\"gold\",\"country\":\"DE\",\"balance\":1234.56,\"visits\":42,\"created_at\":\"2024-01-01T00:00:00Z\","
             "\"tags\":[\"news\",\"beta\"],\"address\":{\"city\":\"Berlin\",\"zip\":\"10115\"},\"seq\":%ld}", i, i, i, i);
}

static int fields_argv(const struct rec *r, const char **argv)
{
    const char *v[] = { "id", r->id, "name", r->name, "email", r->email, "tier", "gold", "country", "DE",
        "balance", "1234.56", "visits", "42", "created_at", "2024-01-01T00:00:00Z", "tags", "[\"news\",\"beta\"]",
        "address", "{\"city\":\"Berlin\",\"zip\":\"10115\"}", "seq", r->seq };
    memcpy(argv, v, sizeof v);
    return 22;
}

/* The optimistic route, one batch. */
static void tx_batch(redisContext *c, int p, long first, long nb, long off, struct rec *recs)
{
    char pos[32], field[16], prev[24], next[24];
    const char *argv[32];
    long ncmd = 0;

    snprintf(pos, sizeof pos, "pos:%d", p);
    snprintf(field, sizeof field, "t:%d", p);
    snprintf(prev, sizeof prev, "%ld", off);
    snprintf(next, sizeof next, "%ld", off + nb);
    for (long j = 0; j < nb; j++)
        rec_make(&recs[j], first + j);
    redisAppendCommand(c, "WATCH %s", pos);
    redisAppendCommand(c, "GET %s", pos);
    redisAppendCommand(c, "HGET positions %s", field);
    for (long j = 0; j < nb && hash; j++)
        redisAppendCommand(c, "HKEYS %s", recs[j].key);
    freeReplyObject(get(c));
    redisReply *g = get(c), *h = get(c);
    const char *stored = g->type == REDIS_REPLY_STRING ? g->str : h->type == REDIS_REPLY_STRING ? h->str : "0";
    if (strcmp(stored, prev) != 0) {
        fprintf(stderr, "partition %d: stored position %s, expected %s (fenced)\n", p, stored, prev);
        exit(1);
    }
    freeReplyObject(g);
    freeReplyObject(h);
    redisAppendCommand(c, "MULTI");
    for (long j = 0; j < nb; j++) {
        if (hash) {
            /* the fields the key has and the new value lacks: removed (replace, not merge) */
            redisReply *k = get(c);
            const char *del[64];
            int ndel = 2, n = fields_argv(&recs[j], argv + 2);
            del[0] = "HDEL";
            del[1] = recs[j].key;
            for (size_t f = 0; k->type == REDIS_REPLY_ARRAY && f < k->elements && ndel < 64; f++) {
                int mine = 0;
                for (int a = 0; a < n && !mine; a += 2)
                    mine = strcmp(argv[2 + a], k->element[f]->str) == 0;
                if (!mine)
                    del[ndel++] = k->element[f]->str;
            }
            argv[0] = "HSET";
            argv[1] = recs[j].key;
            redisAppendCommandArgv(c, 2 + n, argv, NULL);
            ncmd++;
            if (ndel > 2) {
                redisAppendCommandArgv(c, ndel, del, NULL);
                ncmd++;
            }
            freeReplyObject(k);
        } else {
            redisAppendCommand(c, "SET %s %s GET", recs[j].key, recs[j].json);
            ncmd++;
        }
    }
    redisAppendCommand(c, "SET %s %s", pos, next);
    redisAppendCommand(c, "HSET positions %s %s", field, next);
    redisAppendCommand(c, "EXEC");
    ncmd += 2;
    for (long j = 0; j < ncmd + 1; j++) {
        redisReply *r = get(c);
        if (r->type == REDIS_REPLY_ERROR)
            fail("MULTI", r);
        freeReplyObject(r);
    }
    redisReply *e = get(c);
    if (e->type != REDIS_REPLY_ARRAY)
        fail("EXEC (nil: a conflict)", e);
    for (size_t i = 0; i < e->elements; i++)
        if (e->element[i]->type == REDIS_REPLY_ERROR)
            fail("in EXEC", e->element[i]);
    freeReplyObject(e);
}

/* The script route: EVALSHA as sinks/redis.c sends it (positions hash; KEYS, then ARGV). */
static size_t script_send(redisContext *c, int p, long first, long nb, long off, struct rec *recs, const char **argv, size_t *lens)
{
    static __thread char nums[8][24];
    size_t a = 0;
    const char *fv[32];

    snprintf(nums[0], 24, "%ld", 1 + nb);
    snprintf(nums[1], 24, "t:%d", p);
    snprintf(nums[2], 24, "%ld", off == 0 ? -1L : off);
    snprintf(nums[3], 24, "%ld", off + nb);
    argv[a++] = "EVALSHA"; argv[a++] = sha; argv[a++] = nums[0]; argv[a++] = "positions";
    for (long j = 0; j < nb; j++) {
        rec_make(&recs[j], first + j);
        argv[a++] = recs[j].key;
    }
    argv[a++] = nums[1]; argv[a++] = nums[2]; argv[a++] = nums[3]; argv[a++] = hash ? "hash" : "string";
    argv[a++] = "0"; argv[a++] = "0"; argv[a++] = "1";
    for (long j = 0; j < nb; j++) {
        if (hash) {
            int n = fields_argv(&recs[j], fv);
            argv[a++] = "22";
            memcpy(argv + a, fv, (size_t)n * sizeof *argv);
            a += (size_t)n;
        } else {
            argv[a++] = "1";
            argv[a++] = recs[j].json;
        }
    }
    for (size_t i = 0; i < a; i++)
        lens[i] = strlen(argv[i]);
    redisAppendCommandArgv(c, (int)a, argv, lens);
    return a;
}

static void *run(void *arg)
{
    int t = (int)(long)arg;
    redisContext *c = redisConnect("127.0.0.1", port);
    long per_part = total / PARTS;
    struct rec *recs = calloc((size_t)batch, sizeof *recs);
    const char **argv = calloc((size_t)batch * 24 + 16, sizeof *argv);
    size_t *lens = calloc((size_t)batch * 24 + 16, sizeof *lens);
    long sent = 0, answered = 0;

    if (!c || c->err || !recs || !argv || !lens) {
        fprintf(stderr, "cannot connect\n");
        exit(1);
    }
    for (long off = 0; off < per_part; off += batch)
        for (int p = t; p < PARTS; p += nconn) {
            long nb = off + batch <= per_part ? batch : per_part - off;
            if (!script) {
                tx_batch(c, p, p * per_part + off, nb, off, recs);
                continue;
            }
            script_send(c, p, p * per_part + off, nb, off, recs, argv, lens);
            if (++sent - answered >= 16) {
                redisReply *r = get(c);
                if (r->type != REDIS_REPLY_ARRAY || strcmp(r->element[0]->str, "OK") != 0)
                    fail("EVALSHA", r->type == REDIS_REPLY_ARRAY ? r->element[0] : r);
                freeReplyObject(r);
                answered++;
            }
        }
    while (answered < sent) {
        redisReply *r = get(c);
        if (r->type != REDIS_REPLY_ARRAY || strcmp(r->element[0]->str, "OK") != 0)
            fail("EVALSHA", r->type == REDIS_REPLY_ARRAY ? r->element[0] : r);
        freeReplyObject(r);
        answered++;
    }
    free(recs);
    free(argv);
    free(lens);
    redisFree(c);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t th[64];
    struct timespec a, b;

    if (argc != 9)
        return 2;
    port = atoi(argv[1]); nconn = atoi(argv[2]); batch = atoi(argv[3]); hash = strcmp(argv[4], "hash") == 0;
    script = strcmp(argv[5], "script") == 0; total = atol(argv[6]); nkeys = atoi(argv[7]); sha = argv[8];
    if (nconn < 1 || nconn > 64)
        return 2;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int t = 0; t < nconn; t++)
        pthread_create(&th[t], NULL, run, (void *)(long)t);
    for (int t = 0; t < nconn; t++)
        pthread_join(th[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.0f\n", total / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9));
    return 0;
}
C
cc -O2 -Wall -o "$dir/route" "$dir/route.c" -lhiredis -lpthread

port=$((20000 + RANDOM % 20000))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --daemonize no \
    </dev/null >"$dir/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
rcli() { redis-cli -p "$port" "$@"; }
# The batch script, from the C literal in sinks/redis.c (each line "...\n"), as bench-redis-server.sh.
sed -n '/redis_batch_script\[\] =/,/^    "return res\\n";/p' "$here/../sinks/redis.c" |
    sed -n 's/^    "\(.*\)\\n"[;]*$/\1/p' >"$dir/script.lua"
sha=$(rcli SCRIPT LOAD "$(cat "$dir/script.lua")")
cpu_ms() {   # the server's utime + stime, in ms
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz }' "/proc/$redis_pid/stat"
}
reset_positions() { rcli DEL positions $(seq -f 'pos:%g' 0 63) >/dev/null; }
# route SHAPE ROUTE CONNS: records/s, and the server's CPU per 1,000 records (ms)
route() {
    local rate c0 c1
    reset_positions
    c0=$(cpu_ms)
    rate=$("$dir/route" "$port" "$3" "$BATCH" "$1" "$2" "$N" "$KEYS" "$sha")
    c1=$(cpu_ms)
    printf '%s %s\n' "$rate" "$(awk -v c="$((c1 - c0))" -v n="$N" 'BEGIN { printf "%.3f", c * 1000 / n }')"
}
bench_line() {
    redis-benchmark -h 127.0.0.1 -p "$port" -q -P 64 "$@" 2>/dev/null | tr '\r' '\n' |
        awk '/requests per second/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "requests") { print int($i); exit } }'
}
# The keys exist before the measure: a cache being refreshed, as in bench-redis.sh.
"$dir/route" "$port" 4 "$BATCH" string tx "$N" "$KEYS" "$sha" >/dev/null
reset_positions
"$dir/route" "$port" 4 "$BATCH" hash tx "$N" "$KEYS" "$sha" >/dev/null

printf '%d records over %d keys, 64 partitions, batches of %d; %d cores, load %s\n' "$N" "$KEYS" "$BATCH" \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %-7s %5s %12s %18s\n' shape route conns records/s 'server ms/1000'
declare -A best
for shape in string hash; do
    for r in script tx; do
        for c in "${CONNS[@]}"; do
            if [ -n "${PERF:-}" ] && [ "$shape$r$c" = "hashtx${CONNS[-1]}" ]; then
                perf record -g -o "$PERF" -p "$redis_pid" >/dev/null 2>&1 &
                perf_pid=$!
                sleep 0.5   # perf attaches: a profile of what follows, not a race on the result
            fi
            read -r rate cpu <<<"$(route "$shape" "$r" "$c")"
            if [ -n "${perf_pid:-}" ]; then
                kill -INT "$perf_pid"
                wait "$perf_pid" || true
                perf_pid=
            fi
            printf '%-7s %-7s %5d %12d %18s\n' "$shape" "$r" "$c" "$rate" "$cpu"
            [ "${best[$shape$r]:-0}" -ge "$rate" ] || best[$shape$r]=$rate
        done
    done
done
avg=254
set_random=$(bench_line -n 1000000 -d "$avg" -r "$KEYS" -t set)
hset=$(bench_line -n 1000000 -r "$KEYS" HSET 'bench:__rand_int__' id c-00000001 name 'Customer 1' \
    email customer1@example.com tier gold country DE balance 1234.56 visits 42 \
    created_at 2024-01-01T00:00:00Z tags '["news","beta"]' address '{"city":"Berlin","zip":"10115"}' seq 1)
printf 'redis-benchmark -P 64 -r %d SET -d %d   %d requests/s\n' "$KEYS" "$avg" "$set_random"
printf 'redis-benchmark -P 64 HSET (11 fields)     %d requests/s\n' "$hset"
awk -v ss="${best[stringscript]}" -v st="${best[stringtx]}" -v hs="${best[hashscript]}" -v ht="${best[hashtx]}" \
    -v s="$set_random" -v h="$hset" 'BEGIN {
    printf "string: script %.2f, tx %.2f of SET -P 64 -r (goal 0.70)\n", ss / s, st / s
    printf "hash:   script %.2f, tx %.2f of native HSET   (goal 0.75)\n", hs / h, ht / h
}'
