"""Staging assets: deduplicated, converted tables rebuilt from every raw partition.

Each asset loads raw rows, calls the pure builder in `clv_pipeline.staging.tables`, writes the
table (plus its staging-stage quarantine rows and fate counts) in one transaction, and reports
the staging expectation suites as checks: cross-table row rules as WARN (rows quarantined), the
invariants of the table as blocking ERROR checks.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from clv_pipeline.orchestration.checks import rule_check_results, rule_check_specs
from clv_pipeline.orchestration.metadata import table_metadata
from clv_pipeline.orchestration.resources import ClvSettingsResource, WarehouseResource
from clv_pipeline.staging import tables as staging
from clv_pipeline.staging.dedup import released_from_quarantine
from clv_pipeline.storage.layers import quarantined_keys, raw_table, read_raw, read_staging, write_staging
from clv_pipeline.storage.warehouse import Warehouse
from clv_pipeline.validation.runner import build_data_docs, validate_frame
from clv_pipeline.validation.suites import STAGING_INVARIANT_SUITES, STAGING_ROW_SUITES


def _raw(wh: Warehouse, source: str) -> pl.DataFrame:
    if not wh.table_exists(raw_table(source)):
        raise RuntimeError(f"{raw_table(source)} has not been loaded yet: materialize raw_{source} first")
    return read_raw(wh, source)


def _specs(source: str) -> list[dg.AssetCheckSpec]:
    key = dg.AssetKey(f"stg_{source}")
    return rule_check_specs(key, STAGING_ROW_SUITES.get(source, []), blocking_errors=False) + rule_check_specs(
        key, STAGING_INVARIANT_SUITES[source], blocking_errors=True
    )


def _finish(wh: Warehouse, source: str, result: staging.StagingResult, docs_dir: Path) -> dg.MaterializeResult:
    released = released_from_quarantine(quarantined_keys(wh, source), result.table, source)
    write_staging(wh, source, result.table, result.fates, result.quarantined, released)
    key = dg.AssetKey(f"stg_{source}")
    checks = []
    if source in STAGING_ROW_SUITES and result.validation is not None:
        checks += rule_check_results(key, STAGING_ROW_SUITES[source], [result.validation])
    invariants = validate_frame(result.table, STAGING_INVARIANT_SUITES[source], f"staging_{source}", docs_dir=docs_dir)
    checks += rule_check_results(key, STAGING_INVARIANT_SUITES[source], [invariants], blocking_errors=True)
    fate_counts = result.fates.group_by("fate").len().sort("fate")
    docs = build_data_docs(docs_dir)
    return dg.MaterializeResult(
        metadata=table_metadata(
            result.table,
            fates=dict(zip(fate_counts["fate"].to_list(), fate_counts["len"].to_list())),
            rows_quarantined_in_staging=0 if result.quarantined is None else result.quarantined.height,
            quarantined_rows_fixed_by_a_later_delivery=released.height,
            data_docs=dg.MetadataValue.path(str(docs)) if docs else "none",
        ),
        check_results=checks,
    )


_COMMON = dict(group_name="staging", pool="clv_warehouse", kinds={"duckdb", "polars"})


@dg.asset(deps=["raw_installs"], check_specs=_specs("installs"), **_COMMON)
def stg_installs(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """One row per (app_id, user_id): the earliest install wins; later rows are reinstalls."""
    with warehouse.open() as wh:
        settings = clv_settings.get()
        return _finish(wh, "installs", staging.build_installs(_raw(wh, "installs"), settings.reporting_timezone), settings.data_docs_dir)


@dg.asset(deps=["raw_fx_rates"], check_specs=_specs("fx_rates"), **_COMMON)
def stg_fx_rates(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """One rate per (date, currency); the latest delivery wins."""
    with warehouse.open() as wh:
        return _finish(wh, "fx_rates", staging.build_fx_rates(_raw(wh, "fx_rates")), clv_settings.get().data_docs_dir)


@dg.asset(deps=["raw_purchases", stg_installs, stg_fx_rates], check_specs=_specs("purchases"), **_COMMON)
def stg_purchases(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """One row per event_id (latest delivery wins), in USD with store fee and net revenue."""
    settings = clv_settings.get()
    with warehouse.open() as wh:
        result = staging.build_purchases(
            _raw(wh, "purchases"),
            read_staging(wh, "installs"),
            read_staging(wh, "fx_rates"),
            settings.store_fees,
            settings.reporting_timezone,
            settings.purchase_before_install_tolerance_hours,
            docs_dir=settings.data_docs_dir,
        )
        return _finish(wh, "purchases", result, settings.data_docs_dir)


@dg.asset(deps=["raw_sessions", stg_installs], check_specs=_specs("sessions"), **_COMMON)
def stg_sessions(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """One row per (app_id, user_id, session_time, session_id)."""
    settings = clv_settings.get()
    with warehouse.open() as wh:
        result = staging.build_sessions(_raw(wh, "sessions"), read_staging(wh, "installs"), settings.reporting_timezone)
        return _finish(wh, "sessions", result, settings.data_docs_dir)


@dg.asset(deps=["raw_ad_spend", stg_fx_rates], check_specs=_specs("ad_spend"), **_COMMON)
def stg_ad_spend(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """One row per (date, app_id, media_source, campaign, country, platform), latest delivery
    wins (restatements replace), spend in USD."""
    docs_dir = clv_settings.get().data_docs_dir
    with warehouse.open() as wh:
        return _finish(wh, "ad_spend", staging.build_ad_spend(_raw(wh, "ad_spend"), read_staging(wh, "fx_rates"), docs_dir), docs_dir)


STAGING_ASSETS = [stg_installs, stg_fx_rates, stg_purchases, stg_sessions, stg_ad_spend]
