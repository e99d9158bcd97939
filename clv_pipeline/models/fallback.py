"""Simple estimates used when a model cannot be fitted (too few repeat buyers, no variance, no
convergence, an undefined mean spend): transparent closed forms that always exist, so that no
prediction is left null or NaN, and labelled so that nobody mistakes them for model output.

* **pooled_rate** (purchase process): every customer repeats at the pooled observed rate
      λ̂ = Σ x_i / Σ T_i
  (repeat purchase days per unit of observed time after the first purchase, over all customers),
  for ever: no heterogeneity and no dropout. E[Y(t)] = λ̂·t for everyone. Without dropout it
  overstates long horizons, so treat it as an upper-end figure; it has no notion of P(alive)
  (the pipeline publishes P(alive) as null for it). When no customer has been observed for any
  time (Σ T = 0), nothing has been seen to repeat and λ̂ = 0.
* **mean_spend** (spend per purchase): the pooled mean net value of all purchase days,
      m̂ = Σ_i (first purchase value_i + x_i · m̄_i) / Σ_i (x_i + 1),
  the same for every customer (no shrinkage towards the customer's own mean).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from clv_pipeline.models.fitting import (
    ModelInputError,
    as_float_array,
    broadcast_lengths,
    raise_first_bad,
    validate_horizon,
    validate_purchase_history,
)


@dataclass(frozen=True)
class PooledRateParams:
    """Pooled repeat-purchase rate per time unit (>= 0)."""

    rate: float

    def __post_init__(self) -> None:
        value = float(self.rate)
        if not (math.isfinite(value) and value >= 0):
            raise ModelInputError(f"pooled rate must be finite and >= 0, got {value!r}")
        object.__setattr__(self, "rate", value)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class MeanSpendParams:
    """Pooled mean net value of a purchase day (>= 0; 0 when every purchase day was free)."""

    mean: float

    def __post_init__(self) -> None:
        value = float(self.mean)
        if not (math.isfinite(value) and value >= 0):
            raise ModelInputError(f"mean spend must be finite and >= 0, got {value!r}")
        object.__setattr__(self, "mean", value)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def fit_pooled_rate(x: object, t_x: object, T: object) -> PooledRateParams:
    """λ̂ = Σ x / Σ T over validated purchase histories (0 when Σ T = 0)."""
    x, _, T = validate_purchase_history(x, t_x, T)
    exposure = float(np.sum(T))
    return PooledRateParams(float(np.sum(x)) / exposure if exposure > 0 else 0.0)


def fit_mean_spend(frequency: object, monetary_value: object, first_purchase_value: object) -> MeanSpendParams:
    """m̂ = Σ (first + x·m̄) / Σ (x + 1): the mean over every purchase day of every customer."""
    x, m, first = broadcast_lengths(
        frequency=as_float_array("frequency", frequency),
        monetary_value=as_float_array("monetary_value", monetary_value),
        first_purchase_value=as_float_array("first_purchase_value", first_purchase_value),
    )
    raise_first_bad(~(np.isfinite(x) & np.isfinite(m) & np.isfinite(first)), "spend inputs must be finite", frequency=x)
    raise_first_bad((x < 0) | (x != np.floor(x)), "frequency must be a non-negative integer", frequency=x)
    raise_first_bad((m < 0) | (first < 0), "purchase values must be >= 0", monetary_value=m, first_purchase_value=first)
    days = float(np.sum(x + 1.0))
    if days == 0:
        raise ModelInputError("mean spend needs at least one purchase day")
    return MeanSpendParams(float(np.sum(first + x * m)) / days)


def p_alive(params: PooledRateParams, x: object, t_x: object, T: object) -> np.ndarray:
    """The pooled-rate estimate has no dropout: 1 for every customer (published as null)."""
    x, _, _ = validate_purchase_history(x, t_x, T)
    return np.ones(len(x))


def expected_purchases_alive(params: PooledRateParams, t: object, x: object, T: object) -> np.ndarray:
    """λ̂·t whatever the history."""
    x, T, t = broadcast_lengths(x=as_float_array("x", x), T=as_float_array("T", T), t=validate_horizon(t))
    return params.rate * t


def expected_purchases(params: PooledRateParams, t: object, x: object, t_x: object, T: object) -> np.ndarray:
    """λ̂·t whatever the history."""
    x, t_x, T = validate_purchase_history(x, t_x, T)
    x, t = broadcast_lengths(x=x, t=validate_horizon(t))
    return params.rate * t


def expected_purchases_new_customer(params: PooledRateParams, t: object) -> np.ndarray:
    return params.rate * validate_horizon(t)


def expected_spend(params: MeanSpendParams, frequency: object) -> np.ndarray:
    """m̂ for every customer."""
    return np.full(len(as_float_array("frequency", frequency)), params.mean)
