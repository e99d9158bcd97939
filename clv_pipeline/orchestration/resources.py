"""Dagster resources: the warehouse connection and the run settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from clv_pipeline.settings import Settings
from clv_pipeline.storage.warehouse import Warehouse

_DEFAULTS = Settings()


class WarehouseResource(DuckDBResource):
    """The build database (`data/warehouse.duckdb` by default). Opening it waits, with a warning
    that names the file and the holder, while another process holds DuckDB's write lock, and fails
    with a clear message after `lock_timeout_seconds` (storage.warehouse.connect)."""

    lock_timeout_seconds: float = 120.0

    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        with Warehouse.open(
            self.database, lock_timeout_seconds=self.lock_timeout_seconds, on_wait=dg.get_dagster_logger().warning
        ) as wh:
            yield wh


class ClvSettingsResource(dg.ConfigurableResource):
    """Run settings (see clv_pipeline.settings.Settings for meanings and defaults)."""

    landing_dir: str = str(_DEFAULTS.landing_dir)
    serving_dir: str = str(_DEFAULTS.serving_dir)
    observation_end: str | None = None
    time_unit: str = _DEFAULTS.time_unit
    reporting_timezone: str = _DEFAULTS.reporting_timezone
    day_index_mode: str = _DEFAULTS.day_index_mode
    day_list: list[int] = list(_DEFAULTS.day_list)
    store_fees: dict[str, float] = dict(_DEFAULTS.store_fees)
    horizon_days: int = _DEFAULTS.horizon_days
    annual_discount_rate: float = _DEFAULTS.annual_discount_rate
    margin: float = _DEFAULTS.margin
    target_roas: float = _DEFAULTS.target_roas

    @classmethod
    def from_settings(cls, settings: Settings) -> "ClvSettingsResource":
        return cls(
            landing_dir=str(settings.landing_dir),
            serving_dir=str(settings.serving_dir),
            observation_end=settings.observation_end.isoformat() if settings.observation_end else None,
            time_unit=settings.time_unit,
            reporting_timezone=settings.reporting_timezone,
            day_index_mode=settings.day_index_mode,
            day_list=list(settings.day_list),
            store_fees=dict(settings.store_fees),
            horizon_days=settings.horizon_days,
            annual_discount_rate=settings.annual_discount_rate,
            margin=settings.margin,
            target_roas=settings.target_roas,
        )

    def get(self) -> Settings:
        return Settings(
            landing_dir=Path(self.landing_dir),
            serving_dir=Path(self.serving_dir),
            observation_end=date.fromisoformat(self.observation_end) if self.observation_end else None,
            time_unit=self.time_unit,  # type: ignore[arg-type]
            reporting_timezone=self.reporting_timezone,
            day_index_mode=self.day_index_mode,  # type: ignore[arg-type]
            day_list=tuple(self.day_list),
            store_fees=dict(self.store_fees),
            horizon_days=self.horizon_days,
            annual_discount_rate=self.annual_discount_rate,
            margin=self.margin,
            target_roas=self.target_roas,
        )
