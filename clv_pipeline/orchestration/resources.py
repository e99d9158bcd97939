"""Dagster resources: the warehouse connection and the run settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from clv_pipeline.settings import Settings
from clv_pipeline.storage.warehouse import Warehouse, WarehouseLockedError

_DEFAULTS = Settings()


class WarehouseResource(DuckDBResource):
    """The build database (`data/warehouse.duckdb` by default). Opening it waits, with a warning
    that names the file and the holder, while another process holds DuckDB's write lock, retrying
    with backoff for `lock_timeout_seconds` (storage.warehouse.connect). If the lock is still held,
    the step asks Dagster to retry it `lock_retries` times, `lock_retry_seconds` apart; after that
    it fails with the message that names the file and the holder."""

    lock_timeout_seconds: float = 120.0
    lock_retries: int = 3
    lock_retry_seconds: float = 30.0

    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        log = dg.get_dagster_logger()
        with ExitStack() as stack:
            try:
                wh = stack.enter_context(
                    Warehouse.open(self.database, lock_timeout_seconds=self.lock_timeout_seconds, on_wait=log.warning)
                )
            except WarehouseLockedError as exc:
                if self.lock_retries <= 0:
                    raise
                log.warning(f"{exc} The step is retried in {self.lock_retry_seconds:g} s (at most {self.lock_retries} times).")
                raise dg.RetryRequested(max_retries=self.lock_retries, seconds_to_wait=self.lock_retry_seconds) from exc
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
    timestamp_formats: dict[str, list[str]] = {}
    earliest_event_date: str = _DEFAULTS.earliest_event_date.isoformat()
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
            timestamp_formats={k: list(v) for k, v in settings.timestamp_formats.items()},
            earliest_event_date=settings.earliest_event_date.isoformat(),
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
            timestamp_formats={k: tuple(v) for k, v in self.timestamp_formats.items()},
            earliest_event_date=date.fromisoformat(self.earliest_event_date),
            horizon_days=self.horizon_days,
            annual_discount_rate=self.annual_discount_rate,
            margin=self.margin,
            target_roas=self.target_roas,
        )
