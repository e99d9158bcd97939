"""The bad-input corpus (`bad_inputs/`): one folder per kind of dirty input, with the landing
files of the case and `expected.json` — which rows are quarantined with which reasons, or which
file-level error names the file — and, for every case, every input row accounted for.

Files at a case's root are delivered on 2024-01-02; a sub-folder named like a date is a delivery
of that date (any other sub-folder name is a bad partition folder). The file name gives the
source: `purchases.csv`, `installs.csv.gz`, `fx_rates.jsonl`…

Each case runs through the same pure functions the Dagster assets call (ingestion, validation,
staging, data-quality accounting), without Dagster or DuckDB, so the corpus runs in seconds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from clv_pipeline.ingestion.landing import discover_partition_keys, invalid_partition_folders
from clv_pipeline.ingestion.load import load_deliveries
from clv_pipeline.ingestion.normalise import ReadOptions
from clv_pipeline.ingestion.sources import SOURCES
from clv_pipeline.marts.data_quality import source_data_quality
from clv_pipeline.staging import tables as staging
from clv_pipeline.staging.dedup import released_from_quarantine

CASES = Path(__file__).parent / "bad_inputs"
DEFAULT_DELIVERY = "2024-01-02"
STORE_FEES = {"iap": 0.3, "subscription": 0.3, "ad": 0.0}


@dataclass
class SourceOutcome:
    raw: pl.DataFrame
    staged: pl.DataFrame
    quarantine: pl.DataFrame  # _delivery_date, _source_file, _line_number, reasons, stage, resolved_by
    data_quality: pl.DataFrame
    staging_warnings: int = 0


@dataclass
class Outcome:
    sources: dict[str, SourceOutcome] = field(default_factory=dict)
    file_errors: list[tuple[str, str]] = field(default_factory=list)  # (source, message)


def build_landing(case: Path, landing: Path) -> None:
    for path in sorted(case.rglob("*")):
        if path.is_dir() or path.name == "expected.json":
            continue
        relative = path.relative_to(case)
        delivery = relative.parts[0] if len(relative.parts) > 1 else DEFAULT_DELIVERY
        source = path.name.split(".")[0]
        target = landing / source / delivery / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)


def run_in_memory(landing: Path, formats: dict[str, list[str]]) -> Outcome:
    """Ingestion → staging → data quality for every source, as the assets do it."""
    keys = discover_partition_keys(landing)
    outcome = Outcome()
    raw: dict[str, pl.DataFrame] = {}
    for source in SOURCES:
        for folder in invalid_partition_folders(landing, source):
            outcome.file_errors.append((source, f"{folder}: partition folder is not a date"))
        batch = load_deliveries(landing, source, keys, ReadOptions(tuple(formats.get(source, ()))))
        outcome.file_errors += [(source, failure.message) for failure in batch.failures]
        raw[source] = batch.rows
    fx = staging.build_fx_rates(raw["fx_rates"])
    installs = staging.build_installs(raw["installs"], "UTC")
    results = {
        "fx_rates": fx,
        "installs": installs,
        "purchases": staging.build_purchases(raw["purchases"], installs.table, fx.table, STORE_FEES, "UTC", 24),
        "sessions": staging.build_sessions(raw["sessions"], installs.table, "UTC"),
        "ad_spend": staging.build_ad_spend(raw["ad_spend"], fx.table),
    }
    for source, result in results.items():
        rows = raw[source]
        lineage = ["_delivery_date", "_source_file", "_line_number"]
        raw_stage = rows.filter(pl.col("_quarantined")).select(*lineage, pl.col("_quarantine_reasons").alias("reasons"), pl.lit("raw").alias("stage"))
        stage_rows = (
            result.quarantined.with_columns(stage=pl.lit("staging")) if result.quarantined is not None else raw_stage.clear()
        )
        quarantine = pl.concat([raw_stage, stage_rows.select(raw_stage.columns)])
        released = released_from_quarantine(rows.filter(pl.col("_quarantined")).select(*lineage, *SOURCES[source].key), result.table, source)
        quarantine = quarantine.join(released, on=lineage, how="left")
        counts = rows.group_by(pl.col("_delivery_date").alias("partition")).agg(
            pl.len().cast(pl.Int64).alias("rows_read"),
            (~pl.col("_quarantined") & (pl.col("_warnings").list.len() > 0)).sum().cast(pl.Int64).alias("rows_warned"),
        )
        fates = result.fates.filter(pl.col("fate") != "kept").group_by("_delivery_date", "fate").agg(pl.len().cast(pl.Int64).alias("rows"))
        dq = source_data_quality(source, counts, quarantine, fates, result.table)
        warnings = 0
        if result.validation is not None:
            warnings = sum(r.unexpected_count for r in result.validation.results if r.rule.severity == "warning")
        outcome.sources[source] = SourceOutcome(rows, result.table, quarantine, dq, warnings)
    return outcome


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if p.is_dir())


def test_the_corpus_has_at_least_30_kinds_of_bad_input():
    assert len(case_names()) >= 30


@pytest.mark.parametrize("name", case_names())
def test_bad_input_case(name, tmp_path):
    case = CASES / name
    expected = json.loads((case / "expected.json").read_text())
    landing = tmp_path / "landing"
    build_landing(case, landing)
    outcome = run_in_memory(landing, expected.get("timestamp_formats", {}))

    for error in expected.get("file_errors", []):
        messages = [m for s, m in outcome.file_errors if s == error["source"]]
        assert any(all(part in m for part in error["contains"]) for m in messages), (outcome.file_errors, error)
    if "file_errors" not in expected:
        assert outcome.file_errors == []

    for source, want in expected.get("expect", {}).items():
        got = outcome.sources[source]
        quarantined = {
            f"{r['_delivery_date']}:{r['_line_number']}": r["reasons"] for r in got.quarantine.sort("_delivery_date", "_line_number").to_dicts()
        }
        assert quarantined == want["quarantined"], source
        dq = got.data_quality
        totals = {c: int(dq[c].sum()) for c in dq.columns if c.startswith("rows_")}
        assert totals["rows_loaded"] == want["loaded"], totals
        assert totals["rows_duplicate"] == want.get("duplicates", 0)
        assert totals["rows_replaced"] == want.get("replaced", 0)
        assert totals["rows_orphan"] == want.get("orphans", 0)
        assert totals["rows_warned"] == want.get("warned", 0)
        assert totals["rows_quarantine_resolved"] == want.get("resolved", 0)
        assert got.staging_warnings == want.get("staging_warnings", 0)
        if "staged" in want:
            assert got.staged.height == want["staged"]

    for source, columns in expected.get("values", {}).items():
        staged = outcome.sources[source].staged.sort("_delivery_date", "_line_number")
        for column, value in columns.items():
            shown = [str(v) for v in staged[column].to_list()]
            assert shown == (value if isinstance(value, list) else [value]), (column, shown)

    # every input row is accounted for, for every source of every case
    for source, got in outcome.sources.items():
        dq = got.data_quality
        assert (dq["rows_read"] == dq["rows_loaded"] + dq["rows_duplicate"] + dq["rows_quarantined"]).all(), (source, dq)
        assert dq["rows_read"].sum() == got.raw.height
        assert got.raw.height == sum(1 for _ in got.raw.iter_rows())  # nothing dropped while reading


def test_file_level_errors_leave_other_partitions_loading(tmp_path):
    landing = tmp_path / "landing"
    build_landing(CASES / "31_missing_required_column", landing)
    good = landing / "purchases" / "2024-01-03"
    good.mkdir(parents=True)
    (good / "purchases.csv").write_text("user_id,event_time,revenue,currency\nu1,2024-01-02T10:00:00Z,1,USD\n")
    outcome = run_in_memory(landing, {})
    assert [s for s, _ in outcome.file_errors] == ["purchases"]
    assert outcome.sources["purchases"].staged["_delivery_date"].to_list() == [date(2024, 1, 3)]
