"""Tests of the BTYD model core: RFM summary, BG/NBD, Gamma-Gamma, CLV, simulators.

The CDNOW tests reproduce the published figures of PRODUCT.md §7 from the raw transactions.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from clv_pipeline.models import bg_nbd, clv, gamma_gamma, rfm, simulate
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.fitting import ModelInputError
from clv_pipeline.models.gamma_gamma import GammaGammaParams
from clv_pipeline_tests.conftest import CDNOW_SAMPLE, log_params, purchase_gradient, spend_gradient, standard_errors

PUBLISHED_BG = BetaGeoParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
PUBLISHED_GG = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
CALIBRATION_END = dt.date(1997, 9, 30)


@pytest.fixture(scope="module")
def cdnow_transactions() -> pl.DataFrame:
    path = CDNOW_SAMPLE
    if not path.exists():
        pytest.skip(f"CDNOW sample not found at {path} (set CLV_SHARED_DATA to the shared data folder)")
    user_ids, dates, values = [], [], []
    with path.open() as fh:
        for line in fh:
            master_id, _sample_id, yyyymmdd, _cds, dollars = line.split()
            user_ids.append(master_id)
            dates.append(dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:])))
            values.append(float(dollars))
    return pl.DataFrame(
        {
            "user_id": user_ids,
            "event_date": pl.Series(dates, dtype=pl.Date),
            "value": pl.Series(values, dtype=pl.Float64),
        }
    )


@pytest.fixture(scope="module")
def cdnow_rfm(cdnow_transactions: pl.DataFrame) -> pl.DataFrame:
    # the published analyses count 8 customers whose only purchase was a $0.00 item
    return rfm.rfm_summary(cdnow_transactions, CALIBRATION_END, "weeks", include_zero_value=True)


def _xtT(summary: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return summary["frequency"].to_numpy(), summary["recency"].to_numpy(), summary["t"].to_numpy()


def _rel(actual: float, expected: float) -> float:
    return abs(actual / expected - 1.0)


# ---------------------------------------------------------------------------------------------
# CDNOW: published figures (PRODUCT.md §7)


def test_cdnow_rfm_summary(cdnow_transactions: pl.DataFrame, cdnow_rfm: pl.DataFrame) -> None:
    assert cdnow_rfm.height == 2357
    assert int((cdnow_rfm["frequency"] > 0).sum()) == 946
    assert cdnow_rfm.schema["frequency"] == pl.Int64
    first = cdnow_rfm.filter(pl.col("user_id") == "00004").row(0, named=True)
    # 1997-01-01, 1997-01-18, 1997-08-02 (the 1997-12-12 purchase is after the calibration end)
    assert first["frequency"] == 2
    assert first["recency"] == pytest.approx(213 / 7)  # 30.43 weeks
    assert first["t"] == pytest.approx(272 / 7)  # 38.86 weeks
    assert first["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)
    assert first["first_purchase_value"] == pytest.approx(29.33)
    assert first["total_value"] == pytest.approx(29.33 + 29.73 + 14.96)
    # by default a purchase day needs a positive net value: the 8 one-time $0.00 buyers drop out
    strict = rfm.rfm_summary(cdnow_transactions, CALIBRATION_END, "weeks")
    assert strict.height == 2349
    assert int((strict["frequency"] > 0).sum()) == 946


def test_cdnow_bg_nbd_fit_reproduces_published_figures(cdnow_rfm: pl.DataFrame) -> None:
    res = bg_nbd.fit(*_xtT(cdnow_rfm))
    assert res.converged, res.message
    assert res.n_users == 2357
    for name, published in PUBLISHED_BG.as_dict().items():
        assert _rel(getattr(res.params, name), published) < 0.005, (name, getattr(res.params, name))
    assert res.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_cdnow_gamma_gamma_fit_reproduces_published_figures(cdnow_rfm: pl.DataFrame) -> None:
    res = gamma_gamma.fit(cdnow_rfm["frequency"].to_numpy(), cdnow_rfm["monetary_value"].to_numpy())
    assert res.converged, res.message
    assert res.n_users == 946
    for name, published in PUBLISHED_GG.as_dict().items():
        assert _rel(getattr(res.params, name), published) < 0.005, (name, getattr(res.params, name))


def test_published_conditional_expectation() -> None:
    value = bg_nbd.expected_purchases(PUBLISHED_BG, 39.0, 2, 30.43, 38.86)
    assert value.shape == (1,)
    assert round(float(value[0]), 3) == 1.226


def test_cdnow_holdout_backtest(cdnow_transactions: pl.DataFrame) -> None:
    """39-week holdout (1997-10-01 .. 1998-06-30) against the BG/NBD conditional expectations."""
    holdout_end = dt.date(1998, 6, 30)
    split = rfm.calibration_holdout_split(
        cdnow_transactions, CALIBRATION_END, holdout_end, "weeks", include_zero_value=True
    )
    assert split.height == 2357
    assert split["holdout_duration"].unique().to_list() == [39.0]
    # independent count: distinct (customer, day) pairs in the holdout, for calibration customers
    born = {
        u
        for u, d in zip(cdnow_transactions["user_id"], cdnow_transactions["event_date"], strict=True)
        if d <= CALIBRATION_END
    }
    pairs = {
        (u, d)
        for u, d in zip(cdnow_transactions["user_id"], cdnow_transactions["event_date"], strict=True)
        if u in born and CALIBRATION_END < d <= holdout_end
    }
    assert split["holdout_frequency"].sum() == len(pairs) == 1882
    predicted = bg_nbd.expected_purchases(PUBLISHED_BG, 39.0, *_xtT(split))
    # not a published figure: a guard that the model tracks the holdout within 15 % overall and for
    # the one-time buyers (1,411 customers: 0.237 actual vs 0.225 predicted repeat purchases)
    assert abs(predicted.sum() / 1882 - 1) < 0.15
    zero = (split["frequency"] == 0).to_numpy()
    actual_zero = split["holdout_frequency"].to_numpy()[zero].mean()
    assert abs(predicted[zero].mean() / actual_zero - 1) < 0.1


def test_fit_is_deterministic_and_order_independent(cdnow_rfm: pl.DataFrame) -> None:
    x, t_x, T = _xtT(cdnow_rfm)
    first = bg_nbd.fit(x, t_x, T)
    perm = np.random.default_rng(7).permutation(len(x))
    again = bg_nbd.fit(x[perm], t_x[perm], T[perm])
    assert first.params == again.params  # bit-identical
    assert first.log_likelihood == again.log_likelihood
    m = cdnow_rfm["monetary_value"].to_numpy()
    assert gamma_gamma.fit(x, m).params == gamma_gamma.fit(x[perm], m[perm]).params


def test_weights_equal_repeated_rows(cdnow_rfm: pl.DataFrame) -> None:
    x, t_x, T = _xtT(cdnow_rfm)
    ll = bg_nbd.individual_log_likelihood(PUBLISHED_BG, x, t_x, T)
    assert bg_nbd.log_likelihood(PUBLISHED_BG, x, t_x, T) == pytest.approx(ll.sum(), rel=1e-12)
    w = np.arange(len(x)) % 3 + 1.0
    assert bg_nbd.log_likelihood(PUBLISHED_BG, x, t_x, T, weights=w) == pytest.approx(np.dot(w, ll), rel=1e-12)
    reps = w.astype(int)
    fit_w = bg_nbd.fit(x, t_x, T, weights=w)
    fit_rep = bg_nbd.fit(np.repeat(x, reps), np.repeat(t_x, reps), np.repeat(T, reps))
    assert fit_w.n_users == fit_rep.n_users == int(w.sum())
    assert fit_w.params == fit_rep.params


# ---------------------------------------------------------------------------------------------
# gradients


def _fd_gradient(f, theta: np.ndarray, h: float = 1e-6) -> np.ndarray:
    out = np.empty_like(theta)
    for i in range(len(theta)):
        e = np.zeros_like(theta)
        e[i] = h
        out[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return out


@pytest.mark.parametrize(
    "params",
    [(0.243, 4.414, 0.793, 2.426), (2.0, 30.0, 1.7, 0.6), (0.05, 0.5, 0.2, 15.0)],
)
def test_bg_nbd_gradient_matches_finite_differences(params: tuple[float, ...]) -> None:
    x = np.array([0, 0, 1, 2, 5, 30, 200], dtype=float)
    t_x = np.array([0, 0, 0.5, 30.43, 20.0, 35.0, 39.0])
    T = np.array([0.0, 38.86, 10.0, 38.86, 40.0, 52.0, 40.0])
    w = np.array([3.0, 1.0, 2.0, 1.0, 1.0, 4.0, 1.0])
    theta = np.log(params)
    _, grad = bg_nbd.log_likelihood_and_gradient(theta, x, t_x, T, w)
    fd = _fd_gradient(lambda th: bg_nbd.log_likelihood_and_gradient(th, x, t_x, T, w)[0], theta)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("params", [(6.25, 3.74, 15.44), (0.7, 1.3, 200.0)])
def test_gamma_gamma_gradient_matches_finite_differences(params: tuple[float, ...]) -> None:
    x = np.array([1, 1, 2, 7, 40], dtype=float)
    m = np.array([5.0, 120.0, 35.5, 14.2, 3.1])
    w = np.array([1.0, 2.0, 1.0, 5.0, 1.0])
    theta = np.log(params)
    _, grad = gamma_gamma.log_likelihood_and_gradient(theta, x, m, w)
    fd = _fd_gradient(lambda th: gamma_gamma.log_likelihood_and_gradient(th, x, m, w)[0], theta)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# BG/NBD predictive functions


def test_euler_transform_identity() -> None:
    """Euler-transformed eq. 10 equals the direct form wherever the direct form is finite."""
    x = np.array([0, 1, 2, 5, 20, 60], dtype=float)
    t_x = np.array([0.0, 3.0, 30.43, 12.0, 30.0, 38.0])
    T = np.array([5.0, 20.0, 38.86, 39.0, 39.0, 39.0])
    for params in (PUBLISHED_BG, BetaGeoParams(1.3, 10.0, 2.5, 4.0), BetaGeoParams(0.4, 2.0, 0.3, 0.8)):
        for t in (0.5, 10.0, 39.0, 104.0):
            direct = bg_nbd._expected_purchases_direct(params, t, x, t_x, T)
            assert np.all(np.isfinite(direct))
            np.testing.assert_allclose(bg_nbd.expected_purchases(params, t, x, t_x, T), direct, rtol=1e-9)


def test_new_customer_expectation_is_conditional_at_zero_and_matches_simulation() -> None:
    t = np.array([1.0, 13.0, 52.0])
    e_new = bg_nbd.expected_purchases_new_customer(PUBLISHED_BG, t)
    np.testing.assert_allclose(e_new, bg_nbd.expected_purchases(PUBLISHED_BG, t, 0, 0, 0), rtol=0)
    # Monte Carlo: mean of simulated X(t) for 200k customers of age t, within 4 standard errors
    rng = np.random.default_rng(11)
    x, _ = simulate.simulate_bg_nbd(PUBLISHED_BG, np.full(200_000, 52.0), rng)
    assert abs(x.mean() - e_new[2]) < 4 * x.std() / np.sqrt(len(x))
    assert e_new[2] == pytest.approx(x.mean(), rel=0.02)


def test_expected_purchases_continuous_across_a_equal_one() -> None:
    values = [
        bg_nbd.expected_purchases(BetaGeoParams(0.5, 5.0, a, 2.0), 20.0, [0, 3], [0, 10.0], [15.0, 15.0])
        for a in (1 - 1e-3, 1 - 1e-5, 1.0, 1 + 1e-5, 1 + 1e-3)
    ]
    for v in values:
        assert np.all(np.isfinite(v))
    np.testing.assert_allclose(values[1], values[2], rtol=1e-4)
    np.testing.assert_allclose(values[3], values[2], rtol=1e-4)
    # monotone in a around 1 (no spike from the 0/0)
    diffs = np.diff(np.array(values), axis=0)
    assert np.all(diffs <= 0) or np.all(diffs >= 0)


def test_p_alive_invariants() -> None:
    x = np.array([0, 0, 1, 1, 5, 500, 500])
    t_x = np.array([0.0, 0.0, 1.0, 9.0, 9.0, 1000.0, 1.0])
    T = np.array([0.0, 1000.0, 10.0, 10.0, 10.0, 1000.0, 1000.0])
    for params in (PUBLISHED_BG, BetaGeoParams(0.5, 1e6, 0.8, 2.5), BetaGeoParams(50.0, 0.01, 20.0, 0.05)):
        pa = bg_nbd.p_alive(params, x, t_x, T)
        assert np.all(np.isfinite(pa)) and np.all((pa >= 0) & (pa <= 1))
        assert pa[0] == 1.0 and pa[1] == 1.0  # no repeat purchase: alive for sure under BG/NBD
    pa = bg_nbd.p_alive(PUBLISHED_BG, x, t_x, T)
    assert pa[3] > pa[2]  # a more recent last purchase -> more likely alive
    assert pa[6] < 1e-100  # 500 purchases in the first week then 999 silent weeks
    assert pa[5] > 0.99
    # a longer silence lowers P(alive)
    silence = bg_nbd.p_alive(PUBLISHED_BG, 3, 10.0, np.array([10.0, 20.0, 40.0, 80.0]))
    assert np.all(np.diff(silence) < 0)


def test_expected_purchases_invariants_and_extremes() -> None:
    x = np.array([0, 1, 2, 10, 100, 500, 500, 3])
    t_x = np.array([0.0, 1.0, 30.43, 50.0, 999.0, 1000.0, 1.0, 1e-9])
    T = np.array([0.0, 1000.0, 38.86, 1000.0, 1000.0, 1000.0, 1000.0, 1e-9])
    ts = np.array([0.0, 1e-3, 1.0, 39.0, 365.0, 1000.0, 1e4, 1e5])
    for params in (
        PUBLISHED_BG,
        BetaGeoParams(0.243, 1e6, 0.793, 2.426),
        BetaGeoParams(50.0, 1e6, 0.1, 100.0),
        BetaGeoParams(0.05, 0.01, 5.0, 0.05),
        BetaGeoParams(2.0, 30.0, 1e-3, 1e3),
        BetaGeoParams(0.05, 0.01, 0.01, 0.01),
        BetaGeoParams(1.0, 1.0, 1.0, 1.0),
    ):
        e = np.array([bg_nbd.expected_purchases(params, t, x, t_x, T) for t in ts])
        assert np.all(np.isfinite(e)), params
        assert np.all(e[0] == 0)
        assert np.all(np.diff(e, axis=0) >= -1e-9 * e[1:]), params  # non-decreasing in t
        assert np.all(np.isfinite(bg_nbd.individual_log_likelihood(params, x, t_x, T)))
    # a very heavy buyer who is alive keeps buying at about his rate: ~x/T per unit of time
    heavy = bg_nbd.expected_purchases(PUBLISHED_BG, 10.0, 500, 1000.0, 1000.0)[0]
    assert heavy == pytest.approx(5.0, rel=0.02)


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma


def test_gamma_gamma_spend() -> None:
    mean = gamma_gamma.population_mean_spend(PUBLISHED_GG)
    assert mean == pytest.approx(6.25 * 15.44 / 2.74)
    spend = gamma_gamma.conditional_expected_spend(PUBLISHED_GG, [0, 1, 10, 1000], [99.0, 80.0, 80.0, 80.0])
    assert spend[0] == pytest.approx(mean)  # frequency 0: population mean, m ignored
    assert mean < spend[1] < spend[2] < spend[3] < 80.0  # shrinkage towards the customer's own mean
    assert spend[3] == pytest.approx(80.0, rel=1e-3)
    with pytest.raises(ModelInputError, match="undefined"):
        gamma_gamma.population_mean_spend(GammaGammaParams(2.0, 0.9, 10.0))
    with pytest.raises(ModelInputError, match="undefined"):
        gamma_gamma.conditional_expected_spend(GammaGammaParams(2.0, 0.9, 10.0), [0, 3], [0.0, 5.0])
    # defined for repeat buyers when p·x + q > 1 even if q <= 1
    assert np.isfinite(gamma_gamma.conditional_expected_spend(GammaGammaParams(2.0, 0.9, 10.0), [3], [5.0])[0])


def test_gamma_gamma_ignores_non_repeat_and_zero_spend() -> None:
    x = np.array([0, 2, 3, 1, 4])
    m = np.array([0.0, 10.0, 0.0, 25.0, 12.0])
    ll = gamma_gamma.individual_log_likelihood(PUBLISHED_GG, x, m)
    assert np.isnan(ll[0]) and np.isnan(ll[2]) and np.all(np.isfinite(ll[[1, 3, 4]]))
    assert gamma_gamma.log_likelihood(PUBLISHED_GG, x, m) == pytest.approx(np.nansum(ll))


# ---------------------------------------------------------------------------------------------
# parameter recovery on simulated data


def test_bg_nbd_and_gamma_gamma_recover_simulated_parameters() -> None:
    """20,000 customers with T ~ U(26, 78) weeks from known parameters (fixed seed).

    Tolerance: 4 asymptotic standard errors of ln θ, from the observed information (the inverse
    Hessian of the log-likelihood at the optimum), and never more than 15 %. At this sample size
    the standard errors are about 1.3 % (r), 2 % (α), 4 % (a), 6 % (b) — so the test is tight
    enough to catch a biased likelihood, while a correct one fails with probability < 1e-4 per
    parameter.
    """
    true_bg = BetaGeoParams(0.5, 5.0, 0.8, 2.5)
    true_gg = GammaGammaParams(6.0, 4.0, 15.0)
    rng = np.random.default_rng(20240601)
    T = rng.uniform(26.0, 78.0, 20_000)
    x, t_x = simulate.simulate_bg_nbd(true_bg, T, rng)
    assert np.all((t_x >= 0) & (t_x <= T)) and np.all(t_x[x == 0] == 0)
    res = bg_nbd.fit(x, t_x, T)
    assert res.converged, res.message
    se = standard_errors(purchase_gradient(bg_nbd, x, t_x, T), res.params)
    err = np.abs(log_params(res.params) - log_params(true_bg))
    assert np.all(se < 0.08), se
    assert np.all(err < np.minimum(4 * se, np.log(1.15))), (res.params, err, se)

    m = simulate.simulate_gamma_gamma(true_gg, x, rng)
    res_gg = gamma_gamma.fit(x, m)
    assert res_gg.converged, res_gg.message
    assert res_gg.n_users == int(np.count_nonzero(x > 0))
    se = standard_errors(spend_gradient(x, m), res_gg.params)
    err = np.abs(log_params(res_gg.params) - log_params(true_gg))
    assert np.all(err < np.minimum(4 * se, np.log(1.15))), (res_gg.params, err, se)
    # the population mean spend is much better determined than p, q, γ separately
    assert _rel(gamma_gamma.population_mean_spend(res_gg.params), gamma_gamma.population_mean_spend(true_gg)) < 0.03


def test_transaction_simulator_through_rfm_recovers_daily_parameters() -> None:
    """Whole chain: transactions (per-day parameters) -> rfm_summary(days) -> fit.

    Purchases are bucketed to days, so the fit sees slightly later recencies and merged same-day
    purchases; with a low daily rate (r/α = 1/60) that bias is small. Tolerance 15 % (the standard
    errors with 6,000 customers are 3-9 %).
    """
    true_bg = BetaGeoParams(0.5, 30.0, 0.8, 2.5)
    true_gg = GammaGammaParams(6.0, 4.0, 15.0)
    rng = np.random.default_rng(5)
    births = [dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 240, 6000)]
    end = dt.date(2024, 12, 31)
    tx = simulate.simulate_transactions(true_bg, true_gg, births, end, rng)
    assert tx.columns == ["user_id", "event_date", "value"]
    assert tx.schema["event_date"] == pl.Date and tx.schema["value"] == pl.Float64
    assert tx["value"].min() > 0 and tx["event_date"].max() <= end
    summary = rfm.rfm_summary(tx, end, "days")
    assert summary.height == tx["user_id"].n_unique() == 6000
    # user i's first purchase is on births[i] (ids are u0000001, ... in birth order)
    assert summary["first_purchase_date"].to_list() == births
    res = bg_nbd.fit(*_xtT(summary))
    assert res.converged, res.message
    for name, value in true_bg.as_dict().items():
        assert _rel(getattr(res.params, name), value) < 0.15, (name, res.params)
    # same generator state -> same data
    rng2 = np.random.default_rng(5)
    rng2.integers(0, 240, 6000)
    assert simulate.simulate_transactions(true_bg, true_gg, births, end, rng2).equals(tx)


# ---------------------------------------------------------------------------------------------
# input validation


@pytest.mark.parametrize(
    ("x", "t_x", "T", "pattern"),
    [
        (
            [1, 2, -1],
            [1.0, 2.0, 0.0],
            [5.0, 5.0, 5.0],
            r"non-negative integer: first offending row 2 \(x=-1.0, t_x=0.0, T=5.0\)",
        ),
        ([1, 2.5, 1], [1.0, 2.0, 1.0], [5.0, 5.0, 5.0], r"non-negative integer: first offending row 1"),
        (
            [1, 1, 1],
            [1.0, 6.0, 1.0],
            [5.0, 5.0, 5.0],
            r"0 <= t_x <= T: first offending row 1 \(x=1.0, t_x=6.0, T=5.0\)",
        ),
        ([0, 0, 1], [0.0, 2.0, 1.0], [5.0, 5.0, 5.0], r"t_x must be 0 when x == 0: first offending row 1"),
        ([0, 1, 1], [0.0, np.nan, 1.0], [5.0, 5.0, 5.0], r"finite: first offending row 1"),
        ([0, 1], [0.0, 1.0, 1.0], [5.0, 5.0, 5.0], r"equal lengths"),
    ],
)
def test_bg_nbd_input_validation_names_the_row(x, t_x, T, pattern) -> None:
    with pytest.raises(ModelInputError, match=pattern):
        bg_nbd.fit(x, t_x, T)
    with pytest.raises(ModelInputError, match=pattern):
        bg_nbd.p_alive(PUBLISHED_BG, x, t_x, T)


def test_bg_nbd_fit_without_repeat_purchases_is_not_converged() -> None:
    res = bg_nbd.fit([0, 0, 0], [0.0, 0.0, 0.0], [5.0, 10.0, 20.0])
    assert not res.converged
    assert "no repeat purchases" in res.message
    assert res.n_users == 3 and res.n_patterns == 3


def test_gamma_gamma_and_param_validation() -> None:
    with pytest.raises(ModelInputError, match=r"monetary_value must be >= 0: first offending row 1"):
        gamma_gamma.fit([1, 2], [3.0, -1.0])
    with pytest.raises(ModelInputError, match="at least one customer"):
        gamma_gamma.fit([0, 0], [0.0, 0.0])
    with pytest.raises(ModelInputError, match="alpha"):
        BetaGeoParams(0.5, -1.0, 1.0, 1.0)
    with pytest.raises(ModelInputError, match="gamma"):
        GammaGammaParams(1.0, 2.0, float("nan"))


# ---------------------------------------------------------------------------------------------
# CLV


def test_discounted_expected_purchases() -> None:
    x = np.array([0, 2, 2, 7, 2])
    t_x = np.array([0.0, 30.43, 30.43, 35.0, 30.43])
    T = np.array([38.86, 38.86, 38.86, 38.86, 38.86])
    horizon = 52.0
    undiscounted = clv.discounted_expected_purchases(PUBLISHED_BG, x, t_x, T, horizon, 12, 7.0, 0.0)
    np.testing.assert_allclose(undiscounted, bg_nbd.expected_purchases(PUBLISHED_BG, horizon, x, t_x, T), rtol=1e-12)
    d = 0.10
    det = clv.discounted_expected_purchases(PUBLISHED_BG, x, t_x, T, horizon, 12, 7.0, d)
    # manual mid-period discounting for row 1
    edges = np.arange(13) * horizon / 12
    cum = np.array([bg_nbd.expected_purchases(PUBLISHED_BG, e, 2, 30.43, 38.86)[0] for e in edges])
    mid_days = (np.arange(1, 13) - 0.5) * horizon / 12 * 7.0
    assert det[1] == pytest.approx(np.sum(np.diff(cum) * 1.1 ** (-mid_days / 365)), rel=1e-12)
    assert det[1] == det[2] == det[4]  # identical patterns
    assert np.all(det < undiscounted) and np.all(det > undiscounted * 1.1 ** (-1.0))
    assert np.all(clv.discounted_expected_purchases(PUBLISHED_BG, x, t_x, T, 0.0, 12, 7.0, d) == 0)


def test_predicted_clv_is_invariant_to_time_unit(cdnow_rfm: pl.DataFrame, cdnow_transactions: pl.DataFrame) -> None:
    """BG/NBD in days with α·7 gives exactly the weekly model's predictions."""
    weekly = clv.predicted_clv(
        PUBLISHED_BG,
        PUBLISHED_GG,
        cdnow_rfm["frequency"],
        cdnow_rfm["recency"],
        cdnow_rfm["t"],
        cdnow_rfm["monetary_value"],
        365,
        "weeks",
        0.10,
        0.3,
    )
    daily_rfm = rfm.rfm_summary(cdnow_transactions, CALIBRATION_END, "days", include_zero_value=True)
    assert daily_rfm["user_id"].equals(cdnow_rfm["user_id"])
    daily_params = BetaGeoParams(PUBLISHED_BG.r, PUBLISHED_BG.alpha * 7, PUBLISHED_BG.a, PUBLISHED_BG.b)
    daily = clv.predicted_clv(
        daily_params,
        PUBLISHED_GG,
        daily_rfm["frequency"],
        daily_rfm["recency"],
        daily_rfm["t"],
        daily_rfm["monetary_value"],
        365,
        "days",
        0.10,
        0.3,
    )
    assert set(weekly) == {"p_alive", "expected_purchases", "expected_spend", "predicted_clv"}
    for key in weekly:
        assert weekly[key].shape == (2357,)
        assert np.all(np.isfinite(weekly[key]))
        np.testing.assert_allclose(daily[key], weekly[key], rtol=1e-9)
    # definition
    det = clv.discounted_expected_purchases(
        PUBLISHED_BG, cdnow_rfm["frequency"], cdnow_rfm["recency"], cdnow_rfm["t"], 365 / 7, 12, 7.0, 0.10
    )
    np.testing.assert_allclose(weekly["predicted_clv"], det * weekly["expected_spend"] * 0.3, rtol=1e-12)
    np.testing.assert_allclose(
        weekly["expected_purchases"],
        bg_nbd.expected_purchases(PUBLISHED_BG, 365 / 7, cdnow_rfm["frequency"], cdnow_rfm["recency"], cdnow_rfm["t"]),
        rtol=1e-12,
    )
    assert np.all(weekly["predicted_clv"] < weekly["expected_purchases"] * weekly["expected_spend"] * 0.3)


def test_new_customer_value() -> None:
    value = clv.new_customer_value(PUBLISHED_BG, PUBLISHED_GG, 365, "weeks", 0.10, 0.3)
    det = clv.discounted_expected_purchases(PUBLISHED_BG, 0, 0, 0, 365 / 7, 12, 7.0, 0.10)[0]
    assert value == pytest.approx(det * gamma_gamma.population_mean_spend(PUBLISHED_GG) * 0.3, rel=1e-12)
    assert det < bg_nbd.expected_purchases_new_customer(PUBLISHED_BG, 365 / 7)[0]
    assert clv.new_customer_value(PUBLISHED_BG, PUBLISHED_GG, 0, "weeks", 0.10, 0.3) == 0.0


# ---------------------------------------------------------------------------------------------
# RFM on hand-made transactions


def _tx(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "event_date": pl.Series([dt.date.fromisoformat(r[1]) for r in rows], dtype=pl.Date),
            "value": pl.Series([r[2] for r in rows], dtype=pl.Float64),
        }
    )


def test_rfm_summary_conventions() -> None:
    tx = _tx(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-01", 5.0),  # same day: merged into one purchase day of 15
            ("a", "2024-01-08", -3.0),  # refund-only day: not a purchase day
            ("a", "2024-01-15", 20.0),
            ("a", "2024-01-15", -20.0),  # fully refunded the same day: not a purchase day
            ("a", "2024-01-22", 8.0),
            ("a", "2024-01-22", -2.0),  # net 6 > 0: a purchase day worth 6
            ("a", "2024-03-01", 100.0),  # after observation_end: ignored
            ("b", "2024-01-10", -5.0),  # refund only: b is absent
            ("c", "2024-01-29", 0.0),  # zero value: c is not a payer by default
            ("d", "2024-01-05", -1.0),  # refund before the first purchase
            ("d", "2024-01-06", 4.0),
            ("d", "2024-01-07", 0.1),
            ("d", "2024-01-07", 0.2),
            ("d", "2024-01-07", -0.3),  # nets to exactly 0 (not 5.6e-17 as in floats): no purchase
        ]
    )
    end = dt.date(2024, 1, 29)
    out = rfm.rfm_summary(tx, end, "days")
    assert out.columns == list(rfm.RFM_COLUMNS)
    assert out["user_id"].to_list() == ["a", "d"]
    assert out.schema["frequency"] == pl.Int64 and out.schema["recency"] == pl.Float64
    a = out.row(0, named=True)
    assert a["first_purchase_date"] == dt.date(2024, 1, 1) and a["last_purchase_date"] == dt.date(2024, 1, 22)
    assert a["frequency"] == 1
    assert a["recency"] == 21.0 and a["t"] == 28.0
    assert a["monetary_value"] == 6.0
    assert a["first_purchase_value"] == 15.0
    assert a["total_value"] == 15.0 - 3.0 + 0.0 + 6.0
    d = out.row(1, named=True)
    assert (d["frequency"], d["recency"], d["t"], d["monetary_value"]) == (0, 0.0, 23.0, 0.0)
    assert d["first_purchase_value"] == 4.0 and d["total_value"] == 3.0
    weeks = rfm.rfm_summary(tx, end, "weeks")
    assert weeks["recency"][0] == pytest.approx(3.0) and weeks["t"][0] == pytest.approx(4.0)
    assert weeks["t"][1] == pytest.approx(23 / 7)
    with_zero = rfm.rfm_summary(tx, end, "days", include_zero_value=True)
    assert with_zero["user_id"].to_list() == ["a", "c", "d"]
    # the same-day full refund is still not a purchase day with include_zero_value
    assert with_zero.row(0, named=True)["frequency"] == 1


def test_rfm_summary_is_bit_identical_for_reruns_and_shuffled_input() -> None:
    rng = np.random.default_rng(3)
    births = [dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 300, 20_000)]
    end = dt.date(2024, 12, 31)
    tx = simulate.simulate_transactions(BetaGeoParams(0.5, 20.0, 0.8, 2.5), PUBLISHED_GG, births, end, rng)
    refunds = tx.sample(10_000, seed=1).with_columns(pl.col("value") * -0.37)
    tx = pl.concat([tx, refunds, tx.sample(5_000, seed=2)])
    first = rfm.rfm_summary(tx, end, "days")
    for seed in range(3):
        assert rfm.rfm_summary(tx, end, "days").equals(first)
        assert rfm.rfm_summary(tx.sample(fraction=1.0, shuffle=True, seed=seed), end, "days").equals(first)
    # and the fits on it are bit-identical too
    fit = bg_nbd.fit(*_xtT(first))
    assert bg_nbd.fit(*_xtT(rfm.rfm_summary(tx.reverse(), end, "days"))).params == fit.params


def test_calibration_holdout_split() -> None:
    tx = _tx(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-10", 10.0),
            ("a", "2024-02-05", 7.0),
            ("a", "2024-02-05", 3.0),
            ("a", "2024-02-07", -4.0),
            ("a", "2024-02-20", 30.0),
            ("a", "2024-04-01", 30.0),  # after holdout_end
            ("b", "2024-01-20", 5.0),
            ("c", "2024-02-02", 9.0),  # born in the holdout: not included
        ]
    )
    out = rfm.calibration_holdout_split(tx, dt.date(2024, 1, 31), dt.date(2024, 2, 28), "weeks")
    assert out["user_id"].to_list() == ["a", "b"]
    a, b = out.row(0, named=True), out.row(1, named=True)
    assert a["frequency"] == 1 and a["t"] == pytest.approx(30 / 7)
    assert a["holdout_frequency"] == 2 and b["holdout_frequency"] == 0
    assert a["holdout_value"] == pytest.approx(36.0) and a["holdout_monetary_value"] == pytest.approx(20.0)
    assert out.schema["holdout_frequency"] == pl.Int64
    assert out["holdout_duration"].to_list() == [pytest.approx(4.0)] * 2


def test_time_unit_helpers() -> None:
    assert rfm.horizon_in_units(365, "days") == 365.0
    assert rfm.horizon_in_units(365, "weeks") == pytest.approx(365 / 7)
    np.testing.assert_allclose(rfm.to_time_unit(np.array([7.0, 14.0]), "weeks"), [1.0, 2.0])
    with pytest.raises(ValueError, match="time_unit"):
        rfm.to_time_unit(1.0, "months")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pl.Date"):
        rfm.rfm_summary(
            _tx([("a", "2024-01-01", 1.0)]).with_columns(pl.col("event_date").cast(pl.Datetime)),
            dt.date(2024, 1, 2),
            "days",
        )


def test_expected_purchases_on_the_infinite_a_b_ridge_use_the_point_mass_limit():
    """Fits on data without dropout heterogeneity run off to a, b → ∞ (seen on a 60-day sample:
    a = 5e9). There the hypergeometric series needs ~a terms; the point-mass limit is used, and it
    agrees with the exact form where both can be computed."""
    from clv_pipeline.models import bg_nbd as bg

    x = np.array([0.0, 1, 3, 10, 40])
    T = np.array([10.0, 30, 50, 60, 60])
    t = np.array([365.0, 365, 100, 365, 5])
    r, alpha = 0.15, 4.6
    for a, b in [(1e4, 2e4), (1e5, 1.8e5)]:
        exact = bg._g_over_a_minus_1_raw(r, alpha, a, b, x, T, t)
        limit = bg._g_over_a_minus_1_limit(r, alpha, a, b, x, T, t)
        np.testing.assert_allclose(limit, exact, rtol=0.3 / a)
    params = bg.BetaGeoParams(r=r, alpha=alpha, a=5.2e9, b=9.2e9)
    expected = bg.expected_purchases(params, t, x, np.minimum(T, x * 2), T)
    p = 5.2e9 / (5.2e9 + 9.2e9)
    # alive-part closed form: (1 − ((α+T)/(α+T+p t))^(r+x)) / p, times P(alive)
    alive = bg.expected_purchases_alive(params, t, x, T)
    np.testing.assert_allclose(alive, -np.expm1(-(r + x) * np.log1p(p * t / (alpha + T))) / p, rtol=1e-6)
    assert np.all(np.isfinite(expected)) and np.all(expected <= alive + 1e-12)
