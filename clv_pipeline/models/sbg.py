"""Shifted-beta-geometric (sBG) model of contractual (subscription) retention.

Sources: P. S. Fader and B. G. S. Hardie (2007), "How to Project Customer Retention", *Journal of
Interactive Marketing* 21(1), 76-90 ("FH 2007"); and (2010) "Customer-Base Valuation in a
Contractual Setting: The Perils of Ignoring Heterogeneity", *Marketing Science* 29(1), 85-93
("FH 2010") for the discounted expected residual lifetime.

Model: time is discrete (renewal periods t = 1, 2, …). A customer who is active at the start of
a period cancels at its end with probability θ, constant over time for that customer, and
θ ~ Beta(α, β) across customers. With T the period in which the customer churns:

    P(T = t)  = B(α+1, β+t−1) / B(α, β)                           (FH 2007, eq. 5)
    S(t)      = P(T > t) = B(α, β+t) / B(α, β)                    (FH 2007, eq. 6)
    r_t       = S(t)/S(t−1) = (β+t−1)/(α+β+t−1)                   (retention rate, eq. 8)

Data: the number of customers still active at the start of periods 0, 1, …, n (a cohort's
survivor counts, non-increasing). Period t loses n_{t−1} − n_t customers; the n_last still
active are right-censored. Log-likelihood (FH 2007, eq. 7):

    LL(α, β) = Σ_{t=1}^{n} (n_{t−1} − n_t) ln P(T = t) + n_n ln S(n),

maximised over (ln α, ln β) with the analytic gradient (digamma differences of the betaln
terms), from deterministic starting points, as for the other models.

Discounted expected residual lifetime (FH 2010, eq. 6), for a customer who has made n−1
renewals and is about to decide on the n-th, with payments at the start of each period and
discount rate d per period:

    DERL(d | α, β, n) = Σ_{t=n}^{∞} S(t)/S(n−1) · (1+d)^−(t−n)
                      = B(α, β+n)/B(α, β+n−1) · 2F1(1, β+n; α+β+n; 1/(1+d)).

The 2F1 series has positive terms with ratio (β+n+j)/(α+β+n+j) · 1/(1+d) < 1/(1+d) and is summed
directly (d > 0 is required: with d = 0 the expected lifetime is infinite when α <= 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import betaln, digamma

from clv_pipeline.models.fitting import (
    FitResult,
    ModelInputError,
    PositiveParams,
    as_float_array,
    minimize_multistart,
    raise_first_bad,
)

PARAM_NAMES = ("alpha", "beta")
#: Relative size of the last 2F1 term at which the DERL series stops.
SERIES_TOL = 1e-17


@dataclass(frozen=True)
class ShiftedBetaGeoParams(PositiveParams):
    """sBG parameters: the per-period churn probability θ ~ Beta(α, β)."""

    MODEL: ClassVar[str] = "sBG"

    alpha: float
    beta: float

    @property
    def mean_churn(self) -> float:
        """E[θ] = α/(α+β): the churn probability of the first period."""
        return self.alpha / (self.alpha + self.beta)


def validate_survivors(active: object) -> np.ndarray:
    """Survivor counts n_0, n_1, …: at least two, finite, integer, >= 0, non-increasing, n_0 > 0."""
    n = as_float_array("active", active)
    if len(n) < 2:
        raise ModelInputError(f"need the active counts of at least two period starts, got {len(n)}")
    raise_first_bad(~np.isfinite(n) | (n < 0) | (n != np.floor(n)), "active counts must be integers >= 0", active=n)
    if n[0] <= 0:
        raise ModelInputError("the cohort must start with at least one active customer (active[0] > 0)")
    increase = np.zeros(len(n), dtype=bool)
    increase[1:] = n[1:] > n[:-1]
    raise_first_bad(increase, "active counts must not increase from one period to the next", active=n)
    return n


def _ll_and_grad(alpha: float, beta: float, n: np.ndarray) -> tuple[float, np.ndarray]:
    """LL (FH 2007 eq. 7) and its gradient w.r.t. (α, β), using
        ln P(T=t) = ln B(α+1, β+t−1) − ln B(α, β),   ln S(t) = ln B(α, β+t) − ln B(α, β),
        ∂ ln B(p, q)/∂p = ψ(p) − ψ(p+q),             ∂ ln B(p, q)/∂q = ψ(q) − ψ(p+q)."""
    periods = len(n) - 1
    t = np.arange(1, periods + 1, dtype=np.float64)
    churned = n[:-1] - n[1:]
    last = n[-1]
    lb = betaln(alpha, beta)
    ln_p = betaln(alpha + 1.0, beta + t - 1.0) - lb
    ln_s = betaln(alpha, beta + periods) - lb
    ll = float(np.sum(churned * ln_p) + last * ln_s)
    d_lb_a = digamma(alpha) - digamma(alpha + beta)
    d_lb_b = digamma(beta) - digamma(alpha + beta)
    d_p_a = digamma(alpha + 1.0) - digamma(alpha + beta + t) - d_lb_a
    d_p_b = digamma(beta + t - 1.0) - digamma(alpha + beta + t) - d_lb_b
    d_s_a = digamma(alpha) - digamma(alpha + beta + periods) - d_lb_a
    d_s_b = digamma(beta + periods) - digamma(alpha + beta + periods) - d_lb_b
    grad = np.array(
        [float(np.sum(churned * d_p_a) + last * d_s_a), float(np.sum(churned * d_p_b) + last * d_s_b)]
    )
    return ll, grad


def log_likelihood(params: ShiftedBetaGeoParams, active: object) -> float:
    """sBG log-likelihood of survivor counts (FH 2007, eq. 7)."""
    return _ll_and_grad(params.alpha, params.beta, validate_survivors(active))[0]


def fit(active: object) -> FitResult[ShiftedBetaGeoParams]:
    """Maximum-likelihood sBG fit to a cohort's survivor counts n_0 >= n_1 >= … (FH 2007).

    ``n_users`` of the result is n_0. Fitting needs some churn and some survivors' information:
    a cohort where nobody churned (or everybody churned in period 1) has no finite optimum and is
    reported as not converged.
    """
    n = validate_survivors(active)
    n0 = float(n[0])

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = np.exp(log_params)
        ll, grad = _ll_and_grad(float(a), float(b), n)
        if not np.isfinite(ll):
            return np.inf, np.zeros(2)
        return -ll / n0, -grad * np.array([a, b]) / n0

    churn_1 = max((n[0] - n[1]) / n[0], 1e-3)
    starts = [(1.0, 1.0), (churn_1, 1.0 - churn_1 + 1e-3), (0.5, 3.0)]
    log_best, converged, message, nit = minimize_multistart(objective, starts, PARAM_NAMES, n0)
    if not np.all(np.isfinite(log_best)):
        raise ModelInputError(f"sBG fit failed: {message}")
    a, b = np.exp(log_best)
    if n[-1] == n[0] or n[1] == 0:
        converged = False
        message = "no churn, or everybody churned in the first period: the sBG likelihood has no finite maximum; " + message
    return FitResult(
        params=ShiftedBetaGeoParams(float(a), float(b)),
        log_likelihood=_ll_and_grad(float(a), float(b), n)[0],
        n_users=int(n0),
        converged=converged,
        message=message,
        iterations=nit,
        n_patterns=len(n) - 1,
    )


def _periods(t: object) -> np.ndarray:
    t = as_float_array("t", t)
    raise_first_bad(~np.isfinite(t) | (t < 0) | (t != np.floor(t)), "periods must be integers >= 0", t=t)
    return t


def churn_probability(params: ShiftedBetaGeoParams, t: object) -> np.ndarray:
    """P(T = t) = B(α+1, β+t−1)/B(α, β) for periods t >= 1 (0 for t = 0)."""
    t = _periods(t)
    a, b = params.alpha, params.beta
    with np.errstate(invalid="ignore"):
        out = np.exp(betaln(a + 1.0, b + np.maximum(t, 1.0) - 1.0) - betaln(a, b))
    return np.where(t >= 1, out, 0.0)


def survival(params: ShiftedBetaGeoParams, t: object) -> np.ndarray:
    """S(t) = P(still active after t periods) = B(α, β+t)/B(α, β); S(0) = 1."""
    t = _periods(t)
    return np.exp(betaln(params.alpha, params.beta + t) - betaln(params.alpha, params.beta))


def retention_rate(params: ShiftedBetaGeoParams, t: object) -> np.ndarray:
    """r_t = S(t)/S(t−1) = (β+t−1)/(α+β+t−1) for t >= 1: increasing in t (the survivors are
    increasingly the low-churn customers)."""
    t = _periods(t)
    raise_first_bad(t < 1, "retention rates are defined for periods t >= 1", t=t)
    return (params.beta + t - 1.0) / (params.alpha + params.beta + t - 1.0)


def discounted_expected_residual_lifetime(params: ShiftedBetaGeoParams, discount_rate: float, renewals: object) -> np.ndarray:
    """DERL(d | α, β, n) for customers who have made ``renewals`` = n − 1 renewals (FH 2010, eq. 6),
    in periods (payments at period starts, the imminent one undiscounted); d per period, > 0.

        DERL = (β+n−1)/(α+β+n−1) · Σ_j (β+n)_j/(α+β+n)_j · (1+d)^−j
    (B(α, β+n)/B(α, β+n−1) = (β+n−1)/(α+β+n−1)), the series summed term by term until the next
    term is below SERIES_TOL of the sum. For a customer just acquired (first payment now, no
    renewal decision yet) use ``discounted_expected_lifetime``.
    """
    if not (math.isfinite(discount_rate) and discount_rate > 0):
        raise ModelInputError(f"discount_rate must be finite and > 0 (per period), got {discount_rate!r}")
    renewals = _periods(renewals)
    n = renewals + 1.0
    a, b = params.alpha, params.beta
    delta = 1.0 / (1.0 + discount_rate)
    bb = b + n
    cc = a + b + n
    total = np.ones_like(n)
    term = np.ones_like(n)
    j = 0
    while True:
        term = term * (bb + j) / (cc + j) * delta
        total = total + term
        j += 1
        if np.all(term <= SERIES_TOL * total):
            break
    return (b + n - 1.0) / (a + b + n - 1.0) * total


def discounted_expected_lifetime(params: ShiftedBetaGeoParams, discount_rate: float) -> float:
    """DEL = Σ_{t>=1} S(t−1) (1+d)^−(t−1) = 2F1(1, β; α+β; 1/(1+d)) (FH 2010, eq. 3): expected
    discounted number of payments of a customer just acquired (first payment now).

    Computed as 1 + DERL(d | renewals = 0)/(1+d): the first payment is certain, the rest is the
    residual lifetime at the first renewal decision, one period later."""
    derl = discounted_expected_residual_lifetime(params, discount_rate, [0])[0]
    return float(1.0 + derl / (1.0 + discount_rate))
