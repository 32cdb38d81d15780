/* What the command-line tools with subcommands (`sluice dlq`, `sluice ctl`) share. */
#ifndef SLUICE_ROUTER_CLI_H
#define SLUICE_ROUTER_CLI_H

#include <stdio.h>
#include <string.h>

#define CLI_EXIT_USAGE 2

/**
 * @brief The subcommand in @p argv[1] among @p subs (NULL-terminated): its index, or -1 with the
 * process's exit code in @p *exit_code (0 after --help, 2 for none or an unknown one, said on
 * stderr with the usage). On success getopt is set to read the options after it.
 */
static inline int cli_subcommand(int argc, char **argv, const char *tool, const char *const *subs,
                                 void (*usage)(FILE *out), int *exit_code)
{
    extern int optind;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        *exit_code = argc < 2 ? CLI_EXIT_USAGE : 0;
        return -1;
    }
    for (int i = 0; subs[i]; i++)
        if (strcmp(argv[1], subs[i]) == 0) {
            optind = 2;
            return i;
        }
    fprintf(stderr, "%s: unknown command \"%s\"\n", tool, argv[1]);
    usage(stderr);
    *exit_code = CLI_EXIT_USAGE;
    return -1;
}

#endif
