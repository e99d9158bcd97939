"""The expectation suites (PRODUCT.md §3), as code, in one place.

Each `Rule` wraps one Great Expectations expectation with a severity and a machine-readable
reason code:

- `error`: rows that fail are quarantined with the reason (row rules), or — for invariants on
  staging output — the check fails and blocks downstream assets;
- `warning`: rows are kept; the failure is counted and shown.

Suites:
- `RAW_SUITES[source]` run on every delivered row after normalisation (raw assets);
- `STAGING_ROW_SUITES[source]` are the cross-table row rules run while building staging
  (purchase vs install time, currency with an FX rate);
- `STAGING_INVARIANT_SUITES[table]` assert properties of the staging tables themselves.

Great Expectations is imported only when a suite is built (`build`), never at module import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from clv_pipeline.ingestion.normalise import text_column
from clv_pipeline.ingestion.sources import REVENUE_TYPES, SOURCES, Source

Severity = Literal["error", "warning"]
# Built from `great_expectations.expectations` at validation time.
ExpectationBuilder = Callable[[Any], Any]

# Reasons about the shape of a line; when a row has one, its other reasons are dropped.
STRUCTURAL_REASONS = ("empty_row", "wrong_field_count", "invalid_json")


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity
    reason: str
    description: str
    build: ExpectationBuilder = field(repr=False, compare=False)


def _not_null(column: str, reason: str, severity: Severity = "error", description: str = "") -> Rule:
    return Rule(
        name=f"{column}_present" if reason.startswith("missing") else f"{column}_{reason}",
        severity=severity,
        reason=reason,
        description=description or f"{column} is required",
        build=lambda E: E.ExpectColumnValuesToNotBeNull(column=column),
    )


def _parseable(column: str, type_name: str, severity: Severity = "error") -> Rule:
    text = text_column(column)
    return Rule(
        name=f"{column}_parseable",
        severity=severity,
        reason=f"invalid_{column}",
        description=f"{column}, when given, parses as a {type_name}",
        build=lambda E: E.ExpectColumnValuesToNotBeNull(
            column=column, row_condition=f"`{text}`.notna()", condition_parser="pandas"
        ),
    )


def _required(source: Source) -> list[Rule]:
    rules: list[Rule] = []
    for column in source.columns:
        if column.required:
            presence = column.name if column.type == "string" else text_column(column.name)
            rules.append(
                Rule(
                    name=f"{column.name}_present",
                    severity="error",
                    reason=f"missing_{column.name}",
                    description=f"{column.name} is required",
                    build=lambda E, c=presence: E.ExpectColumnValuesToNotBeNull(column=c),
                )
            )
        if column.type != "string":
            optional_severity: Severity = "error" if column.required or column.name == "is_reinstall" else "warning"
            rules.append(_parseable(column.name, column.type, optional_severity))
    return rules


def _structure() -> list[Rule]:
    return [
        Rule(
            "row_not_empty",
            "error",
            "empty_row",
            "a data line is not blank",
            lambda E: E.ExpectColumnValuesToNotBeInSet(column="_row_problem", value_set=["empty_row"]),
        ),
        Rule(
            "row_is_json_object",
            "error",
            "invalid_json",
            "a JSON-lines row is one valid JSON object",
            lambda E: E.ExpectColumnValuesToNotBeInSet(column="_row_problem", value_set=["invalid_json"]),
        ),
        Rule(
            "row_field_count",
            "error",
            "wrong_field_count",
            "a data line has as many fields as the header (a truncated or over-long line fails)",
            lambda E: E.ExpectColumnValuesToNotBeInSet(column="_row_problem", value_set=["wrong_field_count"]),
        ),
    ]


def _time_range(column: str) -> list[Rule]:
    return [
        Rule(
            f"{column}_not_in_future",
            "error",
            "timestamp_in_future",
            f"{column} is at most 2 days after the delivery date",
            lambda E: E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="_max_valid_time", column_B="_event_time", or_equal=True, ignore_row_if="either_value_is_missing"
            ),
        ),
        Rule(
            f"{column}_not_too_early",
            "error",
            "timestamp_too_early",
            f"{column} is on or after 1990-01-01",
            lambda E: E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="_event_time", column_B="_min_valid_time", or_equal=True, ignore_row_if="either_value_is_missing"
            ),
        ),
    ]


def _iso_currency(column: str) -> Rule:
    return Rule(
        f"{column}_iso4217",
        "error",
        f"invalid_{column}",
        f"{column} is a three-letter ISO-4217 code",
        lambda E: E.ExpectColumnValuesToMatchRegex(column=column, regex=r"^[A-Z]{3}$"),
    )


def _iso_country() -> list[Rule]:
    return [
        Rule(
            "country_iso2",
            "error",
            "invalid_country",
            "country, when given, is an ISO-3166 alpha-2 code or a known country name",
            lambda E: E.ExpectColumnValuesToNotBeNull(
                column="country", row_condition=f"`{text_column('country')}`.notna()", condition_parser="pandas"
            ),
        )
    ]


# 1.00E+11: a spreadsheet turned a long numeric id into a float and the real id is lost.
SPREADSHEET_MANGLED_ID = r"^[0-9](?:\.[0-9]+)?[eE][+-]?[0-9]+$"
ID_COLUMNS = ("user_id", "event_id", "session_id")
# A purchase event above this many USD is implausible for a mobile app (revenue in cents?).
MAX_PLAUSIBLE_EVENT_USD = 1000.0


def _ids_not_mangled(source: Source) -> list[Rule]:
    return [
        Rule(
            f"{column}_not_spreadsheet_mangled",
            "error",
            "id_in_scientific_notation",
            f"{column} is not in scientific notation (an id a spreadsheet turned into a number)",
            lambda E, c=column: E.ExpectColumnValuesToNotMatchRegex(column=c, regex=SPREADSHEET_MANGLED_ID),
        )
        for column in ID_COLUMNS
        if column in source.column_names
    ]


def _unique_within_delivery(source: Source) -> Rule:
    key = list(source.key)
    return Rule(
        "key_unique_within_delivery",
        "error",
        "conflicting_duplicate_key",
        f"no two different rows of one delivery share the key {tuple(key)} (blank or truncated lines aside)",
        lambda E: E.ExpectCompoundColumnsToBeUnique(
            column_list=["_delivery_date", *key],
            row_condition="(~_is_exact_duplicate) & (_row_problem.isnull())",
            condition_parser="pandas",
        ),
    )


def _raw_suite(source_name: str) -> list[Rule]:
    source = SOURCES[source_name]
    rules = _structure() + _required(source) + _ids_not_mangled(source)
    if source_name == "installs":
        rules += _time_range("install_time") + _iso_country()
        rules.append(
            Rule(
                "platform_known",
                "warning",
                "unknown_platform",
                "platform is ios, android, web or other",
                lambda E: E.ExpectColumnValuesToBeInSet(column="platform", value_set=["ios", "android", "web", "other"]),
            )
        )
        rules.append(
            Rule(
                "cost_non_negative",
                "warning",
                "negative_cost",
                "cost, when given, is >= 0",
                lambda E: E.ExpectColumnValuesToBeBetween(column="cost", min_value=0),
            )
        )
    elif source_name == "purchases":
        rules += _time_range("event_time") + [_iso_currency("currency"), _unique_within_delivery(source)]
        rules.append(
            Rule(
                "revenue_type_known",
                "error",
                "invalid_revenue_type",
                "revenue_type is iap, subscription or ad",
                lambda E: E.ExpectColumnValuesToBeInSet(column="revenue_type", value_set=list(REVENUE_TYPES)),
            )
        )
    elif source_name == "ad_spend":
        rules += _time_range("date") + _iso_country() + [_iso_currency("currency"), _unique_within_delivery(source)]
        rules.append(
            Rule(
                "clicks_within_impressions",
                "warning",
                "clicks_exceed_impressions",
                "clicks, when both are given, do not exceed impressions (totals that do not add up)",
                lambda E: E.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="impressions", column_B="clicks", or_equal=True, ignore_row_if="either_value_is_missing"
                ),
            )
        )
        rules.append(
            Rule(
                "spend_non_negative",
                "error",
                "negative_spend",
                "spend is >= 0",
                lambda E: E.ExpectColumnValuesToBeBetween(column="spend", min_value=0),
            )
        )
    elif source_name == "sessions":
        rules += _time_range("session_time")
    elif source_name == "fx_rates":
        rules += _time_range("date") + [_iso_currency("currency"), _unique_within_delivery(source)]
        rules.append(
            Rule(
                "rate_positive",
                "error",
                "invalid_usd_per_unit",
                "usd_per_unit is > 0",
                lambda E: E.ExpectColumnValuesToBeBetween(column="usd_per_unit", min_value=0, strict_min=True),
            )
        )
    return rules


RAW_SUITES: dict[str, list[Rule]] = {name: _raw_suite(name) for name in SOURCES}

STAGING_ROW_SUITES: dict[str, list[Rule]] = {
    "purchases": [
        Rule(
            "currency_has_fx_rate",
            "error",
            "no_fx_rate",
            "the purchase currency has an FX rate on or before the event date",
            lambda E: E.ExpectColumnValuesToNotBeNull(column="usd_per_unit"),
        ),
        Rule(
            "not_before_install",
            "error",
            "purchase_before_install",
            "a purchase is at most 24 h before its user's install",
            lambda E: E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="event_time", column_B="_earliest_allowed_time", or_equal=True, ignore_row_if="either_value_is_missing"
            ),
        ),
        Rule(
            "revenue_plausible",
            "warning",
            "revenue_outlier",
            f"one revenue event is at most {MAX_PLAUSIBLE_EVENT_USD:g} USD either way (revenue in cents instead of units?)",
            lambda E: E.ExpectColumnValuesToBeBetween(
                column="_revenue_usd_estimate", min_value=-MAX_PLAUSIBLE_EVENT_USD, max_value=MAX_PLAUSIBLE_EVENT_USD
            ),
        ),
    ],
    "ad_spend": [
        Rule(
            "currency_has_fx_rate",
            "error",
            "no_fx_rate",
            "the spend currency has an FX rate on or before the spend date",
            lambda E: E.ExpectColumnValuesToNotBeNull(column="usd_per_unit"),
        ),
    ],
}


def _unique(table: str, columns: list[str]) -> Rule:
    return Rule(
        f"{table}_key_unique",
        "error",
        "duplicate_key",
        f"{table} has one row per {tuple(columns)}",
        lambda E: E.ExpectCompoundColumnsToBeUnique(column_list=columns)
        if len(columns) > 1
        else E.ExpectColumnValuesToBeUnique(column=columns[0]),
    )


def _invariant_not_null(table: str, column: str) -> Rule:
    return Rule(
        f"{table}_{column}_not_null",
        "error",
        f"null_{column}",
        f"{table}.{column} is never null",
        lambda E: E.ExpectColumnValuesToNotBeNull(column=column),
    )


STAGING_INVARIANT_SUITES: dict[str, list[Rule]] = {
    "installs": [
        _unique("installs", ["app_id", "user_id"]),
        _invariant_not_null("installs", "install_time"),
        _invariant_not_null("installs", "install_date"),
        _invariant_not_null("installs", "media_source"),
    ],
    "purchases": [
        _unique("purchases", ["event_id"]),
        _invariant_not_null("purchases", "revenue_gross_usd"),
        _invariant_not_null("purchases", "revenue_net_usd"),
        _invariant_not_null("purchases", "app_id"),
        Rule(
            "purchases_net_within_gross",
            "error",
            "net_exceeds_gross",
            "revenue_net_usd <= revenue_gross_usd for sales (store fees only reduce revenue)",
            lambda E: E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="revenue_gross_usd",
                column_B="revenue_net_usd",
                or_equal=True,
                row_condition="revenue_gross_usd >= 0",
                condition_parser="pandas",
            ),
        ),
    ],
    "ad_spend": [
        _unique("ad_spend", ["date", "app_id", "media_source", "campaign", "country", "platform"]),
        _invariant_not_null("ad_spend", "spend_usd"),
        Rule(
            "ad_spend_usd_non_negative",
            "error",
            "negative_spend",
            "spend_usd >= 0",
            lambda E: E.ExpectColumnValuesToBeBetween(column="spend_usd", min_value=0),
        ),
    ],
    "sessions": [_unique("sessions", ["app_id", "user_id", "session_time", "session_id"])],
    "fx_rates": [_unique("fx_rates", ["date", "currency"])],
}
