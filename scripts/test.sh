#!/usr/bin/env bash
# Quick start, part two: set up, then lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> npm test --prefix client/js"
npm test --prefix client/js
echo "==> pytest"
# Real datasets are installed by setup.sh, so a missing one is a failure, not a skip.
FEDGE_REQUIRE_DATASETS=1 exec .venv/bin/pytest "$@"
