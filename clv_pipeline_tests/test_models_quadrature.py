"""The log-space quadrature behind the Pareto/NBD likelihood and probabilities, against
independent evaluations: closed forms, and scipy's adaptive quadrature of the rescaled integrand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy.special import betaln

from clv_pipeline.models.quadrature import log_integral


def _adaptive(b1, e1, b2, e2, lo, hi, n=0.0) -> float:
    """ln ∫ τ^n (b1+τ)^e1 (b2+τ)^e2 dτ with scipy.integrate.quad in u = ln τ (or ln(τ + c)),
    rescaled by the maximum found on a fine grid, split in many pieces."""
    c = 0.0 if n > 0 else min(b1, b2)
    l1 = np.log(b1 - c) if b1 > c else -np.inf
    l2 = np.log(b2 - c) if b2 > c else -np.inf

    def psi(u):
        return (1 + n) * u + e1 * np.logaddexp(l1, u) + e2 * np.logaddexp(l2, u)

    ua = np.log(lo + c) if lo + c > 0 else -3000.0
    ub = np.log(hi + c) if np.isfinite(hi) else 3000.0
    grid = np.linspace(ua, ub, 600_001)
    values = psi(grid)
    top = values.max()
    keep = grid[values > top - 60]
    a, b = max(ua, keep[0] - 0.01), min(ub, keep[-1] + 0.01)
    edges = np.unique(np.concatenate([[a, b], np.linspace(a, b, 300)]))
    total = sum(
        integrate.quad(lambda u: np.exp(psi(u) - top), x0, x1, epsabs=0, epsrel=1e-13, limit=200)[0]
        for x0, x1 in zip(edges[:-1], edges[1:])
    )
    return float(top + np.log(total))


def test_closed_forms() -> None:
    # ∫_0^∞ (1+τ)^-k dτ = 1/(k−1); ∫_0^∞ τ^n (1+τ)^-(n+m) dτ = B(n+1, m−1)
    res = log_integral(1.0, -5.0, 1.0, 0.0, 0.0, np.inf)
    assert res.log_value == pytest.approx(np.log(1 / 4), rel=1e-13)
    for n, m in [(0, 3.5), (7, 2.5), (400, 30.0), (3000, 1.2)]:
        res = log_integral(1.0, -(n + m), 2.0, 0.0, 0.0, np.inf, n=float(n))
        assert res.log_value == pytest.approx(betaln(n + 1, m - 1), rel=1e-12, abs=1e-11), (n, m)
    # a pure power on a finite range: ∫_a^b (c+τ)^-k dτ
    k, c, a, b = 1234.5, 3.0, 2.0, 9.0
    exact = (1 - k) * np.log(c + a) + np.log1p(-(((c + a) / (c + b)) ** (k - 1))) - np.log(k - 1)
    assert log_integral(c, -k, c, 0.0, a, b).log_value == pytest.approx(exact, rel=1e-13)


def test_empty_range_and_weights() -> None:
    res = log_integral(np.array([2.0, 2.0]), -3.0, np.array([5.0, 5.0]), -1.5, np.array([1.0, 4.0]), np.array([1.0, 9.0]))
    assert res.log_value[0] == -np.inf and not np.any(res.row == 0)  # an empty range has no nodes
    assert res.weights[res.row == 1].sum() == pytest.approx(1.0, abs=1e-12) and np.all(res.weights >= 0)
    # the weighted mean of ln(b + τ) lies within the range of ln(b + τ)
    mean = res.mean(res.log_shifted(np.array([5.0, 5.0])))[1]
    assert np.log(9.0) < mean < np.log(14.0)


def test_against_adaptive_quadrature() -> None:
    """Random integrands over exponents up to ~10^4 and bases from 1e-3 to 1e6: relative error of
    ln I below 1e-11 (the adaptive reference itself is accurate to about that)."""
    rng = np.random.default_rng(12)
    cases = []
    for _ in range(60):
        alpha, beta = np.exp(rng.uniform(-7, 14, 2))
        r, s = np.exp(rng.uniform(-3, 3, 2))
        x = float(int(np.exp(rng.uniform(0, 9)))) if rng.random() < 0.7 else 0.0
        kind = rng.integers(3)
        if kind == 0:  # G(τ): the Pareto/NBD tail integral
            tau = 0.0 if rng.random() < 0.3 else float(np.exp(rng.uniform(-5, 8)))
            cases.append((alpha, -(r + x), beta, -(s + 1), tau, np.inf, 0.0))
        elif kind == 1:  # the likelihood integral on [t_x, T]
            T = float(np.exp(rng.uniform(-3, 8)))
            cases.append((alpha, -(r + x), beta, -(s + 1), T * rng.uniform() ** 2, T, 0.0))
        else:  # the probability of n purchases
            cases.append((alpha, -(r + x), beta, -(s + 1), 0.0, float(np.exp(rng.uniform(-3, 8))), x))
    args = [np.array([c[j] for c in cases]) for j in range(7)]
    got = log_integral(*args[:6], n=args[6]).log_value
    for value, case in zip(got, cases, strict=True):
        ref = _adaptive(*case)
        assert abs(value - ref) <= 1e-11 * max(1.0, abs(ref)), (case, value, ref)
