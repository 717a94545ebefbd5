#!/usr/bin/env bash
# Sets up a fresh Debian machine for fedge: system packages, a virtualenv in .venv, fedge itself.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the browser end-to-end tests drive Debian's Chromium through Playwright (never `playwright install`).
# systemd: its systemd-analyze checks the service units in deploy/systemd.
# buildah, debootstrap: tests/deploy builds the image in deploy/container and runs it (no Docker engine needed).
SYSTEM_PACKAGES=(python3-venv python3-dev dataset-fashion-mnist chromium systemd buildah debootstrap)
# The JavaScript client (client/js) needs Node.js >= 20 with npm; Debian's only where none is installed.
command -v node >/dev/null 2>&1 || SYSTEM_PACKAGES+=(nodejs npm)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "==> pip install -e '.[dev]'"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
if [ ! -d client/js/node_modules ] || [ client/js/package-lock.json -nt client/js/node_modules/.package-lock.json ]; then
  echo "==> npm ci --prefix client/js"
  npm ci --prefix client/js --no-audit --no-fund --loglevel=error
fi
# The web client the gateway serves (and `pip install .` ships): rebuilt when a source is newer than it.
if [ ! -f client/js/dist/index.html ] || [ -n "$(find client/js/src client/js/web client/js/dashboard client/js/scripts/build.mjs \
    client/js/package-lock.json -newer client/js/dist/index.html -print -quit 2>/dev/null)" ]; then
  echo "==> npm run build --prefix client/js"
  npm run build --prefix client/js --silent >/dev/null
fi
