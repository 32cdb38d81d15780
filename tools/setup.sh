#!/usr/bin/env bash
# Installs the Debian packages sluice needs (and, for the tests, one npm package into the
# checkout: see install_node_modules). Idempotent: safe to run twice.
#   bash tools/setup.sh          everything the tests need (the README's second command)
#   bash tools/setup.sh --demo   only what building sluice and running tools/demo.sh need
# Runs as root (or through sudo when it is available). Changes nothing on the machine but the
# packages it installs: the two settings it needs during the install are undone afterwards.
set -euo pipefail

# Building sluice, and the demo: kcat produces its sample records into sluice's embedded Kafka,
# and it starts its own Redis and PostgreSQL (read back with redis-cli and psql). protoc-c
# compiles Debian's descriptor.proto (from libprotobuf-dev) at build time: the Protobuf decoder
# reads the registry's FileDescriptorProto with it. libyaml reads YAML configuration files.
demo_packages=(
  build-essential cmake pkg-config
  librdkafka-dev libevent-dev libhiredis-dev libpq-dev libcurl4-openssl-dev libjansson-dev libssl-dev
  protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev libpcre2-dev libyaml-dev
  kcat redis-server redis-tools postgresql-15
)
# The tests on top: cmocka for the unit tests, the test scripts' tools;
# prometheus brings promtool (the tests check /metrics with it); chromium renders the status
# page; clang and its runtime build the libFuzzer targets; valgrind runs the unit tests;
# avro-c (libavro-dev) is the Avro decoder's test oracle, never linked into sluice;
# json-schema-test-suite is the official JSON Schema suite the contract validator is run against.
# node and npm run tests/deploy/render.mjs, which validates deploy/'s Kubernetes manifests with
# the npm packages pinned in tests/deploy/package-lock.json (installed below with npm ci); a
# machine that has node and npm from elsewhere keeps them.
test_packages=(
  libcmocka-dev libavro-dev json-schema-test-suite
  curl jq valgrind procps openssl
  prometheus chromium
  clang libclang-rt-14-dev
)
command -v node >/dev/null || test_packages+=(nodejs)
command -v npm >/dev/null || test_packages+=(npm)

case "${1:-}" in
  --demo) packages=("${demo_packages[@]}"); node_modules=0 ;;
  "")     packages=("${demo_packages[@]}" "${test_packages[@]}"); node_modules=1 ;;
  *)      echo "usage: setup.sh [--demo]" >&2; exit 2 ;;
esac

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup.sh: run as root (or install sudo)" >&2; exit 1; fi
}

# The tests only, into the checkout with the machine's Node.js and npm, exactly as each
# package-lock.json pins: tests/integration/node (the official Standard Webhooks library, with
# which test_examples.sh runs the webhook example's receiver, config/examples/webhook-receiver.mjs)
# and tests/deploy (kubernetes-models, with which test_deploy_manifests.sh validates deploy/).
# Skipped when node_modules is newer than the lock (installed already).
install_node_modules() {
  local dir
  [ "$node_modules" = 1 ] || return 0
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    echo "setup.sh: no node and npm here: the tests that need them say they skip"
    return 0
  fi
  for dir in tests/integration/node tests/deploy; do
    dir="$(cd "$(dirname "$0")/.." && pwd)/$dir"
    if [ -f "$dir/node_modules/.package-lock.json" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
      continue
    fi
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "setup.sh: installed the npm packages of $dir"
  done
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#packages[@]} packages present"
  install_node_modules
  exit 0
fi

# During the install only: the tests start their own redis-server and PostgreSQL on free ports,
# so keep the packages from starting system services (policy-rc.d) and postgresql-15 from
# creating a default cluster on 5432 (createcluster.conf). Both are put back as they were.
policy=/usr/sbin/policy-rc.d
cc_conf=/etc/postgresql-common/createcluster.conf
cc_saved=
policy_created=0
restore() {
  if [ "$policy_created" = 1 ]; then as_root rm -f "$policy"; fi
  if [ -n "$cc_saved" ]; then
    if [ -s "$cc_saved/had" ]; then
      as_root cp -p "$cc_saved/createcluster.conf" "$cc_conf"
    elif [ -e /usr/share/postgresql-common/createcluster.conf ]; then
      # There was none: leave the file postgresql-common itself installs (its template).
      as_root cp /usr/share/postgresql-common/createcluster.conf "$cc_conf"
      as_root chmod 644 "$cc_conf"
    else
      as_root rm -f "$cc_conf"
    fi
    rm -rf "$cc_saved"
  fi
}
trap restore EXIT

if [ ! -e "$policy" ]; then
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
  policy_created=1
fi
if printf '%s\n' "${missing[@]}" | grep -q '^postgresql'; then
  cc_saved=$(mktemp -d /tmp/sluice-setup.XXXXXX)
  if [ -e "$cc_conf" ]; then
    cp -p "$cc_conf" "$cc_saved/createcluster.conf"
    echo yes >"$cc_saved/had"
  fi
  as_root mkdir -p "$(dirname "$cc_conf")"
  as_root sh -c "echo 'create_main_cluster = false' >> $cc_conf"
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
install_node_modules
echo "setup.sh: done"
