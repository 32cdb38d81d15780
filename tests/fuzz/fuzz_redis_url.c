/* libFuzzer target: the redis sink's URL parser (redis://, rediss://, user and password
 * percent-decoded, IPv6 hosts, port, db). The input is the URL. Checks: a parsed URL has a
 * host, a port 1..65535 and a db 0..1000000; a refused one leaves nothing to free and never
 * quotes the password it held (one of 8 to 62 bytes is looked for in the reason). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/redis_key.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct redis_url url;
    char err[256];
    char *text;

    if (size > 4096)
        return 0;
    if (!(text = malloc(size + 1)))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    memset(err, 'x', sizeof err);
    if (redis_url_parse(text, &url, err, sizeof err) == 0) {
        CHECK(url.host && url.host[0] != '\0');
        CHECK(url.port >= 1 && url.port <= 65535);
        CHECK(url.db >= 0 && url.db <= 1000000);
        CHECK(url.tls == 0 || url.tls == 1);
        redis_url_free(&url);
    } else {
        const char *colon, *at;
        CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0');
        CHECK(url.host == NULL && url.user == NULL && url.password == NULL);
        /* the user information's password, as written, must not be in the reason */
        colon = strstr(text, "://") ? strchr(strstr(text, "://") + 3, ':') : NULL;
        at = colon ? strrchr(colon, '@') : NULL;
        if (colon && at && at - colon > 8 && at - colon < 64) {
            char pw[64];
            size_t n = (size_t)(at - colon - 1);
            memcpy(pw, colon + 1, n);
            pw[n] = '\0';
            if (strlen(pw) == n && !strchr(pw, '/'))   /* inside the user information */
                CHECK(strstr(err, pw) == NULL);
        }
    }
    free(text);
    return 0;
}
