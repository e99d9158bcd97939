"""Order-independent aggregation of floats.

Polars may sum the rows of a group in a different order from run to run (parallel group-by),
and float addition is not associative, so a plain float sum can differ in its last bits between
two runs on the same data. Values here carry at most 6 meaningful decimals (USD micro-units,
probabilities rounded to 1e-6), so they are summed as whole micro-units in Int64 — exact,
hence identical on every run.
"""

from __future__ import annotations

import polars as pl

MICRO = 1_000_000


def micro_units(expr: pl.Expr) -> pl.Expr:
    return (expr.cast(pl.Float64) * MICRO).round(0).cast(pl.Int64)


def exact_sum(expr: pl.Expr) -> pl.Expr:
    """Sum rounded to 1e-6, independent of row order (null when every value is null)."""
    units = micro_units(expr)
    return pl.when(units.count() > 0).then(units.sum().cast(pl.Float64) / MICRO).otherwise(None)


def exact_mean(expr: pl.Expr) -> pl.Expr:
    """Mean of values rounded to 1e-6, independent of row order (nulls ignored)."""
    units = micro_units(expr)
    return pl.when(units.count() > 0).then(units.sum().cast(pl.Float64) / units.count() / MICRO).otherwise(None)
