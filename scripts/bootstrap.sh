#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install eventdesk with its dev tools.
# Idempotent: a second run only checks that the install is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${EVENTDESK_VENV:-.venv}"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY="$candidate"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "eventdesk needs Python >= 3.11 on PATH (or PYTHON=/path/to/python)" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.eventdesk-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # Prefect 3.9.x pins certifi>=2026.10.19, absent from the registry here; pyproject pins prefect 3.8.8
  # and FastAPI <0.155 (prefect_test_harness breaks with newer FastAPI). See README "Installing Prefect".
  "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
  touch "$stamp"
fi
