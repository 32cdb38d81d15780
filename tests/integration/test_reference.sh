#!/usr/bin/env bash
# config/REFERENCE.md is what `sluice reference` prints from the loader's own option tables: the
# committed reference cannot drift from what the loader accepts. Regenerate it with
#   ./build/sluice reference > config/REFERENCE.md
source "$(dirname "$0")/lib.sh"
lib_init
"$SLUICE_BUILD_DIR/sluice" reference >"$WORK/reference.md"
diff -u "$SLUICE_SOURCE_DIR/config/REFERENCE.md" "$WORK/reference.md" ||
    lib_fail "config/REFERENCE.md differs from 'sluice reference': regenerate it"
for key in '`batch.max_records`' '`retry.max_backoff_ms`' '`file.path`' '`admin.token`' '`log.format`'; do
    grep -qF "$key" "$WORK/reference.md" || lib_fail "the reference lacks $key"
done
lib_pass "config/REFERENCE.md matches the loader's tables"
lib_summary
