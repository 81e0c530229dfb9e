#!/bin/sh
# azd `web` prepackage hook (runs in web/): build web/dist, which azd deploys to the SWA.
set -eu
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
exec "$PY" scripts/build_web.py
