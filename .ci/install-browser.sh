#!/usr/bin/env bash
# Install what the browser test (tests/e2e/test_ui_browser.py) needs: Debian's Chromium and
# ChromeDriver, and the playwright Python package (driver only: we never run `playwright install`,
# which downloads a browser build and fails without internet; the test points Playwright at
# /usr/bin/chromium). Idempotent: does nothing when everything is present. CI runs it as root.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${EVENTDESK_VENV:-.venv}/bin/python"

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver
fi
chromium --version

if [ -x "$PY" ]; then
    if ! "$PY" -c "import playwright" >/dev/null 2>&1; then
        "$PY" -m pip install -q playwright
    fi
    "$PY" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
else
    echo "install-browser: $PY not found; run ./scripts/bootstrap.sh first" >&2
    exit 1
fi
