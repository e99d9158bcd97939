"""Attributing ad spend to install cohorts (PRODUCT.md §4, §6 channel_roi).

Spend rows are keyed by (date, app_id, media_source, campaign, country, platform), where a null
app_id / campaign / country / platform means "all". Each spend row is allocated to the cohort
cells (cohort_date = spend date, same media_source, and equal on every dim the spend row
specifies) in proportion to the cells' installs. Allocation is done in whole micro-dollars with
the largest-remainder method, so the allocated amounts of a spend row add up to it exactly.
A spend row that matches no installed cell is kept as its own cell with 0 installs (reported,
never dropped). Pure Polars.
"""

from __future__ import annotations

from itertools import product

import polars as pl

from clv_pipeline.ingestion.normalise import MONEY
from clv_pipeline.metrics.cohorts import COHORT_KEYS

OPTIONAL_DIMS: tuple[str, ...] = ("app_id", "campaign", "country", "platform")
MICROS = 1_000_000


def _to_micros(column: str) -> pl.Expr:
    return (pl.col(column).cast(pl.Float64) * MICROS).round(0).cast(pl.Int64)


def _from_micros(column: str) -> pl.Expr:
    return (pl.col(column).cast(MONEY) / pl.lit(MICROS).cast(MONEY)).cast(MONEY)


def allocate_spend(spend: pl.DataFrame, cells: pl.DataFrame) -> pl.DataFrame:
    """`spend`: staging ad_spend (date, app_id, media_source, campaign, country, platform,
    spend_usd). `cells`: cohort cells (cohort_date, dims, cohort_size).
    Returns one row per cohort cell that received spend: cohort keys, `spend` (USD, Decimal) and
    `spend_rows` (number of spend rows contributing)."""
    rows = spend.select(
        pl.col("date").alias("cohort_date"), "media_source", *OPTIONAL_DIMS, _to_micros("spend_usd").alias("micros")
    ).with_row_index("_spend_row")
    matches: list[pl.DataFrame] = []
    for pattern in product([True, False], repeat=len(OPTIONAL_DIMS)):
        given = [d for d, is_given in zip(OPTIONAL_DIMS, pattern) if is_given]
        absent = [d for d, is_given in zip(OPTIONAL_DIMS, pattern) if not is_given]
        subset = rows.filter(
            pl.all_horizontal([pl.col(d).is_not_null() for d in given] + [pl.col(d).is_null() for d in absent] or [pl.lit(True)])
        )
        if subset.height == 0:
            continue
        on = ["cohort_date", "media_source", *given]
        matched = subset.select("_spend_row", "micros", *on).join(cells.select(*COHORT_KEYS, "cohort_size"), on=on, how="inner")
        matches.append(matched.select("_spend_row", "micros", *COHORT_KEYS, "cohort_size"))
    allocated = _largest_remainder(pl.concat(matches) if matches else None)
    unmatched = rows.join(allocated.select("_spend_row").unique(), on="_spend_row", how="anti") if allocated.height else rows
    unmatched_cells = unmatched.select(*COHORT_KEYS, pl.col("micros").alias("allocated"), "_spend_row")
    parts = pl.concat([allocated.select(*COHORT_KEYS, "allocated", "_spend_row"), unmatched_cells], how="vertical")
    return (
        parts.group_by(COHORT_KEYS)
        .agg(pl.col("allocated").sum().alias("spend_micros"), pl.col("_spend_row").n_unique().alias("spend_rows"))
        .with_columns(spend=_from_micros("spend_micros"))
        .select(*COHORT_KEYS, "spend", "spend_rows")
        .sort(COHORT_KEYS, nulls_last=True)
    )


def _largest_remainder(matched: pl.DataFrame | None) -> pl.DataFrame:
    """Split each spend row's micros over its cells by installs; shares sum to the row exactly."""
    if matched is None or matched.height == 0:
        schema = {"_spend_row": pl.UInt32, "cohort_date": pl.Date, **{d: pl.String for d in COHORT_KEYS[1:]}, "allocated": pl.Int64}
        return pl.DataFrame(schema=schema)
    total = pl.col("cohort_size").sum().over("_spend_row")
    exact = pl.col("micros").cast(pl.Float64) * pl.col("cohort_size") / total
    shares = matched.sort(["_spend_row", *COHORT_KEYS], nulls_last=True).with_columns(
        floor=exact.floor().cast(pl.Int64), frac=exact - exact.floor()
    )
    shares = shares.with_columns(left=pl.col("micros") - pl.col("floor").sum().over("_spend_row"))
    shares = shares.with_columns(rank=pl.col("frac").rank("ordinal", descending=True).over("_spend_row"))
    return shares.with_columns(allocated=pl.col("floor") + (pl.col("rank") <= pl.col("left")).cast(pl.Int64))
