"""Publication: the serving DuckDB file and Parquet snapshot BI tools read (PRODUCT.md §6).

Runs only when every upstream blocking check passed (Dagster skips it otherwise), so a failed
run never replaces the previous snapshot. Before swapping the new snapshot in, it compares the
cohort tables with the previous snapshot (which published cohorts late data revised), and it
attaches the run report (`clv_pipeline.cli.report`, the same text `clv run` prints) to its
materialization and to the run's log.
"""

from __future__ import annotations

import time
from datetime import datetime
from datetime import time as clock
from pathlib import Path

import dagster as dg
import polars as pl

from clv_pipeline.cli.report import run_report
from clv_pipeline.orchestration.assets.marts import observation_end
from clv_pipeline.orchestration.cohort_changes import COHORT_TABLES, CohortChanges, cohort_changes
from clv_pipeline.orchestration.metadata import markdown_table
from clv_pipeline.orchestration.resources import ClvSettingsResource, WarehouseResource
from clv_pipeline.orchestration.run_summary import COHORT_CHANGES_KEY, RunSummary, collect_run
from clv_pipeline.publication.contract import PUBLISHED_TABLES
from clv_pipeline.publication.serving import publish
from clv_pipeline.settings import Settings
from clv_pipeline.storage.layers import read_mart
from clv_pipeline.storage.snapshots import read_published


@dg.asset(
    deps=list(PUBLISHED_TABLES),
    group_name="publication",
    pool="clv_warehouse",
    kinds={"duckdb", "parquet"},
)
def serving_snapshot(context, warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """Every published table, swapped into `<serving>/clv.duckdb` and `<serving>/parquet/` atomically."""
    settings = clv_settings.get()
    with warehouse.open() as wh:
        tables = {name: read_mart(wh, name) for name in PUBLISHED_TABLES}
        as_of = datetime.combine(observation_end(settings, wh), clock(23, 59, 59)).isoformat()
    current = {name: tables[name] for name in COHORT_TABLES if name in tables}
    changes = cohort_changes(read_published(settings.serving_db_path, current), current)
    publication = publish(tables, settings.serving_dir, as_of)
    counts = pl.DataFrame({"table": list(publication.row_counts), "rows": list(publication.row_counts.values())})
    report = _run_report(context, settings.replace(warehouse_path=Path(warehouse.database)), changes)
    return dg.MaterializeResult(
        metadata={
            "snapshot_id": publication.snapshot_id,
            "database": dg.MetadataValue.path(str(publication.database.resolve())),
            "parquet": dg.MetadataValue.path(str(publication.parquet_dir.resolve())),
            "tables": dg.MetadataValue.md(markdown_table(counts)),
            "cohorts_revised": len(changes.revised),
            "cohorts_new": len(changes.new),
            COHORT_CHANGES_KEY: dg.MetadataValue.json(changes.as_metadata()),
            "run_report": dg.MetadataValue.md(f"```\n{report.strip()}\n```"),
        }
    )


def _run_report(context: dg.AssetExecutionContext, settings: Settings, changes: CohortChanges) -> str:
    """The run report as of this step (every other step of the run has finished), also logged."""
    try:
        summary = collect_run(context.instance, context.run_id, RunSummary(success=True, partitions=[]))
        summary.partitions = sorted({k for keys in summary.partitions_loaded.values() for k in keys})
        summary.cohort_changes = changes
        record = context.instance.get_run_record_by_id(context.run_id)
        started = record.start_time if record and record.start_time else None
        summary.duration_seconds = time.time() - started if started else sum(summary.step_seconds.values())
        text = run_report(summary, settings, in_progress=True)
    except Exception as exc:  # the report must never fail the publication
        text = f"run report unavailable: {exc}"
    context.log.info(text)
    return text
