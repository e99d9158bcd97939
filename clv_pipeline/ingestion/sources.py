"""The input contract of PRODUCT.md §2 in one place: sources, canonical columns, types and keys.

Everything that needs to know what a source looks like (the file reader, the normaliser, the
expectation suites, staging, the sample generator and the importers) reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["string", "timestamp", "date", "decimal", "integer", "bool", "float"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Source:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    optional_source: bool = False
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


INSTALLS = Source(
    name="installs",
    description="one row per install",
    columns=(
        Column("user_id", "string", True, "MMP device/user id"),
        Column("install_time", "timestamp", True, "install time, UTC unless an offset is given"),
        Column("app_id", "string", False, "app identifier, default 'default'"),
        Column("platform", "string", False, "ios / android / other"),
        Column("media_source", "string", False, "attributed network; empty means organic"),
        Column("campaign", "string", False, "campaign name, null when withheld"),
        Column("country", "string", False, "ISO-3166 alpha-2"),
        Column("is_reinstall", "bool", False, "a reinstall is not a new install"),
        Column("cost", "decimal", False, "per-install cost from the MMP"),
        Column("cost_currency", "string", False, "ISO-4217 currency of cost"),
    ),
    key=("app_id", "user_id"),
)

PURCHASES = Source(
    name="purchases",
    description="one row per revenue event (IAP, subscription renewal, ad revenue, refund)",
    columns=(
        Column("event_id", "string", False, "event id; a stable hash when absent"),
        Column("user_id", "string", True, "MMP device/user id"),
        Column("event_time", "timestamp", True, "event time, UTC unless an offset is given"),
        Column("revenue", "decimal", True, "amount in `currency`; negative = refund"),
        Column("currency", "string", True, "ISO-4217"),
        Column("product_id", "string", False, "SKU or item name"),
        Column("revenue_type", "string", False, "iap (default), subscription, ad"),
        Column("app_id", "string", False, "app identifier"),
    ),
    key=("event_id",),
)

AD_SPEND = Source(
    name="ad_spend",
    description="one row per (date, app_id, media_source, campaign, country, platform)",
    columns=(
        Column("date", "date", True, "spend day in the reporting time zone"),
        Column("media_source", "string", True, "network"),
        Column("campaign", "string", False, "campaign; null means all"),
        Column("country", "string", False, "ISO-2; null means all"),
        Column("platform", "string", False, "null means all"),
        Column("app_id", "string", False, "null means all"),
        Column("spend", "decimal", True, "spend in `currency`, >= 0"),
        Column("currency", "string", True, "ISO-4217"),
        Column("impressions", "integer", False, ""),
        Column("clicks", "integer", False, ""),
        Column("installs", "integer", False, "installs reported by the network"),
    ),
    key=("date", "app_id", "media_source", "campaign", "country", "platform"),
)

SESSIONS = Source(
    name="sessions",
    optional_source=True,
    description="one row per session",
    columns=(
        Column("user_id", "string", True, "MMP device/user id"),
        Column("session_time", "timestamp", True, "session start"),
        Column("session_id", "string", False, "session id"),
        Column("app_id", "string", False, "app identifier"),
    ),
    key=("app_id", "user_id", "session_time", "session_id"),
)

FX_RATES = Source(
    name="fx_rates",
    optional_source=True,
    description="daily exchange rates to USD",
    columns=(
        Column("date", "date", True, "rate date"),
        Column("currency", "string", True, "ISO-4217"),
        Column("usd_per_unit", "float", True, "one unit of `currency` in USD"),
    ),
    key=("date", "currency"),
)

SOURCES: dict[str, Source] = {s.name: s for s in (INSTALLS, PURCHASES, AD_SPEND, SESSIONS, FX_RATES)}
SOURCE_NAMES: tuple[str, ...] = tuple(SOURCES)

# File name endings the landing reader understands (PRODUCT.md §2).
FILE_FORMATS: tuple[str, ...] = (".csv", ".csv.gz", ".parquet", ".jsonl", ".jsonl.gz")

DEFAULT_APP_ID = "default"
ORGANIC = "organic"
REVENUE_TYPES: tuple[str, ...] = ("iap", "subscription", "ad")
PURCHASE_REVENUE_TYPES: tuple[str, ...] = ("iap", "subscription")
