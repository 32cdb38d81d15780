/* Compiling FileDescriptorProto(s) into the flat form protobuf.c walks the wire with (see
 * protobuf_int.h). protobuf-c reads the descriptors (descriptor.pb-c.c is generated at build time
 * from Debian's descriptor.proto); nothing of it is kept after pb_schema_load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <google/protobuf/descriptor.pb-c.h>

#include "lib/json.h"
#include "lib/protobuf_int.h"

typedef Google__Protobuf__FileDescriptorProto FileProto;
typedef Google__Protobuf__DescriptorProto MessageProto;
typedef Google__Protobuf__EnumDescriptorProto EnumProto;
typedef Google__Protobuf__FieldDescriptorProto FieldProto;

enum { DESCRIPTOR_MAX_DEPTH = 32, DENSE_MAX_NUMBER = 1024 };

/* The built-in well-known types, for schemas that import them without sending their descriptors
 * (the registry treats google/protobuf/ imports as built in). */
struct builtin_field {
    const char *name;
    uint32_t number;
    uint8_t type, repeated;
    const char *type_name;
    int32_t oneof;
};
struct builtin_message {
    const char *full_name;
    uint8_t map_entry;
    struct builtin_field fields[6];
};

#define WRAPPER(name, type) { ".google.protobuf." name, 0, { { "value", 1, type, 0, NULL, -1 } } }
static const struct builtin_message builtins[] = {
    { ".google.protobuf.Timestamp", 0, { { "seconds", 1, PB_INT64, 0, NULL, -1 }, { "nanos", 2, PB_INT32, 0, NULL, -1 } } },
    { ".google.protobuf.Duration", 0, { { "seconds", 1, PB_INT64, 0, NULL, -1 }, { "nanos", 2, PB_INT32, 0, NULL, -1 } } },
    WRAPPER("DoubleValue", PB_DOUBLE), WRAPPER("FloatValue", PB_FLOAT), WRAPPER("Int64Value", PB_INT64),
    WRAPPER("UInt64Value", PB_UINT64), WRAPPER("Int32Value", PB_INT32), WRAPPER("UInt32Value", PB_UINT32),
    WRAPPER("BoolValue", PB_BOOL), WRAPPER("StringValue", PB_STRING), WRAPPER("BytesValue", PB_BYTES),
    { ".google.protobuf.Empty", 0, { { NULL, 0, 0, 0, NULL, -1 } } },
    { ".google.protobuf.Struct", 0, { { "fields", 1, PB_MESSAGE, 1, ".google.protobuf.Struct.FieldsEntry", -1 } } },
    { ".google.protobuf.Struct.FieldsEntry", 1,
      { { "key", 1, PB_STRING, 0, NULL, -1 }, { "value", 2, PB_MESSAGE, 0, ".google.protobuf.Value", -1 } } },
    { ".google.protobuf.Value", 0,
      { { "null_value", 1, PB_ENUM, 0, ".google.protobuf.NullValue", 0 }, { "number_value", 2, PB_DOUBLE, 0, NULL, 0 },
        { "string_value", 3, PB_STRING, 0, NULL, 0 }, { "bool_value", 4, PB_BOOL, 0, NULL, 0 },
        { "struct_value", 5, PB_MESSAGE, 0, ".google.protobuf.Struct", 0 },
        { "list_value", 6, PB_MESSAGE, 0, ".google.protobuf.ListValue", 0 } } },
    { ".google.protobuf.ListValue", 0, { { "values", 1, PB_MESSAGE, 1, ".google.protobuf.Value", -1 } } },
    { ".google.protobuf.Any", 0, { { "type_url", 1, PB_STRING, 0, NULL, -1 }, { "value", 2, PB_BYTES, 0, NULL, -1 } } },
    { ".google.protobuf.FieldMask", 0, { { "paths", 1, PB_STRING, 1, NULL, -1 } } },
};
#undef WRAPPER

static const struct { const char *full_name; uint8_t wkt; } wkt_names[] = {
    { ".google.protobuf.Timestamp", PB_WKT_TIMESTAMP }, { ".google.protobuf.Duration", PB_WKT_DURATION },
    { ".google.protobuf.DoubleValue", PB_WKT_WRAPPER }, { ".google.protobuf.FloatValue", PB_WKT_WRAPPER },
    { ".google.protobuf.Int64Value", PB_WKT_WRAPPER }, { ".google.protobuf.UInt64Value", PB_WKT_WRAPPER },
    { ".google.protobuf.Int32Value", PB_WKT_WRAPPER }, { ".google.protobuf.UInt32Value", PB_WKT_WRAPPER },
    { ".google.protobuf.BoolValue", PB_WKT_WRAPPER }, { ".google.protobuf.StringValue", PB_WKT_WRAPPER },
    { ".google.protobuf.BytesValue", PB_WKT_WRAPPER }, { ".google.protobuf.Empty", PB_WKT_EMPTY },
    { ".google.protobuf.Struct", PB_WKT_STRUCT }, { ".google.protobuf.Value", PB_WKT_VALUE },
    { ".google.protobuf.ListValue", PB_WKT_LIST }, { ".google.protobuf.Any", PB_WKT_ANY },
    { ".google.protobuf.FieldMask", PB_WKT_FIELD_MASK },
};

/* A name the loader resolves type names against. */
struct name_entry {
    const char *full_name;
    int is_enum;
    int32_t index;
};

/* What the loader holds until the schema is built. */
struct msg_source {
    const MessageProto *proto;          /* NULL: built in */
    const struct builtin_message *builtin;
    int proto3;                         /* its file's syntax is proto3: implicit presence */
};
struct loader {
    struct pb_schema *s;
    struct msg_source *sources;         /* one per s->msgs */
    size_t capmsgs, capsources, capenums;
    struct name_entry *names;
    size_t nnames;
    char *err;
    size_t errlen;
};

/* protobuf-c unpacks nested messages by recursion without a limit: refuse deep nesting first.
 * Descriptors never hold groups, so any wire type but 0, 1, 2 and 5 is refused too. Other
 * malformations are left to protobuf-c, which refuses them. */
static int read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*i >= len)
            return -1;
        *v |= (uint64_t)(p[*i] & 0x7f) << shift;
        if (!(p[(*i)++] & 0x80))
            return 0;
    }
    return -1;
}

static int descriptor_depth_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth)
{
    size_t i = 0;
    uint64_t tag, n;

    if (depth > DESCRIPTOR_MAX_DEPTH)
        return 0;
    while (i < len) {
        if (read_varint(p, len, &i, &tag) != 0)
            return 1;
        switch (tag & 7) {
        case 0:
            if (read_varint(p, len, &i, &n) != 0)
                return 1;
            break;
        case 1: if (len - i < 8) return 1; i += 8; break;
        case 5: if (len - i < 4) return 1; i += 4; break;
        case 2: {
            const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
            if (read_varint(p, len, &i, &n) != 0 || n > len - i)
                return 1;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                    !descriptor_depth_ok(f->descriptor, p + i, (size_t)n, depth + 1))
                return 0;
            i += (size_t)n;
            break;
        }
        default:
            return 0;
        }
    }
    return 1;
}

static int fail(struct loader *ld, const char *what, const char *name)
{
    snprintf(ld->err, ld->errlen, "%s%s%s", what, name ? ": " : "", name ? name : "");
    return -1;
}

/* Room for @p need elements of @p size in *arr (capacity *cap), the new ones zeroed. */
static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    void *p;
    size_t n = *cap ? *cap : 8;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    if (!(p = realloc(*arr, n * size)))
        return -1;
    memset((char *)p + *cap * size, 0, (n - *cap) * size);
    *arr = p;
    *cap = n;
    return 0;
}

/* "scope" + "." + "name" (scope "" gives ".name"), or NULL. */
static char *join_name(const char *scope, const char *name)
{
    size_t n = strlen(scope) + strlen(name) + 2;
    char *s = malloc(n);

    if (s)
        snprintf(s, n, "%s.%s", scope, name);
    return s;
}

static int add_message(struct loader *ld, char *full_name, const MessageProto *proto,
        const struct builtin_message *builtin, int proto3, int32_t *index)
{
    struct pb_schema *s = ld->s;

    if (!full_name || grow((void **)&s->msgs, &ld->capmsgs, s->nmsgs + 1, sizeof *s->msgs) != 0 ||
            grow((void **)&ld->sources, &ld->capsources, s->nmsgs + 1, sizeof *ld->sources) != 0) {
        free(full_name);
        return fail(ld, "out of memory", NULL);
    }
    s->msgs[s->nmsgs].full_name = full_name;
    ld->sources[s->nmsgs] = (struct msg_source){ proto, builtin, proto3 };
    *index = (int32_t)s->nmsgs++;
    return 0;
}

static int value_order(const void *a, const void *b)
{
    const struct pb_enum_value *x = a, *y = b;

    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* A protobuf identifier, [A-Za-z_][A-Za-z0-9_]*: printed into JSON as it is (enum names) or
 * turned into lowerCamel (field names), it needs no escaping. */
static int identifier(const char *s)
{
    if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

/* "" or identifiers joined by dots (a package). */
static int dotted_identifier(const char *s)
{
    char part[256];

    while (*s) {
        size_t n = strcspn(s, ".");
        if (n == 0 || n >= sizeof part)
            return 0;
        memcpy(part, s, n);
        part[n] = '\0';
        if (!identifier(part))
            return 0;
        s += n;
        if (*s == '.' && !*++s)
            return 0;
    }
    return 1;
}

/* @p e NULL: the built-in google.protobuf.NullValue. */
static int add_enum(struct loader *ld, char *full_name, const EnumProto *e)
{
    struct pb_schema *s = ld->s;
    struct pb_enum *en;
    size_t kept = 0, n = e ? e->n_value : 1;

    if (!full_name || grow((void **)&s->enums, &ld->capenums, s->nenums + 1, sizeof *s->enums) != 0) {
        free(full_name);
        return fail(ld, "out of memory", NULL);
    }
    en = &s->enums[s->nenums++];
    en->full_name = full_name;
    en->null_value = strcmp(full_name, ".google.protobuf.NullValue") == 0;
    if (!(en->values = calloc(n ? n : 1, sizeof *en->values)))
        return fail(ld, "out of memory", NULL);
    for (size_t i = 0; i < n; i++) {
        const char *name = e ? e->value[i]->name : "NULL_VALUE";
        if (!identifier(name))
            return fail(ld, "enum value without a valid name in", full_name + 1);
        en->values[i].number = e ? e->value[i]->number : 0;
        en->values[i].order = (uint32_t)i;
        if (!(en->values[i].name = strdup(name)))
            return fail(ld, "out of memory", NULL);
        en->nvalues = i + 1;
    }
    qsort(en->values, n, sizeof *en->values, value_order);
    for (size_t i = 0; i < n; i++) {
        if (kept && en->values[kept - 1].number == en->values[i].number)
            free(en->values[i].name);   /* an alias: the first declared name prints */
        else
            en->values[kept++] = en->values[i];
    }
    en->nvalues = kept;
    return 0;
}

/* Registers a message, its nested messages and enums, under @p scope. */
static int add_message_tree(struct loader *ld, const char *scope, const MessageProto *m, int proto3,
        int32_t *index)
{
    int32_t self, child;
    char *full_name;

    if (!identifier(m->name))
        return fail(ld, "message without a valid name in", scope[0] ? scope + 1 : "the root scope");
    if (add_message(ld, join_name(scope, m->name), m, NULL, proto3, &self) != 0)
        return -1;
    *index = self;
    full_name = ld->s->msgs[self].full_name;
    if (m->n_nested_type && !(ld->s->msgs[self].nested = calloc(m->n_nested_type, sizeof(int32_t))))
        return fail(ld, "out of memory", NULL);
    for (size_t i = 0; i < m->n_nested_type; i++) {
        if (add_message_tree(ld, full_name, m->nested_type[i], proto3, &child) != 0)
            return -1;
        ld->s->msgs[self].nested[ld->s->msgs[self].nnested++] = child;
    }
    for (size_t i = 0; i < m->n_enum_type; i++) {
        if (!identifier(m->enum_type[i]->name))
            return fail(ld, "enum without a valid name in", full_name + 1);
        if (add_enum(ld, join_name(full_name, m->enum_type[i]->name), m->enum_type[i]) != 0)
            return -1;
    }
    return 0;
}

static int name_order(const void *a, const void *b)
{
    return strcmp(((const struct name_entry *)a)->full_name, ((const struct name_entry *)b)->full_name);
}

static const struct name_entry *name_find(const struct loader *ld, const char *full_name)
{
    struct name_entry key = { full_name, 0, 0 };

    return bsearch(&key, ld->names, ld->nnames, sizeof key, name_order);
}

static int index_names(struct loader *ld)
{
    struct pb_schema *s = ld->s;

    if (!(ld->names = calloc(s->nmsgs + s->nenums + 1, sizeof *ld->names)))
        return fail(ld, "out of memory", NULL);
    for (size_t i = 0; i < s->nmsgs; i++)
        ld->names[ld->nnames++] = (struct name_entry){ s->msgs[i].full_name, 0, (int32_t)i };
    for (size_t i = 0; i < s->nenums; i++)
        ld->names[ld->nnames++] = (struct name_entry){ s->enums[i].full_name, 1, (int32_t)i };
    qsort(ld->names, ld->nnames, sizeof *ld->names, name_order);
    for (size_t i = 1; i < ld->nnames; i++)
        if (strcmp(ld->names[i - 1].full_name, ld->names[i].full_name) == 0)
            return fail(ld, "type defined twice", ld->names[i].full_name + 1);
    return 0;
}

/* Resolves @p type_name as written in message @p scope: fully qualified (".a.B"), or relative,
 * searched from the innermost scope outwards as protobuf does. */
static const struct name_entry *resolve(const struct loader *ld, const char *scope, const char *type_name)
{
    const struct name_entry *hit = NULL;
    size_t scope_len = strlen(scope), name_len = strlen(type_name);
    char *candidate;

    if (type_name[0] == '.')
        return name_find(ld, type_name);
    if (!(candidate = malloc(scope_len + name_len + 2)))
        return NULL;
    for (;;) {
        memcpy(candidate, scope, scope_len);
        candidate[scope_len] = '.';
        memcpy(candidate + scope_len + 1, type_name, name_len + 1);
        if ((hit = name_find(ld, candidate)) || scope_len == 0)
            break;
        while (scope_len > 0 && scope[scope_len - 1] != '.')
            scope_len--;
        if (scope_len > 0)
            scope_len--;                /* drop the '.' too: "" is the root scope */
    }
    free(candidate);
    return hit;
}

/* "\"name\":" with JSON escapes; json_name, or lowerCamel of the field name as protoc makes it. */
static char *json_key(const char *name, const char *json_name, size_t *len)
{
    size_t n = strlen(json_name ? json_name : name), at = 0;
    char *k = malloc(6 * n + 4);
    int upper = 0;

    if (!k)
        return NULL;
    k[at++] = '"';
    for (const char *c = json_name ? json_name : name; *c; c++) {
        unsigned char ch = (unsigned char)*c;
        if (!json_name && ch == '_') {
            upper = 1;
            continue;
        }
        if (upper && ch >= 'a' && ch <= 'z')
            ch = (unsigned char)(ch - 'a' + 'A');
        upper = 0;
        if (ch == '"' || ch == '\\') {
            k[at++] = '\\';
            k[at++] = (char)ch;
        } else if (ch < 0x20) {
            at += (size_t)snprintf(k + at, 7, "\\u%04x", ch);
        } else {
            k[at++] = (char)ch;
        }
    }
    k[at++] = '"';
    k[at++] = ':';
    k[at] = '\0';
    *len = at;
    return k;
}

/* What a field descriptor says, from a FieldDescriptorProto or a built-in table. */
struct field_source {
    const char *name, *json_name, *type_name;
    int32_t number, oneof;
    int type, repeated, proto3_optional;
};

static int add_field(struct loader *ld, int32_t mi, size_t noneofs, int proto3, const struct field_source *src)
{
    struct pb_message *m = &ld->s->msgs[mi];
    struct pb_field *f = &m->fields[m->nfields];
    int type = src->type;

    if (!src->name || !src->name[0])
        return fail(ld, "field without a name in", m->full_name + 1);
    if (!(f->name = join_name(m->full_name + 1, src->name)))
        return fail(ld, "out of memory", NULL);
    m->nfields++;                       /* from here on, freed with the message */
    if (src->number < 1 || src->number > 536870911)
        return fail(ld, "field number out of range 1..536870911", f->name);
    f->number = (uint32_t)src->number;
    f->oneof = -1;
    f->target = -1;
    if (src->oneof >= 0) {
        if ((size_t)src->oneof >= noneofs)
            return fail(ld, "oneof index out of range", f->name);
        f->oneof = src->oneof;
    }
    if (src->type_name && src->type_name[0]) {
        const struct name_entry *t = resolve(ld, m->full_name, src->type_name);
        if (!t) {
            snprintf(ld->err, ld->errlen, "%s: type %s is not defined (a missing reference?)", f->name, src->type_name);
            return -1;
        }
        if (type == 0)
            type = t->is_enum ? PB_ENUM : PB_MESSAGE;
        if ((type == PB_ENUM) != t->is_enum || (type != PB_ENUM && type != PB_MESSAGE && type != PB_GROUP)) {
            snprintf(ld->err, ld->errlen, "%s: type %s does not match the field's type", f->name, src->type_name);
            return -1;
        }
        f->target = t->index;
    }
    if (type == PB_GROUP)
        return fail(ld, "proto2 groups are not supported", f->name);
    if (type < PB_DOUBLE || type > PB_SINT64)
        return fail(ld, "unknown field type", f->name);
    if ((type == PB_MESSAGE || type == PB_ENUM) && f->target < 0)
        return fail(ld, "message or enum field without a type name", f->name);
    f->type = (uint8_t)type;
    if (src->repeated)
        f->flags |= PB_REPEATED;
    else if (type == PB_MESSAGE || f->oneof >= 0 || src->proto3_optional || !proto3)
        f->flags |= PB_PRESENCE;
    if (!identifier(src->name) || (src->json_name && !json_utf8_valid(src->json_name, strlen(src->json_name))))
        return fail(ld, "field name or json_name is not a valid name", f->name);
    if (!(f->key = json_key(src->name, src->json_name, &f->key_len)))
        return fail(ld, "out of memory", NULL);
    return 0;
}

static int number_order(const void *a, const void *b)
{
    const struct pb_field_number *x = a, *y = b;

    return x->number < y->number ? -1 : x->number > y->number;
}

/* The number -> field lookup, and map fields marked once every message's fields are known. */
static int index_fields(struct loader *ld, struct pb_message *m)
{
    uint32_t max = 0;

    for (size_t i = 0; i < m->nfields; i++)
        if (m->fields[i].number > max)
            max = m->fields[i].number;
    /* dense when small and not sparse: its size stays in proportion to the descriptor's */
    if (max <= DENSE_MAX_NUMBER && max <= 64 + 8 * m->nfields) {
        if (!(m->dense = calloc((size_t)max + 1, sizeof *m->dense)))
            return fail(ld, "out of memory", NULL);
        m->ndense = (size_t)max + 1;
        for (size_t i = 0; i < m->nfields; i++) {
            if (m->dense[m->fields[i].number])
                return fail(ld, "field number used twice", m->fields[i].name);
            m->dense[m->fields[i].number] = (uint32_t)i + 1;
        }
        return 0;
    }
    if (!(m->sorted = calloc(m->nfields, sizeof *m->sorted)))
        return fail(ld, "out of memory", NULL);
    for (size_t i = 0; i < m->nfields; i++)
        m->sorted[i] = (struct pb_field_number){ m->fields[i].number, (uint32_t)i };
    qsort(m->sorted, m->nfields, sizeof *m->sorted, number_order);
    for (size_t i = 1; i < m->nfields; i++)
        if (m->sorted[i].number == m->sorted[i - 1].number)
            return fail(ld, "field number used twice", m->fields[m->sorted[i].index].name);
    return 0;
}

static int compile_message(struct loader *ld, int32_t mi)
{
    const struct msg_source *src = &ld->sources[mi];
    struct pb_message *m = &ld->s->msgs[mi];
    size_t n = 0;

    if (src->proto) {
        const MessageProto *d = src->proto;
        m->noneofs = d->n_oneof_decl;
        m->map_entry = d->options && d->options->has_map_entry && d->options->map_entry;
        n = d->n_field;
        if (n && !(m->fields = calloc(n, sizeof *m->fields)))
            return fail(ld, "out of memory", NULL);
        for (size_t i = 0; i < n; i++) {
            const FieldProto *f = d->field[i];
            struct field_source fs = {
                f->name, f->json_name, f->type_name, f->has_number ? f->number : 0,
                f->has_oneof_index ? f->oneof_index : -1, f->has_type ? (int)f->type : 0,
                f->has_label && f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED,
                f->has_proto3_optional && f->proto3_optional,
            };
            if (add_field(ld, mi, m->noneofs, src->proto3, &fs) != 0)
                return -1;
        }
    } else {
        const struct builtin_message *b = src->builtin;
        m->map_entry = b->map_entry;
        while (n < sizeof b->fields / sizeof b->fields[0] && b->fields[n].name)
            n++;
        for (size_t i = 0; i < n; i++)
            if (b->fields[i].oneof >= 0)
                m->noneofs = 1;
        if (n && !(m->fields = calloc(n, sizeof *m->fields)))
            return fail(ld, "out of memory", NULL);
        for (size_t i = 0; i < n; i++) {
            const struct builtin_field *bf = &b->fields[i];
            struct field_source fs = { bf->name, NULL, bf->type_name, (int32_t)bf->number, bf->oneof, bf->type,
                bf->repeated, 0 };
            if (add_field(ld, mi, m->noneofs, 1, &fs) != 0)
                return -1;
        }
    }
    for (size_t i = 0; i < sizeof wkt_names / sizeof wkt_names[0]; i++)
        if (strcmp(m->full_name, wkt_names[i].full_name) == 0)
            m->wkt = wkt_names[i].wkt;
    return index_fields(ld, m);
}

static void mark_maps(struct pb_schema *s)
{
    for (size_t i = 0; i < s->nmsgs; i++)
        for (size_t j = 0; j < s->msgs[i].nfields; j++) {
            struct pb_field *f = &s->msgs[i].fields[j];
            if (f->type == PB_MESSAGE && (f->flags & PB_REPEATED) && s->msgs[f->target].map_entry)
                f->flags |= PB_MAP;
        }
}

/* Map entries must have a key (1) and a value (2): the printer relies on it. */
static int check_maps(struct loader *ld)
{
    for (size_t i = 0; i < ld->s->nmsgs; i++) {
        const struct pb_message *m = &ld->s->msgs[i];
        const struct pb_field *key = pb_field_find(m, 1), *value = pb_field_find(m, 2);
        if (!m->map_entry)
            continue;
        if (!key || !value || m->nfields != 2 || (key->flags & PB_REPEATED) || (value->flags & PB_REPEATED) ||
                key->type == PB_MESSAGE || key->type == PB_ENUM || key->type == PB_BYTES ||
                key->type == PB_FLOAT || key->type == PB_DOUBLE)
            return fail(ld, "map entry must have a scalar key (1) and a value (2)", m->full_name + 1);
    }
    return 0;
}

struct pb_schema *pb_schema_load(const struct pb_blob *files, size_t nfiles, char *err, size_t errlen)
{
    struct loader ld = { .err = err, .errlen = errlen };
    FileProto **protos = NULL;
    int rc = -1;

    if (nfiles == 0) {
        snprintf(err, errlen, "no FileDescriptorProto");
        return NULL;
    }
    if (!(ld.s = calloc(1, sizeof *ld.s)) || !(protos = calloc(nfiles, sizeof *protos))) {
        fail(&ld, "out of memory", NULL);
        goto out;
    }
    for (size_t i = 0; i < nfiles; i++) {
        if (!descriptor_depth_ok(&google__protobuf__file_descriptor_proto__descriptor, files[i].p, files[i].len, 0)) {
            snprintf(err, errlen, "FileDescriptorProto %zu: nested deeper than %d or holds a group", i,
                    DESCRIPTOR_MAX_DEPTH);
            goto out;
        }
        if (!(protos[i] = google__protobuf__file_descriptor_proto__unpack(NULL, files[i].len, files[i].p))) {
            snprintf(err, errlen, "FileDescriptorProto %zu (%zu bytes) is not a valid descriptor", i, files[i].len);
            goto out;
        }
    }
    for (size_t i = 0; i < nfiles; i++) {
        const FileProto *fp = protos[i];
        char *package = join_name("", fp->package ? fp->package : "");
        int proto3 = fp->syntax && strcmp(fp->syntax, "proto3") == 0, failed = 0;
        int32_t index;

        if (!package) {
            fail(&ld, "out of memory", NULL);
            goto out;
        }
        if (!dotted_identifier(package + 1)) {
            free(package);
            fail(&ld, "package is not a valid name in", fp->name);
            goto out;
        }
        if (!fp->package || !fp->package[0])
            package[0] = '\0';          /* no package: names start at the root, ".Name" */
        if (i == 0 && fp->n_message_type && !(ld.s->top = calloc(fp->n_message_type, sizeof *ld.s->top)))
            failed = fail(&ld, "out of memory", NULL);
        for (size_t j = 0; !failed && j < fp->n_message_type; j++) {
            failed = add_message_tree(&ld, package, fp->message_type[j], proto3, &index) != 0;
            if (!failed && i == 0)
                ld.s->top[ld.s->ntop++] = index;
        }
        for (size_t j = 0; !failed && j < fp->n_enum_type; j++)
            failed = !identifier(fp->enum_type[j]->name) ? fail(&ld, "enum without a valid name in", fp->name) :
                add_enum(&ld, join_name(package, fp->enum_type[j]->name), fp->enum_type[j]);
        free(package);
        if (failed)
            goto out;
    }
    if (index_names(&ld) != 0)
        goto out;
    {   /* the well-known types the files did not bring */
        int added = 0;
        for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
            int32_t index;
            if (name_find(&ld, builtins[i].full_name))
                continue;
            if (add_message(&ld, strdup(builtins[i].full_name), NULL, &builtins[i], 1, &index) != 0)
                goto out;
            added = 1;
        }
        if (!name_find(&ld, ".google.protobuf.NullValue")) {
            if (add_enum(&ld, strdup(".google.protobuf.NullValue"), NULL) != 0)
                goto out;
            added = 1;
        }
        if (added) {
            free(ld.names);
            ld.names = NULL;
            ld.nnames = 0;
            if (index_names(&ld) != 0)
                goto out;
        }
    }
    for (size_t i = 0; i < ld.s->nmsgs; i++)
        if (compile_message(&ld, (int32_t)i) != 0)
            goto out;
    mark_maps(ld.s);
    if (check_maps(&ld) != 0)
        goto out;
    if (!(ld.s->by_name = calloc(ld.s->nmsgs + 1, sizeof *ld.s->by_name))) {
        fail(&ld, "out of memory", NULL);
        goto out;
    }
    for (size_t i = 0, n = 0; i < ld.nnames; i++)
        if (!ld.names[i].is_enum)       /* names are sorted already */
            ld.s->by_name[n++] = ld.names[i].index;
    rc = 0;
out:
    for (size_t i = 0; protos && i < nfiles; i++)
        if (protos[i])
            google__protobuf__file_descriptor_proto__free_unpacked(protos[i], NULL);
    free(protos);
    free(ld.sources);
    free(ld.names);
    if (rc != 0) {
        pb_schema_free(ld.s);
        return NULL;
    }
    return ld.s;
}

int32_t pb_schema_find(const struct pb_schema *s, const char *full_name)
{
    size_t lo = 0, hi = s->nmsgs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->msgs[s->by_name[mid]].full_name, full_name);
        if (c == 0)
            return s->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const char *pb_schema_message_name(const struct pb_schema *s, const int32_t *idx, size_t nidx)
{
    const struct pb_message *m = NULL;

    for (size_t i = 0; i < nidx; i++) {
        if (idx[i] < 0 || (size_t)idx[i] >= (i == 0 ? s->ntop : m->nnested))
            return NULL;
        m = &s->msgs[i == 0 ? s->top[idx[i]] : m->nested[idx[i]]];
    }
    return m ? m->full_name : NULL;
}

void pb_schema_free(struct pb_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nmsgs; i++) {
        struct pb_message *m = &s->msgs[i];
        for (size_t j = 0; j < m->nfields; j++) {
            free(m->fields[j].name);
            free(m->fields[j].key);
        }
        free(m->fields);
        free(m->dense);
        free(m->sorted);
        free(m->nested);
        free(m->full_name);
    }
    for (size_t i = 0; i < s->nenums; i++) {
        for (size_t j = 0; j < s->enums[i].nvalues; j++)
            free(s->enums[i].values[j].name);
        free(s->enums[i].values);
        free(s->enums[i].full_name);
    }
    free(s->msgs);
    free(s->enums);
    free(s->top);
    free(s->by_name);
    free(s);
}
