#!/usr/bin/env bash
# Quick start, part one: set up, then simulate a federation on the real smartwatch data with
# the centralized upper bound beside it. Extra arguments go to `fedge simulate`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fedge simulate --centralized --out runs/demo "$@"
