#!/usr/bin/env bash
# The whole suite. Sets everything up first; exits non-zero on any failure.
# DATABASE_URL selects the Postgres server for the throwaway test database; unset = embedded.
# Extra arguments go to pytest, e.g. ./test.sh -m unit   or   ./test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh --with-browser
.venv/bin/ruff check .
.venv/bin/mypy  # strict, over the packages [tool.mypy] in pyproject.toml lists
# typings/ (our stubs for azure-functions-durable) must match the installed SDK
.venv/bin/python -m mypy.stubtest azure.durable_functions --ignore-missing-stub \
  --mypy-config-file pyproject.toml
exec .venv/bin/python -m pytest "$@"
