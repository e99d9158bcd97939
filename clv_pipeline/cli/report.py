"""The end-of-run summary: partitions, failed checks, rows per published table, quarantine
counts, the fitted models, and time per step."""

from __future__ import annotations

import json

import polars as pl

from clv_pipeline.publication.contract import PUBLISHED_TABLES
from clv_pipeline.settings import Settings
from clv_pipeline.storage.layers import mart_table
from clv_pipeline.storage.warehouse import Warehouse


def run_report(summary, settings: Settings) -> str:
    lines = []
    status = "succeeded" if summary.success else "FAILED"
    lines.append(f"\nRun {status} in {summary.duration_seconds:.1f} s ({len(summary.partitions)} delivery partitions).")
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
            fit = wh.read(mart_table("model_fit"))
            for model, group in fit.group_by("model", maintain_order=True):
                params = ", ".join(f"{p}={v:.4g}" for p, v in zip(group["parameter"], group["value"]) if p is not None)
                message = group["message"][0]
                lines.append(f"Model {model[0]}: {params or message}" + (f" (LL {group['log_likelihood'][0]:.1f}, {group['n_users'][0]} users)" if params else ""))
    serving = settings.serving_db_path
    if "serving_snapshot" in rebuilt:
        lines.append(f"Serving snapshot published: {serving}")
    elif serving.exists():
        lines.append(f"Serving snapshot NOT published by this run; the previous one stays: {serving}")
    else:
        lines.append("Serving snapshot not published (none exists yet).")
    slow = sorted(summary.step_seconds.items(), key=lambda kv: -kv[1])[:5]
    if slow:
        lines.append("Slowest steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in slow))
    return "\n".join(lines)
