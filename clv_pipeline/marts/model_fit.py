"""Fitting, backtesting and choosing the CLV models, and the `model_fit` table (PRODUCT.md §5, §6).
Pure: numpy / Polars / the model modules.

Candidates
- purchase process: BG/NBD (the specification's default), MBG/NBD, Pareto/NBD — maximum
  likelihood on the BTYD RFM summary of every payer; plus the ``pooled_rate`` fallback;
- spend per purchase: Gamma-Gamma on the repeat buyers with positive mean spend; plus the
  ``mean_spend`` fallback (see ``models.fallback``).

A likelihood model is "not fitted" (with the reason) when there are fewer than MIN_PAYERS payers
or MIN_REPEAT_BUYERS repeat buyers, when its inputs are invalid, or when the optimiser does not
converge; Gamma-Gamma also when q <= 1 (infinite mean spend, or a negative one from the formula).

Backtest (``models.backtest``): the holdout is the last H = min(horizon, span/2) days of the
observed history (span = observation end − first purchase day of anyone), if H >= MIN_HOLDOUT_DAYS;
every candidate is refitted on the calibration window before it and scored on the holdout:
aggregate error, per-user MAE and RMSE, and the cumulative repeat-purchase curve.

Choice, per run
- purchase: BG/NBD stays unless a challenger's holdout mean squared error is lower by more than
  SIGNIFICANCE_Z standard errors of the paired per-customer differences (then the best such
  challenger). A candidate is eligible only if its full-window fit converged (and, when a backtest
  ran, its calibration fit too). Without a backtest: the first eligible of bg_nbd, mbg_nbd,
  pareto_nbd. With no eligible candidate: ``pooled_rate``.
- spend: Gamma-Gamma when fitted and usable, otherwise ``mean_spend``.
Gamma-Gamma assumes spend independent of purchase frequency: when the correlation between
frequency and mean spend of its customers exceeds CORRELATION_WARNING in absolute value, a
warning is recorded (the model is still used).

`model_fit` has one row per (model, parameter) — parameters are the full-window estimates, used by
`user_clv` — with the calibration estimate, the holdout scores, the choice and its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from clv_pipeline.models import backtest, bg_nbd, fallback, gamma_gamma, mbg_nbd, pareto_nbd
from clv_pipeline.models.backtest import HoldoutScores
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.fallback import MeanSpendParams, PooledRateParams
from clv_pipeline.models.fitting import FitResult, ModelInputError
from clv_pipeline.models.gamma_gamma import GammaGammaParams
from clv_pipeline.models.mbg_nbd import ModifiedBetaGeoParams
from clv_pipeline.models.pareto_nbd import ParetoNBDParams
from clv_pipeline.models.rfm import calibration_holdout_split, repeat_purchase_curve, rfm_summary, unit_days

#: An estimate beyond e^±EDGE_LOG (1e-5 … 1e5) is reported as at the edge of the parameter space.
EDGE_LOG = 11.5
MIN_PAYERS = 20
MIN_REPEAT_BUYERS = 10
MIN_HOLDOUT_DAYS = 7
MAX_CURVE_POINTS = 26
SIGNIFICANCE_Z = 2.0
CORRELATION_WARNING = 0.3

BG_NBD = "bg_nbd"
MBG_NBD = "mbg_nbd"
PARETO_NBD = "pareto_nbd"
POOLED_RATE = "pooled_rate"
GAMMA_GAMMA = "gamma_gamma"
MEAN_SPEND = "mean_spend"
PURCHASE_CANDIDATES = (BG_NBD, MBG_NBD, PARETO_NBD)
DEFAULT_PURCHASE_MODEL = BG_NBD
PURCHASE = "purchase"
SPEND = "spend"

_FITTERS = {BG_NBD: bg_nbd.fit, MBG_NBD: mbg_nbd.fit, PARETO_NBD: pareto_nbd.fit}
PARAM_CLASSES = {
    BG_NBD: BetaGeoParams,
    MBG_NBD: ModifiedBetaGeoParams,
    PARETO_NBD: ParetoNBDParams,
    POOLED_RATE: PooledRateParams,
    GAMMA_GAMMA: GammaGammaParams,
    MEAN_SPEND: MeanSpendParams,
}
MODEL_ORDER = (BG_NBD, MBG_NBD, PARETO_NBD, POOLED_RATE, GAMMA_GAMMA, MEAN_SPEND)
ROLES = {BG_NBD: PURCHASE, MBG_NBD: PURCHASE, PARETO_NBD: PURCHASE, POOLED_RATE: PURCHASE, GAMMA_GAMMA: SPEND, MEAN_SPEND: SPEND}


@dataclass
class ModelEntry:
    """One candidate: its full-window estimate (None when not fitted), its backtest, the choice."""

    model: str
    params: object | None = None
    log_likelihood: float | None = None
    n_users: int | None = None
    converged: bool = False
    message: str = ""
    calibration_params: object | None = None
    calibration_converged: bool = False
    scores: HoldoutScores | None = None
    chosen: bool = False
    selection: str | None = None
    warnings: str | None = None

    @property
    def role(self) -> str:
        return ROLES[self.model]


@dataclass(frozen=True)
class Backtest:
    calibration_end: date
    holdout_days: int
    n_users: int


@dataclass
class ClvModels:
    entries: dict[str, ModelEntry] = field(default_factory=dict)
    backtest: Backtest | None = None
    backtest_note: str = ""

    def chosen(self, role: str) -> ModelEntry | None:
        return next((e for e in self.entries.values() if e.role == role and e.chosen), None)

    @property
    def purchase(self) -> ModelEntry | None:
        return self.chosen(PURCHASE)

    @property
    def spend(self) -> ModelEntry | None:
        return self.chosen(SPEND)

    @property
    def label(self) -> str:
        """user_clv.model for payers: '<purchase model>+<spend model>'."""
        p, s = self.purchase, self.spend
        return f"{p.model if p else POOLED_RATE}+{s.model if s else MEAN_SPEND}"


# --------------------------------------------------------------------------------------------
# fitting


def _fit_purchase(name: str, rfm: pl.DataFrame) -> tuple[FitResult | None, str]:
    n_payers = rfm.height
    n_repeat = int((rfm["frequency"] > 0).sum()) if n_payers else 0
    if n_payers < MIN_PAYERS or n_repeat < MIN_REPEAT_BUYERS:
        return None, (
            f"not fitted: {n_payers} payers and {n_repeat} repeat buyers; at least {MIN_PAYERS} payers and "
            f"{MIN_REPEAT_BUYERS} repeat buyers are needed"
        )
    try:
        fit = _FITTERS[name](rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["t"].to_numpy())
    except ModelInputError as exc:
        return None, f"not fitted: {exc}{_user_of(exc, rfm)}"
    if not fit.converged:
        return None, f"not converged: {fit.message}"
    return fit, fit.message


def edge_warning(params: object) -> str | None:
    """Warn when estimates sit at the edge of the parameter space (e.g. Pareto/NBD s, β → ∞: the
    dropout rate is the same for everyone and only s/β is identified). Predictions stay defined."""
    values = params.as_dict()  # type: ignore[attr-defined]
    edge = [f"{k} = {v:.3g}" for k, v in values.items() if v > 0 and abs(np.log(v)) > EDGE_LOG]
    if not edge:
        return None
    return f"estimate at the edge of the parameter space ({', '.join(edge)}): the data do not pin these parameters down"


def _join(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return "; ".join(kept) if kept else None


def _user_of(exc: ModelInputError, frame: pl.DataFrame) -> str:
    """' (user_id …)' for the row an input error names — in the pipeline user_id is user_clv's `_uid`."""
    if exc.row is None or "user_id" not in frame.columns or exc.row >= frame.height:
        return ""
    return f" (user_id {frame['user_id'][exc.row]})"


def _gg_usable(rfm: pl.DataFrame) -> pl.DataFrame:
    return rfm.filter((pl.col("frequency") > 0) & (pl.col("monetary_value") > 0))


def _fit_spend(rfm: pl.DataFrame) -> tuple[FitResult | None, str, str | None]:
    """Gamma-Gamma fit: (fit or None, message, warning)."""
    usable = _gg_usable(rfm)
    if usable.height < MIN_REPEAT_BUYERS:
        return None, (
            f"not fitted: {usable.height} repeat buyers with positive spend; at least {MIN_REPEAT_BUYERS} are needed"
        ), None
    x, m = usable["frequency"].to_numpy().astype(np.float64), usable["monetary_value"].to_numpy()
    warning = None
    if np.std(x) > 0 and np.std(m) > 0:
        corr = float(np.corrcoef(x, m)[0, 1])
        if abs(corr) > CORRELATION_WARNING:
            warning = (
                f"frequency–spend correlation {corr:.3f} (|r| > {CORRELATION_WARNING}) on {usable.height} repeat buyers: "
                "Gamma-Gamma assumes spend per purchase independent of purchase frequency"
            )
    try:
        fit = gamma_gamma.fit(x, m)
    except ModelInputError as exc:
        return None, f"not fitted: {exc}{_user_of(exc, usable)}", warning
    if not fit.converged:
        return None, f"not converged: {fit.message}", warning
    if fit.params.q <= 1:
        return None, f"not usable: q = {fit.params.q:.4g} <= 1 makes the mean spend p·γ/(q−1) infinite", warning
    return fit, fit.message, warning


def _fit_pooled_rate(rfm: pl.DataFrame) -> tuple[PooledRateParams | None, str]:
    if rfm.height == 0:
        return None, "not fitted: no payers"
    params = fallback.fit_pooled_rate(rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["t"].to_numpy())
    return params, f"closed form: Σ repeat purchase days / Σ time since first purchase over {rfm.height} payers"


def _fit_mean_spend(rfm: pl.DataFrame) -> tuple[MeanSpendParams | None, str]:
    if rfm.height == 0:
        return None, "not fitted: no payers"
    try:
        params = fallback.fit_mean_spend(
            rfm["frequency"].to_numpy(), rfm["monetary_value"].to_numpy(), rfm["first_purchase_value"].to_numpy()
        )
    except ModelInputError as exc:
        return None, f"not fitted: {exc}"
    return params, f"closed form: mean net value of all {int(rfm['frequency'].sum()) + rfm.height} purchase days"


def _fit_all(rfm: pl.DataFrame) -> dict[str, ModelEntry]:
    entries: dict[str, ModelEntry] = {}
    for name in PURCHASE_CANDIDATES:
        fit, message = _fit_purchase(name, rfm)
        entries[name] = _entry_from_fit(name, fit, message)
        if fit is not None:
            entries[name].warnings = edge_warning(fit.params)
    params, message = _fit_pooled_rate(rfm)
    entries[POOLED_RATE] = ModelEntry(POOLED_RATE, params, None, rfm.height if params else None, params is not None, message)
    fit, message, warning = _fit_spend(rfm)
    entries[GAMMA_GAMMA] = _entry_from_fit(GAMMA_GAMMA, fit, message)
    entries[GAMMA_GAMMA].warnings = _join(warning, edge_warning(fit.params) if fit is not None else None)
    params, message = _fit_mean_spend(rfm)
    entries[MEAN_SPEND] = ModelEntry(MEAN_SPEND, params, None, rfm.height if params else None, params is not None, message)
    return entries


def _entry_from_fit(name: str, fit: FitResult | None, message: str) -> ModelEntry:
    if fit is None:
        return ModelEntry(name, message=message)
    return ModelEntry(name, fit.params, float(fit.log_likelihood), int(fit.n_users), True, message)


# --------------------------------------------------------------------------------------------
# backtest and choice


def holdout_days(first_purchase: date, observation_end: date, horizon_days: int) -> int:
    """H = min(horizon, ⌊span/2⌋) with span = observation_end − first purchase day."""
    return min(int(horizon_days), (observation_end - first_purchase).days // 2)


def _run_backtest(
    transactions: pl.DataFrame, rfm: pl.DataFrame, entries: dict[str, ModelEntry], observation_end: date, time_unit: str, horizon_days: int
) -> tuple[Backtest | None, str]:
    if rfm.height == 0:
        return None, "no backtest: no payers"
    first = rfm["first_purchase_date"].min()
    h = holdout_days(first, observation_end, horizon_days)
    if h < MIN_HOLDOUT_DAYS:
        return None, f"no backtest: {(observation_end - first).days} days of history allow a holdout of {h} days (< {MIN_HOLDOUT_DAYS})"
    cal_end = observation_end - timedelta(days=h)
    split = calibration_holdout_split(transactions, cal_end, observation_end, time_unit, include_zero_value=True)
    calib = split.select(*rfm.columns)
    x, t_x, T = (split[c].to_numpy() for c in ("frequency", "recency", "t"))
    hold_freq = split["holdout_frequency"].to_numpy()
    duration = float(split["holdout_duration"][0]) if split.height else h / unit_days(time_unit)
    grid = backtest.curve_grid(h, MAX_CURVE_POINTS)
    curve = repeat_purchase_curve(transactions, cal_end, observation_end, include_zero_value=True)[grid - 1].astype(np.float64)
    u = unit_days(time_unit)
    for name in PURCHASE_CANDIDATES:
        fit, message = _fit_purchase(name, calib)
        if fit is None:
            entries[name].message += f"; calibration fit {message}"
            continue
        entries[name].calibration_params = fit.params
        entries[name].calibration_converged = True
        entries[name].scores = backtest.purchase_scores(fit.params, x, t_x, T, hold_freq, duration, grid, curve, u)
        edge = edge_warning(fit.params)
        entries[name].warnings = _join(entries[name].warnings, f"calibration fit: {edge}" if edge else None)
    params, _ = _fit_pooled_rate(calib)
    if params is not None:
        entries[POOLED_RATE].calibration_params = params
        entries[POOLED_RATE].calibration_converged = True
        entries[POOLED_RATE].scores = backtest.purchase_scores(params, x, t_x, T, hold_freq, duration, grid, curve, u)
    m, hold_m = split["monetary_value"].to_numpy(), split["holdout_monetary_value"].to_numpy()
    fit, message, _ = _fit_spend(calib)
    if fit is not None:
        entries[GAMMA_GAMMA].calibration_params = fit.params
        entries[GAMMA_GAMMA].calibration_converged = True
        entries[GAMMA_GAMMA].scores = backtest.spend_scores(fit.params, x, m, hold_freq, hold_m)
    elif entries[GAMMA_GAMMA].params is not None:
        entries[GAMMA_GAMMA].message += f"; calibration fit {message}"
    params, _ = _fit_mean_spend(calib)
    if params is not None:
        entries[MEAN_SPEND].calibration_params = params
        entries[MEAN_SPEND].calibration_converged = True
        entries[MEAN_SPEND].scores = backtest.spend_scores(params, x, m, hold_freq, hold_m)
    return Backtest(cal_end, h, split.height), ""


def _choose_purchase(entries: dict[str, ModelEntry], tested: bool) -> None:
    eligible = [n for n in PURCHASE_CANDIDATES if entries[n].converged and (not tested or entries[n].calibration_converged)]
    for name in PURCHASE_CANDIDATES:
        if name not in eligible:
            entries[name].selection = "not eligible: " + ("not fitted" if not entries[name].converged else "calibration fit failed")
    if not eligible:
        fb = entries[POOLED_RATE]
        fb.chosen = fb.params is not None
        fb.selection = "fallback: no purchase model could be fitted" if fb.chosen else "nothing to fit: no payers"
        return
    if not tested:
        choice = eligible[0]
        entries[choice].chosen = True
        entries[choice].selection = f"first eligible of {', '.join(PURCHASE_CANDIDATES)} (no backtest)"
        for name in eligible[1:]:
            entries[name].selection = f"not chosen: {choice} comes first and there was no backtest"
        entries[POOLED_RATE].selection = "not chosen: a purchase model was fitted"
        return
    incumbent = DEFAULT_PURCHASE_MODEL if DEFAULT_PURCHASE_MODEL in eligible else min(
        eligible, key=lambda n: entries[n].scores.rmse  # type: ignore[union-attr]
    )
    inc = entries[incumbent].scores
    better = []
    for name in eligible:
        if name == incumbent:
            continue
        cmp = backtest.significantly_better(entries[name].scores, inc, SIGNIFICANCE_Z)  # type: ignore[arg-type]
        verdict = "lower" if cmp.better else "not significantly lower"
        entries[name].selection = (
            f"holdout mean squared error {verdict} than {incumbent}'s: difference {cmp.mean_difference:.4g}, "
            f"{SIGNIFICANCE_Z:g} standard errors = {SIGNIFICANCE_Z * cmp.standard_error:.4g}"
        )
        if cmp.better:
            better.append(name)
    choice = min(better, key=lambda n: entries[n].scores.rmse) if better else incumbent  # type: ignore[union-attr]
    entries[choice].chosen = True
    if choice == incumbent:
        entries[choice].selection = (
            f"chosen: {'the default model' if incumbent == DEFAULT_PURCHASE_MODEL else 'lowest holdout RMSE (the default was not eligible)'}"
            + ("; no challenger significantly better on the holdout" if len(eligible) > 1 else "")
        )
    else:
        entries[choice].selection = "chosen: " + entries[choice].selection
        entries[incumbent].selection = f"not chosen: {choice} has a significantly lower holdout mean squared error"
    entries[POOLED_RATE].selection = "not chosen: a purchase model was fitted"


def _choose_spend(entries: dict[str, ModelEntry]) -> None:
    gg, ms = entries[GAMMA_GAMMA], entries[MEAN_SPEND]
    if gg.converged:
        gg.chosen = True
        gg.selection = "chosen: Gamma-Gamma fitted and usable"
        ms.selection = "not chosen: Gamma-Gamma was fitted"
    elif ms.params is not None:
        ms.chosen = True
        ms.selection = "fallback: Gamma-Gamma could not be used"
        gg.selection = "not eligible: " + gg.message.split(";")[0]
    else:
        gg.selection = ms.selection = "nothing to fit: no payers"


def fit_clv_models(transactions: pl.DataFrame, observation_end: date, time_unit: str, horizon_days: int) -> ClvModels:
    """Fit every candidate on the full history, backtest them on a holdout, choose per role.

    ``transactions``: (user_id, event_date, value = net USD) purchase events, as
    ``user_clv.btyd_transactions`` builds them; the RFM summary uses purchase days with $0 days
    counted (as `user_clv` does).
    """
    rfm = rfm_summary(transactions, observation_end, time_unit, include_zero_value=True)  # type: ignore[arg-type]
    models = ClvModels(entries=_fit_all(rfm))
    models.backtest, models.backtest_note = _run_backtest(transactions, rfm, models.entries, observation_end, time_unit, horizon_days)
    _choose_purchase(models.entries, models.backtest is not None)
    _choose_spend(models.entries)
    return models


# --------------------------------------------------------------------------------------------
# the published table


MODEL_FIT_SCHEMA = {
    "model": pl.String,
    "parameter": pl.String,
    "value": pl.Float64,
    "log_likelihood": pl.Float64,
    "n_users": pl.Int64,
    "observation_end": pl.Date,
    "time_unit": pl.String,
    "fitted_at": pl.Datetime("us"),
    "converged": pl.Boolean,
    "message": pl.String,
    "role": pl.String,
    "chosen": pl.Boolean,
    "selection": pl.String,
    "warnings": pl.String,
    "calibration_end": pl.Date,
    "holdout_days": pl.Int64,
    "calibration_value": pl.Float64,
    "holdout_users": pl.Int64,
    "holdout_actual": pl.Float64,
    "holdout_predicted": pl.Float64,
    "holdout_aggregate_error": pl.Float64,
    "holdout_mae": pl.Float64,
    "holdout_rmse": pl.Float64,
    "holdout_curve_error": pl.Float64,
}


def model_fit_table(models: ClvModels, observation_end: date, time_unit: str, fitted_at: datetime) -> pl.DataFrame:
    """One row per (model, parameter) in MODEL_ORDER; a model that was not fitted has one row with
    parameter = null and the reason in `message`."""
    rows: list[dict] = []
    bt = models.backtest
    for name in MODEL_ORDER:
        e = models.entries.get(name, ModelEntry(name, message="not fitted"))
        s = e.scores
        message = e.message if bt is not None or not models.backtest_note else f"{e.message}; {models.backtest_note}"
        base = {
            "model": name,
            "log_likelihood": e.log_likelihood,
            "n_users": e.n_users,
            "observation_end": observation_end,
            "time_unit": time_unit,
            "fitted_at": fitted_at,
            "converged": e.converged,
            "message": message,
            "role": e.role,
            "chosen": e.chosen,
            "selection": e.selection,
            "warnings": e.warnings,
            "calibration_end": bt.calibration_end if bt else None,
            "holdout_days": bt.holdout_days if bt else None,
            "holdout_users": s.n_users if s else None,
            "holdout_actual": s.actual if s else None,
            "holdout_predicted": s.predicted if s else None,
            "holdout_aggregate_error": s.aggregate_error if s else None,
            "holdout_mae": s.mae if s else None,
            "holdout_rmse": s.rmse if s else None,
            "holdout_curve_error": s.curve_error if s else None,
        }
        if e.params is None:
            rows.append({**base, "parameter": None, "value": None, "calibration_value": None})
            continue
        calibration = e.calibration_params.as_dict() if e.calibration_params is not None else {}
        for parameter, value in e.params.as_dict().items():
            rows.append({**base, "parameter": parameter, "value": float(value), "calibration_value": calibration.get(parameter)})
    return pl.DataFrame(rows, schema=MODEL_FIT_SCHEMA, orient="row").with_columns(
        [pl.col(c).round(10) for c in ("holdout_aggregate_error", "holdout_mae", "holdout_rmse", "holdout_curve_error")]
    )


def models_from_table(table: pl.DataFrame) -> ClvModels:
    """Rebuild the fitted models (full-window parameters, choice) from a `model_fit` table."""
    models = ClvModels()
    for name in MODEL_ORDER:
        rows = table.filter(pl.col("model") == name)
        if rows.height == 0:
            continue
        first = rows.row(0, named=True)
        fitted = rows.filter(pl.col("parameter").is_not_null())
        params = None
        if fitted.height:
            params = PARAM_CLASSES[name](**dict(zip(fitted["parameter"].to_list(), fitted["value"].to_list(), strict=True)))
        models.entries[name] = ModelEntry(
            name,
            params,
            first["log_likelihood"],
            first["n_users"],
            bool(first["converged"]),
            first["message"] or "",
            chosen=bool(first.get("chosen")),
            selection=first.get("selection"),
            warnings=first.get("warnings"),
        )
    return models

