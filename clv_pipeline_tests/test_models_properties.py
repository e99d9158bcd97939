"""Property tests (hypothesis) over random valid and invalid inputs and parameters, for every
purchase model, Gamma-Gamma, the CLV chain, sBG and the RFM summary:

* no NaN or infinity in any output, P(alive) in [0, 1];
* expected purchases >= 0 and non-decreasing in the horizon, equal to E[·| alive] × P(alive);
* invalid rows raise ModelInputError naming the first offending row;
* the RFM summary equals a plain-Python reference and does not depend on the row order.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clv_pipeline.models import bg_nbd, clv, gamma_gamma, mbg_nbd, pareto_nbd, rfm, sbg
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.fitting import ModelInputError
from clv_pipeline.models.gamma_gamma import GammaGammaParams
from clv_pipeline.models.mbg_nbd import ModifiedBetaGeoParams
from clv_pipeline.models.pareto_nbd import ParetoNBDParams
from clv_pipeline.models.sbg import ShiftedBetaGeoParams

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def log_uniform(lo: float, hi: float):
    return st.floats(math.log(lo), math.log(hi)).map(math.exp)


@st.composite
def purchase_params(draw):
    kind = draw(st.sampled_from(["bg_nbd", "mbg_nbd", "pareto_nbd"]))
    r = draw(log_uniform(0.02, 50.0))
    alpha = draw(log_uniform(1e-3, 1e7))
    if kind == "pareto_nbd":
        return ParetoNBDParams(r, alpha, draw(log_uniform(0.02, 50.0)), draw(log_uniform(1e-3, 1e7)))
    a, b = draw(log_uniform(0.01, 50.0)), draw(log_uniform(0.01, 50.0))
    return (BetaGeoParams if kind == "bg_nbd" else ModifiedBetaGeoParams)(r, alpha, a, b)


@st.composite
def histories(draw, max_rows: int = 8):
    n = draw(st.integers(1, max_rows))
    x = np.array(draw(st.lists(st.one_of(st.integers(0, 5), st.integers(0, 3000)), min_size=n, max_size=n)), dtype=float)
    T = np.array(draw(st.lists(st.floats(0.0, 2000.0), min_size=n, max_size=n)))
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    t_x = np.where(x > 0, T * share, 0.0)
    return x, t_x, T


MODULES = {BetaGeoParams: bg_nbd, ModifiedBetaGeoParams: mbg_nbd, ParetoNBDParams: pareto_nbd}


@SETTINGS
@given(params=purchase_params(), data=histories(), horizons=st.lists(st.floats(0.0, 5000.0), min_size=2, max_size=4))
def test_purchase_models_outputs_are_finite_bounded_and_monotone(params, data, horizons) -> None:
    module = MODULES[type(params)]
    x, t_x, T = data
    ll = module.individual_log_likelihood(params, x, t_x, T)
    assert np.all(np.isfinite(ll)), ll
    pa = module.p_alive(params, x, t_x, T)
    assert np.all(np.isfinite(pa)) and np.all((pa >= 0) & (pa <= 1))
    previous = np.zeros(len(x))
    for t in sorted(horizons):
        e = module.expected_purchases(params, t, x, t_x, T)
        assert np.all(np.isfinite(e)) and np.all(e >= 0), (t, e)
        assert np.all(e >= previous - 1e-9 * np.maximum(previous, 1.0)), (t, e, previous)
        previous = e
    alive = module.expected_purchases_alive(params, horizons[0], x, T)
    np.testing.assert_allclose(
        module.expected_purchases(params, horizons[0], x, t_x, T), alive * pa, rtol=1e-9, atol=1e-300
    )


@SETTINGS
@given(params=purchase_params(), data=histories(), spend=st.tuples(log_uniform(0.1, 50), log_uniform(1.05, 50), log_uniform(0.1, 1e4)))
def test_clv_chain_is_finite_and_non_negative(params, data, spend) -> None:
    x, t_x, T = data
    gg = GammaGammaParams(*spend)
    m = np.where(x > 0, 1.0 + T % 97.0, 0.0)
    out = clv.predicted_clv(params, gg, x, t_x, T, m, 365, "days", 0.10, 0.7)
    for key, values in out.items():
        assert np.all(np.isfinite(values)) and np.all(values >= 0), key
    assert np.all(out["predicted_clv"] <= out["expected_purchases"] * out["expected_spend"] * 0.7 * (1 + 1e-12))


@SETTINGS
@given(
    spend=st.tuples(log_uniform(0.1, 50), log_uniform(1.05, 50), log_uniform(0.1, 1e4)),
    rows=st.lists(st.tuples(st.integers(0, 5000), st.floats(0.0, 1e5)), min_size=1, max_size=8),
)
def test_gamma_gamma_expected_spend_is_a_shrinkage(spend, rows) -> None:
    params = GammaGammaParams(*spend)
    x = np.array([r[0] for r in rows], dtype=float)
    m = np.array([r[1] for r in rows])
    e = gamma_gamma.conditional_expected_spend(params, x, m)
    mean = gamma_gamma.population_mean_spend(params)
    assert np.all(np.isfinite(e))
    lo, hi = np.minimum(m, mean), np.maximum(m, mean)
    own = x > 0
    assert np.all(e[own] >= lo[own] * (1 - 1e-9) - 1e-9) and np.all(e[own] <= hi[own] * (1 + 1e-9) + 1e-9)
    assert np.allclose(e[~own], mean)
    ll = gamma_gamma.individual_log_likelihood(params, x, m)
    assert np.all(np.isfinite(ll[(x > 0) & (m > 0)]))


@SETTINGS
@given(data=histories(), which=st.integers(0, 7), kind=st.sampled_from(["negative_x", "fraction_x", "late_t_x", "t_x_without_x", "nan"]))
def test_invalid_rows_are_named(data, which, kind) -> None:
    x, t_x, T = (a.copy() for a in data)
    i = which % len(x)
    if kind == "negative_x":
        x[i], pattern = -1.0, "non-negative integer"
    elif kind == "fraction_x":
        x[i], t_x[i], pattern = 2.5, 0.0, "non-negative integer"
    elif kind == "late_t_x":
        x[i], t_x[i], pattern = 1.0, T[i] + 1.0, "0 <= t_x <= T"
    elif kind == "t_x_without_x":
        x[i], t_x[i], T[i], pattern = 0.0, 1.0, T[i] + 2.0, "t_x must be 0 when x == 0"
    else:
        T[i], pattern = float("nan"), "finite"
    # the named row is the first offending one
    expected = f"first offending row {i}"
    for module, params in ((bg_nbd, BetaGeoParams(0.2, 4, 0.8, 2)), (mbg_nbd, ModifiedBetaGeoParams(0.2, 4, 0.8, 2)), (pareto_nbd, ParetoNBDParams(0.5, 10, 0.6, 11))):
        for call in (lambda: module.p_alive(params, x, t_x, T), lambda: module.fit(x, t_x, T)):
            with pytest.raises(ModelInputError) as info:
                call()
            message = str(info.value)
            assert pattern in message or "finite" in message, message
            assert "first offending row" in message
            first = int(message.split("first offending row ")[1].split(" ")[0])
            assert first <= i
            if first == i:
                assert expected in message


@SETTINGS
@given(alpha=log_uniform(0.01, 100), beta=log_uniform(0.01, 100), d=log_uniform(1e-3, 1.0))
def test_sbg_outputs(alpha, beta, d) -> None:
    p = ShiftedBetaGeoParams(alpha, beta)
    t = np.arange(0, 50)
    s = sbg.survival(p, t)
    assert np.all(np.isfinite(s)) and s[0] == 1 and np.all(np.diff(s) <= 0) and np.all(s > 0)
    r = sbg.retention_rate(p, t[1:])
    assert np.all((r > 0) & (r < 1)) and np.all(np.diff(r) >= 0)
    derl = sbg.discounted_expected_residual_lifetime(p, d, [0, 5])
    assert np.all(np.isfinite(derl)) and np.all(derl > 0) and np.all(derl <= (1 + d) / d + 1e-9)


@st.composite
def transactions(draw):
    n = draw(st.integers(1, 40))
    users = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
    values = draw(st.lists(st.one_of(st.sampled_from([0.0, -5.0, 9.99, -9.99]), st.floats(-50, 200).map(lambda v: round(v, 2))), min_size=n, max_size=n))
    start = dt.date(2024, 3, 1)
    return pl.DataFrame(
        {
            "user_id": users,
            "event_date": pl.Series([start + dt.timedelta(days=d) for d in days], dtype=pl.Date),
            "value": pl.Series(values, dtype=pl.Float64),
        }
    )


def _reference_rfm(tx: pl.DataFrame, end: dt.date, include_zero_value: bool) -> dict[str, tuple]:
    days: dict[tuple[str, dt.date], list[int]] = {}
    for u, d, v in tx.iter_rows():
        if d <= end:
            days.setdefault((u, d), []).append(round(v * 1_000_000))
    out = {}
    for u in sorted({u for u, _ in days}):
        mine = sorted((d, sum(vs), all(v == 0 for v in vs)) for (uu, d), vs in days.items() if uu == u)
        purchases = [(d, net) for d, net, zero in mine if net > 0 or (include_zero_value and zero)]
        if not purchases:
            continue
        first, last = purchases[0][0], purchases[-1][0]
        freq = len(purchases) - 1
        monetary = sum(net for _, net in purchases[1:]) / 1e6 / freq if freq else 0.0
        out[u] = (freq, float((last - first).days), float((end - first).days), monetary, purchases[0][1] / 1e6, sum(n for _, n, _ in mine) / 1e6)
    return out


@SETTINGS
@given(tx=transactions(), include_zero=st.booleans(), end_offset=st.integers(0, 35), seed=st.integers(0, 1000))
def test_rfm_summary_matches_a_plain_reference(tx, include_zero, end_offset, seed) -> None:
    end = dt.date(2024, 3, 1) + dt.timedelta(days=end_offset)
    got = rfm.rfm_summary(tx, end, "days", include_zero_value=include_zero)
    ref = _reference_rfm(tx, end, include_zero)
    assert got["user_id"].to_list() == list(ref)
    for row in got.iter_rows(named=True):
        freq, rec, t, mon, first, total = ref[row["user_id"]]
        assert (row["frequency"], row["recency"], row["t"]) == (freq, rec, t)
        assert row["monetary_value"] == pytest.approx(mon, abs=1e-9)
        assert row["first_purchase_value"] == pytest.approx(first, abs=1e-9)
        assert row["total_value"] == pytest.approx(total, abs=1e-9)
        assert 0 <= row["recency"] <= row["t"] and (row["frequency"] > 0 or row["recency"] == 0)
    shuffled = tx.sample(fraction=1.0, shuffle=True, seed=seed)
    assert rfm.rfm_summary(shuffled, end, "days", include_zero_value=include_zero).equals(got)
    assume(got.height > 0)
    bg_nbd.validate_inputs(got["frequency"], got["recency"], got["t"])  # always valid model input
