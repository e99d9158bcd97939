"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` from here.

Settings come from CLV_* environment variables (see README); the CLI builds its own
Definitions with `build_definitions(settings)`. Every run executes in one process, so that one
process writes the DuckDB build database at a time.
"""

from __future__ import annotations

import os

import dagster as dg

from clv_pipeline.orchestration.assets.marts import MART_ASSETS
from clv_pipeline.orchestration.assets.publication import serving_snapshot
from clv_pipeline.orchestration.assets.raw import RAW_ASSETS
from clv_pipeline.orchestration.assets.rollups import ROLLUP_ASSETS
from clv_pipeline.orchestration.assets.staging import STAGING_ASSETS
from clv_pipeline.orchestration.resources import ClvSettingsResource, WarehouseResource
from clv_pipeline.settings import Settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

ALL_ASSETS = [*RAW_ASSETS, *STAGING_ASSETS, *MART_ASSETS, *ROLLUP_ASSETS, serving_snapshot]
ALL_JOB = dg.define_asset_job("clv_all", selection=dg.AssetSelection.all(), description="Every delivery partition given, then everything downstream.")


def build_definitions(settings: Settings, loggers: dict[str, dg.LoggerDefinition] | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[ALL_JOB],
        resources={
            "warehouse": WarehouseResource(database=str(settings.warehouse_path)),
            "clv_settings": ClvSettingsResource.from_settings(settings),
        },
        executor=dg.in_process_executor,
        loggers=loggers,
    )


defs = build_definitions(Settings.from_env())
