"""The nightly schedule and the delivery arrival sensor (both on by default under `dagster dev`).

- `nightly_schedule` (default 02:00 UTC; CLV_NIGHTLY_TIME / CLV_NIGHTLY_TIMEZONE): loads the
  newest delivery partition of each source and rebuilds everything downstream — one run.
- `delivery_arrival_sensor`: looks at the landing folder every CLV_SENSOR_INTERVAL_SECONDS; a new
  delivery folder, or new / replaced files in an existing one, gives exactly one run request for
  that delivery partition: the raw assets of the sources that changed, and everything downstream.
  The cursor remembers a fingerprint per delivery and source, so nothing is requested twice; the
  run key (delivery + fingerprint) makes a repeated request a no-op even if the cursor were lost.
  When more than CLV_SENSOR_MAX_RUNS_PER_TICK deliveries are new at once (the first look at a
  filled landing folder, a month of corrected files copied in), it requests one catch-up run over
  their range instead, so the marts rebuild once — as a backfill would.

Both register the delivery dates they find as dynamic partitions, in date order
(`partitions.registration_requests`). Runs they request are queued; the instance configuration
(`dagster.yaml`: pool `clv_warehouse`, run granularity, limit 1) lets one run at a time write the
build database.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import dagster as dg

from clv_pipeline.orchestration.arrivals import Arrivals, LandingScan, decode_cursor, diff_arrivals, scan_landing
from clv_pipeline.orchestration.ops_settings import OpsSettings
from clv_pipeline.orchestration.partitions import (
    DELIVERIES,
    RANGE_END,
    RANGE_START,
    order_after,
    partition_ranges,
    register_deliveries,
    registration_requests,
)
from clv_pipeline.settings import Settings

SENSOR_NAME = "delivery_arrival_sensor"
SCHEDULE_NAME = "nightly_schedule"
TRIGGER_TAG = "clv/trigger"  # what started a run: arrival sensor, nightly schedule, clv run, clv backfill


def raw_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(f"raw_{source}")


def selection_for(sources: Iterable[str], assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    """The raw assets of `sources` and everything downstream of them."""
    selection = dg.AssetSelection.assets(*[raw_key(s) for s in sources]).downstream()
    return sorted(selection.resolve(assets), key=lambda k: k.to_user_string())


def range_requests(
    keys: Iterable[str],
    order: Sequence[str],
    present: Iterable[str],
    asset_selection: list[dg.AssetKey],
    tags: dict[str, str],
    run_key_state: str | None = None,
) -> list[dg.RunRequest]:
    """Run requests covering the present deliveries from min(keys) to max(keys): one per range
    of consecutive keys in the instance's `order` (one, normally). With `run_key_state` (what the
    landing folder looked like), each request gets a run key that changes when the files do."""
    keys = sorted(keys)
    span = [k for k in present if keys[0] <= k <= keys[-1]]
    requests = []
    for first, last in partition_ranges(order, span):
        run_key = None
        if run_key_state is not None:
            run_key = f"range:{first}:{last}:{hashlib.sha256(run_key_state.encode()).hexdigest()[:12]}"
        requests.append(dg.RunRequest(run_key=run_key, asset_selection=asset_selection, tags={**tags, RANGE_START: first, RANGE_END: last}))
    return requests


def _state(fingerprints: dict[str, dict[str, str]], days: Iterable[str]) -> str:
    return ";".join(f"{day}:" + ",".join(f"{s}={fp}" for s, fp in sorted(fingerprints[day].items())) for day in sorted(days))


def arrival_run_requests(
    arrivals: Arrivals, scan: LandingScan, order: Sequence[str], ops: OpsSettings, assets: Sequence[dg.AssetsDefinition]
) -> list[dg.RunRequest]:
    """One run request per changed delivery, or catch-up range requests above the per-look limit."""
    fingerprints = scan.fingerprints()
    if len(arrivals.changed) > ops.sensor_max_runs_per_tick:
        sources = sorted({s for changed in arrivals.changed.values() for s in changed})
        tags = {TRIGGER_TAG: "arrival sensor (catch-up)", "clv/deliveries": str(len(arrivals.changed))}
        state = _state(fingerprints, arrivals.changed)
        return range_requests(arrivals.changed, order, fingerprints, selection_for(sources, assets), tags, run_key_state=state)
    requests = []
    for day, sources in sorted(arrivals.changed.items()):
        requests.append(
            dg.RunRequest(
                run_key=f"delivery:{day}:{hashlib.sha256(_state(fingerprints, [day]).encode()).hexdigest()[:12]}",
                partition_key=day,
                asset_selection=selection_for(sources, assets),
                tags={TRIGGER_TAG: "arrival sensor", "clv/delivery": day, "clv/sources": ",".join(sources)},
            )
        )
    return requests


def missing_landing(landing: Path) -> dg.SkipReason:
    """Why a tick did nothing when the landing folder is absent."""
    return dg.SkipReason(f"landing folder {landing} does not exist (CLV_LANDING)")


def build_arrival_sensor(
    settings: Settings, ops: OpsSettings, job: dg.UnresolvedAssetJobDefinition, assets: Sequence[dg.AssetsDefinition]
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=ops.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"New delivery folders or new files in {settings.landing_dir} -> one run per delivery "
        "(its raw partitions and everything downstream); registers the delivery partitions.",
    )
    def delivery_arrival_sensor(context: dg.SensorEvaluationContext):
        landing = settings.landing_dir
        if not landing.is_dir():
            return missing_landing(landing)
        scan = scan_landing(landing)
        arrivals = diff_arrivals(scan, decode_cursor(context.cursor), time.time(), ops.sensor_settle_seconds)
        existing = context.instance.get_dynamic_partitions(DELIVERIES.name)
        partition_requests = registration_requests(existing, scan.files)
        if any(isinstance(r, dg.DeleteDynamicPartitionsRequest) for r in partition_requests):
            # A delivery dated before the latest registered one: re-sort now. (Returned as a
            # delete + add pair, Dagster would validate this tick's run requests as if the
            # re-added keys were gone.)
            register_deliveries(context.instance, scan.files)
            existing, partition_requests = context.instance.get_dynamic_partitions(DELIVERIES.name), []
        if not arrivals.changed:
            waiting = f"; waiting for files still being written in {arrivals.waiting}" if arrivals.waiting else ""
            return dg.SensorResult(
                skip_reason=f"no new deliveries in {landing}{waiting}",
                cursor=arrivals.cursor(),
                dynamic_partitions_requests=partition_requests,
            )
        order = order_after(existing, partition_requests)
        return dg.SensorResult(
            run_requests=arrival_run_requests(arrivals, scan, order, ops, assets),
            cursor=arrivals.cursor(),
            dynamic_partitions_requests=partition_requests,
        )

    return delivery_arrival_sensor


def nightly_run_requests(scan: LandingScan, order: Sequence[str], assets: Sequence[dg.AssetsDefinition]) -> list[dg.RunRequest]:
    """The newest delivery partition of each source, and everything downstream: one run."""
    newest = {}
    for day, by_source in scan.files.items():
        for source in by_source:
            newest[source] = max(newest.get(source, day), day)
    if not newest:
        return []
    keys = sorted(set(newest.values()))
    selection = selection_for(sorted(newest), assets)
    tags = {TRIGGER_TAG: "nightly schedule", "clv/newest_deliveries": ",".join(f"{s}={d}" for s, d in sorted(newest.items()))}
    if len(keys) == 1:
        return [dg.RunRequest(partition_key=keys[0], asset_selection=selection, tags=tags)]
    # sources are at different dates: one run over the range between them (reloading a partition is idempotent)
    return range_requests(keys, order, scan.files, selection, tags)


def build_nightly_schedule(
    settings: Settings, ops: OpsSettings, job: dg.UnresolvedAssetJobDefinition, assets: Sequence[dg.AssetsDefinition]
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=SCHEDULE_NAME,
        cron_schedule=ops.nightly_cron,
        execution_timezone=ops.nightly_timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every day at {ops.nightly_time} {ops.nightly_timezone}: the newest delivery partition of each source "
        "and everything downstream (CLV_NIGHTLY_TIME, CLV_NIGHTLY_TIMEZONE).",
    )
    def nightly_schedule(context: dg.ScheduleEvaluationContext):
        landing = settings.landing_dir
        if not landing.is_dir():
            return missing_landing(landing)
        scan = scan_landing(landing)
        if not scan.files:
            return dg.SkipReason(f"no deliveries in {landing}")
        register_deliveries(context.instance, scan.files)  # schedules cannot return partition requests
        return nightly_run_requests(scan, context.instance.get_dynamic_partitions(DELIVERIES.name), assets)

    return nightly_schedule

