"""Reading the landing folder (PRODUCT.md §2): `<landing>/<source>/<YYYY-MM-DD>/<file>`.

Finds delivery partitions and turns each landing file into a frame of text columns with its
lineage (file, line number). File-level problems raise `LandingFileError`, which names the file,
the line when known, and the problem in plain words. Pure: no Dagster, no DuckDB.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from clv_pipeline.ingestion.sources import FILE_FORMATS, SOURCES, Source

LINEAGE_COLUMNS = ("_delivery_date", "_source_file", "_line_number")
EXTRA_COLUMN = "_extra"
ROW_TEXT_COLUMN = "_row_text"
_CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class LandingFileError(Exception):
    """A landing file (or partition folder) that cannot be loaded; the partition fails."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Delivery:
    source: str
    delivery_date: date
    files: tuple[Path, ...]


def parse_partition_key(key: str, where: Path | str = "") -> date:
    """A delivery folder name must be an ISO date (YYYY-MM-DD)."""
    if not _DATE_FOLDER.match(key):
        raise LandingFileError(where or key, f"partition folder {key!r} is not a date (expected YYYY-MM-DD)")
    try:
        return date.fromisoformat(key)
    except ValueError as exc:
        raise LandingFileError(where or key, f"partition folder {key!r} is not a valid date: {exc}") from exc


def _is_marker(path: Path) -> bool:
    """Hidden files and delivery markers such as `_SUCCESS` are not data."""
    return path.name.startswith((".", "_"))


def is_landing_file(path: Path) -> bool:
    return path.is_file() and not _is_marker(path) and path.name.lower().endswith(FILE_FORMATS)


def delivery_folders(landing_dir: Path, source: str) -> dict[str, Path]:
    """Partition key -> folder for one source. Folders that are not dates are returned too, under
    their own name, so the caller can fail that partition with a clear message."""
    root = Path(landing_dir) / source
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def _is_partition_key(name: str) -> bool:
    try:
        parse_partition_key(name)
    except LandingFileError:
        return False
    return True


def discover_partition_keys(landing_dir: Path) -> list[str]:
    """All delivery dates present under any source, sorted. Folders that are not valid dates are
    left out here (see `invalid_partition_folders`)."""
    keys: set[str] = set()
    for source in SOURCES:
        keys.update(k for k in delivery_folders(landing_dir, source) if _is_partition_key(k))
    return sorted(keys)


def invalid_partition_folders(landing_dir: Path, source: str | None = None) -> list[Path]:
    """Folders under a source (or under any source) that are not valid YYYY-MM-DD dates."""
    sources = [source] if source else list(SOURCES)
    return [
        folder
        for name in sources
        for key, folder in delivery_folders(landing_dir, name).items()
        if not _is_partition_key(key)
    ]


def partition_files(landing_dir: Path, source: str, partition_key: str) -> list[Path]:
    folder = Path(landing_dir) / source / partition_key
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if is_landing_file(p))
    unknown = sorted(p.name for p in folder.iterdir() if p.is_file() and not _is_marker(p) and not is_landing_file(p))
    if unknown:
        raise LandingFileError(folder, f"unsupported file type(s) {unknown}; expected one of {list(FILE_FORMATS)}")
    return files


def read_landing_file(path: Path, source: Source, landing_dir: Path | None = None) -> pl.DataFrame:
    """One landing file -> text frame: the source's canonical columns (missing optional ones as
    null), `_extra` (JSON of unknown columns, or null), `_source_file`, `_line_number` (line of the
    row in the file, header = line 1) and `_row_text` (the row as delivered).

    Raises LandingFileError for problems that make the whole file unusable.
    """
    path = Path(path)
    shown = str(path.relative_to(landing_dir)) if landing_dir is not None and path.is_relative_to(landing_dir) else str(path)
    name = path.name.lower()
    if name.endswith(".parquet"):
        frame = _read_parquet(path, shown)
    elif name.endswith((".jsonl", ".jsonl.gz")):
        frame = _read_jsonl(_decode(path, shown), shown)
    else:
        frame = _read_csv_text(_decode(path, shown), shown)
    return _to_canonical(frame, source, shown)


def _decode(path: Path, shown: str) -> str:
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise LandingFileError(shown, f"not a readable gzip file ({exc})") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LandingFileError(
            shown, f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}; re-export the file as UTF-8", line
        ) from exc


def _normalise_header(names: list[str], shown: str) -> list[str]:
    out = [n.strip().strip('"').strip().lower().replace(" ", "_") for n in names]
    seen: set[str] = set()
    for n in out:
        if n == "":
            raise LandingFileError(shown, "header has an empty column name", 1)
        if n in seen:
            raise LandingFileError(shown, f"column {n!r} appears twice in the header", 1)
        seen.add(n)
    return out


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in _CANDIDATE_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_csv_text(text: str, shown: str) -> pl.DataFrame:
    """Parse delimited text exactly: every physical data line is one row (blank lines included, as
    rows with every field empty), and a line with the wrong number of fields becomes a row with
    `_field_count_error` set, so that it is quarantined rather than silently padded."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise LandingFileError(shown, "file is empty (no header row)")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # trailing newline ends the last row, it is not a row
    header_line, data_lines = lines[0], lines[1:]
    delimiter = _sniff_delimiter(header_line)
    if '"' in text:
        return _read_csv_quoted(text, delimiter, shown)
    header = _normalise_header(header_line.split(delimiter), shown)
    n = len(header)
    rows = pl.DataFrame({"_row_text": pl.Series(data_lines, dtype=pl.String)}).with_row_index("_line_number", offset=2)
    fields = pl.col("_row_text").str.split(delimiter)
    rows = rows.with_columns(
        _field_count=fields.list.len(),
        _blank=pl.col("_row_text").str.strip_chars() == "",
    )
    columns = [fields.list.get(i, null_on_oob=True).alias(c) for i, c in enumerate(header)]
    frame = rows.with_columns(columns).with_columns(
        _field_count_error=pl.when(pl.col("_blank"))
        .then(pl.lit("empty_row"))
        .when(pl.col("_field_count") != n)
        .then(pl.format("expected {} fields, found {}", pl.lit(n), pl.col("_field_count")))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return frame.drop("_field_count", "_blank").with_columns(pl.col("_line_number").cast(pl.Int64))


def _read_csv_quoted(text: str, delimiter: str, shown: str) -> pl.DataFrame:
    """Slow exact path for files with quoted fields (which may contain delimiters or newlines)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header_fields = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise LandingFileError(shown, f"cannot read the header row ({exc})", 1) from exc
    header = _normalise_header(header_fields, shown)
    n = len(header)
    records: list[list[str | None]] = []
    line_numbers: list[int] = []
    raw_texts: list[str] = []
    errors: list[str | None] = []
    physical = text.split("\n")
    start = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise LandingFileError(shown, f"malformed quoting ({exc})", reader.line_num) from exc
        end = reader.line_num
        line_numbers.append(start)
        raw_texts.append("\n".join(physical[start - 1 : end]))
        if not fields or all(f.strip() == "" for f in fields) and len(fields) <= 1:
            errors.append("empty_row")
            fields = []
        elif len(fields) != n:
            errors.append(f"expected {n} fields, found {len(fields)}")
        else:
            errors.append(None)
        records.append([fields[i] if i < len(fields) else None for i in range(n)])
        start = end + 1
    data = {c: pl.Series([r[i] for r in records], dtype=pl.String) for i, c in enumerate(header)}
    return pl.DataFrame(
        {
            "_line_number": pl.Series(line_numbers, dtype=pl.Int64),
            "_row_text": pl.Series(raw_texts, dtype=pl.String),
            **data,
            "_field_count_error": pl.Series(errors, dtype=pl.String),
        }
    )


def _read_jsonl(text: str, shown: str) -> pl.DataFrame:
    text = text.replace("\r\n", "\n")
    records: list[dict] = []
    line_numbers: list[int] = []
    raw_texts: list[str] = []
    errors: list[str | None] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, start=1):
        line_numbers.append(number)
        raw_texts.append(line)
        if line.strip() == "":
            records.append({})
            errors.append("empty_row")
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            records.append({_normalise_header([k], shown)[0]: (None if v is None else str(v)) for k, v in obj.items()})
            errors.append(None)
        except ValueError as exc:
            records.append({})
            errors.append(f"invalid JSON ({exc})")
    if not any(e != "empty_row" for e in errors):
        raise LandingFileError(shown, "file is empty (no JSON lines)")
    columns: dict[str, None] = {}
    for r in records:
        columns.update(dict.fromkeys(r))
    return pl.DataFrame(
        {
            "_line_number": pl.Series(line_numbers, dtype=pl.Int64),
            "_row_text": pl.Series(raw_texts, dtype=pl.String),
            **{c: pl.Series([r.get(c) for r in records], dtype=pl.String) for c in columns},
            "_field_count_error": pl.Series(errors, dtype=pl.String),
        }
    )


def _read_parquet(path: Path, shown: str) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt file
        raise LandingFileError(shown, f"not a readable Parquet file ({exc})") from exc
    header = _normalise_header(frame.columns, shown)
    frame = frame.rename(dict(zip(frame.columns, header)))
    text = frame.select(
        [
            (pl.col(c).dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z") if frame.schema[c] == pl.Datetime(time_zone="UTC") or (isinstance(frame.schema[c], pl.Datetime) and frame.schema[c].time_zone) else pl.col(c).cast(pl.String)).alias(c)
            for c in header
        ]
    )
    return text.with_columns(
        _line_number=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
        _row_text=pl.struct(header).struct.json_encode() if header else pl.lit("{}"),
        _field_count_error=pl.lit(None, dtype=pl.String),
    )


def empty_text_frame(source: Source) -> pl.DataFrame:
    """The frame `read_landing_file` returns, with no rows."""
    return pl.DataFrame(
        {
            "_source_file": pl.Series([], dtype=pl.String),
            "_line_number": pl.Series([], dtype=pl.Int64),
            **{c: pl.Series([], dtype=pl.String) for c in source.column_names},
            EXTRA_COLUMN: pl.Series([], dtype=pl.String),
            ROW_TEXT_COLUMN: pl.Series([], dtype=pl.String),
            "_field_count_error": pl.Series([], dtype=pl.String),
        }
    )


def _to_canonical(frame: pl.DataFrame, source: Source, shown: str) -> pl.DataFrame:
    present = [c for c in frame.columns if not c.startswith("_")]
    missing = [c for c in source.required_columns if c not in present]
    if missing:
        raise LandingFileError(
            shown, f"missing required column(s) {missing} for source {source.name!r} (found columns: {present})", 1
        )
    extra = [c for c in present if c not in source.column_names]
    canonical = [
        (pl.col(c) if c in present else pl.lit(None, dtype=pl.String)).cast(pl.String).alias(c) for c in source.column_names
    ]
    extra_expr = pl.struct(extra).struct.json_encode() if extra else pl.lit(None, dtype=pl.String)
    return frame.select(
        pl.lit(shown).alias("_source_file"),
        pl.col("_line_number"),
        *canonical,
        extra_expr.alias(EXTRA_COLUMN),
        pl.col("_row_text"),
        pl.col("_field_count_error"),
    )
