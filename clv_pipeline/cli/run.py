"""`clv run`: materialize every delivery partition found in the landing folder and everything
downstream, in one in-process Dagster run, with progress lines and a summary at the end."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from clv_pipeline.ingestion.landing import discover_partition_keys, invalid_partition_folders
from clv_pipeline.orchestration.definitions import ALL_JOB, build_definitions
from clv_pipeline.orchestration.partitions import register_deliveries
from clv_pipeline.settings import Settings
from clv_pipeline.storage.layers import drop_partitions, loaded_partitions
from clv_pipeline.storage.warehouse import Warehouse

RANGE_START = "dagster/asset_partition_range_start"
LOCK_TIMEOUT_SECONDS = 120.0


def print_to_stderr(message: str) -> None:
    print(f"  ! {message}", file=sys.stderr, flush=True)
RANGE_END = "dagster/asset_partition_range_end"


@dataclass
class CheckOutcome:
    asset: str
    check: str
    passed: bool
    severity: str
    description: str = ""


@dataclass
class RunSummary:
    success: bool
    partitions: list[str]
    checks: list[CheckOutcome] = field(default_factory=list)
    step_seconds: dict[str, float] = field(default_factory=dict)
    failed_steps: dict[str, str] = field(default_factory=dict)
    skipped_steps: list[str] = field(default_factory=list)
    invalid_folders: list[str] = field(default_factory=list)
    # Delivery partitions in the warehouse whose folder is gone from the landing folder.
    stale_partitions: dict[str, list[str]] = field(default_factory=dict)
    pruned: bool = False
    duration_seconds: float = 0.0
    run_id: str = ""

    @property
    def checks_failed(self) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed]


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


def error_message(error) -> str:
    """The innermost cause of a Dagster step error, in one line, without Dagster's class names."""
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    if error is None:
        return "failed"
    line = (error.message.strip().splitlines() or [""])[0]
    if "blocking asset check failed" in line:
        return "stopped by a failed blocking check (see the checks below)"
    return line.split(": ", 1)[1] if line.startswith(("dagster.", "polars.", "_duckdb.", "duckdb.")) and ": " in line else line


def _instance() -> dg.DagsterInstance:
    """The instance of DAGSTER_HOME when set (runs then show in `dagster dev`), else ephemeral."""
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def run_pipeline(
    settings: Settings,
    partitions: list[str] | None = None,
    instance: dg.DagsterInstance | None = None,
    stream=None,
    prune_missing: bool = False,
) -> RunSummary:
    """Materialize the given delivery partitions (default: all in the landing folder) and every
    downstream asset. Returns a summary; never raises for data problems (they are in it)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    stream = stream or sys.stderr
    landing = Path(settings.landing_dir)
    if not landing.is_dir():
        raise FileNotFoundError(f"landing folder {landing} does not exist (run `clv generate` or `clv import` first)")
    keys = partitions if partitions is not None else discover_partition_keys(landing)
    invalid = [str(p) for p in invalid_partition_folders(landing)]
    if not keys:
        found = f"; folders that are not dates: {invalid}" if invalid else ""
        raise FileNotFoundError(f"no delivery folders (<source>/<YYYY-MM-DD>/) found under {landing}{found}")
    stale = _stale_partitions(settings, keys, prune_missing)
    instance = instance or _instance()
    register_deliveries(instance, keys)
    ordered = [k for k in instance.get_dynamic_partitions("deliveries") if k in set(keys)]
    defs = build_definitions(settings, loggers={"clv_progress": progress_logger(stream)})
    job = defs.resolve_job_def(ALL_JOB.name)
    started = time.monotonic()
    print(f"clv run: {len(keys)} delivery partitions ({keys[0]} … {keys[-1]}) from {landing}", file=stream, flush=True)
    for folder in invalid:
        print(f"  ✗ {folder}: partition folder is not a date (expected YYYY-MM-DD); not loaded, publication blocked", file=stream, flush=True)
    result = job.execute_in_process(
        instance=instance,
        tags={RANGE_START: ordered[0], RANGE_END: ordered[-1]},
        run_config={"loggers": {"clv_progress": {}}},
        raise_on_error=False,
    )
    summary = RunSummary(
        success=result.success,
        partitions=list(keys),
        invalid_folders=invalid,
        run_id=result.run_id,
        stale_partitions=stale,
        pruned=prune_missing,
    )
    starts: dict[str, float] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None:
            if entry.step_key and "Not executing" in (entry.user_message or ""):
                summary.skipped_steps.append(entry.step_key)  # abandoned: an upstream step failed
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif kind == "STEP_SUCCESS" and event.step_key in starts:
            summary.step_seconds[event.step_key] = entry.timestamp - starts[event.step_key]
        elif kind == "STEP_FAILURE":
            summary.failed_steps[event.step_key] = error_message(event.step_failure_data.error if event.step_failure_data else None)
        elif kind == "STEP_SKIPPED":
            summary.skipped_steps.append(event.step_key)
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            summary.checks.append(
                CheckOutcome(data.asset_key.to_user_string(), data.check_name, data.passed, data.severity.value, data.description or "")
            )
    summary.duration_seconds = time.monotonic() - started
    return summary


def print_summary(summary: RunSummary, settings: Settings, stream=None) -> None:
    from clv_pipeline.cli.report import run_report

    print(run_report(summary, settings), file=stream or sys.stdout)


def checks_by_asset(checks: list[CheckOutcome]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in checks:
        counts[c.asset][0 if c.passed else 1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(counts.items())}
