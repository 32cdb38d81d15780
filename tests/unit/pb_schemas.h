/* Test schemas for the Protobuf decoder, built as FileDescriptorProtos with protobuf-c (what the
 * registry's ?format=serialized returns; protoc is not needed) and packed to bytes. Shared by
 * test_protobuf.c and the fuzz target. The .proto they stand for is written out beside each. */
#ifndef SLUICE_TEST_PB_SCHEMAS_H
#define SLUICE_TEST_PB_SCHEMAS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <google/protobuf/descriptor.pb-c.h>

typedef Google__Protobuf__FieldDescriptorProto PbField;
typedef Google__Protobuf__DescriptorProto PbMessage;

enum { PB_T_DOUBLE = 1, PB_T_FLOAT, PB_T_INT64, PB_T_UINT64, PB_T_INT32, PB_T_FIXED64, PB_T_FIXED32, PB_T_BOOL,
    PB_T_STRING, PB_T_GROUP, PB_T_MESSAGE, PB_T_BYTES, PB_T_UINT32, PB_T_ENUM, PB_T_SFIXED32, PB_T_SFIXED64,
    PB_T_SINT32, PB_T_SINT64 };
enum { PB_OPT = 1, PB_REP = 3 };

/* A field; type 0 leaves the type unset (type_name alone, as the registry may send). */
static inline PbField *pbt_field(const char *name, int number, int label, int type, const char *type_name,
        const char *json_name, int oneof)
{
    PbField *f = calloc(1, sizeof *f);
    PbField init = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;

    *f = init;
    f->name = (char *)name;
    f->has_number = 1;
    f->number = number;
    f->has_label = 1;
    f->label = (Google__Protobuf__FieldDescriptorProto__Label)label;
    f->has_type = type != 0;
    f->type = (Google__Protobuf__FieldDescriptorProto__Type)(type ? type : 1);
    f->type_name = (char *)type_name;
    f->json_name = (char *)json_name;
    f->has_oneof_index = oneof >= 0;
    f->oneof_index = oneof;
    return f;
}

static inline PbMessage *pbt_message(const char *name, PbField **fields, size_t n, int map_entry)
{
    PbMessage *m = calloc(1, sizeof *m);
    PbMessage init = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;

    *m = init;
    m->name = (char *)name;
    m->n_field = n;
    m->field = calloc(n ? n : 1, sizeof *m->field);
    if (n)
        memcpy(m->field, fields, n * sizeof *fields);
    if (map_entry) {
        Google__Protobuf__MessageOptions oinit = GOOGLE__PROTOBUF__MESSAGE_OPTIONS__INIT;
        m->options = calloc(1, sizeof *m->options);
        *m->options = oinit;
        m->options->has_map_entry = 1;
        m->options->map_entry = 1;
    }
    return m;
}

static inline void pbt_nest(PbMessage *m, PbMessage **nested, size_t n)
{
    m->n_nested_type = n;
    m->nested_type = calloc(n, sizeof *nested);
    memcpy(m->nested_type, nested, n * sizeof *nested);
}

static inline void pbt_oneofs(PbMessage *m, const char *const *names, size_t n)
{
    m->n_oneof_decl = n;
    m->oneof_decl = calloc(n, sizeof *m->oneof_decl);
    for (size_t i = 0; i < n; i++) {
        Google__Protobuf__OneofDescriptorProto init = GOOGLE__PROTOBUF__ONEOF_DESCRIPTOR_PROTO__INIT;
        m->oneof_decl[i] = calloc(1, sizeof *m->oneof_decl[i]);
        *m->oneof_decl[i] = init;
        m->oneof_decl[i]->name = (char *)names[i];
    }
}

static inline Google__Protobuf__EnumDescriptorProto *pbt_enum(const char *name, const char *const *names,
        const int *numbers, size_t n)
{
    Google__Protobuf__EnumDescriptorProto *e = calloc(1, sizeof *e), init = GOOGLE__PROTOBUF__ENUM_DESCRIPTOR_PROTO__INIT;

    *e = init;
    e->name = (char *)name;
    e->n_value = n;
    e->value = calloc(n, sizeof *e->value);
    for (size_t i = 0; i < n; i++) {
        Google__Protobuf__EnumValueDescriptorProto vinit = GOOGLE__PROTOBUF__ENUM_VALUE_DESCRIPTOR_PROTO__INIT;
        e->value[i] = calloc(1, sizeof *e->value[i]);
        *e->value[i] = vinit;
        e->value[i]->name = (char *)names[i];
        e->value[i]->has_number = 1;
        e->value[i]->number = numbers[i];
    }
    return e;
}

/* Frees what the pbt_ helpers allocated (the strings are literals). */
static inline void pbt_free_enum(Google__Protobuf__EnumDescriptorProto *e)
{
    for (size_t j = 0; j < e->n_value; j++)
        free(e->value[j]);
    free(e->value);
    free(e);
}

static inline void pbt_free_message(PbMessage *m)
{
    for (size_t i = 0; i < m->n_field; i++)
        free(m->field[i]);
    for (size_t i = 0; i < m->n_nested_type; i++)
        pbt_free_message(m->nested_type[i]);
    for (size_t i = 0; i < m->n_oneof_decl; i++)
        free(m->oneof_decl[i]);
    for (size_t i = 0; i < m->n_enum_type; i++)
        pbt_free_enum(m->enum_type[i]);
    free(m->enum_type);
    free(m->oneof_decl);
    free(m->nested_type);
    free(m->field);
    free(m->options);
    free(m);
}

/* Packs a file of @p messages (and @p enums at the top) and frees them; *len gets the size. */
static inline uint8_t *pbt_pack_file(const char *name, const char *package, const char *syntax,
        PbMessage **messages, size_t n, Google__Protobuf__EnumDescriptorProto **enums, size_t nenums,
        const char *const *deps, size_t ndeps, size_t *len)
{
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    uint8_t *out;

    f.name = (char *)name;
    f.package = (char *)package;
    f.syntax = (char *)syntax;
    f.n_message_type = n;
    f.message_type = messages;
    f.n_enum_type = nenums;
    f.enum_type = enums;
    f.n_dependency = ndeps;
    f.dependency = (char **)deps;
    *len = google__protobuf__file_descriptor_proto__get_packed_size(&f);
    out = malloc(*len ? *len : 1);
    google__protobuf__file_descriptor_proto__pack(&f, out);
    for (size_t i = 0; i < n; i++)
        pbt_free_message(messages[i]);
    for (size_t i = 0; i < nenums; i++)
        pbt_free_enum(enums[i]);
    return out;
}

/* shop.proto (proto3):
 *   enum Status { UNKNOWN = 0; PAID = 1; SHIPPED = 2; }
 *   message Order {
 *     message Line { string sku = 1; int32 n = 2; }
 *     string id = 1; int64 amount_cents = 2; int32 qty = 3; uint64 big = 4; double price = 5;
 *     float ratio = 6; bool paid = 7; bytes blob = 8; Status status = 9; repeated Line lines = 10;
 *     repeated int32 codes = 11; map<string, int64> counts = 12;
 *     oneof pay { string card = 13; int32 voucher = 14; }
 *     google.protobuf.Timestamp at = 15; google.protobuf.Duration took = 16;
 *     google.protobuf.Int64Value maybe = 17; optional int32 opt = 18;
 *     sint32 s32 = 19; sint64 s64 = 20; fixed32 f32 = 21; fixed64 f64 = 22; sfixed32 sf32 = 23;
 *     sfixed64 sf64 = 24; uint32 u32 = 25; string custom = 26 [json_name = "x-custom"];
 *     Order child = 27; google.protobuf.Struct meta = 28; map<int32, Line> by_n = 29;
 *     repeated string tags = 30; google.protobuf.StringValue note = 31;
 *     google.protobuf.Empty nothing = 32; google.protobuf.Any any = 33; repeated fixed32 samples = 34;
 *     repeated Status history = 35; google.protobuf.FieldMask mask = 36;
 *   }
 *   message Other { string name = 1; }
 * Type names are written relative where protobuf's scoping finds them ("Line", "Status"), as the
 * registry may send them; json_name is left unset except on custom (protoc's lowerCamel applies). */
static inline uint8_t *pbt_shop(size_t *len)
{
    static const char *const deps[] = { "google/protobuf/timestamp.proto", "google/protobuf/duration.proto",
        "google/protobuf/wrappers.proto", "google/protobuf/struct.proto", "google/protobuf/empty.proto",
        "google/protobuf/any.proto", "google/protobuf/field_mask.proto" };
    static const char *const status_names[] = { "UNKNOWN", "PAID", "SHIPPED" };
    static const int status_numbers[] = { 0, 1, 2 };
    static const char *const oneofs[] = { "pay", "_opt" };
    PbField *line_fields[] = {
        pbt_field("sku", 1, PB_OPT, PB_T_STRING, NULL, NULL, -1),
        pbt_field("n", 2, PB_OPT, PB_T_INT32, NULL, NULL, -1),
    };
    PbField *counts_fields[] = {
        pbt_field("key", 1, PB_OPT, PB_T_STRING, NULL, NULL, -1),
        pbt_field("value", 2, PB_OPT, PB_T_INT64, NULL, NULL, -1),
    };
    PbField *by_n_fields[] = {
        pbt_field("key", 1, PB_OPT, PB_T_INT32, NULL, NULL, -1),
        pbt_field("value", 2, PB_OPT, PB_T_MESSAGE, ".shop.Order.Line", NULL, -1),
    };
    PbField *order_fields[] = {
        pbt_field("id", 1, PB_OPT, PB_T_STRING, NULL, NULL, -1),
        pbt_field("amount_cents", 2, PB_OPT, PB_T_INT64, NULL, NULL, -1),
        pbt_field("qty", 3, PB_OPT, PB_T_INT32, NULL, NULL, -1),
        pbt_field("big", 4, PB_OPT, PB_T_UINT64, NULL, NULL, -1),
        pbt_field("price", 5, PB_OPT, PB_T_DOUBLE, NULL, NULL, -1),
        pbt_field("ratio", 6, PB_OPT, PB_T_FLOAT, NULL, NULL, -1),
        pbt_field("paid", 7, PB_OPT, PB_T_BOOL, NULL, NULL, -1),
        pbt_field("blob", 8, PB_OPT, PB_T_BYTES, NULL, NULL, -1),
        pbt_field("status", 9, PB_OPT, 0, "Status", NULL, -1),
        pbt_field("lines", 10, PB_REP, PB_T_MESSAGE, "Line", NULL, -1),
        pbt_field("codes", 11, PB_REP, PB_T_INT32, NULL, NULL, -1),
        pbt_field("counts", 12, PB_REP, PB_T_MESSAGE, "Order.CountsEntry", NULL, -1),
        pbt_field("card", 13, PB_OPT, PB_T_STRING, NULL, NULL, 0),
        pbt_field("voucher", 14, PB_OPT, PB_T_INT32, NULL, NULL, 0),
        pbt_field("at", 15, PB_OPT, PB_T_MESSAGE, ".google.protobuf.Timestamp", NULL, -1),
        pbt_field("took", 16, PB_OPT, PB_T_MESSAGE, "google.protobuf.Duration", NULL, -1),
        pbt_field("maybe", 17, PB_OPT, PB_T_MESSAGE, ".google.protobuf.Int64Value", NULL, -1),
        pbt_field("opt", 18, PB_OPT, PB_T_INT32, NULL, NULL, 1),
        pbt_field("s32", 19, PB_OPT, PB_T_SINT32, NULL, NULL, -1),
        pbt_field("s64", 20, PB_OPT, PB_T_SINT64, NULL, NULL, -1),
        pbt_field("f32", 21, PB_OPT, PB_T_FIXED32, NULL, NULL, -1),
        pbt_field("f64", 22, PB_OPT, PB_T_FIXED64, NULL, NULL, -1),
        pbt_field("sf32", 23, PB_OPT, PB_T_SFIXED32, NULL, NULL, -1),
        pbt_field("sf64", 24, PB_OPT, PB_T_SFIXED64, NULL, NULL, -1),
        pbt_field("u32", 25, PB_OPT, PB_T_UINT32, NULL, NULL, -1),
        pbt_field("custom", 26, PB_OPT, PB_T_STRING, NULL, "x-custom", -1),
        pbt_field("child", 27, PB_OPT, PB_T_MESSAGE, "Order", NULL, -1),
        pbt_field("meta", 28, PB_OPT, PB_T_MESSAGE, ".google.protobuf.Struct", NULL, -1),
        pbt_field("by_n", 29, PB_REP, PB_T_MESSAGE, ".shop.Order.ByNEntry", NULL, -1),
        pbt_field("tags", 30, PB_REP, PB_T_STRING, NULL, NULL, -1),
        pbt_field("note", 31, PB_OPT, PB_T_MESSAGE, ".google.protobuf.StringValue", NULL, -1),
        pbt_field("nothing", 32, PB_OPT, PB_T_MESSAGE, ".google.protobuf.Empty", NULL, -1),
        pbt_field("any", 33, PB_OPT, PB_T_MESSAGE, ".google.protobuf.Any", NULL, -1),
        pbt_field("samples", 34, PB_REP, PB_T_FIXED32, NULL, NULL, -1),
        pbt_field("history", 35, PB_REP, PB_T_ENUM, ".shop.Status", NULL, -1),
        pbt_field("mask", 36, PB_OPT, PB_T_MESSAGE, ".google.protobuf.FieldMask", NULL, -1),
    };
    PbField *other_fields[] = { pbt_field("name", 1, PB_OPT, PB_T_STRING, NULL, NULL, -1) };
    PbMessage *nested[3], *top[2];
    Google__Protobuf__EnumDescriptorProto *enums[1];

    order_fields[17]->has_proto3_optional = 1;
    order_fields[17]->proto3_optional = 1;
    nested[0] = pbt_message("Line", line_fields, 2, 0);
    nested[1] = pbt_message("CountsEntry", counts_fields, 2, 1);
    nested[2] = pbt_message("ByNEntry", by_n_fields, 2, 1);
    top[0] = pbt_message("Order", order_fields, sizeof order_fields / sizeof order_fields[0], 0);
    pbt_nest(top[0], nested, 3);
    pbt_oneofs(top[0], oneofs, 2);
    top[1] = pbt_message("Other", other_fields, 1, 0);
    enums[0] = pbt_enum("Status", status_names, status_numbers, 3);
    return pbt_pack_file("shop.proto", "shop", "proto3", top, 2, enums, 1, deps, 7, len);
}

#endif
