"""Normalisation and typing of landing rows, before validation (PRODUCT.md §2–§3).

Text in, typed canonical columns out: trim, null-like strings to null, case-fold enumerations,
country names to ISO-2, explicit timestamp formats (never guessing day/month order), decimals
with exact scale. A value that cannot be parsed becomes null in its typed column while the text
stays in `<column>__text`, so that the expectation suites can tell "missing" from "invalid".
Pure Polars.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from clv_pipeline.ingestion.countries import to_iso2
from clv_pipeline.ingestion.sources import DEFAULT_APP_ID, ORGANIC, Source

MONEY_SCALE = 6
MONEY = pl.Decimal(38, MONEY_SCALE)
# Raw and staging timestamps are naive UTC (documented in README): the reporting time zone is
# applied only when computing dates.
TIMESTAMP = pl.Datetime("us")
NULL_LIKE = ("", "null", "none", "nan", "\\n", "<null>")
# Accepted timestamp spellings (ISO 8601 family). Anything else is invalid, never guessed.
TIMESTAMP_FORMATS_WITH_OFFSET = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z")
TIMESTAMP_FORMATS_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
TRUE_WORDS = ("true", "t", "1", "yes", "y")
FALSE_WORDS = ("false", "f", "0", "no", "n")
# Earliest event date accepted (the app's life; configurable); the latest is the delivery date +
# this tolerance.
EARLIEST_VALID_DATE = date(1990, 1, 1)
FUTURE_TOLERANCE = timedelta(days=2)


@dataclass(frozen=True)
class ReadOptions:
    """How to read one source: extra timestamp formats its files declare (chrono/strftime
    patterns such as "%m/%d/%Y %H:%M"; tried before the ISO-8601 spellings, taken as UTC unless
    they include %z) and the earliest plausible event date."""

    timestamp_formats: tuple[str, ...] = ()
    earliest_event_date: date = EARLIEST_VALID_DATE


def text_column(name: str) -> str:
    return f"{name}__text"


def clean_text(expr: pl.Expr) -> pl.Expr:
    """Trim; empty and null-like spellings ('null', 'None', 'NaN', '\\N') become null."""
    stripped = expr.cast(pl.String).str.strip_chars()
    return pl.when(stripped.str.to_lowercase().is_in(NULL_LIKE)).then(None).otherwise(stripped)


def parse_timestamp(expr: pl.Expr, declared_formats: tuple[str, ...] = ()) -> pl.Expr:
    """Text -> naive UTC datetime. First the formats the source declares, then ISO 8601: 'Z' and
    ±HH:MM offsets are converted to UTC; text without an offset is taken as UTC; 'T' or a space may
    separate date and time. Anything else (M/D/YYYY, '#######', epoch numbers) is invalid: a
    day/month order is never guessed."""
    declared = [_parse_with(expr, f) for f in declared_formats]
    iso = expr.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T").str.replace(r"(?i)z$", "+00:00")
    iso = iso.str.replace(r"([+-]\d{2})(\d{2})$", "${1}:${2}").str.replace(r"([+-]\d{2})$", "${1}:00")
    parsed = [_parse_with(iso, f) for f in (*TIMESTAMP_FORMATS_WITH_OFFSET, *TIMESTAMP_FORMATS_NAIVE)]
    return pl.coalesce([*declared, *parsed])


def _parse_with(expr: pl.Expr, fmt: str) -> pl.Expr:
    if "%z" in fmt or "%:z" in fmt:
        return expr.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC").dt.replace_time_zone(None)
    return expr.str.to_datetime(fmt, strict=False, time_unit="us")


def parse_date(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_date("%Y-%m-%d", strict=False)


def parse_decimal(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_decimal(scale=MONEY_SCALE)


def parse_integer(expr: pl.Expr) -> pl.Expr:
    as_float = expr.cast(pl.Float64, strict=False)
    return pl.when(as_float == as_float.round(0)).then(as_float.cast(pl.Int64, strict=False)).otherwise(None)


def parse_bool(expr: pl.Expr) -> pl.Expr:
    lowered = expr.str.to_lowercase()
    return pl.when(lowered.is_in(TRUE_WORDS)).then(True).when(lowered.is_in(FALSE_WORDS)).then(False).otherwise(None)


_PARSERS = {
    "date": parse_date,
    "decimal": parse_decimal,
    "integer": parse_integer,
    "float": lambda e: e.cast(pl.Float64, strict=False),
    "bool": parse_bool,
}


def _country_to_iso2(expr: pl.Expr) -> pl.Expr:
    return expr.map_batches(
        lambda s: s.replace_strict(
            {v: to_iso2(v) for v in s.drop_nulls().unique().to_list()}, default=None, return_dtype=pl.String
        ),
        return_dtype=pl.String,
    )


# Per-column normalisation of the cleaned text, applied before typing.
_ENUM_NORMALISERS = {
    "platform": lambda e: e.str.to_lowercase(),
    "media_source": lambda e: e.str.to_lowercase(),
    "revenue_type": lambda e: e.str.to_lowercase(),
    "currency": lambda e: e.str.to_uppercase(),
    "cost_currency": lambda e: e.str.to_uppercase(),
}


def normalise(source: Source, frame: pl.DataFrame, options: ReadOptions = ReadOptions()) -> pl.DataFrame:
    """Typed canonical columns for one source. `frame` holds the text columns of
    `landing.read_landing_file` plus `_delivery_date` (Date)."""
    cleaned = frame.with_columns([clean_text(pl.col(c)).alias(c) for c in source.column_names])
    typed: list[pl.Expr] = []
    for column in source.columns:
        raw = pl.col(column.name)
        if column.type == "string":
            if column.name in _ENUM_NORMALISERS:
                value = _ENUM_NORMALISERS[column.name](raw)
            elif column.name == "country":
                value = _country_to_iso2(raw)
            else:
                value = raw
            typed.append(value.alias(column.name))
            if column.name == "country":
                typed.append(raw.alias(text_column("country")))
        elif column.type == "timestamp":
            typed.append(parse_timestamp(raw, options.timestamp_formats).alias(column.name))
            typed.append(raw.alias(text_column(column.name)))
        else:
            typed.append(_PARSERS[column.type](raw).alias(column.name))
            typed.append(raw.alias(text_column(column.name)))
    out = cleaned.with_columns(typed)
    out = _apply_defaults(source, out)
    for column in source.columns:
        if column.type == "decimal":
            out = out.with_columns(pl.col(column.name).cast(MONEY))
        elif column.type == "timestamp":
            out = out.with_columns(pl.col(column.name).cast(TIMESTAMP))
    return out.with_columns(
        _min_valid_time=pl.lit(options.earliest_event_date).cast(TIMESTAMP),
        _max_valid_time=(pl.col("_delivery_date").cast(TIMESTAMP) + pl.duration(days=FUTURE_TOLERANCE.days)),
    )


def _apply_defaults(source: Source, frame: pl.DataFrame) -> pl.DataFrame:
    if source.name == "installs":
        return frame.with_columns(
            app_id=pl.col("app_id").fill_null(DEFAULT_APP_ID),
            media_source=pl.col("media_source").fill_null(ORGANIC),
            is_reinstall=pl.when(pl.col(text_column("is_reinstall")).is_null()).then(False).otherwise(pl.col("is_reinstall")),
        )
    if source.name == "purchases":
        frame = frame.with_columns(revenue_type=pl.col("revenue_type").fill_null("iap"))
        return frame.with_columns(event_id=pl.coalesce(pl.col("event_id"), event_hash(frame)))
    if source.name == "sessions":
        return frame
    return frame


def event_hash(frame: pl.DataFrame) -> pl.Series:
    """PRODUCT.md §2: when event_id is absent, a stable hash of user_id, event_time, product_id,
    revenue and currency (md5 of their canonical text, first 20 hex digits, prefixed 'h:').
    md5 rather than Polars' hash, which is not stable across Polars versions."""
    canonical = frame.select(
        pl.concat_str(
            [
                pl.col("user_id").fill_null(""),
                pl.col("event_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f").fill_null(pl.col(text_column("event_time"))).fill_null(""),
                pl.col("product_id").fill_null(""),
                pl.col("revenue").cast(pl.String).fill_null(pl.col(text_column("revenue"))).fill_null(""),
                pl.col("currency").fill_null(""),
            ],
            separator="\x1f",
        )
    ).to_series()
    return pl.Series(
        "event_id", ["h:" + hashlib.md5(v.encode()).hexdigest()[:20] for v in canonical.to_list()], dtype=pl.String
    )


def content_columns(source: Source) -> list[str]:
    """Columns whose equality makes two rows exact duplicates (the canonical typed values)."""
    return source.column_names
