/* The read side of a Confluent ruleSet (ruleset.h). */
#include "ruleset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cel.h"

#define TEXT_OF(x) #x
#define TEXT_OF_VALUE(x) TEXT_OF(x)
#define RULESET_MAX_RULES_TEXT TEXT_OF_VALUE(RULESET_MAX_RULES)

struct read_rule {
    char *name;
    char *doc;                  /* the rule's "doc", said in reasons when given; NULL: none */
    char *expr;
    int refuse;                 /* onFailure (its read part) is not NONE */
    struct cel_rule *cel;
};

struct ruleset {
    struct read_rule *rules;    /* in the order written; run last first */
    size_t n;
    char *unsupported;          /* why the set cannot be run, or NULL */
};

static const char *str_or(const json_t *obj, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(obj, key));

    return v ? v : dflt;
}

/* Whether rules marked with this enableAt run on a client (the default when not said). */
static int enabled_on_client(const json_t *obj)
{
    const char *at = json_string_value(json_object_get(obj, "enableAt"));

    return !at || strcmp(at, "ALL") == 0 || strcmp(at, "CLIENT") == 0;
}

static int reads(const char *mode)
{
    return strcmp(mode, "READ") == 0 || strcmp(mode, "WRITEREAD") == 0;
}

/* onFailure for the read side: "NONE,DLQ" splits write and read; absent means ERROR. */
static int refuses_on_read(const char *on_failure)
{
    const char *comma = strchr(on_failure, ',');
    const char *part = comma ? comma + 1 : on_failure;

    while (*part == ' ')
        part++;
    return strncmp(part, "NONE", 4) != 0 || (part[4] != '\0' && part[4] != ' ' && part[4] != ',');
}

static int set_unsupported(struct ruleset *rs, const char *fmt, const char *a, const char *b)
{
    char why[600];

    if (rs->unsupported)
        return 0;   /* the first reason is the one given */
    snprintf(why, sizeof why, fmt, a, b);
    return (rs->unsupported = strdup(why)) ? 0 : -1;
}

/* One domain rule: added when it runs on read, or the set marked unsupported. -1: out of memory. */
static int add_rule(struct ruleset *rs, const json_t *rule, size_t index)
{
    char err[400], label[32];
    const char *name = json_string_value(json_object_get(rule, "name"));
    const char *kind = str_or(rule, "kind", "TRANSFORM"), *mode = str_or(rule, "mode", "WRITEREAD");
    const char *type = json_string_value(json_object_get(rule, "type"));
    const char *expr = json_string_value(json_object_get(rule, "expr"));
    const char *doc = json_string_value(json_object_get(rule, "doc"));
    struct read_rule *r;

    snprintf(label, sizeof label, "domainRules[%zu]", index);
    if (!json_is_object(rule) || !name || !*name)
        return set_unsupported(rs, "%s: a rule needs a name%s", label, "");
    if (json_is_true(json_object_get(rule, "disabled")) || !reads(mode) || !enabled_on_client(rule))
        return 0;
    if (!type)
        return set_unsupported(rs, "rule \"%.100s\" has no type%s", name, "");
    if (strcmp(kind, "CONDITION") != 0)
        return set_unsupported(rs, "rule \"%.100s\": %.40s rules change records (kind TRANSFORM), which sluice cannot do",
                               name, type);
    if (strcmp(type, "CEL") != 0)
        return set_unsupported(rs, "rule \"%.100s\": type %.40s cannot be run by sluice (it runs CEL conditions)",
                               name, type);
    if (!expr)
        return set_unsupported(rs, "rule \"%.100s\" has no expr%s", name, "");
    r = &rs->rules[rs->n];
    if (!(r->cel = cel_rule_compile(expr, err, sizeof err)))
        return set_unsupported(rs, "rule \"%.100s\": its expression is outside the CEL that sluice runs: %.300s",
                               name, err);
    r->refuse = refuses_on_read(str_or(rule, "onFailure", "ERROR"));
    r->name = strdup(name);
    r->expr = strdup(expr);
    r->doc = doc && *doc ? strdup(doc) : NULL;
    rs->n++;
    return r->name && r->expr && (r->doc || !doc || !*doc) ? 0 : -1;
}

/* Rules the reader would have to run on the bytes themselves (encryption of the payload). */
static int check_encoding_rules(struct ruleset *rs, const json_t *rules)
{
    size_t i;
    json_t *rule;

    json_array_foreach(rules, i, rule) {
        const char *name = str_or(rule, "name", "(unnamed)");
        if (json_is_true(json_object_get(rule, "disabled")) || !reads(str_or(rule, "mode", "WRITEREAD")) ||
            !enabled_on_client(rule))
            continue;
        return set_unsupported(rs, "encoding rule \"%.100s\" (%.40s) cannot be run by sluice", name,
                               str_or(rule, "type", "no type"));
    }
    return 0;
}

struct ruleset *ruleset_compile(const json_t *rule_set, char *err, size_t errlen)
{
    struct ruleset *rs = calloc(1, sizeof *rs);
    const json_t *domain = json_object_get(rule_set, "domainRules");
    const json_t *encoding = json_object_get(rule_set, "encodingRules");
    int rc = 0;

    if (!rs)
        goto oom;
    if (!rule_set || json_is_null(rule_set) || (json_is_object(rule_set) && !enabled_on_client(rule_set)))
        return rs;
    if (!json_is_object(rule_set))
        rc = set_unsupported(rs, "the ruleSet is not an object%s%s", "", "");
    else if ((domain && !json_is_array(domain)) || (encoding && !json_is_array(encoding)))
        rc = set_unsupported(rs, "the ruleSet's domainRules and encodingRules must be arrays%s%s", "", "");
    else if (json_array_size(domain) > RULESET_MAX_RULES)
        rc = set_unsupported(rs, "the ruleSet has more than %s domain rules%s", RULESET_MAX_RULES_TEXT, "");
    else if (json_array_size(domain) > 0 && !(rs->rules = calloc(json_array_size(domain), sizeof *rs->rules)))
        goto oom;
    else {
        size_t i;
        json_t *rule;
        /* migrationRules translate between schema versions for a reader that asks for another
         * version than the writer's; sluice reads every record with its writer's schema. */
        json_array_foreach(domain, i, rule)
            if ((rc = add_rule(rs, rule, i)) != 0)
                break;
        if (rc == 0)
            rc = check_encoding_rules(rs, encoding);
    }
    if (rc == 0)
        return rs;
oom:
    snprintf(err, errlen, "out of memory");
    ruleset_free(rs);
    return NULL;
}

const char *ruleset_unsupported(const struct ruleset *rs)
{
    return rs->unsupported;
}

size_t ruleset_count(const struct ruleset *rs)
{
    return rs->n;
}

int ruleset_check(const struct ruleset *rs, const json_t *message,
                  void (*noted)(void *arg, const struct ruleset_failure *f), void *arg,
                  struct ruleset_failure *failure)
{
    char err[300];

    for (size_t i = rs->n; i-- > 0;) {
        const struct read_rule *r = &rs->rules[i];
        struct ruleset_failure f = { .rule = r->name, .refuse = r->refuse };
        int verdict = cel_rule_check(r->cel, message, err, sizeof err);

        if (verdict == 1)
            continue;
        /* A rule that cannot be evaluated is a failure too: fail closed. */
        char what[200], doc[140] = "";
        if (verdict == 0)
            snprintf(what, sizeof what, "is false");
        else
            snprintf(what, sizeof what, "could not be evaluated (%.160s)", err);
        if (r->doc)
            snprintf(doc, sizeof doc, " (%.120s)", r->doc);
        /* Cut to the reason's size on purpose (each part is bounded already). */
        if (snprintf(f.reason, sizeof f.reason, "rule \"%.80s\"%s %s: %.160s", r->name, doc, what, r->expr) < 0)
            f.reason[0] = '\0';
        if (!f.refuse) {
            if (noted)
                noted(arg, &f);
            continue;
        }
        *failure = f;
        return 0;
    }
    return 1;
}

void ruleset_free(struct ruleset *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->rules[i].name);
        free(rs->rules[i].doc);
        free(rs->rules[i].expr);
        cel_rule_free(rs->rules[i].cel);
    }
    free(rs->rules);
    free(rs->unsupported);
    free(rs);
}
