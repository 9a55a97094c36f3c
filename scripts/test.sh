#!/usr/bin/env bash
# The project's one test command (README, CI): installs into ./.venv, lints, runs pytest.
# Services a test needs are started by the test suite itself on 127.0.0.1 and stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."
export TZ=UTC
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -q "$@"
