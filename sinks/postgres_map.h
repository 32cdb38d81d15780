/* The postgres sink's pure logic, kept apart from its I/O so unit tests can reach it without a
 * server: the mapping of records to columns (options -> struct pgsink_map), turning one record
 * into a row of texts, matching the mapping against the catalog, and the SQL it runs. */
#ifndef SLUICE_POSTGRES_MAP_H
#define SLUICE_POSTGRES_MAP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "lib/buf.h"
#include "sink.h"

enum pgsink_mode { PGSINK_UPSERT, PGSINK_INSERT };

/* Where a column's value comes from. */
enum pgsink_source {
    PGSINK_SRC_VALUE,      /* a JSON path into the value ("$" is the whole document) */
    PGSINK_SRC_KEY,        /* "@key": the record key, as text */
    PGSINK_SRC_TOPIC,      /* "@topic" */
    PGSINK_SRC_PARTITION,  /* "@partition" */
    PGSINK_SRC_OFFSET,     /* "@offset" */
    PGSINK_SRC_TIMESTAMP,  /* "@timestamp": ISO 8601, UTC, milliseconds */
};

struct pgsink_column {
    char *name;                  /* exact column name (not case-folded) */
    enum pgsink_source source;
    struct jsonpath *path;       /* PGSINK_SRC_VALUE: the path ("$": no steps) */
    int whole;                   /* the path is "$" */
    int is_key;                  /* one of key_columns */
    /* From the catalog (pgsink_catalog_check_target). */
    char *type;                  /* the column's type without its modifier, for the cast */
    int is_json;                 /* json or jsonb: values are passed as JSON text */
    int is_array;                /* an array type: JSON arrays become array literals */
};

/* Everything the sink knows about its target: built from the options by pgsink_map_build,
 * completed from the catalog, then the SQL. */
struct pgsink_map {
    enum pgsink_mode mode;
    char *schema;                /* as configured; NULL: the first match in the search_path */
    char *table;
    char *offsets_schema;        /* as configured; NULL: the target table's schema */
    char *offsets_table;
    struct pgsink_column *cols;
    size_t ncols;
    size_t *keys;                /* indices into cols of the key columns, in key_columns order */
    size_t nkeys;
    size_t *vcols, nvcols;       /* the columns read from the value */
    size_t *kvcols, nkvcols;     /* the key columns among them (read from the key in a tombstone) */
    /* Resolved by the catalog checks. */
    char *resolved_schema;       /* the target's schema */
    char *display;               /* schema.table, for messages */
    char *offsets_display;
    int offsets_updated_at;      /* the offsets table has updated_at (ours does) */
    /* Built by pgsink_sql_build. */
    char *sql_write;             /* upsert or insert of a set of rows (one text[] per column) */
    char *sql_insert;            /* upsert mode: the same rows as a plain INSERT (for new keys) */
    char *sql_delete;            /* upsert mode: delete a set of keys (one text[] per key column) */
    char *sql_cas_update;        /* $1 sink $2 topic $3 partition $4 next $5 expected */
    char *sql_cas_insert;        /* $1 sink $2 topic $3 partition $4 next */
    char *sql_position;          /* $1 sink $2 topic $3 partition -> next_offset */
    char *sql_load;              /* $1 sink $2 topic $3 int[] partitions -> partition, next_offset */
    char *sql_create_offsets;
    char *sql_copy;              /* insert mode: COPY of every column FROM STDIN (text format) */
};

/**
 * @brief Build @p m from the sink's options. @p columns maps column -> source ("$.path",
 * "@key", "@topic", "@partition", "@offset", "@timestamp"); key columns missing from it take
 * the record key. On error writes the reason and, in @p key, the option it concerns.
 */
int pgsink_map_build(struct pgsink_map *m, const char *table, const json_t *columns,
                     const struct cfg_strlist *key_columns, int mode, const char *offsets_table,
                     char *err, size_t errlen, const char **key);

/** @brief Free what @p m holds and zero it. */
void pgsink_map_free(struct pgsink_map *m);
/** @brief The mapped column named @p name, or NULL. */
struct pgsink_column *pgsink_map_find(const struct pgsink_map *m, const char *name);

/* ---- rows: what prepare makes of a record ---- */

/* One record as column texts, in one allocation: this header, int32_t len[ncols] (-1: NULL),
 * uint32_t off[ncols], then the bytes. */
struct pgsink_row {
    uint32_t tombstone;
    uint32_t ncols;
    uint64_t key_hash;           /* over the key columns, to collapse a batch by key */
};

/**
 * @brief Map @p rec to a row, reading the value's JSON in one pass (it must be valid JSON; the
 * sink does not ask the router to parse it). A tombstone carries only the key columns (upsert)
 * or nothing (insert); its key columns mapped to a value path are read at the same path in the
 * record key parsed as JSON. @return 0, or -1 with the reason (the record is dead-lettered).
 */
int pgsink_row_make(const struct pgsink_map *m, const struct sink_record *rec,
                    struct pgsink_row **out, size_t *outlen, char *err, size_t errlen);

/** @brief The text of column @p col (NULL for SQL NULL), its length in @p len. */
const char *pgsink_row_get(const struct pgsink_row *row, size_t col, int32_t *len);

/** @brief 1 when @p a and @p b have the same key columns. */
int pgsink_row_same_key(const struct pgsink_map *m, const struct pgsink_row *a,
                        const struct pgsink_row *b);

/* ---- values ---- */

/**
 * @brief Append the text PostgreSQL should convert for the JSON value @p json (one document):
 * strings unescaped, numbers and booleans as written, objects as JSON; arrays as JSON or, for
 * @p is_array columns, as an array literal; the JSON text itself for @p is_json columns.
 * @return 1 appended, 0 SQL NULL (JSON null), -1 with the reason in @p err (not JSON, or a
 * string holding NUL).
 */
int pgsink_render_text(struct buf *b, const char *json, size_t len, int is_json, int is_array,
                       char *err, size_t errlen);

/* ---- the catalog ---- */

/* The catalog query: $1 schema (NULL: search_path), $2 table. Columns kind, a..g (text). */
extern const char pgsink_catalog_sql[];

/**
 * @brief Match the mapping against the catalog rows of its target table: it exists and is a
 * table, every column exists and can be written, unmapped NOT NULL columns have a default, the
 * key columns carry a unique constraint (upsert), the role has the privileges. Fills the
 * columns' types. @return 0, or -1 with a message naming the table and column.
 */
int pgsink_catalog_check_target(struct pgsink_map *m, const PGresult *res, char *err, size_t errlen);

/**
 * @brief The same for the offsets table. @return 1 when it exists and fits, 0 when it does not
 * exist (create it), -1 with the reason when it exists but does not fit.
 */
int pgsink_catalog_check_offsets(struct pgsink_map *m, const PGresult *res, char *err, size_t errlen);

/** @brief The offsets table's schema for the catalog query and CREATE (after the target check). */
const char *pgsink_offsets_schema(const struct pgsink_map *m);

/** @brief Build every statement (after the catalog checks). 0, or -1 when out of memory. */
int pgsink_sql_build(struct pgsink_map *m);

/** @brief Append "ident" (always quoted, inner quotes doubled). */
int pgsink_quote_ident(struct buf *b, const char *name);

/* ---- errors ---- */

enum pgsink_error_class {
    PGSINK_ERR_RETRY,      /* connection, serialization, deadlock, resources: try the batch again */
    PGSINK_ERR_ROW,        /* the data of some row (class 21, 22, 23, 54000): find it */
    PGSINK_ERR_OTHER,      /* schema, permissions, ...: retried too, but logged as such */
};

/** @brief Classify a SQLSTATE (NULL or empty: a connection problem). */
enum pgsink_error_class pgsink_error_classify(const char *sqlstate);

/** @brief "SQLSTATE: message (detail)" of an error result, into @p out. */
void pgsink_error_text(const PGresult *res, char *out, size_t outlen);

#endif
