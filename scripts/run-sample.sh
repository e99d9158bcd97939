#!/usr/bin/env bash
# The main job on the embedded default: generate the seeded sample landing folder, run the whole
# pipeline, publish data/serving/clv.duckdb and data/serving/parquet/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export GX_ANALYTICS_ENABLED=false
.venv/bin/clv generate --landing data/landing
.venv/bin/clv run --landing data/landing --warehouse data/warehouse.duckdb --serving data/serving "$@"
