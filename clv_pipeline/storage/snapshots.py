"""Reading tables back from a published serving snapshot (the previous run's, to say what changed)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import polars as pl

from clv_pipeline.storage.warehouse import Warehouse, WarehouseLockedError


def read_published(database: Path | str, names: Iterable[str]) -> dict[str, pl.DataFrame | None]:
    """The named tables of a serving database (None for a table it lacks); {} when there is no
    snapshot yet or it cannot be opened (the caller then has nothing to compare with)."""
    if not Path(database).is_file():
        return {}
    try:
        with Warehouse.open(database, read_only=True, create_schemas=False) as wh:
            return {name: wh.read(name) if wh.table_exists(f"main.{name}") else None for name in names}
    except (WarehouseLockedError, duckdb.Error):
        return {}
