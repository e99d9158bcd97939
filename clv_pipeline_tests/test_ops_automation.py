"""Operations without running the pipeline: the Definitions list the nightly schedule and the
arrival sensor (both on by default), the sensor asks for exactly one run per new delivery and
never twice, the schedule loads the newest delivery of each source, partition keys stay in date
order, the instance config serializes runs on the warehouse pool, freshness and cohort changes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from clv_pipeline.orchestration.arrivals import decode_cursor, scan_landing
from clv_pipeline.orchestration.automation import SCHEDULE_NAME, SENSOR_NAME
from clv_pipeline.orchestration.cohort_changes import cohort_changes
from clv_pipeline.orchestration.definitions import ALL_ASSETS, WAREHOUSE_POOL, build_definitions
from clv_pipeline.orchestration.freshness import source_freshness
from clv_pipeline.orchestration.ops_settings import OpsSettings, parse_freshness
from clv_pipeline.orchestration.partitions import DELIVERIES, partition_ranges, register_deliveries, registration_requests
from clv_pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DOWNSTREAM_OF_EVERYTHING = {"serving_snapshot", "channel_roi", "cohort_ltv", "user_clv", "data_quality"}


def deliver(landing: Path, source: str, day: str, name: str = "part-0.csv", text: str = "user_id\nu1\n") -> Path:
    folder = landing / source / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def definitions(tmp_path: Path, **ops) -> tuple[dg.Definitions, Path]:
    landing = tmp_path / "landing"
    landing.mkdir(exist_ok=True)
    settings = Settings(landing_dir=landing, warehouse_path=tmp_path / "wh.duckdb", serving_dir=tmp_path / "serving")
    return build_definitions(settings, ops=OpsSettings(**{"sensor_settle_seconds": 0, **ops})), landing


class SensorDriver:
    """Evaluates the sensor like the daemon does: with the previous tick's cursor, resolving the
    run requests against the job and the instance's partitions."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance, self.cursor = defs, instance, None
        self.sensor = defs.resolve_sensor_def(SENSOR_NAME)

    def tick(self):
        context = dg.build_sensor_context(instance_ref=self.instance.get_ref(), cursor=self.cursor, definitions=self.defs)
        data = self.sensor.evaluate_tick(context)
        for request in data.dynamic_partitions_requests or []:  # what the daemon does with them
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = data.cursor
        return data.run_requests or []


def test_definitions_list_the_schedule_and_the_sensor_running_by_default(tmp_path):
    defs, _ = definitions(tmp_path)
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert schedule.job_name == sensor.job_name == "clv_all"
    # the module the workspace loads has them too
    from clv_pipeline.orchestration.definitions import defs as module_defs

    assert {s.name for s in module_defs.schedules} == {SCHEDULE_NAME}
    assert {s.name for s in module_defs.sensors} == {SENSOR_NAME}
    # time and time zone are settings
    custom = OpsSettings.from_env({"CLV_NIGHTLY_TIME": "23:30", "CLV_NIGHTLY_TIMEZONE": "Europe/Berlin"})
    assert (custom.nightly_cron, custom.nightly_timezone) == ("30 23 * * *", "Europe/Berlin")
    with pytest.raises(ValueError, match="HH:MM"):
        OpsSettings(nightly_time="2am")
    with pytest.raises(ValueError, match="time zone"):
        OpsSettings(nightly_timezone="Mars/Olympus")


def test_dagster_definitions_validate_passes_on_the_workspace(tmp_path):
    env = {**os.environ, "CLV_LANDING": str(tmp_path / "landing"), "DAGSTER_HOME": str(tmp_path / "home"), "GX_ANALYTICS_ENABLED": "false"}
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    dagster = Path(sys.executable).parent / "dagster"
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "clv_pipeline" in done.stdout + done.stderr


def test_the_sensor_requests_exactly_one_run_per_new_delivery_and_never_twice(tmp_path):
    defs, landing = definitions(tmp_path)
    with dg.instance_for_test() as instance:
        sensor = SensorDriver(defs, instance)
        assert sensor.tick() == []  # empty landing folder

        deliver(landing, "installs", "2026-10-01")
        deliver(landing, "purchases", "2026-10-01")
        deliver(landing, "installs", "2026-10-02")
        first = sensor.tick()
        assert [r.partition_key for r in first] == ["2026-10-01", "2026-10-02"]
        assert instance.get_dynamic_partitions(DELIVERIES.name) == ["2026-10-01", "2026-10-02"]
        by_day = {r.partition_key: {k.to_user_string() for k in r.asset_selection} for r in first}
        assert {"raw_installs", "raw_purchases"} <= by_day["2026-10-01"] and "raw_sessions" not in by_day["2026-10-01"]
        assert "raw_purchases" not in by_day["2026-10-02"]
        assert DOWNSTREAM_OF_EVERYTHING <= by_day["2026-10-02"]  # and everything downstream
        assert all(r.tags["clv/trigger"] == "arrival sensor" for r in first)

        assert sensor.tick() == []  # nothing new: nothing requested again
        assert sensor.tick() == []

        # a new file in an existing delivery folder, a new folder, and a late folder dated earlier
        deliver(landing, "purchases", "2026-10-02", "late.csv")
        deliver(landing, "sessions", "2026-10-03")
        deliver(landing, "installs", "2026-09-30")
        second = sensor.tick()
        assert [(r.partition_key, r.tags["clv/sources"]) for r in second] == [
            ("2026-09-30", "installs"),
            ("2026-10-02", "purchases"),
            ("2026-10-03", "sessions"),
        ]
        assert len({r.run_key for r in first + second}) == 5
        # registered in date order, so a range of keys is a range of dates
        assert instance.get_dynamic_partitions(DELIVERIES.name) == ["2026-09-30", "2026-10-01", "2026-10-02", "2026-10-03"]
        assert sensor.tick() == []

        # a replaced file (same name, new content) is a new delivery of that source
        time.sleep(0.01)
        deliver(landing, "installs", "2026-10-01", text="user_id\nu1\nu2\n")
        third = sensor.tick()
        assert [(r.partition_key, r.tags["clv/sources"]) for r in third] == [("2026-10-01", "installs")]
        assert sensor.tick() == []


def test_files_still_being_written_wait_for_the_next_look(tmp_path):
    defs, landing = definitions(tmp_path, sensor_settle_seconds=3600)
    with dg.instance_for_test() as instance:
        sensor = SensorDriver(defs, instance)
        deliver(landing, "installs", "2026-10-01")
        assert sensor.tick() == []
        assert "2026-10-01" not in decode_cursor(sensor.cursor)


def test_many_new_deliveries_at_once_become_one_catch_up_run(tmp_path):
    defs, landing = definitions(tmp_path, sensor_max_runs_per_tick=3)
    days = [f"2026-10-{d:02d}" for d in range(1, 11)]
    for day in days:
        deliver(landing, "installs", day)
        deliver(landing, "ad_spend", day)
    with dg.instance_for_test() as instance:
        sensor = SensorDriver(defs, instance)
        (request,) = sensor.tick()
        assert request.partition_key is None
        assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (days[0], days[-1])
        assert {"raw_installs", "raw_ad_spend", "serving_snapshot"} <= {k.to_user_string() for k in request.asset_selection}
        assert sensor.tick() == []
        deliver(landing, "installs", "2026-10-11")  # back to one run per delivery
        assert [r.partition_key for r in sensor.tick()] == ["2026-10-11"]


def test_the_nightly_schedule_loads_the_newest_delivery_of_each_source(tmp_path):
    defs, landing = definitions(tmp_path)
    for day in ("2026-10-01", "2026-10-02", "2026-10-03"):
        deliver(landing, "installs", day)
        deliver(landing, "purchases", day)
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    at = datetime(2026, 10, 4, 2, 0, tzinfo=timezone.utc)
    with dg.instance_for_test() as instance:
        (request,) = schedule.evaluate_tick(
            dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(), scheduled_execution_time=at)
        ).run_requests
        assert request.partition_key == "2026-10-03"
        selection = {k.to_user_string() for k in request.asset_selection}
        assert {"raw_installs", "raw_purchases"} | DOWNSTREAM_OF_EVERYTHING <= selection and "raw_sessions" not in selection
        assert instance.get_dynamic_partitions(DELIVERIES.name) == ["2026-10-01", "2026-10-02", "2026-10-03"]

        deliver(landing, "installs", "2026-10-04")  # purchases lag a day: one run over both days
        (request,) = schedule.evaluate_tick(
            dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(), scheduled_execution_time=at)
        ).run_requests
        assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == ("2026-10-03", "2026-10-04")


def test_partition_keys_stay_in_date_order_and_ranges_cover_exactly_the_keys_asked(tmp_path):
    assert registration_requests(["2026-10-02"], ["2026-10-02"]) == []
    with dg.instance_for_test() as instance:
        assert register_deliveries(instance, ["2026-10-05", "2026-10-03"]) == ["2026-10-03", "2026-10-05"]
        assert register_deliveries(instance, ["2026-10-04", "2026-10-01", "2026-10-06"]) == ["2026-10-01", "2026-10-04", "2026-10-06"]
        order = instance.get_dynamic_partitions(DELIVERIES.name)
        assert order == ["2026-10-01", "2026-10-03", "2026-10-04", "2026-10-05", "2026-10-06"]
    assert partition_ranges(order, order) == [("2026-10-01", "2026-10-06")]
    assert partition_ranges(order, ["2026-10-01", "2026-10-03", "2026-10-05"]) == [("2026-10-01", "2026-10-03"), ("2026-10-05", "2026-10-05")]
    assert partition_ranges(["b", "a", "c"], ["a", "c"]) == [("a", "c")]  # insertion order, not sort order
    with pytest.raises(ValueError, match="not registered"):
        partition_ranges(order, ["2027-01-01"])


def test_the_instance_config_lets_one_run_at_a_time_use_the_warehouse():
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    with dg.instance_for_test(overrides=config) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.pool_granularity.value == "run" and pools.default_pool_limit == 1
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and not instance.run_retries_retry_on_asset_or_op_failure
    # every asset that opens the build database is in the pool
    for asset in ALL_ASSETS:
        if "warehouse" in asset.required_resource_keys:
            assert {spec.pool for spec in [asset.op]} == {WAREHOUSE_POOL}, asset.key


def test_freshness_warns_when_a_source_stops_delivering(tmp_path):
    landing = tmp_path / "landing"
    old = deliver(landing, "installs", "2026-10-01")
    deliver(landing, "purchases", "2026-10-01")
    now = time.time()
    os.utime(old, (now - 50 * 3600, now - 50 * 3600))
    scan = scan_landing(landing)
    # ctime is the arrival time on Linux (a copy that keeps old mtimes is still new): age from now
    assert source_freshness(scan, "purchases", 36, now).fresh
    stale = source_freshness(scan, "installs", 36, now + 40 * 3600)
    assert not stale.fresh and "no new installs delivery for" in stale.message and "2026-10-01" in stale.message
    assert source_freshness(scan, "sessions", 36, now).fresh  # never delivered: nothing is late
    assert parse_freshness("24,ad_spend=60") == (24.0, {"ad_spend": 60.0})
    assert OpsSettings.from_env({"CLV_FRESHNESS_HOURS": "24,ad_spend=60"}).freshness_hours_for("ad_spend") == 60.0
    with pytest.raises(ValueError, match="unknown sources"):
        OpsSettings(freshness_hours_by_source={"tiktok": 1.0})


def test_cohort_changes_tell_revisions_from_new_and_matured_cohorts():
    def frame(rows):
        return pl.DataFrame(
            rows,
            schema={"cohort_date": pl.Date, "media_source": pl.String, "campaign": pl.String, "day_n": pl.Int64, "retention": pl.Float64, "rolling_active_users": pl.Int64},
            orient="row",
        )

    d1, d2, d3, d4 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3), date(2026, 10, 4)
    before = frame([(d1, "a", None, 7, 1.0, 5), (d2, "a", None, 7, 2.0, 5), (d3, "a", None, 7, None, 5)])
    after = frame(
        [
            (d1, "a", None, 7, 1.0, 9),  # only a to-date column moved: not a revision
            (d2, "a", None, 7, 2.5, 5),  # late sessions: revised
            (d3, "a", None, 7, 3.0, 5),  # was immature: matured
            (d3, "b", None, 7, None, 1),  # a late install in a new cell of a published cohort: revised
            (d4, "a", None, 7, None, 1),  # new cohort
        ]
    )
    changes = cohort_changes({"cohort_retention": before, "cohort_ltv": None}, {"cohort_retention": after})
    assert changes.compared
    assert changes.revised == {d2: ["cohort_retention"], d3: ["cohort_retention"]}
    assert changes.new == [d4] and changes.values_matured == 1
    assert not cohort_changes({}, {"cohort_retention": after}).compared


def test_runs_of_a_killed_clv_process_are_marked_failed_by_the_next_clv_run():
    import socket

    from dagster._core.test_utils import create_run_for_test

    from clv_pipeline.cli.run import HOST_TAG, PID_TAG, _close_orphaned_runs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with dg.instance_for_test() as instance:
        host = socket.gethostname()
        orphan = create_run_for_test(instance, status=dg.DagsterRunStatus.STARTED, tags={PID_TAG: str(dead.pid), HOST_TAG: host})
        alive = create_run_for_test(instance, status=dg.DagsterRunStatus.STARTED, tags={PID_TAG: str(os.getpid()), HOST_TAG: host})
        out = io.StringIO()
        _close_orphaned_runs(instance, out)
        assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
        assert f"killed clv process ({dead.pid})" in out.getvalue()
