"""Operations settings: the nightly schedule, the arrival sensor, freshness, lock retries.

Read from CLV_* environment variables by the Dagster code location (README "Operations"); the
pipeline's data settings are `clv_pipeline.settings.Settings`. Pure Python.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from dataclasses import dataclass, field

from clv_pipeline.ingestion.sources import SOURCES

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class OpsSettings:
    # Nightly schedule: local time HH:MM in `nightly_timezone`.
    nightly_time: str = "02:00"
    nightly_timezone: str = "UTC"
    # Arrival sensor: how often it looks at the landing folder; how long a file must be left
    # untouched before its delivery counts as arrived (a file still being copied is not loaded);
    # above how many new deliveries in one look it requests one catch-up run instead of one run each.
    sensor_interval_seconds: int = 60
    sensor_settle_seconds: float = 30.0
    sensor_max_runs_per_tick: int = 7
    # Freshness: a source with no new file for this many hours gets a WARN check result.
    freshness_hours: float = 36.0
    freshness_hours_by_source: dict[str, float] = field(default_factory=dict)
    # A step that finds the build database locked (after waiting `lock_timeout_seconds` with
    # backoff) is retried this many times, `lock_retry_seconds` apart, before it fails.
    lock_timeout_seconds: float = 120.0
    lock_retries: int = 3
    lock_retry_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not _TIME.match(self.nightly_time):
            raise ValueError(f"nightly time must be HH:MM (24 h), got {self.nightly_time!r}")
        try:
            zoneinfo.ZoneInfo(self.nightly_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown nightly time zone {self.nightly_timezone!r}") from exc
        unknown = sorted(set(self.freshness_hours_by_source) - set(SOURCES))
        if unknown:
            raise ValueError(f"freshness hours for unknown sources {unknown}; known: {sorted(SOURCES)}")
        if self.sensor_interval_seconds < 1 or self.sensor_max_runs_per_tick < 1 or self.lock_retries < 0:
            raise ValueError("sensor interval and max runs per tick must be >= 1, lock retries >= 0")

    @property
    def nightly_cron(self) -> str:
        hour, minute = (int(p) for p in self.nightly_time.split(":"))
        return f"{minute} {hour} * * *"

    def freshness_hours_for(self, source: str) -> float:
        return self.freshness_hours_by_source.get(source, self.freshness_hours)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "OpsSettings":
        env = os.environ if environ is None else environ
        kwargs: dict = {}
        if env.get("CLV_NIGHTLY_TIME"):
            kwargs["nightly_time"] = env["CLV_NIGHTLY_TIME"]
        if env.get("CLV_NIGHTLY_TIMEZONE"):
            kwargs["nightly_timezone"] = env["CLV_NIGHTLY_TIMEZONE"]
        for name, var, kind in (
            ("sensor_interval_seconds", "CLV_SENSOR_INTERVAL_SECONDS", int),
            ("sensor_settle_seconds", "CLV_SENSOR_SETTLE_SECONDS", float),
            ("sensor_max_runs_per_tick", "CLV_SENSOR_MAX_RUNS_PER_TICK", int),
            ("lock_timeout_seconds", "CLV_LOCK_TIMEOUT_SECONDS", float),
            ("lock_retries", "CLV_LOCK_RETRIES", int),
            ("lock_retry_seconds", "CLV_LOCK_RETRY_SECONDS", float),
        ):
            if env.get(var):
                try:
                    kwargs[name] = kind(env[var])
                except ValueError as exc:
                    raise ValueError(f"{var} must be a number, got {env[var]!r}") from exc
        if env.get("CLV_FRESHNESS_HOURS"):
            kwargs["freshness_hours"], kwargs["freshness_hours_by_source"] = parse_freshness(env["CLV_FRESHNESS_HOURS"])
        return cls(**kwargs)


def parse_freshness(text: str) -> tuple[float, dict[str, float]]:
    """"36" or "36,ad_spend=60,fx_rates=72": a default and per-source hours."""
    default = OpsSettings.freshness_hours
    by_source: dict[str, float] = {}
    for item in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = item.partition("=")
        try:
            if sep:
                by_source[name.strip()] = float(value)
            else:
                default = float(name)
        except ValueError as exc:
            raise ValueError(f"CLV_FRESHNESS_HOURS must look like 36 or 36,ad_spend=60; got {text!r}") from exc
    return default, by_source
