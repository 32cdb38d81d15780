/* Declared configuration options: each option is declared once, in a table, with its type,
 * default, bounds and help text. One loader applies defaults, checks types and bounds and
 * rejects unknown keys; the same tables print the configuration reference. */
#ifndef SLUICE_CFG_H
#define SLUICE_CFG_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

enum cfg_type {
    CFG_T_STR,      /* char * (malloc'd, owned by the target struct) */
    CFG_T_INT,      /* long long, checked against [min, max] */
    CFG_T_BOOL,     /* int 0/1 */
    CFG_T_ENUM,     /* int: index into choices */
    CFG_T_STRLIST,  /* struct cfg_strlist: a JSON array of strings */
    CFG_T_JSON,     /* json_t * (a new reference, owned by the target struct) */
    CFG_T_SECTION,  /* a nested object parsed with its own table, into the same struct */
};

#define CFG_REQUIRED 0x1u  /* the key must be present; def is ignored */
#define CFG_SECRET   0x2u  /* never printed, not even in error messages */

struct cfg_strlist {
    char **v;
    size_t n;
};

struct cfg_opt {
    const char *name;
    enum cfg_type type;
    const char *def;                 /* default, as JSON text ("10", "\"redis\"", "true"); NULL: none */
    long long min, max;              /* CFG_T_INT bounds */
    size_t offset;                   /* offsetof the field in the target struct */
    const char *const *choices;      /* CFG_T_ENUM: NULL-terminated */
    const struct cfg_opt *section;   /* CFG_T_SECTION: the nested table */
    /* Optional extra check of a present value (after type checks); writes the reason. */
    int (*validate)(const json_t *value, char *err, size_t errlen);
    unsigned flags;
    const char *help;
};

#define CFG_STR(n, d, off, h)            { .name = (n), .type = CFG_T_STR, .def = (d), .offset = (off), .help = (h) }
#define CFG_INT(n, d, lo, hi, off, h)    { .name = (n), .type = CFG_T_INT, .def = (d), .min = (lo), .max = (hi), .offset = (off), .help = (h) }
#define CFG_BOOL(n, d, off, h)           { .name = (n), .type = CFG_T_BOOL, .def = (d), .offset = (off), .help = (h) }
#define CFG_ENUM(n, d, ch, off, h)       { .name = (n), .type = CFG_T_ENUM, .def = (d), .choices = (ch), .offset = (off), .help = (h) }
#define CFG_STRLIST(n, off, h)           { .name = (n), .type = CFG_T_STRLIST, .offset = (off), .help = (h) }
#define CFG_JSON(n, off, h)              { .name = (n), .type = CFG_T_JSON, .offset = (off), .help = (h) }
#define CFG_SECTION(n, tbl, h)           { .name = (n), .type = CFG_T_SECTION, .section = (tbl), .help = (h) }
#define CFG_END                          { .name = NULL }

/* Where configuration errors go: one message per problem, "file:line:column: path: reason". */
struct cfg_errors {
    char **msgs;
    size_t n;
};

/* Where each value of a document that is not JSON text (YAML) stands, since the JSON text
 * locator cannot read it: one entry per value in document order, a collection's entries
 * followed by those of its members (so a subtree is the range [entry, end)). */
#define CFG_MARK_ITEM ((size_t)-1)  /* the entry's key: an array element, or the root */

struct cfg_mark {
    size_t end;          /* one past the last entry of this value's subtree */
    size_t key;          /* offset of the member's name in cfg_marks.keys, or CFG_MARK_ITEM */
    size_t keylen;
    int line, column;    /* 1-based: the member's key, or the element itself */
};

struct cfg_marks {
    struct cfg_mark *v;
    size_t n, cap;
    char *keys;          /* the member names, back to back */
    size_t keys_len, keys_cap;
};

/* The document being checked: its file name and text, to turn a JSON path into line:column. */
struct cfg_doc {
    const char *file;
    const char *text;
    size_t len;
    const struct cfg_marks *marks;  /* NULL: text is JSON and is searched; else these locate */
};

/**
 * @brief Record one error at the JSON path @p path ("sinks[2].batch.max_records", "" for the
 * root) of @p doc. The message reads "file:line:column: path: reason", or "file: reason" when
 * the path does not exist in the text (a missing key points at the object that lacks it).
 */
void cfg_error(struct cfg_errors *errs, const struct cfg_doc *doc, const char *path,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/**
 * @brief Apply table @p opts to object @p obj (may be NULL: all defaults) into @p target:
 * defaults, types, bounds, choices, validators, required keys, and unknown keys (with a
 * "did you mean" suggestion). Errors go to @p errs with @p path as the prefix of each key.
 * Keys listed in @p extra_keys (NULL-terminated, may be NULL) are left to the caller.
 * @return the number of errors added.
 */
int cfg_apply(const struct cfg_opt *opts, const json_t *obj, void *target, const struct cfg_doc *doc,
              const char *path, const char *const *extra_keys, struct cfg_errors *errs);

/** @brief 1 when every option of @p opts (sections included) holds the same value in @p a and
 * @p b, two structs cfg_apply filled from the same table; strings, lists and JSON by content. */
int cfg_equal(const struct cfg_opt *opts, const void *a, const void *b);

/** @brief Free what cfg_apply stored in @p target (strings, lists, JSON references). */
void cfg_release(const struct cfg_opt *opts, void *target);

/** @brief The closest of @p candidates to @p word, or NULL: within an edit distance that grows with
 * the length (1 up to 5 characters, 2 up to 9, ...; a swap of neighbours is one edit), or a
 * prefix of at least 3 characters either way. */
const char *cfg_suggest(const char *word, const char *const *candidates, size_t n);

/** @brief Free every message and reset @p errs. */
void cfg_errors_clear(struct cfg_errors *errs);

/**
 * @brief Find the line and column (1-based) of the value at @p path in JSON @p text.
 * @return 0 when found, -1 otherwise.
 */
int cfg_locate(const char *text, size_t len, const char *path, int *line, int *column);

/** @brief The entry of the member named @p key (@p keylen bytes) of the collection at entry
 * @p at, or CFG_MARK_ITEM. */
size_t cfg_marks_member(const struct cfg_marks *marks, size_t at, const char *key, size_t keylen);

/**
 * @brief Find the line and column (1-based) of the value at @p path in @p doc: through its
 * marks when it has them, else in its JSON text (cfg_locate).
 * @return 0 when found, -1 otherwise.
 */
int cfg_doc_locate(const struct cfg_doc *doc, const char *path, int *line, int *column);

/** @brief Print the reference of a table as Markdown rows (key, type, default, meaning). */
void cfg_print_reference(const struct cfg_opt *opts, const char *prefix, FILE *out);

/* Paths name values as "kafka[\"bootstrap.servers\"]", "sinks[2].batch.max_records"; "" is the root. */
#define CFG_PATH_MAX 1024

/**
 * @brief Write to @p out the path of member @p key of the object at @p base: "base.key", or
 * "base[\"key\"]" when the key holds '.', '[', ']', '"' or '\\' (quotes and backslashes are
 * escaped), or is empty. @p out may not overlap @p base.
 */
void cfg_path_key(char *out, size_t outlen, const char *base, const char *key);

/** @brief Write to @p out the path of element @p index of the array at @p base: "base[index]". */
void cfg_path_index(char *out, size_t outlen, const char *base, size_t index);

#endif
