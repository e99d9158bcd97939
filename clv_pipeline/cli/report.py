"""The end-of-run report: partitions loaded, failed checks, rows per published table, quarantine
counts, the fitted models (and the chosen model and its backtest error when `model_fit` records
them), the cohorts the run changed, and the duration of every step. Printed by `clv run` /
`clv backfill` and attached, as the same text, to the `serving_snapshot` materialization in Dagster."""

from __future__ import annotations

import json

import polars as pl

from clv_pipeline.orchestration.cohort_changes import summarize as cohort_change_lines
from clv_pipeline.publication.contract import PUBLISHED_TABLES
from clv_pipeline.settings import Settings
from clv_pipeline.storage.layers import mart_table
from clv_pipeline.storage.warehouse import Warehouse


def _key_span(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]} … {keys[-1]}"


def model_lines(fit: pl.DataFrame) -> list[str]:
    """One line per fitted model: parameters (or why it was not fitted), log-likelihood and users,
    its backtest errors on the holdout (numeric `holdout_*` / `backtest_*` error columns of
    `model_fit`) and whether the run chose it (`chosen`)."""
    if fit.height == 0:
        return []
    error_columns = [
        c for c in fit.columns
        if c.startswith(("holdout_", "backtest")) and c.endswith(("error", "mae", "rmse")) and fit.schema[c].is_numeric()
    ]
    lines = []
    for (model,), group in fit.group_by("model", maintain_order=True):

        def first(column: str):
            values = group[column].drop_nulls() if column in group.columns else pl.Series([])
            return values[0] if values.len() else None

        params = ", ".join(f"{p}={v:.4g}" for p, v in zip(group["parameter"], group["value"]) if p is not None and v is not None)
        role = first("role")
        line = f"Model {model}{f' ({role})' if role else ''}: {params or first('message') or 'not fitted'}"
        details = [f"LL {first('log_likelihood'):.1f}"] if params and first("log_likelihood") is not None else []
        if params and first("n_users") is not None:
            details.append(f"{first('n_users')} users")
        if details:
            line += f" ({', '.join(details)})"
        errors = [f"{c.removeprefix('holdout_')} {first(c):.4g}" for c in error_columns if first(c) is not None]
        if errors:
            line += "; backtest " + ", ".join(errors)
        if "chosen" in group.columns and bool(group["chosen"].fill_null(False).any()):
            line += "  <- chosen"
        lines.append(line)
    if "chosen" not in fit.columns:
        lines.append("Model choice / backtest: not recorded in model_fit.")
    return lines


def run_report(summary, settings: Settings, in_progress: bool = False) -> str:
    lines = []
    status = "in progress" if in_progress else ("succeeded" if summary.success else "FAILED")
    timing = f"{summary.duration_seconds:.1f} s so far" if in_progress else f"in {summary.duration_seconds:.1f} s"
    lines.append(f"\nRun {status} {timing} ({len(summary.partitions)} delivery partitions requested).")
    if len(summary.run_ids) > 1:
        lines.append(f"  executed as {len(summary.run_ids)} Dagster runs (the partitions were not consecutive in the instance's order)")
    for note in summary.notes:
        lines.append(f"  {note}")
    if summary.partitions_loaded:
        lines.append("Partitions loaded:")
        for source, keys in summary.partitions_loaded.items():
            failed = summary.partitions_failed.get(source, [])
            span = _key_span(keys) if keys else "none"
            lines.append(f"  {source:<10} {len(keys):>4}  {span}" + (f"; {len(failed)} failed: {', '.join(failed)}" if failed else ""))
    elif not in_progress:
        lines.append("Partitions loaded: none.")
    for folder in summary.invalid_folders:
        lines.append(f"  invalid partition folder: {folder} (not YYYY-MM-DD)")
    for source, dates in summary.stale_partitions.items():
        shown = ", ".join(dates[:5]) + (f" and {len(dates) - 5} more" if len(dates) > 5 else "")
        if summary.pruned:
            lines.append(f"  dropped {len(dates)} {source} partition(s) whose delivery folder is gone: {shown}")
        else:
            lines.append(
                f"  WARNING: {len(dates)} {source} partition(s) loaded earlier are no longer in the landing folder and are "
                f"still used: {shown} (re-run with --prune-missing to drop them)"
            )
    for step, message in summary.failed_steps.items():
        lines.append(f"  step {step} failed: {message}")
    if summary.skipped_steps:
        lines.append(f"  not run (upstream failure or blocking check): {', '.join(sorted(summary.skipped_steps))}")
    passed = sum(c.passed for c in summary.checks)
    lines.append(f"Checks: {passed} passed, {len(summary.checks) - passed} did not pass.")
    for check in summary.checks_failed:
        detail = f" — {check.description}" if check.description else ""
        lines.append(f"  [{check.severity}] {check.asset}.{check.check}{detail}")
    if not settings.warehouse_path.exists():
        return "\n".join(lines)
    rebuilt = set(summary.step_seconds)
    with Warehouse.open(settings.warehouse_path, read_only=True) as wh:
        lines.append("Rows per table:")
        for name in PUBLISHED_TABLES:
            count = wh.count(mart_table(name)) if wh.table_exists(mart_table(name)) else None
            if name in rebuilt:
                lines.append(f"  {name:<18} {count:,}")
            elif count is not None:
                lines.append(f"  {name:<18} not rebuilt in this run (the warehouse keeps {count:,} rows from an earlier run)")
            else:
                lines.append(f"  {name:<18} not built")
        if not summary.success:
            lines.append("The figures below are from the warehouse as it stands, which may predate this run.")
        if wh.table_exists(mart_table("data_quality")):
            dq = wh.read(mart_table("data_quality"))
            if dq.height:
                totals = dq.group_by("source").agg(
                    *[pl.col(c).sum() for c in ("rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined", "rows_orphan")]
                ).sort("source")
                lines.append("Rows by source (read = loaded + duplicate + quarantined; orphans wait for their install):")
                for row in totals.iter_rows(named=True):
                    lines.append(
                        f"  {row['source']:<10} read {row['rows_read']:>9,}  loaded {row['rows_loaded']:>9,}  "
                        f"duplicate {row['rows_duplicate']:>6,}  quarantined {row['rows_quarantined']:>6,}  orphan {row['rows_orphan']:>6,}"
                    )
                reasons: dict[str, int] = {}
                for text in dq["quarantine_reasons"].to_list():
                    for reason, n in json.loads(text or "{}").items():
                        reasons[reason] = reasons.get(reason, 0) + n
                if reasons:
                    lines.append("Quarantine reasons: " + ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items())))
        if wh.table_exists(mart_table("model_fit")):
            lines.extend(model_lines(wh.read(mart_table("model_fit"))))
    if summary.cohort_changes is not None:
        lines.extend(cohort_change_lines(summary.cohort_changes))
    serving = settings.serving_db_path
    if in_progress:
        lines.append(f"Serving snapshot being published: {serving}")
    elif "serving_snapshot" in rebuilt:
        lines.append(f"Serving snapshot published: {serving}")
    elif serving.exists():
        lines.append(f"Serving snapshot NOT published by this run; the previous one stays: {serving}")
    else:
        lines.append("Serving snapshot not published (none exists yet).")
    docs = settings.data_docs_dir / "index.html"
    if docs.exists():
        lines.append(f"Great Expectations Data Docs: {docs.resolve().as_uri()}")
    if summary.step_seconds:
        steps = sorted(summary.step_seconds.items(), key=lambda kv: -kv[1])
        shown = [(k, v) for k, v in steps if v >= 0.05]
        quick = f" (+{len(steps) - len(shown)} steps under 0.05 s)" if len(shown) < len(steps) else ""
        lines.append("Duration per step (slowest first): " + ", ".join(f"{k} {v:.1f} s" for k, v in shown) + quick)
    return "\n".join(lines)
