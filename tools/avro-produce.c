/* avro-produce: the benchmarks' customer records (tests/integration/sluice_lib.sh's
 * make_customer_records, "key<TAB>json" lines) produced as Confluent-framed Avro, so that one data
 * product can be drained both as JSON and as Avro (tools/bench-products.sh).
 *
 *   avro-produce --schema                          print the Avro schema it writes (to register)
 *   avro-produce -b BROKERS -t TOPIC -i SCHEMA_ID [FILE]
 *
 * Each line of FILE (default stdin) becomes one record: the key as is, the value the magic byte
 * 0, SCHEMA_ID as 4 big-endian bytes, then the JSON object encoded in Avro's binary encoding for
 * the fixed schema below (the record's fields in schema order, whatever their order in the
 * JSON). The encoder knows only this schema: an object with another set of fields, a value of
 * another type, a tier that is not a symbol or a balance with more than two decimals is refused
 * with its line number, so nothing is produced that would not decode back to the same JSON.
 * The default partitioner hashes the key, as kcat's does, so a key lands on the same partition
 * as the JSON records produced with kcat. Exits 0 when every record was acknowledged. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "lib/buf.h"
#include "tools/common/tool_util.h"

static const char SCHEMA[] =
    "{\"type\":\"record\",\"name\":\"Customer\",\"namespace\":\"bench\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"email\",\"type\":\"string\"},"
    "{\"name\":\"tier\",\"type\":{\"type\":\"enum\",\"name\":\"Tier\",\"symbols\":[\"gold\",\"silver\",\"basic\"]}},"
    "{\"name\":\"country\",\"type\":\"string\"},"
    "{\"name\":\"balance\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":12,\"scale\":2}},"
    "{\"name\":\"visits\",\"type\":\"int\"},"
    "{\"name\":\"created_at\",\"type\":\"string\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"address\",\"type\":{\"type\":\"record\",\"name\":\"Address\",\"fields\":["
    "{\"name\":\"city\",\"type\":\"string\"},{\"name\":\"zip\",\"type\":\"string\"}]}},"
    "{\"name\":\"seq\",\"type\":\"long\"}]}";

static const char *const TIERS[] = {"gold", "silver", "basic"};
#define BALANCE_MAX 9999999999.99   /* precision 12, scale 2 */

/* Avro's long: zigzag, then 7 bits a byte, low bits first. */
static void put_long(struct buf *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t out[10];
    size_t n = 0;

    while (z >= 0x80) {
        out[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    out[n++] = (uint8_t)z;
    buf_add(b, out, n);
}

static void put_bytes(struct buf *b, const void *p, size_t n)
{
    put_long(b, (int64_t)n);
    buf_add(b, p, n);
}

/* A decimal's unscaled value as big-endian two's complement, in as few bytes as keep its sign. */
static void put_decimal(struct buf *b, int64_t unscaled)
{
    uint8_t be[8];
    size_t skip = 0;

    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)((uint64_t)unscaled >> (56 - 8 * i));
    while (skip < 7 && ((be[skip] == 0x00 && !(be[skip + 1] & 0x80)) || (be[skip] == 0xff && (be[skip + 1] & 0x80))))
        skip++;
    put_bytes(b, be + skip, 8 - skip);
}

static int put_string(struct buf *b, const json_t *obj, const char *field, char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, field);

    if (!json_is_string(v)) {
        snprintf(err, errlen, "%s is not a string", field);
        return -1;
    }
    put_bytes(b, json_string_value(v), json_string_length(v));
    return 0;
}

static int put_integer(struct buf *b, const json_t *obj, const char *field, int64_t min, int64_t max, char *err,
                       size_t errlen)
{
    const json_t *v = json_object_get(obj, field);

    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "%s is not an integer in [%" PRId64 ", %" PRId64 "]", field, min, max);
        return -1;
    }
    put_long(b, json_integer_value(v));
    return 0;
}

/* The customer record, fields in the schema's order. 0, or -1 with the reason in err. */
static int encode(struct buf *b, const json_t *rec, char *err, size_t errlen)
{
    const json_t *tier, *balance, *tags, *address;
    double cents;
    size_t i;
    int t;

    if (!json_is_object(rec) || json_object_size(rec) != 11) {
        snprintf(err, errlen, "not an object of the schema's 11 fields");
        return -1;
    }
    if (put_string(b, rec, "id", err, errlen) || put_string(b, rec, "name", err, errlen) ||
        put_string(b, rec, "email", err, errlen))
        return -1;
    tier = json_object_get(rec, "tier");
    for (t = 0; t < 3; t++)
        if (json_is_string(tier) && strcmp(json_string_value(tier), TIERS[t]) == 0)
            break;
    if (t == 3) {
        snprintf(err, errlen, "tier is not one of gold, silver, basic");
        return -1;
    }
    put_long(b, t);
    if (put_string(b, rec, "country", err, errlen))
        return -1;
    /* jansson reads 123.05 as a double; with at most two decimals and |balance| < 1e10 the
     * rounded cents are exact, and the check below refuses anything else. */
    balance = json_object_get(rec, "balance");
    cents = json_is_number(balance) ? json_number_value(balance) * 100.0 : NAN;
    if (!(fabs(cents) <= BALANCE_MAX * 100.0) || fabs(cents - nearbyint(cents)) > 1e-6) {
        snprintf(err, errlen, "balance is not a number with at most 2 decimals below 1e10");
        return -1;
    }
    put_decimal(b, (int64_t)nearbyint(cents));
    if (put_integer(b, rec, "visits", INT32_MIN, INT32_MAX, err, errlen) ||
        put_string(b, rec, "created_at", err, errlen))
        return -1;
    tags = json_object_get(rec, "tags");
    if (!json_is_array(tags)) {
        snprintf(err, errlen, "tags is not an array");
        return -1;
    }
    if (json_array_size(tags) > 0) {
        put_long(b, (int64_t)json_array_size(tags));
        for (i = 0; i < json_array_size(tags); i++) {
            const json_t *tag = json_array_get(tags, i);
            if (!json_is_string(tag)) {
                snprintf(err, errlen, "tags[%zu] is not a string", i);
                return -1;
            }
            put_bytes(b, json_string_value(tag), json_string_length(tag));
        }
    }
    put_long(b, 0);
    address = json_object_get(rec, "address");
    if (!json_is_object(address) || json_object_size(address) != 2) {
        snprintf(err, errlen, "address is not an object of city and zip");
        return -1;
    }
    if (put_string(b, address, "city", err, errlen) || put_string(b, address, "zip", err, errlen))
        return -1;
    return put_integer(b, rec, "seq", INT64_MIN, INT64_MAX, err, errlen);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err)
        ++*(long *)opaque;
}

static int usage(void)
{
    fprintf(stderr, "usage: avro-produce --schema\n"
                    "       avro-produce -b BROKERS -t TOPIC -i SCHEMA_ID [FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"schema", no_argument, NULL, 's'}, {NULL, 0, NULL, 0}};
    const char *brokers = NULL, *topic = NULL;
    char errstr[512], *line = NULL;
    size_t cap = 0, bytes = 0;
    long schema_id = -1, lineno = 0, records = 0, failed = 0;
    ssize_t got;
    struct buf value;
    uint8_t frame[5] = {0};   /* magic byte 0, the schema id big-endian */
    rd_kafka_conf_t *kc;
    rd_kafka_t *rk;
    FILE *in = stdin;
    int opt, rc = 1;

    while ((opt = getopt_long(argc, argv, "b:t:i:", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': printf("%s\n", SCHEMA); return 0;
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'i':
            if (tool_parse_long(optarg, 0, INT32_MAX, &schema_id) != 0)
                return usage();
            break;
        default: return usage();
        }
    }
    if (!brokers || !topic || schema_id < 0 || argc - optind > 1)
        return usage();
    if (optind < argc && !(in = fopen(argv[optind], "r"))) {
        fprintf(stderr, "avro-produce: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", brokers, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "linger.ms", "20", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "batch.num.messages", "10000", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "queue.buffering.max.messages", "500000", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(kc, "compression.codec", "none", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "avro-produce: %s\n", errstr);
        rd_kafka_conf_destroy(kc);
        goto out_file;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
    rd_kafka_conf_set_opaque(kc, &failed);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof errstr))) {
        fprintf(stderr, "avro-produce: %s\n", errstr);
        rd_kafka_conf_destroy(kc);
        goto out_file;
    }
    buf_init(&value, 1 << 20);
    frame[1] = (uint8_t)(schema_id >> 24);
    frame[2] = (uint8_t)(schema_id >> 16);
    frame[3] = (uint8_t)(schema_id >> 8);
    frame[4] = (uint8_t)schema_id;
    while ((got = getline(&line, &cap, in)) > 0) {
        rd_kafka_resp_err_t perr;
        char *tab, err[160];
        json_error_t jerr;
        json_t *rec;
        int bad;

        lineno++;
        if (line[got - 1] == '\n')
            line[--got] = '\0';
        if (!(tab = memchr(line, '\t', (size_t)got))) {
            fprintf(stderr, "avro-produce: line %ld: no TAB between key and value\n", lineno);
            goto out;
        }
        if (!(rec = json_loadb(tab + 1, (size_t)(line + got - tab - 1), 0, &jerr))) {
            fprintf(stderr, "avro-produce: line %ld: %s\n", lineno, jerr.text);
            goto out;
        }
        buf_reset(&value);
        buf_add(&value, frame, sizeof frame);
        bad = encode(&value, rec, err, sizeof err);
        json_decref(rec);
        if (bad || value.oom) {
            fprintf(stderr, "avro-produce: line %ld: %s\n", lineno, bad ? err : "value over 1 MiB");
            goto out;
        }
        while ((perr = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(line, (size_t)(tab - line)),
                                          RD_KAFKA_V_VALUE(value.p, value.len),
                                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        if (perr) {
            fprintf(stderr, "avro-produce: line %ld: %s\n", lineno, rd_kafka_err2str(perr));
            goto out;
        }
        rd_kafka_poll(rk, 0);
        records++;
        bytes += value.len;
    }
    if (ferror(in)) {
        fprintf(stderr, "avro-produce: read: %s\n", strerror(errno));
        goto out;
    }
    if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "avro-produce: flush timed out\n");
    else if (failed)
        fprintf(stderr, "avro-produce: %ld of %ld records were not delivered\n", failed, records);
    else {
        printf("produced %ld records, %zu bytes of framed Avro values (%.1f on average)\n", records, bytes,
               records ? (double)bytes / (double)records : 0.0);
        rc = 0;
    }
out:
    free(line);
    buf_free(&value);
    rd_kafka_destroy(rk);
out_file:
    if (in != stdin)
        fclose(in);
    return rc;
}
