"""Runs an expectation suite (`suites.Rule` list) with Great Expectations 1.x on a Polars frame.

The frame is converted to pandas (GX's SQL datasource does not work with DuckDB here) and
validated in one call with COMPLETE results, so every failing row index is known. The result
gives, per rule, GX's own numbers (unexpected count and a few offending values) and, per row,
the reason codes of the failed `error` and `warning` rules. GX is imported lazily; importing it
costs seconds.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import polars as pl

from clv_pipeline.validation.suites import STRUCTURAL_REASONS, Rule

_lock = threading.Lock()
_context = None


@dataclass
class RuleResult:
    rule: Rule
    success: bool
    element_count: int
    unexpected_count: int
    sample_values: list = field(default_factory=list)

    def as_metadata(self) -> dict:
        return {
            "rule": self.rule.name,
            "severity": self.rule.severity,
            "reason": self.rule.reason,
            "description": self.rule.description,
            "success": self.success,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "sample_values": [str(v) for v in self.sample_values[:5]],
        }


@dataclass
class SuiteResult:
    suite: str
    results: list[RuleResult]
    # One entry per input row: reason codes of failed `error` rules / `warning` rules.
    row_errors: pl.Series
    row_warnings: pl.Series
    gx_result: object = field(default=None, repr=False)

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    def failed(self, severity: str | None = None) -> list[RuleResult]:
        return [r for r in self.results if not r.success and (severity is None or r.rule.severity == severity)]


def _gx_context():
    global _context
    with _lock:
        if _context is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            _context = context
        return _context


# Lineage and text columns no rule reads: left out of the frame GX validates (and hashes).
NOT_VALIDATED = ("_source_file", "_line_number", "_extra", "_row_text", "_field_count_error", "_warnings")


def _to_pandas(frame: pl.DataFrame):
    # Decimals become floats for the comparisons GX makes; list columns are not validated.
    casts = [
        pl.col(name).cast(pl.Float64)
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Decimal)
    ]
    keep = [
        name
        for name, dtype in frame.schema.items()
        if not isinstance(dtype, (pl.List, pl.Struct)) and name not in NOT_VALIDATED
    ]
    return frame.select(keep).with_columns(casts).to_pandas()


def validate_frame(frame: pl.DataFrame, rules: list[Rule], suite_name: str) -> SuiteResult:
    """Validate `frame` against `rules`; returns per-rule results and per-row reason lists."""
    n = frame.height
    if n == 0 or not rules:
        empty = pl.Series("reasons", [[] for _ in range(n)], dtype=pl.List(pl.String))
        return SuiteResult(
            suite_name, [RuleResult(rule, True, 0, 0) for rule in rules], empty, empty.alias("warnings")
        )
    import great_expectations as gx

    context = _gx_context()
    with _lock:
        name = f"frame_{suite_name}"
        try:
            datasource = context.data_sources.get(name)
        except (KeyError, ValueError, LookupError):
            datasource = context.data_sources.add_pandas(name)
        try:
            asset = datasource.get_asset("rows")
        except (KeyError, ValueError, LookupError):
            asset = datasource.add_dataframe_asset("rows")
        try:
            batch_definition = asset.get_batch_definition("whole")
        except (KeyError, ValueError, LookupError):
            batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    expectations = []
    for index, rule in enumerate(rules):
        expectation = rule.build(gx.expectations)
        expectation.meta = {"rule_index": index, "rule": rule.name}
        expectations.append(expectation)
    suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
    pdf = _to_pandas(frame)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": pdf})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})

    failures: list[tuple[int, int, str, str]] = []  # (row, rule index, severity, reason)
    by_index: dict[int, RuleResult] = {}
    for res in result.results:
        meta = res.expectation_config.meta or {}
        index = int(meta["rule_index"])
        rule = rules[index]
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"expectation {rule.name!r} of suite {suite_name!r} could not run: "
                f"{res.exception_info.get('exception_message')}"
            )
        details = res.result or {}
        rows = details.get("unexpected_index_list") or []
        failures.extend((int(i), index, rule.severity, rule.reason) for i in rows)
        by_index[index] = RuleResult(
            rule=rule,
            success=bool(res.success),
            element_count=int(details.get("element_count") or n),
            unexpected_count=int(details.get("unexpected_count") or len(rows)),
            sample_values=list(details.get("partial_unexpected_list") or [])[:5],
        )
    errors, warnings = _row_reasons(failures, n)
    return SuiteResult(suite_name, [by_index[i] for i in range(len(rules))], errors, warnings, gx_result=result)


def _row_reasons(failures: list[tuple[int, int, str, str]], n: int) -> tuple[pl.Series, pl.Series]:
    """Per-row lists of error and warning reasons, in suite order, built column-wise."""
    table = pl.DataFrame(failures, schema={"row": pl.Int64, "rule": pl.Int64, "severity": pl.String, "reason": pl.String}, orient="row")
    structural = pl.col("reason").is_in(STRUCTURAL_REASONS)
    # a blank or truncated line: only the structural reason, the other failures follow from it
    errors = (
        table.filter(pl.col("severity") == "error")
        .with_columns(_structural=structural.any().over("row"))
        .filter(~pl.col("_structural") | structural)
        .sort("row", "rule")
        .unique(["row", "reason"], keep="first", maintain_order=True)
        .group_by("row", maintain_order=True)
        .agg(pl.col("reason"))
    )
    warnings = (
        table.filter(pl.col("severity") == "warning")
        .unique(["row", "reason"])
        .sort("row", "reason")
        .group_by("row", maintain_order=True)
        .agg(pl.col("reason"))
    )
    rows = pl.DataFrame({"row": pl.int_range(0, n, eager=True, dtype=pl.Int64)})

    def spread(found: pl.DataFrame, name: str) -> pl.Series:
        joined = rows.join(found, on="row", how="left").sort("row")
        return joined["reason"].fill_null(pl.lit([], dtype=pl.List(pl.String))).alias(name)

    return spread(errors, "reasons"), spread(warnings, "warnings")
