#!/usr/bin/env bash
# Debian's PostgreSQL server binaries, for the many-worker distillation test
# (tests/test_distill_workers.py starts its own throwaway server from them; nothing runs as a service).
# Idempotent and fast when installed. Without root or apt-get it only says so: that test then skips.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "postgres.sh: PostgreSQL not installed and not root with apt-get; the many-worker distill test will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package's post-install may try to start a cluster; in a container without an init system that
# fails harmlessly (policy-rc.d), and the test never uses it.
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
