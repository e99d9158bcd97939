"""Roll-up marts: weekly / monthly cohorts and the per-channel summary with labelled totals."""

from __future__ import annotations

import dagster as dg
import polars as pl

from clv_pipeline.marts.channel_roi import channel_summary as summarize_channels
from clv_pipeline.metrics.cohorts import ltv_by_period, retention_by_period
from clv_pipeline.orchestration.assets.marts import observation_end
from clv_pipeline.orchestration.metadata import table_metadata
from clv_pipeline.orchestration.resources import ClvSettingsResource, WarehouseResource
from clv_pipeline.storage.layers import read_mart, write_mart

_COMMON = dict(group_name="marts", pool="clv_warehouse", kinds={"duckdb", "polars"})


@dg.asset(deps=["cohort_retention"], **_COMMON)
def cohort_retention_by_period(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """cohort_retention rolled up to ISO weeks and calendar months."""
    settings = clv_settings.get()
    with warehouse.open() as wh:
        table = retention_by_period(read_mart(wh, "cohort_retention"), observation_end(settings, wh), settings.day_index_mode)
        write_mart(wh, "cohort_retention_by_period", table)
    preview = (
        table.filter((pl.col("cohort_period") == "week") & (pl.col("day_n") == 7) & pl.col("active_users").is_not_null())
        .group_by("cohort_start")
        .agg(pl.col("cohort_size").sum(), (pl.col("active_users").sum() / pl.col("cohort_size").sum()).alias("d7_retention"))
        .sort("cohort_start", descending=True)
        .head(8)
    )
    return dg.MaterializeResult(metadata=table_metadata(table, "cohort_retention_by_period", preview))


@dg.asset(deps=["cohort_ltv"], **_COMMON)
def cohort_ltv_by_period(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """cohort_ltv rolled up to ISO weeks and calendar months."""
    settings = clv_settings.get()
    with warehouse.open() as wh:
        table = ltv_by_period(read_mart(wh, "cohort_ltv"), observation_end(settings, wh), settings.day_index_mode)
        write_mart(wh, "cohort_ltv_by_period", table)
    preview = (
        table.filter((pl.col("cohort_period") == "month") & (pl.col("day_n") == 30) & pl.col("revenue_net").is_not_null())
        .group_by("cohort_start")
        .agg(pl.col("cohort_size").sum(), (pl.col("revenue_net").sum().cast(pl.Float64) / pl.col("cohort_size").sum()).alias("ltv_net_d30"))
        .sort("cohort_start")
    )
    return dg.MaterializeResult(metadata=table_metadata(table, "cohort_ltv_by_period", preview))


@dg.asset(deps=["channel_roi"], **_COMMON)
def channel_summary(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """Per app × media source, with paid_total, organic and blended_total rows."""
    with warehouse.open() as wh:
        table = summarize_channels(read_mart(wh, "channel_roi"), clv_settings.get().target_roas)
        write_mart(wh, "channel_summary", table)
    return dg.MaterializeResult(
        metadata=table_metadata(
            table, "channel_summary", table.select("app_id", "row_type", "media_source", "spend", "installs", "cpi", "roas_d7", "roas_d30", "predicted_roas_365")
        )
    )


ROLLUP_ASSETS = [cohort_retention_by_period, cohort_ltv_by_period, channel_summary]
