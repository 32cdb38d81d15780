#!/usr/bin/env bash
# Builds sluice and runs every test, the way CI does:
#   1. build/       plain build (RelWithDebInfo, warnings are errors), all ctest tests (unit +
#                   integration);
#   2. build-asan/  -DSLUICE_SANITIZE=ON (ASan + UBSan), all ctest tests again;
#   3. build-rel/, build-clang/, build-distro/: Release builds with gcc (-O3) and clang, and a
#      build with Debian's packaging flags (dpkg-buildflags: -O2, _FORTIFY_SOURCE, stack
#      protector), warnings as errors;
#   4. the unit tests of build/ under valgrind (leaks of kind "definite" fail);
#   5. the libFuzzer targets (clang, build-fuzz/) for a bounded time each (tools/fuzz.sh).
# Every step runs even when an earlier one failed (a step whose build failed is reported as
# failed, not run). At the end: one line per step (passed or failed, its time, the tests that
# failed), then "N passed, N failed", where each build, test, valgrind run and fuzz target counts
# once. Exits non-zero if anything failed. Failed tests are never re-run: a flake must show.
#
#   tools/test.sh                          every step
#   tools/test.sh --repeat N REGEX         hunt a flake: build build/, then run the ctest tests
#                                          matching REGEX N times in a row, stopping at the
#                                          first failure (ctest --repeat until-fail:N)
#   tools/test.sh --repeat N REGEX --asan  the same on the sanitizer build (build-asan/)
#
# Works as root with no stdin. Environment: SLUICE_JOBS (parallel build jobs, default 2);
# SLUICE_TMOUT_MULTIPLIER (test timeouts; the sanitizer run uses at least 2, valgrind at least
# 10); SLUICE_FUZZ_SECONDS (per fuzz target, default 30).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

jobs=${SLUICE_JOBS:-2}
mult=${SLUICE_TMOUT_MULTIPLIER:-1}
# max(mult, floor): timeouts only ever grow for the slower runs.
scaled() { awk -v a="$mult" -v b="$1" 'BEGIN { print (a > b ? a : b) }'; }

asan_env=(ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
logs=build-logs
mkdir -p "$logs"

# Results, one entry per step.
step_names=() step_states=() step_secs=() step_notes=()
total_passed=0 total_failed=0

record() { # name state seconds note passed failed
    step_names+=("$1") step_states+=("$2") step_secs+=("$3") step_notes+=("$4")
    total_passed=$((total_passed + $5)) total_failed=$((total_failed + $6))
    printf '\n--- %s: %s (%ss)%s\n' "$1" "$2" "$3" "${4:+, $4}"
}

banner() { printf '\n=== %s\n' "$*"; }

# build NAME DIR CMAKE_ARGS...: configure and build; 0 when the build succeeded.
build() {
    local name=$1 dir=$2 start=$SECONDS
    shift 2
    banner "$name"
    if cmake -S . -B "$dir" -DSLUICE_TESTS=ON -DSLUICE_WERROR=ON "$@" &&
        cmake --build "$dir" -j"$jobs"; then
        record "$name" passed $((SECONDS - start)) "" 1 0
        return 0
    fi
    record "$name" failed $((SECONDS - start)) "the build failed" 0 1
    return 1
}

# run_ctest NAME DIR BUILT [ENV...] -- [CTEST_ARGS...]: runs ctest, counts its tests.
run_ctest() {
    local name=$1 dir=$2 built=$3 start=$SECONDS env=() log
    shift 3
    while [ $# -gt 0 ] && [ "$1" != -- ]; do env+=("$1"); shift; done
    shift
    banner "$name"
    if [ "$built" != 0 ]; then
        record "$name" failed 0 "not run: its build failed" 0 1
        return
    fi
    log="$logs/$(echo "$name" | tr -c 'a-z0-9\n' '-').log"
    env "${env[@]}" ctest --test-dir "$dir" --output-on-failure "$@" </dev/null 2>&1 | tee "$log"
    local line total failed names
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    failed=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    if [ -z "$line" ]; then
        record "$name" failed $((SECONDS - start)) "ctest printed no result" 0 1
        return
    fi
    names=$(sed -n '/The following tests FAILED:/,$p' "$log" |
        sed -nE 's/^[[:space:]]*[0-9]+ - ([^ ]+) \((.*)\)$/\1 (\2)/p' | paste -sd ' ' -)
    if [ "$failed" -eq 0 ]; then
        record "$name" passed $((SECONDS - start)) "$total tests" "$total" 0
    else
        record "$name" failed $((SECONDS - start)) "$failed of $total tests failed: $names" \
            $((total - failed)) "$failed"
    fi
}

valgrind_units() {
    local name="valgrind (unit tests of build/)" built=$1 start=$SECONDS
    banner "$name"
    if [ "$built" != 0 ]; then
        record "$name" failed 0 "not run: its build failed" 0 1
        return
    fi
    # ctest knows each unit test's command and working directory: ask it rather than guess.
    ctest --test-dir build -L unit --show-only=json-v1 >"$logs/unit-tests.json"
    local tests=() failed=() line test dir cmd vg_timeout
    mapfile -t tests < <(jq -r '.tests[] | [.name, ((.properties // [])[] | select(.name == "WORKING_DIRECTORY") | .value) // "."]
                                + .command | @tsv' "$logs/unit-tests.json")
    if [ ${#tests[@]} -eq 0 ]; then
        record "$name" failed $((SECONDS - start)) "no unit tests registered" 0 1
        return
    fi
    vg_timeout=$(awk -v m="$(scaled 10)" 'BEGIN { print int(60 * m) }')
    for line in "${tests[@]}"; do
        IFS=$'\t' read -r -a t <<<"$line"
        test=${t[0]} dir=${t[1]}
        cmd=("${t[@]:2}")
        printf -- '--- valgrind %s\n' "$test"
        if [ ${#cmd[@]} -eq 0 ]; then
            echo "$test: ctest knows no command for it (not built?)"
            failed+=("$test")
            continue
        fi
        if ! (cd "$dir" && SLUICE_TMOUT_MULTIPLIER=$(scaled 10) timeout "$vg_timeout" \
                valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
                "${cmd[@]}" </dev/null); then
            failed+=("$test")
        fi
    done
    if [ ${#failed[@]} -eq 0 ]; then
        record "$name" passed $((SECONDS - start)) "${#tests[@]} tests" "${#tests[@]}" 0
    else
        record "$name" failed $((SECONDS - start)) "${#failed[@]} of ${#tests[@]} tests failed: ${failed[*]}" \
            $((${#tests[@]} - ${#failed[@]})) "${#failed[@]}"
    fi
}

fuzz() {
    local name="fuzz (build-fuzz/, ${SLUICE_FUZZ_SECONDS:-30}s a target)" start=$SECONDS log=$logs/fuzz.log
    banner "$name"
    bash tools/fuzz.sh </dev/null 2>&1 | tee "$log"
    local clean found
    clean=$(grep -cE '^--- fuzz_[a-z_]+ clean' "$log")
    found=$(grep -oE '^fuzz_[a-z_]+: FINDING' "$log" | sed 's/: FINDING//' | paste -sd ' ' -)
    if grep -q '^fuzz: no finding' "$log"; then
        record "$name" passed $((SECONDS - start)) "$clean targets" "$clean" 0
    elif [ -n "$found" ]; then
        record "$name" failed $((SECONDS - start)) "findings in: $found" "$clean" "$(wc -w <<<"$found")"
    else
        record "$name" failed $((SECONDS - start)) "the fuzz build or run failed (see $log)" "$clean" 1
    fi
}

summary() {
    local i
    banner "summary"
    for i in "${!step_names[@]}"; do
        printf '%-7s %-40s %6ss  %s\n' "${step_states[$i]}" "${step_names[$i]}" "${step_secs[$i]}" "${step_notes[$i]}"
    done
    printf 'total time %ss\n' "$SECONDS"
    printf '%d passed, %d failed\n' "$total_passed" "$total_failed"
    [ "$total_failed" -eq 0 ]
}

if [ "${1:-}" = --repeat ]; then
    [ $# -ge 3 ] || { echo "usage: test.sh --repeat N REGEX [--asan]" >&2; exit 2; }
    n=$2 regex=$3
    if [ "${4:-}" = --asan ]; then
        build "sanitizer build (build-asan/)" build-asan -DSLUICE_SANITIZE=ON
        run_ctest "ctest $regex x$n (build-asan/)" build-asan $? "${asan_env[@]}" \
            SLUICE_TMOUT_MULTIPLIER="$(scaled 2)" -- --repeat until-fail:"$n" -R "$regex"
    else
        build "build (build/)" build
        run_ctest "ctest $regex x$n (build/)" build $? SLUICE_TMOUT_MULTIPLIER="$mult" -- \
            --repeat until-fail:"$n" -R "$regex"
    fi
    summary
    exit
fi

build "build (build/)" build
plain_built=$?
run_ctest "ctest (build/)" build $plain_built SLUICE_TMOUT_MULTIPLIER="$mult" --
build "sanitizer build (build-asan/)" build-asan -DSLUICE_SANITIZE=ON
run_ctest "ctest (build-asan/)" build-asan $? "${asan_env[@]}" SLUICE_TMOUT_MULTIPLIER="$(scaled 2)" --
# Release builds, warnings as errors: gcc -O3 and clang find warnings the other builds do not.
build "release build, gcc (build-rel/)" build-rel -DCMAKE_BUILD_TYPE=Release
build "release build, clang (build-clang/)" build-clang -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang
# What a distribution's package build would use (dpkg-dev comes with build-essential).
build "distribution flags (build-distro/)" build-distro -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_C_FLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
    -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)"
valgrind_units $plain_built
fuzz
summary
