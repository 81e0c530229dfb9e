#!/usr/bin/env bash
# Sets up everything the project needs from the repo's own files: .venv, Python packages,
# npm packages. Idempotent and fast when nothing changed (stamp files under .venv/).
# Usage: source scripts/bootstrap.sh [--with-browser]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi

py_stamp=".venv/.cloudops-stamp"
py_hash="$(cat requirements.txt pyproject.toml agent/requirements.txt 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$py_stamp" 2>/dev/null)" != "$py_hash" ]; then
  echo "==> installing Python packages"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  [ -f agent/requirements.txt ] && .venv/bin/python -m pip install -q --disable-pip-version-check -r agent/requirements.txt
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  echo "$py_hash" > "$py_stamp"
fi

# Checkov (tests/azure/test_checkov.py) gets a venv of its own: its pins (packaging<24,
# python-dateutil<3, pycep-parser==0.5.1) conflict with pytest, kubernetes and ours.
ck_stamp=".venv/checkov/.cloudops-stamp"
ck_hash="$(sha256sum infra/checkov/requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$ck_stamp" 2>/dev/null)" != "$ck_hash" ]; then
  echo "==> installing Checkov (.venv/checkov)"
  [ -x .venv/checkov/bin/python ] || "$PYTHON" -m venv .venv/checkov
  .venv/checkov/bin/python -m pip install -q --disable-pip-version-check \
    -r infra/checkov/requirements.txt
  echo "$ck_hash" > "$ck_stamp"
fi

if [ -f package.json ]; then
  npm_stamp="node_modules/.cloudops-stamp"
  npm_hash="$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_hash" ]; then
    echo "==> installing npm packages"
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error
    else npm install --no-audit --no-fund --loglevel=error; fi
    echo "$npm_hash" > "$npm_stamp"
  fi
  .venv/bin/python scripts/vendor_assets.py
  .venv/bin/python scripts/build_web.py
fi

if [ "${1:-}" = "--with-browser" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Chromium (Debian package) for browser tests"
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
  else
    echo "   (not root: install the 'chromium' package yourself to run browser tests)"
  fi
fi
