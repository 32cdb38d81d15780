#include "tool_util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tool_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int tool_write_file_atomic(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    FILE *f = NULL;
    int rc = -1;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    f = fopen(tmp, "w");
    if (f == NULL) {
        snprintf(err, errlen, "%s (temporary copy): %s", path, strerror(errno));
        goto fail;
    }
    if (fprintf(f, "%s\n", text) < 0 || fclose(f) != 0) {
        f = NULL;
        snprintf(err, errlen, "%s (temporary copy): write failed: %s", path, strerror(errno));
        goto fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: rename from temporary copy: %s", path, strerror(errno));
        goto fail;
    }
    rc = 0;
fail:
    if (f != NULL)
        fclose(f);
    if (rc != 0)
        unlink(tmp);
    return rc;
}
