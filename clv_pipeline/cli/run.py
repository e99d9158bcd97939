"""`clv run` and `clv backfill`: materialize delivery partitions of the landing folder (all of
them, or those between two dates) and everything downstream, in-process, with progress lines and
a report at the end.

A set of partitions normally runs as one Dagster run over a partition range (the raw assets'
single-run backfill policy), so the marts rebuild once. Dynamic partition keys are resolved in
the instance's order (see `orchestration.partitions`); when the requested keys are not
consecutive in it — a registered delivery whose folder was removed lies between them — the raw
partitions load in one run per consecutive range and only the last run rebuilds downstream.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg

from clv_pipeline.ingestion.landing import discover_partition_keys, invalid_partition_folders
from clv_pipeline.orchestration.assets.raw import RAW_ASSETS
from clv_pipeline.orchestration.definitions import ALL_JOB, build_definitions
from clv_pipeline.orchestration.automation import TRIGGER_TAG
from clv_pipeline.orchestration.partitions import DELIVERIES, RANGE_END, RANGE_START, partition_ranges, register_deliveries
from clv_pipeline.orchestration.run_summary import CheckOutcome, RunSummary, collect_run, error_message
from clv_pipeline.publication.serving import process_alive
from clv_pipeline.settings import Settings
from clv_pipeline.storage.layers import drop_partitions, loaded_partitions
from clv_pipeline.storage.warehouse import Warehouse

__all__ = ["CheckOutcome", "RunSummary", "backfill", "error_message", "print_summary", "run_pipeline"]

LOCK_TIMEOUT_SECONDS = 120.0
# Tags on runs started by the CLI: which process runs them (to close runs whose process was killed).
PID_TAG = "clv/pid"
HOST_TAG = "clv/host"


def print_to_stderr(message: str) -> None:
    print(f"  ! {message}", file=sys.stderr, flush=True)


class _ProgressHandler(logging.Handler):
    """Prints one line per step start/finish and per failed check."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        if event is None:
            message = record.getMessage().split(" - ")[-1]
            if record.levelno >= logging.WARNING and step and "Not executing" not in message:
                print(f"  ! {step}: {message}", file=self.stream, flush=True)
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[step] = time.monotonic()
            print(f"  … {step}", file=self.stream, flush=True)
        elif kind == "STEP_SUCCESS":
            took = time.monotonic() - self.started.get(step, time.monotonic())
            print(f"  ✓ {step} ({took:.1f} s)", file=self.stream, flush=True)
        elif kind == "STEP_FAILURE":
            error = event.step_failure_data.error if event.step_failure_data else None
            print(f"  ✗ {step} failed: {error_message(error)}", file=self.stream, flush=True)
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed:
                mark = "✗" if data.severity == dg.AssetCheckSeverity.ERROR else "!"
                print(f"  {mark} check {data.asset_key.to_user_string()}.{data.check_name} did not pass ({data.severity.value})", file=self.stream, flush=True)


def progress_logger(stream) -> dg.LoggerDefinition:
    @dg.logger(description="Concise progress lines for the clv CLI")
    def clv_progress(_init_context):
        log = logging.getLogger("clv_progress")
        log.setLevel(logging.DEBUG)
        log.handlers = [_ProgressHandler(stream)]
        log.propagate = False
        return log

    return clv_progress


def _check_output_folders(settings: Settings) -> None:
    """Create the build database's and the serving snapshot's folders, or say which path is unusable
    before anything is loaded."""
    for what, folder in (("build database", Path(settings.warehouse_path).parent), ("serving folder", Path(settings.serving_dir))):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"{what}: cannot create the folder {folder} ({exc.strerror or exc})") from exc
        if not os.access(folder, os.W_OK):
            raise ValueError(f"{what}: the folder {folder} is not writable")


def _stale_partitions(settings: Settings, keys: list[str], prune: bool) -> dict[str, list[str]]:
    """Partitions loaded by an earlier run whose delivery folder is no longer in the landing
    folder (a whole delivery was removed). With `prune` they are dropped before the run;
    otherwise they stay and the summary says so."""
    if not Path(settings.warehouse_path).exists():
        return {}
    present = {date.fromisoformat(k) for k in keys}
    with Warehouse.open(settings.warehouse_path, lock_timeout_seconds=LOCK_TIMEOUT_SECONDS, on_wait=print_to_stderr) as wh:
        stale = {s: sorted(d for d in dates if d not in present) for s, dates in loaded_partitions(wh).items()}
        stale = {s: d for s, d in stale.items() if d}
        if prune:
            for source, dates in stale.items():
                drop_partitions(wh, source, dates)
    return {s: [d.isoformat() for d in dates] for s, dates in stale.items()}


def _instance() -> dg.DagsterInstance:
    """The instance of DAGSTER_HOME when set (runs then show in `dagster dev`), else ephemeral."""
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def _close_orphaned_runs(instance: dg.DagsterInstance, stream) -> None:
    """Mark as failed the runs of earlier `clv` processes on this host that were killed (SIGKILL,
    power loss) and so never reported their end; otherwise they stay "started" in the UI."""
    if instance.is_ephemeral:
        return
    host = socket.gethostname()
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={HOST_TAG: host}))
    for run in runs:
        pid = int(run.tags.get(PID_TAG, "0") or 0)
        if pid <= 0 or pid == os.getpid() or process_alive(pid):
            continue
        instance.report_run_failed(run, f"the clv process {pid} that ran it is gone (killed or crashed); marked failed by the next clv run")
        print(f"  ! run {run.run_id[:8]} of a killed clv process ({pid}) marked failed", file=stream, flush=True)


def run_pipeline(
    settings: Settings,
    partitions: list[str] | None = None,
    instance: dg.DagsterInstance | None = None,
    stream=None,
    prune_missing: bool = False,
    trigger: str = "clv run",
) -> RunSummary:
    """Materialize the given delivery partitions (default: all in the landing folder) and every
    downstream asset. Returns a summary; never raises for data problems (they are in it)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    stream = stream or sys.stderr
    landing = Path(settings.landing_dir)
    if not landing.is_dir():
        raise FileNotFoundError(f"landing folder {landing} does not exist (run `clv generate` or `clv import` first)")
    available = discover_partition_keys(landing)
    keys = sorted(partitions) if partitions is not None else available
    invalid = [str(p) for p in invalid_partition_folders(landing)]
    if not keys:
        found = f"; folders that are not dates: {invalid}" if invalid else ""
        raise FileNotFoundError(f"no delivery folders (<source>/<YYYY-MM-DD>/) found under {landing}{found}")
    _check_output_folders(settings)
    stale = _stale_partitions(settings, available, prune_missing)
    instance = instance or _instance()
    _close_orphaned_runs(instance, stream)
    register_deliveries(instance, keys)
    ranges = partition_ranges(instance.get_dynamic_partitions(DELIVERIES.name), keys)
    defs = build_definitions(settings, loggers={"clv_progress": progress_logger(stream)})
    job = defs.resolve_job_def(ALL_JOB.name)
    started = time.monotonic()
    print(f"{trigger}: {len(keys)} delivery partitions ({keys[0]} … {keys[-1]}) from {landing}", file=stream, flush=True)
    for folder in invalid:
        print(f"  ✗ {folder}: partition folder is not a date (expected YYYY-MM-DD); not loaded, publication blocked", file=stream, flush=True)
    summary = RunSummary(success=True, partitions=list(keys), invalid_folders=invalid, stale_partitions=stale, pruned=prune_missing)
    raw_only = [a.key for a in RAW_ASSETS]
    for index, (first, last) in enumerate(ranges):
        final = index == len(ranges) - 1
        healthy = summary.success and not summary.blocking_failures
        if len(ranges) > 1:
            print(f"  part {index + 1}/{len(ranges)}: partitions {first} … {last}" + ("" if final and healthy else " (raw only)"), file=stream, flush=True)
        result = job.execute_in_process(
            instance=instance,
            tags={RANGE_START: first, RANGE_END: last, TRIGGER_TAG: trigger, PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
            asset_selection=None if final and healthy else raw_only,
            run_config={"loggers": {"clv_progress": {}}},
            raise_on_error=False,
        )
        summary.success = summary.success and result.success
        collect_run(instance, result.run_id, summary)
    if summary.blocking_failures and len(ranges) > 1 and "serving_snapshot" not in summary.step_seconds:
        summary.notes.append("downstream assets were not rebuilt: a blocking check failed in an earlier part")
    summary.duration_seconds = time.monotonic() - started
    return summary


def backfill(
    settings: Settings,
    start: date,
    end: date,
    instance: dg.DagsterInstance | None = None,
    stream=None,
) -> RunSummary:
    """`clv backfill`: reload the delivery partitions dated `start`..`end` (inclusive) found in the
    landing folder and rebuild everything downstream once."""
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    landing = Path(settings.landing_dir)
    if not landing.is_dir():
        raise FileNotFoundError(f"landing folder {landing} does not exist (run `clv generate` or `clv import` first)")
    available = discover_partition_keys(landing)
    keys = [k for k in available if start <= date.fromisoformat(k) <= end]
    if not keys:
        raise FileNotFoundError(f"no delivery folders dated {start} … {end} under {landing}")
    summary = run_pipeline(settings, partitions=keys, instance=instance, stream=stream, trigger="clv backfill")
    never_loaded = _never_loaded(settings, available)
    if never_loaded:
        summary.notes.append(
            f"{len(never_loaded)} delivery folder(s) outside {start} … {end} have never been loaded "
            f"({never_loaded[0]} … {never_loaded[-1]}): the published tables do not include them; "
            "`clv run` loads every delivery"
        )
    return summary


def _never_loaded(settings: Settings, keys: list[str]) -> list[str]:
    """Delivery folders of the landing with no row in any raw table of the build database."""
    if not Path(settings.warehouse_path).exists():
        return list(keys)
    with Warehouse.open(settings.warehouse_path, lock_timeout_seconds=LOCK_TIMEOUT_SECONDS, on_wait=print_to_stderr) as wh:
        loaded = set().union(*loaded_partitions(wh).values())
    return [k for k in keys if date.fromisoformat(k) not in loaded]


def print_summary(summary: RunSummary, settings: Settings, stream=None) -> None:
    from clv_pipeline.cli.report import run_report

    print(run_report(summary, settings), file=stream or sys.stdout)

