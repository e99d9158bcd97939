"""Shifted-beta-geometric: both published segments of Fader & Hardie (2007) (PRODUCT.md §7),
survival / retention identities, discounted expected (residual) lifetime, input errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betaln, hyp2f1

from clv_pipeline.models import sbg
from clv_pipeline.models.fitting import ModelInputError
from clv_pipeline.models.sbg import ShiftedBetaGeoParams

REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


@pytest.mark.parametrize(
    ("active", "alpha", "beta"), [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)], ids=["regular", "high_end"]
)
def test_published_segments(active, alpha, beta) -> None:
    res = sbg.fit(active)
    assert res.converged, res.message
    assert res.params.alpha == pytest.approx(alpha, rel=0.005)
    assert res.params.beta == pytest.approx(beta, rel=0.005)
    assert res.n_users == 1000
    # the fitted survival curve tracks the data (FH 2007, figure 3: within a few customers)
    fitted = sbg.survival(res.params, np.arange(len(active))) * 1000
    assert np.max(np.abs(fitted - np.array(active))) < 20


def test_survival_retention_and_churn_identities() -> None:
    p = ShiftedBetaGeoParams(0.704, 1.182)
    t = np.arange(0, 30)
    s = sbg.survival(p, t)
    assert s[0] == 1.0 and np.all(np.diff(s) < 0)
    churn = sbg.churn_probability(p, t)
    np.testing.assert_allclose(churn[1:], s[:-1] - s[1:], rtol=1e-12)
    r = sbg.retention_rate(p, t[1:])
    np.testing.assert_allclose(r, s[1:] / s[:-1], rtol=1e-12)
    assert np.all(np.diff(r) > 0)  # retention rises as low-churn customers remain
    assert r[0] == pytest.approx(1 - p.mean_churn)
    with pytest.raises(ModelInputError, match="t >= 1"):
        sbg.retention_rate(p, [0, 1])


def test_discounted_expected_residual_lifetime() -> None:
    p = ShiftedBetaGeoParams(0.668, 3.806)
    d = 0.10
    for renewals in (0, 1, 4, 20):
        n = renewals + 1
        ref = np.exp(betaln(p.alpha, p.beta + n) - betaln(p.alpha, p.beta + n - 1)) * hyp2f1(
            1, p.beta + n, p.alpha + p.beta + n, 1 / (1 + d)
        )
        assert sbg.discounted_expected_residual_lifetime(p, d, [renewals])[0] == pytest.approx(ref, rel=1e-12)
        # definition: Σ_{t>=n} S(t)/S(n−1) (1+d)^−(t−n)
        t = np.arange(n, n + 4000)
        direct = np.sum(sbg.survival(p, t) / sbg.survival(p, [n - 1])[0] * (1 + d) ** -(t - n))
        assert sbg.discounted_expected_residual_lifetime(p, d, [renewals])[0] == pytest.approx(direct, rel=1e-9)
    # loyal survivors are worth more: DERL rises with tenure
    derl = sbg.discounted_expected_residual_lifetime(p, d, np.arange(10))
    assert np.all(np.diff(derl) > 0)
    assert sbg.discounted_expected_lifetime(p, d) == pytest.approx(hyp2f1(1, p.beta, p.alpha + p.beta, 1 / (1 + d)), rel=1e-12)
    with pytest.raises(ModelInputError, match="discount_rate"):
        sbg.discounted_expected_residual_lifetime(p, 0.0, [1])


@pytest.mark.parametrize(
    ("active", "pattern"),
    [
        ([1000], "at least two"),
        ([1000, 1200, 800], "must not increase from one period to the next: first offending row 1"),
        ([1000, 500.5], "integers"),
        ([0, 0], "at least one active"),
        ([1000, -1], "integers >= 0"),
    ],
)
def test_invalid_survivor_counts(active, pattern) -> None:
    with pytest.raises(ModelInputError, match=pattern):
        sbg.fit(active)


def test_degenerate_cohorts_are_not_converged() -> None:
    assert not sbg.fit([100, 100, 100]).converged
    assert not sbg.fit([100, 0, 0]).converged
