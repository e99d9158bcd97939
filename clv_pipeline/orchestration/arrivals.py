"""What arrived in the landing folder: delivery fingerprints, and the diff against what was seen.

Pure Python over the file system (no Dagster, no DuckDB); the arrival sensor and the nightly
schedule (`orchestration/automation.py`) and the freshness checks use it.

A delivery is a date folder (`<landing>/<source>/<YYYY-MM-DD>/`); its fingerprint per source is a
hash of the file names, sizes and modification times, so a new file, a replaced file or a removed
file in an existing folder changes it. Files modified less than `settle_seconds` ago are still
being written: their delivery is left for a later look.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from clv_pipeline.ingestion.landing import LandingFileError, delivery_folders, parse_partition_key
from clv_pipeline.ingestion.sources import SOURCES

CURSOR_VERSION = 1


@dataclass(frozen=True)
class FileStat:
    name: str
    size: int
    mtime: float  # seconds since the epoch (latest of modification and status-change time)


@dataclass
class LandingScan:
    """Per delivery date and source: the data files (hidden files and markers such as `_SUCCESS`
    are not data, as in `ingestion.landing`)."""

    files: dict[str, dict[str, list[FileStat]]] = field(default_factory=dict)

    def fingerprints(self) -> dict[str, dict[str, str]]:
        return {day: {source: fingerprint(stats) for source, stats in by_source.items()} for day, by_source in self.files.items()}

    def newest_arrival(self, source: str) -> tuple[str | None, float | None]:
        """(latest delivery date, latest file time) of a source, or (None, None)."""
        days = [day for day, by_source in self.files.items() if by_source.get(source)]
        times = [s.mtime for by_source in self.files.values() for s in by_source.get(source, [])]
        return (max(days) if days else None, max(times) if times else None)

    def unsettled(self, now: float, settle_seconds: float) -> set[str]:
        """Delivery dates with a file modified less than `settle_seconds` before `now`."""
        return {
            day
            for day, by_source in self.files.items()
            if any(now - s.mtime < settle_seconds for stats in by_source.values() for s in stats)
        }


def scan_landing(landing_dir: Path) -> LandingScan:
    """Stat every file of every valid delivery folder (folders that are not dates are reported by
    the runs themselves, through the blocking `files_readable` check)."""
    scan = LandingScan()
    for source in SOURCES:
        for key, folder in delivery_folders(Path(landing_dir), source).items():
            try:
                parse_partition_key(key)
            except LandingFileError:
                continue
            stats = []
            for path in sorted(folder.iterdir()):
                if path.name.startswith((".", "_")) or not path.is_file():
                    continue
                st = path.stat()
                stats.append(FileStat(path.name, st.st_size, max(st.st_mtime, st.st_ctime)))
            if stats:
                scan.files.setdefault(key, {})[source] = stats
    return scan


def fingerprint(stats: list[FileStat]) -> str:
    digest = hashlib.sha256()
    for s in sorted(stats, key=lambda s: s.name):
        digest.update(f"{s.name}\0{s.size}\0{s.mtime:.6f}\n".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Arrivals:
    """New or changed deliveries: date -> sources whose files are new or changed."""

    changed: dict[str, list[str]]
    seen: dict[str, dict[str, str]]  # the state to remember (the next cursor)
    waiting: list[str]  # dates left for a later look (files still being written)

    def cursor(self) -> str:
        return encode_cursor(self.seen)


def diff_arrivals(scan: LandingScan, seen: dict[str, dict[str, str]], now: float, settle_seconds: float) -> Arrivals:
    """Compare the landing folder with what was seen before. A delivery with a file still being
    written keeps its previous state (it is looked at again next time)."""
    current = scan.fingerprints()
    waiting = scan.unsettled(now, settle_seconds)
    changed: dict[str, list[str]] = {}
    remembered: dict[str, dict[str, str]] = {}
    for day in sorted(current):
        if day in waiting:
            if day in seen:
                remembered[day] = seen[day]
            continue
        before = seen.get(day, {})
        sources = sorted(s for s, fp in current[day].items() if before.get(s) != fp)
        if sources:
            changed[day] = sources
        remembered[day] = current[day]
    return Arrivals(changed, remembered, sorted(waiting))


def encode_cursor(seen: dict[str, dict[str, str]]) -> str:
    return json.dumps({"v": CURSOR_VERSION, "seen": seen}, sort_keys=True, separators=(",", ":"))


def decode_cursor(cursor: str | None) -> dict[str, dict[str, str]]:
    """The remembered fingerprints; an empty or unknown cursor means nothing was seen yet."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        return {}
    return {str(day): dict(by_source) for day, by_source in data.get("seen", {}).items()}
