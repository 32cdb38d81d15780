/* libFuzzer target: the Avro decoder (lib/avro.c) and schema compiler (lib/avro_schema.c).
 * Byte 0 chooses the mode:
 * - below 0xf0: a datum (the rest of the input) for one of the fixed schemas below (byte 0
 *   modulo their count: all types, a recursive list, logical types, nested containers, items
 *   that take no bytes), decoded with numbers and with ISO timestamps;
 * - 0xf0 and above: the rest is a schema's JSON, up to a NUL byte, then a datum for it.
 * A decode either gives one valid JSON text (checked with lib/json.c, the router's own checker)
 * or fails with a reason that says "at byte N" and leaves the output as it was. Never a crash,
 * a leak or an allocation larger than the input allows. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/avro.h"
#include "lib/json.h"

#include "fuzz_check.h"

static const char *const schemas[] = {
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":["
    "{\"name\":\"n\",\"type\":\"null\"},{\"name\":\"b\",\"type\":\"boolean\"},{\"name\":\"i\",\"type\":\"int\"},"
    "{\"name\":\"l\",\"type\":\"long\"},{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"by\",\"type\":\"bytes\"},{\"name\":\"s\",\"type\":\"string\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Status\",\"symbols\":[\"NEW\",\"PAID\",\"GONE\"]}},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"H\",\"size\":3}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"string\",\"Status\",\"H\"]}]}",

    "{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"v\",\"type\":\"int\"},"
    "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"Node\"}},{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}",

    "{\"type\":\"record\",\"name\":\"L\",\"fields\":["
    "{\"name\":\"dec\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":600,\"scale\":7}},"
    "{\"name\":\"decf\",\"type\":{\"type\":\"fixed\",\"name\":\"D\",\"size\":16,\"logicalType\":\"decimal\",\"precision\":38,\"scale\":38}},"
    "{\"name\":\"uuid\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
    "{\"name\":\"uuidf\",\"type\":{\"type\":\"fixed\",\"name\":\"U\",\"size\":16,\"logicalType\":\"uuid\"}},"
    "{\"name\":\"date\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
    "{\"name\":\"tm\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"}},"
    "{\"name\":\"tu\",\"type\":{\"type\":\"long\",\"logicalType\":\"time-micros\"}},"
    "{\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    "{\"name\":\"tsu\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
    "{\"name\":\"tsn\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-nanos\"}},"
    "{\"name\":\"lts\",\"type\":{\"type\":\"long\",\"logicalType\":\"local-timestamp-millis\"}},"
    "{\"name\":\"ltu\",\"type\":{\"type\":\"long\",\"logicalType\":\"local-timestamp-micros\"}},"
    "{\"name\":\"dur\",\"type\":{\"type\":\"fixed\",\"name\":\"Dur\",\"size\":12,\"logicalType\":\"duration\"}}]}",

    "{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":[\"null\",\"double\",\"float\","
    "{\"type\":\"map\",\"values\":\"string\"}]}}",

    "{\"type\":\"array\",\"items\":[\"null\",{\"type\":\"array\",\"items\":\"null\"},"
    "{\"type\":\"record\",\"name\":\"Empty\",\"fields\":[]}]}",
};
#define NSCHEMAS (sizeof schemas / sizeof *schemas)

static void check_decode(const struct avro_schema *s, const uint8_t *datum, size_t len, int iso)
{
    struct avro_decode_opts opts = { .timestamps_iso = iso };
    static struct buf out;               /* kept across inputs, as the router keeps its buffer */
    char err[256] = "", jerr[256];

    buf_reset(&out);
    buf_adds(&out, "x");
    if (avro_decode_json(s, datum, len, 0, &opts, &out, err, sizeof err) == 0) {
        CHECK(!out.oom);
        if (json_check(out.p + 1, out.len - 1, jerr, sizeof jerr) != 0) {
            fprintf(stderr, "not JSON (%s): %s\n", jerr, out.p + 1);
            CHECK(0);
        }
        if (getenv("FUZZ_AVRO_VERBOSE"))   /* to see what a seed decodes to */
            fprintf(stderr, "%s\n", out.p + 1);
    } else {
        if (getenv("FUZZ_AVRO_VERBOSE"))
            fprintf(stderr, "error: %s\n", err);
        CHECK(strstr(err, " at byte ") != NULL);
        CHECK(out.len == 1 && strcmp(out.p, "x") == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct avro_schema *fixed[NSCHEMAS];
    struct avro_schema *s;
    const uint8_t *nul;
    char err[256] = "";

    if (!fixed[0])
        for (size_t i = 0; i < NSCHEMAS; i++) {
            fixed[i] = avro_schema_compile(schemas[i], strlen(schemas[i]), NULL, 0, err, sizeof err);
            if (!fixed[i])
                fprintf(stderr, "schema %zu: %s\n", i, err);
            CHECK(fixed[i] != NULL);
        }
    if (size == 0)
        return 0;
    if (data[0] < 0xf0) {
        check_decode(fixed[data[0] % NSCHEMAS], data + 1, size - 1, 0);
        check_decode(fixed[data[0] % NSCHEMAS], data + 1, size - 1, 1);
        return 0;
    }
    nul = memchr(data + 1, '\0', size - 1);
    s = avro_schema_compile((const char *)data + 1, nul ? (size_t)(nul - data - 1) : size - 1, NULL, 0, err, sizeof err);
    if (!s) {
        CHECK(strncmp(err, "$", 1) == 0);
        return 0;
    }
    if (nul)
        check_decode(s, nul + 1, size - (size_t)(nul + 1 - data), data[0] & 1);
    avro_schema_free(s);
    return 0;
}
