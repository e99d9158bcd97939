"""Gamma-Gamma model of spend per transaction.

Sources: P. S. Fader, B. G. S. Hardie and K. L. Lee (2005), "RFM and CLV: Using Iso-value Curves
for Customer Base Analysis", *Journal of Marketing Research* 42(4), 415-430; and B. G. S. Hardie
and P. S. Fader (2013), "The Gamma-Gamma Model of Monetary Value" (note; equation numbers below
refer to it).

Model: the value z of each transaction of a customer is Gamma(shape p, rate ν) — mean p/ν — and
ν ~ Gamma(shape q, rate γ) across customers; spend is independent of the purchase process. The
observed quantity for a customer with x repeat transactions is their mean value m̄ = (z_1+…+z_x)/x.

Only repeat transactions are modelled (``frequency`` = x and ``monetary_value`` = m̄ of the RFM
summary), as in the sources: the first purchase is left out because it is often atypical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import digamma, gammaln

from clv_pipeline.models.fitting import (
    FitResult,
    ModelInputError,
    PositiveParams,
    as_float_array,
    broadcast_lengths,
    check_equal_lengths,
    compress_patterns,
    minimize_multistart,
    raise_first_bad,
    wsum,
    x_levels,
)

PARAM_NAMES = ("p", "q", "gamma")


@dataclass(frozen=True)
class GammaGammaParams(PositiveParams):
    """Gamma-Gamma parameters: z ~ Gamma(p, ν), ν ~ Gamma(q, γ) (γ in the currency unit)."""

    MODEL: ClassVar[str] = "Gamma-Gamma"

    p: float
    q: float
    gamma: float


def validate_inputs(frequency: object, monetary_value: object) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert (frequency, monetary_value); raise ModelInputError naming the first bad row.

    Requirements: equal lengths, finite values, frequency a non-negative integer and
    monetary_value >= 0 (its value is ignored where frequency == 0).
    """
    x, m = broadcast_lengths(
        frequency=as_float_array("frequency", frequency),
        monetary_value=as_float_array("monetary_value", monetary_value),
    )
    raise_first_bad(
        ~(np.isfinite(x) & np.isfinite(m)), "frequency and monetary_value must be finite", frequency=x, monetary_value=m
    )
    raise_first_bad(
        (x < 0) | (x != np.floor(x)), "frequency must be a non-negative integer", frequency=x, monetary_value=m
    )
    raise_first_bad(m < 0, "monetary_value must be >= 0", frequency=x, monetary_value=m)
    return np.ascontiguousarray(x), np.ascontiguousarray(m)


def _individual_ll(p: float, q: float, gamma: float, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """ln f(m̄ | x; p, q, γ) for x > 0, m̄ > 0 (Hardie & Fader 2013, eq. 3, density of the mean):

        f(m̄ | x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q · (m̄ x)^(px−1) · x / (γ + m̄ x)^(px+q)
    i.e. ln f = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m̄ + px ln x − (px+q) ln(γ+m̄x).
    """
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )


def _usable(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    return (x > 0) & (m > 0)


def individual_log_likelihood(params: GammaGammaParams, frequency: object, monetary_value: object) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood (see ``_individual_ll``); NaN where frequency == 0
    or monetary_value == 0 (those customers carry no spend information and are not modelled)."""
    x, m = validate_inputs(frequency, monetary_value)
    ok = _usable(x, m)
    out = np.full(len(x), np.nan)
    out[ok] = _individual_ll(params.p, params.q, params.gamma, x[ok], m[ok])
    return out


def log_likelihood(
    params: GammaGammaParams, frequency: object, monetary_value: object, weights: object | None = None
) -> float:
    """Total Gamma-Gamma log-likelihood over the customers with frequency > 0 and monetary_value > 0."""
    ll = individual_log_likelihood(params, frequency, monetary_value)
    w = np.ones(len(ll)) if weights is None else as_float_array("weights", weights)
    check_equal_lengths(frequency=ll, weights=w)
    ok = ~np.isnan(ll)
    return float(wsum(w[ok], ll[ok]))


@dataclass(frozen=True)
class _SpendData:
    """Compressed (x, m̄) data with the per-evaluation-constant sums of the likelihood.

    Per customer the likelihood needs, besides functions of x, only ln m̄ (constant) and
    ln(γ + m̄x): so Σ w (px − 1) ln m̄ = p Σ w x ln m̄ − Σ w ln m̄ is two precomputed sums, and one
    log and one division per pattern remain per evaluation.
    """

    x: np.ndarray
    total: np.ndarray  # m̄·x: the customer's total repeat spend
    weights: np.ndarray
    wx: np.ndarray
    sum_w_log_m: float
    sum_wx_log_m: float
    levels: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def build(cls, x: np.ndarray, m: np.ndarray, weights: np.ndarray, levels=None, log_m=None) -> "_SpendData":
        log_m = np.log(m) if log_m is None else log_m
        wx = weights * x
        return cls(
            x, m * x, weights, wx, wsum(weights, log_m), wsum(wx, log_m), x_levels(x, weights) if levels is None else levels
        )


def log_likelihood_and_gradient(
    log_params: np.ndarray,
    x: np.ndarray,
    m: np.ndarray,
    weights: np.ndarray,
    levels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    log_m: np.ndarray | None = None,
    data: _SpendData | None = None,
) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its analytic gradient w.r.t. (ln p, ln q, ln γ); x > 0, m > 0 assumed.

    With S = m̄x:
        ∂/∂p = x [ψ(px+q) − ψ(px) + ln x] + x [ln m̄ − ln(γ+S)]
        ∂/∂q = ψ(px+q) − ψ(q) + ln γ − ln(γ+S)
        ∂/∂γ = q/γ − (px+q)/(γ+S)
    and ∂/∂ln θ = θ ∂/∂θ. The special functions depend on x only and are evaluated once per
    distinct x (``levels`` as from ``fitting.x_levels``); ``data`` may pass the precomputed sums.
    """
    D = _SpendData.build(x, m, weights, levels, log_m) if data is None else data
    p, q, gamma = np.exp(log_params)
    lv, _, w_lv = D.levels
    # per distinct x
    plv = p * lv
    psi_plv_q = digamma(plv + q)
    lv_ll = gammaln(plv + q) - gammaln(plv) - gammaln(q) + q * np.log(gamma) + plv * np.log(lv)
    # per pattern: one log and one division
    log_gs = np.log(gamma + D.total)
    inv_gs = 1.0 / (gamma + D.total)
    sum_w_log = wsum(D.weights, log_gs)
    sum_wx_log = wsum(D.wx, log_gs)
    sum_w_inv = wsum(D.weights, inv_gs)
    sum_wx_inv = wsum(D.wx, inv_gs)
    ll = wsum(w_lv, lv_ll) + p * D.sum_wx_log_m - D.sum_w_log_m - p * sum_wx_log - q * sum_w_log
    d_p = wsum(w_lv, lv * (psi_plv_q - digamma(plv) + np.log(lv))) + D.sum_wx_log_m - sum_wx_log
    d_q = wsum(w_lv, psi_plv_q - digamma(q) + np.log(gamma)) - sum_w_log
    d_g = w_lv.sum() * q / gamma - (p * sum_wx_inv + q * sum_w_inv)
    return float(ll), np.array([d_p * p, d_q * q, d_g * gamma])


def fit(frequency: object, monetary_value: object, *, weights: object | None = None) -> FitResult[GammaGammaParams]:
    """Maximum-likelihood fit of the Gamma-Gamma model.

    Uses only the customers with frequency > 0 **and** monetary_value > 0 (one-time buyers carry
    no information on repeat spend, and the model's support is positive values); ``n_users`` of
    the result is their number. Identical (x, m̄) pairs are compressed into weighted patterns; the
    mean negative log-likelihood is minimised over the log-parameters with L-BFGS-B and its
    analytic gradient from three deterministic starts, keeping the best.
    """
    x, m = validate_inputs(frequency, monetary_value)
    w_in = None
    if weights is not None:
        w_in = as_float_array("weights", weights)
        check_equal_lengths(frequency=x, weights=w_in)
        raise_first_bad(~np.isfinite(w_in) | (w_in < 0), "weights must be finite and >= 0", weights=w_in)
    ok = _usable(x, m)
    if not np.any(ok):
        raise ModelInputError("Gamma-Gamma needs at least one customer with frequency > 0 and monetary_value > 0")
    (ux, um), counts, _ = compress_patterns(x[ok], m[ok], weights=None if w_in is None else w_in[ok])
    total_w = float(counts.sum())
    if total_w <= 0:
        raise ModelInputError("weights of the usable customers sum to zero")

    data = _SpendData.build(ux, um, counts)

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = log_likelihood_and_gradient(log_params, ux, um, counts, data=data)
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(log_params)
        return -ll / total_w, -grad / total_w

    mean_m = float(wsum(counts, um) / total_w)
    # starts chosen so that the implied population mean p·γ/(q−1) equals the sample mean
    starts = [(p0, q0, mean_m * (q0 - 1.0) / p0) for p0, q0 in ((1.0, 2.0), (5.0, 4.0), (0.5, 1.5))]
    log_best, converged, message, nit = minimize_multistart(objective, starts, PARAM_NAMES, total_w, ridges=((1, 2),))
    if not np.all(np.isfinite(log_best)):
        raise ModelInputError(f"Gamma-Gamma fit failed: {message}")
    ll_total, _ = log_likelihood_and_gradient(log_best, ux, um, counts, data=data)
    return FitResult(
        params=GammaGammaParams(*np.exp(log_best)),
        log_likelihood=ll_total,
        n_users=int(round(total_w)) if weights is not None else int(np.count_nonzero(ok)),
        converged=converged,
        message=message,
        iterations=nit,
        n_patterns=len(ux),
    )


def population_mean_spend(params: GammaGammaParams) -> float:
    """Mean spend per transaction across the population, E[p/ν] = p·γ/(q−1) (defined for q > 1)."""
    if params.q <= 1:
        raise ModelInputError(
            f"Gamma-Gamma population mean spend p·γ/(q−1) is undefined (infinite) for q = {params.q:.6g} <= 1"
        )
    return params.p * params.gamma / (params.q - 1.0)


def conditional_expected_spend(params: GammaGammaParams, frequency: object, monetary_value: object) -> np.ndarray:
    """Expected spend per transaction of a customer given x repeat purchases of mean value m̄.

    Hardie & Fader (2013), eq. 5 (FHL 2005 "RFM and CLV", eq. 3):
        E[Z | p, q, γ, m̄, x] = p (γ + m̄ x) / (p x + q − 1)
                              = (q−1)/(px+q−1) · p γ/(q−1) + px/(px+q−1) · m̄,
    a weighted average of the population mean and the customer's own mean. For frequency = 0 it
    is the population mean p·γ/(q−1) (m̄ is then ignored); this and any row with px + q ≤ 1 raise
    ModelInputError when the mean is undefined.
    """
    x, m = validate_inputs(frequency, monetary_value)
    p, q, gamma = params.p, params.q, params.gamma
    if np.any(x == 0):
        population_mean_spend(params)  # raises if q <= 1
    denom = p * x + q - 1.0
    raise_first_bad(denom <= 0, f"expected spend undefined where p·x + q <= 1 (p={p:.6g}, q={q:.6g})", frequency=x)
    m_eff = np.where(x > 0, m, 0.0)
    return p * (gamma + m_eff * x) / denom
