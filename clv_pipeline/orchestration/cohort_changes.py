"""Which published cohorts a run changed: the new cohort tables against the previous snapshot.

Every run rebuilds staging and the marts from all loaded partitions, so a late delivery (events
of old days in a new folder, new files in an old folder, restated spend) reaches every cohort it
touches in the same run. This module says which ones, for the run report: a cohort date is
*revised* when a value that was already published changed or a cell appeared or disappeared
under it; *new* when it was not published before. A value that was null (immature) and is now
filled has *matured* — that is the passage of time, not a revision, and is only counted.

Columns that move with every day of data by definition are not compared: rolling retention
(active on day N *or later*), and channel_roi's payers to date, predictions and max CAC (the
models are refitted every run). Pure: Polars in, a small record out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

COHORT_TABLES = ("cohort_retention", "cohort_ltv", "channel_roi")
KEY_COLUMNS = ("cohort_date", "app_id", "media_source", "campaign", "country", "platform", "day_n")
_TO_DATE_COLUMNS = {
    "cohort_retention": ("rolling_",),
    "cohort_ltv": (),
    "channel_roi": ("payers", "predicted_", "max_cac"),
}
_RELATIVE_TOLERANCE = 1e-9


@dataclass
class CohortChanges:
    compared: bool  # False when there was no previous snapshot to compare with
    revised: dict[date, list[str]] = field(default_factory=dict)  # cohort date -> tables
    new: list[date] = field(default_factory=list)
    values_matured: int = 0

    def as_metadata(self) -> dict:
        return {
            "compared_with_previous_snapshot": self.compared,
            "cohorts_revised": {d.isoformat(): tables for d, tables in sorted(self.revised.items())},
            "cohorts_new": [d.isoformat() for d in self.new],
            "values_matured": self.values_matured,
        }

    @classmethod
    def from_metadata(cls, data: dict) -> "CohortChanges":
        return cls(
            compared=bool(data.get("compared_with_previous_snapshot")),
            revised={date.fromisoformat(d): list(t) for d, t in (data.get("cohorts_revised") or {}).items()},
            new=[date.fromisoformat(d) for d in data.get("cohorts_new") or []],
            values_matured=int(data.get("values_matured") or 0),
        )


def compared_columns(table: str, frame: pl.DataFrame) -> list[str]:
    skip = _TO_DATE_COLUMNS.get(table, ())
    return [c for c in frame.columns if c not in KEY_COLUMNS and not c.startswith(skip)]


def _differs(old: pl.Expr, new: pl.Expr, numeric: bool) -> pl.Expr:
    """A published (non-null) value that changed or became null (numbers within a relative
    tolerance of 1e-9, anything else exactly)."""
    if numeric:
        a, b = old.cast(pl.Float64), new.cast(pl.Float64)
        changed = (a - b).abs() > pl.max_horizontal(a.abs(), pl.lit(1.0)) * _RELATIVE_TOLERANCE
    else:
        a, b = old, new
        changed = a != b
    return a.is_not_null() & (b.is_null() | changed)


def cohort_changes(previous: dict[str, pl.DataFrame | None], current: dict[str, pl.DataFrame]) -> CohortChanges:
    """Compare each cohort table of `current` with the same table of `previous` (None or missing
    = not published before)."""
    compared = any(previous.get(t) is not None for t in current)
    old_dates: set[date] = set()
    new_dates: set[date] = set()
    revised: dict[date, set[str]] = {}
    matured = 0
    for table, new in current.items():
        new_dates.update(new["cohort_date"].unique().to_list())
        old = previous.get(table)
        if old is None:
            continue
        old_dates.update(old["cohort_date"].unique().to_list())
        keys = [k for k in KEY_COLUMNS if k in new.columns and k in old.columns]
        columns = [c for c in compared_columns(table, new) if c in old.columns]
        left = old.select(*keys, *columns).with_columns(pl.lit(True).alias("_in_old"))
        right = new.select(*keys, *columns).with_columns(pl.lit(True).alias("_in_new"))
        joined = left.join(right, on=keys, how="full", nulls_equal=True, coalesce=True, suffix="_new").with_columns(
            pl.col("_in_old").fill_null(False), pl.col("_in_new").fill_null(False)
        )
        both = pl.col("_in_old") & pl.col("_in_new")
        value_changed = (
            pl.any_horizontal([_differs(pl.col(c), pl.col(f"{c}_new"), new.schema[c].is_numeric()) for c in columns])
            if columns
            else pl.lit(False)
        )
        cell_revised = (both & value_changed) | (pl.col("_in_old") != pl.col("_in_new"))
        if columns:
            matured += int(
                joined.filter(both)
                .select(pl.sum_horizontal([(pl.col(c).is_null() & pl.col(f"{c}_new").is_not_null()).cast(pl.Int64) for c in columns]).sum())
                .item()
                or 0
            )
        for day in joined.filter(cell_revised)["cohort_date"].unique().to_list():
            revised.setdefault(day, set()).add(table)
    # a cohort date that was not published at all is new, not revised
    fresh = sorted(new_dates - old_dates) if compared else sorted(new_dates)
    revised_dates = {d: sorted(t) for d, t in sorted(revised.items()) if d in old_dates}
    return CohortChanges(compared, revised_dates, fresh, matured)


def summarize(changes: CohortChanges, limit: int = 8) -> list[str]:
    """Report lines (empty when there was nothing to compare with)."""
    if not changes.compared:
        return ["Cohorts: first snapshot in this serving folder (nothing to compare with)."]

    def dates(ds: list[date]) -> str:
        shown = ", ".join(d.isoformat() for d in ds[:limit])
        return shown + (f" and {len(ds) - limit} more" if len(ds) > limit else "")

    lines = []
    if changes.revised:
        tables = sorted({t for ts in changes.revised.values() for t in ts})
        lines.append(
            f"Cohorts revised since the previous snapshot (late or restated data): {len(changes.revised)} cohort date(s): "
            f"{dates(list(changes.revised))} (in {', '.join(tables)})"
        )
    else:
        lines.append("Cohorts revised since the previous snapshot: none.")
    if changes.new:
        lines.append(f"New cohort dates: {len(changes.new)}: {dates(changes.new)}")
    if changes.values_matured:
        lines.append(f"Values that matured (were null, now filled): {changes.values_matured:,}")
    return lines
