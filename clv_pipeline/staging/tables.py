"""Staging tables built from the valid raw rows of every delivery (PRODUCT.md §2–§4).

- installs: one row per (app_id, user_id), earliest install wins; `install_date` in the reporting
  time zone; `is_new_install` false for users known only from reinstall rows (not cohort members).
- purchases: one row per event_id, latest delivery wins; app_id filled from the user's install
  when absent; FX to USD at the event's UTC date (nearest earlier rate: rate files are dated in
  UTC, so the reporting time zone does not change which rate applies); store fee and net revenue;
  `is_orphan` when the user has no new install yet (no install, or only reinstall rows): kept,
  counted, and it joins its cohort when the install arrives.
- sessions: one row per (app_id, user_id, session_time, session_id).
- ad_spend: one row per (date, app_id, media_source, campaign, country, platform), latest delivery
  wins (restatement), spend converted to USD at the spend date.
- fx_rates: one row per (date, currency), latest delivery wins; USD = 1 always.

Money is Decimal(38, 6) so that sums are exact and identical on every run. Pure Polars.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from clv_pipeline.ingestion.normalise import MONEY
from clv_pipeline.ingestion.sources import DEFAULT_APP_ID, SOURCES
from clv_pipeline.staging.dedup import LINEAGE, Resolved, resolve_keys
from clv_pipeline.validation.runner import SuiteResult, validate_frame
from clv_pipeline.validation.suites import STAGING_ROW_SUITES


@dataclass
class StagingResult:
    table: pl.DataFrame
    fates: pl.DataFrame
    # Rows failing a cross-table row rule (lineage + reasons); they are not in `table`.
    quarantined: pl.DataFrame | None = None
    validation: "SuiteResult | None" = None


def local_date(column: str, timezone: str) -> pl.Expr:
    """Calendar date of a naive-UTC timestamp column in the reporting time zone."""
    expr = pl.col(column).dt.replace_time_zone("UTC")
    if timezone != "UTC":
        expr = expr.dt.convert_time_zone(timezone)
    return expr.dt.date()


def valid_rows(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.filter(~pl.col("_quarantined"))


def _canonical(resolved: Resolved, source_name: str, extra: list[str] | None = None) -> pl.DataFrame:
    return resolved.kept.select(*SOURCES[source_name].column_names, *(extra or []), *LINEAGE)


def build_installs(raw: pl.DataFrame, timezone: str) -> StagingResult:
    resolved = resolve_keys(valid_rows(raw), "installs")
    table = _canonical(resolved, "installs", ["reinstalls"]).with_columns(
        install_date=local_date("install_time", timezone),
        is_new_install=~pl.col("is_reinstall"),
    )
    return StagingResult(table.drop("is_reinstall").sort("app_id", "user_id"), resolved.fates)


def user_app(installs: pl.DataFrame) -> pl.DataFrame:
    """user_id -> app_id for users installed in exactly one app (to fill a missing app_id)."""
    return (
        installs.group_by("user_id")
        .agg(pl.col("app_id").first().alias("_install_app"), pl.col("app_id").n_unique().alias("_apps"))
        .filter(pl.col("_apps") == 1)
        .drop("_apps")
    )


def fill_app_id(events: pl.DataFrame, installs: pl.DataFrame) -> pl.DataFrame:
    """A missing app_id is the user's app when the user installed exactly one app, else 'default'."""
    return (
        events.join(user_app(installs), on="user_id", how="left")
        .with_columns(app_id=pl.coalesce("app_id", "_install_app", pl.lit(DEFAULT_APP_ID)))
        .drop("_install_app")
    )


def build_fx_rates(raw: pl.DataFrame) -> StagingResult:
    resolved = resolve_keys(valid_rows(raw), "fx_rates")
    return StagingResult(_canonical(resolved, "fx_rates").sort("currency", "date"), resolved.fates)


def attach_fx(frame: pl.DataFrame, fx_rates: pl.DataFrame, date_column: str, currency_column: str = "currency") -> pl.DataFrame:
    """Add `usd_per_unit`: the rate of the currency on the date, or the nearest earlier date;
    USD is 1. Null when no rate on or before the date exists."""
    rates = fx_rates.select(
        pl.col("currency").alias("_fx_currency"), pl.col("date").alias("_fx_date"), pl.col("usd_per_unit").alias("_rate")
    ).sort("_fx_currency", "_fx_date")
    keyed = frame.with_row_index("_fx_row").with_columns(pl.col(date_column).alias("_fx_on"))
    matched = (
        keyed.filter(pl.col(currency_column).is_not_null() & pl.col("_fx_on").is_not_null())
        .select("_fx_row", pl.col(currency_column).alias("_fx_currency"), "_fx_on")
        .sort("_fx_currency", "_fx_on")
        .join_asof(rates, left_on="_fx_on", right_on="_fx_date", by="_fx_currency", strategy="backward", check_sortedness=False)
        .select("_fx_row", "_rate")
    )
    out = keyed.join(matched, on="_fx_row", how="left").sort("_fx_row")
    return out.with_columns(
        usd_per_unit=pl.when(pl.col(currency_column) == "USD").then(pl.lit(1.0)).otherwise(pl.col("_rate"))
    ).drop("_fx_row", "_fx_on", "_rate")


def to_usd(amount: str, rate: str = "usd_per_unit") -> pl.Expr:
    """amount × rate, rounded to 6 decimals, as Decimal(38, 6)."""
    return (pl.col(amount).cast(pl.Float64) * pl.col(rate)).round(6).cast(MONEY)


def store_fee_rate(store_fees: dict[str, float]) -> pl.Expr:
    return pl.col("revenue_type").replace_strict(store_fees, default=0.0, return_dtype=pl.Float64)


def build_purchases(
    raw: pl.DataFrame,
    installs: pl.DataFrame,
    fx_rates: pl.DataFrame,
    store_fees: dict[str, float],
    timezone: str,
    before_install_tolerance_hours: float,
    docs_dir: Path | None = None,
) -> StagingResult:
    """Purchases with USD gross, store fee and net revenue (PRODUCT.md §4 Revenue):
    gross = revenue as delivered (refunds negative) × FX; store fee = gross × fee rate of the
    revenue type (the store returns its fee on a refund); net = gross − store fee."""
    resolved = resolve_keys(valid_rows(raw), "purchases")
    events = fill_app_id(_canonical(resolved, "purchases"), installs)
    events = events.with_columns(event_date=local_date("event_time", timezone), _fx_date=pl.col("event_time").dt.date())
    events = attach_fx(events, fx_rates, "_fx_date").drop("_fx_date")
    first_install = installs.select("app_id", "user_id", "install_time", "is_new_install")
    events = events.join(first_install, on=["app_id", "user_id"], how="left").with_columns(
        _earliest_allowed_time=pl.col("install_time") - pl.duration(microseconds=int(before_install_tolerance_hours * 3_600_000_000)),
        is_orphan=~pl.col("is_new_install").fill_null(False),
        _revenue_usd_estimate=pl.col("revenue").cast(pl.Float64) * pl.col("usd_per_unit"),
    )
    check = validate_frame(events, STAGING_ROW_SUITES["purchases"], "staging_rows_purchases", docs_dir=docs_dir)
    events = events.with_columns(check.row_errors.alias("_reasons"))
    bad = events.filter(pl.col("_reasons").list.len() > 0).select(*LINEAGE, pl.col("_reasons").alias("reasons"))
    good = events.filter(pl.col("_reasons").list.len() == 0)
    fee_rate = store_fee_rate(store_fees)
    table = good.with_columns(revenue_gross_usd=to_usd("revenue")).with_columns(
        store_fee_usd=(pl.col("revenue_gross_usd").cast(pl.Float64) * fee_rate).round(6).cast(MONEY),
    ).with_columns(revenue_net_usd=(pl.col("revenue_gross_usd") - pl.col("store_fee_usd")).cast(MONEY))
    table = table.select(
        *SOURCES["purchases"].column_names,
        "event_date",
        "usd_per_unit",
        "revenue_gross_usd",
        "store_fee_usd",
        "revenue_net_usd",
        "is_orphan",
        *LINEAGE,
    ).sort("event_id")
    return StagingResult(table, resolved.fates, bad, check)


def build_sessions(raw: pl.DataFrame, installs: pl.DataFrame, timezone: str) -> StagingResult:
    resolved = resolve_keys(valid_rows(raw), "sessions")
    table = fill_app_id(_canonical(resolved, "sessions"), installs).with_columns(
        session_date=local_date("session_time", timezone)
    )
    table = table.join(
        installs.select("app_id", "user_id", (~pl.col("is_new_install")).alias("is_orphan")), on=["app_id", "user_id"], how="left"
    ).with_columns(pl.col("is_orphan").fill_null(True))
    return StagingResult(table.sort("app_id", "user_id", "session_time"), resolved.fates)


def build_ad_spend(raw: pl.DataFrame, fx_rates: pl.DataFrame, docs_dir: Path | None = None) -> StagingResult:
    resolved = resolve_keys(valid_rows(raw), "ad_spend")
    spend = attach_fx(_canonical(resolved, "ad_spend"), fx_rates, "date")
    check = validate_frame(spend, STAGING_ROW_SUITES["ad_spend"], "staging_rows_ad_spend", docs_dir=docs_dir)
    spend = spend.with_columns(check.row_errors.alias("_reasons"))
    bad = spend.filter(pl.col("_reasons").list.len() > 0).select(*LINEAGE, pl.col("_reasons").alias("reasons"))
    table = spend.filter(pl.col("_reasons").list.len() == 0).with_columns(spend_usd=to_usd("spend")).drop("_reasons")
    return StagingResult(
        table.sort("date", "media_source", "campaign", "country", "platform", "app_id", nulls_last=True),
        resolved.fates,
        bad,
        check,
    )
