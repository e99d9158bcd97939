"""`user_clv`: one row per installed user with revenue to date, model predictions and CLV
(PRODUCT.md §5, §6). Pure Polars / numpy.

Two paths (`model` column):
- `<purchase model>+<spend model>` — users with at least one purchase day: the BTYD clock starts
  at their first purchase; P(alive), expected purchases over the horizon and the discounted
  predicted CLV come from the models `model_fit` chose for this run (`model_fit.chosen`):
  purchase model bg_nbd, mbg_nbd or pareto_nbd — or the `pooled_rate` fallback when none could be
  fitted — and spend model gamma_gamma — or the `mean_spend` fallback (see `models.fallback`).
  E.g. `bg_nbd+gamma_gamma`, `pooled_rate+mean_spend`. P(alive) is null for `pooled_rate`, which
  has no dropout process.
- `cohort_payer_curve` — users who have not paid: P(first purchase within the horizon), from the
  Kaplan–Meier payer curve of their app × media source given their age, × the expected value of a
  new payer (mean first-purchase value + the chosen models' value of a newborn customer over the
  rest of the horizon), discounted from the expected conversion day. When no purchase day of
  positive value has been observed at all, the value of a new payer is 0 (and so, necessarily, is
  every conversion probability unless payers refunded everything).
Every prediction is a number: a model that cannot be fitted is replaced by its fallback, never
by null.

Definitions:
- revenue_net_to_date: net revenue (all revenue types, refunds included) up to the observation end;
- predicted_clv: discounted value over the horizon after the observation end;
- lifetime_value = revenue_net_to_date + predicted_clv;
- cac: attributed spend of the user's install cell ÷ installs of that cell; net_clv = lifetime_value − cac;
- formula_clv: the textbook per-install figure of the user's app × media source (metrics.curves);
- predicted_revenue_net_d365: observed net revenue of day indexes 0..365 plus the undiscounted
  prediction up to day 365 after install (feeds channel_roi.predicted_revenue_net_365).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from clv_pipeline.ingestion.normalise import MONEY
from clv_pipeline.ingestion.sources import PURCHASE_REVENUE_TYPES
from clv_pipeline.marts.model_fit import POOLED_RATE, ClvModels
from clv_pipeline.metrics.cohorts import COHORT_KEYS, DIMS, USER_KEY
from clv_pipeline.metrics.curves import conversion_within
from clv_pipeline.metrics.numeric import exact_mean
from clv_pipeline.models import clv
from clv_pipeline.models.fitting import ModelInputError
from clv_pipeline.models.rfm import rfm_summary, unit_days

MODEL_PAYER_CURVE = "cohort_payer_curve"
ROI_HORIZON_DAYS = 365

USER_CLV_COLUMNS = (
    "user_id",
    "install_date",
    *DIMS,
    "frequency",
    "recency",
    "t",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "predicted_clv",
    "revenue_net_to_date",
    "lifetime_value",
    "cac",
    "net_clv",
    "formula_clv",
    "model",
    "predicted_revenue_net_d365",
    "first_purchase_date",
    "last_purchase_date",
    "days_since_last_purchase",
)


@dataclass(frozen=True)
class ClvSettings:
    observation_end: date
    time_unit: str
    horizon_days: int
    annual_discount_rate: float
    margin: float


def keyed_members(members: pl.DataFrame) -> pl.DataFrame:
    """Members with a compact integer user key `_uid` (users are unique per app)."""
    return members.sort(*USER_KEY).with_row_index("_uid")


def btyd_transactions(members: pl.DataFrame, purchases: pl.DataFrame, observation_end: date) -> pl.DataFrame:
    """Purchase events (iap, subscription) of cohort members up to the observation end, as the
    (user_id, event_date, value = net USD) frame the RFM summary takes. user_id is `_uid`."""
    return (
        purchases.filter(pl.col("revenue_type").is_in(PURCHASE_REVENUE_TYPES) & (pl.col("event_date") <= observation_end))
        .join(members.select(*USER_KEY, "_uid"), on=list(USER_KEY), how="inner")
        .select(pl.col("_uid").alias("user_id"), "event_date", pl.col("revenue_net_usd").cast(pl.Float64).alias("value"))
    )


def user_rfm(members: pl.DataFrame, purchases: pl.DataFrame, observation_end: date, time_unit: str) -> pl.DataFrame:
    """BTYD RFM summary of every member who has a purchase day. A day whose purchase events are
    all exactly $0 still counts as a purchase day (a transaction-counting model counts it)."""
    return rfm_summary(btyd_transactions(members, purchases, observation_end), observation_end, time_unit, include_zero_value=True)


def _first_purchase_value_mean(rfm: pl.DataFrame) -> float:
    return float(rfm.select(exact_mean(pl.col("first_purchase_value"))).item() or 0.0) if rfm.height else 0.0


def build_user_clv(
    members: pl.DataFrame,
    purchases: pl.DataFrame,
    rfm: pl.DataFrame,
    models: ClvModels,
    survival: pl.DataFrame,
    cell_cac: pl.DataFrame,
    formula: pl.DataFrame,
    settings: ClvSettings,
) -> pl.DataFrame:
    """Assemble `user_clv`. `members` must come from `keyed_members`; `rfm` from `user_rfm` on the
    same members; `survival` from `metrics.curves.payer_survival`; `cell_cac`: cohort keys + cac;
    `formula`: app_id, media_source, formula_clv."""
    obs_end = settings.observation_end
    unit = unit_days(settings.time_unit)
    users = members.with_columns(age_days=(pl.lit(obs_end) - pl.col("cohort_date")).dt.total_days())

    to_date = (
        purchases.filter(pl.col("event_date") <= obs_end)
        .join(users.select(*USER_KEY, "_uid", "install_time", "cohort_date"), on=list(USER_KEY), how="inner")
        .with_columns(day_index=(pl.col("event_date") - pl.col("cohort_date")).dt.total_days())
        .group_by("_uid")
        .agg(
            pl.col("revenue_net_usd").sum().alias("revenue_net_to_date"),
            pl.col("revenue_net_usd").filter(pl.col("day_index") <= ROI_HORIZON_DAYS).sum().alias("_net_d365_observed"),
        )
    )
    users = users.join(to_date, on="_uid", how="left").with_columns(
        pl.col("revenue_net_to_date").fill_null(pl.lit(0).cast(MONEY)),
        pl.col("_net_d365_observed").fill_null(pl.lit(0).cast(MONEY)),
    )
    # time left until day 365 after install, in days, from the observation end
    users = users.with_columns(_roi_left_days=pl.max_horizontal(pl.lit(ROI_HORIZON_DAYS) - pl.col("age_days"), pl.lit(0)))

    payers = _predict_payers(users, rfm, models, settings, unit)
    non_payers = _predict_non_payers(users.join(rfm.select(pl.col("user_id").alias("_uid")), on="_uid", how="anti"), rfm, models, survival, settings)
    predicted = pl.concat([payers, non_payers], how="diagonal_relaxed")

    out = (
        users.join(predicted, on="_uid", how="left")
        .join(cell_cac, on=list(COHORT_KEYS), how="left", nulls_equal=True)
        .join(formula, on=["app_id", "media_source"], how="left")
        .with_columns(
            lifetime_value=pl.col("revenue_net_to_date").cast(pl.Float64) + pl.col("predicted_clv"),
            predicted_revenue_net_d365=pl.col("_net_d365_observed").cast(pl.Float64) + pl.col("_roi_predicted"),
            days_since_last_purchase=(pl.lit(obs_end) - pl.col("last_purchase_date")).dt.total_days(),
        )
        .with_columns(net_clv=pl.col("lifetime_value") - pl.col("cac").fill_null(0.0))
    )
    return (
        out.with_columns(install_date=pl.col("cohort_date"))
        .select(USER_CLV_COLUMNS)
        .with_columns([pl.col(c).round(6) for c in ("p_alive", "expected_purchases", "predicted_clv", "lifetime_value", "net_clv", "cac", "formula_clv", "predicted_revenue_net_d365", "monetary_value", "recency", "t")])
        .sort("app_id", "user_id")
    )


def _predict_payers(users: pl.DataFrame, rfm: pl.DataFrame, models: ClvModels, settings: ClvSettings, unit: float) -> pl.DataFrame:
    frame = rfm.rename({"user_id": "_uid"}).join(users.select("_uid", "_roi_left_days"), on="_uid", how="inner")
    base = frame.select("_uid", "frequency", "recency", "t", "monetary_value", "first_purchase_date", "last_purchase_date")
    purchase, spend = models.purchase, models.spend
    if frame.height == 0 or purchase is None or spend is None:
        # no payers (then model_fit fitted nothing): nothing to predict here
        return base.with_columns(
            *[pl.lit(None, dtype=pl.Float64).alias(c) for c in ("p_alive", "expected_purchases", "predicted_clv", "_roi_predicted")],
            model=pl.lit(models.label),
        )
    x, t_x, T, m = (frame[c].to_numpy() for c in ("frequency", "recency", "t", "monetary_value"))
    try:
        pred = clv.predicted_clv(
            purchase.params, spend.params, x, t_x, T, m, settings.horizon_days, settings.time_unit, settings.annual_discount_rate, settings.margin
        )
    except ModelInputError as exc:
        if exc.row is None:
            raise
        raise ModelInputError(f"user_clv: user _uid {frame['_uid'][exc.row]}: {exc}", row=exc.row) from exc
    roi_left = frame["_roi_left_days"].to_numpy() / unit
    roi_purchases = clv.expected_purchases(purchase.params, roi_left, x, t_x, T)
    p_alive = pl.Series(pred["p_alive"], dtype=pl.Float64)
    if purchase.model == POOLED_RATE:
        p_alive = pl.Series([None] * frame.height, dtype=pl.Float64)
    return base.with_columns(
        p_alive=p_alive,
        expected_purchases=pl.Series(pred["expected_purchases"]),
        predicted_clv=pl.Series(pred["predicted_clv"]),
        _roi_predicted=pl.Series(roi_purchases * pred["expected_spend"] * settings.margin),
        model=pl.lit(models.label),
    )


def _predict_non_payers(
    users: pl.DataFrame, rfm: pl.DataFrame, models: ClvModels, survival: pl.DataFrame, settings: ClvSettings
) -> pl.DataFrame:
    """P(first purchase in the horizon) × value of a new payer, per user (see module docstring)."""
    if users.height == 0:
        return pl.DataFrame(schema={"_uid": pl.UInt32})
    purchase, spend = models.purchase, models.spend
    have_models = purchase is not None and spend is not None and rfm.height > 0
    first_value = _first_purchase_value_mean(rfm) * settings.margin
    unit = unit_days(settings.time_unit)
    horizon = settings.horizon_days
    rate = settings.annual_discount_rate
    curves = {
        key: group.sort("day")["survival"].to_numpy()
        for key, group in survival.group_by(["app_id", "media_source"], maintain_order=True)
    }
    combos = users.select("app_id", "media_source", "age_days", "_roi_left_days").unique().sort(
        "app_id", "media_source", "age_days", "_roi_left_days", nulls_last=True
    )
    values: dict[str, list[float]] = {"p": [], "clv": [], "purchases": [], "roi": []}
    mean_spend = clv.population_mean_spend(spend.params) * settings.margin if have_models else 0.0  # type: ignore[union-attr]
    cache: dict[int, tuple[float, float]] = {}

    def newborn(remaining_days: int) -> tuple[float, float]:
        """(discounted value, undiscounted repeat purchases) of a customer born now."""
        if not have_models:
            return 0.0, 0.0
        if remaining_days not in cache:
            days = max(remaining_days, 0)
            value = (
                clv.new_customer_value(purchase.params, spend.params, days, settings.time_unit, rate, settings.margin)  # type: ignore[union-attr]
                if days > 0
                else 0.0
            )
            repeats = float(clv.expected_purchases_new_customer(purchase.params, days / unit)[0])  # type: ignore[union-attr]
            cache[remaining_days] = (value, repeats)
        return cache[remaining_days]

    for app_id, media_source, age, roi_left in combos.iter_rows():
        curve = curves.get((app_id, media_source), np.ones(1))
        conv = conversion_within(curve, int(age), horizon)
        delay = int(round(conv.expected_delay_days))
        repeat_value, repeats = newborn(horizon - delay)
        discount = (1.0 + rate) ** (-conv.expected_delay_days / 365.0)
        values["p"].append(conv.probability)
        values["clv"].append(conv.probability * discount * (first_value + repeat_value))
        values["purchases"].append(conv.probability * (1.0 + repeats))
        roi_conv = conversion_within(curve, int(age), int(roi_left)) if roi_left > 0 else None
        if roi_conv is None or roi_conv.probability == 0:
            values["roi"].append(0.0)
        else:
            _, roi_repeats = newborn(int(roi_left) - int(round(roi_conv.expected_delay_days)))
            values["roi"].append(roi_conv.probability * (first_value + roi_repeats * mean_spend))
    combos = combos.with_columns(
        _p_convert=pl.Series(values["p"], dtype=pl.Float64),
        predicted_clv=pl.Series(values["clv"], dtype=pl.Float64),
        expected_purchases=pl.Series(values["purchases"], dtype=pl.Float64),
        _roi_predicted=pl.Series(values["roi"], dtype=pl.Float64),
    )
    return (
        users.select("_uid", "app_id", "media_source", "age_days", "_roi_left_days")
        .join(combos, on=["app_id", "media_source", "age_days", "_roi_left_days"], how="left", nulls_equal=True)
        .select(
            "_uid",
            pl.lit(None, dtype=pl.Int64).alias("frequency"),
            pl.lit(None, dtype=pl.Float64).alias("p_alive"),
            "expected_purchases",
            "predicted_clv",
            "_roi_predicted",
            pl.lit(MODEL_PAYER_CURVE).alias("model"),
        )
    )


def cell_cac(cells: pl.DataFrame, allocated_spend: pl.DataFrame) -> pl.DataFrame:
    """cac per cohort cell = attributed spend ÷ installs (null for cells without spend)."""
    return cells.join(allocated_spend.select(*COHORT_KEYS, "spend"), on=list(COHORT_KEYS), how="left", nulls_equal=True).select(
        *COHORT_KEYS, (pl.col("spend").cast(pl.Float64) / pl.col("cohort_size")).alias("cac")
    )
