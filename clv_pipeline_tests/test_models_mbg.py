"""MBG/NBD: likelihood against its definition, gradient, predictions, simulation, CDNOW fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betaln, gammaln, hyp2f1

from clv_pipeline.models import bg_nbd, mbg_nbd, simulate
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.mbg_nbd import ModifiedBetaGeoParams
from clv_pipeline_tests.test_models_btyd import _fd_gradient, _rel, _xtT, cdnow_rfm, cdnow_transactions  # noqa: F401

X = np.array([0, 0, 1, 2, 5, 30, 200], dtype=float)
T_X = np.array([0, 0, 0.5, 30.43, 20.0, 35.0, 39.0])
T = np.array([0.0, 38.86, 10.0, 38.86, 40.0, 52.0, 40.0])


@pytest.mark.parametrize("params", [(0.525, 6.183, 0.891, 1.614), (2.0, 30.0, 1.7, 0.6), (0.05, 0.5, 0.2, 15.0)])
def test_gradient_and_likelihood_definition(params) -> None:
    w = np.array([3.0, 1.0, 2.0, 1.0, 1.0, 4.0, 1.0])
    theta = np.log(params)
    ll, grad = mbg_nbd.log_likelihood_and_gradient(theta, X, T_X, T, w)
    fd = _fd_gradient(lambda th: mbg_nbd.log_likelihood_and_gradient(th, X, T_X, T, w)[0], theta)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6)
    # Batislam et al. (2007) eq. 4, term by term in linear space (rows small enough not to overflow)
    r, a_, a, b = params
    small = X <= 30
    xs, txs, Ts = X[small], T_X[small], T[small]
    direct = (
        np.exp(gammaln(r + xs) - gammaln(r) + betaln(a, b + xs + 1) - betaln(a, b))
        * a_**r
        * ((a_ + Ts) ** -(r + xs) + a / (b + xs) * (a_ + txs) ** -(r + xs))
    )
    ll_small = mbg_nbd.log_likelihood(ModifiedBetaGeoParams(*params), xs, txs, Ts, w[small])
    assert ll_small == pytest.approx(float(np.sum(w[small] * np.log(direct))), rel=1e-10)
    assert ll == pytest.approx(mbg_nbd.log_likelihood(ModifiedBetaGeoParams(*params), X, T_X, T, w), rel=1e-12)


def test_predictions() -> None:
    p = ModifiedBetaGeoParams(0.525, 6.183, 0.891, 1.614)
    # one-time buyers are not alive for sure (the BG/NBD blind spot), and fade with silence
    pa = mbg_nbd.p_alive(p, np.zeros(3), np.zeros(3), np.array([1.0, 10.0, 50.0]))
    assert np.all(pa < 1) and np.all(np.diff(pa) < 0)
    assert np.all(bg_nbd.p_alive(BetaGeoParams(0.5, 6.0, 0.9, 1.6), np.zeros(3), np.zeros(3), [1.0, 10.0, 50.0]) == 1)
    # E[Y(t)|·] against the untransformed formula with scipy's hyp2f1 (moderate arguments)
    for t in (1.0, 39.0, 104.0):
        z = t / (p.alpha + T + t)
        direct = (
            (p.a + p.b + X) / (p.a - 1)
            * (1 - ((p.alpha + T) / (p.alpha + T + t)) ** (p.r + X) * hyp2f1(p.r + X, p.b + X + 1, p.a + p.b + X, z))
            / (1 + p.a / (p.b + X) * ((p.alpha + T) / (p.alpha + T_X)) ** (p.r + X))
        )
        np.testing.assert_allclose(mbg_nbd.expected_purchases(p, t, X, T_X, T), direct, rtol=1e-9)
    # unconditional = b/(a−1) [1 − (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))]
    t = 52.0
    assert mbg_nbd.expected_purchases_new_customer(p, t)[0] == pytest.approx(
        p.b / (p.a - 1) * (1 - (p.alpha / (p.alpha + t)) ** p.r * hyp2f1(p.r, p.b + 1, p.a + p.b, t / (p.alpha + t))), rel=1e-10
    )
    rng = np.random.default_rng(5)
    x, _ = simulate.simulate_mbg_nbd(p, np.full(200_000, t), rng)
    assert abs(x.mean() - mbg_nbd.expected_purchases_new_customer(p, t)[0]) < 4 * x.std() / np.sqrt(len(x))


def test_cdnow_fit(cdnow_rfm) -> None:
    """Not a PRODUCT.md figure: the MBG/NBD fit on the CDNOW sample; its log-likelihood is close
    to BG/NBD's (-9582.4) and its P(alive) of one-time buyers is below 1."""
    res = mbg_nbd.fit(*_xtT(cdnow_rfm))
    assert res.converged, res.message
    assert res.log_likelihood == pytest.approx(-9582.1, abs=0.1)
    one_timers = cdnow_rfm["frequency"].to_numpy() == 0
    x, t_x, T = _xtT(cdnow_rfm)
    assert mbg_nbd.p_alive(res.params, x[one_timers], t_x[one_timers], T[one_timers]).max() < 1


def test_parameter_recovery() -> None:
    truth = ModifiedBetaGeoParams(0.5, 5.0, 0.8, 2.5)
    rng = np.random.default_rng(2024)
    T = rng.uniform(26.0, 78.0, 20_000)
    x, t_x = simulate.simulate_mbg_nbd(truth, T, rng)
    res = mbg_nbd.fit(x, t_x, T)
    assert res.converged, res.message
    for name, value in truth.as_dict().items():
        assert _rel(getattr(res.params, name), value) < 0.15, (name, res.params)
