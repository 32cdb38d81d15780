/* Percent-decoding of URL paths and query strings, for the HTTP servers on both floors (the
 * admin API's query token, the Schema Registry API's path segments). */
#ifndef SLUICE_URI_H
#define SLUICE_URI_H

#include <stddef.h>

/**
 * @brief Percent-decode @p len bytes of @p s; with @p plus set, '+' is a space (query strings).
 * @return a malloc'd string (the caller frees it), or NULL when an escape is bad, one decodes to
 * a NUL, or memory is short.
 */
char *uri_decode(const char *s, size_t len, int plus);

/**
 * @brief The percent-decoded value of parameter @p name in query string @p query ("a=1&b=%20")
 * ('+' is a space). @return a malloc'd string ("" for "name="), or NULL when absent, badly encoded or
 * holding a NUL.
 */
char *uri_query_param(const char *query, const char *name);

#endif
