"""Mart assets: cohort metrics, CLV models, segments, channel ROI and data quality.

Each asset reads staging tables, calls the pure functions of `metrics/`, `marts/` and `models/`,
writes one table in one transaction and attaches metadata (row count, column schema, preview).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import dagster as dg
import polars as pl

from clv_pipeline.ingestion.sources import SOURCES
from clv_pipeline.marts import channel_roi as roi
from clv_pipeline.marts import data_quality as dq
from clv_pipeline.marts import segments as seg
from clv_pipeline.marts.model_fit import fit_clv_models, model_fit_table, models_from_table
from clv_pipeline.marts.user_clv import ClvSettings, build_user_clv, cell_cac, keyed_members, user_rfm
from clv_pipeline.metrics import cohorts, curves
from clv_pipeline.metrics.observation import resolve_observation_end
from clv_pipeline.metrics.spend import allocate_spend
from clv_pipeline.orchestration.metadata import markdown_table, table_metadata
from clv_pipeline.orchestration.resources import ClvSettingsResource, WarehouseResource
from clv_pipeline.settings import Settings
from clv_pipeline.storage.layers import (
    earliest_date,
    latest_date,
    raw_partition_counts,
    raw_table,
    read_fates,
    read_mart,
    read_quarantine,
    read_staging,
    staging_table,
    write_mart,
)
from clv_pipeline.storage.warehouse import Warehouse

_COMMON = dict(group_name="marts", pool="clv_warehouse", kinds={"duckdb", "polars"})


def observation_end(settings: Settings, wh: Warehouse) -> date:
    """See `metrics.observation.resolve_observation_end`."""
    event_columns = (("installs", "install_date"), ("purchases", "event_date"), ("sessions", "session_date"))
    latest_events = [latest_date(wh, staging_table(source), column) for source, column in event_columns]
    earliest_events = [earliest_date(wh, staging_table(source), column) for source, column in event_columns]
    deliveries = [latest_date(wh, raw_table(source), "_delivery_date") for source in SOURCES]
    return resolve_observation_end(
        settings.observation_end,
        max((d for d in latest_events if d is not None), default=None),
        max((d for d in deliveries if d is not None), default=None),
        min((d for d in earliest_events if d is not None), default=None),
    )


@dataclass
class Inputs:
    settings: Settings
    observation_end: date
    members: pl.DataFrame
    purchases: pl.DataFrame


def load_inputs(wh: Warehouse, clv_settings: ClvSettingsResource) -> Inputs:
    settings = clv_settings.get()
    end = observation_end(settings, wh)
    members = keyed_members(cohorts.cohort_members(read_staging(wh, "installs"), end))
    return Inputs(settings, end, members, read_staging(wh, "purchases"))


def _latest_mature(frame: pl.DataFrame, value: str, day_n: int) -> pl.DataFrame:
    """By media source: the latest cohort date mature for day_n and the value there (preview)."""
    mature = frame.filter((pl.col("day_n") == day_n) & pl.col(value).is_not_null())
    if mature.height == 0:
        return mature.select("media_source")
    latest = mature["cohort_date"].max()
    return (
        mature.filter(pl.col("cohort_date") == latest)
        .group_by("media_source")
        .agg(pl.col("cohort_size").sum().alias("installs"), pl.col(value).sum().alias(value))
        .sort("media_source")
        .with_columns(pl.lit(latest).alias("cohort_date"))
    )


@dg.asset(deps=["stg_installs", "stg_sessions", "stg_purchases"], **_COMMON)
def cohort_retention(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """Classic and rolling retention per cohort × dims × day_n (PRODUCT.md §4)."""
    with warehouse.open() as wh:
        inputs = load_inputs(wh, clv_settings)
        activity = cohorts.activity_events(read_staging(wh, "sessions"), inputs.purchases)
        table = cohorts.cohort_retention(
            inputs.members, activity, inputs.settings.day_list, inputs.observation_end, inputs.settings.day_index_mode
        )
        write_mart(wh, "cohort_retention", table)
    d7 = _latest_mature(table, "active_users", 7)
    if d7.height:
        d7 = d7.with_columns(d7_retention=pl.col("active_users") / pl.col("installs"))
    return dg.MaterializeResult(metadata=table_metadata(table, "cohort_retention", d7, observation_end=str(inputs.observation_end)))


@dg.asset(deps=["stg_installs", "stg_purchases"], **_COMMON)
def cohort_ltv(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """Cumulative gross/net revenue, LTV, payers per cohort × dims × day_n (PRODUCT.md §4)."""
    with warehouse.open() as wh:
        inputs = load_inputs(wh, clv_settings)
        table = cohorts.cohort_ltv(
            inputs.members, inputs.purchases, inputs.settings.day_list, inputs.observation_end, inputs.settings.day_index_mode
        )
        write_mart(wh, "cohort_ltv", table)
    return dg.MaterializeResult(metadata=table_metadata(table, "cohort_ltv", _latest_mature(table, "revenue_net", 7)))


@dg.asset(deps=["stg_installs", "stg_ad_spend"], **_COMMON)
def cohort_spend(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """Ad spend attributed to cohort cells (internal; feeds user_clv.cac and channel_roi.spend)."""
    with warehouse.open() as wh:
        inputs = load_inputs(wh, clv_settings)
        spend = read_staging(wh, "ad_spend").filter(pl.col("date") <= inputs.observation_end)
        table = allocate_spend(spend, cohorts.cohort_cells(inputs.members))
        write_mart(wh, "cohort_spend", table)
    return dg.MaterializeResult(metadata=table_metadata(table))


@dg.asset(deps=["stg_installs", "stg_purchases"], **_COMMON)
def model_fit(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """CLV model candidates (BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma and their fallbacks) fitted by
    maximum likelihood, backtested on a holdout, and the run's choice (PRODUCT.md §5)."""
    from clv_pipeline.marts.user_clv import btyd_transactions

    with warehouse.open() as wh:
        inputs = load_inputs(wh, clv_settings)
        transactions = btyd_transactions(inputs.members, inputs.purchases, inputs.observation_end)
        models = fit_clv_models(transactions, inputs.observation_end, inputs.settings.time_unit, inputs.settings.horizon_days)
        fitted_at = datetime.combine(inputs.observation_end, time(23, 59, 59))
        table = model_fit_table(models, inputs.observation_end, inputs.settings.time_unit, fitted_at)
        write_mart(wh, "model_fit", table)
    scores = (
        table.group_by("model", maintain_order=True)
        .agg(
            pl.col("role").first(),
            pl.col("chosen").first(),
            pl.col("log_likelihood").first(),
            pl.col("holdout_rmse").first(),
            pl.col("holdout_aggregate_error").first(),
            pl.col("holdout_curve_error").first(),
            pl.col("selection").first(),
        )
    )
    return dg.MaterializeResult(
        metadata=table_metadata(
            table,
            "model_fit",
            scores,
            chosen=models.label,
            calibration_end=str(models.backtest.calibration_end) if models.backtest else models.backtest_note,
        ),
    )


@dg.asset(deps=[model_fit, cohort_spend, "stg_sessions"], **_COMMON)
def user_clv(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """Per user: revenue to date, P(alive), expected purchases, predicted and lifetime CLV, CAC."""
    with warehouse.open() as wh:
        inputs = load_inputs(wh, clv_settings)
        settings, end, members, purchases = inputs.settings, inputs.observation_end, inputs.members, inputs.purchases
        models = models_from_table(read_mart(wh, "model_fit"))
        rfm = user_rfm(members, purchases, end, settings.time_unit)
        activity = cohorts.activity_events(read_staging(wh, "sessions"), purchases)
        user_days = cohorts.with_day_index(activity.filter(pl.col("event_date") <= end), members, "calendar").select(
            "app_id", "user_id", "day_index"
        ).unique()
        first_pay = cohorts.first_payment_days(members, purchases, end)
        survival = curves.payer_survival(members, first_pay, end)
        retention = curves.retention_curve(members, user_days, end)
        payer_purchases = purchases.filter(cohorts.is_payer_event() & (pl.col("event_date") <= end))
        formula = curves.formula_clv(members, payer_purchases, user_days, retention, end, settings.horizon_days)
        cac = cell_cac(cohorts.cohort_cells(members), read_mart(wh, "cohort_spend"))
        table = build_user_clv(
            members,
            purchases,
            rfm,
            models,
            survival,
            cac,
            formula.select("app_id", "media_source", "formula_clv"),
            ClvSettings(end, settings.time_unit, settings.horizon_days, settings.annual_discount_rate, settings.margin),
        )
        write_mart(wh, "user_clv", table)
    by_model = table.group_by("model").agg(
        pl.len().alias("users"), pl.col("predicted_clv").sum(), pl.col("lifetime_value").mean().alias("mean_lifetime_value")
    ).sort("model")
    return dg.MaterializeResult(metadata=table_metadata(table, "user_clv", by_model))


@dg.asset(deps=[user_clv], **_COMMON)
def user_segments(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """Value tier (whale/dolphin/minnow/non_payer) and RFM segment per user."""
    settings = clv_settings.get()
    with warehouse.open() as wh:
        table = seg.user_segments(read_mart(wh, "user_clv"), read_staging(wh, "purchases"), settings.whale_share, settings.dolphin_share)
        write_mart(wh, "user_segments", table)
    counts = table.group_by("value_tier", "rfm_segment").len().sort("value_tier", "rfm_segment")
    return dg.MaterializeResult(metadata=table_metadata(table, "user_segments", counts))


@dg.asset(deps=[user_segments], **_COMMON)
def segment_summary(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Users, revenue and top products per value tier × media source."""
    with warehouse.open() as wh:
        table = seg.segment_summary(read_mart(wh, "user_segments"), read_mart(wh, "user_clv"), read_staging(wh, "purchases"))
        write_mart(wh, "segment_summary", table)
    return dg.MaterializeResult(metadata=table_metadata(table, "segment_summary", table))


@dg.asset(deps=[user_clv, cohort_spend], **_COMMON)
def channel_roi(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """Spend, installs, cumulative net revenue, ROAS, payback and max CAC per cohort cell."""
    with warehouse.open() as wh:
        inputs = load_inputs(wh, clv_settings)
        table = roi.channel_roi(
            cohorts.cohort_cells(inputs.members),
            inputs.members,
            inputs.purchases,
            read_mart(wh, "cohort_spend"),
            read_mart(wh, "user_clv"),
            inputs.observation_end,
            inputs.settings.day_index_mode,
            inputs.settings.target_roas,
        )
        write_mart(wh, "channel_roi", table)
    by_source = (
        table.group_by("media_source")
        .agg(pl.col("spend").sum(), pl.col("installs").sum(), pl.col("revenue_net_d7").sum(), pl.col("predicted_revenue_net_365").sum())
        .with_columns(roas_d7=pl.col("revenue_net_d7").cast(pl.Float64) / pl.col("spend").cast(pl.Float64))
        .sort("media_source")
    )
    return dg.MaterializeResult(metadata=table_metadata(table, "channel_roi", by_source))


ROW_ACCOUNTING = "row_accounting"


@dg.asset(
    deps=["stg_installs", "stg_purchases", "stg_sessions", "stg_ad_spend", "stg_fx_rates"],
    check_specs=[
        dg.AssetCheckSpec(
            ROW_ACCOUNTING,
            asset="data_quality",
            blocking=True,
            description="for every source and partition: rows_read = rows_loaded + rows_duplicate + rows_quarantined",
        )
    ],
    **_COMMON,
)
def data_quality(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Row accounting per source × delivery partition (PRODUCT.md §3)."""
    with warehouse.open() as wh:
        frames = [
            dq.source_data_quality(
                source,
                raw_partition_counts(wh, source),
                read_quarantine(wh, source),
                read_fates(wh, source),
                read_staging(wh, source),
            )
            for source in SOURCES
            if wh.table_exists(f"raw.{source}")
        ]
        table = pl.concat(frames) if frames else pl.DataFrame()
        write_mart(wh, "data_quality", table)
    broken = table.filter(~pl.col("accounting_ok")) if table.height else table
    totals = table.group_by("source").agg(
        *[pl.col(c).sum() for c in ("rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined", "rows_orphan")]
    ).sort("source")
    return dg.MaterializeResult(
        metadata=table_metadata(table, "data_quality", totals),
        check_results=[
            dg.AssetCheckResult(
                check_name=ROW_ACCOUNTING,
                passed=broken.height == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                description="every delivered row is loaded, a duplicate, or quarantined"
                if broken.height == 0
                else f"{broken.height} source partitions do not add up",
                metadata={
                    "partitions_checked": table.height,
                    "unbalanced": dg.MetadataValue.md(
                        markdown_table(
                            broken.select("source", "partition", "rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined")
                        )
                    ),
                },
            )
        ],
    )


MART_ASSETS = [cohort_retention, cohort_ltv, cohort_spend, model_fit, user_clv, user_segments, segment_summary, channel_roi, data_quality]
