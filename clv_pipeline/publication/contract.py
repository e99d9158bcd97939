"""The BI contract of PRODUCT.md §6: published tables, their grain and a description of every
column. Used for `COMMENT ON` in the serving database, for Dagster metadata, and by the tests
that check the published schema. One place; nothing else describes these columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from clv_pipeline.settings import ROI_DAYS

DIM_DESCRIPTIONS = {
    "app_id": "app identifier ('default' when the source gives none)",
    "media_source": "attributed network; 'organic' for unattributed installs",
    "campaign": "campaign name; null when the network withholds it",
    "country": "ISO-3166 alpha-2 country of the install",
    "platform": "ios / android / web / other",
}
COHORT_DATE = "install date (reporting time zone) of the cohort"


@dataclass(frozen=True)
class PublishedTable:
    name: str
    grain: str
    description: str
    columns: dict[str, str]


def _dims() -> dict[str, str]:
    return dict(DIM_DESCRIPTIONS)


TABLES: dict[str, PublishedTable] = {
    t.name: t
    for t in (
        PublishedTable(
            "cohort_retention",
            "cohort_date × dims × day_n",
            "Classic and rolling retention by install cohort and day index (PRODUCT.md §4).",
            {
                "cohort_date": COHORT_DATE,
                **_dims(),
                "day_n": "day index N since install (calendar days, or 24-hour windows in 24h mode)",
                "cohort_size": "new installs in the cohort",
                "active_users": "users active on day N (a session; a purchase when the app delivers no sessions); null when immature",
                "retention": "classic retention: active_users / cohort_size; null when immature",
                "rolling_active_users": "users active on day N or later; null when immature",
                "rolling_retention": "rolling retention: rolling_active_users / cohort_size; null when immature",
            },
        ),
        PublishedTable(
            "cohort_ltv",
            "cohort_date × dims × day_n",
            "Cumulative revenue and LTV per install by cohort and day index, in USD (PRODUCT.md §4).",
            {
                "cohort_date": COHORT_DATE,
                **_dims(),
                "day_n": "day index N since install",
                "cohort_size": "new installs in the cohort",
                "payers": "users with a purchase (iap/subscription, revenue > 0) in days 0..N; null when immature",
                "revenue_gross": "revenue of days 0..N as delivered (refunds negative), USD; null when immature",
                "revenue_net": "revenue of days 0..N after store fees, USD; null when immature",
                "ltv_gross": "revenue_gross / cohort_size",
                "ltv_net": "revenue_net / cohort_size",
                "payer_rate": "payers / cohort_size",
                "arppu_net": "revenue_net / payers (null without payers)",
            },
        ),
        PublishedTable(
            "user_clv",
            "user (app_id, user_id)",
            "Revenue to date, predicted CLV and acquisition cost per installed user (PRODUCT.md §5).",
            {
                "user_id": "MMP user/device id",
                "install_date": "install date (reporting time zone)",
                **_dims(),
                "frequency": "repeat purchase days (purchase days − 1) up to the observation end; null for non-payers",
                "recency": "last − first purchase day, in the model time unit (not 'days since last purchase')",
                "t": "observation end − first purchase day, in the model time unit",
                "monetary_value": "mean net value of the repeat purchase days, USD (0 when frequency = 0)",
                "p_alive": "probability that the customer is still active, from the chosen purchase model (BG/NBD, MBG/NBD or Pareto/NBD); null for non-payers and for the pooled_rate fallback, which has no dropout",
                "expected_purchases": "expected purchase days over the horizon (settings horizon, 365 days by default) after the observation end, undiscounted (non-payers: incl. the first)",
                "predicted_clv": "discounted expected net value over the horizon after the observation end, USD (expected purchases × expected spend per purchase × margin, discounted at the annual rate)",
                "revenue_net_to_date": "net revenue (all revenue types, refunds included) up to the observation end, USD",
                "lifetime_value": "revenue_net_to_date + predicted_clv, USD",
                "cac": "attributed spend of the user's install cell / installs of that cell, USD; null without spend",
                "net_clv": "lifetime_value − cac, USD",
                "formula_clv": "textbook CLV per install of the user's app × media source: value per purchase × purchases per active day × expected active days",
                "model": "which path produced the prediction: '<purchase model>+<spend model>' for payers (purchase: bg_nbd, mbg_nbd, pareto_nbd, or the pooled_rate fallback; spend: gamma_gamma or the mean_spend fallback — the models model_fit.chosen marks), cohort_payer_curve for users who have not paid",
                "predicted_revenue_net_d365": "observed net revenue of day indexes 0..365 plus the chosen models' undiscounted prediction up to day 365 after install, USD",
                "first_purchase_date": "date of the first purchase day",
                "last_purchase_date": "date of the last purchase day up to the observation end",
                "days_since_last_purchase": "observation end − last purchase date, in days (the conventional RFM recency)",
            },
        ),
        PublishedTable(
            "user_segments",
            "user (app_id, user_id)",
            "Value tier and RFM segment per user (PRODUCT.md §1 segmentation).",
            {
                "user_id": "MMP user/device id",
                "app_id": DIM_DESCRIPTIONS["app_id"],
                "value_tier": "whale (top 1 % of payers by lifetime value), dolphin (next 9 %), minnow (other payers), non_payer",
                "rfm_segment": "named RFM group (champions, loyal, potential_loyalist, new, promising, need_attention, at_risk, cannot_lose, hibernating, lost) or non_payer",
                "r_score": "recency score 1–5 (5 = most recent purchase)",
                "f_score": "frequency score 1–5 (5 = most purchase days)",
                "m_score": "monetary score 1–5 (5 = most net revenue)",
                "media_source": DIM_DESCRIPTIONS["media_source"],
            },
        ),
        PublishedTable(
            "segment_summary",
            "value_tier × media_source",
            "Users, revenue and the distinguishing products of each value tier and media source.",
            {
                "value_tier": "whale / dolphin / minnow / non_payer",
                "media_source": DIM_DESCRIPTIONS["media_source"],
                "users": "users in the group",
                "revenue_net": "net revenue to date of the group, USD",
                "revenue_share": "revenue_net / net revenue of all users",
                "mean_lifetime_value": "mean user_clv.lifetime_value, USD",
                "mean_p_alive": "mean P(alive) of the group's payers",
                "top_products": "products with the most net revenue in the group, with their share of it",
                "distinguishing_products": "products whose share of the group's revenue most exceeds their share of all revenue",
            },
        ),
        PublishedTable(
            "channel_roi",
            "cohort_date × dims",
            "Spend, installs, revenue, ROAS, payback and max CAC per install cohort cell, USD (PRODUCT.md §4).",
            {
                "cohort_date": COHORT_DATE + " (= spend date)",
                **_dims(),
                "acquisition": "organic, paid, paid_without_spend (installs no spend row covers) or spend_without_installs",
                "spend": "ad spend attributed to the cell (proportional to installs when the spend row is coarser), USD; null when none",
                "installs": "new installs of the cell (0 for spend that matched no install)",
                "payers": "users with a purchase up to the observation end",
                "cpi": "spend / installs (eCPI), USD; null without spend or installs",
                "cac": "spend / payers to date (cost per new payer so far), USD; null without spend or payers",
                **{f"revenue_net_d{n}": f"cumulative net revenue of days 0..{n}, USD; null when immature" for n in ROI_DAYS},
                **{f"roas_d{n}": f"revenue_net_d{n} / spend; null without spend or when immature" for n in ROI_DAYS},
                **{f"roi_d{n}": f"(revenue_net_d{n} − spend) / spend = roas_d{n} − 1" for n in ROI_DAYS},
                "predicted_revenue_net_365": "Σ user_clv.predicted_revenue_net_d365 of the cell: observed plus predicted (chosen CLV models, undiscounted) net revenue up to day 365 after install, USD",
                "predicted_roas_365": "predicted_revenue_net_365 / spend; null without spend",
                "payback_day": "first day index with cumulative net revenue >= spend; null if not reached",
                "max_cac": "mean predicted lifetime value per install / target ROAS: the most to pay per install, USD",
            },
        ),
        PublishedTable(
            "model_fit",
            "model × parameter",
            "CLV model candidates fitted on the full history, backtested on a holdout, and the run's choice (PRODUCT.md §5).",
            {
                "model": "bg_nbd, mbg_nbd, pareto_nbd, pooled_rate (purchase process); gamma_gamma, mean_spend (spend per purchase)",
                "parameter": "parameter name (r, alpha, a, b / r, alpha, s, beta / rate / p, q, gamma / mean); null when the model could not be fitted",
                "value": "estimate on the full history up to observation_end (maximum likelihood; closed form for pooled_rate and mean_spend) — what user_clv uses",
                "log_likelihood": "total log-likelihood at the estimate; null for the closed-form fallbacks",
                "n_users": "customers the estimate is computed on (payers; for gamma_gamma the repeat buyers with positive spend)",
                "observation_end": "last date of data used",
                "time_unit": "days or weeks (the unit of alpha, beta, rate and of the RFM columns)",
                "fitted_at": "as-of time of the data (end of the observation end day), so re-runs are identical",
                "converged": "the estimate exists: the optimiser converged (for the fallbacks: computable)",
                "message": "optimiser message (starts run, converged, agreeing), or why the model was not fitted",
                "role": "purchase or spend",
                "chosen": "this model produced user_clv's predictions in this run (one purchase and one spend model)",
                "selection": "why the model was or was not chosen (holdout comparison against the default bg_nbd, fallback reason)",
                "warnings": "model warnings, e.g. a frequency–spend correlation that breaks the Gamma-Gamma independence assumption; null when none",
                "calibration_end": "last date of the backtest's calibration window; null when the history is too short for a backtest",
                "holdout_days": "length of the holdout window (calibration_end, observation_end], days",
                "calibration_value": "the parameter estimated on the calibration window only (the model that was scored)",
                "holdout_users": "customers scored: purchase models — payers by calibration_end; spend models — those with a holdout purchase",
                "holdout_actual": "purchase models: actual repeat purchase days in the holdout; spend models: actual net value of those days, USD",
                "holdout_predicted": "the calibration fit's prediction of holdout_actual",
                "holdout_aggregate_error": "(holdout_predicted − holdout_actual) / holdout_actual",
                "holdout_mae": "mean absolute per-customer error (purchase days; spend models: USD per purchase)",
                "holdout_rmse": "root mean squared per-customer error (the choice criterion for purchase models)",
                "holdout_curve_error": "cumulative repeat-purchase curve over the holdout: mean |predicted − actual| ÷ actual total (purchase models)",
            },
        ),
        PublishedTable(
            "data_quality",
            "source × partition",
            "Where every delivered row ended, per source and delivery partition (PRODUCT.md §3).",
            {
                "source": "installs, purchases, ad_spend, sessions or fx_rates",
                "partition": "delivery date (landing folder)",
                "rows_read": "data rows read from the partition's files",
                "rows_loaded": "rows loaded into staging (including rows_replaced)",
                "rows_duplicate": "exact copies of an earlier delivered row, dropped",
                "rows_quarantined": "rows set aside in quarantine with a reason",
                "rows_orphan": "loaded purchase/session rows whose user has no new install yet (they wait for it)",
                "quarantine_reasons": "JSON object: primary reason code -> rows",
                "rows_replaced": "loaded rows superseded by a later delivery of the same key (or a reinstall)",
                "rows_warned": "loaded rows with a warning-level expectation failure",
                "rows_quarantine_resolved": "quarantined rows of this partition whose key a later delivery loaded (fixed upstream)",
                "accounting_ok": "rows_read = rows_loaded + rows_duplicate + rows_quarantined",
            },
        ),
    )
}

def _period_columns() -> dict[str, str]:
    return {
        "cohort_period": "week (ISO, Monday start) or month",
        "cohort_start": "first day of the cohort's week or month",
        **_dims(),
        "day_n": "day index N since install",
        "cohort_size": "new installs in the cohort period",
    }


_NULL_UNLESS_WHOLE_PERIOD = "; null unless every install day of the period is mature for N"

for _table in (
    PublishedTable(
        "cohort_retention_by_period",
        "cohort_period × cohort_start × dims × day_n",
        "cohort_retention rolled up to weekly and monthly install cohorts.",
        {
            **_period_columns(),
            "active_users": "users active on day N" + _NULL_UNLESS_WHOLE_PERIOD,
            "retention": "active_users / cohort_size" + _NULL_UNLESS_WHOLE_PERIOD,
            "rolling_active_users": "users active on day N or later" + _NULL_UNLESS_WHOLE_PERIOD,
            "rolling_retention": "rolling_active_users / cohort_size" + _NULL_UNLESS_WHOLE_PERIOD,
        },
    ),
    PublishedTable(
        "cohort_ltv_by_period",
        "cohort_period × cohort_start × dims × day_n",
        "cohort_ltv rolled up to weekly and monthly install cohorts, USD.",
        {
            **_period_columns(),
            "payers": "users with a purchase in days 0..N" + _NULL_UNLESS_WHOLE_PERIOD,
            "revenue_gross": "gross revenue of days 0..N" + _NULL_UNLESS_WHOLE_PERIOD,
            "revenue_net": "net revenue of days 0..N" + _NULL_UNLESS_WHOLE_PERIOD,
            "ltv_gross": "revenue_gross / cohort_size",
            "ltv_net": "revenue_net / cohort_size",
            "payer_rate": "payers / cohort_size",
            "arppu_net": "revenue_net / payers",
        },
    ),
    PublishedTable(
        "channel_summary",
        "app_id × media_source, plus labelled totals",
        "channel_roi per app and media source, with paid_total, organic and blended_total rows (blended figures include organic installs).",
        {
            "app_id": DIM_DESCRIPTIONS["app_id"],
            "row_type": "channel, organic, paid_total (all paid sources) or blended_total (paid + organic)",
            "media_source": "the media source (null on paid_total and blended_total rows)",
            "spend": "attributed spend, USD",
            "installs": "new installs",
            "payers": "users with a purchase up to the observation end",
            "cpi": "spend / installs of paid cells with spend; on blended_total: spend / all installs (blended CPI)",
            "cac": "spend / payers to date, USD",
            **{f"revenue_net_d{n}": f"net revenue of days 0..{n} of the cells mature for {n}, USD (null while none is)" for n in (0, 7, 30, 90, 365)},
            **{f"spend_d{n}": f"spend of the cells mature for {n} (the denominator of roas_d{n}), USD" for n in (0, 7, 30, 90, 365)},
            **{f"roas_d{n}": f"revenue_net_d{n} / spend_d{n}" for n in (0, 7, 30, 90, 365)},
            "predicted_revenue_net_365": "observed plus predicted net revenue up to day 365 after install, USD",
            "predicted_roas_365": "predicted_revenue_net_365 / spend of the same cells",
            "max_cac": "mean predicted lifetime value per install / target ROAS, USD",
        },
    ),
):
    TABLES[_table.name] = _table

PUBLISHED_TABLES: tuple[str, ...] = tuple(TABLES)
