/* `sluice dlq`: the dead-letter topic as a workflow. list (grouped by sink and reason), show
 * (the letters, filtered), redrive (chosen letters back to their sink through the redrive
 * topic, each at most once). A command-line tool: it blocks, it never runs on the router's loop. */
#ifndef SLUICE_ROUTER_DLQ_CLI_H
#define SLUICE_ROUTER_DLQ_CLI_H

/* The headers a re-driven record carries on the redrive topic (route.c reads them). */
#define REDRIVE_HEADER_SINK "sluice.redrive.sink"
#define REDRIVE_HEADER_TOPIC "sluice.redrive.topic"
#define REDRIVE_HEADER_LETTER "sluice.redrive.letter"   /* "<dlq partition>:<dlq offset>" */

/** @brief `sluice dlq ...` with @p argv[0] == "dlq"; returns the process's exit code. */
int dlq_cli_main(int argc, char **argv);

#endif
