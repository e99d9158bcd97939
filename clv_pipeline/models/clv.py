"""Predicted customer lifetime value from a purchase model and a spend model.

PRODUCT.md §5: predicted CLV per user = Σ over the horizon (default 365 days) of expected purchases
× expected net spend × margin, discounted at an annual rate (default 10 %).

Purchase models: BG/NBD, MBG/NBD, Pareto/NBD, or the pooled-rate fallback (``fallback``); spend
models: Gamma-Gamma or the mean-spend fallback. The functions dispatch on the parameter type.

Discounting convention: the horizon (T, T+H] after the observation end is cut into ``steps``
equal periods; the expected purchases of period k, E[X(t_k)] − E[X(t_{k−1})] with t_k = k·H/steps,
are discounted by (1+d)^(−m_k/365) where m_k is the period's midpoint in days from the
observation end ((k − ½)·H/steps time units × days per unit). With steps = 12 and H = 365 days
this is the usual "monthly cash flows in mid-month" convention. Spend per purchase is the spend
model's conditional expectation, assumed constant over the horizon.

Computation: every purchase model's conditional expectation factorises as
E[Y(t) | x, t_x, T] = E[Y(t) | alive at T, x, T] × P(alive | x, t_x, T), and the first factor
depends on (x, T) only. It is evaluated once per distinct (x, T) pair and step — the expensive
hypergeometric part — and P(alive) once per distinct (x, t_x, T) pattern, so a million customers
cost as much as their few tens of thousands of (x, T) pairs.

Sources: Fader, Hardie & Lee (2005) "RFM and CLV: Using Iso-value Curves", JMR 42(4), where
CLV = margin × E[spend] × discounted expected transactions (their DET); here DET is obtained by
summing discounted period increments of the model's conditional expectation.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Union

import numpy as np

from clv_pipeline.models import bg_nbd, fallback, gamma_gamma, mbg_nbd, pareto_nbd
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.fallback import MeanSpendParams, PooledRateParams
from clv_pipeline.models.fitting import ModelInputError, compress_patterns
from clv_pipeline.models.gamma_gamma import GammaGammaParams
from clv_pipeline.models.mbg_nbd import ModifiedBetaGeoParams
from clv_pipeline.models.pareto_nbd import ParetoNBDParams
from clv_pipeline.models.rfm import TimeUnit, horizon_in_units, unit_days

DAYS_PER_YEAR = 365.0

PurchaseParams = Union[BetaGeoParams, ModifiedBetaGeoParams, ParetoNBDParams, PooledRateParams]
SpendParams = Union[GammaGammaParams, MeanSpendParams]

#: Purchase model name -> module with p_alive, expected_purchases(_alive), …
PURCHASE_MODULES: dict[type, tuple[str, ModuleType]] = {
    BetaGeoParams: ("bg_nbd", bg_nbd),
    ModifiedBetaGeoParams: ("mbg_nbd", mbg_nbd),
    ParetoNBDParams: ("pareto_nbd", pareto_nbd),
    PooledRateParams: ("pooled_rate", fallback),
}
SPEND_MODELS: dict[type, str] = {GammaGammaParams: "gamma_gamma", MeanSpendParams: "mean_spend"}


def purchase_module(params: PurchaseParams) -> ModuleType:
    """The module implementing the purchase model of ``params``."""
    try:
        return PURCHASE_MODULES[type(params)][1]
    except KeyError:
        raise ModelInputError(f"not a purchase model's parameters: {params!r}") from None


def model_name(params: PurchaseParams | SpendParams) -> str:
    """'bg_nbd', 'mbg_nbd', 'pareto_nbd', 'pooled_rate', 'gamma_gamma' or 'mean_spend'."""
    if type(params) in PURCHASE_MODULES:
        return PURCHASE_MODULES[type(params)][0]
    if type(params) in SPEND_MODELS:
        return SPEND_MODELS[type(params)]
    raise ModelInputError(f"unknown model parameters: {params!r}")


def expected_spend(params: SpendParams, frequency: object, monetary_value: object) -> np.ndarray:
    """Expected net spend per future purchase: Gamma-Gamma's conditional expectation, or m̂."""
    if isinstance(params, GammaGammaParams):
        return gamma_gamma.conditional_expected_spend(params, frequency, monetary_value)
    if isinstance(params, MeanSpendParams):
        return fallback.expected_spend(params, frequency)
    raise ModelInputError(f"not a spend model's parameters: {params!r}")


def population_mean_spend(params: SpendParams) -> float:
    """Expected spend per purchase of a customer with no repeat-spend history."""
    if isinstance(params, GammaGammaParams):
        return gamma_gamma.population_mean_spend(params)
    if isinstance(params, MeanSpendParams):
        return params.mean
    raise ModelInputError(f"not a spend model's parameters: {params!r}")


def _check_settings(horizon: float, steps: int, unit_days_: float, annual_discount_rate: float) -> None:
    if not (math.isfinite(horizon) and horizon >= 0):
        raise ModelInputError(f"horizon must be finite and >= 0, got {horizon!r}")
    if int(steps) != steps or steps < 1:
        raise ModelInputError(f"steps must be a positive integer, got {steps!r}")
    if not (math.isfinite(unit_days_) and unit_days_ > 0):
        raise ModelInputError(f"unit_days must be finite and > 0, got {unit_days_!r}")
    if not (math.isfinite(annual_discount_rate) and annual_discount_rate > -1):
        raise ModelInputError(f"annual_discount_rate must be finite and > -1, got {annual_discount_rate!r}")


def _purchases_over_horizon(
    params: PurchaseParams,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    horizon: float,
    steps: int,
    unit_days_: float,
    annual_discount_rate: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(alive), undiscounted E[X(horizon)], discounted expected purchases) per row.

    The alive-expectations are computed per distinct (x, T) pair, P(alive) per distinct
    (x, t_x, T) pattern, and both expanded back to the rows.
    """
    _check_settings(horizon, steps, unit_days_, annual_discount_rate)
    module = purchase_module(params)
    x, t_x, T = bg_nbd.validate_inputs(x, t_x, T)
    if len(x) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    (px, ptx, pT), _, pattern_of_row = compress_patterns(x, t_x, T)
    alive = module.p_alive(params, px, ptx, pT)
    (qx, qT), _, pair_of_pattern = compress_patterns(px, pT)
    steps = int(steps)
    period = horizon / steps
    previous = np.zeros(len(qx))
    discounted = np.zeros(len(qx))
    for k in range(1, steps + 1):
        cumulative = module.expected_purchases_alive(params, k * period, qx, qT)
        mid_days = (k - 0.5) * period * unit_days_
        discounted += (cumulative - previous) * (1.0 + annual_discount_rate) ** (-mid_days / DAYS_PER_YEAR)
        previous = cumulative
    pattern_total = previous[pair_of_pattern] * alive
    pattern_discounted = discounted[pair_of_pattern] * alive
    return alive[pattern_of_row], pattern_total[pattern_of_row], pattern_discounted[pattern_of_row]


def discounted_expected_purchases(
    params: PurchaseParams,
    x: object,
    t_x: object,
    T: object,
    horizon: float,
    steps: int,
    unit_days: float,
    annual_discount_rate: float,
) -> np.ndarray:
    """Discounted expected repeat purchases in (T, T+horizon] given (x, t_x, T).

        DET = Σ_{k=1..steps} (E[X(t_k)|·] − E[X(t_{k−1})|·]) · (1+d)^(−m_k/365),
        t_k = k·horizon/steps (time units),  m_k = (k−½)·horizon/steps·unit_days (days)
    with E[X(t)|·] the purchase model's conditional expectation. ``horizon`` is in the model's
    time unit; ``unit_days`` is the number of days in one unit (1 or 7).
    """
    return _purchases_over_horizon(params, x, t_x, T, horizon, steps, unit_days, annual_discount_rate)[2]


def predicted_clv(
    purchase_params: PurchaseParams,
    spend_params: SpendParams,
    frequency: object,
    recency: object,
    t: object,
    monetary_value: object,
    horizon_days: float,
    time_unit: TimeUnit,
    annual_discount_rate: float,
    margin: float,
    steps: int = 12,
) -> dict[str, np.ndarray]:
    """Per-user predictions over the next ``horizon_days`` days after the observation end.

    Inputs are RFM summary columns (``rfm.rfm_summary``) in ``time_unit``; the horizon is given in
    days and converted (``rfm.horizon_in_units``). Returns arrays:

    * ``p_alive`` — the purchase model's P(alive | x, t_x, T) (1 for the pooled-rate fallback);
    * ``expected_purchases`` — undiscounted E[repeat purchases in the horizon];
    * ``expected_spend`` — expected net spend per purchase (Gamma-Gamma: the population mean for
      frequency = 0);
    * ``predicted_clv`` — discounted expected purchases × expected_spend × margin.
    """
    if not math.isfinite(margin):
        raise ModelInputError(f"margin must be finite, got {margin!r}")
    horizon = horizon_in_units(horizon_days, time_unit)
    x, t_x, T = bg_nbd.validate_inputs(frequency, recency, t)
    alive, undiscounted, discounted = _purchases_over_horizon(
        purchase_params, x, t_x, T, horizon, steps, unit_days(time_unit), annual_discount_rate
    )
    spend = expected_spend(spend_params, x, monetary_value)
    return {
        "p_alive": alive,
        "expected_purchases": undiscounted,
        "expected_spend": spend,
        "predicted_clv": discounted * spend * margin,
    }


def new_customer_value(
    purchase_params: PurchaseParams,
    spend_params: SpendParams,
    horizon_days: float,
    time_unit: TimeUnit,
    annual_discount_rate: float,
    margin: float,
    steps: int = 12,
) -> float:
    """Discounted expected value of the *repeat* purchases of a customer whose first purchase is now.

        value = DET(x=0, t_x=0, T=0, horizon) · population mean spend · margin
    The conditional expectation at x = t_x = T = 0 is the model's unconditional E[X(t)] (FHL 2005
    eq. 9 for BG/NBD). The first purchase itself is not included (the caller adds its expected
    value). Used for users who have not paid yet.
    """
    if not math.isfinite(margin):
        raise ModelInputError(f"margin must be finite, got {margin!r}")
    horizon = horizon_in_units(horizon_days, time_unit)
    det = discounted_expected_purchases(
        purchase_params, 0.0, 0.0, 0.0, horizon, steps, unit_days(time_unit), annual_discount_rate
    )
    return float(det[0] * population_mean_spend(spend_params) * margin)


def expected_purchases_new_customer(params: PurchaseParams, t: object) -> np.ndarray:
    """Unconditional E[X(t)] of a customer born now, for any purchase model."""
    return purchase_module(params).expected_purchases_new_customer(params, t)


def expected_purchases(params: PurchaseParams, t: object, x: object, t_x: object, T: object) -> np.ndarray:
    """Conditional E[Y(t) | x, t_x, T] for any purchase model."""
    return purchase_module(params).expected_purchases(params, t, x, t_x, T)


def p_alive(params: PurchaseParams, x: object, t_x: object, T: object) -> np.ndarray:
    """P(alive | x, t_x, T) for any purchase model."""
    return purchase_module(params).p_alive(params, x, t_x, T)
