/* Reading the configuration's files (conf_src.h): parsing with locations, ${NAME} references
 * from the environment, and messages that never show the values those references took. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_src.h"
#include "lib/buf.h"
#include "lib/cfg_yaml.h"

#define CONF_FILE_MAX (64u << 20)   /* a configuration file is small; refuse runaway input */

void conf_err(struct conf_ctx *ctx, const struct cfg_doc *doc, const char *path,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void conf_err(struct conf_ctx *ctx, const struct cfg_doc *doc, const char *path,
                     const char *fmt, ...)
{
    char reason[CONF_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    ctx->nerr++;
    cfg_error(ctx->errs, doc, path, "%s", reason);
}

void conf_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int conf_strv_push(char ***v, size_t *n, char *s)
{
    char **nv;

    if (!s)
        return -1;
    nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) {
        free(s);
        return -1;
    }
    *v = nv;
    (*v)[(*n)++] = s;
    return 0;
}

void conf_src_free(struct conf_src *src)
{
    json_decref(src->root);
    if (src->marks)
        cfg_marks_free(src->marks);
    free(src->marks);
    free(src->text);
    free(src->file);
    conf_strv_free(src->values, src->nvalues);
    conf_strv_free(src->value_paths, src->nvalues);
    conf_strv_free(src->placeholders, src->nplaceholders);
    conf_strv_free(src->origs, src->nnodes);
    free(src->nodes);
    memset(src, 0, sizeof *src);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading and parsing                                                                         */

static int conf_file_read(const char *file, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(file, "rb");
    size_t cap = 0, n = 0, got;
    char *buf = NULL, *nb;
    int rc = -1;

    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 16384;
            nb = realloc(buf, cap + 1);
            if (!nb) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > CONF_FILE_MAX) {
            snprintf(err, errlen, "larger than %u bytes", CONF_FILE_MAX);
            goto fail;
        }
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        goto fail;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    buf = NULL;
    rc = 0;
fail:
    free(buf);
    fclose(f);
    return rc;
}

/* The format a file name's extension says: ".yaml" and ".yml" are YAML, anything else JSON. */
enum conf_format conf_src_format(const char *name)
{
    size_t n = strlen(name);

    if ((n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0))
        return CONF_YAML;
    return CONF_JSON;
}

int conf_src_is_file_name(const char *name)
{
    size_t n = strlen(name);

    return name[0] != '.' &&
           ((n > 5 && strcmp(name + n - 5, ".json") == 0) || conf_src_format(name) == CONF_YAML);
}

/* Parses the YAML text of @p src into its tree and marks; reports problems. */
static int conf_src_parse_yaml(struct conf_ctx *ctx, struct conf_src *src)
{
    struct cfg_yaml_error yerr;

    src->marks = calloc(1, sizeof *src->marks);
    if (!src->marks) {
        conf_err(ctx, NULL, "", "%s: out of memory", src->file);
        return -1;
    }
    src->root = cfg_yaml_load(src->text, src->doc.len, src->marks, &yerr);
    if (!src->root) {
        conf_err(ctx, NULL, "", "%s:%d:%d: %s", src->file, yerr.line, yerr.column, yerr.reason);
        return -1;
    }
    src->doc.marks = src->marks;
    return 0;
}

/* Reads @p path and parses it into @p src, shown in messages as @p shown; reports problems. */
int conf_src_open(struct conf_ctx *ctx, struct conf_src *src, const char *path,
                         const char *shown)
{
    char err[512];
    json_error_t jerr;

    memset(src, 0, sizeof *src);
    src->first_msg = ctx->errs->n;
    src->file = strdup(shown);
    if (!src->file) {
        conf_err(ctx, NULL, "", "%s: out of memory", shown);
        return -1;
    }
    src->doc.file = src->file;
    if (conf_file_read(path, &src->text, &src->doc.len, err, sizeof err) != 0) {
        conf_err(ctx, &src->doc, "", "%s", err);
        return -1;
    }
    src->doc.text = src->text;
    if (conf_src_format(path) == CONF_YAML) {
        if (conf_src_parse_yaml(ctx, src) != 0)
            return -1;
    } else if (!(src->root = json_loadb(src->text, src->doc.len, JSON_REJECT_DUPLICATES, &jerr))) {
        conf_err(ctx, NULL, "", "%s:%d:%d: JSON syntax error: %s", src->file,
                 jerr.line > 0 ? jerr.line : 1, jerr.column > 0 ? jerr.column : 1, jerr.text);
        return -1;
    }
    if (!json_is_object(src->root)) {
        conf_err(ctx, &src->doc, "", "expected an object");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Environment references                                                                      */

/* Keeps @p value and where it was used; masking decides at the end which values are secret. */
static void conf_src_remember(struct conf_ctx *ctx, struct conf_src *src, const char *value,
                              const char *path)
{
    size_t n = src->nvalues;
    char **v;

    if (!*value)
        return;
    v = realloc(src->value_paths, (n + 1) * sizeof *v);
    if (v)
        src->value_paths = v;
    if (!v || !(src->value_paths[n] = strdup(path)) ||
        conf_strv_push(&src->values, &src->nvalues, strdup(value)) != 0) {
        if (v && n == src->nvalues)
            free(src->value_paths[n]);
        conf_err(ctx, &src->doc, path, "out of memory");
    }
}

/* Replaces ${NAME} in one string; "$${" stands for a literal "${". */
static void conf_env_string(struct conf_ctx *ctx, struct conf_src *src, json_t *node,
                            const char *path)
{
    const char *s = json_string_value(node);
    struct buf b = { 0 };
    int bad = 0, used = 0;
    json_t **nn;

    if (!strchr(s, '$'))
        return;
    for (size_t i = 0; s[i];) {
        if (s[i] == '$' && s[i + 1] == '$' && s[i + 2] == '{') {
            buf_add(&b, "${", 2);
            i += 3;
        } else if (s[i] == '$' && s[i + 1] == '{') {
            size_t start = i + 2, j = start;
            const char *value;
            char name[256];

            if (isalpha((unsigned char)s[j]) || s[j] == '_')
                while (isalnum((unsigned char)s[j]) || s[j] == '_')
                    j++;
            if (j == start || s[j] != '}' || j - start >= sizeof name) {
                conf_err(ctx, &src->doc, path,
                         "malformed environment reference: write ${NAME}, or $${ for a literal ${");
                bad = 1;
                break;
            }
            memcpy(name, s + start, j - start);
            name[j - start] = '\0';
            value = getenv(name);
            if (!value && ctx->env_optional) {
                /* the reference stays as written; its value's checks are dropped later */
                buf_add(&b, s + i, j + 1 - i);
                if (conf_strv_push(&src->placeholders, &src->nplaceholders, strdup(path)) != 0)
                    conf_err(ctx, &src->doc, path, "out of memory");
            } else if (!value) {
                conf_err(ctx, &src->doc, path, "environment variable %s is not set", name);
                /* that says it all: what the checks of the value as written add is noise */
                if (conf_strv_push(&src->placeholders, &src->nplaceholders, strdup(path)) != 0)
                    conf_err(ctx, &src->doc, path, "out of memory");
                bad = 1;
            } else {
                buf_add(&b, value, strlen(value));
                conf_src_remember(ctx, src, value, path);
                used = 1;
            }
            i = j + 1;
        } else {
            buf_add(&b, s + i, 1);
            i++;
        }
    }
    if (bad || b.oom) {
        if (b.oom && !bad)
            conf_err(ctx, &src->doc, path, "out of memory");
        goto done;
    }
    if (!used && strcmp(b.p ? b.p : "", s) == 0)
        goto done;   /* only "$" that were not references */
    /* remember the text as written, for names shown in messages (sinks_dir) */
    nn = realloc(src->nodes, (src->nnodes + 1) * sizeof *nn);
    if (!nn) {
        conf_err(ctx, &src->doc, path, "out of memory");
        goto done;
    }
    src->nodes = nn;
    src->nodes[src->nnodes] = node;
    if (conf_strv_push(&src->origs, &src->nnodes, strdup(s)) != 0) {
        conf_err(ctx, &src->doc, path, "out of memory");
        goto done;
    }
    if (json_string_setn(node, b.p ? b.p : "", b.len) != 0)
        conf_err(ctx, &src->doc, path, "the value from the environment is not valid UTF-8");
done:
    free(b.p);
}

void conf_env_walk(struct conf_ctx *ctx, struct conf_src *src, json_t *node,
                          const char *path)
{
    char sub[CFG_PATH_MAX];
    const char *key;
    json_t *value;
    size_t i;

    if (json_is_object(node)) {
        json_object_foreach(node, key, value) {
            cfg_path_key(sub, sizeof sub, path, key);
            conf_env_walk(ctx, src, value, sub);
        }
    } else if (json_is_array(node)) {
        json_array_foreach(node, i, value) {
            cfg_path_index(sub, sizeof sub, path, i);
            conf_env_walk(ctx, src, value, sub);
        }
    } else if (json_is_string(node)) {
        conf_env_string(ctx, src, node, path);
    }
}

/* The text @p node had before references were replaced (itself when it had none). */
const char *conf_src_orig(const struct conf_src *src, const json_t *node)
{
    for (size_t i = 0; i < src->nnodes; i++)
        if (src->nodes[i] == node)
            return src->origs[i];
    return json_string_value(node);
}

/* Where the location ends in "file:line:column: ..." (messages name paths and reasons after). */
static size_t conf_msg_body(const char *msg, const char *file)
{
    size_t p, n = strlen(file);

    if (strncmp(msg, file, n) != 0 || msg[n] != ':')
        return 0;
    p = n + 1;
    for (int field = 0; field < 2; field++) {
        size_t q = p;

        while (isdigit((unsigned char)msg[q]))
            q++;
        if (q == p || msg[q] != ':')
            break;
        p = q + 1;
    }
    return p;
}

/* Replaces each occurrence of @p value after @p from with "***"; returns the new message. */
static char *conf_scrub(char *msg, size_t from, const char *value)
{
    size_t vn = strlen(value);
    struct buf b = { 0 };
    const char *p = msg + from, *hit;

    if (!vn || !strstr(p, value))
        return msg;
    buf_add(&b, msg, from);
    while ((hit = strstr(p, value)) != NULL) {
        buf_add(&b, p, (size_t)(hit - p));
        buf_add(&b, "***", 3);
        p = hit + vn;
    }
    buf_add(&b, p, strlen(p));
    if (b.oom) {
        /* cannot rebuild it: better no message than one with the value */
        free(b.p);
        msg[0] = '\0';
        return msg;
    }
    free(msg);
    return b.p;
}

static int conf_len_desc(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

    return la < lb ? 1 : la > lb ? -1 : 0;
}

/* The line and column a message about @p file begins with; 0 when it has none. */
static long conf_msg_pos(const char *msg, const char *file)
{
    size_t n = strlen(file);
    long line, col;
    char *end;

    if (strncmp(msg, file, n) != 0 || msg[n] != ':')
        return 0;
    line = strtol(msg + n + 1, &end, 10);
    if (*end != ':')
        return 0;
    col = strtol(end + 1, &end, 10);
    if (*end != ':' || line < 0 || line > 100000000 || col < 0 || col > 100000000)
        return 0;
    return line * 100000000 + col;
}

/* Ends the messages about a file: in the order of the text, and without the values it took
 * from the environment. The scrub is the one place that keeps those values out: any reason may
 * echo a value (librdkafka's, a validator's, a sink type's check). */
/* 1 when message @p msg about @p src concerns @p path ("file:line:col: path: reason"). */
static int conf_msg_is_at(const char *msg, const struct conf_src *src, const char *path)
{
    size_t body = conf_msg_body(msg, src->file), n = strlen(path);

    if (!body || msg[body] != ' ')
        return 0;
    return strncmp(msg + body + 1, path, n) == 0 && msg[body + 1 + n] == ':';
}

void conf_src_drop_placeholders(struct conf_ctx *ctx, struct conf_src *src)
{
    struct cfg_errors *errs = ctx->errs;
    size_t keep = src->first_msg;

    if (!src->nplaceholders || !src->file)
        return;
    for (size_t m = src->first_msg; m < errs->n; m++) {
        int drop = 0;

        for (size_t p = 0; p < src->nplaceholders && !drop; p++)
            drop = conf_msg_is_at(errs->msgs[m], src, src->placeholders[p]) &&
                   !strstr(errs->msgs[m], ": environment variable ");
        if (drop) {
            free(errs->msgs[m]);
            if (ctx->nerr > 0)
                ctx->nerr--;
        } else {
            errs->msgs[keep++] = errs->msgs[m];
        }
    }
    errs->n = keep;
}

/* The values of secret options: only those are masked, so a user name or a host in a
 * message stays readable (and an unrelated word that happens to contain it stays whole). */
static size_t conf_secret_values(struct conf_src *src)
{
    size_t n = 0;

    for (size_t i = 0; i < src->nvalues; i++) {
        if (src->is_secret && !src->is_secret(src, src->value_paths[i])) {
            free(src->values[i]);
            free(src->value_paths[i]);
            continue;
        }
        src->values[n] = src->values[i];
        src->value_paths[n++] = src->value_paths[i];
    }
    src->nvalues = n;
    return n;
}

void conf_src_finish(struct conf_ctx *ctx, struct conf_src *src)
{
    char **msgs;

    if (!src->file)
        return;
    conf_src_drop_placeholders(ctx, src);
    msgs = ctx->errs->msgs;
    /* insertion sort: stable, and files have few problems */
    for (size_t i = src->first_msg + 1; i < ctx->errs->n; i++) {
        char *m = msgs[i];
        long pos = conf_msg_pos(m, src->file);
        size_t j = i;

        while (j > src->first_msg && conf_msg_pos(msgs[j - 1], src->file) > pos) {
            msgs[j] = msgs[j - 1];
            j--;
        }
        msgs[j] = m;
    }
    if (!conf_secret_values(src))
        return;
    /* longest first, so that a value containing another goes whole */
    qsort(src->values, src->nvalues, sizeof *src->values, conf_len_desc);   /* paths no longer used */
    for (size_t m = src->first_msg; m < ctx->errs->n; m++) {
        size_t from = conf_msg_body(msgs[m], src->file);

        for (size_t v = 0; v < src->nvalues; v++)
            msgs[m] = conf_scrub(msgs[m], from, src->values[v]);
    }
}
