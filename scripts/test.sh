#!/usr/bin/env bash
# The test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export GX_ANALYTICS_ENABLED=false
exec .venv/bin/pytest "$@"
