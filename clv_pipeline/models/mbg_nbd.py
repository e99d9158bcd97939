"""MBG/NBD ("modified" BG/NBD) model of repeat purchasing.

Source: E. P. Batislam, M. Denizel and A. Filiztekin (2007), "Empirical validation and comparison
of models for customer base analysis", *International Journal of Research in Marketing* 24(3),
201-209; the same model as the "periodic death opportunity" variant of Jerath, Fader & Hardie.

The BG/NBD model lets a customer drop out only right after a *repeat* purchase, so a customer
who never came back is certainly alive (P(alive) = 1 whatever the silence). MBG/NBD adds a
dropout opportunity right after the first purchase (time 0):

* while alive, repeat purchases follow a Poisson process with rate λ ~ Gamma(shape r, rate α);
* after every purchase, the first one included, the customer drops out for good with
  probability p ~ Beta(a, b).

Likelihood (Batislam et al. 2007, eq. 4), for x repeat purchases, last one at t_x, observed to T:

    L = A1 · A2 · (A3 + A4)
    ln A1 = ln Γ(r+x) − ln Γ(r) + r ln α
    ln A2 = ln B(a, b+x+1) − ln B(a, b)
    ln A3 = −(r+x) ln(α+T)                           (alive at T: survived x+1 dropout draws)
    ln A4 = ln a − ln(b+x) − (r+x) ln(α+t_x)        (dropped out right after the last purchase)

(compared with BG/NBD, B(a, b+x) becomes B(a, b+x+1) and A4 exists for x = 0 too.)

Predictions:
    P(alive | x, t_x, T) = 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x))
    E[Y(t) | x, t_x, T] = (a+b+x)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z)] · P(alive),
                          z = t/(α+T+t)
The bracket is the BG/NBD one with b replaced by b+1, so it is evaluated by the same
Euler-transformed, overflow-free code (``bg_nbd._g_over_a_minus_1``). At x = t_x = T = 0 this is
the unconditional E[X(t)] = b/(a−1) · [1 − (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import betaln, digamma, gammaln

from clv_pipeline.models import bg_nbd
from clv_pipeline.models.fitting import (
    FitResult,
    PositiveParams,
    as_float_array,
    broadcast_lengths,
    fit_purchase_model,
    validate_horizon,
    validate_purchase_history,
    validate_weights,
    wsum,
    x_levels,
)

PARAM_NAMES = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class ModifiedBetaGeoParams(PositiveParams):
    """MBG/NBD parameters: λ ~ Gamma(shape r, rate α), p ~ Beta(a, b) (α in the time unit)."""

    MODEL: ClassVar[str] = "MBG/NBD"

    r: float
    alpha: float
    a: float
    b: float


#: (x, t_x, T) checks shared by the purchase models (see ``fitting.validate_purchase_history``).
validate_inputs = validate_purchase_history


def log_likelihood_and_gradient(
    log_params: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    levels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[float, np.ndarray]:
    """Σ w ln L and its analytic gradient w.r.t. (ln r, ln α, ln a, ln b).

    With w3 = A3/(A3+A4), w4 = A4/(A3+A4), ψ = digamma:
        ∂/∂r = ψ(r+x) − ψ(r) + ln α − w3 ln(α+T) − w4 ln(α+t_x)
        ∂/∂α = r/α − (r+x) [w3/(α+T) + w4/(α+t_x)]
        ∂/∂a = ψ(a+b) − ψ(a+b+x+1) + w4/a
        ∂/∂b = ψ(b+x+1) − ψ(a+b+x+1) − ψ(b) + ψ(a+b) − w4/(b+x)
    Terms depending on x only are evaluated once per distinct x. Inputs are assumed validated.
    """
    r, alpha, a, b = np.exp(log_params)
    lv, inv, w_lv = x_levels(x, weights) if levels is None else levels
    ab = a + b
    lv_ln_a12 = gammaln(r + lv) - gammaln(r) + r * np.log(alpha) + betaln(a, b + lv + 1.0) - betaln(a, b)
    lv_log_b_x = np.log(b + lv)
    rx = r + x
    log_a_T = np.log(alpha + T)
    log_a_tx = np.log(alpha + t_x)
    ln_a3 = -rx * log_a_T
    ln_a4 = np.log(a) - lv_log_b_x[inv] - rx * log_a_tx
    lse = np.logaddexp(ln_a3, ln_a4)
    w3 = np.exp(ln_a3 - lse)
    w4 = np.exp(ln_a4 - lse)
    ll = wsum(w_lv, lv_ln_a12) + wsum(weights, lse)
    d_r = wsum(w_lv, digamma(r + lv) - digamma(r) + np.log(alpha)) - wsum(weights, w3 * log_a_T + w4 * log_a_tx)
    d_alpha = w_lv.sum() * r / alpha - wsum(weights, rx * (w3 / (alpha + T) + w4 / (alpha + t_x)))
    d_a = wsum(w_lv, digamma(ab) - digamma(ab + lv + 1.0)) + wsum(weights, w4) / a
    d_b = wsum(w_lv, digamma(b + lv + 1.0) - digamma(ab + lv + 1.0) - digamma(b) + digamma(ab)) - wsum(
        weights, w4 / (b + x)
    )
    return float(ll), np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])


def individual_log_likelihood(params: ModifiedBetaGeoParams, x: object, t_x: object, T: object) -> np.ndarray:
    """Per-customer MBG/NBD log-likelihood (see the module docstring)."""
    x, t_x, T = validate_inputs(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    ln_a12 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x + 1.0) - betaln(a, b)
    ln_a3 = -(r + x) * np.log(alpha + T)
    ln_a4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + t_x)
    return ln_a12 + np.logaddexp(ln_a3, ln_a4)


def log_likelihood(
    params: ModifiedBetaGeoParams, x: object, t_x: object, T: object, weights: object | None = None
) -> float:
    """Total MBG/NBD log-likelihood Σ_i w_i ln L_i."""
    ll = individual_log_likelihood(params, x, t_x, T)
    w = validate_weights(weights, len(ll))
    return float(np.sum(ll)) if w is None else wsum(w, ll)


def fit(x: object, t_x: object, T: object, *, weights: object | None = None) -> FitResult[ModifiedBetaGeoParams]:
    """Maximum-likelihood fit of the MBG/NBD model (same procedure as ``bg_nbd.fit``)."""
    return fit_purchase_model(
        "MBG/NBD",
        ModifiedBetaGeoParams,
        PARAM_NAMES,
        x,
        t_x,
        T,
        weights,
        lambda lp, p: log_likelihood_and_gradient(lp, p.x, p.t_x, p.T, p.weights, (p.x_levels, p.x_index, p.x_weights)),
        bg_nbd._starts,
    )


def _log_dropout_odds(params: ModifiedBetaGeoParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """ln of a/(b+x) · ((α+T)/(α+t_x))^(r+x)."""
    p = params
    return np.log(p.a) - np.log(p.b + x) + (p.r + x) * (np.log(p.alpha + T) - np.log(p.alpha + t_x))


def p_alive(params: ModifiedBetaGeoParams, x: object, t_x: object, T: object) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x)), via logaddexp. Unlike
    BG/NBD it is below 1 for one-time buyers and falls with their silence."""
    x, t_x, T = validate_inputs(x, t_x, T)
    return np.exp(-np.logaddexp(0.0, _log_dropout_odds(params, x, t_x, T)))


def expected_purchases_alive(params: ModifiedBetaGeoParams, t: object, x: object, T: object) -> np.ndarray:
    """Expected repeat purchases in (T, T+t] of a customer alive at T with x repeat purchases:
    (a+b+x)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z)]."""
    x, T, t = broadcast_lengths(x=as_float_array("x", x), T=as_float_array("T", T), t=validate_horizon(t))
    p = params
    return bg_nbd._non_negative((p.a + p.b + x) * bg_nbd._g_over_a_minus_1(p.r, p.alpha, p.a, p.b + 1.0, x, T, t))


def expected_purchases(params: ModifiedBetaGeoParams, t: object, x: object, t_x: object, T: object) -> np.ndarray:
    """Conditional expected repeat purchases in (T, T+t] (see the module docstring)."""
    x, t_x, T = validate_inputs(x, t_x, T)
    x, t_x, T, t = broadcast_lengths(x=x, t_x=t_x, T=T, t=validate_horizon(t))
    p = params
    g = bg_nbd._g_over_a_minus_1(p.r, p.alpha, p.a, p.b + 1.0, x, T, t)
    return bg_nbd._non_negative((p.a + p.b + x) * g * np.exp(-np.logaddexp(0.0, _log_dropout_odds(p, x, t_x, T))))


def expected_purchases_new_customer(params: ModifiedBetaGeoParams, t: object) -> np.ndarray:
    """Unconditional E[X(t)] = b/(a−1) · [1 − (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))] (the
    conditional expectation at x = t_x = T = 0)."""
    t = validate_horizon(t)
    zeros = np.zeros_like(t)
    return expected_purchases(params, t, zeros, zeros, zeros)
