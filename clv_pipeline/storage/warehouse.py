"""All DuckDB access of the pipeline: the build warehouse's tables, transactions and reads.

Layers live in DuckDB schemas: `raw` (one table per source, partitioned by `_delivery_date`),
`quarantine` (one table per source), `staging`, `marts`, and `meta` (load log). Frames go in and
out as Polars via Arrow. Every statement is parameterized; table names are code constants and are
checked against a strict identifier pattern before use.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

SCHEMAS = ("raw", "quarantine", "staging", "marts", "meta")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


class WarehouseSchemaError(RuntimeError):
    pass


class WarehouseLockedError(RuntimeError):
    """Another process holds the DuckDB file's write lock."""


def identifier(name: str) -> str:
    """A table name from code constants, validated and quoted (never data)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid table identifier: {name!r}")
    return ".".join(f'"{part}"' for part in name.split("."))


def connect(
    path: Path | str,
    read_only: bool = False,
    lock_timeout_seconds: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect to a DuckDB file. While another process holds its lock, retry with backoff for up
    to `lock_timeout_seconds` (calling `on_wait` once with the holder), then raise
    WarehouseLockedError naming the file and the holder."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_seconds
    delay, warned = 0.5, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            holder = str(exc).strip().splitlines()[0]
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(
                    f"{path} is locked by another process ({holder}); waited {lock_timeout_seconds:.0f} s. Stop that "
                    "process (a second `clv run`, a notebook or a BI tool holding the build database) and re-run; "
                    "BI tools should read the serving copy instead."
                ) from exc
            if not warned and on_wait is not None:
                on_wait(f"waiting for the lock on {path}: {holder}")
            warned = True
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.05)))
            delay = min(delay * 2, 10.0)


# Test hook for the crash-safety tests (clv_pipeline_tests/test_ops_recovery.py): with
# CLV_TEST_PAUSE_AFTER_WRITE=<table>[#n], the n-th write (default the first) to that table prints
# a marker line to stderr and sleeps *inside* its transaction, so a test can SIGKILL the process
# at a known point. Tables: `raw.installs`, `marts.cohort_ltv`, or an unqualified name such as
# `cohort_ltv` for the serving snapshot being written. Unset in production; costs one lookup.
PAUSE_ENV = "CLV_TEST_PAUSE_AFTER_WRITE"
PAUSE_MARKER = "CLV-TEST-PAUSED"
_writes_seen: dict[str, int] = {}


def _pause_point(table: str) -> None:
    target = os.environ.get(PAUSE_ENV)
    if not target:
        return
    name, _, nth = target.partition("#")
    if name != table:
        return
    _writes_seen[table] = _writes_seen.get(table, 0) + 1
    if _writes_seen[table] == int(nth or 1):
        print(f"{PAUSE_MARKER} {target} pid={os.getpid()}", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)


def _column(name: str) -> str:
    if not re.match(r"^[a-z_][a-z0-9_]*$", name):
        raise ValueError(f"not a valid column identifier: {name!r}")
    return name


class Warehouse:
    """Thin wrapper over one DuckDB connection to the build database."""

    def __init__(self, con: duckdb.DuckDBPyConnection, create_schemas: bool = True):
        self.con = con
        self._known_columns: dict[str, list[str]] = {}
        if create_schemas:
            for schema in SCHEMAS:
                self.execute(f"CREATE SCHEMA IF NOT EXISTS {identifier(schema)}")

    @classmethod
    @contextmanager
    def open(
        cls,
        path: Path | str,
        read_only: bool = False,
        create_schemas: bool = True,
        lock_timeout_seconds: float = 0.0,
        on_wait: Callable[[str], None] | None = None,
    ) -> Iterator["Warehouse"]:
        """Open a database file (see `connect`); the connection is always closed."""
        con = connect(path, read_only, lock_timeout_seconds, on_wait)
        try:
            yield cls(con, create_schemas=create_schemas and not read_only)
        finally:
            con.close()

    def execute(self, sql: str, params: Sequence | None = None) -> None:
        """Run a statement and consume its result (DuckDB 2 refuses new work on a connection with
        an unfinished result)."""
        self.con.execute(sql, list(params or [])).fetchall()

    # ---- transactions -------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["Warehouse"]:
        self.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    # ---- reads --------------------------------------------------------------------------
    def table_exists(self, table: str) -> bool:
        schema, name = table.split(".")
        return bool(
            self.scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name])
        )

    def query(self, sql: str, params: Sequence | None = None) -> pl.DataFrame:
        relation = self.con.sql(sql, params=list(params or []))
        return pl.from_arrow(relation.to_arrow_table())  # type: ignore[return-value]

    def read(self, table: str, where_partition_in: Sequence[date] | None = None) -> pl.DataFrame:
        """A whole table (or some `_delivery_date` partitions of a raw table) as Polars."""
        if where_partition_in is None:
            return self.query(f"SELECT * FROM {identifier(table)}")
        return self.query(
            f"SELECT * FROM {identifier(table)} WHERE _delivery_date IN (SELECT unnest(?::DATE[]))",
            [list(where_partition_in)],
        )

    def read_or_empty(self, table: str, like: pl.DataFrame | None = None) -> pl.DataFrame:
        if self.table_exists(table):
            return self.read(table)
        return like.clear() if like is not None else pl.DataFrame()

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {identifier(table)}") or 0)

    def scalar(self, sql: str, params: Sequence | None = None):
        rows = self.con.execute(sql, list(params or [])).fetchall()  # fetchall completes the result
        return rows[0][0] if rows else None

    # ---- writes (call inside `transaction()` when several must be atomic) -----------------
    def _ensure_table_like(self, table: str, frame: pl.DataFrame) -> None:
        """Create `table` with the frame's schema if missing; refuse a table of another shape."""
        existing = self._known_columns.get(table)
        if existing is None:
            if self.table_exists(table):
                existing = self.query(f"SELECT * FROM {identifier(table)} LIMIT 0").columns
            else:
                self.con.register("_frame_schema", frame.clear())
                try:
                    self.execute(f"CREATE TABLE {identifier(table)} AS SELECT * FROM _frame_schema")
                finally:
                    self.con.unregister("_frame_schema")
                existing = frame.columns
            self._known_columns[table] = existing
        if existing != frame.columns:
            raise WarehouseSchemaError(
                f"table {table} in the warehouse has columns {existing}, this version writes {frame.columns}; "
                "the warehouse was built by another version: delete the warehouse file and re-run "
                "(every layer is rebuilt from the landing folder)"
            )

    def replace_partitions(
        self, table: str, partitions: Sequence[date], frame: pl.DataFrame, extra_condition: tuple[str, str] | None = None
    ) -> None:
        """Delete the rows of the given `_delivery_date` partitions (and, optionally, of one
        `column = value`), then insert `frame`: an idempotent reload. Call inside `transaction()`."""
        self._ensure_table_like(table, frame)
        sql = f"DELETE FROM {identifier(table)} WHERE _delivery_date IN (SELECT unnest(?::DATE[]))"
        params: list = [list(partitions)]
        if extra_condition is not None:
            column, value = extra_condition
            sql += f' AND "{_column(column)}" = ?'
            params.append(value)
        self.execute(sql, params)
        self._insert(table, frame)
        _pause_point(table)

    def delete_where(self, table: str, column: str, value) -> None:
        if not self.table_exists(table):
            return
        self.execute(f'DELETE FROM {identifier(table)} WHERE "{_column(column)}" = ?', [value])

    def append(self, table: str, frame: pl.DataFrame) -> None:
        self._ensure_table_like(table, frame)
        self._insert(table, frame)

    def replace_table(self, table: str, frame: pl.DataFrame) -> None:
        """Replace a whole table with `frame` (schema follows the frame)."""
        self.con.register("_frame", frame)
        try:
            self.execute(f"CREATE OR REPLACE TABLE {identifier(table)} AS SELECT * FROM _frame")
        finally:
            self.con.unregister("_frame")
        self._known_columns[table] = frame.columns
        _pause_point(table)

    def _insert(self, table: str, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        self.con.register("_frame", frame)
        try:
            self.execute(f"INSERT INTO {identifier(table)} BY NAME SELECT * FROM _frame")
        finally:
            self.con.unregister("_frame")
