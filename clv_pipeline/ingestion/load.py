"""Turns delivery partitions of one source into validated raw rows (no storage here).

For each partition: read every landing file (a file-level problem fails that partition only),
normalise and type the rows, flag exact duplicates within the delivery, then validate all rows of
all partitions with the source's raw expectation suite in one Great Expectations call. Rows that
fail an `error` rule carry their reason codes and go to quarantine; every row read is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from clv_pipeline.ingestion.landing import (
    LandingFileError,
    empty_text_frame,
    parse_partition_key,
    partition_files,
    read_landing_file,
)
from clv_pipeline.ingestion.normalise import ReadOptions, content_columns, normalise
from clv_pipeline.ingestion.sources import SOURCES
from clv_pipeline.validation.runner import SuiteResult, validate_frame
from clv_pipeline.validation.suites import RAW_SUITES

# The column whose value places a row in time, per source (for range rules).
EVENT_TIME_COLUMN = {
    "installs": "install_time",
    "purchases": "event_time",
    "sessions": "session_time",
    "ad_spend": "date",
    "fx_rates": "date",
}


@dataclass(frozen=True)
class PartitionFailure:
    source: str
    partition: str
    file: str
    problem: str
    line: int | None = None

    @property
    def message(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line is not None else self.file
        return f"{self.source} partition {self.partition}: {where}: {self.problem}"


@dataclass
class RawBatch:
    source: str
    partitions: list[str]
    rows: pl.DataFrame
    failures: list[PartitionFailure] = field(default_factory=list)
    validation: SuiteResult | None = None

    @property
    def loaded_partitions(self) -> list[str]:
        failed = {f.partition for f in self.failures}
        return [p for p in self.partitions if p not in failed]



def read_partition(landing_dir: Path, source_name: str, partition: str, options: ReadOptions = ReadOptions()) -> pl.DataFrame:
    """All rows of one source's delivery folder as typed rows (empty frame when no folder)."""
    source = SOURCES[source_name]
    delivery_date = parse_partition_key(partition, Path(landing_dir) / source_name / partition)
    frames = [read_landing_file(path, source, landing_dir) for path in partition_files(landing_dir, source_name, partition)]
    text = pl.concat(frames, how="vertical") if frames else empty_text_frame(source)
    text = text.with_columns(_delivery_date=pl.lit(delivery_date, dtype=pl.Date))
    typed = normalise(source, text, options)
    return typed.with_columns(
        _event_time=pl.col(EVENT_TIME_COLUMN[source_name]).cast(pl.Datetime("us")),
        _row_problem=pl.when(pl.col("_field_count_error") == "empty_row")
        .then(pl.lit("empty_row"))
        .when(pl.col("_field_count_error").str.starts_with("invalid JSON"))
        .then(pl.lit("invalid_json"))
        .when(pl.col("_field_count_error").is_not_null())
        .then(pl.lit("wrong_field_count"))
        .otherwise(pl.lit(None, dtype=pl.String)),
    )


def mark_exact_duplicates(rows: pl.DataFrame, source_name: str) -> pl.DataFrame:
    """`_is_exact_duplicate`: an identical (normalised) row appears earlier in the same delivery."""
    columns = ["_delivery_date", *content_columns(SOURCES[source_name])]
    ordered = rows.with_row_index("_order")
    first = ordered.group_by(columns, maintain_order=True).agg(pl.col("_order").min().alias("_first"))
    flagged = ordered.join(first, on=columns, how="left", nulls_equal=True)
    return flagged.with_columns(_is_exact_duplicate=pl.col("_order") != pl.col("_first")).sort("_order").drop("_order", "_first")


def load_deliveries(
    landing_dir: Path, source_name: str, partitions: list[str], options: ReadOptions = ReadOptions(), docs_dir: Path | None = None
) -> RawBatch:
    """Read, normalise and validate the given delivery partitions of one source (Great
    Expectations Data Docs go to `docs_dir` when given)."""
    frames: list[pl.DataFrame] = []
    failures: list[PartitionFailure] = []
    for partition in partitions:
        try:
            frames.append(read_partition(landing_dir, source_name, partition, options))
        except LandingFileError as exc:
            failures.append(PartitionFailure(source_name, partition, exc.path, exc.problem, exc.line))
    rows = pl.concat(frames, how="vertical") if frames else read_partition(landing_dir, source_name, "1970-01-01").clear()
    rows = mark_exact_duplicates(rows, source_name)
    validation = validate_frame(rows, RAW_SUITES[source_name], f"raw_{source_name}", docs_dir=docs_dir)
    rows = rows.with_columns(
        validation.row_errors.alias("_quarantine_reasons"), validation.row_warnings.alias("_warnings")
    ).with_columns(_quarantined=pl.col("_quarantine_reasons").list.len() > 0)
    return RawBatch(source_name, list(partitions), rows, failures, validation)
