#!/usr/bin/env bash
# Installs every Debian package sluice's build, demo and tests need. Idempotent: safe to run twice.
# Runs as root (or through sudo when it is available).
set -euo pipefail

# prometheus brings promtool (the tests check /metrics with it); chromium renders the status page;
# clang and its runtime build the libFuzzer targets.
packages=(
  build-essential cmake pkg-config
  librdkafka-dev libevent-dev libhiredis-dev libpq-dev libcurl4-openssl-dev libjansson-dev libssl-dev
  libcmocka-dev
  redis-server redis-tools postgresql-15 kcat curl jq valgrind procps openssl
  prometheus chromium
  clang libclang-rt-14-dev
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup.sh: run as root (or install sudo)" >&2; exit 1; fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#packages[@]} packages present"
  exit 0
fi

# The tests start their own redis-server and PostgreSQL on free ports: keep the packages from
# starting system services or creating a default cluster on 5432.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
  policy_created=1
fi
as_root mkdir -p /etc/postgresql-common
if ! grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf; then
  as_root sh -c 'echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf'
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
if [ "${policy_created:-0}" = 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
echo "setup.sh: done"
