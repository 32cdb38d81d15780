/* `sluice ctl`: commands an operator runs against a running sluice's admin API. For now `tap`:
 * the live stream of GET /sinks/NAME/tap, printed for a person (or raw with --json). It talks to
 * one replica: the one behind the admin URL. */
#ifndef SLUICE_ROUTER_CTL_CLI_H
#define SLUICE_ROUTER_CTL_CLI_H

/** @brief `sluice ctl ...` with @p argv[0] == "ctl"; returns the process's exit code. */
int ctl_cli_main(int argc, char **argv);

#endif
