#!/usr/bin/env bash
# Benchmark of the postgres sink: starts PostgreSQL on loopback (as the tests do: an unprivileged
# user, fsync off, a throwaway directory) and runs bench_postgres against it, which produces
# 1,000,000 records into an embedded Kafka (and twice 1,000,000 more with the same keys: all new
# values, then half new, half unchanged), and in each run drains the first through sluice into an
# empty table in upsert mode (new keys), COPYs the same rows into an empty copy of the table,
# drains them again in mode insert into another empty copy, then drains the second and the third
# into the full table (keys that exist: the update path), and prints the rates, each path's ratio
# to the COPY, and the server CPU of the COPY over each path's.
#
#   bash tools/bench-postgres.sh [bench_postgres options: --records N --repeat R --batch B
#                                 --connections C --depth D --partitions P --linger MS]
#
# SLUICE_BUILD_DIR: where bench_postgres was built (default: build).
source "$(dirname "$0")/../tests/integration/lib.sh"
lib_init
lib__need_tool bench_postgres
lib_start_postgres
"$SLUICE_BUILD_DIR/bench_postgres" "$PG_CONNINFO" "$@"
