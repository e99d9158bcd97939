"""Model choice and backtest (`marts.model_fit`): the holdout scores, the per-run choice, the
fallbacks, the `model_fit` table and its round trip."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from clv_pipeline.marts import model_fit as mf
from clv_pipeline.models import backtest, clv, fallback, rfm, simulate
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.gamma_gamma import GammaGammaParams
from clv_pipeline.models.mbg_nbd import ModifiedBetaGeoParams
from clv_pipeline.publication.contract import TABLES

END = dt.date(2024, 9, 30)
SPEND = GammaGammaParams(4.0, 3.0, 10.0)


def _transactions(params, n: int, seed: int, birth_days: int = 120, end: dt.date = END) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    births = pl.Series((np.datetime64("2024-01-01") + rng.integers(0, birth_days, n)).astype("datetime64[D]"))
    return simulate.simulate_transactions(params, SPEND, births, end, rng, user_ids=np.arange(n))


@pytest.fixture(scope="module")
def mbg_world() -> tuple[pl.DataFrame, mf.ClvModels]:
    """Customers who may drop out right after their first purchase (MBG/NBD truth, mean dropout
    probability 0.75): BG/NBD, which keeps every one-time buyer alive, over-predicts them."""
    tx = _transactions(ModifiedBetaGeoParams(1.0, 15.0, 3.0, 1.0), 6000, seed=1)
    return tx, mf.fit_clv_models(tx, END, "days", 365)


def test_a_significantly_better_challenger_replaces_the_default(mbg_world) -> None:
    _, models = mbg_world
    assert models.label == "mbg_nbd+gamma_gamma"
    e = models.entries
    assert e["mbg_nbd"].chosen and not e["bg_nbd"].chosen
    assert e["mbg_nbd"].scores.rmse < e["bg_nbd"].scores.rmse
    assert e["mbg_nbd"].selection.startswith("chosen: holdout mean squared error lower than bg_nbd's")
    assert e["bg_nbd"].selection == "not chosen: mbg_nbd has a significantly lower holdout mean squared error"
    # the paired comparison behind it
    cmp = backtest.significantly_better(e["mbg_nbd"].scores, e["bg_nbd"].scores, mf.SIGNIFICANCE_Z)
    assert cmp.better and cmp.mean_difference > 2 * cmp.standard_error


def test_the_default_stays_when_it_is_the_truth() -> None:
    tx = _transactions(BetaGeoParams(1.0, 15.0, 0.8, 2.5), 6000, seed=1)
    models = mf.fit_clv_models(tx, END, "days", 365)
    assert models.label == "bg_nbd+gamma_gamma"
    assert models.entries["bg_nbd"].selection.startswith("chosen: the default model")


def test_holdout_scores_are_recomputable(mbg_world) -> None:
    tx, models = mbg_world
    bt = models.backtest
    first = rfm.rfm_summary(tx, END, "days", include_zero_value=True)["first_purchase_date"].min()
    assert bt.holdout_days == min(365, (END - first).days // 2)
    assert bt.calibration_end == END - dt.timedelta(days=bt.holdout_days)
    split = rfm.calibration_holdout_split(tx, bt.calibration_end, END, "days", include_zero_value=True)
    assert bt.n_users == split.height
    curve = rfm.repeat_purchase_curve(tx, bt.calibration_end, END, include_zero_value=True)
    assert len(curve) == bt.holdout_days and np.all(np.diff(curve) >= 0)
    assert curve[-1] == split["holdout_frequency"].sum()
    entry = models.entries["bg_nbd"]
    s = entry.scores
    assert s.actual == split["holdout_frequency"].sum() and s.n_users == split.height
    x, t_x, T = (split[c].to_numpy() for c in ("frequency", "recency", "t"))
    predicted = clv.expected_purchases(entry.calibration_params, bt.holdout_days, x, t_x, T)
    assert s.predicted == pytest.approx(predicted.sum(), rel=1e-9)
    err = predicted - split["holdout_frequency"].to_numpy()
    assert s.rmse == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-9)
    assert s.mae == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
    assert s.aggregate_error == pytest.approx(predicted.sum() / s.actual - 1, rel=1e-9)
    grid = backtest.curve_grid(bt.holdout_days, mf.MAX_CURVE_POINTS)
    assert len(grid) == mf.MAX_CURVE_POINTS and grid[-1] == bt.holdout_days
    pred_curve = np.array([clv.expected_purchases(entry.calibration_params, d, x, t_x, T).sum() for d in grid])
    assert s.curve_error == pytest.approx(np.mean(np.abs(pred_curve - curve[grid - 1])) / curve[-1], rel=1e-9)
    # spend scores: customers with a holdout purchase
    gg = models.entries["gamma_gamma"].scores
    assert gg.n_users == int((split["holdout_frequency"] > 0).sum())


def test_model_fit_table_and_round_trip(mbg_world) -> None:
    _, models = mbg_world
    fitted_at = dt.datetime(2024, 9, 30, 23, 59, 59)
    table = mf.model_fit_table(models, END, "days", fitted_at)
    assert table.columns == list(TABLES["model_fit"].columns)  # every published column is described
    assert table["model"].unique(maintain_order=True).to_list() == list(mf.MODEL_ORDER)
    chosen = table.filter(pl.col("chosen")).group_by("role").agg(pl.col("model").unique())
    assert sorted(chosen.rows()) == [("purchase", ["mbg_nbd"]), ("spend", ["gamma_gamma"])]
    assert table.filter(pl.col("model") == "pooled_rate")["parameter"].to_list() == ["rate"]
    assert table["calibration_value"].null_count() == 0 and table["holdout_rmse"].null_count() == 0
    assert table["holdout_curve_error"].is_null().to_list() == (table["role"] == "spend").to_list()
    again = mf.models_from_table(table)
    assert again.label == models.label
    for name, entry in models.entries.items():
        assert again.entries[name].params == entry.params, name
    assert mf.model_fit_table(models, END, "days", fitted_at).equals(table)  # deterministic


def test_too_few_payers_fall_back_to_closed_forms() -> None:
    tx = _transactions(BetaGeoParams(0.5, 10.0, 0.8, 2.5), 8, seed=3)
    summary = rfm.rfm_summary(tx, END, "days", include_zero_value=True)
    models = mf.fit_clv_models(tx, END, "days", 365)
    assert models.label == "pooled_rate+mean_spend"
    for name in ("bg_nbd", "mbg_nbd", "pareto_nbd"):
        entry = models.entries[name]
        assert entry.params is None and entry.message.startswith("not fitted: 8 payers")
    rate = models.entries["pooled_rate"].params.rate
    assert rate == pytest.approx(summary["frequency"].sum() / summary["t"].sum(), rel=1e-12)
    mean = models.entries["mean_spend"].params.mean
    days = summary["frequency"] + 1
    total = summary["first_purchase_value"] + summary["frequency"] * summary["monetary_value"]
    assert mean == pytest.approx(total.sum() / days.sum(), rel=1e-12)
    assert models.entries["pooled_rate"].selection == "fallback: no purchase model could be fitted"
    assert models.entries["mean_spend"].selection == "fallback: Gamma-Gamma could not be used"
    # the fallback predictions are numbers, never NaN
    out = clv.predicted_clv(
        models.purchase.params, models.spend.params, summary["frequency"], summary["recency"], summary["t"],
        summary["monetary_value"], 365, "days", 0.10, 1.0,
    )
    assert np.all(np.isfinite(out["predicted_clv"])) and np.all(out["expected_purchases"] == pytest.approx(rate * 365))


def test_no_payers_fits_nothing() -> None:
    empty = pl.DataFrame(schema={"user_id": pl.Int64, "event_date": pl.Date, "value": pl.Float64})
    models = mf.fit_clv_models(empty, END, "days", 365)
    table = mf.model_fit_table(models, END, "days", dt.datetime(2024, 10, 1))
    assert table["parameter"].null_count() == table.height and "not fitted" in table["message"][0]
    assert models.purchase is None and models.spend is None and models.backtest is None


def test_short_history_has_no_backtest() -> None:
    end = dt.date(2024, 1, 12)
    tx = _transactions(BetaGeoParams(2.0, 2.0, 0.5, 4.0), 400, seed=5, birth_days=3, end=end)
    models = mf.fit_clv_models(tx, end, "days", 365)
    assert models.backtest is None and models.backtest_note.startswith("no backtest:")
    assert models.label == "bg_nbd+gamma_gamma"
    assert models.entries["bg_nbd"].selection.startswith("first eligible")
    table = mf.model_fit_table(models, end, "days", dt.datetime(2024, 1, 13))
    assert table["calibration_end"].null_count() == table.height
    assert all("no backtest" in m for m in table["message"])


def _spend_summary(x: np.ndarray, m: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"frequency": x.astype(np.int64), "monetary_value": m})


def test_gamma_gamma_guards() -> None:
    rng = np.random.default_rng(8)
    x = rng.integers(1, 20, 4000)
    # infinite-mean spend (q < 1): Gamma-Gamma is fitted but not usable -> mean_spend
    heavy = simulate.simulate_gamma_gamma(GammaGammaParams(2.0, 0.7, 10.0), x, rng)
    fit, message, _ = mf._fit_spend(_spend_summary(x, heavy))
    assert fit is None and message.startswith("not usable: q = ")
    # spend per purchase rising with frequency breaks the independence assumption: warned
    correlated = simulate.simulate_gamma_gamma(GammaGammaParams(40.0, 30.0, 10.0), x, rng) * x
    fit, _, warning = mf._fit_spend(_spend_summary(x, correlated))
    assert fit is not None and warning.startswith("frequency–spend correlation 0.")
    _, _, none = mf._fit_spend(_spend_summary(x, simulate.simulate_gamma_gamma(SPEND, x, rng)))
    assert none is None
    # too few repeat buyers
    fit, message, _ = mf._fit_spend(_spend_summary(x[:5], heavy[:5]))
    assert fit is None and message.startswith("not fitted: 5 repeat buyers")


def test_fallback_estimates_and_validation() -> None:
    assert fallback.fit_pooled_rate([0, 0], [0.0, 0.0], [0.0, 0.0]).rate == 0.0
    assert fallback.fit_pooled_rate([2, 0], [5.0, 0.0], [10.0, 10.0]).rate == pytest.approx(0.1)
    assert fallback.fit_mean_spend([0, 2], [0.0, 4.0], [10.0, 7.0]).mean == pytest.approx((10 + 7 + 8) / 4)
    with pytest.raises(Exception, match="at least one purchase day"):
        fallback.fit_mean_spend([], [], [])


def test_input_errors_name_the_user() -> None:
    rfm_frame = pl.DataFrame(
        {
            "user_id": pl.Series([11, 12, 13] * 10, dtype=pl.UInt32),
            "frequency": [1, 2, 0] * 10,
            "recency": [3.0, 9.0, 0.0] * 9 + [3.0, 12.0, 0.0],  # row 28: recency 12 > t 10
            "t": [10.0, 10.0, 10.0] * 10,
        }
    )
    fit, message = mf._fit_purchase("bg_nbd", rfm_frame)
    assert fit is None
    assert "need 0 <= t_x <= T: first offending row 28 (x=2.0, t_x=12.0, T=10.0)" in message
    assert message.endswith("(user_id 12)")
