#!/usr/bin/env bash
# Sets everything up and starts the local host: API, web UI, demo project, local agent.
# Arguments go to `cloudops local` (e.g. ./dev.sh --port 8080).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh
exec .venv/bin/cloudops local "$@"
