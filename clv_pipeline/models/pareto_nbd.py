"""Pareto/NBD model of repeat purchasing ("counting your customers").

Sources: D. C. Schmittlein, D. G. Morrison and R. Colombo (1987), "Counting Your Customers: Who
Are They and What Will They Do Next?", *Management Science* 33(1), 1-24; P. S. Fader and
B. G. S. Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related Expressions"
(brucehardie.com note 009; "FH note" below), and P. S. Fader, B. G. S. Hardie and K. L. Lee
(2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", *JMR* 42(4).

Model, for one customer whose clock starts at the first purchase (time 0, not counted):

* while alive, repeat purchases follow a Poisson process with rate λ;
* the lifetime is exponential with rate μ (the customer can die at any time, unlike BG/NBD
  where dropout happens only right after a purchase);
* across customers λ ~ Gamma(shape r, rate α) and μ ~ Gamma(shape s, rate β), independent.

Data per customer: ``x`` repeat purchases, time of the last one ``t_x`` (0 when x = 0) and the
length of observation ``T``, in one time unit (the unit of 1/α and 1/β).

Likelihood. Integrating over λ and μ (FH note, eq. 10-11; the derivation conditions on the
lifetime τ: alive throughout (0, T], or dead at some τ in (t_x, T]):

    L(r, α, s, β | x, t_x, T) = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^-(r+x) (β+T)^-s  +  s · I ]
    I = ∫_{t_x}^{T} (α+τ)^-(r+x) (β+τ)^-(s+1) dτ = G(t_x) − G(T),   G(τ) = ∫_τ^∞ (same integrand).

The published closed form of I (FH note, eq. 22: a difference of two Gauss hypergeometric
functions divided by powers of max(α, β) + t) overflows for large x or α and converges slowly
when α and β differ much. Here G is evaluated in log space in one of two ways:

* **series** (when z <= ``Z_SERIES``): with M = max(α, β), z = |α − β| / (M + τ), K = r + s + x,
      G(τ) = (M+τ)^-K / K · 2F1(K, b; K+1; z),   b = s+1 if α >= β, else r+x,
  and Euler's transformation 2F1(K, b; K+1; z) = (1−z)^(1−b) 2F1(1, K+1−b; K+1; z) gives a
  series of positive, decreasing terms (ratio < z) — no cancellation, no overflow:
      α >= β:  ln G = −(r+x) ln(α+τ) − s ln(β+τ)       − ln K + ln 2F1(1, r+x; K+1; z)
      α <  β:  ln G = −(r+x−1) ln(α+τ) − (s+1) ln(β+τ) − ln K + ln 2F1(1, s+1; K+1; z)
  Its parameter derivatives are summed alongside (forward mode), giving the analytic gradient;
* **quadrature** (z(t_x) > ``Z_SERIES``, i.e. α and β far apart relative to t_x — e.g. the
  optimiser heading for s, β → ∞, a homogeneous dropout rate): I itself over [t_x, T], by the
  log-space Gauss–Legendre scheme of ``quadrature.log_integral``, whose weights give the
  gradient as integrand-weighted means of ∂ ln(integrand)/∂θ.

Both are accurate to ~1e-12 (tested against each other and against adaptive quadrature). With
the series, ln I = ln G(t_x) + ln(1 − G(T)/G(t_x)); ln L is assembled with log-sum-exp.

Predictions (FH note): P(alive), conditional and unconditional expected purchases, and the
probability of n purchases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import digamma, exprel, gammaln

from clv_pipeline.models import quadrature
from clv_pipeline.models.fitting import (
    FitResult,
    ModelInputError,
    PositiveParams,
    as_float_array,
    broadcast_lengths,
    compress_patterns,
    fit_purchase_model,
    softplus_and_logistic,
    validate_horizon,
    validate_purchase_history,
    validate_weights,
    wsum,
)

PARAM_NAMES = ("r", "alpha", "s", "beta")

#: Largest z = |α−β| / (max(α,β) + τ) for which G(τ) is summed as a series; beyond it the
#: integral is computed by quadrature. The terms fall at least as fast as z^n: at z = 0.95 at most
#: ~760 terms, usually far fewer (rows leave the loop as they converge).
Z_SERIES = 0.95
#: Relative size of the last series term at which summation stops.
SERIES_TOL = 1e-17


@dataclass(frozen=True)
class ParetoNBDParams(PositiveParams):
    """Pareto/NBD parameters: λ ~ Gamma(shape r, rate α), μ ~ Gamma(shape s, rate β).

    α and β are in the model's time unit (mean purchase rate r/α, mean dropout rate s/β per
    unit); converting a weekly model to days multiplies α and β by 7.
    """

    MODEL: ClassVar[str] = "Pareto/NBD"

    r: float
    alpha: float
    s: float
    beta: float


#: (x, t_x, T) checks shared by the purchase models (see ``fitting.validate_purchase_history``).
validate_inputs = validate_purchase_history


# --------------------------------------------------------------------------------------------
# G(τ) = ∫_τ^∞ (α+v)^-(r+x) (β+v)^-(s+1) dv and its gradient w.r.t. (r, α, s, β)


def _log_h_series(r: float, alpha: float, s: float, beta: float, x: np.ndarray, tau: np.ndarray):
    """h(τ) = ln(G(τ)/f(τ)) and ∂h/∂(r, α, s, β) by the Euler-transformed series, where
    f(τ) = (α+τ)^-(r+x) (β+τ)^-(s+1) is the integrand at the lower limit. From the module
    docstring's forms: h = ln(β+τ) − ln K + ln S (α >= β), h = ln(α+τ) − ln K + ln S (α < β) —
    moderate numbers whatever the size of r, x, s (no exponent multiplies a logarithm).

    With b' = r+x (α >= β) or s+1 (α < β), c' = K+1 and terms t_0 = 1,
    t_{n+1} = t_n (b'+n)/(c'+n) z, the series S = Σ t_n has
        ∂ ln S/∂b' = Σ t_n Σ_{j<n} 1/(b'+j) / S,  ∂ ln S/∂c' = −Σ t_n Σ_{j<n} 1/(c'+j) / S,
        ∂ ln S/∂z = Σ n t_n / (z S)   (accumulated as Σ n q_n with q_n = t_n / z, so z = 0 is fine),
    and z depends on α, β: for α >= β, ∂z/∂α = (β+τ)/(α+τ)², ∂z/∂β = −1/(α+τ); for α < β,
    ∂z/∂α = −1/(β+τ), ∂z/∂β = (α+τ)/(β+τ)².
    """
    a_ge_b = alpha >= beta
    K = r + s + x
    log_a_tau = np.log(alpha + tau)
    log_b_tau = np.log(beta + tau)
    if a_ge_b:
        z = (alpha - beta) / (alpha + tau)
        b_prime = r + x
    else:
        z = (beta - alpha) / (beta + tau)
        b_prime = np.full_like(tau, s + 1.0)
    c_prime = K + 1.0
    n_rows = len(tau)
    total = np.ones(n_rows)
    s_b = np.zeros(n_rows)
    s_c = np.zeros(n_rows)
    s_z = np.zeros(n_rows)  # Σ n t_n / z
    # running state of the rows still summing (compacted as rows finish)
    idx = np.arange(n_rows)
    term = np.ones(n_rows)
    db = np.zeros(n_rows)  # Σ_{j<n} 1/(b'+j) for the current n
    dc = np.zeros(n_rows)
    bp, cp, zz = np.broadcast_to(b_prime, (n_rows,)).copy(), c_prime.copy(), z.copy()
    tot, sb, sc, sz = total.copy(), s_b.copy(), s_c.copy(), s_z.copy()
    n = 0
    while len(idx):
        db = db + 1.0 / (bp + n)
        dc = dc + 1.0 / (cp + n)
        q = term * ((bp + n) / (cp + n))  # t_{n+1} / z
        term = q * zz
        n += 1
        tot = tot + term
        sb = sb + term * db
        sc = sc - term * dc
        sz = sz + n * q
        if n % 8 == 0 or n > 20_000:
            active = term > SERIES_TOL * tot
            if not np.all(active):
                done = ~active
                total[idx[done]], s_b[idx[done]], s_c[idx[done]], s_z[idx[done]] = tot[done], sb[done], sc[done], sz[done]
                keep = active
                idx, term, db, dc, bp, cp, zz = idx[keep], term[keep], db[keep], dc[keep], bp[keep], cp[keep], zz[keep]
                tot, sb, sc, sz = tot[keep], sb[keep], sc[keep], sz[keep]
            if n > 20_000 and len(idx):  # z <= Z_SERIES makes this unreachable; a guard against misuse
                raise ModelInputError("Pareto/NBD series did not converge")
    log_s = np.log(total)
    d_b, d_c, d_z = s_b / total, s_c / total, s_z / total
    if a_ge_b:
        h = log_b_tau - np.log(K) + log_s
        d_r = -1.0 / K + d_b + d_c
        d_s = -1.0 / K + d_c
        d_alpha = d_z * (beta + tau) / (alpha + tau) ** 2
        d_beta = 1.0 / (beta + tau) - d_z / (alpha + tau)
    else:
        h = log_a_tau - np.log(K) + log_s
        d_r = -1.0 / K + d_c
        d_s = -1.0 / K + d_b + d_c
        d_alpha = 1.0 / (alpha + tau) - d_z / (beta + tau)
        d_beta = d_z * (alpha + tau) / (beta + tau) ** 2
    return h, np.stack([d_r, d_alpha, d_s, d_beta])


def _log_f(r: float, alpha: float, s: float, beta: float, x: np.ndarray, tau: np.ndarray):
    """ln f(τ) = −(r+x) ln(α+τ) − (s+1) ln(β+τ) and its gradient (absolute; for tests)."""
    la, lb = np.log(alpha + tau), np.log(beta + tau)
    return -(r + x) * la - (s + 1.0) * lb, np.stack([-la, -(r + x) / (alpha + tau), -lb, -(s + 1.0) / (beta + tau)])


def _log_g_series(r: float, alpha: float, s: float, beta: float, x: np.ndarray, tau: np.ndarray):
    """ln G(τ) (absolute) and its gradient from the series: h + ln f(τ) (tests and comparisons)."""
    h, dh = _log_h_series(r, alpha, s, beta, x, tau)
    lf, dlf = _log_f(r, alpha, s, beta, x, tau)
    return h + lf, dh + dlf


def _log_g_quadrature(r: float, alpha: float, s: float, beta: float, x: np.ndarray, tau: np.ndarray):
    """ln G(τ) = ln ∫_τ^∞ … (absolute) and its gradient by quadrature: ∂ ln G/∂θ = E_w[∂ ln f/∂θ]
    with ∂ ln f/∂r = −ln(α+v), ∂/∂α = −(r+x)/(α+v), ∂/∂s = −ln(β+v), ∂/∂β = −(s+1)/(β+v)."""
    res = quadrature.log_integral(alpha, -(r + x), beta, -(s + 1.0), tau, np.full_like(tau, np.inf))
    log_a = res.log_shifted(alpha)
    log_b = res.log_shifted(beta)
    k = (r + x)[res.row]
    grad = np.stack([-res.mean(log_a), -res.mean(k * np.exp(-log_a)), -res.mean(log_b), -(s + 1.0) * res.mean(np.exp(-log_b))])
    return res.log_value, grad


def _z(alpha: float, beta: float, tau: np.ndarray) -> np.ndarray:
    return abs(alpha - beta) / (max(alpha, beta) + tau)


def _log_g(r: float, alpha: float, s: float, beta: float, x: np.ndarray, tau: np.ndarray):
    """ln G(τ) (absolute) per row with its gradient, series or quadrature by z (tests)."""
    use_series = _z(alpha, beta, tau) <= Z_SERIES
    log_g = np.empty(len(tau))
    grad = np.empty((4, len(tau)))
    if np.any(use_series):
        log_g[use_series], grad[:, use_series] = _log_g_series(r, alpha, s, beta, x[use_series], tau[use_series])
    if not np.all(use_series):
        q = ~use_series
        log_g[q], grad[:, q] = _log_g_quadrature(r, alpha, s, beta, x[q], tau[q])
    return log_g, grad


def _log1mexp(a: np.ndarray) -> np.ndarray:
    """ln(1 − e^a) for a <= 0 (−inf at a = 0), accurate on the whole range."""
    with np.errstate(divide="ignore"):
        return np.where(a > -math.log(2.0), np.log(-np.expm1(a)), np.log1p(-np.exp(a)))


def _log_i_tilde(params: tuple[float, float, float, float], x, t_x, T):
    """ln Ĩ with Ĩ = I / f(T) = ∫_{t_x}^{T} ((α+v)/(α+T))^-(r+x) ((β+v)/(β+T))^-(s+1) dv, per row,
    and its gradient (4 × rows). Relative to f(T) nothing large cancels, even when r, s or x are
    in the millions (the optimiser's path to s, β → ∞).

    * z(t_x) <= Z_SERIES (then z(T) <= Z_SERIES too): Ĩ = G(t_x)/f(T) − G(T)/f(T) with
      ln(G(τ)/f(T)) = h(τ) + ln(f(τ)/f(T)), h from the series once per distinct (x, τ) pair and
      ln(f(τ)/f(T)) = (r+x)·log1p((T−τ)/(α+τ)) + (s+1)·log1p((T−τ)/(β+τ)); then
      ln Ĩ = A(t_x) + ln(1 − e^{A(T) − A(t_x)}).
    * otherwise: Ĩ by quadrature over [t_x, T] normalised at T (``LogIntegral.log_normalized``),
      gradient E_w[∂ ln(integrand/f(T))/∂θ] with ℓ_α = ln((α+v)/(α+T)), ℓ_β likewise:
      ∂r = −E[ℓ_α], ∂α = −(r+x) E[e^{−ℓ_α} − 1]/(α+T), ∂s = −E[ℓ_β], ∂β = −(s+1) E[e^{−ℓ_β} − 1]/(β+T).
    Rows with t_x = T have Ĩ = 0 (ln Ĩ = −inf, zero gradient).
    """
    r, alpha, s, beta = params
    n = len(x)
    log_it = np.full(n, -np.inf)
    grad = np.zeros((4, n))
    nonempty = T > t_x
    series = nonempty & (_z(alpha, beta, t_x) <= Z_SERIES)
    direct = nonempty & ~series
    if np.any(series):
        xs, txs, Ts = x[series], t_x[series], T[series]
        m = len(xs)
        (ux, utau), _, inverse = compress_patterns(np.concatenate([xs, xs]), np.concatenate([txs, Ts]))
        h_u, dh_u = _log_h_series(r, alpha, s, beta, ux, utau)
        k, s1 = r + xs, s + 1.0
        gap = Ts - txs
        ratio_a = np.log1p(gap / (alpha + txs))
        ratio_b = np.log1p(gap / (beta + txs))
        a_tx = h_u[inverse[:m]] + k * ratio_a + s1 * ratio_b
        d_tx = dh_u[:, inverse[:m]] + np.stack(
            [ratio_a, -k * gap / ((alpha + Ts) * (alpha + txs)), ratio_b, -s1 * gap / ((beta + Ts) * (beta + txs))]
        )
        a_T, d_T = h_u[inverse[m:]], dh_u[:, inverse[m:]]
        diff = np.minimum(a_T - a_tx, 0.0)  # G(T) <= G(t_x); the min guards rounding
        log_it[series] = a_tx + _log1mexp(diff)
        e = np.exp(diff)
        with np.errstate(all="ignore"):
            g = (d_tx - e * d_T) / (1.0 - e)
        grad[:, series] = np.where(np.isfinite(log_it[series]), g, 0.0)
    if np.any(direct):
        xd = x[direct]
        res = quadrature.log_integral(alpha, -(r + xd), beta, -(s + 1.0), t_x[direct], T[direct])
        l_a, l_b = res.log_ratio(alpha), res.log_ratio(beta)
        k_node = (r + xd)[res.row]
        a_T, b_T = (alpha + T[direct])[res.row], (beta + T[direct])[res.row]
        log_it[direct] = res.log_normalized
        grad[:, direct] = np.stack(
            [
                -res.mean(l_a),
                -res.mean(k_node * np.expm1(-l_a) / a_T),
                -res.mean(l_b),
                -(s + 1.0) * res.mean(np.expm1(-l_b) / b_T),
            ]
        )
    return log_it, grad


# --------------------------------------------------------------------------------------------
# likelihood


def _ll_and_grad_rows(params: tuple[float, float, float, float], x, t_x, T):
    """Per-row ln L, its gradient w.r.t. (r, α, s, β) (4 × rows) and ln P(alive).

    Dividing the likelihood by its alive-at-T term, with Ĩ = I/f(T) (``_log_i_tilde``):
        L = Γ(r+x)/Γ(r) · (α/(α+T))^r (α+T)^-x · (β/(β+T))^s · [1 + s Ĩ/(β+T)],
        ln L = ln Γ(r+x) − ln Γ(r) − r log1p(T/α) − x ln(α+T) − s log1p(T/β) + softplus(q),
        q = ln s + ln Ĩ − ln(β+T),   P(alive) = 1/(1 + e^q);
    with w = logistic(q):
        ∂/∂r = ψ(r+x) − ψ(r) − log1p(T/α) + w ∂ ln Ĩ/∂r
        ∂/∂α = rT/(α(α+T)) − x/(α+T) + w ∂ ln Ĩ/∂α
        ∂/∂s = −log1p(T/β) + w (1/s + ∂ ln Ĩ/∂s)
        ∂/∂β = sT/(β(β+T)) + w (∂ ln Ĩ/∂β − 1/(β+T))
    Every term is of moderate size (log1p instead of s ln β − s ln(β+T)), so parameters in the
    millions keep full precision.
    """
    r, alpha, s, beta = params
    log_it, grad_i = _log_i_tilde(params, x, t_x, T)
    q = math.log(s) + log_it - np.log(beta + T)
    softplus, w = softplus_and_logistic(q)
    l_a = np.log1p(T / alpha)
    l_b = np.log1p(T / beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_log = np.where(x > 0, x * np.log(alpha + T), 0.0)
    ll = gammaln(r + x) - gammaln(r) - r * l_a - x_log - s * l_b + softplus
    d_r = digamma(r + x) - digamma(r) - l_a + w * grad_i[0]
    d_alpha = r * T / (alpha * (alpha + T)) - x / (alpha + T) + w * grad_i[1]
    d_s = -l_b + w * (1.0 / s + grad_i[2])
    d_beta = s * T / (beta * (beta + T)) + w * (grad_i[3] - 1.0 / (beta + T))
    log_p_alive = -np.logaddexp(0.0, q)
    return ll, np.stack([d_r, d_alpha, d_s, d_beta]), log_p_alive


def individual_log_likelihood(params: ParetoNBDParams, x: object, t_x: object, T: object) -> np.ndarray:
    """Per-customer Pareto/NBD log-likelihood ln L(r, α, s, β | x, t_x, T) (FH note, eq. 11)."""
    x, t_x, T = validate_inputs(x, t_x, T)
    p = params
    return _ll_and_grad_rows((p.r, p.alpha, p.s, p.beta), x, t_x, T)[0]


def log_likelihood(params: ParetoNBDParams, x: object, t_x: object, T: object, weights: object | None = None) -> float:
    """Total Pareto/NBD log-likelihood Σ_i w_i ln L_i."""
    ll = individual_log_likelihood(params, x, t_x, T)
    w = validate_weights(weights, len(ll))
    return float(np.sum(ll)) if w is None else wsum(w, ll)


def log_likelihood_and_gradient(
    log_params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    """Σ w ln L and its gradient w.r.t. (ln r, ln α, ln s, ln β) (∂/∂ln θ = θ ∂/∂θ); inputs assumed valid."""
    theta = np.exp(log_params)
    ll, grad, _ = _ll_and_grad_rows(tuple(float(v) for v in theta), x, t_x, T)
    total = wsum(weights, ll)
    g = np.array([wsum(weights, grad[i]) for i in range(4)])
    return total, g * theta


# --------------------------------------------------------------------------------------------
# fit


def fit(x: object, t_x: object, T: object, *, weights: object | None = None) -> FitResult[ParetoNBDParams]:
    """Maximum-likelihood fit of the Pareto/NBD model on unique (x, t_x, T) patterns.

    Same procedure as ``bg_nbd.fit``: pattern compression with counts, mean negative
    log-likelihood with its analytic gradient over the log-parameters, L-BFGS-B from
    deterministic starting points, best optimum kept.
    """
    return fit_purchase_model(
        "Pareto/NBD",
        ParetoNBDParams,
        PARAM_NAMES,
        x,
        t_x,
        T,
        weights,
        lambda lp, p: log_likelihood_and_gradient(lp, p.x, p.t_x, p.T, p.weights),
        _starts,
    )


def _starts(rate: float, mean_T: float) -> list[tuple[float, ...]]:
    """Deterministic starting points: α = r/rate, and β = s·mean_T (dropout about once per
    observation window) or shorter."""
    return [
        (1.0, 1.0 / rate, 1.0, mean_T),
        (0.5, 0.5 / rate, 0.5, mean_T),
        (2.0, 2.0 / rate, 0.5, 0.5 * mean_T),
        (1.0, 1.0, 1.0, 1.0),
    ]


# --------------------------------------------------------------------------------------------
# predictions


def p_alive(params: ParetoNBDParams, x: object, t_x: object, T: object) -> np.ndarray:
    """P(alive at T | x, t_x, T) = A / (A + s·I) (FH note, eq. 18), from the likelihood terms."""
    x, t_x, T = validate_inputs(x, t_x, T)
    if len(x) == 0:
        return np.zeros(0)
    (ux, utx, uT), _, inverse = compress_patterns(x, t_x, T)
    p = params
    return np.exp(_ll_and_grad_rows((p.r, p.alpha, p.s, p.beta), ux, utx, uT)[2])[inverse]


def _residual_lifetime_factor(s: float, beta_T: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(β+T)/(s−1) · [1 − ((β+T)/(β+T+t))^(s−1)], written as (β+T)·L·exprel(−(s−1)L) with
    L = ln(1 + t/(β+T)) — continuous through s = 1, where it is (β+T)·L."""
    L = np.log1p(t / beta_T)
    return beta_T * L * exprel(-(s - 1.0) * L)


def expected_purchases_alive(params: ParetoNBDParams, t: object, x: object, T: object) -> np.ndarray:
    """Expected repeat purchases in (T, T+t] of a customer alive at T with x repeat purchases:
    (r+x)/(α+T) · (β+T)/(s−1) · [1 − ((β+T)/(β+T+t))^(s−1)] (posterior λ ~ Gamma(r+x, α+T),
    μ ~ Gamma(s, β+T); the expected time alive in (T, T+t] is the second factor)."""
    x, T, t = broadcast_lengths(x=as_float_array("x", x), T=as_float_array("T", T), t=validate_horizon(t))
    p = params
    return (p.r + x) / (p.alpha + T) * _residual_lifetime_factor(p.s, p.beta + T, t)


def expected_purchases(params: ParetoNBDParams, t: object, x: object, t_x: object, T: object) -> np.ndarray:
    """Conditional expected number of repeat purchases in (T, T+t] given (x, t_x, T) (FH note, eq. 21):

        E[Y(t) | x, t_x, T] = (r+x)(β+T) / ((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)] · P(alive)
    """
    x, t_x, T = validate_inputs(x, t_x, T)
    x, t_x, T, t = broadcast_lengths(x=x, t_x=t_x, T=T, t=validate_horizon(t))
    p = params
    pa = p_alive(params, x, t_x, T)
    return (p.r + x) / (p.alpha + T) * _residual_lifetime_factor(p.s, p.beta + T, t) * pa


def expected_purchases_new_customer(params: ParetoNBDParams, t: object) -> np.ndarray:
    """Unconditional E[X(t)] of a customer just born (FH note, eq. 17):
        E[X(t)] = r β / (α (s−1)) · [1 − (β/(β+t))^(s−1)]."""
    t = validate_horizon(t)
    p = params
    return p.r / p.alpha * _residual_lifetime_factor(p.s, np.full_like(t, p.beta), t)


def _log_pmf(r: float, alpha: np.ndarray, s: float, beta: np.ndarray, t: np.ndarray, n: np.ndarray) -> np.ndarray:
    """ln P(X(t) = n) for a customer born at 0 with parameters (r, α, s, β) (α, β may vary by row).

    Conditioning on the lifetime τ (alive through t, or dead at τ in (0, t]):
        P(X(t) = n) = Γ(r+n)/(Γ(r) n!) · (α/(α+t))^r (t/(α+t))^n (β/(β+t))^s
                    + Γ(r+n)/(Γ(r) n!) · α^r s β^s ∫_0^t τ^n (α+τ)^-(r+n) (β+τ)^-(s+1) dτ
    (FH 2005 note, section 4, and Fader & Hardie 2020, "Deriving an Expression for P(X(t) = x)
    Under the Pareto/NBD Model", whose closed form is this integral in hypergeometric terms);
    the integral is evaluated by ``quadrature.log_integral``.
    """
    log_coef = gammaln(r + n) - gammaln(r) - gammaln(n + 1.0)
    with np.errstate(divide="ignore"):
        log_t = np.log(t)
    alive = log_coef + r * (np.log(alpha) - np.log(alpha + t)) + np.where(n > 0, n * (log_t - np.log(alpha + t)), 0.0)
    alive = alive + s * (np.log(beta) - np.log(beta + t))
    integral = quadrature.log_integral(alpha, -(r + n), beta, -(s + 1.0), np.zeros_like(t), t, n=n).log_value
    dead = log_coef + r * np.log(alpha) + math.log(s) + s * np.log(beta) + integral
    return np.logaddexp(alive, dead)


def probability_of_n_purchases(params: ParetoNBDParams, t: object, n: object) -> np.ndarray:
    """P(X(t) = n): probability that a customer just born makes exactly n repeat purchases in (0, t]."""
    t, n = broadcast_lengths(t=validate_horizon(t), n=_validate_counts(n))
    p = params
    out = np.where(n == 0, 1.0, 0.0)
    pos = t > 0
    if np.any(pos):
        out[pos] = np.exp(_log_pmf(p.r, np.full(pos.sum(), p.alpha), p.s, np.full(pos.sum(), p.beta), t[pos], n[pos]))
    return out


def conditional_probability_of_n_purchases(
    params: ParetoNBDParams, t: object, n: object, x: object, t_x: object, T: object
) -> np.ndarray:
    """P(Y(t) = n | x, t_x, T): probability of exactly n repeat purchases in (T, T+t].

    Given alive at T, the posterior of (λ, μ) is Gamma(r+x, α+T) × Gamma(s, β+T) (the likelihood
    of an alive customer is λ^x e^{−λT} e^{−μT}), so the future is a Pareto/NBD process with
    (r+x, α+T, s, β+T); a dead customer makes no purchase:
        P(Y(t) = n | ·) = (1 − P(alive)) · δ_{n=0} + P(alive) · P_{r+x, α+T, s, β+T}(X(t) = n).
    """
    x, t_x, T = validate_inputs(x, t_x, T)
    x, t_x, T, t, n = broadcast_lengths(x=x, t_x=t_x, T=T, t=validate_horizon(t), n=_validate_counts(n))
    p = params
    pa = p_alive(params, x, t_x, T)
    out = np.where(n == 0, 1.0, 0.0)
    pos = t > 0
    if np.any(pos):
        log_p = np.empty(pos.sum())
        # r+x varies by row: loop over its distinct values (x has few distinct values)
        for xv in np.unique(x[pos]):
            rows = x[pos] == xv
            log_p[rows] = _log_pmf(
                p.r + xv, p.alpha + T[pos][rows], p.s, p.beta + T[pos][rows], t[pos][rows], n[pos][rows]
            )
        out[pos] = np.exp(log_p)
    return (1.0 - pa) * (n == 0) + pa * out


def _validate_counts(n: object) -> np.ndarray:
    arr = as_float_array("n", n)
    bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.floor(arr))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ModelInputError(f"n must be a non-negative integer: first offending row {i} (n={arr[i]!r})")
    return arr
