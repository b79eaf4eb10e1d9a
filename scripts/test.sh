#!/usr/bin/env bash
# Set up everything the tests need, then run them: lint, types, and the whole suite.
# Tests start their own Xvfb, windows, HTTP servers and browsers; nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check src tests bench
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
