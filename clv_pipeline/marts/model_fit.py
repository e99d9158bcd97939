"""Fitting the purchase (BG/NBD) and spend (Gamma-Gamma) models on the RFM summary, and the
`model_fit` table (PRODUCT.md §5, §6). Pure: numpy / Polars / the model modules.

When a model cannot be fitted (too few payers or repeat buyers, no convergence, an undefined
mean spend), it is recorded with the reason and its predictions are left null downstream —
never a made-up number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from clv_pipeline.models import bg_nbd, gamma_gamma
from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.fitting import FitResult, ModelInputError
from clv_pipeline.models.gamma_gamma import GammaGammaParams

MIN_PAYERS_FOR_BG_NBD = 20
MIN_REPEAT_BUYERS = 10
BG_NBD = "bg_nbd"
GAMMA_GAMMA = "gamma_gamma"


@dataclass
class ClvModels:
    bg: FitResult[BetaGeoParams] | None = None
    gg: FitResult[GammaGammaParams] | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.bg is not None and self.gg is not None


def fit_clv_models(rfm: pl.DataFrame) -> ClvModels:
    """Fit BG/NBD on (frequency, recency, t) of every payer and Gamma-Gamma on the repeat buyers
    with positive mean spend. A model that cannot be fitted is None, with the reason in `notes`."""
    models = ClvModels()
    n_payers = rfm.height
    repeat = rfm.filter((pl.col("frequency") > 0) & (pl.col("monetary_value") > 0))
    if n_payers < MIN_PAYERS_FOR_BG_NBD or repeat.height < MIN_REPEAT_BUYERS:
        reason = (
            f"not fitted: {n_payers} payers and {repeat.height} repeat buyers; at least "
            f"{MIN_PAYERS_FOR_BG_NBD} payers and {MIN_REPEAT_BUYERS} repeat buyers are needed"
        )
        models.notes[BG_NBD] = reason
        models.notes[GAMMA_GAMMA] = reason
        return models
    try:
        fit = bg_nbd.fit(rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["t"].to_numpy())
        if fit.converged:
            models.bg = fit
        models.notes[BG_NBD] = fit.message if fit.converged else f"not converged: {fit.message}"
    except ModelInputError as exc:
        models.notes[BG_NBD] = f"not fitted: {exc}"
    try:
        fit_gg = gamma_gamma.fit(repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy())
        if not fit_gg.converged:
            models.notes[GAMMA_GAMMA] = f"not converged: {fit_gg.message}"
        elif fit_gg.params.q <= 1:
            models.notes[GAMMA_GAMMA] = f"not usable: q = {fit_gg.params.q:.4g} <= 1 makes the mean spend infinite"
        else:
            models.gg = fit_gg
            models.notes[GAMMA_GAMMA] = fit_gg.message
    except ModelInputError as exc:
        models.notes[GAMMA_GAMMA] = f"not fitted: {exc}"
    return models


def model_fit_table(models: ClvModels, observation_end: date, time_unit: str, fitted_at: datetime) -> pl.DataFrame:
    """One row per (model, parameter): value, total log-likelihood, n_users, status. A model that
    was not fitted has a single row with parameter = null and the reason in `message`."""
    rows: list[dict] = []
    for name, fit in ((BG_NBD, models.bg), (GAMMA_GAMMA, models.gg)):
        base = {
            "model": name,
            "observation_end": observation_end,
            "time_unit": time_unit,
            "fitted_at": fitted_at,
            "message": models.notes.get(name, ""),
        }
        if fit is None:
            rows.append({**base, "parameter": None, "value": None, "log_likelihood": None, "n_users": None, "converged": False})
            continue
        for parameter, value in fit.params.as_dict().items():
            rows.append(
                {
                    **base,
                    "parameter": parameter,
                    "value": float(value),
                    "log_likelihood": float(fit.log_likelihood),
                    "n_users": int(fit.n_users),
                    "converged": bool(fit.converged),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
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
        },
        orient="row",
    )


def models_from_table(table: pl.DataFrame) -> ClvModels:
    """Rebuild the fitted parameters from a `model_fit` table (for the prediction step)."""
    models = ClvModels()
    for name in (BG_NBD, GAMMA_GAMMA):
        rows = table.filter((pl.col("model") == name) & pl.col("parameter").is_not_null())
        message = table.filter(pl.col("model") == name)["message"].first() if table.height else None
        models.notes[name] = message or ""
        if rows.height == 0:
            continue
        values = dict(zip(rows["parameter"].to_list(), rows["value"].to_list()))
        params = BetaGeoParams(**values) if name == BG_NBD else GammaGammaParams(**values)
        fit = FitResult(
            params=params,
            log_likelihood=float(rows["log_likelihood"][0]),
            n_users=int(rows["n_users"][0]),
            converged=bool(rows["converged"][0]),
            message=models.notes[name],
            iterations=0,
        )
        if name == BG_NBD:
            models.bg = fit
        else:
            models.gg = fit
    return models
