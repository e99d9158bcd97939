"""Failure paths end to end: a broken file blocks publication (the previous snapshot stays), the
summary names the file, and the next good run publishes again. Plus the serving swap with an open
reader."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from clv_pipeline.cli.main import main as clv_main
from clv_pipeline.cli.run import run_pipeline
from clv_pipeline.publication.serving import publish
from clv_pipeline.sample_data import generate_sample
from clv_pipeline.settings import Settings
from clv_pipeline_tests.conftest import hold_database_lock

pytestmark = pytest.mark.slow


def snapshot_id(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT snapshot_id FROM _snapshot").fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("small") / "landing"
    generate_sample(landing, days=21, scale=0.05, seed=3)
    return landing


def test_broken_file_blocks_publication_and_names_the_file(small_landing, tmp_path, capsys):
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving")
    first = run_pipeline(settings)
    assert first.success
    published = snapshot_id(settings.serving_db_path)

    day = sorted(p.name for p in (landing / "installs").iterdir())[5]
    broken = next((landing / "installs" / day).iterdir())
    broken.write_text("user_id,platform\nu1,ios\n")  # install_time is missing
    second = run_pipeline(settings)
    assert not second.success
    failed = [c for c in second.checks_failed if c.check == "files_readable"]
    assert len(failed) == 1 and failed[0].severity == "ERROR"
    assert f"installs/{day}/{broken.name}" in failed[0].description
    assert "missing required column(s) ['install_time']" in failed[0].description
    assert "serving_snapshot" in second.skipped_steps or "serving_snapshot" not in second.step_seconds
    assert snapshot_id(settings.serving_db_path) == published  # the previous snapshot stays
    assert second.partitions_failed == {"installs": [day]}  # not counted as loaded
    assert day not in second.partitions_loaded["installs"] and day in second.partitions_loaded["purchases"]

    exit_code = clv_main(["run", "--landing", str(landing), "--warehouse", str(settings.warehouse_path), "--serving", str(settings.serving_dir)])
    out = capsys.readouterr()
    assert exit_code == 1
    assert "files_readable" in out.out and broken.name in out.out
    assert f"1 failed: {day}" in out.out

    shutil.copy(small_landing / "installs" / day / broken.name, broken)  # the corrected re-delivery
    third = run_pipeline(settings)
    assert third.success
    assert snapshot_id(settings.serving_db_path) == published  # same data again -> same snapshot


def test_missing_landing_folder_is_a_clear_error(tmp_path, capsys):
    code = clv_main(["run", "--landing", str(tmp_path / "nope"), "--warehouse", str(tmp_path / "w.duckdb"), "--serving", str(tmp_path / "s")])
    assert code == 2
    assert "landing folder" in capsys.readouterr().err


def test_an_open_reader_keeps_its_snapshot_while_a_new_one_is_published(tmp_path):
    serving = tmp_path / "serving"
    first = {"model_fit": pl.DataFrame({"model": ["bg_nbd"], "parameter": ["r"], "value": [1.0]})}
    second = {"model_fit": pl.DataFrame({"model": ["bg_nbd"], "parameter": ["r"], "value": [2.0]})}
    # only the columns the contract knows are allowed: use the full contract columns
    from clv_pipeline.publication.contract import TABLES

    def full(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns([pl.lit(None).alias(c) for c in TABLES["model_fit"].columns if c not in frame.columns]).select(
            list(TABLES["model_fit"].columns)
        )

    publish({k: full(v) for k, v in first.items()}, serving, "2024-01-01T23:59:59")
    reader = duckdb.connect(str(serving / "clv.duckdb"), read_only=True)
    try:
        assert reader.execute("SELECT value FROM model_fit").fetchall() == [(1.0,)]
        publish({k: full(v) for k, v in second.items()}, serving, "2024-01-02T23:59:59")
        assert reader.execute("SELECT value FROM model_fit").fetchall() == [(1.0,)]  # its snapshot
    finally:
        reader.close()
    fresh = duckdb.connect(str(serving / "clv.duckdb"), read_only=True)
    try:
        assert fresh.execute("SELECT value FROM model_fit").fetchall() == [(2.0,)]
    finally:
        fresh.close()
    assert pl.read_parquet(serving / "parquet" / "model_fit.parquet")["value"].to_list() == [2.0]
    assert not list(serving.glob(".clv.duckdb.tmp-*"))


def test_observation_end_cuts_spend_too(small_landing, tmp_path):
    settings = Settings(
        landing_dir=small_landing,
        warehouse_path=tmp_path / "wh.duckdb",
        serving_dir=tmp_path / "serving",
        observation_end=date(2026, 11, 20),
    )
    assert run_pipeline(settings).success
    roi = serving_frame(settings, "channel_roi")
    assert roi["cohort_date"].max() <= date(2026, 11, 20)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        staged = con.execute("SELECT sum(spend_usd) FROM staging.ad_spend WHERE date <= DATE '2026-11-20'").fetchall()[0][0]
        later = con.execute("SELECT sum(spend_usd) FROM staging.ad_spend WHERE date > DATE '2026-11-20'").fetchall()[0][0]
    finally:
        con.close()
    assert later > 0
    assert roi["spend"].sum() == staged


def test_observation_end_after_the_data_is_refused(small_landing, tmp_path):
    settings = Settings(
        landing_dir=small_landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving",
        observation_end=date(2027, 6, 1),
    )
    summary = run_pipeline(settings)
    assert not summary.success
    assert any("observation end 2027-06-01 is after the latest event in the data (2026-11-30)" in m for m in summary.failed_steps.values())
    assert not settings.serving_db_path.exists()


def test_observation_end_before_the_data_is_refused_and_keeps_the_published_snapshot(small_landing, tmp_path):
    settings = Settings(landing_dir=small_landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving")
    assert run_pipeline(settings).success
    published = serving_frame(settings, "cohort_retention")
    assert published.height > 0
    typo = dataclasses.replace(settings, observation_end=date(2020, 1, 1))
    summary = run_pipeline(typo)
    assert not summary.success
    assert any("observation end 2020-01-01 is before the earliest event in the data" in m for m in summary.failed_steps.values())
    assert serving_frame(settings, "cohort_retention").equals(published)


def test_landing_without_installs_publishes_empty_cohorts(small_landing, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    shutil.rmtree(landing / "installs")
    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving")
    summary = run_pipeline(settings)
    assert summary.success, summary.failed_steps
    assert serving_frame(settings, "cohort_retention").height == 0
    assert serving_frame(settings, "user_clv").height == 0
    dq = serving_frame(settings, "data_quality")
    purchases = dq.filter(pl.col("source") == "purchases")
    assert purchases["rows_orphan"].sum() == purchases["rows_loaded"].sum() - purchases["rows_replaced"].sum()
    fit = serving_frame(settings, "model_fit")
    assert fit["parameter"].null_count() == fit.height and "not fitted" in fit["message"][0]


def test_an_invalid_partition_folder_blocks_publication(small_landing, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    (landing / "installs" / "2026-13-45").mkdir()
    (landing / "installs" / "latest").mkdir()
    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving")
    summary = run_pipeline(settings)
    assert not summary.success
    assert "2026-13-45" not in summary.partitions
    check = next(c for c in summary.checks_failed if c.asset == "raw_installs" and c.check == "files_readable")
    assert "2026-13-45" in check.description and "latest" in check.description and "not a date" in check.description
    assert not settings.serving_db_path.exists()


def test_a_removed_delivery_is_reported_and_pruned_on_request(small_landing, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving")
    assert run_pipeline(settings).success
    day = sorted(p.name for p in (landing / "purchases").iterdir())[3]
    for source in ("installs", "purchases", "sessions", "ad_spend", "fx_rates"):
        shutil.rmtree(landing / source / day, ignore_errors=True)
    kept = run_pipeline(settings)
    assert kept.success and day in kept.stale_partitions["purchases"]
    assert day in serving_frame(settings, "data_quality")["partition"].cast(pl.String).to_list()
    pruned = run_pipeline(settings, prune_missing=True)
    assert pruned.success and pruned.pruned
    assert day not in serving_frame(settings, "data_quality")["partition"].cast(pl.String).to_list()
    assert run_pipeline(settings).stale_partitions == {}


def serving_frame(settings: Settings, name: str) -> pl.DataFrame:
    con = duckdb.connect(str(settings.serving_db_path), read_only=True)
    try:
        return pl.from_arrow(con.sql(f'SELECT * FROM "{name}"').to_arrow_table())
    finally:
        con.close()


def test_a_locked_warehouse_is_waited_for_with_a_message_then_named(small_landing, tmp_path, capsys):
    from clv_pipeline.storage.warehouse import Warehouse, WarehouseLockedError

    settings = Settings(landing_dir=small_landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving")
    assert run_pipeline(settings).success
    holder = hold_database_lock(settings.warehouse_path, 4)
    try:
        with pytest.raises(WarehouseLockedError, match="is locked by another process"):
            with Warehouse.open(settings.warehouse_path, lock_timeout_seconds=0.5):
                pass
        summary = run_pipeline(settings)  # waits for the holder, then runs
    finally:
        holder.wait(timeout=30)
    assert summary.success
    assert "waiting for the lock on" in capsys.readouterr().err


def test_clv_flags_default_to_the_clv_environment_variables(tmp_path, monkeypatch, capsys):
    """A cron user who exports CLV_* gets those folders and settings; a flag still wins."""
    monkeypatch.setenv("CLV_LANDING", str(tmp_path / "from_env"))
    assert clv_main(["run"]) == 2
    assert f"landing folder {tmp_path / 'from_env'} does not exist" in capsys.readouterr().err
    assert clv_main(["run", "--landing", str(tmp_path / "from_flag")]) == 2
    assert f"landing folder {tmp_path / 'from_flag'} does not exist" in capsys.readouterr().err
    monkeypatch.setenv("CLV_TIME_UNIT", "months")
    assert clv_main(["run", "--landing", str(tmp_path)]) == 2
    assert "time_unit must be 'days' or 'weeks', got 'months'" in capsys.readouterr().err


def test_an_unusable_output_path_is_named_before_anything_loads(small_landing, tmp_path, capsys):
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("not a folder")
    assert clv_main(["run", "--landing", str(small_landing), "--warehouse", str(in_the_way / "wh.duckdb"), "--serving", str(tmp_path / "s")]) == 2
    assert f"build database: cannot create the folder {in_the_way}" in capsys.readouterr().err
    assert clv_main(["run", "--landing", str(small_landing), "--warehouse", str(tmp_path / "wh.duckdb"), "--serving", str(in_the_way / "s")]) == 2
    assert f"serving folder: cannot create the folder {in_the_way / 's'}" in capsys.readouterr().err
    assert not (tmp_path / "wh.duckdb").exists()
