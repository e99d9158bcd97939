"""Run settings: every knob of the pipeline in one frozen dataclass, with the defaults of PRODUCT.md.

Pure Python (no Dagster, no DuckDB). The CLI builds it from flags, the Dagster resource
`ClvSettingsResource` from run config / environment variables; the core functions take the
individual values they need, never this object.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

TimeUnit = Literal["days", "weeks"]
DayIndexMode = Literal["calendar", "24h"]

DEFAULT_DAY_LIST: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 14, 30, 60, 90, 180, 365)
# channel_roi columns revenue_net_d{N} / roas_d{N} (PRODUCT.md §6)
ROI_DAYS: tuple[int, ...] = (0, 1, 3, 7, 14, 30, 60, 90, 180, 365)
DEFAULT_STORE_FEES: dict[str, float] = {"iap": 0.30, "subscription": 0.30, "ad": 0.0}


@dataclass(frozen=True)
class Settings:
    landing_dir: Path = Path("data/landing")
    warehouse_path: Path = Path("data/warehouse.duckdb")
    serving_dir: Path = Path("data/serving")
    # Last date of data the run uses; later events are ignored by every metric and model.
    # None = the latest event date found in installs, purchases and sessions.
    observation_end: date | None = None
    time_unit: TimeUnit = "days"
    reporting_timezone: str = "UTC"
    day_index_mode: DayIndexMode = "calendar"
    day_list: tuple[int, ...] = DEFAULT_DAY_LIST
    store_fees: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STORE_FEES))
    horizon_days: int = 365
    annual_discount_rate: float = 0.10
    margin: float = 1.0
    target_roas: float = 1.0
    whale_share: float = 0.01
    dolphin_share: float = 0.09
    # A purchase more than this many hours before its user's install is quarantined.
    purchase_before_install_tolerance_hours: float = 24.0
    # Timestamp formats a source's files declare (e.g. {"purchases": ("%m/%d/%Y %H:%M",)}); without
    # a declaration only ISO 8601 is accepted and day/month order is never guessed.
    timestamp_formats: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Events before this date are quarantined (before the app existed).
    earliest_event_date: date = date(1990, 1, 1)

    def __post_init__(self) -> None:
        if self.time_unit not in ("days", "weeks"):
            raise ValueError(f"time_unit must be 'days' or 'weeks', got {self.time_unit!r}")
        if self.day_index_mode not in ("calendar", "24h"):
            raise ValueError(f"day_index_mode must be 'calendar' or '24h', got {self.day_index_mode!r}")
        if not self.day_list or any(d < 0 for d in self.day_list):
            raise ValueError(f"day_list must be non-empty non-negative day indexes, got {self.day_list!r}")
        object.__setattr__(self, "day_list", tuple(sorted(set(int(d) for d in self.day_list))))
        if self.horizon_days <= 0:
            raise ValueError(f"horizon_days must be positive, got {self.horizon_days}")
        if not 0 <= self.annual_discount_rate < 1:
            raise ValueError(f"annual_discount_rate must be in [0, 1), got {self.annual_discount_rate}")
        if self.target_roas <= 0:
            raise ValueError(f"target_roas must be positive, got {self.target_roas}")
        if not 0 < self.whale_share < 1 or not 0 <= self.dolphin_share < 1 or self.whale_share + self.dolphin_share >= 1:
            raise ValueError("whale_share and dolphin_share must be shares of payers that sum below 1")
        fees = {**DEFAULT_STORE_FEES, **self.store_fees}
        unknown = sorted(set(fees) - set(DEFAULT_STORE_FEES))
        if unknown:
            raise ValueError(f"store fees for unknown revenue types {unknown}; known: {sorted(DEFAULT_STORE_FEES)}")
        object.__setattr__(self, "store_fees", fees)
        for revenue_type, fee in fees.items():
            if not 0 <= fee < 1:
                raise ValueError(f"store fee for {revenue_type!r} must be in [0, 1), got {fee}")
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.reporting_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown reporting_timezone {self.reporting_timezone!r}") from exc

    @property
    def data_docs_dir(self) -> Path:
        return self.serving_dir / "data_docs"

    def read_options(self, source: str):
        from clv_pipeline.ingestion.normalise import ReadOptions

        return ReadOptions(tuple(self.timestamp_formats.get(source, ())), self.earliest_event_date)

    @property
    def parquet_dir(self) -> Path:
        return self.serving_dir / "parquet"

    @property
    def serving_db_path(self) -> Path:
        return self.serving_dir / "clv.duckdb"

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Settings from CLV_* environment variables (used by `dagster dev`); unset = default."""
        env = os.environ if environ is None else environ
        kwargs: dict = {}
        if "CLV_LANDING" in env:
            kwargs["landing_dir"] = Path(env["CLV_LANDING"])
        if "CLV_WAREHOUSE" in env:
            kwargs["warehouse_path"] = Path(env["CLV_WAREHOUSE"])
        if "CLV_SERVING" in env:
            kwargs["serving_dir"] = Path(env["CLV_SERVING"])
        if env.get("CLV_OBSERVATION_END"):
            kwargs["observation_end"] = date.fromisoformat(env["CLV_OBSERVATION_END"])
        if "CLV_TIME_UNIT" in env:
            kwargs["time_unit"] = env["CLV_TIME_UNIT"]
        if "CLV_TIMEZONE" in env:
            kwargs["reporting_timezone"] = env["CLV_TIMEZONE"]
        if "CLV_DAY_INDEX_MODE" in env:
            kwargs["day_index_mode"] = env["CLV_DAY_INDEX_MODE"]
        if env.get("CLV_STORE_FEES"):
            kwargs["store_fees"] = parse_store_fees(env["CLV_STORE_FEES"].split(","))
        if env.get("CLV_TIMESTAMP_FORMATS"):
            kwargs["timestamp_formats"] = parse_timestamp_formats(env["CLV_TIMESTAMP_FORMATS"].split(";"))
        if env.get("CLV_EARLIEST_EVENT_DATE"):
            kwargs["earliest_event_date"] = date.fromisoformat(env["CLV_EARLIEST_EVENT_DATE"])
        return cls(**kwargs)


def parse_timestamp_formats(items: list[str]) -> dict[str, tuple[str, ...]]:
    """["purchases=%m/%d/%Y %H:%M"] -> {"purchases": ("%m/%d/%Y %H:%M",)}."""
    from clv_pipeline.ingestion.sources import SOURCES

    formats: dict[str, list[str]] = {}
    for item in items:
        source, sep, fmt = item.partition("=")
        source = source.strip()
        if not sep or not fmt or source not in SOURCES:
            raise ValueError(f"timestamp format must look like SOURCE=FORMAT with SOURCE one of {list(SOURCES)}, got {item!r}")
        formats.setdefault(source, []).append(fmt)
    return {k: tuple(v) for k, v in formats.items()}


def parse_store_fees(items: list[str]) -> dict[str, float]:
    """["iap=0", "subscription=0.15"] -> {"iap": 0.0, "subscription": 0.15}."""
    fees: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            fees[name.strip()] = float(value)
        except ValueError as exc:
            raise ValueError(f"store fee must look like TYPE=RATE (e.g. iap=0.15), got {item!r}") from exc
    return fees
