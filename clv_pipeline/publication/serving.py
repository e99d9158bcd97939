"""Publication of the BI snapshot (PRODUCT.md §6): `<serving>/clv.duckdb` and `<serving>/parquet/`.

The serving database is built in a temporary file next to the target, checkpointed, closed and
moved into place with an atomic rename: a BI tool that has the old file open keeps reading the
old snapshot, and a new connection sees the new one — never a half-written file, and the
pipeline never waits for a reader. The Parquet folder is a symlink to a snapshot directory that
is switched atomically the same way, so all Parquet tables always come from the same run.
Every table and column gets a `COMMENT ON` description from `publication.contract`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from clv_pipeline.publication.contract import TABLES
from clv_pipeline.storage.warehouse import Warehouse, identifier

SNAPSHOT_TABLE = "_snapshot"
SNAPSHOT_COLUMNS = {
    "snapshot_id": "content hash of the published tables: equal ids mean equal data",
    "as_of": "end of the observation end day of the run",
    "tables": "the tables of this snapshot",
    "row_counts": "JSON object: table -> rows, as published (a reader can check it read one whole snapshot)",
}
KEEP_PARQUET_SNAPSHOTS = 2


@dataclass(frozen=True)
class Publication:
    snapshot_id: str
    database: Path
    parquet_dir: Path
    row_counts: dict[str, int]


def sql_literal(text: str) -> str:
    """A SQL string literal for our own constant descriptions: DuckDB's COMMENT ON accepts no
    parameters. Never used for data or paths."""
    if "\x00" in text:
        raise ValueError("NUL in comment text")
    return "'" + text.replace("'", "''") + "'"


def snapshot_id(tables: dict[str, pl.DataFrame]) -> str:
    """Content hash of the published tables: equal snapshots have equal ids."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        frame = tables[name]
        digest.update(f"{name}:{frame.shape}:{frame.schema}".encode())
        if frame.height:
            digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _check_contract(tables: dict[str, pl.DataFrame]) -> None:
    for name, frame in tables.items():
        contract = TABLES[name]
        missing = [c for c in contract.columns if c not in frame.columns]
        undocumented = [c for c in frame.columns if c not in contract.columns]
        if missing or undocumented:
            raise ValueError(f"table {name} does not match its contract: missing {missing}, undocumented {undocumented}")


def publish(tables: dict[str, pl.DataFrame], serving_dir: Path, as_of: str) -> Publication:
    """Write every table to a new serving database and Parquet snapshot, then swap both in."""
    _check_contract(tables)
    serving_dir = Path(serving_dir)
    serving_dir.mkdir(parents=True, exist_ok=True)
    sid = snapshot_id(tables)
    database = serving_dir / "clv.duckdb"
    tmp = serving_dir / f".clv.duckdb.tmp-{os.getpid()}"
    remove_leftovers(serving_dir)
    with Warehouse.open(tmp, create_schemas=False) as wh:
        for name, frame in tables.items():
            contract = TABLES[name]
            wh.replace_table(name, frame)
            wh.execute(f"COMMENT ON TABLE {identifier(name)} IS {sql_literal(f'{contract.description} Grain: {contract.grain}.')}")
            for column in frame.columns:
                wh.execute(f'COMMENT ON COLUMN {identifier(name)}."{column}" IS {sql_literal(contract.columns[column])}')
        wh.execute(
            f"CREATE TABLE {SNAPSHOT_TABLE} AS SELECT ?::VARCHAR AS snapshot_id, ?::VARCHAR AS as_of, ?::VARCHAR[] AS tables, "
            "?::VARCHAR AS row_counts",
            [sid, as_of, sorted(tables), json.dumps({n: f.height for n, f in sorted(tables.items())})],
        )
        wh.execute(f"COMMENT ON TABLE {SNAPSHOT_TABLE} IS {sql_literal('Identity of this snapshot: every table in the file comes from the same run.')}")
        for column, text in SNAPSHOT_COLUMNS.items():
            wh.execute(f'COMMENT ON COLUMN {SNAPSHOT_TABLE}."{column}" IS {sql_literal(text)}')
        wh.execute("CHECKPOINT")
    os.replace(tmp, database)
    parquet_dir = _publish_parquet(tables, serving_dir, sid)
    return Publication(sid, database, parquet_dir, {n: f.height for n, f in tables.items()})


def remove_leftovers(serving_dir: Path) -> None:
    """Remove the temporary files of publications whose process is gone (killed mid-publication)
    or is this one: `.clv.duckdb.tmp-<pid>[.wal]`, `.parquet.link-<pid>`,
    `.parquet-snapshots/.<id>.tmp-<pid>`. The published files are never touched."""
    candidates = [*serving_dir.glob(".clv.duckdb.tmp-*"), *serving_dir.glob(".parquet.link-*"), *serving_dir.glob(".parquet-snapshots/.*.tmp-*")]
    for path in candidates:
        pid = path.name.rsplit("-", 1)[-1].removesuffix(".wal")
        if not pid.isdigit() or (int(pid) != os.getpid() and process_alive(int(pid))):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _publish_parquet(tables: dict[str, pl.DataFrame], serving_dir: Path, sid: str) -> Path:
    snapshots = serving_dir / ".parquet-snapshots"
    snapshots.mkdir(exist_ok=True)
    target = snapshots / sid
    staging = snapshots / f".{sid}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name, frame in tables.items():
        frame.write_parquet(staging / f"{name}.parquet", compression="zstd", statistics=True)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    link = serving_dir / "parquet"
    tmp_link = serving_dir / f".parquet.link-{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(Path(".parquet-snapshots") / sid, target_is_directory=True)
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)  # a plain folder from an older layout
    os.replace(tmp_link, link)
    _prune_snapshots(snapshots, keep={sid, *_current_links(serving_dir)})
    return link


def _current_links(serving_dir: Path) -> set[str]:
    link = serving_dir / "parquet"
    return {os.readlink(link).split("/")[-1]} if link.is_symlink() else set()


def _prune_snapshots(snapshots: Path, keep: set[str]) -> None:
    """Keep the current snapshot and the newest previous ones (readers may still use them)."""
    existing = sorted((p for p in snapshots.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True)
    kept = 0
    for path in existing:
        if path.name in keep:
            continue
        kept += 1
        if kept >= KEEP_PARQUET_SNAPSHOTS:
            shutil.rmtree(path, ignore_errors=True)
