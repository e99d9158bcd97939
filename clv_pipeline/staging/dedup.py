"""Deduplication by the keys of PRODUCT.md §2, with the fate of every delivered row recorded.

Rows arrive in delivery order (`_delivery_date`, `_source_file`, `_line_number`). A row is
- `duplicate` when an identical row (same normalised values) was delivered earlier;
- `replaced` when another row with the same key wins: for purchases, ad spend, sessions and FX
  rates the latest delivery wins (restatement); for installs the earliest install time wins and
  the others are reinstalls;
- `kept` otherwise.
Pure Polars.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from clv_pipeline.ingestion.sources import SOURCES

LINEAGE = ["_delivery_date", "_source_file", "_line_number"]


@dataclass
class Resolved:
    kept: pl.DataFrame
    # One row per input row: lineage + `fate` (kept / duplicate / replaced).
    fates: pl.DataFrame


def resolve_keys(rows: pl.DataFrame, source_name: str) -> Resolved:
    """Apply exact-duplicate removal, then key resolution, to valid rows of one source."""
    source = SOURCES[source_name]
    content = source.column_names
    ordered = rows.sort(LINEAGE).with_row_index("_order")
    first_copy = ordered.group_by(content, maintain_order=True).agg(pl.col("_order").min().alias("_first"))
    ordered = ordered.join(first_copy, on=content, how="left", nulls_equal=True).sort("_order")
    is_duplicate = pl.col("_order") != pl.col("_first")
    unique = ordered.filter(~is_duplicate)
    key = list(source.key)
    if source_name == "installs":
        # earliest new install wins; reinstall rows only when a user has nothing else
        ranked = unique.sort(["is_reinstall", "install_time", "_order"], nulls_last=True)
        winners = ranked.group_by(key, maintain_order=True).agg(
            pl.col("_order").first().alias("_winner"), (pl.len() - 1).cast(pl.UInt32).alias("reinstalls")
        )
    else:
        winners = unique.group_by(key, maintain_order=True).agg(pl.col("_order").max().alias("_winner"))
    winner_orders = winners.select("_winner")
    fates = ordered.select(*LINEAGE, "_order", is_duplicate.alias("_dup")).join(
        winner_orders.with_columns(_won=pl.lit(True)), left_on="_order", right_on="_winner", how="left"
    )
    fates = fates.sort("_order").select(
        *LINEAGE,
        pl.when(pl.col("_dup"))
        .then(pl.lit("duplicate"))
        .when(pl.col("_won").fill_null(False))
        .then(pl.lit("kept"))
        .otherwise(pl.lit("replaced"))
        .alias("fate"),
    )
    kept = ordered.join(winner_orders, left_on="_order", right_on="_winner", how="semi").sort("_order")
    if source_name == "installs":
        kept = kept.join(winners.select("_winner", "reinstalls"), left_on="_order", right_on="_winner", how="left")
    return Resolved(kept=kept.drop("_order", "_first"), fates=fates)


def released_from_quarantine(quarantined: pl.DataFrame, kept: pl.DataFrame, source_name: str) -> pl.DataFrame:
    """Quarantined rows fixed by a later delivery: a row of a later delivery with the same
    (fully known) key was loaded. `quarantined`: lineage + key columns of raw-stage quarantined
    rows; `kept`: the staging table. Returns lineage + `resolved_by` (that delivery's date)."""
    key = list(SOURCES[source_name].key)
    if quarantined.height == 0:
        return pl.DataFrame(schema={"_delivery_date": pl.Date, "_source_file": pl.String, "_line_number": pl.Int64, "resolved_by": pl.Date})
    candidates = quarantined.drop_nulls(key)
    fixes = kept.select(*key, pl.col("_delivery_date").alias("_fixed_in"))
    matched = candidates.join(fixes, on=key, how="inner").filter(pl.col("_fixed_in") > pl.col("_delivery_date"))
    return matched.group_by(LINEAGE).agg(pl.col("_fixed_in").min().alias("resolved_by")).sort(LINEAGE)
