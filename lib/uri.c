/* Percent-decoding (uri.h). */
#include "uri.h"

#include <stdlib.h>
#include <string.h>

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *uri_decode(const char *s, size_t len, int plus)
{
    const char *end = s + len;
    char *out = malloc(len + 1), *o = out;

    if (!out)
        return NULL;
    while (s < end) {
        if (*s == '%') {
            int c = end - s >= 3 && hex_digit(s[1]) >= 0 && hex_digit(s[2]) >= 0
                        ? hex_digit(s[1]) * 16 + hex_digit(s[2]) : -1;
            if (c <= 0) {      /* a bad escape, or %00 */
                free(out);
                return NULL;
            }
            *o++ = (char)c;
            s += 3;
        } else {
            *o++ = plus && *s == '+' ? ' ' : *s;
            s++;
        }
    }
    *o = '\0';
    return out;
}

char *uri_query_param(const char *query, const char *name)
{
    size_t nlen = strlen(name);

    while (query && *query) {
        const char *amp = strchr(query, '&');
        size_t plen = amp ? (size_t)(amp - query) : strlen(query);

        if (plen > nlen && memcmp(query, name, nlen) == 0 && query[nlen] == '=')
            return uri_decode(query + nlen + 1, plen - nlen - 1, 1);
        query = amp ? amp + 1 : NULL;
    }
    return NULL;
}
