/* Data contracts (contract.h) over lib/jsonschema. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract.h"
#include "lib/jsonschema.h"

#define CONTRACT_FILE_MAX (16u << 20)   /* a schema is small; refuse runaway input */

static char *path_resolve(const char *main_file, const char *file)
{
    const char *slash = strrchr(main_file, '/');
    char *out;

    if (file[0] == '/' || !slash)
        return strdup(file);
    if (asprintf(&out, "%.*s/%s", (int)(slash - main_file), main_file, file) < 0)
        return NULL;
    return out;
}

static char *file_slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long size;

    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
    } else if ((unsigned long)size > CONTRACT_FILE_MAX) {
        snprintf(err, errlen, "is %ld bytes, over the %u a schema may have", size, CONTRACT_FILE_MAX);
    } else if (!(text = malloc((size_t)size + 1))) {
        snprintf(err, errlen, "out of memory");
    } else if (fread(text, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        free(text);
        text = NULL;
    } else {
        text[size] = '\0';
        *len = (size_t)size;
    }
    fclose(f);
    return text;
}

/* "$.properties.email" (the validator's path) to "properties.email" (cfg_locate's). */
static const char *locate_path(const char *jsonpath)
{
    if (jsonpath[0] == '$')
        jsonpath++;
    if (jsonpath[0] == '.')
        jsonpath++;
    return jsonpath;
}

struct jsonschema *contract_schema_load(const char *main_file, const char *file, const struct cfg_doc *doc,
                                        const char *path, struct cfg_errors *errs, int *nerr)
{
    char *resolved = path_resolve(main_file, file), *text = NULL, err[512];
    struct jsonschema *schema = NULL;
    json_error_t jerr;
    json_t *root = NULL;
    size_t len = 0;

    if (!resolved) {
        cfg_error(errs, doc, path, "out of memory");
        (*nerr)++;
        return NULL;
    }
    if (!(text = file_slurp(resolved, &len, err, sizeof err))) {
        cfg_error(errs, doc, path, "%s: %s", resolved, err);
        (*nerr)++;
    } else if (!(root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr))) {
        cfg_error(errs, doc, path, "%s:%d:%d: not JSON: %s", resolved, jerr.line, jerr.column, jerr.text);
        (*nerr)++;
    } else if (!(schema = jsonschema_compile(root, err, sizeof err))) {
        /* The compiler's reason starts with the JSON path in the schema: point at its line. */
        char where[CFG_PATH_MAX];
        const char *colon = strstr(err, ": ");
        int line = 0, column = 0;
        size_t n = colon ? (size_t)(colon - err) : 0;

        if (n > 0 && n < sizeof where && err[0] == '$') {
            memcpy(where, err, n);
            where[n] = '\0';
            if (cfg_locate(text, len, locate_path(where), &line, &column) != 0)
                line = column = 0;
        }
        if (line)
            cfg_error(errs, doc, path, "%s:%d:%d: %s", resolved, line, column, err);
        else
            cfg_error(errs, doc, path, "%s: %s", resolved, err);
        (*nerr)++;
    }
    json_decref(root);
    free(text);
    free(resolved);
    return schema;
}

int contract_check(const struct jsonschema *schema, const json_t *value, const char *not_json,
                   struct contract_verdict *v)
{
    struct jsonschema_violation violation;
    int rc;

    if (!value) {
        snprintf(v->rule, sizeof v->rule, "json");
        snprintf(v->reason, sizeof v->reason, "contract: %s", not_json ? not_json : "value is not JSON");
        return 0;
    }
    memset(&violation, 0, sizeof violation);
    rc = jsonschema_validate(schema, value, &violation);
    if (rc == 1)
        return 1;
    if (rc < 0) {   /* fail closed: a record the contract cannot judge does not pass */
        snprintf(v->rule, sizeof v->rule, "%s at %s", violation.keyword[0] ? violation.keyword : "schema",
                 violation.schema_path[0] ? violation.schema_path : "$");
        snprintf(v->reason, sizeof v->reason, "contract: cannot be checked: %s",
                 violation.reason[0] ? violation.reason : "evaluation error");
        return 0;
    }
    snprintf(v->rule, sizeof v->rule, "%s at %s", violation.keyword, violation.schema_path);
    snprintf(v->reason, sizeof v->reason, "contract: %s", violation.reason);
    return 0;
}
