#!/usr/bin/env bash
# The project's one test command (README, CI): installs what the tests need into ./.venv
# (and the Debian/npm components the adapter tests run against), lints, runs pytest.
# Servers are started by the test suite itself on 127.0.0.1 and stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."
export TZ=UTC
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Real components of the adapter tests: PostgreSQL and Redis from Debian.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  if ! command -v redis-server >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql redis-server >/dev/null
  fi
fi
# Azurite (the Azure Blob emulator) from npm, pinned by tests/node/package-lock.json.
if command -v npm >/dev/null 2>&1 && [ -f tests/node/package.json ]; then
  (cd tests/node && npm ci --silent --no-audit --no-fund >/dev/null) &
  npm_job=$!
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,scale]'
if [ -n "${npm_job:-}" ]; then
  wait "$npm_job"
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -q "$@"
