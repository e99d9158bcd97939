"""What a run did, read back from Dagster's event log: steps and their durations, failures, check
results, the delivery partitions each raw asset loaded, and the cohort changes the publication
step found. One reader for the CLI's end-of-run summary and for the run report the publication
step attaches to its materialization (rendered by `clv_pipeline.cli.report`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import dagster as dg

from clv_pipeline.orchestration.cohort_changes import CohortChanges

COHORT_CHANGES_KEY = "cohort_changes"
#: raw asset metadata: the delivery partitions of the step whose files could not be loaded
FAILED_PARTITIONS_KEY = "failed_partitions"


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
    run_ids: list[str] = field(default_factory=list)
    # source -> delivery partitions its raw asset loaded in this run (materialized, minus the
    # partitions whose files could not be read: those are in partitions_failed)
    partitions_loaded: dict[str, list[str]] = field(default_factory=dict)
    partitions_failed: dict[str, list[str]] = field(default_factory=dict)
    cohort_changes: CohortChanges | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def checks_failed(self) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed]

    @property
    def blocking_failures(self) -> list[CheckOutcome]:
        return [c for c in self.checks_failed if c.severity == "ERROR"]


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


def collect_run(instance: dg.DagsterInstance, run_id: str, summary: RunSummary) -> RunSummary:
    """Add one run's events to `summary` (several runs add up: durations of a step are summed)."""
    starts: dict[str, float] = {}
    loaded: dict[str, set[str]] = defaultdict(set, {k: set(v) for k, v in summary.partitions_loaded.items()})
    failed: dict[str, set[str]] = defaultdict(set, {k: set(v) for k, v in summary.partitions_failed.items()})
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            if entry.step_key and "Not executing" in (entry.user_message or ""):
                summary.skipped_steps.append(entry.step_key)  # abandoned: an upstream step failed
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif kind == "STEP_SUCCESS" and event.step_key in starts:
            took = entry.timestamp - starts[event.step_key]
            summary.step_seconds[event.step_key] = summary.step_seconds.get(event.step_key, 0.0) + took
        elif kind == "STEP_FAILURE":
            summary.failed_steps[event.step_key] = error_message(event.step_failure_data.error if event.step_failure_data else None)
        elif kind == "STEP_SKIPPED":
            summary.skipped_steps.append(event.step_key)
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            summary.checks.append(
                CheckOutcome(data.asset_key.to_user_string(), data.check_name, data.passed, data.severity.value, data.description or "")
            )
        elif kind == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            name = materialization.asset_key.to_user_string()
            if name.startswith("raw_") and materialization.partition:
                source = name.removeprefix("raw_")
                loaded[source].add(materialization.partition)
                if FAILED_PARTITIONS_KEY in materialization.metadata:
                    failed[source].update(materialization.metadata[FAILED_PARTITIONS_KEY].value)
            if name == "serving_snapshot" and COHORT_CHANGES_KEY in materialization.metadata:
                summary.cohort_changes = CohortChanges.from_metadata(materialization.metadata[COHORT_CHANGES_KEY].value)
    summary.partitions_failed = {source: sorted(keys) for source, keys in sorted(failed.items()) if keys}
    summary.partitions_loaded = {source: sorted(keys - failed[source]) for source, keys in sorted(loaded.items())}
    summary.run_id = run_id
    if run_id not in summary.run_ids:
        summary.run_ids.append(run_id)
    return summary
