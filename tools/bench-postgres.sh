#!/usr/bin/env bash
# Benchmark of the postgres sink: starts PostgreSQL on loopback (as the tests do: an unprivileged
# user, fsync off, a throwaway directory) and runs bench_postgres against it, which produces
# 1,000,000 records into an embedded Kafka, drains them through sluice into a table in upsert
# mode, then COPYs the same rows into an empty copy of the table, and prints both rates.
#
#   bash tools/bench-postgres.sh [bench_postgres options: --records N --batch B --connections C
#                                 --partitions P --linger MS --updates]
#
# SLUICE_BUILD_DIR: where bench_postgres was built (default: build).
source "$(dirname "$0")/../tests/integration/lib.sh"
lib_init
lib__need_tool bench_postgres
lib_start_postgres
"$SLUICE_BUILD_DIR/bench_postgres" "$PG_CONNINFO" "$@"
