"""CDNOW (PRODUCT.md §7) imported with `clv import cdnow` and run with observation end 1997-09-30
in weeks: the pipeline's model_fit reproduces the published BG/NBD, Pareto/NBD and Gamma-Gamma
figures, backtests the candidates, records its choice, and user_clv / channel_roi use it. A run
on a handful of CDNOW customers shows the fallbacks: numbers, labelled, never null."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from clv_pipeline_tests.conftest import CDNOW_SAMPLE, needs_cdnow, run_on

pytestmark = [needs_cdnow, pytest.mark.slow]

PUBLISHED_BG_NBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_PARETO_NBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def fitted(run, model: str) -> tuple[dict[str, float], dict]:
    table = run.table("model_fit").filter(pl.col("model") == model)
    return dict(zip(table["parameter"].to_list(), table["value"].to_list(), strict=True)), table.row(0, named=True)


def test_bg_nbd_matches_the_published_parameters(cdnow_run):
    params, row = fitted(cdnow_run, "bg_nbd")
    for name, value in PUBLISHED_BG_NBD.items():
        assert params[name] == pytest.approx(value, rel=0.005), name
    assert row["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)
    assert row["n_users"] == 2357
    assert row["time_unit"] == "weeks"
    assert str(row["observation_end"]) == "1997-09-30"
    assert row["converged"]


def test_pareto_nbd_matches_the_published_parameters(cdnow_run):
    params, row = fitted(cdnow_run, "pareto_nbd")
    for name, value in PUBLISHED_PARETO_NBD.items():
        assert params[name] == pytest.approx(value, rel=0.005), name
    assert row["log_likelihood"] == pytest.approx(-9595.0, abs=0.1)
    assert row["n_users"] == 2357 and row["converged"]


def test_gamma_gamma_matches_the_published_parameters(cdnow_run):
    """Run with --store-fee iap=0 (CDNOW's sales carry no app-store fee), net = gross."""
    params, row = fitted(cdnow_run, "gamma_gamma")
    for name, value in PUBLISHED_GAMMA_GAMMA.items():
        assert params[name] == pytest.approx(value, rel=0.005), name
    assert row["n_users"] == 946


def test_candidates_are_backtested_and_one_per_role_is_chosen(cdnow_run):
    fit = cdnow_run.table("model_fit")
    per_model = fit.group_by("model", maintain_order=True).agg(pl.all().first())
    assert per_model["model"].to_list() == ["bg_nbd", "mbg_nbd", "pareto_nbd", "pooled_rate", "gamma_gamma", "mean_spend"]
    # the holdout is the second half of the 272 days of history: 1997-05-18 .. 1997-09-30
    assert per_model["calibration_end"].unique().to_list() == [date(1997, 5, 17)]
    assert per_model["holdout_days"].unique().to_list() == [136]
    purchase = per_model.filter(pl.col("role") == "purchase")
    assert purchase["holdout_actual"].unique().to_list() == [1136.0]  # repeat purchase days of the holdout
    assert purchase["holdout_users"].unique().to_list() == [2357]
    for column in ("holdout_predicted", "holdout_mae", "holdout_rmse", "holdout_aggregate_error", "holdout_curve_error"):
        assert purchase[column].null_count() == 0, column
    assert fit["calibration_value"].null_count() == 0
    chosen = per_model.filter(pl.col("chosen"))
    assert sorted(chosen["role"].to_list()) == ["purchase", "spend"]
    # BG/NBD stays: no challenger's holdout error is significantly lower on CDNOW
    assert chosen["model"].to_list() == ["bg_nbd", "gamma_gamma"]
    assert per_model.filter(pl.col("model") == "mbg_nbd")["selection"][0].startswith("holdout mean squared error not significantly lower")


def test_user_clv_uses_the_calibration_window_only(cdnow_run):
    clv = cdnow_run.table("user_clv")
    assert clv.height == 2357
    assert set(clv["model"].unique()) == {"bg_nbd+gamma_gamma"}  # every CDNOW customer has bought
    assert clv["last_purchase_date"].max().isoformat() <= "1997-09-30"
    assert clv["p_alive"].is_between(0, 1).all()
    one_timers = clv.filter(pl.col("frequency") == 0)
    assert (one_timers["p_alive"] == 1.0).all()  # BG/NBD: no repeat purchase, no evidence of dropout
    for column in ("expected_purchases", "predicted_clv", "lifetime_value", "predicted_revenue_net_d365"):
        assert clv[column].null_count() == 0, column
    roi = cdnow_run.table("channel_roi").filter(pl.col("installs") > 0)
    assert roi["predicted_revenue_net_365"].null_count() == 0


@pytest.fixture(scope="module")
def tiny_cdnow_run(tmp_path_factory):
    """The first 12 CDNOW customers only: too few for any likelihood model."""
    from clv_pipeline.ingestion.importers import import_cdnow

    root = tmp_path_factory.mktemp("tiny_cdnow")
    keep: list[str] = []
    lines = []
    for line in CDNOW_SAMPLE.read_text().splitlines():
        customer = line.split()[0]
        if customer not in keep and len(keep) == 12:
            break
        if customer not in keep:
            keep.append(customer)
        lines.append(line)
    source = root / "CDNOW_tiny.txt"
    source.write_text("\n".join(lines) + "\n")
    import_cdnow(source, root / "landing")
    return run_on(root / "landing", root, observation_end=date(1997, 9, 30), time_unit="weeks", store_fees={"iap": 0.0})


def test_unfittable_models_fall_back_to_labelled_numbers(tiny_cdnow_run):
    fit = tiny_cdnow_run.table("model_fit").group_by("model", maintain_order=True).agg(pl.all().first())
    for model in ("bg_nbd", "mbg_nbd", "pareto_nbd", "gamma_gamma"):
        row = fit.filter(pl.col("model") == model).row(0, named=True)
        assert row["parameter"] is None and row["message"].startswith("not fitted:"), model
    assert fit.filter(pl.col("chosen"))["model"].to_list() == ["pooled_rate", "mean_spend"]
    clv = tiny_cdnow_run.table("user_clv")
    assert clv.height == 12
    assert set(clv["model"].unique()) == {"pooled_rate+mean_spend"}
    assert clv["p_alive"].null_count() == 12  # the pooled rate has no dropout process: no P(alive)
    for column in ("expected_purchases", "predicted_clv", "lifetime_value", "net_clv", "predicted_revenue_net_d365"):
        assert clv[column].null_count() == 0 and clv[column].is_finite().all(), column
    assert (clv["predicted_clv"] >= 0).all()
    roi = tiny_cdnow_run.table("channel_roi").filter(pl.col("installs") > 0)
    assert roi["predicted_revenue_net_365"].null_count() == 0
