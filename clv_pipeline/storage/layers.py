"""What each layer stores in the warehouse, and the transactional writes that keep it consistent.

Table names per layer are defined here and nowhere else:
- `raw.<source>`: every delivered row, typed, with lineage and quarantine flags;
- `quarantine.<source>`: rows set aside, with the original text and reason codes (stage `raw`
  from row rules at load time, stage `staging` from cross-table rules);
- `staging.<source>`: the deduplicated, converted tables;
- `meta.staging_fates`: per source and delivery partition, rows dropped as duplicates or replaced;
- `marts.<table>`: the published tables (and internal ones such as `cohort_spend`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from clv_pipeline.ingestion.landing import ROW_TEXT_COLUMN
from clv_pipeline.ingestion.sources import SOURCES
from clv_pipeline.storage.warehouse import Warehouse, identifier

LINEAGE = ["_delivery_date", "_source_file", "_line_number"]
RAW_FLAGS = ["_extra", ROW_TEXT_COLUMN, "_is_exact_duplicate", "_quarantined", "_quarantine_reasons", "_warnings"]
QUARANTINE_COLUMNS = ["_delivery_date", "_source_file", "_line_number", "stage", "reasons", "reason", "row_text"]


def raw_table(source: str) -> str:
    return f"raw.{source}"


def quarantine_table(source: str) -> str:
    return f"quarantine.{source}"


def staging_table(source: str) -> str:
    return f"staging.{source}"


def mart_table(name: str) -> str:
    return f"marts.{name}"


FATES_TABLE = "meta.staging_fates"


@dataclass(frozen=True)
class PartitionWrite:
    rows: int
    quarantined: int


def raw_columns(source: str) -> list[str]:
    return [*LINEAGE, *SOURCES[source].column_names, *RAW_FLAGS]


def quarantine_rows(rows: pl.DataFrame, stage: str, reasons_column: str = "_quarantine_reasons") -> pl.DataFrame:
    return rows.select(
        *LINEAGE,
        pl.lit(stage).alias("stage"),
        pl.col(reasons_column).alias("reasons"),
        pl.col(reasons_column).list.join(",").alias("reason"),
        pl.col(ROW_TEXT_COLUMN).alias("row_text"),
        pl.lit(None, dtype=pl.Date).alias("resolved_by"),
    )


def write_raw_partitions(wh: Warehouse, source: str, partitions: list[str], rows: pl.DataFrame) -> PartitionWrite:
    """Replace whole delivery partitions of a source — their raw rows and raw-stage quarantine —
    in one transaction: after a crash each partition is entirely old or entirely new."""
    deliveries = [date.fromisoformat(p) for p in partitions]
    raw = rows.select(raw_columns(source))
    bad = quarantine_rows(rows.filter(pl.col("_quarantined")), "raw")
    with wh.transaction():
        wh.replace_partitions(raw_table(source), deliveries, raw)
        wh.replace_partitions(quarantine_table(source), deliveries, bad, extra_condition=("stage", "raw"))
    return PartitionWrite(raw.height, bad.height)


def loaded_partitions(wh: Warehouse) -> dict[str, set[date]]:
    """Delivery dates that have rows in each source's raw table."""
    out: dict[str, set[date]] = {}
    for source in SOURCES:
        if wh.table_exists(raw_table(source)):
            dates = wh.query(f"SELECT DISTINCT _delivery_date AS d FROM {identifier(raw_table(source))}")["d"].to_list()
            out[source] = set(dates)
    return out


def drop_partitions(wh: Warehouse, source: str, partitions: list[date]) -> None:
    """Remove delivery partitions of a source from the raw layer and its raw-stage quarantine."""
    with wh.transaction():
        for table in (raw_table(source), quarantine_table(source)):
            if wh.table_exists(table):
                wh.execute(
                    f"DELETE FROM {identifier(table)} WHERE _delivery_date IN (SELECT unnest(?::DATE[]))", [list(partitions)]
                )


def read_raw(wh: Warehouse, source: str, with_row_text: bool = False) -> pl.DataFrame:
    """Raw rows of every loaded partition (an empty frame of the right shape if none)."""
    if not wh.table_exists(raw_table(source)):
        return pl.DataFrame()
    if with_row_text:
        return wh.read(raw_table(source))
    return wh.query(f"SELECT * EXCLUDE ({ROW_TEXT_COLUMN}, _extra) FROM {identifier(raw_table(source))}")


def row_texts(wh: Warehouse, source: str, keys: pl.DataFrame) -> pl.DataFrame:
    """`_row_text` of the raw rows identified by lineage `keys`."""
    if keys.height == 0:
        return keys.with_columns(pl.lit(None, dtype=pl.String).alias(ROW_TEXT_COLUMN))
    wh.con.register("_keys", keys.select(LINEAGE))
    try:
        return wh.query(
            "SELECT k._delivery_date, k._source_file, k._line_number, r._row_text "
            f"FROM _keys k JOIN {identifier(raw_table(source))} r USING (_delivery_date, _source_file, _line_number)"
        )
    finally:
        wh.con.unregister("_keys")


def quarantined_keys(wh: Warehouse, source: str) -> pl.DataFrame:
    """Lineage and key columns of the raw rows that were quarantined at load time."""
    if not wh.table_exists(raw_table(source)):
        return pl.DataFrame()
    columns = ", ".join(f'"{c}"' for c in (*LINEAGE, *SOURCES[source].key))
    return wh.query(f"SELECT {columns} FROM {identifier(raw_table(source))} WHERE _quarantined")


def write_staging(
    wh: Warehouse,
    source: str,
    table: pl.DataFrame,
    fates: pl.DataFrame,
    quarantined: pl.DataFrame | None,
    released: pl.DataFrame | None = None,
) -> None:
    """Replace a staging table, its staging-stage quarantine rows, its fate counts and the
    `resolved_by` marks of raw-stage quarantine rows fixed by a later delivery, atomically."""
    fate_counts = (
        fates.filter(pl.col("fate") != "kept")
        .group_by("_delivery_date", "fate")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .with_columns(source=pl.lit(source))
        .select("source", "_delivery_date", "fate", "rows")
    )
    with wh.transaction():
        wh.replace_table(staging_table(source), table)
        if wh.table_exists(FATES_TABLE):
            wh.delete_where(FATES_TABLE, "source", source)
        wh.append(FATES_TABLE, fate_counts)
        if quarantined is not None:
            rows = quarantined.join(row_texts(wh, source, quarantined), on=LINEAGE, how="left")
            stage_rows = quarantine_rows(rows, "staging", "reasons")
            wh.append(quarantine_table(source), stage_rows.clear())
            wh.delete_where(quarantine_table(source), "stage", "staging")
            wh.append(quarantine_table(source), stage_rows)
        if released is not None and wh.table_exists(quarantine_table(source)):
            target = identifier(quarantine_table(source))
            wh.execute(f"UPDATE {target} SET resolved_by = NULL WHERE stage = 'raw'")
            if released.height:
                wh.con.register("_released", released.select(*LINEAGE, "resolved_by"))
                try:
                    wh.execute(
                        f"UPDATE {target} AS q SET resolved_by = r.resolved_by FROM _released AS r "
                        "WHERE q.stage = 'raw' AND q._delivery_date = r._delivery_date "
                        "AND q._source_file = r._source_file AND q._line_number = r._line_number"
                    )
                finally:
                    wh.con.unregister("_released")


def latest_date(wh: Warehouse, table: str, column: str) -> date | None:
    """max(column) of a stored table, or None when the table is missing or empty."""
    return _date_bound(wh, table, column, "max")


def earliest_date(wh: Warehouse, table: str, column: str) -> date | None:
    """min(column) of a stored table, or None when the table is missing or empty."""
    return _date_bound(wh, table, column, "min")


def _date_bound(wh: Warehouse, table: str, column: str, aggregate: str) -> date | None:
    if aggregate not in ("min", "max") or not column.isidentifier() or not wh.table_exists(table):
        return None
    return wh.scalar(f'SELECT {aggregate}("{column}") FROM {identifier(table)}')


def read_staging(wh: Warehouse, source: str) -> pl.DataFrame:
    return wh.read(staging_table(source)) if wh.table_exists(staging_table(source)) else pl.DataFrame()


def read_quarantine(wh: Warehouse, source: str) -> pl.DataFrame:
    if not wh.table_exists(quarantine_table(source)):
        return pl.DataFrame(schema={"_delivery_date": pl.Date, "reasons": pl.List(pl.String), "stage": pl.String})
    return wh.read(quarantine_table(source))


def read_fates(wh: Warehouse, source: str) -> pl.DataFrame:
    if not wh.table_exists(FATES_TABLE):
        return pl.DataFrame(schema={"_delivery_date": pl.Date, "fate": pl.String, "rows": pl.Int64})
    return wh.query(f"SELECT _delivery_date, fate, rows FROM {identifier(FATES_TABLE)} WHERE source = ?", [source])


def raw_partition_counts(wh: Warehouse, source: str) -> pl.DataFrame:
    """partition, rows_read, rows_warned per delivery partition of a source."""
    if not wh.table_exists(raw_table(source)):
        return pl.DataFrame(schema={"partition": pl.Date, "rows_read": pl.Int64, "rows_warned": pl.Int64})
    return wh.query(
        "SELECT _delivery_date AS partition, count(*)::BIGINT AS rows_read, "
        "count(*) FILTER (WHERE NOT _quarantined AND len(_warnings) > 0)::BIGINT AS rows_warned "
        f"FROM {identifier(raw_table(source))} GROUP BY 1 ORDER BY 1"
    )


def write_mart(wh: Warehouse, name: str, frame: pl.DataFrame) -> None:
    with wh.transaction():
        wh.replace_table(mart_table(name), frame)


def read_mart(wh: Warehouse, name: str) -> pl.DataFrame:
    return wh.read(mart_table(name))
