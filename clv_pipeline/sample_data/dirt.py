"""A deliberately dirty copy of a landing folder: every clean row kept, plus the faults real exports
carry, each counted so tests can check that the pipeline sets exactly those rows aside.

`add_dirt(landing)` writes, into a share of the delivery folders of every source, one extra file
(`zz_dirty_<n>.csv`, in a randomly chosen dialect: BOM, Windows line endings, `;` delimiter)
holding:

- exact copies of real rows of that delivery, and copies whose channel / country / platform are
  spelled differently (`Facebook_Ads`, `United States`, ` iOS `) — after normalisation they are
  duplicates of the real rows, so nothing changes downstream;
- broken rows with fresh ids, one per kind of fault of the source: missing user id, the literal
  `null`, an id a spreadsheet turned into `1.23E+11`, Excel's `########` or a `M/D/YYYY` date, a
  year far in the future or before the app existed, an unknown country, a non-numeric or
  decimal-comma amount, a non-ISO or unknown currency, an unknown revenue type, a purchase days
  before its user's install, negative spend, an FX rate of 0;
- a blank line and, at the end, a truncated line.

None of the faults touches a key that a clean row has, so a correct pipeline publishes exactly the
marts of the clean data. The counts of what was injected, by source and reason code, go to
`<landing>/dirt.json` and are returned. Deterministic for a seed.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from clv_pipeline.ingestion.countries import ISO2_TO_COUNTRY_NAME
from clv_pipeline.ingestion.landing import delivery_folders, is_landing_file
from clv_pipeline.ingestion.sources import SOURCES

DIRT_FILE = "dirt.json"
DIALECTS = ({"delimiter": ",", "newline": "\n", "bom": False}, {"delimiter": ";", "newline": "\r\n", "bom": True}, {"delimiter": ",", "newline": "\r\n", "bom": False})

# (reason code, column to break, broken value) per source; rows get fresh ids first.
FAULTS: dict[str, list[tuple[str, str, str]]] = {
    "installs": [
        ("missing_user_id", "user_id", ""),
        ("id_in_scientific_notation", "user_id", "1.23E+11"),
        ("invalid_install_time", "install_time", "########"),
        ("invalid_install_time", "install_time", "1/2/2024 10:00"),
        ("timestamp_in_future", "install_time", "2051-01-01T00:00:00Z"),
        ("timestamp_too_early", "install_time", "1915-06-01T00:00:00Z"),
        ("invalid_country", "country", "Atlantis"),
    ],
    "purchases": [
        ("missing_user_id", "user_id", "null"),
        ("invalid_event_time", "event_time", "########"),
        ("timestamp_in_future", "event_time", "2051-01-01T00:00:00Z"),
        ("invalid_revenue", "revenue", "12,50"),
        ("invalid_currency", "currency", "EURO"),
        ("no_fx_rate", "currency", "XTS"),
        ("invalid_revenue_type", "revenue_type", "bonus"),
        ("purchase_before_install", "event_time", "<install-5d>"),
    ],
    "sessions": [
        ("missing_user_id", "user_id", ""),
        ("invalid_session_time", "session_time", "31/12/2024 10:00"),
        ("timestamp_too_early", "session_time", "1915-06-01T00:00:00Z"),
    ],
    "ad_spend": [
        ("negative_spend", "spend", "-12.5"),
        ("missing_media_source", "media_source", ""),
        ("invalid_currency", "currency", "DOLLARS"),
        ("invalid_date", "date", "2024-13-45"),
    ],
    "fx_rates": [
        ("invalid_usd_per_unit", "usd_per_unit", "0"),
    ],
}


def _read_text_rows(folder: Path) -> pl.DataFrame | None:
    """The rows of a delivery folder's files as text columns (None if there are none)."""
    frames = []
    for path in sorted(p for p in folder.iterdir() if is_landing_file(p)):
        name = path.name.lower()
        if name.endswith(".parquet"):
            frame = pl.read_parquet(path)
            frame = frame.with_columns(
                [
                    pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ") if isinstance(t, pl.Datetime) else pl.col(c).cast(pl.String)
                    for c, t in frame.schema.items()
                ]
            )
        elif name.endswith((".jsonl", ".jsonl.gz")):
            frame = pl.read_ndjson(path).select(pl.all().cast(pl.String))
        else:
            frame = pl.read_csv(path, infer_schema=False)
        frames.append(frame)
    if not frames:
        return None
    return pl.concat(frames, how="diagonal_relaxed")


def _install_times(landing: Path) -> dict[str, datetime]:
    times: dict[str, datetime] = {}
    for folder in delivery_folders(landing, "installs").values():
        rows = _read_text_rows(folder)
        if rows is None:
            continue
        for user, text in zip(rows["user_id"].to_list(), rows["install_time"].to_list()):
            if user and text and user not in times:
                try:
                    times[user] = datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
                except ValueError:
                    continue
    return times


def _variant(source: str, row: dict) -> dict:
    """The same row, spelled differently (normalisation makes it identical again)."""
    out = dict(row)
    if out.get("media_source"):
        out["media_source"] = out["media_source"].upper()
    if out.get("country") and out["country"] in ISO2_TO_COUNTRY_NAME:
        out["country"] = ISO2_TO_COUNTRY_NAME[out["country"]]
    if out.get("platform"):
        out["platform"] = f" {out['platform'].upper()} "
    if out.get("currency"):
        out["currency"] = out["currency"].lower()
    return out


def _fresh_ids(source: str, row: dict, n: int) -> dict:
    out = dict(row)
    if source == "installs":
        out["user_id"] = f"dirty_user_{n}"
    if source == "purchases":
        out["event_id"] = f"dirty_event_{n}"
        out["product_id"] = f"dirty_product_{n}"  # without an event_id column the hashed id changes too
    if source == "sessions" and "session_id" in out:
        out["session_id"] = f"dirty_session_{n}"
    if source == "ad_spend":
        # a key of its own: the campaign, or the media source when the files have no campaign
        # column (a second row with an existing key would be a conflicting duplicate instead)
        out["campaign" if "campaign" in row else "media_source"] = f"dirty_{n}"
    if source == "fx_rates":
        out["currency"] = "XTS"  # the ISO-4217 code reserved for testing: no clean row has it
    return out


def _csv_line(values: list[str | None], delimiter: str) -> str:
    def quote(value: str | None) -> str:
        text = "" if value is None else str(value)
        return f'"{text}"' if delimiter in text or '"' in text else text

    return delimiter.join(quote(v) for v in values)


def add_dirt(landing: Path, *, seed: int = 11, folder_share: float = 0.3, copies: int = 2) -> dict:
    """Add dirty files to `landing` in place (see the module docstring); returns the counts."""
    landing = Path(landing)
    rng = np.random.default_rng(seed)
    installs = _install_times(landing)
    injected: dict[str, Counter] = defaultdict(Counter)
    serial = 0
    for source in SOURCES:
        for key, folder in sorted(delivery_folders(landing, source).items()):
            rows = _read_text_rows(folder)
            if rows is None or rows.height == 0 or rng.random() > folder_share:
                continue
            columns = rows.columns
            picks = rng.choice(rows.height, size=min(copies, rows.height), replace=False)
            real = [rows.row(int(i), named=True) for i in picks]
            lines: list[dict] = []
            for row in real:
                lines.append(row)
                lines.append(_variant(source, row))
                injected[source]["duplicates"] += 2
            for reason, column, value in FAULTS[source]:
                base = real[0]
                if column not in columns:
                    continue
                serial += 1
                broken = _fresh_ids(source, base, serial)
                if value == "<install-5d>":
                    user = next((r["user_id"] for r in real if r.get("user_id") in installs), None)
                    if user is None:
                        continue
                    broken["user_id"] = user
                    broken["currency"] = "USD"  # always convertible: the only fault is the time
                    value = (installs[user] - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
                broken[column] = value
                lines.append(broken)
                injected[source][reason] += 1
            dialect = DIALECTS[int(rng.integers(len(DIALECTS)))]
            delimiter, newline = dialect["delimiter"], dialect["newline"]
            body = [_csv_line(columns, delimiter)] + [_csv_line([r.get(c) for c in columns], delimiter) for r in lines]
            body.append("")  # a blank line
            injected[source]["empty_row"] += 1
            body.append(_csv_line(["dirty_truncated_line"], delimiter))  # a truncated last line
            injected[source]["wrong_field_count"] += 1
            text = newline.join(body)
            path = folder / f"zz_dirty_{key}.csv"
            path.write_bytes(("\ufeff" if dialect["bom"] else "").encode() + text.encode("utf-8"))
    counts = {source: dict(sorted(c.items())) for source, c in sorted(injected.items())}
    (landing / DIRT_FILE).write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")
    return counts


def make_dirty_copy(clean: Path, dirty: Path, **kwargs) -> dict:
    """Copy a landing folder and add dirt to the copy."""
    shutil.copytree(clean, dirty)
    return add_dirt(dirty, **kwargs)
