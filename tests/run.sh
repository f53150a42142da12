#!/usr/bin/env bash
# The one test command (README): installs what is missing, then lint, types, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null || [ -n "${PROMETHEUS_BIN:-}" ] || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || [ -n "${ALERTMANAGER_BIN:-}" ] || missing+=(prometheus-alertmanager)
# The reference of the blackbox_exporter differential test.
command -v prometheus-blackbox-exporter >/dev/null || [ -n "${BLACKBOX_EXPORTER_BIN:-}" ] || missing+=(prometheus-blackbox-exporter)
command -v prometheus-pushgateway >/dev/null || [ -n "${PUSHGATEWAY_BIN:-}" ] || missing+=(prometheus-pushgateway)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
# The status page is tested in a real headless browser (tests/support/browser.py).
command -v chromium >/dev/null || [ -n "${CHROMIUM_BIN:-}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,dev]'

echo "== ruff"
.venv/bin/ruff check probes scenarios tests
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -q "$@"
