#!/usr/bin/env bash
# ./bench.sh NAME — run benchmark NAME (see tests/bench/); prints a table and a JSON line.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh >&2
name="${1:?usage: ./bench.sh NAME   (one of: $(ls tests/bench/bench_*.py 2>/dev/null | sed 's/.*bench_//;s/\.py//' | tr '\n' ' '))}"
shift
exec .venv/bin/python "tests/bench/bench_${name}.py" "$@"
