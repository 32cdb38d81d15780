/* `sluice ctl status|pause|resume|replay|reload`: the whole group (ctl_group.c). */
#ifndef SLUICE_ROUTER_CTL_GROUP_H
#define SLUICE_ROUTER_CTL_GROUP_H

/** @brief Runs subcommand @p sub with the options in argv (getopt set past it); the exit code. */
int ctl_group_main(const char *sub, int argc, char **argv);

#endif
