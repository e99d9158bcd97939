"""Predicted customer lifetime value from a BG/NBD purchase model and a Gamma-Gamma spend model.

PRODUCT.md §5: predicted CLV per user = Σ over the horizon (default 365 days) of expected purchases
× expected net spend × margin, discounted at an annual rate (default 10 %).

Discounting convention: the horizon (T, T+H] after the observation end is cut into ``steps``
equal periods; the expected purchases of period k, E[X(t_k)] − E[X(t_{k−1})] with t_k = k·H/steps,
are discounted by (1+d)^(−m_k/365) where m_k is the period's midpoint in days from the
observation end ((k − ½)·H/steps time units × days per unit). With steps = 12 and H = 365 days
this is the usual "monthly cash flows in mid-month" convention. Spend per purchase is the
Gamma-Gamma conditional expectation, assumed constant over the horizon.

Sources: Fader, Hardie & Lee (2005) "RFM and CLV: Using Iso-value Curves", JMR 42(4), where
CLV = margin × E[spend] × discounted expected transactions (their DET); here DET is obtained by
summing discounted period increments of the BG/NBD conditional expectation.
"""

from __future__ import annotations

import math

import numpy as np

from clv_pipeline.models import bg_nbd, gamma_gamma
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.fitting import ModelInputError, compress_patterns
from clv_pipeline.models.gamma_gamma import GammaGammaParams
from clv_pipeline.models.rfm import TimeUnit, horizon_in_units, unit_days

DAYS_PER_YEAR = 365.0


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
    params: BetaGeoParams,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    horizon: float,
    steps: int,
    unit_days_: float,
    annual_discount_rate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(undiscounted E[X(horizon)], discounted expected purchases) per row, via unique patterns."""
    _check_settings(horizon, steps, unit_days_, annual_discount_rate)
    x, t_x, T = bg_nbd.validate_inputs(x, t_x, T)
    if len(x) == 0:
        return np.zeros(0), np.zeros(0)
    (ux, utx, uT), _, inverse = compress_patterns(x, t_x, T)
    steps = int(steps)
    period = horizon / steps
    previous = np.zeros(len(ux))
    discounted = np.zeros(len(ux))
    for k in range(1, steps + 1):
        cumulative = bg_nbd.expected_purchases(params, k * period, ux, utx, uT)
        mid_days = (k - 0.5) * period * unit_days_
        discounted += (cumulative - previous) * (1.0 + annual_discount_rate) ** (-mid_days / DAYS_PER_YEAR)
        previous = cumulative
    return previous[inverse], discounted[inverse]


def discounted_expected_purchases(
    params: BetaGeoParams,
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
    with E[X(t)|·] = ``bg_nbd.expected_purchases`` (FHL 2005 eq. 10). ``horizon`` is in the model's
    time unit; ``unit_days`` is the number of days in one unit (1 or 7). Computed once per unique
    (x, t_x, T) pattern and expanded back, so a million users cost as much as their patterns.
    """
    return _purchases_over_horizon(params, x, t_x, T, horizon, steps, unit_days, annual_discount_rate)[1]


def predicted_clv(
    params_bg: BetaGeoParams,
    params_gg: GammaGammaParams,
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

    Inputs are RFM summary columns (``rfm.rfm_summary``) in ``time_unit``. Returns arrays:

    * ``p_alive`` — BG/NBD P(alive | x, t_x, T);
    * ``expected_purchases`` — undiscounted E[repeat purchases in the horizon];
    * ``expected_spend`` — Gamma-Gamma conditional expected spend per purchase (the population
      mean for frequency = 0);
    * ``predicted_clv`` — discounted expected purchases × expected_spend × margin.
    """
    if not math.isfinite(margin):
        raise ModelInputError(f"margin must be finite, got {margin!r}")
    horizon = horizon_in_units(horizon_days, time_unit)
    x, t_x, T = bg_nbd.validate_inputs(frequency, recency, t)
    undiscounted, discounted = _purchases_over_horizon(
        params_bg, x, t_x, T, horizon, steps, unit_days(time_unit), annual_discount_rate
    )
    spend = gamma_gamma.conditional_expected_spend(params_gg, x, monetary_value)
    return {
        "p_alive": bg_nbd.p_alive(params_bg, x, t_x, T),
        "expected_purchases": undiscounted,
        "expected_spend": spend,
        "predicted_clv": discounted * spend * margin,
    }


def new_customer_value(
    params_bg: BetaGeoParams,
    params_gg: GammaGammaParams,
    horizon_days: float,
    time_unit: TimeUnit,
    annual_discount_rate: float,
    margin: float,
    steps: int = 12,
) -> float:
    """Discounted expected value of the *repeat* purchases of a customer whose first purchase is now.

        value = DET(x=0, t_x=0, T=0, horizon) · p·γ/(q−1) · margin
    The BG/NBD conditional expectation at x = t_x = T = 0 is the unconditional E[X(t)] of FHL
    (2005) eq. 9; spend is the Gamma-Gamma population mean. The first purchase itself is not
    included (the caller adds its expected value). Used for users who have not paid yet.
    """
    if not math.isfinite(margin):
        raise ModelInputError(f"margin must be finite, got {margin!r}")
    horizon = horizon_in_units(horizon_days, time_unit)
    det = discounted_expected_purchases(
        params_bg, 0.0, 0.0, 0.0, horizon, steps, unit_days(time_unit), annual_discount_rate
    )
    return float(det[0] * gamma_gamma.population_mean_spend(params_gg) * margin)
