/* libFuzzer target: turning a JSON path into line:column over arbitrary text (the first line of
 * the input is the path, the rest the document), and the path helpers that build such paths. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *newline = memchr(data, '\n', size);
    size_t pathlen = newline ? (size_t)(newline - data) : size;
    char *path = malloc(pathlen + 1), built[CFG_PATH_MAX];
    int line = 0, column = 0;

    if (!path)
        return 0;
    memcpy(path, data, pathlen);
    path[pathlen] = '\0';
    if (newline)
        cfg_locate((const char *)newline + 1, size - pathlen - 1, path, &line, &column);
    cfg_path_key(built, sizeof built, path, path);
    cfg_path_index(built, sizeof built, built, pathlen);
    cfg_suggest(path, (const char *const[]){ "batch", "retry", "topics", "name" }, 4);
    free(path);
    return 0;
}
