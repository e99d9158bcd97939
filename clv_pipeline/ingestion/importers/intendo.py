"""Import the *intendo* "Super Jetroid" game tables (PRODUCT.md §7) into the landing layout.

Source files (in `src_dir`):

- `user_summary.csv` — one row per player: player_id, first_login, start_day, country (a name),
  acquisition (channel), device_name.
- `all_revenue.csv` — one row per revenue event: player_id, session_id, session_start, time,
  item_type (`iap`/`ad`), item_name, item_revenue (USD), …
- `all_sessions.csv` — one row per session: player_id, session_id, session_start, …

Mapping to the canonical sources (clv_pipeline/ingestion/sources.py):

- installs: user_id = player_id, install_time = first_login (UTC), app_id `super_jetroid`,
  media_source = acquisition lower-cased (empty → `organic`), campaign null, country = ISO-2 of
  the country name, platform from device_name (iPhone/iPad/iPod → ios, Samsung/Sony/other
  Android devices → android, else other).
- purchases: user_id, event_time = time, revenue = item_revenue exactly as written in the
  source, currency USD, product_id = item_name, revenue_type = item_type, app_id. No event_id
  column: the pipeline hashes one, so identical source rows stay exact duplicates.
- sessions: user_id, session_time = session_start, session_id, app_id.

Every source row is written (nothing is filtered or de-duplicated here). The delivery date of a
row is its event date + 1 day (the install date + 1 for installs), one CSV per source per
delivery folder. Timestamps are written as ISO-8601 UTC (`2015-01-01T01:45:33Z`; fractional
seconds are kept when they are not zero).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from clv_pipeline.ingestion.countries import to_iso2
from clv_pipeline.ingestion.importers.landing_writer import DELIVERY_DATE_COLUMN, write_csv_deliveries
from clv_pipeline.ingestion.sources import ORGANIC

INTENDO_APP_ID = "super_jetroid"
INTENDO_CURRENCY = "USD"
FILE_STEM = "intendo"

USER_SUMMARY_FILE = "user_summary.csv"
REVENUE_FILE = "all_revenue.csv"
SESSIONS_FILE = "all_sessions.csv"

_NAIVE_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$"

# Substrings of device names (case-insensitive) → platform.
IOS_DEVICE_MARKERS = ("iphone", "ipad", "ipod", "ios")
ANDROID_DEVICE_MARKERS = (
    "android", "samsung", "galaxy", "sony", "xperia", "experia", "pixel", "nexus", "huawei",
    "xiaomi", "redmi", "oneplus", "motorola", "moto ", "lg ", "htc", "oppo", "vivo", "nokia",
)


def _read_text_csv(path: Path, required: list[str]) -> pl.DataFrame:
    """Read a CSV with every column as text (so values round-trip exactly)."""
    if not path.is_file():
        raise FileNotFoundError(f"intendo import: missing file {path}")
    frame = pl.read_csv(path, infer_schema=False)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"intendo import: {path} lacks column(s) {missing}")
    return frame


def _utc_timestamp_text(frame: pl.DataFrame, column: str, path: Path) -> pl.Expr:
    """Check that `column` holds naive ISO timestamps and return an expression rewriting them as
    ISO-8601 UTC text (`…T01:45:33Z`, zero fractional seconds dropped)."""
    bad = frame.filter(~pl.col(column).str.contains(_NAIVE_TIMESTAMP_PATTERN).fill_null(False))
    if bad.height:
        raise ValueError(f"intendo import: {path}: column {column!r} has a value that is not an ISO timestamp: "
                         f"{bad[column][0]!r}")
    without_zero_fraction = pl.col(column).str.replace(r"\.0+$", "")
    trimmed_fraction = without_zero_fraction.str.replace(r"(\.\d*?[1-9])0+$", "$1")
    return trimmed_fraction + pl.lit("Z")


def _delivery_date(column: str) -> pl.Expr:
    """Delivery date = date part of an ISO timestamp + 1 day."""
    return pl.col(column).str.slice(0, 10).str.to_date("%Y-%m-%d") + pl.duration(days=1)


def platform_from_device(device_name: str | None) -> str:
    """iPhone/iPad/iPod → `ios`; Samsung, Sony and other Android devices → `android`; else `other`."""
    name = (device_name or "").casefold()
    if any(marker in name for marker in IOS_DEVICE_MARKERS):
        return "ios"
    if any(marker in name for marker in ANDROID_DEVICE_MARKERS):
        return "android"
    return "other"


def _country_codes(names: pl.Series, path: Path) -> dict[str, str]:
    """Map every distinct country name to ISO-2; fail naming the file and the first unknown value."""
    mapping: dict[str, str] = {}
    for name in names.unique().sort().to_list():
        code = to_iso2(name)
        if code is None:
            raise ValueError(f"intendo import: {path}: unknown country name {name!r} "
                             "(add it to clv_pipeline/ingestion/countries.py)")
        mapping[name] = code
    return mapping


def _installs(src_dir: Path) -> pl.DataFrame:
    path = src_dir / USER_SUMMARY_FILE
    players = _read_text_csv(path, ["player_id", "first_login", "country", "acquisition", "device_name"])
    countries = _country_codes(players["country"].fill_null(""), path)
    devices = players["device_name"].drop_nulls().unique().to_list()
    platforms = {device: platform_from_device(device) for device in devices}
    acquisition = pl.col("acquisition").str.strip_chars().str.to_lowercase()
    return players.select(
        pl.col("player_id").alias("user_id"),
        _utc_timestamp_text(players, "first_login", path).alias("install_time"),
        pl.lit(INTENDO_APP_ID).alias("app_id"),
        pl.col("device_name").replace_strict(platforms, default="other", return_dtype=pl.String).alias("platform"),
        pl.when(acquisition.is_null() | (acquisition == "")).then(pl.lit(ORGANIC)).otherwise(acquisition)
        .alias("media_source"),
        pl.lit(None, dtype=pl.String).alias("campaign"),
        pl.col("country").fill_null("").replace_strict(countries, return_dtype=pl.String).alias("country"),
        _delivery_date("first_login").alias(DELIVERY_DATE_COLUMN),
    )


def _purchases(src_dir: Path) -> pl.DataFrame:
    path = src_dir / REVENUE_FILE
    revenue = _read_text_csv(path, ["player_id", "time", "item_type", "item_name", "item_revenue"])
    return revenue.select(
        pl.col("player_id").alias("user_id"),
        _utc_timestamp_text(revenue, "time", path).alias("event_time"),
        pl.col("item_revenue").alias("revenue"),
        pl.lit(INTENDO_CURRENCY).alias("currency"),
        pl.col("item_name").alias("product_id"),
        pl.col("item_type").str.strip_chars().str.to_lowercase().alias("revenue_type"),
        pl.lit(INTENDO_APP_ID).alias("app_id"),
        _delivery_date("time").alias(DELIVERY_DATE_COLUMN),
    )


def _sessions(src_dir: Path) -> pl.DataFrame:
    path = src_dir / SESSIONS_FILE
    sessions = _read_text_csv(path, ["player_id", "session_id", "session_start"])
    return sessions.select(
        pl.col("player_id").alias("user_id"),
        _utc_timestamp_text(sessions, "session_start", path).alias("session_time"),
        pl.col("session_id"),
        pl.lit(INTENDO_APP_ID).alias("app_id"),
        _delivery_date("session_start").alias(DELIVERY_DATE_COLUMN),
    )


def import_intendo(src_dir: Path, landing_dir: Path) -> dict:
    """Convert the intendo tables in `src_dir` into installs, purchases and sessions drops.

    Writes `<landing_dir>/<source>/<delivery date>/intendo.csv` (existing files of that name are
    overwritten, so re-importing is idempotent) and returns
    `{"app_id", "rows": {source: data rows written}, "files": {source: files written},
    "first_delivery", "last_delivery"}`. The row counts equal the source files' data rows.
    Raises ValueError naming the file and the value when a country name is unknown or a
    timestamp is malformed, FileNotFoundError when a source file is missing.
    """
    src_dir = Path(src_dir)
    landing_dir = Path(landing_dir)
    frames = {
        "installs": _installs(src_dir),
        "purchases": _purchases(src_dir),
        "sessions": _sessions(src_dir),
    }
    rows: dict[str, int] = {}
    files: dict[str, int] = {}
    for source, frame in frames.items():
        files[source] = write_csv_deliveries(frame, landing_dir, source, FILE_STEM)
        rows[source] = frame.height
    deliveries = pl.concat([f.select(DELIVERY_DATE_COLUMN) for f in frames.values()])[DELIVERY_DATE_COLUMN]
    return {
        "app_id": INTENDO_APP_ID,
        "rows": rows,
        "files": files,
        "first_delivery": deliveries.min().isoformat(),
        "last_delivery": deliveries.max().isoformat(),
    }
