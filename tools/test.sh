#!/usr/bin/env bash
# Builds sluice and runs every test, the way CI does:
#   1. build/       plain build (RelWithDebInfo), all ctest tests (unit + integration);
#   2. build-asan/  -DSLUICE_SANITIZE=ON (ASan + UBSan), all ctest tests again;
#   3. the unit tests of build/ under valgrind (leaks of kind "definite" fail);
#   4. the libFuzzer targets (clang, build-fuzz/) for a bounded time each (tools/fuzz.sh).
# Works as root with no stdin. Stops at the first failing step and exits non-zero.
# Environment: SLUICE_JOBS (parallel build jobs, default 2); SLUICE_TMOUT_MULTIPLIER (test
# timeouts; the sanitizer run uses at least 2, valgrind at least 10).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=${SLUICE_JOBS:-2}
mult=${SLUICE_TMOUT_MULTIPLIER:-1}
# max(mult, floor): timeouts only ever grow for the slower runs.
scaled() { awk -v a="$mult" -v b="$1" 'BEGIN { print (a > b ? a : b) }'; }

step() { printf '\n=== %s\n' "$*"; }

step "build (build/)"
cmake -S . -B build
cmake --build build -j"$jobs"

step "ctest (build/)"
SLUICE_TMOUT_MULTIPLIER=$mult ctest --test-dir build --output-on-failure </dev/null

step "sanitizer build (build-asan/)"
cmake -S . -B build-asan -DSLUICE_SANITIZE=ON
cmake --build build-asan -j"$jobs"

step "ctest (build-asan/)"
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
SLUICE_TMOUT_MULTIPLIER=$(scaled 2) \
    ctest --test-dir build-asan --output-on-failure </dev/null

step "unit tests under valgrind (build/)"
# ctest knows each unit test's command and working directory: ask it rather than guess paths.
# (ctest -T memcheck would need include(CTest) in CMakeLists.txt.)
ctest --test-dir build -L unit --show-only=json-v1 >build/unit-tests.json
mapfile -t tests < <(jq -r '.tests[] | [.name, ((.properties // [])[] | select(.name == "WORKING_DIRECTORY") | .value) // "."]
                            + .command | @tsv' build/unit-tests.json)
if [ ${#tests[@]} -eq 0 ]; then
    echo "no unit tests registered"
fi
vg_timeout=$(awk -v m="$(scaled 10)" 'BEGIN { print int(60 * m) }')
failed=()
for line in "${tests[@]}"; do
    IFS=$'\t' read -r -a t <<<"$line"
    name=${t[0]} dir=${t[1]}
    cmd=("${t[@]:2}")
    printf -- '--- valgrind %s\n' "$name"
    if [ ${#cmd[@]} -eq 0 ]; then
        echo "$name: ctest knows no command for it (not built?)"
        failed+=("$name")
        continue
    fi
    if ! (cd "$dir" && SLUICE_TMOUT_MULTIPLIER=$(scaled 10) timeout "$vg_timeout" \
            valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
            "${cmd[@]}" </dev/null); then
        failed+=("$name")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "valgrind: ${#failed[@]} of ${#tests[@]} unit test(s) failed: ${failed[*]}"
    exit 1
fi
echo "valgrind: ${#tests[@]} unit test(s) clean"

step "fuzz targets (build-fuzz/), ${SLUICE_FUZZ_SECONDS:-30}s each"
bash tools/fuzz.sh </dev/null

step "all tests passed"
