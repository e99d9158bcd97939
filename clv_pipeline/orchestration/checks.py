"""Dagster asset checks built from the expectation suites (one check per rule).

Row rules of severity `error` quarantine the failing rows, so their check reports a WARN (rows
were set aside, the data that loaded is sound); `warning` rules report WARN too. Invariant rules
on staging tables are blocking ERROR checks: when one fails, nothing downstream builds and
nothing is published.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from clv_pipeline.validation.runner import SuiteResult
from clv_pipeline.validation.suites import Rule


def rule_check_specs(asset: dg.AssetKey, rules: list[Rule], blocking_errors: bool) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            rule.name,
            asset=asset,
            blocking=blocking_errors and rule.severity == "error",
            description=f"[{rule.severity}] {rule.description} (reason code `{rule.reason}`)",
        )
        for rule in rules
    ]


def sample_offending_rows(frame: pl.DataFrame | None, positions: list[int]) -> list[str]:
    """'file:line: row text' of a few failing rows (when the frame has lineage)."""
    if frame is None or not positions or "_source_file" not in frame.columns:
        return []
    rows = frame.select("_source_file", "_line_number", *(["_row_text"] if "_row_text" in frame.columns else []))[positions]
    return [
        f"{r['_source_file']}:{r['_line_number']}" + (f": {str(r['_row_text'])[:200]}" if "_row_text" in r else "")
        for r in rows.to_dicts()
    ]


def rule_check_results(
    asset: dg.AssetKey,
    rules: list[Rule],
    suite_results: list[SuiteResult],
    blocking_errors: bool = False,
    frames: list[pl.DataFrame] | None = None,
) -> list[dg.AssetCheckResult]:
    """One result per rule, summed over the suite runs of this materialization. `frames` are the
    validated frames (same order as `suite_results`), used to show sample offending rows."""
    out = []
    frames = frames or [None] * len(suite_results)
    for index, rule in enumerate(rules):
        per_run = [s.results[index] for s in suite_results]
        offending = [row for s, f in zip(suite_results, frames) for row in sample_offending_rows(f, s.results[index].sample_rows)][:3]
        unexpected = sum(r.unexpected_count for r in per_run)
        elements = sum(r.element_count for r in per_run)
        samples = [str(v) for r in per_run for v in r.sample_values][:5]
        passed = all(r.success for r in per_run)
        severity = dg.AssetCheckSeverity.ERROR if blocking_errors and rule.severity == "error" else dg.AssetCheckSeverity.WARN
        out.append(
            dg.AssetCheckResult(
                asset_key=asset,
                check_name=rule.name,
                passed=passed,
                severity=severity,
                metadata={
                    "severity": rule.severity,
                    "reason_code": rule.reason,
                    "rows_checked": elements,
                    "unexpected_rows": unexpected,
                    "unexpected_percent": round(100.0 * unexpected / elements, 4) if elements else 0.0,
                    "sample_values": samples,
                    "sample_rows": offending,
                    "action": "rows quarantined" if rule.severity == "error" and not blocking_errors else "reported",
                },
            )
        )
    return out
