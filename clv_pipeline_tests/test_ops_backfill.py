"""Backfills through Dagster: 60 delivery partitions in one run (single-run backfill policy) on
an in-process instance, with no lock error, publish exactly what a single `clv run` publishes;
the marts rebuild once. Partitions registered out of date order still run as a date range; a
registered delivery whose folder is gone is not reloaded as empty. A step that finds the build
database locked is retried, and the message names the file."""

from __future__ import annotations

import io
import shutil
import time
from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from clv_pipeline.cli.main import main as clv_main
from clv_pipeline.cli.run import backfill, run_pipeline
from clv_pipeline.ingestion.landing import discover_partition_keys
from clv_pipeline.ingestion.sources import SOURCES
from clv_pipeline.orchestration.partitions import DELIVERIES, register_deliveries
from clv_pipeline.orchestration.resources import WarehouseResource
from clv_pipeline.publication.contract import PUBLISHED_TABLES
from clv_pipeline.sample_data import generate_sample
from clv_pipeline.settings import Settings
from clv_pipeline_tests.conftest import hold_database_lock

pytestmark = pytest.mark.slow


def published(settings: Settings) -> dict[str, pl.DataFrame]:
    """Every published table, rows in a canonical order."""
    con = duckdb.connect(str(settings.serving_db_path), read_only=True)
    try:
        tables = {name: pl.from_arrow(con.sql(f'SELECT * FROM "{name}"').to_arrow_table()) for name in PUBLISHED_TABLES}
        tables["_snapshot"] = pl.from_arrow(con.sql("SELECT snapshot_id, as_of FROM _snapshot").to_arrow_table())
    finally:
        con.close()
    return {name: frame.sort(frame.columns, nulls_last=True) for name, frame in tables.items()}


def assert_same_publication(left: Settings, right: Settings) -> None:
    a, b = published(left), published(right)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].equals(b[name]), f"published table {name} differs"


def settings_in(root: Path, landing: Path) -> Settings:
    return Settings(landing_dir=landing, warehouse_path=root / "warehouse.duckdb", serving_dir=root / "serving")


@pytest.fixture(scope="module")
def landing60(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("ops60") / "landing"
    generate_sample(landing, days=60, scale=0.05, seed=11)
    return landing


@pytest.fixture(scope="module")
def single_clv_run(landing60, tmp_path_factory) -> Settings:
    settings = settings_in(tmp_path_factory.mktemp("single"), landing60)
    assert run_pipeline(settings, stream=io.StringIO()).success
    return settings


def test_a_60_partition_backfill_through_dagster_equals_a_single_clv_run(landing60, single_clv_run, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(landing60, landing)
    keys = discover_partition_keys(landing)
    assert len(keys) == 60
    settings = settings_in(tmp_path, landing)
    progress = io.StringIO()
    with dg.DagsterInstance.ephemeral() as instance:  # in-process instance (SQLite in memory)
        # deliveries registered out of date order (the later half first), as a sensor could meet them
        register_deliveries(instance, keys[30:])
        register_deliveries(instance, keys[:30])
        assert instance.get_dynamic_partitions(DELIVERIES.name) == keys

        started = time.monotonic()
        summary = backfill(settings, date.fromisoformat(keys[0]), date.fromisoformat(keys[-1]), instance=instance, stream=progress)
        print(f"60-partition backfill: {time.monotonic() - started:.1f} s")
        assert summary.success, (summary.failed_steps, summary.blocking_failures)

        (run,) = instance.get_runs()  # one Dagster run for the whole backfill
        assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == (keys[0], keys[-1])
        assert run.tags["clv/trigger"] == "clv backfill"
        for source in SOURCES:
            assert instance.get_materialized_partitions(dg.AssetKey(f"raw_{source}")) == set(keys)
        events = instance.all_logs(run.run_id)
        succeeded = Counter(e.dagster_event.step_key for e in events if e.dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS")
        for step in ("raw_installs", "stg_purchases", "cohort_ltv", "model_fit", "channel_roi", "serving_snapshot"):
            assert succeeded[step] == 1, step  # the marts rebuild once per backfill, not once per day
        assert not any("lock" in (e.user_message or "").lower() for e in events)
        assert "lock" not in progress.getvalue().lower()
        assert summary.partitions_loaded == {source: keys for source in sorted(SOURCES)}

        # the run report is in Dagster too, on the publication's materialization
        materialization = instance.get_latest_materialization_event(dg.AssetKey("serving_snapshot")).asset_materialization
        report = materialization.metadata["run_report"].value
        assert "Partitions loaded:" in report and f"{keys[0]} … {keys[-1]}" in report and "Duration per step" in report

        assert_same_publication(settings, single_clv_run)

        # A delivery removed from the landing folder stays loaded (README). A backfill over dates
        # around it would cover its registered key and reload it as empty, so the keys on either
        # side run as two ranges: raw only, then raw and everything downstream.
        gone = keys[25]
        for source in SOURCES:
            if (landing / source / gone).exists():
                shutil.rmtree(landing / source / gone)
        again = backfill(settings, date.fromisoformat(keys[20]), date.fromisoformat(keys[30]), instance=instance, stream=io.StringIO())
        assert again.success, again.failed_steps
        assert len(again.run_ids) == 2
        first, second = (instance.get_run_by_id(r) for r in again.run_ids)
        assert (first.tags["dagster/asset_partition_range_start"], first.tags["dagster/asset_partition_range_end"]) == (keys[20], keys[24])
        assert (second.tags["dagster/asset_partition_range_start"], second.tags["dagster/asset_partition_range_end"]) == (keys[26], keys[30])
        assert set(first.asset_selection) == {dg.AssetKey(f"raw_{s}") for s in SOURCES}  # the marts rebuild once, in the last run
        assert gone not in {k for ks in again.partitions_loaded.values() for k in ks}
        assert again.stale_partitions["installs"] == [gone]
    # kept, so the publication is the same as before
    assert_same_publication(settings, single_clv_run)


def test_clv_backfill_command_line(landing60, tmp_path, capsys):
    args = ["--landing", str(landing60), "--warehouse", str(tmp_path / "wh.duckdb"), "--serving", str(tmp_path / "serving")]
    assert clv_main(["backfill", "--from", "2020-01-01", "--to", "2020-01-31", *args]) == 2
    assert "no delivery folders dated 2020-01-01 … 2020-01-31" in capsys.readouterr().err
    assert clv_main(["backfill", "--from", "2026-11-02", "--to", "2026-11-01", *args]) == 2
    assert "before --from" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        clv_main(["backfill", "--from", "2026-11-01", *args])  # --to is required


@dg.asset
def touches_the_warehouse(warehouse: WarehouseResource) -> None:
    with warehouse.open() as wh:
        wh.execute("CREATE TABLE IF NOT EXISTS meta.touched AS SELECT 1 AS x")


def test_a_backfill_into_a_new_warehouse_says_which_deliveries_it_left_out(landing60, tmp_path, capsys):
    keys = discover_partition_keys(landing60)
    start, end = keys[10], keys[12]
    args = ["--landing", str(landing60), "--warehouse", str(tmp_path / "wh.duckdb"), "--serving", str(tmp_path / "serving")]
    assert clv_main(["backfill", "--from", start, "--to", end, *args]) == 0
    left_out = [k for k in keys if not start <= k <= end]
    assert (
        f"{len(left_out)} delivery folder(s) outside {start} … {end} have never been loaded ({left_out[0]} … {left_out[-1]})"
        in capsys.readouterr().out
    )


def test_a_step_that_finds_the_warehouse_locked_is_retried_then_names_the_file(tmp_path):
    database = tmp_path / "wh.duckdb"
    patient = WarehouseResource(database=str(database), lock_timeout_seconds=0.5, lock_retries=3, lock_retry_seconds=1.0)
    holder = hold_database_lock(database, 2.5)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize([touches_the_warehouse], resources={"warehouse": patient}, instance=instance)
            assert result.success
            kinds = [e.event_type_value for e in result.all_events]
            assert "STEP_UP_FOR_RETRY" in kinds  # it waited, was retried, and then went through
            warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level >= 30]
            assert any(str(database) in w and "locked by another process" in w for w in warnings)
    finally:
        holder.wait(timeout=30)

    impatient = WarehouseResource(database=str(database), lock_timeout_seconds=0.3, lock_retries=1, lock_retry_seconds=0.2)
    holder = hold_database_lock(database, 5)
    try:
        result = dg.materialize([touches_the_warehouse], resources={"warehouse": impatient}, raise_on_error=False)
    finally:
        holder.wait(timeout=30)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.step_failure_data.error
    text = ""
    while error is not None:
        text += error.message
        error = error.cause
    assert str(database) in text and "is locked by another process" in text
