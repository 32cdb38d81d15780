/* The compiled form of a Protobuf schema, shared by protobuf_schema.c (which builds it from
 * descriptors) and protobuf.c (which walks the wire with it). Private to those two files. */
#ifndef SLUICE_PROTOBUF_INT_H
#define SLUICE_PROTOBUF_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/protobuf.h"

/* descriptor.proto's FieldDescriptorProto.Type values. */
enum pb_type {
    PB_DOUBLE = 1, PB_FLOAT = 2, PB_INT64 = 3, PB_UINT64 = 4, PB_INT32 = 5, PB_FIXED64 = 6,
    PB_FIXED32 = 7, PB_BOOL = 8, PB_STRING = 9, PB_GROUP = 10, PB_MESSAGE = 11, PB_BYTES = 12,
    PB_UINT32 = 13, PB_ENUM = 14, PB_SFIXED32 = 15, PB_SFIXED64 = 16, PB_SINT32 = 17, PB_SINT64 = 18,
};

/* Messages whose proto3 JSON form is not an object of their fields. */
enum pb_wkt {
    PB_WKT_NONE, PB_WKT_TIMESTAMP, PB_WKT_DURATION, PB_WKT_WRAPPER, PB_WKT_EMPTY, PB_WKT_STRUCT,
    PB_WKT_VALUE, PB_WKT_LIST, PB_WKT_ANY, PB_WKT_FIELD_MASK,
};

enum {
    PB_REPEATED = 1,
    PB_PRESENCE = 2,        /* printed when present even if default (proto2, optional, oneof, message) */
    PB_MAP = 4,             /* repeated map entries, printed as an object */
};

struct pb_field {
    uint32_t number;
    uint8_t type;           /* enum pb_type */
    uint8_t flags;
    int32_t oneof;          /* index among the message's oneofs, or -1 */
    int32_t target;         /* message (PB_MESSAGE) or enum (PB_ENUM) index, else -1 */
    char *name;             /* "shop.Order.price": for errors */
    char *key;              /* "\"jsonName\":", escaped once here rather than per record */
    size_t key_len;
};

struct pb_field_number {
    uint32_t number, index;
};

struct pb_message {
    char *full_name;        /* ".shop.Order.Line" */
    uint8_t wkt;            /* enum pb_wkt */
    uint8_t map_entry;
    struct pb_field *fields;            /* declaration order: the JSON's member order */
    size_t nfields, noneofs;
    uint32_t *dense;        /* field number -> index + 1 (0: unknown), when numbers are small */
    size_t ndense;
    struct pb_field_number *sorted;     /* otherwise, sorted by number */
    int32_t *nested;        /* nested message indexes, declaration order (message index paths) */
    size_t nnested;
};

struct pb_enum_value {
    int32_t number;
    uint32_t order;         /* declaration order: of aliases, the first declared is kept */
    char *name;
};

struct pb_enum {
    char *full_name;
    int null_value;         /* google.protobuf.NullValue: printed as null */
    struct pb_enum_value *values;       /* sorted by number; the first declared of aliases only */
    size_t nvalues;
};

struct pb_schema {
    struct pb_message *msgs;
    size_t nmsgs;
    struct pb_enum *enums;
    size_t nenums;
    int32_t *top;           /* files[0]'s top-level messages */
    size_t ntop;
    int32_t *by_name;       /* message indexes sorted by full name (Any's type_url) */
};

/** @brief The index of the message named @p full_name (".pkg.Msg"), or -1. */
int32_t pb_schema_find(const struct pb_schema *s, const char *full_name);

/** @brief The field of @p m numbered @p number, or NULL. */
static inline const struct pb_field *pb_field_find(const struct pb_message *m, uint32_t number)
{
    size_t lo = 0, hi;

    if (m->dense)
        return number < m->ndense && m->dense[number] ? &m->fields[m->dense[number] - 1] : NULL;
    hi = m->nfields;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->sorted[mid].number == number)
            return &m->fields[m->sorted[mid].index];
        if (m->sorted[mid].number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

#endif
