/* bench-decode: the CPU cost of decoding one Avro record with sluice's decoder (lib/avro.c),
 * against jansson parsing the same record's JSON (json_loadb, then json_decref; nothing
 * printed). Issue 13's goal: decoding Avro costs no more CPU per record than parsing its JSON.
 *
 * The record has 11 fields (id long, name/email/city/country strings, age int, score double,
 * active boolean, created timestamp-millis, tier enum, balance decimal) behind the 5-byte
 * Confluent prefix; its JSON is what the decoder makes of it, so both sides read the same
 * content. Each side decodes N copies, R times, alternating; the process's CPU time is
 * measured and the median of the R runs printed as ns/record, with the ratio avro/json.
 *
 * Usage: bench-decode [--records N] [--repeat R] [--iso] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/avro.h"
#include "tools/common/tool_util.h"

static const char schema[] =
    "{\"type\":\"record\",\"name\":\"Customer\",\"namespace\":\"bench\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"email\",\"type\":\"string\"},{\"name\":\"city\",\"type\":\"string\"},"
    "{\"name\":\"country\",\"type\":\"string\"},{\"name\":\"age\",\"type\":\"int\"},"
    "{\"name\":\"score\",\"type\":\"double\"},{\"name\":\"active\",\"type\":\"boolean\"},"
    "{\"name\":\"created\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    "{\"name\":\"tier\",\"type\":{\"type\":\"enum\",\"name\":\"Tier\",\"symbols\":[\"FREE\",\"SILVER\",\"GOLD\"]}},"
    "{\"name\":\"balance\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":12,\"scale\":2}}]}";

struct enc {
    uint8_t b[256];
    size_t n;
};

static void put_long(struct enc *e, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);

    do {
        e->b[e->n++] = (uint8_t)((u & 0x7f) | (u > 0x7f ? 0x80 : 0));
        u >>= 7;
    } while (u);
}

static void put_raw(struct enc *e, const void *p, size_t n)
{
    memcpy(e->b + e->n, p, n);
    e->n += n;
}

static void put_str(struct enc *e, const char *s)
{
    put_long(e, (int64_t)strlen(s));
    put_raw(e, s, strlen(s));
}

static double cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long records = 1000000, repeat = 5;
    struct avro_decode_opts opts = { 0 };
    struct avro_schema *s;
    struct buf out = { 0 };
    struct enc e = { .b = { 0, 0, 0, 0, 7 }, .n = 5 };
    double score = 87.5, *avro_ns, *json_ns;
    char err[256], *json_text;
    size_t json_len;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--records") == 0 && i + 1 < argc && tool_parse_long(argv[++i], 1, 1000000000, &records) == 0)
            continue;
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc && tool_parse_long(argv[++i], 1, 1000, &repeat) == 0)
            continue;
        if (strcmp(argv[i], "--iso") == 0) {
            opts.timestamps_iso = 1;
            continue;
        }
        fprintf(stderr, "usage: bench-decode [--records N] [--repeat R] [--iso]\n");
        return 2;
    }
    if (!(s = avro_schema_compile(schema, sizeof schema - 1, NULL, 0, err, sizeof err))) {
        fprintf(stderr, "bench-decode: %s\n", err);
        return 1;
    }
    put_long(&e, 123456789);
    put_str(&e, "Ada Lovelace");
    put_str(&e, "ada.lovelace@example.com");
    put_str(&e, "London");
    put_str(&e, "GB");
    put_long(&e, 36);
    put_raw(&e, &score, 8);              /* little-endian, as Avro */
    put_raw(&e, "\x01", 1);
    put_long(&e, 1765000000123);
    put_long(&e, 2);
    put_long(&e, 3);
    put_raw(&e, "\x12\xd6\x87", 3);     /* 1234567: 12345.67 */
    if (avro_decode_json(s, e.b, e.n, 5, &opts, &out, err, sizeof err) != 0) {
        fprintf(stderr, "bench-decode: %s\n", err);
        return 1;
    }
    json_text = buf_steal(&out, &json_len);
    printf("record: %zu Avro bytes, %zu JSON bytes: %s\n", e.n, json_len, json_text);

    avro_ns = calloc((size_t)repeat, sizeof *avro_ns);
    json_ns = calloc((size_t)repeat, sizeof *json_ns);
    if (!avro_ns || !json_ns)
        return 1;
    for (long r = 0; r < repeat; r++) {
        double t0 = cpu_ns();

        for (long i = 0; i < records; i++) {
            buf_reset(&out);
            if (avro_decode_json(s, e.b, e.n, 5, &opts, &out, err, sizeof err) != 0) {
                fprintf(stderr, "bench-decode: %s\n", err);
                return 1;
            }
        }
        avro_ns[r] = (cpu_ns() - t0) / (double)records;
        t0 = cpu_ns();
        for (long i = 0; i < records; i++) {
            json_t *doc = json_loadb(json_text, json_len, 0, NULL);

            if (!doc)
                return 1;
            json_decref(doc);
        }
        json_ns[r] = (cpu_ns() - t0) / (double)records;
    }
    qsort(avro_ns, (size_t)repeat, sizeof *avro_ns, cmp_double);
    qsort(json_ns, (size_t)repeat, sizeof *json_ns, cmp_double);
    printf("avro decode (sluice):   %.0f ns/record (median of %ld runs of %ld)\n", avro_ns[repeat / 2], repeat, records);
    printf("json parse (jansson):   %.0f ns/record\n", json_ns[repeat / 2]);
    printf("ratio avro/json:        %.2f (goal <= 1.00)\n", avro_ns[repeat / 2] / json_ns[repeat / 2]);
    free(avro_ns);
    free(json_ns);
    free(json_text);
    buf_free(&out);
    avro_schema_free(s);
    return 0;
}
