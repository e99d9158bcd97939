"""Publication: the serving DuckDB file and Parquet snapshot BI tools read (PRODUCT.md §6).

Runs only when every upstream blocking check passed (Dagster skips it otherwise), so a failed
run never replaces the previous snapshot.
"""

from __future__ import annotations

from datetime import datetime, time

import dagster as dg

from clv_pipeline.orchestration.assets.marts import observation_end
from clv_pipeline.orchestration.metadata import markdown_table
from clv_pipeline.orchestration.resources import ClvSettingsResource, WarehouseResource
from clv_pipeline.publication.contract import PUBLISHED_TABLES
from clv_pipeline.publication.serving import publish
from clv_pipeline.storage.layers import read_mart

import polars as pl


@dg.asset(
    deps=list(PUBLISHED_TABLES),
    group_name="publication",
    pool="clv_warehouse",
    kinds={"duckdb", "parquet"},
)
def serving_snapshot(warehouse: WarehouseResource, clv_settings: ClvSettingsResource) -> dg.MaterializeResult:
    """Every published table, swapped into `<serving>/clv.duckdb` and `<serving>/parquet/` atomically."""
    settings = clv_settings.get()
    with warehouse.open() as wh:
        tables = {name: read_mart(wh, name) for name in PUBLISHED_TABLES}
        as_of = datetime.combine(observation_end(settings, wh), time(23, 59, 59)).isoformat()
    publication = publish(tables, settings.serving_dir, as_of)
    counts = pl.DataFrame({"table": list(publication.row_counts), "rows": list(publication.row_counts.values())})
    return dg.MaterializeResult(
        metadata={
            "snapshot_id": publication.snapshot_id,
            "database": dg.MetadataValue.path(str(publication.database.resolve())),
            "parquet": dg.MetadataValue.path(str(publication.parquet_dir.resolve())),
            "tables": dg.MetadataValue.md(markdown_table(counts)),
        }
    )
