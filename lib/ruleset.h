/* The read side of a Confluent data contract's rules (a registry schema's "ruleSet";
 * DATA-PRODUCTS.md section 3): the domain rules a consumer runs when it reads a record, compiled
 * once per schema. What runs: CONDITION rules of type CEL in READ or WRITEREAD mode, in reverse
 * order as Confluent's deserializers do, each failure acted on by its onFailure (NONE: noted
 * only; ERROR, DLQ or anything else: the record is refused). What cannot run (TRANSFORM rules,
 * ENCRYPT, JSONATA, CEL_FIELD, an expression outside the CEL subset, encoding rules) makes the
 * whole set unsupported, so the caller can hold the records back instead of passing data it
 * cannot judge. Write-only, migration and disabled rules, and rules enabled elsewhere than on
 * clients, are not the reader's. */
#ifndef SLUICE_RULESET_H
#define SLUICE_RULESET_H

#include <stddef.h>
#include <jansson.h>

#define RULESET_MAX_RULES 64

struct ruleset;

/**
 * @brief Compile the read side of @p rule_set (a "ruleSet" object; NULL: no rules). A rule it
 * cannot run, or a malformed set (not an object, a rule without a name or type, more than
 * RULESET_MAX_RULES rules), makes the set unsupported (ruleset_unsupported says why): the
 * caller holds the records back rather than judging them by a part of their contract.
 * NULL only when memory ran out (@p err says so).
 */
struct ruleset *ruleset_compile(const json_t *rule_set, char *err, size_t errlen);

/** @brief Why the set cannot be run ("rule \"encrypt_ssn\": type ENCRYPT ..."), or NULL. */
const char *ruleset_unsupported(const struct ruleset *rs);

/** @brief How many rules run on read. */
size_t ruleset_count(const struct ruleset *rs);

/* A rule that failed: its name, the reason (the condition was false, or why it could not be
 * evaluated), and whether the record is refused for it (onFailure other than NONE). */
struct ruleset_failure {
    const char *rule;           /* the rule's name, owned by the set */
    char reason[512];
    int refuse;
};

/**
 * @brief Run the rules on @p message (the record as sinks see it), last rule first. Failures with
 * onFailure NONE go to @p noted (may be NULL) and the next rule runs; the first failure that
 * refuses stops the run and is written to @p failure.
 * @return 1 when the record passes (maybe with noted failures), 0 when it is refused.
 */
int ruleset_check(const struct ruleset *rs, const json_t *message,
                  void (*noted)(void *arg, const struct ruleset_failure *f), void *arg,
                  struct ruleset_failure *failure);

void ruleset_free(struct ruleset *rs);

#endif
