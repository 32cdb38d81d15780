/* The redis sink: keeps keys in Redis fresh from Kafka, exactly once.
 *
 * Each record becomes one operation on the key its template names: SET (shape string), the
 * hash replaced by the value's top-level fields (hash: HSET in place, then HDEL of the fields
 * the value lost), RPUSH (list) or XADD (stream); a tombstone deletes the key (string, hash).
 * Values are read in place (redis_key.c), not parsed into a DOM: the sink's hot path.
 *
 * A batch of one partition is ONE call of a Lua script (EVALSHA), which Redis runs
 * atomically: it compares the partition's stored position with the one the batch expects
 * (b->prev_next), applies every operation and stores b->next in the sink's positions hash. So the data and the position always move together:
 *   - stored == prev_next: apply, store next;
 *   - stored == next: an earlier attempt was applied (its reply was lost with the connection):
 *     report success without applying it again;
 *   - anything else: another process owns the partition now (a rebalance): SINK_FENCED.
 * The script probes the type of every key first and writes nothing that could fail half way,
 * because a script that fails in the middle keeps its first writes. (A check script inside
 * MULTI would not do: a failed command in MULTI does not stop the others.)
 *
 * That is the script route (list, stream; string by default). The optimistic route (hash by
 * default; route "optimistic") is redis_tx.c's: WATCH, MULTI/EXEC of plain commands.
 *
 * I/O (redis_conn.c): connections on the loop (TCP, or TLS for rediss://: redis_transport.c);
 * the script route pipelines batches of different partitions on the first (up to
 * max_in_flight), the optimistic route spreads them over `connections`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "sink.h"
#include "redis_int.h"
#include "redis_key.h"
#include "redis_resp.h"
#include "redis_transport.h"

/* The script unpacks at most 1000 keys or 2000 values per call, far below Lua's limit of
 * about 8000; an XADD cannot be split, so a stream entry is held to this many fields. */
#define STREAM_MAX_FIELDS 3000

const char *const redis_shapes[] = { "string", "hash", "list", "stream", NULL };
enum redis_route { ROUTE_AUTO, ROUTE_SCRIPT, ROUTE_OPTIMISTIC };
static const char *const redis_routes[] = { "auto", "script", "optimistic", NULL };

/* The batch script. See the top of this file; ARGV[7] says what to do with keys of another
 * type: "1" skip those operations and report them (on_failure dead_letter), "0" write nothing
 * and report them (on_failure block: the batch waits until someone fixes the key). */
static const char redis_batch_script[] =
    "#!lua\n"
    "-- sluice redis sink: one batch of one partition, applied with its position, atomically.\n"
    "-- KEYS[1] positions hash, KEYS[1+i] key of operation i; ARGV[1] position field,\n"
    "-- ARGV[2] expected position ('-1': none), ARGV[3] new position, ARGV[4] shape,\n"
    "-- ARGV[5] ttl_s, ARGV[6] maxlen, ARGV[7] skip wrong types; then per operation n, n values.\n"
    "local stored = redis.call('HGET', KEYS[1], ARGV[1]) or '-1'\n"
    "if stored ~= ARGV[2] then\n"
    "  if stored == ARGV[3] then return {'APPLIED'} end\n"
    "  return {'FENCED', stored}\n"
    "end\n"
    "local shape, ttl, maxlen = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local nkeys, res, skip, len, C = #KEYS, {'OK'}, {}, {}, 1000\n"
    "-- Nothing may fail half way (a script keeps the writes it made before an error): probe every\n"
    "-- key's type first with a length command, which answers WRONGTYPE for another type.\n"
    "local probe = ({string = 'STRLEN', hash = 'HLEN', list = 'LLEN', stream = 'XLEN'})[shape]\n"
    "for k = 2, nkeys do\n"
    "  local r = redis.pcall(probe, KEYS[k])\n"
    "  if type(r) == 'table' then\n"
    "    skip[k] = true\n"
    "    res[#res + 1] = k - 1\n"
    "    res[#res + 1] = redis.call('TYPE', KEYS[k])['ok']\n"
    "  else\n"
    "    len[k] = r\n"
    "  end\n"
    "end\n"
    "if #res > 1 and ARGV[7] == '0' then\n"
    "  res[1] = 'WRONGTYPE'\n"
    "  return res\n"
    "end\n"
    "local function chunked(cmd, key, list)\n"
    "  for i = 1, #list, C do\n"
    "    if key then\n"
    "      redis.call(cmd, key, unpack(list, i, math.min(i + C - 1, #list)))\n"
    "    else\n"
    "      redis.call(cmd, unpack(list, i, math.min(i + C - 1, #list)))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local a = 8\n"
    "if shape == 'hash' then\n"
    "  -- Replace, not merge: HSET in place (cheaper than DEL and a new hash), then remove the\n"
    "  -- fields the value no longer has, which HLEN before and HSET's count reveal.\n"
    "  local dels = {}\n"
    "  for k = 2, nkeys do\n"
    "    local n = tonumber(ARGV[a])\n"
    "    if not skip[k] then\n"
    "      if n == 0 then\n"
    "        if len[k] > 0 then dels[#dels + 1] = KEYS[k] end\n"
    "      else\n"
    "        local added = 0\n"
    "        for i = a + 1, a + n, 2 * C do\n"
    "          added = added + redis.call('HSET', KEYS[k], unpack(ARGV, i, math.min(i + 2 * C - 1, a + n)))\n"
    "        end\n"
    "        if len[k] + added > n / 2 then\n"
    "          local mine, stale = {}, {}\n"
    "          for i = a + 1, a + n, 2 do mine[ARGV[i]] = true end\n"
    "          for _, f in ipairs(redis.call('HKEYS', KEYS[k])) do\n"
    "            if not mine[f] then stale[#stale + 1] = f end\n"
    "          end\n"
    "          chunked('HDEL', KEYS[k], stale)\n"
    "        end\n"
    "        if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end\n"
    "      end\n"
    "    end\n"
    "    a = a + 1 + n\n"
    "  end\n"
    "  chunked('DEL', nil, dels)\n"
    "elseif shape == 'string' then\n"
    "  local dels, sets = {}, {}\n"
    "  for k = 2, nkeys do\n"
    "    local n = tonumber(ARGV[a])\n"
    "    if not skip[k] then\n"
    "      if n == 0 then dels[#dels + 1] = KEYS[k]\n"
    "      elseif ttl > 0 then redis.call('SET', KEYS[k], ARGV[a + 1], 'EX', ttl)\n"
    "      else sets[#sets + 1] = KEYS[k]; sets[#sets + 1] = ARGV[a + 1] end\n"
    "    end\n"
    "    a = a + 1 + n\n"
    "  end\n"
    "  chunked('DEL', nil, dels)\n"
    "  for i = 1, #sets, 2 * C do redis.call('MSET', unpack(sets, i, math.min(i + 2 * C - 1, #sets))) end\n"
    "elseif shape == 'list' then\n"
    "  for k = 2, nkeys do\n"
    "    local n = tonumber(ARGV[a])\n"
    "    if not skip[k] then\n"
    "      for i = a + 1, a + n, C do\n"
    "        redis.call('RPUSH', KEYS[k], unpack(ARGV, i, math.min(i + C - 1, a + n)))\n"
    "      end\n"
    "      if maxlen > 0 then redis.call('LTRIM', KEYS[k], -maxlen, -1) end\n"
    "      if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end\n"
    "    end\n"
    "    a = a + 1 + n\n"
    "  end\n"
    "else\n"
    "  for k = 2, nkeys do\n"
    "    local n = tonumber(ARGV[a])\n"
    "    if not skip[k] then\n"
    "      if maxlen > 0 then\n"
    "        redis.call('XADD', KEYS[k], 'MAXLEN', maxlen, '*', unpack(ARGV, a + 1, a + n))\n"
    "      else\n"
    "        redis.call('XADD', KEYS[k], '*', unpack(ARGV, a + 1, a + n))\n"
    "      end\n"
    "      if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end\n"
    "    end\n"
    "    a = a + 1 + n\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
    "return res\n";

#define O(f) offsetof(struct redis_sink, f)
static const struct cfg_opt redis_tls_opts[] = {
    CFG_STR("ca_file", NULL, O(tls_ca_file),
            "PEM file of the CAs the server's certificate must chain to; default the system's CAs"),
    CFG_STR("cert_file", NULL, O(tls_cert_file),
            "PEM file of the client's certificate (chain), for a server that asks for one; with key_file"),
    CFG_STR("key_file", NULL, O(tls_key_file), "PEM file of the client's private key; with cert_file"),
    CFG_END
};

static const struct cfg_opt redis_opts[] = {
    { .name = "url", .type = CFG_T_STR, .offset = O(url_text), .flags = CFG_REQUIRED | CFG_SECRET,
      .help = "redis://[user[:password]@]host[:port][/db], or rediss:// for TLS; the password may come from ${ENV}" },
    { .name = "password", .type = CFG_T_STR, .offset = O(password), .flags = CFG_SECRET,
      .help = "Password (AUTH), instead of the one in the URL; usually \"${REDIS_PASSWORD}\"; "
              "with redis://user@host, the ACL user's" },
    CFG_SECTION("tls", redis_tls_opts,
                "TLS of a rediss:// URL: the server's certificate is checked against the CAs and the URL's host"),
    { .name = "key", .type = CFG_T_STR, .offset = O(key_text), .flags = CFG_REQUIRED,
      .help = "Key template: {key} (the record key), {$.path} (a field of the value), {topic}, {partition}" },
    CFG_ENUM("shape", "\"string\"", redis_shapes, O(shape),
             "string: SET the value; hash: replace the hash by the value's top-level fields; "
             "list: RPUSH the value; stream: XADD the value's top-level fields"),
    CFG_STRLIST("fields", O(fields), "Only these top-level fields of the value (a projection); default all"),
    CFG_INT("ttl_s", "0", 0, 1000000000, O(ttl_s), "Expiry set on every key written, in seconds; 0: none"),
    CFG_INT("maxlen", "0", 0, 1000000000, O(maxlen),
            "list and stream: keep only the newest N entries (LTRIM, XADD MAXLEN); 0: no limit"),
    CFG_STR("positions_key", NULL, O(positions_key_opt),
            "Hash holding this sink's positions (field topic:partition); default sluice:positions:<name>"),
    CFG_INT("max_in_flight", "16", 1, 1024, O(max_in_flight),
            "script route (list, stream; string by default): batches pipelined on the connection at once "
            "(of different partitions)"),
    CFG_ENUM("route", "\"auto\"", redis_routes, O(route),
             "How a batch is applied with its position: script (one Lua script call), optimistic "
             "(WATCH, MULTI/EXEC of plain commands; hash and string only); auto: optimistic for hash, "
             "script for the others"),
    CFG_INT("connections", "4", 1, 64, O(connections),
            "hash and string: connections the batches of different partitions are spread over "
            "(two at a time on each: one writing, the next reading)"),
    CFG_INT("connect_timeout_ms", "5000", 100, 600000, O(connect_timeout_ms),
            "Time allowed to connect, authenticate and load the script"),
    CFG_INT("command_timeout_ms", "10000", 100, 3600000, O(command_timeout_ms),
            "A reply later than this drops the connection; the batch is retried (and applied once)"),
    CFG_INT("reconnect_min_ms", "100", 1, 600000, O(reconnect_min_ms), "First pause before reconnecting"),
    CFG_INT("reconnect_max_ms", "5000", 1, 3600000, O(reconnect_max_ms),
            "Longest pause between reconnection attempts (full-jitter backoff)"),
    CFG_END
};
#undef O

void script_send(struct redis_conn *c, struct redis_req *req)
{
    const char *argv[] = { "SCRIPT", "LOAD", redis_batch_script };
    size_t lens[] = { 6, 4, sizeof redis_batch_script - 1 };
    req_send_argv(c, req, 3, argv, lens);
}

/* ---- small helpers ---- */

static uint32_t key_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* ---- configuration ---- */

/* The tls section, for rediss:// only; its files are read here, so a missing or wrong one is
 * a configuration error (sluice check) rather than a connection that keeps failing. */
static int redis_compile_tls(struct redis_sink *rs, char *err, size_t errlen, const char **key)
{
    char why[512];

    if (!rs->url.tls) {
        if (rs->tls_ca_file || rs->tls_cert_file || rs->tls_key_file) {
            snprintf(err, errlen, "applies to rediss:// URLs only (this one is redis://)");
            *key = rs->tls_ca_file ? "tls.ca_file" : rs->tls_cert_file ? "tls.cert_file" : "tls.key_file";
            return -1;
        }
        return 0;
    }
    if (!rs->tls_cert_file != !rs->tls_key_file) {
        snprintf(err, errlen, "the client certificate needs both tls.cert_file and tls.key_file");
        *key = rs->tls_cert_file ? "tls.key_file" : "tls.cert_file";
        return -1;
    }
    if (!(rs->tls = redis_tls_new(rs->tls_ca_file, rs->tls_cert_file, rs->tls_key_file, why, sizeof why))) {
        snprintf(err, errlen, "%s", why);
        *key = "tls";
        return -1;
    }
    return 0;
}

static int redis_compile(struct redis_sink *rs, char *err, size_t errlen, const char **key)
{
    char why[256];

    if (rs->compiled)
        return 0;
    if (redis_url_parse(rs->url_text, &rs->url, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s", why);
        *key = "url";
        return -1;
    }
    if (rs->password) {
        char *copy = strdup(rs->password);
        if (!copy) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        free(rs->url.password);
        rs->url.password = copy;
    }
    if (rs->url.user && !rs->url.password) {
        snprintf(err, errlen, "redis://USER@host needs the user's password in the password option");
        *key = "password";
        goto fail;
    }
    if (redis_compile_tls(rs, err, errlen, key) != 0)
        goto fail;
    if (!(rs->key_tpl = redis_template_compile(rs->key_text, why, sizeof why))) {
        snprintf(err, errlen, "%s", why);
        *key = "key";
        goto fail;
    }
    for (size_t i = 0; i < rs->fields.n; i++)
        if (rs->fields.v[i][0] == '\0') {
            snprintf(err, errlen, "fields[%zu] is empty", i);
            *key = "fields";
            goto fail;
        }
    if (rs->maxlen > 0 && (rs->shape == SHAPE_STRING || rs->shape == SHAPE_HASH)) {
        snprintf(err, errlen, "maxlen applies to the list and stream shapes only");
        *key = "maxlen";
        goto fail;
    }
    if (rs->route == ROUTE_OPTIMISTIC && rs->shape != SHAPE_STRING && rs->shape != SHAPE_HASH) {
        snprintf(err, errlen, "the optimistic route is for the hash and string shapes");
        *key = "route";
        goto fail;
    }
    if (rs->reconnect_max_ms < rs->reconnect_min_ms) {
        snprintf(err, errlen, "must be at least reconnect_min_ms (%lld)", rs->reconnect_min_ms);
        *key = "reconnect_max_ms";
        goto fail;
    }
    if (rs->positions_key_opt && rs->positions_key_opt[0] == '\0') {
        snprintf(err, errlen, "must not be empty (leave it out for sluice:positions:<name>)");
        *key = "positions_key";
        goto fail;
    }
    if (rs->positions_key_opt)
        rs->positions_key = strdup(rs->positions_key_opt);
    else if (asprintf(&rs->positions_key, "sluice:positions:%s", rs->super.name ? rs->super.name : "") < 0)
        rs->positions_key = NULL;
    if (!rs->positions_key) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rs->optimistic = rs->route == ROUTE_OPTIMISTIC || (rs->route == ROUTE_AUTO && rs->shape == SHAPE_HASH);
    rs->compiled = 1;
    return 0;
fail:
    redis_url_free(&rs->url);
    redis_template_free(rs->key_tpl);
    rs->key_tpl = NULL;
    redis_tls_free(rs->tls);
    rs->tls = NULL;
    return -1;
}

static int redis_check(struct sink *sk, struct sink_check *c)
{
    const char *key = NULL;
    char err[512];

    /* One problem: the shape, key template and fields are compiled together. */
    if (redis_compile((struct redis_sink *)sk, err, sizeof err, &key) != 0)
        return sink_check_problem(c, key, "%s", err);
    return 0;
}

/* ---- mapping records (prepare) ---- */

/* Appends one value's text as a bulk string; the common cases go straight from the record. */
static int bulk_text(struct redis_sink *rs, const struct json_slice *v)
{
    if ((v->kind == JK_STRING && !memchr(v->p + 1, '\\', v->n - 2)))
        return resp_put_bulk(&rs->vals, v->p + 1, v->n - 2);
    if (v->kind == JK_NUMBER || v->kind == JK_TRUE || v->kind == JK_FALSE)
        return resp_put_bulk(&rs->vals, v->p, v->n);
    buf_reset(&rs->body);
    if (redis_text_append(&rs->body, v) != 0)
        return -1;
    return resp_put_bulk(&rs->vals, rs->body.p, rs->body.len);
}

/* Appends the value's top-level fields as bulk strings (name, text) to rs->vals, counting them
 * in *n; null fields are left out, so HGET of such a field answers nil. */
static int fields_append(struct redis_sink *rs, uint32_t *n)
{
    struct json_slice name, value;
    struct json_iter it;

    if (rs->fields.n) {
        for (size_t i = 0; i < rs->fields.n; i++) {
            size_t len = strlen(rs->fields.v[i]);
            value = json_get(&rs->doc, rs->fields.v[i], len);
            if (value.kind == JK_NONE || value.kind == JK_NULL)
                continue;
            if (resp_put_bulk(&rs->vals, rs->fields.v[i], len) != 0 || bulk_text(rs, &value) != 0)
                return -1;
            *n += 2;
        }
        return 0;
    }
    json_iter_init(&it, &rs->doc);
    while (json_iter_next(&it, &name, &value)) {
        if (value.kind == JK_NULL)
            continue;
        if (bulk_text(rs, &name) != 0 || bulk_text(rs, &value) != 0)
            return -1;
        *n += 2;
    }
    return 0;
}

/* The value as stored by string and list: the record's own bytes, or a projection of fields
 * ({"a":...,"b":...} in the order of `fields`, fields the value lacks left out). */
static int value_append(struct redis_sink *rs, const struct sink_record *rec)
{
    struct buf *body = &rs->body;
    int first = 1;

    if (!rs->fields.n)
        return resp_put_bulk(&rs->vals, rec->value, rec->value_len);
    buf_reset(body);
    if (buf_add(body, "{", 1) != 0)
        return -1;
    for (size_t i = 0; i < rs->fields.n; i++) {
        struct json_slice name, value;
        if (!json_member(&rs->doc, rs->fields.v[i], strlen(rs->fields.v[i]), &name, &value))
            continue;
        if ((!first && buf_add(body, ",", 1) != 0) || json_compact(body, &name) != 0 ||
            buf_add(body, ":", 1) != 0 || json_compact(body, &value) != 0)
            return -1;
        first = 0;
    }
    if (buf_add(body, "}", 1) != 0)
        return -1;
    return resp_put_bulk(&rs->vals, body->p, body->len);
}

static int redis_prepare(struct sink *sk, struct sink_record *rec, char *err, size_t errlen)
{
    struct redis_sink *rs = (struct redis_sink *)sk;
    int tombstone = rec->value == NULL;
    struct redis_prep *prep;
    uint32_t nvals = 0;
    char head[32];
    size_t hlen;

    buf_reset(&rs->keybuf);
    buf_reset(&rs->vals);
    if (tombstone && (rs->shape == SHAPE_LIST || rs->shape == SHAPE_STREAM)) {
        /* a feed has nothing to append for a deletion; the record still counts as applied */
        if (!(prep = calloc(1, sizeof *prep)))
            goto oom;
        prep->skip = 1;
        rec->prepared = prep;
        rec->prepared_len = sizeof *prep;
        return 0;
    }
    /* The value is read in place: no DOM, and numbers stay exactly as they were written. */
    if (!tombstone && sink_value_json(rec->value, rec->value_len, &rs->doc, err, errlen) != 0)
        return -1;
    if (redis_template_render(rs->key_tpl, rec, tombstone ? NULL : &rs->doc, &rs->keybuf, err, errlen) != 0)
        return -1;
    if (!tombstone) {
        int need_object = rs->shape == SHAPE_HASH || rs->shape == SHAPE_STREAM || rs->fields.n;
        if (need_object && rs->doc.kind != JK_OBJECT) {
            snprintf(err, errlen, "%s: the value is %s, not a JSON object",
                     rs->fields.n ? "fields projection" : redis_shapes[rs->shape], json_kind_name(rs->doc.kind));
            return -1;
        }
        if (rs->shape == SHAPE_HASH || rs->shape == SHAPE_STREAM) {
            if (fields_append(rs, &nvals) != 0)
                goto oom;
            if (rs->shape == SHAPE_STREAM && nvals == 0) {
                snprintf(err, errlen, "stream: the value has no non-null field to add as an entry");
                return -1;
            }
            if (rs->shape == SHAPE_STREAM && nvals > 2 * STREAM_MAX_FIELDS) {
                snprintf(err, errlen, "stream: the value has more than %d fields", STREAM_MAX_FIELDS);
                return -1;
            }
        } else {
            if (value_append(rs, rec) != 0)
                goto oom;
            nvals = 1;
        }
    }
    head[0] = '$';
    hlen = 1 + redis_fmt_int(head + 1, (long long)rs->keybuf.len);
    head[hlen++] = '\r';
    head[hlen++] = '\n';
    if (!(prep = malloc(sizeof *prep + hlen + rs->keybuf.len + 2 + rs->vals.len)))
        goto oom;
    prep->key_off = (uint32_t)hlen;
    prep->key_len = (uint32_t)rs->keybuf.len;
    prep->resp_key_len = (uint32_t)(hlen + rs->keybuf.len + 2);
    prep->resp_vals_len = (uint32_t)rs->vals.len;
    prep->nvals = nvals;
    prep->key_hash = key_hash(rs->keybuf.p, rs->keybuf.len);
    prep->skip = 0;
    memcpy(prep->data, head, hlen);
    memcpy(prep->data + hlen, rs->keybuf.p, rs->keybuf.len);
    memcpy(prep->data + hlen + rs->keybuf.len, "\r\n", 2);
    if (rs->vals.len)
        memcpy(prep->data + prep->resp_key_len, rs->vals.p, rs->vals.len);
    rec->prepared = prep;
    rec->prepared_len = sizeof *prep + prep->resp_key_len + prep->resp_vals_len;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static void redis_release(struct sink *sk, struct sink_record *rec)
{
    (void)sk;
    free(rec->prepared);
    rec->prepared = NULL;
}

/* Puts the EVALSHA of batch @p b together in rs->cmd. */
int batch_command(struct redis_sink *rs, const struct sink_batch *b, char *err, size_t errlen)
{
    int collapse = rs->shape == SHAPE_STRING || rs->shape == SHAPE_HASH;
    long nops = batch_plan(rs, &rs->plan, b);
    size_t nargs = 0, bytes = 256 + strlen(rs->positions_key) + strlen(b->topic);
    struct buf *cmd = &rs->cmd;
    char field[300], head[64];
    int hlen;

    if (nops < 0)
        goto oom;
    for (long op = 0; op < nops; op++) {
        uint32_t vals = 0;
        bytes += rec_prep(b, rs->plan.op_head[op])->resp_key_len + 24;
        for (uint32_t i = collapse ? rs->plan.op_tail[op] : rs->plan.op_head[op]; i != UINT32_MAX; i = rs->plan.rec_next[i]) {
            vals += rec_prep(b, i)->nvals;
            bytes += rec_prep(b, i)->resp_vals_len;
            if (collapse)
                break;
        }
        nargs += 1 + vals;
    }
    buf_reset(cmd);
    if (buf_reserve(cmd, bytes) != 0)
        goto oom;
    /* EVALSHA sha numkeys positions-key op-keys... field expected next shape ttl maxlen skip values... */
    hlen = snprintf(head, sizeof head, "*%zu\r\n$7\r\nEVALSHA\r\n$40\r\n", 3 + 1 + (size_t)nops + 7 + nargs);
    if (buf_add(cmd, head, (size_t)hlen) != 0 || buf_add(cmd, rs->sha, 40) != 0 || buf_add(cmd, "\r\n", 2) != 0 ||
        resp_put_bulk_int(cmd, 1 + nops) != 0 || resp_put_bulk(cmd, rs->positions_key, strlen(rs->positions_key)) != 0)
        goto oom;
    for (long op = 0; op < nops; op++) {
        const struct redis_prep *p = rec_prep(b, rs->plan.op_head[op]);
        if (buf_add(cmd, p->data, p->resp_key_len) != 0)
            goto oom;
    }
    hlen = snprintf(field, sizeof field, "%s:%" PRId32, b->topic, b->partition);
    if (resp_put_bulk(cmd, field, (size_t)hlen) != 0 || resp_put_bulk_int(cmd, b->prev_next) != 0 ||
        resp_put_bulk_int(cmd, b->next) != 0 ||
        resp_put_bulk(cmd, redis_shapes[rs->shape], strlen(redis_shapes[rs->shape])) != 0 ||
        resp_put_bulk_int(cmd, rs->ttl_s) != 0 || resp_put_bulk_int(cmd, rs->maxlen) != 0 ||
        resp_put_bulk(cmd, rs->super.on_failure == SINK_ON_FAILURE_BLOCK ? "0" : "1", 1) != 0)
        goto oom;
    for (long op = 0; op < nops; op++) {
        uint32_t vals = 0;
        for (uint32_t i = collapse ? rs->plan.op_tail[op] : rs->plan.op_head[op]; i != UINT32_MAX; i = rs->plan.rec_next[i]) {
            vals += rec_prep(b, i)->nvals;
            if (collapse)
                break;
        }
        if (resp_put_bulk_int(cmd, vals) != 0)
            goto oom;
        for (uint32_t i = collapse ? rs->plan.op_tail[op] : rs->plan.op_head[op]; i != UINT32_MAX; i = rs->plan.rec_next[i]) {
            const struct redis_prep *p = rec_prep(b, i);
            if (buf_add(cmd, p->data + p->resp_key_len, p->resp_vals_len) != 0)
                goto oom;
            if (collapse)
                break;
        }
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* ---- replies ---- */

static int reply_is(const redisReply *r, const char *s)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* Errors a retry may fix: the server is starting, busy, failing over, or lost our script. */
static int error_is_transient(const char *msg)
{
    static const char *const prefixes[] = {
        "LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOSCRIPT",
        "MISCONF", "NOAUTH", "WRONGPASS", "NOREPLICAS", NULL,
    };
    for (size_t i = 0; prefixes[i]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(msg, prefixes[i], n) == 0 && (msg[n] == ' ' || msg[n] == '\0'))
            return 1;
    }
    return 0;
}

void batch_on_error(struct redis_sink *rs, struct sink_batch *b, const char *what, const char *text)
{
    int block = rs->super.on_failure == SINK_ON_FAILURE_BLOCK;
    char msg[512];

    snprintf(msg, sizeof msg, "%s", text);
    sink_batch_note(b, "%s -> %s", what, msg);
    if (error_is_transient(msg)) {
        rs->count.retryable_errors++;
        sink_batch_done(b, SINK_RETRY, msg);
        return;
    }
    if (strncmp(msg, "OOM", 3) == 0) {
        rs->count.oom_errors++;
        sink_log(&rs->super, LOG_ERROR, "%s [%" PRId32 "]: redis is out of memory (%" PRIu64 " times so far): %s; %s",
                 b->topic, b->partition, rs->count.oom_errors, msg,
                 block ? "retrying (on_failure block)" : "dead-lettering the batch");
    } else {
        rs->count.other_errors++;
        sink_log(&rs->super, LOG_ERROR, "%s [%" PRId32 "]: redis refused the batch (%" PRIu64 " times so far): %s; %s",
                 b->topic, b->partition, rs->count.other_errors, msg,
                 block ? "retrying (on_failure block)" : "dead-lettering the batch");
    }
    sink_batch_done(b, block ? SINK_RETRY : SINK_FAIL, msg);
}

/* The batch's verdict from the script's answer. */
void batch_on_reply(struct redis_conn *c, struct sink_batch *b, const redisReply *reply)
{
    struct redis_sink *rs = c->rs;
    int block = rs->super.on_failure == SINK_ON_FAILURE_BLOCK;
    char msg[512];

    if (!reply) {
        rs->count.unknown_outcome++;
        b->unreachable = 1;   /* it may have been applied: never dead-lettered for this */
        sink_batch_note(b, "connection lost before the reply; the retry compares positions and applies once");
        sink_batch_done(b, SINK_RETRY, c->last_error[0] ? c->last_error : "connection to redis lost");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOSCRIPT", 8) == 0 && !c->script_reloading && conn_usable(c)) {
            /* flushed (SCRIPT FLUSH, a restart behind a proxy): load it again, ahead of the retry */
            struct redis_req *req = calloc(1, sizeof *req);
            if (req) {
                req->kind = REQ_SCRIPT;
                req->rs = rs;
                req->conn = c;
                c->script_reloading = 1;
                script_send(c, req);
            }
        }
        batch_on_error(rs, b, "EVALSHA", reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        rs->count.other_errors++;
        sink_batch_done(b, block ? SINK_RETRY : SINK_FAIL, "unexpected reply from the batch script");
        return;
    }
    if (reply_is(reply->element[0], "OK")) {
        size_t bad = (reply->elements - 1) / 2;
        if (bad > 0) {
            long nops = batch_plan(rs, &rs->plan, b);
            if (nops < 0) {
                /* The rest is applied, but which records were skipped is unknown: dead-letter the
                 * whole batch (applied ones too) rather than lose the skipped ones silently. */
                sink_batch_done(b, SINK_FAIL, "out of memory sorting out the records redis skipped (WRONGTYPE)");
                return;
            }
            for (size_t i = 0; i < bad; i++) {
                const redisReply *idx = reply->element[1 + 2 * i], *type = reply->element[2 + 2 * i];
                if (idx->type == REDIS_REPLY_INTEGER && idx->integer >= 1 && idx->integer <= nops)
                    batch_reject_op(rs, &rs->plan, b, (size_t)idx->integer - 1, type->type == REDIS_REPLY_STRING ? type->str : "?");
            }
            sink_log(&rs->super, LOG_WARN, "%s [%" PRId32 "]: %zu key(s) hold another type; their records go to "
                     "the dead letters (%" PRIu64 " so far)", b->topic, b->partition, bad, rs->count.wrongtype_records);
        }
        sink_batch_note(b, "EVALSHA: %zu records, applied", b->count);
        sink_batch_done(b, SINK_OK, NULL);
    } else if (reply_is(reply->element[0], "APPLIED")) {
        rs->count.already_applied++;
        sink_log(&rs->super, LOG_INFO, "%s [%" PRId32 "] batch up to @%" PRId64 ": already applied by an earlier "
                 "attempt whose reply was lost; not applied again", b->topic, b->partition, b->next - 1);
        sink_batch_note(b, "EVALSHA: already applied by an earlier attempt (position %" PRId64 ")", b->next);
        sink_batch_done(b, SINK_OK, NULL);
    } else if (reply_is(reply->element[0], "FENCED")) {
        const redisReply *stored = reply->elements > 1 ? reply->element[1] : NULL;
        rs->count.fenced++;
        snprintf(msg, sizeof msg, "stored position is %.*s, expected %" PRId64 " (another process wrote this partition)",
                 stored && stored->type == REDIS_REPLY_STRING ? (int)stored->len : 1,
                 stored && stored->type == REDIS_REPLY_STRING ? stored->str : "?", b->prev_next);
        sink_batch_note(b, "EVALSHA: %s", msg);
        sink_batch_done(b, SINK_FENCED, msg);
    } else if (reply_is(reply->element[0], "WRONGTYPE")) {
        const redisReply *idx = reply->elements > 2 ? reply->element[1] : NULL;
        long nops = batch_plan(rs, &rs->plan, b);
        rs->count.wrongtype_records += (reply->elements - 1) / 2;
        snprintf(msg, sizeof msg, "WRONGTYPE: a key holds another type; nothing written (on_failure block "
                 "waits for it to be fixed)");
        if (idx && idx->type == REDIS_REPLY_INTEGER && nops > 0 && idx->integer >= 1 && idx->integer <= nops) {
            const struct redis_prep *p = rec_prep(b, rs->plan.op_head[idx->integer - 1]);
            char shown[160];
            key_printable(shown, sizeof shown, p->data + p->key_off, p->key_len);
            snprintf(msg, sizeof msg, "WRONGTYPE: key %s holds a %s, not a %s; nothing written (on_failure block "
                     "retries until it is fixed)", shown,
                     reply->element[2]->type == REDIS_REPLY_STRING ? reply->element[2]->str : "?", redis_shapes[rs->shape]);
        }
        sink_batch_note(b, "EVALSHA: %s", msg);
        sink_batch_done(b, SINK_RETRY, msg);
    } else {
        rs->count.other_errors++;
        sink_batch_done(b, block ? SINK_RETRY : SINK_FAIL, "unexpected reply from the batch script");
    }
}

int parse_position(const redisReply *r, int64_t *out)
{
    char *end;
    long long v;

    if (r->type == REDIS_REPLY_NIL) {
        *out = -1;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
        return -1;
    v = strtoll(r->str, &end, 10);
    if (end != r->str + r->len || v < 0)
        return -1;
    *out = v;
    return 0;
}

void load_on_reply(struct redis_conn *c, struct sink_positions *req, const redisReply *reply)
{
    struct redis_sink *rs = c->rs;
    char msg[512];

    if (!reply) {
        sink_positions_done(req, 0, c->last_error[0] ? c->last_error : "connection to redis lost");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(msg, sizeof msg, "HMGET %s: %s", rs->positions_key, reply->str);
        sink_positions_done(req, 0, msg);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != req->count) {
        sink_positions_done(req, 0, "unexpected reply to HMGET");
        return;
    }
    for (size_t i = 0; i < req->count; i++) {
        if (parse_position(reply->element[i], &req->next[i]) != 0) {
            snprintf(msg, sizeof msg, "%s field %s:%" PRId32 " does not hold a position (a number)",
                     rs->positions_key, req->topic, req->partitions[i]);
            sink_log(&rs->super, LOG_ERROR, "%s", msg);
            sink_positions_done(req, 0, msg);
            return;
        }
    }
    sink_positions_done(req, 1, NULL);
}

/* ---- the sink's operations ---- */

static int redis_start(struct sink *sk, char *err, size_t errlen)
{
    struct redis_sink *rs = (struct redis_sink *)sk;
    const char *key = NULL;

    if (redis_compile(rs, err, errlen, &key) != 0)
        return -1;
    rs->started = 1;
    rs->stopped = 0;
    return conn_start(rs, err, errlen);
}

/* A batch of the hash and string shapes goes the optimistic route on the connection of its
 * partition (partition modulo the count): one partition's batches stay in order on one
 * connection; the others go the script route on the main connection. */
static void redis_write(struct sink *sk, struct sink_batch *b)
{
    struct redis_sink *rs = (struct redis_sink *)sk;
    struct redis_conn *c = &rs->conns[rs->optimistic ? (size_t)b->partition % rs->nconns : 0];
    struct redis_req *req;

    if (c->state == CONN_IDLE) {
        char why[320];
        snprintf(why, sizeof why, "not connected to redis (%s)", c->last_error[0] ? c->last_error : "reconnecting");
        b->unreachable = 1;
        sink_batch_done(b, SINK_RETRY, why);
        return;
    }
    if (!(req = calloc(1, sizeof *req))) {
        sink_batch_done(b, SINK_RETRY, "out of memory");
        return;
    }
    req->kind = rs->optimistic ? REQ_TX : REQ_BATCH;
    req->rs = rs;
    req->batch = b;
    conn_submit(c, req);
}

static void redis_load_positions(struct sink *sk, struct sink_positions *pos)
{
    struct redis_sink *rs = (struct redis_sink *)sk;
    struct redis_conn *c = &rs->conns[0];
    struct redis_req *req;

    if (c->state == CONN_IDLE) {
        char why[320];
        snprintf(why, sizeof why, "not connected to redis (%s)", c->last_error[0] ? c->last_error : "reconnecting");
        sink_positions_done(pos, 0, why);
        return;
    }
    if (!(req = calloc(1, sizeof *req))) {
        sink_positions_done(pos, 0, "out of memory");
        return;
    }
    req->kind = REQ_LOAD;
    req->rs = rs;
    req->load = pos;
    conn_submit(c, req);
}

static int redis_ready(struct sink *sk, char *why, size_t whylen)
{
    struct redis_sink *rs = (struct redis_sink *)sk;

    for (size_t i = 0; i < rs->nconns; i++) {
        const struct redis_conn *c = &rs->conns[i];
        if (c->state == CONN_READY)
            continue;
        if (c->state == CONN_IDLE)
            snprintf(why, whylen, "not connected to redis %s:%d: %s", rs->url.host, rs->url.port,
                     c->last_error[0] ? c->last_error : "not started");
        else
            snprintf(why, whylen, "connecting to redis %s:%d", rs->url.host, rs->url.port);
        return 0;
    }
    if (!rs->nconns) {
        snprintf(why, whylen, "not started");
        return 0;
    }
    return 1;
}

static void redis_stop(struct sink *sk)
{
    struct redis_sink *rs = (struct redis_sink *)sk;

    if (rs->stopped || !rs->started)
        return;
    rs->stopped = 1;
    conn_stop(rs);
    if (rs->count.unknown_outcome || rs->count.fenced || rs->count.wrongtype_records || rs->count.oom_errors ||
        rs->count.other_errors || rs->count.timeouts)
        sink_log(sk, LOG_INFO, "errors seen: unknown_outcome=%" PRIu64 " already_applied=%" PRIu64 " fenced=%" PRIu64
                 " wrongtype_records=%" PRIu64 " oom=%" PRIu64 " other=%" PRIu64 " retryable=%" PRIu64
                 " timeouts=%" PRIu64 " disconnects=%" PRIu64,
                 rs->count.unknown_outcome, rs->count.already_applied, rs->count.fenced, rs->count.wrongtype_records,
                 rs->count.oom_errors, rs->count.other_errors, rs->count.retryable_errors, rs->count.timeouts,
                 rs->count.disconnects);
}

static void redis_destroy(struct sink *sk)
{
    struct redis_sink *rs = (struct redis_sink *)sk;

    redis_stop(sk);
    conn_release(rs);
    redis_tls_free(rs->tls);
    rs->tls = NULL;
    redis_url_free(&rs->url);
    redis_template_free(rs->key_tpl);
    rs->key_tpl = NULL;
    free(rs->positions_key);
    rs->positions_key = NULL;
    buf_free(&rs->keybuf);
    buf_free(&rs->vals);
    buf_free(&rs->body);
    buf_free(&rs->cmd);
    plan_free(&rs->plan);
    rs->compiled = 0;
}

const struct sink_ops sink_redis_ops = {
    .type = "redis",
    .size = sizeof(struct redis_sink),
    .opts = redis_opts,
    /* not SINK_F_JSON: values are read in place (lib/json.h), several times cheaper than a DOM */
    .flags = SINK_F_TRANSACTIONAL | SINK_F_POSITION_BATCHES,
    .help = "Keeps Redis keys (string, hash, list, stream) fresh, exactly once, pipelined",
    .check = redis_check,
    .start = redis_start,
    .prepare = redis_prepare,
    .release = redis_release,
    .write = redis_write,
    .load_positions = redis_load_positions,
    .stop = redis_stop,
    .destroy = redis_destroy,
    .ready = redis_ready,
};
