#!/usr/bin/env bash
# The one test command (README): installs what is missing, then lint, types, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null || [ -n "${PROMETHEUS_BIN:-}" ] || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || [ -n "${ALERTMANAGER_BIN:-}" ] || missing+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null || [ -n "${PUSHGATEWAY_BIN:-}" ] || missing+=(prometheus-pushgateway)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
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
