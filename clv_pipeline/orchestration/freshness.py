"""Freshness per source: a WARN check when a source has had no new file for N hours.

The age is measured from the latest file arrival (modification or status-change time) in the
source's landing folders, not from the delivery date in the folder name: a replayed or imported
history is fresh when it lands, and a stalled feed shows however old its dates are. A source that
was never delivered (a data set without ad spend, say) passes: nothing can be late yet. Evaluated in every run that loads
the source — the nightly schedule runs every night, so a feed that stops shows within a day.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg

from clv_pipeline.ingestion.sources import SOURCES
from clv_pipeline.orchestration.arrivals import LandingScan, scan_landing
from clv_pipeline.orchestration.ops_settings import OpsSettings
from clv_pipeline.orchestration.resources import ClvSettingsResource

CHECK_NAME = "delivery_freshness"


@dataclass(frozen=True)
class Freshness:
    source: str
    fresh: bool
    max_hours: float
    latest_delivery: str | None
    latest_arrival: float | None
    age_hours: float | None
    message: str


def source_freshness(scan: LandingScan, source: str, max_hours: float, now: float) -> Freshness:
    latest_delivery, latest_arrival = scan.newest_arrival(source)
    if latest_arrival is None:
        # Nothing can be late before the first delivery (e.g. a data set without ad spend).
        return Freshness(source, True, max_hours, None, None, None, f"no {source} delivery in the landing folder yet")
    age = max(now - latest_arrival, 0.0) / 3600
    when = datetime.fromtimestamp(latest_arrival, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if age <= max_hours:
        message = f"latest {source} file arrived {age:.1f} h ago ({when}, delivery {latest_delivery}); limit {max_hours:g} h"
    else:
        message = f"no new {source} delivery for {age:.1f} h (limit {max_hours:g} h): latest file arrived {when}, delivery {latest_delivery}"
    return Freshness(source, age <= max_hours, max_hours, latest_delivery, latest_arrival, age, message)


def _freshness_check(source: str, max_hours: float) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(f"raw_{source}"),
        name=CHECK_NAME,
        blocking=False,
        description=f"a new {source} file arrived in the last {max_hours:g} h (CLV_FRESHNESS_HOURS); WARN otherwise",
    )
    def freshness_check(clv_settings: ClvSettingsResource) -> dg.AssetCheckResult:
        result = source_freshness(scan_landing(clv_settings.get().landing_dir), source, max_hours, time.time())
        arrival = datetime.fromtimestamp(result.latest_arrival, tz=timezone.utc).isoformat() if result.latest_arrival else ""
        return dg.AssetCheckResult(
            passed=result.fresh,
            severity=dg.AssetCheckSeverity.WARN,
            description=result.message,
            metadata={
                "latest_delivery": result.latest_delivery or "",
                "latest_arrival_utc": arrival,
                "age_hours": round(result.age_hours, 2) if result.age_hours is not None else -1.0,
                "max_hours": result.max_hours,
            },
        )

    return freshness_check


def build_freshness_checks(ops: OpsSettings) -> list[dg.AssetChecksDefinition]:
    """One non-blocking WARN check per raw asset."""
    return [_freshness_check(source, ops.freshness_hours_for(source)) for source in SOURCES]
