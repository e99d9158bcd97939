"""`channel_roi`: spend, installs, revenue and ROAS per cohort cell (PRODUCT.md §4, §6). Pure Polars.

Per cohort_date × dims:
- spend: ad spend attributed to the cell (`metrics.spend.allocate_spend`); null when the cell got
  no spend (organic, or a paid source without spend rows) — so ROAS is null, never infinite;
- installs: new installs of the cell (0 for spend that matched no install);
- payers: users with a purchase up to the observation end;
- revenue_net_d{N}: cumulative net revenue of day indexes 0..N (null when immature), the same
  numbers as cohort_ltv.revenue_net; roas_d{N} = revenue_net_d{N} ÷ spend;
- predicted_revenue_net_365: Σ user_clv.predicted_revenue_net_d365 (observed + predicted net
  revenue up to day 365 after install); predicted_roas_365 = that ÷ spend;
- payback_day: first day index N (observed, mature) with cumulative net revenue ≥ spend;
- max_cac = mean predicted lifetime value per install ÷ target ROAS: the most one can pay per
  install and still reach the target (user_clv.lifetime_value = net revenue to date + predicted CLV);
- cpi = spend ÷ installs; cac = spend ÷ payers to date (the new payers the cell has produced so
  far); roi_d{N} = roas_d{N} − 1; acquisition = organic / paid / paid_without_spend /
  spend_without_installs.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from clv_pipeline.ingestion.normalise import MONEY
from clv_pipeline.ingestion.sources import ORGANIC
from clv_pipeline.metrics.cohorts import COHORT_KEYS, cohort_revenue, first_payment_days, is_mature, with_day_index
from clv_pipeline.metrics.numeric import exact_sum
from clv_pipeline.settings import ROI_DAYS


def payback_days(
    members: pl.DataFrame, purchases: pl.DataFrame, spend: pl.DataFrame, observation_end: date, mode: str
) -> pl.DataFrame:
    """First mature day index on which a cell's cumulative net revenue reaches its spend."""
    events = with_day_index(purchases.filter(pl.col("event_date") <= observation_end), members, mode)
    daily = (
        events.group_by(*COHORT_KEYS, "day_index")
        .agg(pl.col("revenue_net_usd").sum().alias("net"))
        .sort(*COHORT_KEYS, "day_index", nulls_last=True)
        .with_columns(cumulative=pl.col("net").cum_sum().over(COHORT_KEYS))
    )
    paid = spend.filter(pl.col("spend") > 0).select(*COHORT_KEYS, "spend")
    reached = (
        daily.join(paid, on=list(COHORT_KEYS), how="inner", nulls_equal=True)
        .filter((pl.col("cumulative") >= pl.col("spend")) & is_mature(pl.col("day_index"), observation_end, mode))
        .group_by(COHORT_KEYS)
        .agg(pl.col("day_index").min().alias("payback_day"))
    )
    return reached


def _revenue_by_day_columns(revenue: pl.DataFrame) -> pl.DataFrame:
    """Long (cohort keys, day_n, revenue_net) -> one row per cell with revenue_net_d{N} columns."""
    wide = revenue.select(*COHORT_KEYS).unique(maintain_order=True)
    for n in ROI_DAYS:
        at_n = revenue.filter(pl.col("day_n") == n).select(*COHORT_KEYS, pl.col("revenue_net").alias(f"revenue_net_d{n}"))
        wide = wide.join(at_n, on=list(COHORT_KEYS), how="left", nulls_equal=True)
    return wide.with_columns([pl.col(f"revenue_net_d{n}").cast(MONEY) for n in ROI_DAYS])


def channel_roi(
    cells: pl.DataFrame,
    members: pl.DataFrame,
    purchases: pl.DataFrame,
    allocated_spend: pl.DataFrame,
    user_clv: pl.DataFrame,
    observation_end: date,
    mode: str,
    target_roas: float,
) -> pl.DataFrame:
    revenue = cohort_revenue(members, purchases, ROI_DAYS, observation_end, mode)
    wide = _revenue_by_day_columns(revenue)
    payers_to_date = (
        first_payment_days(members, purchases, observation_end, mode).group_by(COHORT_KEYS).agg(pl.len().cast(pl.Int64).alias("payers"))
    )
    users = user_clv.select(
        pl.col("install_date").alias("cohort_date"), *COHORT_KEYS[1:], "predicted_revenue_net_d365", "lifetime_value"
    ).group_by(COHORT_KEYS).agg(
        exact_sum(pl.col("predicted_revenue_net_d365")).alias("predicted_revenue_net_365"),
        exact_sum(pl.col("lifetime_value")).alias("_lifetime_value"),
        pl.col("lifetime_value").null_count().alias("_unpredicted"),
    )
    base = cells.select(*COHORT_KEYS, pl.col("cohort_size").alias("installs")).join(
        allocated_spend.select(*COHORT_KEYS, "spend"), on=list(COHORT_KEYS), how="full", coalesce=True, nulls_equal=True
    )
    out = (
        base.with_columns(pl.col("installs").fill_null(0))
        .join(payers_to_date, on=list(COHORT_KEYS), how="left", nulls_equal=True)
        .join(wide, on=list(COHORT_KEYS), how="left", nulls_equal=True)
        .join(users, on=list(COHORT_KEYS), how="left", nulls_equal=True)
        .join(payback_days(members, purchases, allocated_spend, observation_end, mode), on=list(COHORT_KEYS), how="left", nulls_equal=True)
    )
    spend = pl.col("spend").cast(pl.Float64)
    no_installs = pl.col("installs") == 0
    # cells of spend without installs have no cohort: revenue columns are 0 once mature
    revenue_columns = []
    for n in ROI_DAYS:
        column = f"revenue_net_d{n}"
        mature = is_mature(pl.lit(n), observation_end, mode)
        revenue_columns.append(
            pl.when(no_installs & mature).then(pl.lit(0).cast(MONEY)).otherwise(pl.col(column)).alias(column)
        )
    out = out.with_columns(revenue_columns).with_columns(
        pl.col("payers").fill_null(0),
        pl.when(pl.col("_unpredicted") > 0).then(None).otherwise(pl.col("predicted_revenue_net_365")).alias("predicted_revenue_net_365"),
    )
    roas = [
        pl.when(spend > 0).then(pl.col(f"revenue_net_d{n}").cast(pl.Float64) / spend).otherwise(None).round(6).alias(f"roas_d{n}")
        for n in ROI_DAYS
    ]
    roi = [(pl.col(f"roas_d{n}") - 1).round(6).alias(f"roi_d{n}") for n in ROI_DAYS]
    out = out.with_columns(roas).with_columns(roi).with_columns(
        acquisition=acquisition_type(),
        cpi=pl.when((spend > 0) & (pl.col("installs") > 0)).then(spend / pl.col("installs")).otherwise(None).round(6),
        cac=pl.when((spend > 0) & (pl.col("payers") > 0)).then(spend / pl.col("payers")).otherwise(None).round(6),
        predicted_roas_365=pl.when(spend > 0).then(pl.col("predicted_revenue_net_365") / spend).otherwise(None).round(6),
        max_cac=pl.when((pl.col("installs") > 0) & (pl.col("_unpredicted") == 0))
        .then(pl.col("_lifetime_value") / pl.col("installs") / target_roas)
        .otherwise(None)
        .round(6),
        predicted_revenue_net_365=pl.col("predicted_revenue_net_365").round(6),
    )
    return out.select(
        *COHORT_KEYS,
        "acquisition",
        "spend",
        "installs",
        "payers",
        "cpi",
        "cac",
        *[f"revenue_net_d{n}" for n in ROI_DAYS],
        *[f"roas_d{n}" for n in ROI_DAYS],
        *[f"roi_d{n}" for n in ROI_DAYS],
        "predicted_revenue_net_365",
        "predicted_roas_365",
        "payback_day",
        "max_cac",
    ).sort(COHORT_KEYS, nulls_last=True)


def acquisition_type() -> pl.Expr:
    """organic; paid (a cell that got spend); paid_without_spend (a network's installs that no
    spend row covers — reported, not dropped); spend_without_installs."""
    return (
        pl.when(pl.col("media_source") == ORGANIC)
        .then(pl.lit("organic"))
        .when(pl.col("installs") == 0)
        .then(pl.lit("spend_without_installs"))
        .when(pl.col("spend").is_null())
        .then(pl.lit("paid_without_spend"))
        .otherwise(pl.lit("paid"))
    )


SUMMARY_DAYS: tuple[int, ...] = (0, 7, 30, 90, 365)


def channel_summary(roi: pl.DataFrame, target_roas: float) -> pl.DataFrame:
    """channel_roi rolled up per app × paid media source (`channel` rows), plus labelled rows per
    app: `organic` (no spend: spend, CPI, CAC and ROAS are null), `paid_total` (every paid source)
    and `blended_total` (paid + organic: blended CPI and ROAS are labelled as such, PRODUCT.md §4). Ratios are computed from sums over the cells where the
    numerator is known: ROAS_N over the cells mature for N (spend of younger cells is left out of
    its denominator, published as spend_dN so that roas_dN = revenue_net_dN ÷ spend_dN on every row;
    both are null while no cell is mature for N), CPI over paid cells with spend, CAC = spend ÷
    payers to date."""
    def totals(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
        spend = pl.col("spend").cast(pl.Float64).fill_null(0.0)
        aggregations = [
            pl.col("spend").sum().alias("spend"),
            pl.col("installs").sum().alias("installs"),
            pl.col("payers").sum().alias("payers"),
            spend.filter(pl.col("spend") > 0).sum().alias("_paid_spend"),
            pl.col("installs").filter(pl.col("spend") > 0).sum().alias("_paid_installs"),
            exact_sum(pl.col("predicted_revenue_net_365")).alias("predicted_revenue_net_365"),
            spend.filter(pl.col("predicted_revenue_net_365").is_not_null()).sum().alias("_predicted_spend"),
            exact_sum(pl.col("max_cac") * pl.col("installs")).alias("_value_at_target"),
            pl.col("installs").filter(pl.col("max_cac").is_not_null()).sum().alias("_valued_installs"),
        ]
        for n in SUMMARY_DAYS:
            mature = pl.col(f"revenue_net_d{n}").is_not_null()
            aggregations += [  # null, not 0, when no cell is mature for n
                pl.when(mature.any()).then(pl.col(f"revenue_net_d{n}").sum()).alias(f"revenue_net_d{n}"),
                pl.when(mature.any()).then(pl.col("spend").filter(mature).sum()).alias(f"spend_d{n}"),
            ]
        return frame.group_by(keys).agg(aggregations)

    per_channel = totals(roi.filter(pl.col("media_source") != ORGANIC), ["app_id", "media_source"]).with_columns(row_type=pl.lit("channel"))
    paid = totals(roi.filter(pl.col("media_source") != ORGANIC), ["app_id"]).with_columns(
        media_source=pl.lit(None, dtype=pl.String), row_type=pl.lit("paid_total")
    )
    organic = totals(roi.filter(pl.col("media_source") == ORGANIC), ["app_id"]).with_columns(
        media_source=pl.lit(ORGANIC), row_type=pl.lit("organic")
    )
    blended = totals(roi, ["app_id"]).with_columns(media_source=pl.lit(None, dtype=pl.String), row_type=pl.lit("blended_total"))
    out = pl.concat([per_channel, paid, organic, blended], how="diagonal_relaxed")
    ratio = lambda num, den: pl.when(den > 0).then(num / den).otherwise(None).round(6)  # noqa: E731
    blended_row = pl.col("row_type") == "blended_total"
    organic_row = pl.col("row_type") == "organic"
    out = out.with_columns(
        [pl.when(organic_row).then(None).otherwise(pl.col(c)).alias(c) for c in ["spend", *(f"spend_d{n}" for n in SUMMARY_DAYS)]]
    )
    out = out.with_columns(
        cpi=pl.when(blended_row)
        .then(ratio(pl.col("_paid_spend"), pl.col("installs").cast(pl.Float64)))
        .otherwise(ratio(pl.col("_paid_spend"), pl.col("_paid_installs").cast(pl.Float64))),
        cac=pl.when(pl.col("_paid_spend") > 0).then(ratio(pl.col("_paid_spend"), pl.col("payers").cast(pl.Float64))),
        **{f"roas_d{n}": ratio(pl.col(f"revenue_net_d{n}").cast(pl.Float64), pl.col(f"spend_d{n}").cast(pl.Float64)) for n in SUMMARY_DAYS},
        predicted_roas_365=ratio(pl.col("predicted_revenue_net_365"), pl.col("_predicted_spend")),
        max_cac=ratio(pl.col("_value_at_target"), pl.col("_valued_installs").cast(pl.Float64)),
    )
    order = pl.col("row_type").replace_strict({"channel": 0, "organic": 1, "paid_total": 2, "blended_total": 3}, return_dtype=pl.Int8)
    return out.sort("app_id", order, "media_source", nulls_last=True).select(
        "app_id",
        "row_type",
        "media_source",
        "spend",
        "installs",
        "payers",
        "cpi",
        "cac",
        *[f"revenue_net_d{n}" for n in SUMMARY_DAYS],
        *[f"spend_d{n}" for n in SUMMARY_DAYS],
        *[f"roas_d{n}" for n in SUMMARY_DAYS],
        "predicted_revenue_net_365",
        "predicted_roas_365",
        "max_cac",
    )
