"""Writing a polars frame into the landing layout, one CSV per delivery folder."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from clv_pipeline.ingestion.sources import SOURCES

DELIVERY_DATE_COLUMN = "_delivery_date"


def write_csv_deliveries(frame: pl.DataFrame, landing_dir: Path, source: str, file_stem: str) -> int:
    """Write `frame` as `<landing>/<source>/<delivery date>/<file_stem>.csv`, one file per date.

    `frame` holds string columns (canonical column names of `source`, in that order after the
    delivery column) plus `_delivery_date` (a `pl.Date`), which chooses the folder and is not
    written. Nulls become empty fields. Returns the number of files written.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    unknown = [c for c in frame.columns if c != DELIVERY_DATE_COLUMN and c not in SOURCES[source].column_names]
    if unknown:
        raise ValueError(f"{source}: columns {unknown} are not canonical columns")
    frame = frame.sort(DELIVERY_DATE_COLUMN, maintain_order=True)
    files = 0
    for (delivery_date,), part in frame.group_by(DELIVERY_DATE_COLUMN, maintain_order=True):
        folder = landing_dir / source / delivery_date.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        part.drop(DELIVERY_DATE_COLUMN).write_csv(folder / f"{file_stem}.csv", line_terminator="\n")
        files += 1
    return files
