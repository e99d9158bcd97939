"""Recovery and late data, end to end on a small generated sample (21 deliveries).

Crash safety: `clv run` in a subprocess is killed with SIGKILL at three points — inside the
transaction of a raw load, inside the transaction of a mart rebuild, and while the new serving
database is being written. Each time the build database still opens (with the previous state of
what was being written), the serving snapshot is the previous one, intact; the next `clv run`
publishes exactly the tables of a clean, uninterrupted run. The kill points are hit
deterministically with the storage layer's test hook (CLV_TEST_PAUSE_AFTER_WRITE=<table>): the
process prints a marker and sleeps inside the transaction, and the test kills it there.

Late data, sensor-driven: the first look at a filled landing folder is one catch-up run; a
purchases delivery for an old date that arrives later is exactly one run request (raw_purchases
for that date and everything downstream); that run rebuilds the published cohorts it touches, its
report says which cohorts were revised — only cohorts of the users in the late file — and the
result equals a clean `clv run` over the whole landing folder.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from clv_pipeline.cli.report import run_report
from clv_pipeline.cli.run import run_pipeline
from clv_pipeline.ingestion.landing import discover_partition_keys
from clv_pipeline.ingestion.sources import SOURCES
from clv_pipeline.orchestration.automation import SENSOR_NAME
from clv_pipeline.orchestration.definitions import ALL_JOB, build_definitions
from clv_pipeline.orchestration.ops_settings import OpsSettings
from clv_pipeline.orchestration.partitions import DELIVERIES, register_deliveries
from clv_pipeline.orchestration.run_summary import RunSummary, collect_run
from clv_pipeline.publication.contract import PUBLISHED_TABLES
from clv_pipeline.sample_data import generate_sample
from clv_pipeline.settings import Settings
from clv_pipeline.storage.warehouse import PAUSE_ENV, PAUSE_MARKER

pytestmark = pytest.mark.slow

KILL_POINTS = [
    ("during a raw load", "raw.installs"),
    ("during a mart rebuild", "marts.cohort_ltv"),
    ("during publication", "cohort_ltv"),  # the table being written into the new serving database
]


def published(serving: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(serving / "clv.duckdb"), read_only=True)
    try:
        tables = {name: pl.from_arrow(con.sql(f'SELECT * FROM "{name}"').to_arrow_table()) for name in [*PUBLISHED_TABLES, "_snapshot"]}
    finally:
        con.close()
    return {name: frame.sort(frame.columns, nulls_last=True) for name, frame in tables.items()}


def parquet_snapshot(serving: Path) -> dict[str, int]:
    return {name: pl.read_parquet(serving / "parquet" / f"{name}.parquet").height for name in PUBLISHED_TABLES}


@pytest.fixture(scope="module")
def landing21(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("recovery") / "landing"
    generate_sample(landing, days=21, scale=0.05, seed=3)
    return landing


@pytest.fixture(scope="module")
def clean_publication(landing21, tmp_path_factory) -> dict[str, pl.DataFrame]:
    """What a clean, uninterrupted `clv run` over the whole landing folder publishes."""
    root = tmp_path_factory.mktemp("clean")
    clean = Settings(landing_dir=landing21, warehouse_path=root / "wh.duckdb", serving_dir=root / "serving")
    assert run_pipeline(clean, stream=io.StringIO()).success
    return published(clean.serving_dir)


def clv_run(settings: Settings, pause_after: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
    env.pop("DAGSTER_HOME", None)
    if pause_after:
        env[PAUSE_ENV] = pause_after
    command = [sys.executable, "-m", "clv_pipeline.cli.main", "run", "--landing", str(settings.landing_dir),
               "--warehouse", str(settings.warehouse_path), "--serving", str(settings.serving_dir)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_at_pause(process: subprocess.Popen, timeout: float = 180) -> list[str]:
    """Read progress lines until the pause marker, then SIGKILL the process."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    lines = []
    try:
        for line in process.stderr:
            lines.append(line.rstrip())
            if line.startswith(PAUSE_MARKER):
                process.send_signal(signal.SIGKILL)
                break
    finally:
        timer.cancel()
    process.wait(timeout=30)
    assert lines and lines[-1].startswith(PAUSE_MARKER), "the run never reached the kill point:\n" + "\n".join(lines[-20:])
    assert process.returncode == -signal.SIGKILL
    return lines


def warehouse_state(path: Path) -> dict[str, int]:
    """Open the build database read-write (replaying its WAL, as the next run would)."""
    con = duckdb.connect(str(path))
    try:
        return {
            "installs_partitions": con.execute("SELECT count(DISTINCT _delivery_date) FROM raw.installs").fetchall()[0][0],
            "cohort_ltv_rows": con.execute("SELECT count(*) FROM marts.cohort_ltv").fetchall()[0][0],
        }
    finally:
        con.close()


def test_sigkill_at_any_point_leaves_everything_openable_and_the_rerun_equals_a_clean_run(landing21, clean_publication, tmp_path):
    landing = landing21
    keys = discover_partition_keys(landing)
    expected = clean_publication

    # an earlier night: the first 14 deliveries are loaded and published
    earlier = tmp_path / "earlier"
    for source in SOURCES:
        for key in keys[:14]:
            if (landing / source / key).is_dir():
                shutil.copytree(landing / source / key, earlier / source / key)
    crashing = Settings(landing_dir=landing, warehouse_path=tmp_path / "crash" / "wh.duckdb", serving_dir=tmp_path / "crash" / "serving")
    assert run_pipeline(crashing.replace(landing_dir=earlier), stream=io.StringIO()).success
    before = published(crashing.serving_dir)
    before_parquet = parquet_snapshot(crashing.serving_dir)
    state_before = warehouse_state(crashing.warehouse_path)
    assert state_before["installs_partitions"] == 14

    timings = {}
    for point, table in KILL_POINTS:
        started = time.monotonic()
        lines = kill_at_pause(clv_run(crashing, pause_after=table))
        timings[point] = time.monotonic() - started
        state = warehouse_state(crashing.warehouse_path)  # openable, and
        if table.startswith("raw."):
            # the killed transaction replaced all 21 partitions or none: none
            assert state["installs_partitions"] == 14, point
        if table.startswith("marts."):
            assert any("cohort_ltv" in line for line in lines)  # killed inside the cohort_ltv step
            assert state["cohort_ltv_rows"] == state_before["cohort_ltv_rows"], point  # the old mart, whole
        # the serving snapshot is the previous one, whole, in both forms
        now = published(crashing.serving_dir)
        assert all(now[name].equals(before[name]) for name in before), point
        assert parquet_snapshot(crashing.serving_dir) == before_parquet, point
    assert list(crashing.serving_dir.glob(".clv.duckdb.tmp-*"))  # the killed publication's half-written file

    rerun = clv_run(crashing)
    _, errors = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, errors[-3000:]
    after = published(crashing.serving_dir)
    for name in expected:
        assert after[name].equals(expected[name]), f"{name} differs from the clean run's"
    assert parquet_snapshot(crashing.serving_dir) == {name: expected[name].height for name in PUBLISHED_TABLES}
    assert not list(crashing.serving_dir.glob(".clv.duckdb.tmp-*"))  # leftovers of killed runs are removed
    print("seconds from start to kill:", {k: round(v, 1) for k, v in timings.items()})


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> RunSummary:
    """Run a sensor's run request in-process, as the daemon's run worker would."""
    tags = {k: v for k, v in request.tags.items() if not k.startswith("dagster/") or "partition_range" in k}
    result = defs.resolve_job_def(ALL_JOB.name).execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=tags, asset_selection=list(request.asset_selection), raise_on_error=False
    )
    summary = collect_run(instance, result.run_id, RunSummary(success=result.success, partitions=[]))
    assert result.success, summary.failed_steps
    return summary


def test_a_late_delivery_is_one_run_that_revises_exactly_its_cohorts(landing21, clean_publication, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(landing21, landing)
    keys = discover_partition_keys(landing)
    late_day = keys[4]
    held = tmp_path / "held"
    shutil.move(landing / "purchases" / late_day, held)

    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving")
    defs = build_definitions(settings, ops=OpsSettings(sensor_settle_seconds=0))
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    # The sensor needs a persistent instance; the runs execute on a fast in-memory one that has
    # the same delivery partitions in the same order.
    with dg.instance_for_test() as sensor_instance, dg.DagsterInstance.ephemeral() as instance:

        def tick(cursor):
            data = sensor.evaluate_tick(dg.build_sensor_context(instance_ref=sensor_instance.get_ref(), cursor=cursor, definitions=defs))
            for request in data.dynamic_partitions_requests or []:
                sensor_instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            register_deliveries(instance, sensor_instance.get_dynamic_partitions(DELIVERIES.name))
            return data.run_requests or [], data.cursor

        (catch_up,), cursor = tick(None)  # 21 deliveries at once: one catch-up run over their range
        assert catch_up.tags["dagster/asset_partition_range_start"] == keys[0]
        first = execute(defs, instance, catch_up)
        assert first.cohort_changes is not None and not first.cohort_changes.compared  # first snapshot

        assert tick(cursor)[0] == []
        shutil.move(held, landing / "purchases" / late_day)  # the late delivery lands
        (request,), cursor = tick(cursor)
        assert request.partition_key == late_day and request.tags["clv/sources"] == "purchases"
        selection = {k.to_user_string() for k in request.asset_selection}
        assert "raw_purchases" in selection and "raw_installs" not in selection and "serving_snapshot" in selection
        assert tick(cursor)[0] == []

        late = execute(defs, instance, request)
        assert late.partitions_loaded == {"purchases": [late_day]}
        changes = late.cohort_changes
        assert changes.compared and changes.revised and not changes.new

        # the report in Dagster and in the terminal says which cohorts changed
        materialization = instance.get_latest_materialization_event(dg.AssetKey("serving_snapshot")).asset_materialization
        assert materialization.metadata["cohorts_revised"].value == len(changes.revised)
        assert "Cohorts revised since the previous snapshot" in materialization.metadata["run_report"].value
        text = run_report(late, settings)
        assert "Cohorts revised since the previous snapshot (late or restated data)" in text
        assert min(changes.revised).isoformat() in text

    # revised cohorts are the install dates of users with events in the late file, nothing else
    with gzip.open(next((landing / "purchases" / late_day).glob("*.gz")), "rt") as handle:
        late_users = set(pl.read_csv(io.StringIO(handle.read()))["user_id"].drop_nulls().to_list())
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        installs = pl.from_arrow(con.sql("SELECT user_id, install_date FROM staging.installs").to_arrow_table())
    finally:
        con.close()
    cohorts_of_late_users = set(installs.filter(pl.col("user_id").is_in(list(late_users)))["install_date"].to_list())
    assert set(changes.revised) <= cohorts_of_late_users
    assert all(isinstance(d, date) for d in changes.revised)

    # and the outcome is the same as loading everything at once
    ours = published(settings.serving_dir)
    for name in PUBLISHED_TABLES:
        assert ours[name].equals(clean_publication[name]), f"{name} differs from a clean run's"
