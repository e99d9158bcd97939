#!/usr/bin/env bash
# The test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export GX_ANALYTICS_ENABLED=false
# two workers (CI machines have 2 cores); tests sharing an expensive fixture stay on one worker
# (SHARED_FIXTURE_GROUPS in clv_pipeline_tests/conftest.py)
exec .venv/bin/pytest -n 2 "$@"
