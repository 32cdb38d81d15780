/* Data contracts: a topic's JSON Schema (topics.<name>.contract.json_schema), compiled when the
 * configuration loads and checked once per record, after the decode stage and before any sink
 * sees the record. A record that breaks it gets one dead letter (sluice.stage contract). */
#ifndef SLUICE_ROUTER_CONTRACT_H
#define SLUICE_ROUTER_CONTRACT_H

#include <stddef.h>
#include <jansson.h>

#include "lib/cfg.h"

struct jsonschema;

/**
 * @brief Read and compile the JSON Schema @p file (relative to the main file @p main_file).
 * Problems go to @p errs at @p path of @p doc, naming the schema file's own line, column and the
 * JSON path inside it. @return the compiled schema, or NULL (errors added; *nerr counts them).
 */
struct jsonschema *contract_schema_load(const char *main_file, const char *file, const struct cfg_doc *doc,
                                        const char *path, struct cfg_errors *errs, int *nerr);

/* Why a record broke its contract. */
struct contract_verdict {
    char rule[400];             /* sluice.rule: the schema keyword and where it is ("format at $.properties.email.format") */
    char reason[768];           /* "contract: $.email: \"bob@\" is not an email (format)" */
};

/**
 * @brief Check @p value (the record as sinks see it; NULL when it is not JSON, with @p not_json
 * saying why) against @p schema. @return 1 it passes, 0 it breaks the contract (@p v says how;
 * an evaluation error is a violation too: fail closed).
 */
int contract_check(const struct jsonschema *schema, const json_t *value, const char *not_json,
                   struct contract_verdict *v);

#endif
