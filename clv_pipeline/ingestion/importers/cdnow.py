"""Import the CDNOW purchase data (PRODUCT.md §7) into the landing layout.

Accepted files (whitespace-separated, an optional header line, CRLF or LF line ends):

- `CDNOW_master.txt` — 4 columns: customer id, yyyymmdd, number of CDs, dollar value;
- `CDNOW_sample.txt` — 5 columns: master customer id, sample id, yyyymmdd, number of CDs,
  dollar value.

The layout is detected from the column count. Mapping:

- purchases: one per line; event_id `cdnow-<line number in the file>` (stable), user_id = the
  master customer id as written (leading zeros kept), event_time = the date at 00:00:00Z,
  revenue = the dollar value as written, currency USD, product_id `cd`, revenue_type `iap`,
  app_id `cdnow`;
- installs: one per customer at the date of their first purchase (00:00:00Z), app_id `cdnow`,
  media_source `organic`, platform `web`, country `US` (the literature's convention: the
  "install" of a CDNOW customer is the first purchase).

Delivery date = event date + 1 day; one CSV per source per delivery folder.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from clv_pipeline.ingestion.importers.landing_writer import DELIVERY_DATE_COLUMN, write_csv_deliveries
from clv_pipeline.ingestion.sources import ORGANIC

CDNOW_APP_ID = "cdnow"
CDNOW_PLATFORM = "web"
CDNOW_COUNTRY = "US"
CDNOW_PRODUCT_ID = "cd"
CDNOW_CURRENCY = "USD"
FILE_STEM = "cdnow"

MASTER_COLUMNS = ("customer_id", "yyyymmdd", "cds", "dollars")
SAMPLE_COLUMNS = ("customer_id", "sample_id", "yyyymmdd", "cds", "dollars")

_DATE_PATTERN = re.compile(r"^\d{8}$")
_NUMBER_PATTERN = re.compile(r"^-?\d+(\.\d+)?$")


def _parse_lines(path: Path) -> tuple[pl.DataFrame, str]:
    """Parse the file into text columns line_number, customer_id, yyyymmdd, dollars, and name its
    layout (`master` or `sample`).

    A first line whose fields are not numeric is a header and is skipped; blank lines are
    skipped. Every data line must have the same number of fields (4 or 5).
    """
    if not path.is_file():
        raise FileNotFoundError(f"cdnow import: missing file {path}")
    text = path.read_text(encoding="utf-8")
    line_numbers: list[int] = []
    records: list[list[str]] = []
    layout: tuple[str, ...] | None = None
    seen_first_line = False
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if not seen_first_line:
            seen_first_line = True
            if not _NUMBER_PATTERN.match(fields[0]):
                continue  # a header line
        if not _NUMBER_PATTERN.match(fields[0]):
            raise ValueError(
                f"cdnow import: {path}:{line_number}: not a CDNOW file (expected whitespace-separated "
                f"customer id, yyyymmdd, CDs, dollars), got {line[:80]!r}"
            )
        if layout is None:
            if len(fields) == len(MASTER_COLUMNS):
                layout = MASTER_COLUMNS
            elif len(fields) == len(SAMPLE_COLUMNS):
                layout = SAMPLE_COLUMNS
            else:
                raise ValueError(f"cdnow import: {path}:{line_number}: expected 4 (master) or 5 (sample) "
                                 f"columns, got {len(fields)}: {line!r}")
        if len(fields) != len(layout):
            raise ValueError(f"cdnow import: {path}:{line_number}: expected {len(layout)} columns like the "
                             f"first data line, got {len(fields)}: {line!r}")
        record = dict(zip(layout, fields))
        if not _DATE_PATTERN.match(record["yyyymmdd"]):
            raise ValueError(f"cdnow import: {path}:{line_number}: bad date {record['yyyymmdd']!r}")
        if not _NUMBER_PATTERN.match(record["dollars"]):
            raise ValueError(f"cdnow import: {path}:{line_number}: bad dollar value {record['dollars']!r}")
        line_numbers.append(line_number)
        records.append([record["customer_id"], record["yyyymmdd"], record["dollars"]])
    if not records:
        raise ValueError(f"cdnow import: {path} has no data lines")
    customer_ids, days, dollars = (list(column) for column in zip(*records))
    frame = pl.DataFrame(
        {"line_number": line_numbers, "customer_id": customer_ids, "yyyymmdd": days, "dollars": dollars},
        schema={"line_number": pl.Int64, "customer_id": pl.String, "yyyymmdd": pl.String, "dollars": pl.String},
    )
    return frame, ("sample" if layout == SAMPLE_COLUMNS else "master")


def import_cdnow(file: Path, landing_dir: Path) -> dict:
    """Convert a CDNOW master or sample file into installs and purchases drops.

    Writes `<landing_dir>/<source>/<delivery date>/cdnow.csv` (re-importing overwrites them) and
    returns `{"app_id", "layout" ("master"/"sample"), "rows": {"installs": customers,
    "purchases": lines}, "files": {source: files written}, "first_delivery", "last_delivery"}`.
    """
    file = Path(file)
    landing_dir = Path(landing_dir)
    lines, layout = _parse_lines(file)
    event_date = pl.col("yyyymmdd").str.to_date("%Y%m%d", strict=False)
    lines = lines.with_columns(event_date.alias("event_date"))
    bad_date = lines.filter(pl.col("event_date").is_null())
    if bad_date.height:
        row = bad_date.row(0, named=True)
        raise ValueError(f"cdnow import: {file}:{row['line_number']}: invalid date {row['yyyymmdd']!r}")
    midnight_utc = pl.col("event_date").dt.strftime("%Y-%m-%dT00:00:00Z")
    purchases = lines.select(
        (pl.lit("cdnow-") + pl.col("line_number").cast(pl.String)).alias("event_id"),
        pl.col("customer_id").alias("user_id"),
        midnight_utc.alias("event_time"),
        pl.col("dollars").alias("revenue"),
        pl.lit(CDNOW_CURRENCY).alias("currency"),
        pl.lit(CDNOW_PRODUCT_ID).alias("product_id"),
        pl.lit("iap").alias("revenue_type"),
        pl.lit(CDNOW_APP_ID).alias("app_id"),
        (pl.col("event_date") + pl.duration(days=1)).alias(DELIVERY_DATE_COLUMN),
    )
    installs = (
        lines.group_by("customer_id", maintain_order=True)
        .agg(pl.col("event_date").min())
        .sort("customer_id")
        .select(
            pl.col("customer_id").alias("user_id"),
            midnight_utc.alias("install_time"),
            pl.lit(CDNOW_APP_ID).alias("app_id"),
            pl.lit(CDNOW_PLATFORM).alias("platform"),
            pl.lit(ORGANIC).alias("media_source"),
            pl.lit(None, dtype=pl.String).alias("campaign"),
            pl.lit(CDNOW_COUNTRY).alias("country"),
            (pl.col("event_date") + pl.duration(days=1)).alias(DELIVERY_DATE_COLUMN),
        )
    )
    files = {
        "installs": write_csv_deliveries(installs, landing_dir, "installs", FILE_STEM),
        "purchases": write_csv_deliveries(purchases, landing_dir, "purchases", FILE_STEM),
    }
    first_delivery: date = lines["event_date"].min() + timedelta(days=1)
    last_delivery: date = lines["event_date"].max() + timedelta(days=1)
    return {
        "app_id": CDNOW_APP_ID,
        "layout": layout,
        "rows": {"installs": installs.height, "purchases": purchases.height},
        "files": files,
        "first_delivery": first_delivery.isoformat(),
        "last_delivery": last_delivery.isoformat(),
    }
