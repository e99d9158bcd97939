"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here.

Settings come from CLV_* environment variables (see README); the CLI builds its own
Definitions with `build_definitions(settings)`. Every run executes in one process, so that one
process writes the DuckDB build database at a time; across runs, the instance configuration
(`dagster.yaml`) lets one run at a time use the pool `clv_warehouse` that every asset touching
the build database is in. The nightly schedule and the arrival sensor (`automation.py`) are on by
default; freshness checks (`freshness.py`) run with the raw assets.
"""

from __future__ import annotations

import os

import dagster as dg

from clv_pipeline.orchestration.assets.marts import MART_ASSETS
from clv_pipeline.orchestration.assets.publication import serving_snapshot
from clv_pipeline.orchestration.assets.raw import RAW_ASSETS
from clv_pipeline.orchestration.assets.rollups import ROLLUP_ASSETS
from clv_pipeline.orchestration.assets.staging import STAGING_ASSETS
from clv_pipeline.orchestration.automation import build_arrival_sensor, build_nightly_schedule
from clv_pipeline.orchestration.freshness import build_freshness_checks
from clv_pipeline.orchestration.ops_settings import OpsSettings
from clv_pipeline.orchestration.resources import ClvSettingsResource, WarehouseResource
from clv_pipeline.settings import Settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

ALL_ASSETS = [*RAW_ASSETS, *STAGING_ASSETS, *MART_ASSETS, *ROLLUP_ASSETS, serving_snapshot]
ALL_JOB = dg.define_asset_job("clv_all", selection=dg.AssetSelection.all(), description="Every delivery partition given, then everything downstream.")
WAREHOUSE_POOL = "clv_warehouse"


def build_definitions(
    settings: Settings, loggers: dict[str, dg.LoggerDefinition] | None = None, ops: OpsSettings | None = None
) -> dg.Definitions:
    ops = ops or OpsSettings.from_env()
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=build_freshness_checks(ops),
        jobs=[ALL_JOB],
        schedules=[build_nightly_schedule(settings, ops, ALL_JOB, ALL_ASSETS)],
        sensors=[build_arrival_sensor(settings, ops, ALL_JOB, ALL_ASSETS)],
        resources={
            "warehouse": WarehouseResource(
                database=str(settings.warehouse_path),
                lock_timeout_seconds=ops.lock_timeout_seconds,
                lock_retries=ops.lock_retries,
                lock_retry_seconds=ops.lock_retry_seconds,
            ),
            "clv_settings": ClvSettingsResource.from_settings(settings),
        },
        executor=dg.in_process_executor,
        loggers=loggers,
    )


defs = build_definitions(Settings.from_env())
