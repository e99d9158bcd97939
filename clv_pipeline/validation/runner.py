"""Runs an expectation suite (`suites.Rule` list) with Great Expectations 1.x on a Polars frame.

The frame is converted to pandas (GX's SQL datasource does not work with DuckDB here) and
validated in one call with COMPLETE results, so every failing row index is known. The result
gives, per rule, GX's own numbers (unexpected count and a few offending values) and, per row,
the reason codes of the failed `error` and `warning` rules. GX is imported lazily; importing it
costs seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from clv_pipeline.validation.suites import STRUCTURAL_REASONS, Rule

_lock = threading.RLock()
_context = None
_docs_sites: set[str] = set()
# Per Data Docs site: the suites and validation results not rendered yet. Rendering only these
# keeps each build incremental (GX would otherwise re-render every result the process stored).
_pending_docs: dict[str, list] = {}


@dataclass
class RuleResult:
    rule: Rule
    success: bool
    element_count: int
    unexpected_count: int
    sample_values: list = field(default_factory=list)
    # Positions (in the validated frame) of the first failing rows, for sample offending rows.
    sample_rows: list[int] = field(default_factory=list)

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


def _batch_definition(context, suite_name: str):
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
        return asset.get_batch_definition("whole")
    except (KeyError, ValueError, LookupError):
        return asset.add_batch_definition_whole_dataframe("whole")


def _docs_site(context, docs_dir: Path) -> str:
    """A Data Docs site (static HTML) in `docs_dir`, added to the context once per folder and
    process."""
    name = "clv_" + hashlib.sha1(str(docs_dir.resolve()).encode()).hexdigest()[:10]
    if name not in _docs_sites:
        # the site shows the validations of this process (one run): pages of earlier runs go
        shutil.rmtree(docs_dir, ignore_errors=True)
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            name,
            {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        _docs_sites.add(name)
        _pending_docs[name] = []
    return name


def build_data_docs(docs_dir: Path) -> Path | None:
    """Render, in the Data Docs site in `docs_dir`, the validations of this process not rendered
    yet, and its index page; returns the index page (None when nothing was validated with that
    folder)."""
    with _lock:
        if _context is None:
            return None
        site = _docs_site(_context, Path(docs_dir))
        pending = _pending_docs[site]
        if pending:
            # an empty list would mean "everything" to GX
            _context.build_data_docs(site_names=[site], resource_identifiers=list(pending))
            pending.clear()
    index = Path(docs_dir) / "index.html"
    return index if index.exists() else None


def _validate_with_docs(context, batch_definition, suite, pdf, docs_dir: Path):
    import great_expectations as gx

    site = _docs_site(context, docs_dir)
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"validate_{suite.name}", data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"checkpoint_{suite.name}_{site}",
            validation_definitions=[definition],
            actions=[],  # results go to the context's store; `build_data_docs` renders them once per asset
            result_format={"result_format": "COMPLETE"},
        )
    )
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    outcome = checkpoint.run(batch_parameters={"dataframe": pdf})
    result_id, result = next(iter(outcome.run_results.items()))
    pending = _pending_docs[site]
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    pending.extend([result_id] if suite_id in pending else [suite_id, result_id])
    return result


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


def validate_frame(frame: pl.DataFrame, rules: list[Rule], suite_name: str, docs_dir: Path | None = None) -> SuiteResult:
    """Validate `frame` against `rules`; returns per-rule results and per-row reason lists.
    With `docs_dir`, the validation runs as a GX Checkpoint whose result is kept for the Data Docs
    site (static HTML) in that folder; `build_data_docs(docs_dir)` renders it."""
    n = frame.height
    if n == 0 or not rules:
        empty = pl.Series("reasons", [[] for _ in range(n)], dtype=pl.List(pl.String))
        return SuiteResult(
            suite_name, [RuleResult(rule, True, 0, 0) for rule in rules], empty, empty.alias("warnings")
        )
    import great_expectations as gx

    context = _gx_context()
    expectations = []
    for index, rule in enumerate(rules):
        expectation = rule.build(gx.expectations)
        expectation.meta = {"rule_index": index, "rule": rule.name}
        expectations.append(expectation)
    pdf = _to_pandas(frame)
    with _lock:
        batch_definition = _batch_definition(context, suite_name)
        suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
        if docs_dir is None:
            result = batch_definition.get_batch(batch_parameters={"dataframe": pdf}).validate(
                suite, result_format={"result_format": "COMPLETE"}
            )
        else:
            result = _validate_with_docs(context, batch_definition, suite, pdf, Path(docs_dir))

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
            sample_rows=[int(i) for i in rows[:3]],
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
