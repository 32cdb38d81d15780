/* The compiled form of an Avro schema, shared by avro_schema.c (which builds it) and avro.c
 * (which decodes with it); nothing outside those two reads it. */
#ifndef SLUICE_AVRO_INT_H
#define SLUICE_AVRO_INT_H

#include <stdint.h>

enum avro_kind {
    AVRO_NULL, AVRO_BOOLEAN, AVRO_INT, AVRO_LONG, AVRO_FLOAT, AVRO_DOUBLE, AVRO_BYTES,
    AVRO_STRING, AVRO_RECORD, AVRO_ENUM, AVRO_ARRAY, AVRO_MAP, AVRO_UNION, AVRO_FIXED,
};

enum avro_logical {
    AVRO_PLAIN, AVRO_DECIMAL, AVRO_UUID, AVRO_DATE, AVRO_TIME_MILLIS, AVRO_TIME_MICROS,
    AVRO_TIMESTAMP_MILLIS, AVRO_TIMESTAMP_MICROS, AVRO_TIMESTAMP_NANOS,
    AVRO_LOCAL_TIMESTAMP_MILLIS, AVRO_LOCAL_TIMESTAMP_MICROS, AVRO_LOCAL_TIMESTAMP_NANOS,
    AVRO_DURATION,
};

/* One type. Nodes refer to each other by index, so a named type used twice (or by itself, in
 * a recursive schema) is one node. */
struct avro_node {
    uint8_t kind;               /* enum avro_kind */
    uint8_t logical;            /* enum avro_logical */
    uint8_t zero_size;          /* its values take no bytes (null, fixed(0), empty record) */
    uint8_t defined;            /* a named type's body is complete (not while compiling it) */
    int32_t scale;              /* decimal */
    uint32_t zero_cost;         /* zero_size: the values one of its values stands for (a record
                                 * of nulls: 1 + its fields'), charged against the datum's budget */
    uint32_t size;              /* fixed: its bytes */
    uint32_t child;             /* array: items; map: values */
    uint32_t first, count;      /* record: fields, enum: symbols, union: branches, in slots */
    int32_t name;               /* named types: index in the compiler's name table; else -1 */
};

/* A record field (its type and its key text "\"name\":"), an enum symbol (its text "\"SYM\""),
 * or a union branch (its type). The text lives in avro_schema.text. */
struct avro_slot {
    uint32_t node;
    uint32_t text_off, text_len;
};

struct avro_schema {
    struct avro_node *nodes;
    struct avro_slot *slots;
    char *text;
    uint32_t nnodes, nslots;
    uint32_t root;
};

#endif
