"""BG/NBD ("beta-geometric / negative binomial distribution") model of repeat purchasing.

Source: P. S. Fader, B. G. S. Hardie and K. L. Lee (2005), "'Counting Your Customers' the Easy
Way: An Alternative to the Pareto/NBD Model", *Marketing Science* 24(2), 275-284 (equation
numbers below refer to that paper), and the companion note "Computing P(alive) Using the BG/NBD
Model" (Fader, Hardie & Lee 2008).

Model, for one customer whose clock starts at the first purchase (time 0, not counted):

* while alive, repeat purchases follow a Poisson process with rate λ;
* after each repeat purchase the customer drops out for good with probability p;
* across customers λ ~ Gamma(shape r, rate α) and p ~ Beta(a, b).

Data per customer: ``x`` repeat purchases (the BTYD ``frequency``), time of the last one ``t_x``
(the ``recency``; 0 when x = 0) and length of observation ``T`` (the ``t`` column), all in the same
time unit, which is the unit of 1/α.

Everything is computed in log space (``gammaln``, ``betaln``, ``logaddexp``) so that x in the
hundreds, or α of 10^6, neither overflows nor underflows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from clv_pipeline.models.fitting import (
    FitResult,
    ModelInputError,
    as_float_array,
    check_equal_lengths,
    compress_patterns,
    minimize_multistart,
    raise_first_bad,
)

PARAM_NAMES = ("r", "alpha", "a", "b")

#: Within this distance of a = 1 the factor G/(a-1) of the conditional expectation is a 0/0 form;
#: it is then linearly interpolated between a = 1 ± A_NEAR_ONE (interpolation error ~1e-8 relative).
A_NEAR_ONE = 1e-4


@dataclass(frozen=True)
class BetaGeoParams:
    """BG/NBD parameters: λ ~ Gamma(r, α) (α a rate, in 1/time unit), p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def __post_init__(self) -> None:
        for name in PARAM_NAMES:
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ModelInputError(f"BG/NBD parameter {name} must be finite and > 0, got {value!r}")
            object.__setattr__(self, name, value)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# input validation


def validate_inputs(x: object, t_x: object, T: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check and convert BG/NBD data arrays; raise ModelInputError naming the first bad row.

    Requirements: equal lengths, finite values, x a non-negative integer, 0 <= t_x <= T, and
    t_x == 0 when x == 0. Scalars are accepted and broadcast against the arrays.
    """
    x, t_x, T = np.broadcast_arrays(as_float_array("x", x), as_float_array("t_x", t_x), as_float_array("T", T))
    check_equal_lengths(x=x, t_x=t_x, T=T)
    finite = np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T)
    raise_first_bad(~finite, "x, t_x and T must be finite", x=x, t_x=t_x, T=T)
    raise_first_bad((x < 0) | (x != np.floor(x)), "x must be a non-negative integer", x=x, t_x=t_x, T=T)
    raise_first_bad((t_x < 0) | (t_x > T), "need 0 <= t_x <= T", x=x, t_x=t_x, T=T)
    raise_first_bad((x == 0) & (t_x != 0), "t_x must be 0 when x == 0", x=x, t_x=t_x, T=T)
    return np.ascontiguousarray(x), np.ascontiguousarray(t_x), np.ascontiguousarray(T)


# --------------------------------------------------------------------------------------------
# likelihood


def _ll_terms(r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
    """Log-likelihood pieces of FHL (2005) eq. 6, per row.

    L(r, α, a, b | x, t_x, T) = A1 · A2 · (A3 + δ_{x>0} A4) with
        ln A1 = ln Γ(r+x) − ln Γ(r) + r ln α
        ln A2 = ln B(a, b+x) − ln B(a, b)
        ln A3 = −(r+x) ln(α+T)
        ln A4 = ln a − ln(b+x−1) − (r+x) ln(α+t_x)          (only when x > 0)
    Returns (ll, lnA3, lnA4) with ll = ln A1 + ln A2 + logaddexp(ln A3, ln A4).
    """
    rx = r + x
    pos = x > 0
    b_x_1 = np.where(pos, b + x - 1.0, 1.0)  # b+x-1 > 0 whenever x >= 1
    ln_a1 = gammaln(rx) - gammaln(r) + r * np.log(alpha)
    ln_a2 = betaln(a, b + x) - betaln(a, b)
    ln_a3 = -rx * np.log(alpha + T)
    ln_a4 = np.where(pos, np.log(a) - np.log(b_x_1) - rx * np.log(alpha + t_x), -np.inf)
    return ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4), ln_a3, ln_a4


def individual_log_likelihood(params: BetaGeoParams, x: object, t_x: object, T: object) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood ln L(r, α, a, b | x, t_x, T) (FHL 2005, eq. 6).

    See ``_ll_terms`` for the formula as it is evaluated.
    """
    x, t_x, T = validate_inputs(x, t_x, T)
    ll, _, _ = _ll_terms(params.r, params.alpha, params.a, params.b, x, t_x, T)
    return ll


def log_likelihood(params: BetaGeoParams, x: object, t_x: object, T: object, weights: object | None = None) -> float:
    """Total BG/NBD log-likelihood Σ_i w_i ln L_i (FHL 2005, eq. 7); w_i = 1 by default."""
    ll = individual_log_likelihood(params, x, t_x, T)
    if weights is None:
        return float(np.sum(ll))
    w = as_float_array("weights", weights)
    check_equal_lengths(x=ll, weights=w)
    return float(np.dot(w, ll))


def log_likelihood_and_gradient(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Total log-likelihood and its analytic gradient w.r.t. (ln r, ln α, ln a, ln b).

    With L = ln A1 + ln A2 + logaddexp(ln A3, ln A4), w3 = A3/(A3+A4), w4 = A4/(A3+A4), ψ = digamma:
        ∂L/∂r = ψ(r+x) − ψ(r) + ln α − w3 ln(α+T) − w4 ln(α+t_x)
        ∂L/∂α = r/α − (r+x) [w3/(α+T) + w4/(α+t_x)]
        ∂L/∂a = ψ(a+b) − ψ(a+b+x) + w4/a
        ∂L/∂b = ψ(a+b) + ψ(b+x) − ψ(b) − ψ(a+b+x) − w4/(b+x−1)
    and ∂L/∂ln θ = θ ∂L/∂θ. Inputs are assumed validated.
    """
    r, alpha, a, b = np.exp(log_params)
    ll, ln_a3, ln_a4 = _ll_terms(r, alpha, a, b, x, t_x, T)
    lse = np.logaddexp(ln_a3, ln_a4)
    w3 = np.exp(ln_a3 - lse)
    w4 = np.exp(ln_a4 - lse)
    rx = r + x
    pos = x > 0
    b_x_1 = np.where(pos, b + x - 1.0, 1.0)
    ab = a + b
    d_r = digamma(rx) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - rx * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = digamma(ab) - digamma(ab + x) + w4 / a
    d_b = digamma(ab) + digamma(b + x) - digamma(b) - digamma(ab + x) - w4 / b_x_1
    grad = np.array([np.dot(weights, d) for d in (d_r, d_alpha, d_a, d_b)]) * np.array([r, alpha, a, b])
    return float(np.dot(weights, ll)), grad


# --------------------------------------------------------------------------------------------
# fit


def fit(x: object, t_x: object, T: object, *, weights: object | None = None) -> FitResult[BetaGeoParams]:
    """Maximum-likelihood fit of the BG/NBD model (FHL 2005, eq. 7).

    The data are compressed to unique (x, t_x, T) patterns with counts (customers sharing a
    pattern contribute identical terms), the mean negative log-likelihood per customer is
    minimised over the log-parameters with L-BFGS-B and the analytic gradient, from four
    deterministic starting points, and the best optimum is kept. ``weights`` (optional) are
    frequency weights, e.g. when the caller already aggregated customers into patterns.
    """
    x, t_x, T = validate_inputs(x, t_x, T)
    if len(x) == 0:
        raise ModelInputError("cannot fit the BG/NBD model on zero customers")
    w_in = None
    if weights is not None:
        w_in = as_float_array("weights", weights)
        check_equal_lengths(x=x, weights=w_in)
        raise_first_bad(~np.isfinite(w_in) | (w_in < 0), "weights must be finite and >= 0", weights=w_in)
    (ux, utx, uT), counts, _ = compress_patterns(x, t_x, T, weights=w_in)
    total_w = float(counts.sum())
    if total_w <= 0:
        raise ModelInputError("weights sum to zero")

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = log_likelihood_and_gradient(log_params, ux, utx, uT, counts)
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(log_params)
        return -ll / total_w, -grad / total_w

    # mean repeat rate per unit time: a rough scale for α = r / rate
    rate = float(np.dot(counts, ux) / max(np.dot(counts, uT), 1e-12))
    rate = min(max(rate, 1e-6), 1e6)
    starts = [
        (1.0, 1.0, 1.0, 1.0),
        (0.5, 0.5 / rate, 1.0, 3.0),
        (1.0, 1.0 / rate, 0.5, 1.0),
        (2.0, 2.0 / rate, 2.0, 8.0),
    ]
    log_best, converged, message, nit = minimize_multistart(objective, starts, PARAM_NAMES)
    if not np.all(np.isfinite(log_best)):
        raise ModelInputError(f"BG/NBD fit failed: {message}")
    params = BetaGeoParams(*np.exp(log_best))
    ll_total, _ = log_likelihood_and_gradient(log_best, ux, utx, uT, counts)
    return FitResult(
        params=params,
        log_likelihood=ll_total,
        n_users=int(round(total_w)) if weights is not None else len(x),
        converged=converged,
        message=message,
        iterations=nit,
        n_patterns=len(ux),
    )


# --------------------------------------------------------------------------------------------
# predictions


def _log_dropout_odds(params: BetaGeoParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """ln of δ_{x>0} · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x); −inf when x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    pos = x > 0
    b_x_1 = np.where(pos, b + x - 1.0, 1.0)
    return np.where(pos, np.log(a) - np.log(b_x_1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)), -np.inf)


def p_alive(params: BetaGeoParams, x: object, t_x: object, T: object) -> np.ndarray:
    """Probability that a customer with history (x, t_x, T) is still alive at T.

    FHL (2008) note, eq. 2 (and FHL 2005 eq. 10's denominator):
        P(alive | x, t_x, T) = 1 / (1 + δ_{x>0} · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))
    evaluated as exp(−logaddexp(0, ln of the second term)); exactly 1 for x = 0 (under BG/NBD a
    customer can only drop out right after a repeat purchase).
    """
    x, t_x, T = validate_inputs(x, t_x, T)
    return np.exp(-np.logaddexp(0.0, _log_dropout_odds(params, x, t_x, T)))


def _g_over_a_minus_1_raw(r: float, alpha: float, a: float, b: float, x: np.ndarray, T: np.ndarray, t: np.ndarray):
    """[1 − (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z)] / (a−1) with z = t/(α+T+t).

    1 − (1−z)^(a−1) F is evaluated as −(expm1((a−1) ln(1−z)) · F + (F − 1)), ln(1−z) as
    −log1p(t/(α+T)), to keep precision when z is small.
    """
    log1m_z = -np.log1p(t / (alpha + T))
    z = -np.expm1(log1m_z)
    f = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    g = -(np.expm1((a - 1.0) * log1m_z) * f + (f - 1.0))
    return g / (a - 1.0)


def _g_over_a_minus_1(r: float, alpha: float, a: float, b: float, x: np.ndarray, T: np.ndarray, t: np.ndarray):
    """As ``_g_over_a_minus_1_raw``, but interpolated in a across the removable 0/0 at a = 1."""
    if abs(a - 1.0) >= A_NEAR_ONE:
        return _g_over_a_minus_1_raw(r, alpha, a, b, x, T, t)
    lo = _g_over_a_minus_1_raw(r, alpha, 1.0 - A_NEAR_ONE, b, x, T, t)
    hi = _g_over_a_minus_1_raw(r, alpha, 1.0 + A_NEAR_ONE, b, x, T, t)
    return lo + (a - (1.0 - A_NEAR_ONE)) / (2 * A_NEAR_ONE) * (hi - lo)


def expected_purchases(params: BetaGeoParams, t: object, x: object, t_x: object, T: object) -> np.ndarray:
    """Conditional expected number of repeat purchases in (T, T+t] given (x, t_x, T).

    FHL (2005) eq. 10:
        E[Y(t) | x, t_x, T] = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; z)]
                              / (1 + δ_{x>0} · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)),   z = t/(α+T+t).
    The power and the hypergeometric function of the numerator are replaced by Euler's
    transformation 2F1(A, B; C; z) = (1−z)^(C−A−B) 2F1(C−A, C−B; C; z), which gives
        ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; z) = (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z)
    and avoids huge powers / slowly converging series for large x. The denominator is computed
    as exp(logaddexp(0, ·)). ``t`` may be a scalar or an array broadcastable with x.
    """
    x, t_x, T = validate_inputs(x, t_x, T)
    t = as_float_array("t", t)
    x, t_x, T, t = np.broadcast_arrays(x, t_x, T, t)
    raise_first_bad(~np.isfinite(t) | (t < 0), "t must be finite and >= 0", t=t)
    p = params
    g = _g_over_a_minus_1(p.r, p.alpha, p.a, p.b, x, T, t)
    return (p.a + p.b + x - 1.0) * g * np.exp(-np.logaddexp(0.0, _log_dropout_odds(p, x, t_x, T)))


def expected_purchases_new_customer(params: BetaGeoParams, t: object) -> np.ndarray:
    """Unconditional expected number of repeat purchases in (0, t] of a customer just born.

    FHL (2005) eq. 9:
        E[X(t)] = (a+b−1)/(a−1) · [1 − (α/(α+t))^r · 2F1(r, b; a+b−1; t/(α+t))]
    which is eq. 10 at x = t_x = T = 0; evaluated through the same Euler-transformed form.
    """
    t = as_float_array("t", t)
    raise_first_bad(~np.isfinite(t) | (t < 0), "t must be finite and >= 0", t=t)
    zeros = np.zeros_like(t)
    return expected_purchases(params, t, zeros, zeros, zeros)


def _expected_purchases_direct(params: BetaGeoParams, t: object, x: object, t_x: object, T: object) -> np.ndarray:
    """Reference implementation of FHL (2005) eq. 10 in its original (untransformed) form.

    For tests only: it overflows / loses precision for large x; ``expected_purchases`` is the
    function to use.
    """
    x, t_x, T = validate_inputs(x, t_x, T)
    t = np.asarray(t, dtype=np.float64)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    power = ((alpha + T) / (alpha + T + t)) ** (r + x)
    num = (a + b + x - 1) / (a - 1) * (1 - power * hyp2f1(r + x, b + x, a + b + x - 1, z))
    den = 1 + (x > 0) * a / np.where(x > 0, b + x - 1, 1.0) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return num / den
