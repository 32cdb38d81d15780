/* libFuzzer target: the configuration loader on arbitrary bytes. Whatever the file says, loading
 * ends in a configuration or in located errors: no crash, no leak, no undefined behaviour. The
 * same bytes are checked as a sink file too (sluice check --sink, with and without --env-optional). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "router/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_errors errs = { 0 }, warnings = { 0 };
    struct conf *conf;
    char path[64];
    int fd = memfd_create("sluice-fuzz.json", MFD_CLOEXEC);

    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    conf = conf_load(path, &errs);   /* its warnings are freed with it */
    conf_free(conf);
    cfg_errors_clear(&errs);
    /* the same bytes as one sink file, its ${NAME} references required or optional */
    conf_check_sink_file(path, NULL, &(struct conf_load_opts){ .env_optional = size & 1 }, &errs, &warnings);
    cfg_errors_clear(&errs);
    cfg_errors_clear(&warnings);
    close(fd);
    return 0;
}
