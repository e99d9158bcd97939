"""Dagster metadata for stored tables: row count, column schema with descriptions, a preview."""

from __future__ import annotations

import dagster as dg
import polars as pl

from clv_pipeline.publication.contract import TABLES


def column_schema(frame: pl.DataFrame, table: str | None = None) -> dg.TableSchema:
    descriptions = TABLES[table].columns if table in TABLES else {}
    return dg.TableSchema(
        columns=[dg.TableColumn(name, str(dtype), description=descriptions.get(name)) for name, dtype in frame.schema.items()]
    )


def markdown_table(frame: pl.DataFrame, max_rows: int = 15) -> str:
    """A small markdown rendering of a frame (numbers rounded for reading)."""
    if frame.height == 0:
        return "_(no rows)_"
    shown = frame.head(max_rows).with_columns(
        [pl.col(c).round(4) for c, t in frame.schema.items() if t in (pl.Float64, pl.Float32)]
    )
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "---|" * len(shown.columns)
    rows = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in shown.iter_rows()]
    return "\n".join([header, rule, *rows])


def table_metadata(frame: pl.DataFrame, table: str | None = None, preview: pl.DataFrame | None = None, **extra) -> dict:
    metadata: dict = {
        "dagster/row_count": frame.height,
        "dagster/column_schema": column_schema(frame, table),
        **extra,
    }
    if preview is not None:
        metadata["preview"] = dg.MetadataValue.md(markdown_table(preview))
    return metadata
