"""`data_quality`: where every delivered row ended, per source × delivery partition (PRODUCT.md §3, §6).

Each count comes from a different place, so the accounting identity
`rows_read = rows_loaded + rows_duplicate + rows_quarantined` is a real check:
- rows_read: rows in the raw layer (every data line of every file of the partition);
- rows_quarantined: rows in the source's quarantine table (raw and staging rules);
- rows_duplicate: rows dropped by staging as exact copies of an earlier delivered row;
- rows_loaded: rows staging kept, plus `rows_replaced` (loaded, later superseded by a restatement,
  a re-delivered event or an earlier install of the same user);
- rows_orphan: loaded purchase/session rows whose user has no new install yet (they wait);
- rows_quarantine_resolved: quarantined rows whose key a later delivery loaded (fixed upstream).
Pure Polars.
"""

from __future__ import annotations

import json

import polars as pl

DATA_QUALITY_COLUMNS = (
    "source",
    "partition",
    "rows_read",
    "rows_loaded",
    "rows_duplicate",
    "rows_quarantined",
    "rows_orphan",
    "quarantine_reasons",
    "rows_replaced",
    "rows_warned",
    "rows_quarantine_resolved",
    "accounting_ok",
)


def _per_partition(frame: pl.DataFrame, name: str, condition: pl.Expr | None = None) -> pl.DataFrame:
    if condition is not None:
        frame = frame.filter(condition)
    return frame.group_by(pl.col("_delivery_date").alias("partition")).agg(pl.len().cast(pl.Int64).alias(name))


def _fate_counts(fates: pl.DataFrame, fate: str, name: str) -> pl.DataFrame:
    return (
        fates.filter(pl.col("fate") == fate)
        .group_by(pl.col("_delivery_date").alias("partition"))
        .agg(pl.col("rows").sum().cast(pl.Int64).alias(name))
    )


def source_data_quality(
    source: str,
    raw_counts: pl.DataFrame,
    quarantine: pl.DataFrame,
    fates: pl.DataFrame,
    staged: pl.DataFrame,
) -> pl.DataFrame:
    """`raw_counts`: partition, rows_read, rows_warned. `quarantine`: _delivery_date, reasons.
    `fates`: staging fate counts (_delivery_date, fate, rows) for rows not kept. `staged`: staging table rows (with lineage and,
    for purchases/sessions, `is_orphan`)."""
    reasons = (
        quarantine.select("_delivery_date", pl.col("reasons").list.first().alias("reason"))
        .group_by("_delivery_date", "reason")
        .agg(pl.len().alias("n"))
        .sort("_delivery_date", "reason")
        .group_by(pl.col("_delivery_date").alias("partition"), maintain_order=True)
        .agg(pl.struct("reason", "n").alias("_reasons"))
        .with_columns(
            quarantine_reasons=pl.col("_reasons").map_elements(
                lambda items: json.dumps({i["reason"]: i["n"] for i in items}, sort_keys=True), return_dtype=pl.String
            )
        )
        .drop("_reasons")
    )
    parts = [
        _per_partition(quarantine, "rows_quarantined"),
        _per_partition(quarantine, "rows_quarantine_resolved", pl.col("resolved_by").is_not_null())
        if "resolved_by" in quarantine.columns
        else None,
        _fate_counts(fates, "duplicate", "rows_duplicate"),
        _fate_counts(fates, "replaced", "rows_replaced"),
        _per_partition(staged, "_rows_kept"),
        _per_partition(staged, "rows_orphan", pl.col("is_orphan")) if "is_orphan" in staged.columns else None,
        reasons,
    ]
    out = raw_counts
    for part in parts:
        if part is not None:
            out = out.join(part, on="partition", how="full", coalesce=True)
    counts = [
        "rows_read", "rows_quarantined", "rows_duplicate", "rows_replaced", "_rows_kept", "rows_orphan", "rows_warned",
        "rows_quarantine_resolved",
    ]
    out = out.with_columns([pl.col(c).fill_null(0).cast(pl.Int64) if c in out.columns else pl.lit(0, dtype=pl.Int64).alias(c) for c in counts])
    out = out.with_columns(
        source=pl.lit(source),
        rows_loaded=pl.col("_rows_kept") + pl.col("rows_replaced"),
        quarantine_reasons=pl.col("quarantine_reasons").fill_null("{}"),
    ).with_columns(
        accounting_ok=pl.col("rows_read") == pl.col("rows_loaded") + pl.col("rows_duplicate") + pl.col("rows_quarantined")
    )
    return out.select(DATA_QUALITY_COLUMNS).sort("partition")


def quarantine_reason_counts(quarantine: pl.DataFrame) -> dict[str, int]:
    """Total rows per primary reason code (for run summaries)."""
    if quarantine.height == 0:
        return {}
    counts = quarantine.select(pl.col("reasons").list.first().alias("reason")).group_by("reason").len().sort("reason")
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list()))
