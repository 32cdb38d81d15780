#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and runs each for
# ${SLUICE_FUZZ_SECONDS:-30} seconds from its seed corpus in tests/fuzz/corpus/<target>/.
# New inputs go to a temporary directory, not into the repository. A finding fails the run and
# leaves its crash file in build-fuzz/findings/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${SLUICE_FUZZ_SECONDS:-30}
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DSLUICE_FUZZ=ON -DSLUICE_TESTS=OFF -DSLUICE_WERROR=ON >/dev/null
cmake --build build-fuzz -j"${SLUICE_JOBS:-2}" --target fuzz_config fuzz_locate fuzz_filter $(
    cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//' | grep -vxE 'fuzz_config|fuzz_locate|fuzz_filter' | tr '\n' ' ')
mkdir -p build-fuzz/findings
status=0
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    scratch=$(mktemp -d /tmp/sluice-fuzz.XXXXXX)
    mkdir -p "tests/fuzz/corpus/$name"
    echo "--- $name for ${seconds}s"
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "build-fuzz/tests/fuzz/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/findings/$name-" "$scratch" "tests/fuzz/corpus/$name" </dev/null \
        >"build-fuzz/$name.log" 2>&1; then
        echo "--- $name clean: $(grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "build-fuzz/$name.log" | tail -1)"
    else
        tail -40 "build-fuzz/$name.log"
        echo "$name: FINDING (see build-fuzz/findings/)"
        status=1
    fi
    rm -rf "$scratch"
done
[ $status -eq 0 ] && echo "fuzz: no finding"
exit $status
