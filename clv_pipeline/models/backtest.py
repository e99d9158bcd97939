"""Holdout backtest of purchase and spend models (PRODUCT.md §5 "Backtest").

A model is fitted on a calibration window (data up to ``calibration_end``) and its predictions for
the following holdout window are compared with what the calibration customers actually did:

Purchase models (per customer i with calibration history (x_i, t_x_i, T_i), holdout length H):
* predicted_i = E[Y_i(H) | x_i, t_x_i, T_i] (the model's conditional expectation), actual_i =
  purchase days in the holdout;
* **aggregate error** = (Σ predicted − Σ actual) / Σ actual;
* **per-user error**: MAE = mean |predicted_i − actual_i| and RMSE = √(mean (predicted_i − actual_i)²);
* **curve error**: the cumulative repeat-purchase curve Σ_i E[Y_i(t)] against the actual
  cumulative count, on a grid of holdout days; mean |predicted − actual| over the grid divided
  by the actual total at the end of the holdout.

Spend models (per customer with at least one holdout purchase day): predicted_i = expected spend
per purchase from the calibration fit, actual_i = mean net value of the customer's holdout
purchase days; aggregate error = (Σ predicted_i·n_i − Σ actual_i·n_i) / Σ actual_i·n_i with n_i
the holdout purchase days; MAE, RMSE as above.

Choosing between two purchase models: the RMSE criterion (squared error is minimised by the
conditional mean, which is what the models estimate — MAE would favour predicting the median,
mostly 0). A challenger replaces the incumbent only when its mean squared error is lower by more
than ``z`` standard errors of the paired per-customer differences (``significantly_better``), so
that noise does not flip the published model from one night to the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from clv_pipeline.models import clv
from clv_pipeline.models.fitting import compress_patterns


@dataclass(frozen=True)
class HoldoutScores:
    """Scores of one model on the holdout (see the module docstring); ``squared_errors`` are the
    per-customer squared errors in customer order (for paired comparisons, not published)."""

    n_users: int
    actual: float
    predicted: float
    aggregate_error: float | None
    mae: float | None
    rmse: float | None
    curve_error: float | None = None
    squared_errors: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


def curve_grid(holdout_days: int, max_points: int) -> np.ndarray:
    """Holdout days at which the cumulative curve is compared: ceil(j·H/J), j = 1…J, J = min(H, max_points)."""
    points = min(holdout_days, max_points)
    return np.unique(np.ceil(np.arange(1, points + 1) * holdout_days / points).astype(np.int64))


def _relative(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def purchase_scores(
    params: clv.PurchaseParams,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    holdout_frequency: np.ndarray,
    holdout_duration: float,
    curve_days: np.ndarray,
    curve_actual: np.ndarray,
    unit_days: float,
) -> HoldoutScores:
    """Scores of a purchase model fitted on the calibration window.

    ``curve_days`` (holdout days) and ``curve_actual`` (actual cumulative repeat purchases at those
    days) give the curve; times are converted to the model's unit with ``unit_days``.
    Expectations are computed once per distinct (x, t_x, T) pattern.
    """
    n = len(x)
    actual = np.asarray(holdout_frequency, dtype=np.float64)
    if n == 0:
        return HoldoutScores(0, 0.0, 0.0, None, None, None, None)
    module = clv.purchase_module(params)
    (ux, utx, uT), counts, inverse = compress_patterns(x, t_x, T)
    # E[Y(t) | x, t_x, T] = E[Y(t) | alive, x, T] × P(alive | x, t_x, T): P(alive) once per pattern,
    # the alive-expectation once per distinct (x, T) pair and horizon
    alive = module.p_alive(params, ux, utx, uT)
    (qx, qT), _, pair = compress_patterns(ux, uT)

    def expected(t: float) -> np.ndarray:
        return module.expected_purchases_alive(params, t, qx, qT)[pair] * alive

    predicted = expected(holdout_duration)[inverse]
    err = predicted - actual
    sq = err * err
    curve_pred = np.array([float(np.sum(counts * expected(d / unit_days))) for d in curve_days])
    total_actual = float(actual.sum())
    curve_error = _relative(float(np.mean(np.abs(curve_pred - curve_actual))), float(curve_actual[-1])) if len(curve_days) else None
    return HoldoutScores(
        n_users=n,
        actual=total_actual,
        predicted=float(predicted.sum()),
        aggregate_error=_relative(float(predicted.sum()) - total_actual, total_actual),
        mae=float(np.mean(np.abs(err))),
        rmse=math.sqrt(float(np.mean(sq))),
        curve_error=curve_error,
        squared_errors=sq,
    )


def spend_scores(
    params: clv.SpendParams,
    frequency: np.ndarray,
    monetary_value: np.ndarray,
    holdout_frequency: np.ndarray,
    holdout_monetary_value: np.ndarray,
) -> HoldoutScores:
    """Scores of a spend model fitted on the calibration window, on the customers with holdout
    purchase days (see the module docstring)."""
    buying = np.asarray(holdout_frequency) > 0
    n = int(np.count_nonzero(buying))
    if n == 0:
        return HoldoutScores(0, 0.0, 0.0, None, None, None)
    days = np.asarray(holdout_frequency, dtype=np.float64)[buying]
    actual = np.asarray(holdout_monetary_value, dtype=np.float64)[buying]
    predicted = clv.expected_spend(params, np.asarray(frequency)[buying], np.asarray(monetary_value)[buying])
    err = predicted - actual
    total_actual = float(np.sum(actual * days))
    total_predicted = float(np.sum(predicted * days))
    return HoldoutScores(
        n_users=n,
        actual=total_actual,
        predicted=total_predicted,
        aggregate_error=_relative(total_predicted - total_actual, total_actual),
        mae=float(np.mean(np.abs(err))),
        rmse=math.sqrt(float(np.mean(err * err))),
        squared_errors=err * err,
    )


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of squared errors: mean difference (incumbent − challenger; positive when
    the challenger is better), its standard error, and whether it exceeds ``z`` standard errors."""

    mean_difference: float
    standard_error: float
    better: bool


def significantly_better(challenger: HoldoutScores, incumbent: HoldoutScores, z: float) -> Comparison:
    """Is the challenger's mean squared error lower than the incumbent's by more than z standard
    errors of the per-customer differences d_i = e_inc,i² − e_ch,i²?"""
    d = incumbent.squared_errors - challenger.squared_errors
    if len(d) < 2:
        return Comparison(float(d.mean()) if len(d) else 0.0, math.inf, False)
    mean = float(np.mean(d))
    se = float(np.std(d, ddof=1)) / math.sqrt(len(d))
    return Comparison(mean, se, bool(mean > z * se and mean > 0))
