"""Simulators for the BG/NBD, MBG/NBD and Pareto/NBD purchase processes and Gamma-Gamma spend
(tests, benchmarks and sample data).

Everything takes a ``numpy.random.Generator`` so that a fixed seed gives a fixed data set.

Generative story (Fader, Hardie & Lee 2005 for BG/NBD; Hardie & Fader 2013 for Gamma-Gamma), per
customer, with the clock starting at the first purchase (time 0):

* λ ~ Gamma(r, rate α), p ~ Beta(a, b), ν ~ Gamma(q, rate γ);
* repeat purchases arrive as a Poisson process of rate λ; right after each repeat purchase the
  customer drops out with probability p, so the number of repeat purchases before dropping out is
  J ~ Geometric(p) on {1, 2, …};
* every purchase (the first one included) has value z ~ Gamma(p_gg, rate ν).

Within (0, T] the customer therefore makes x = min(J, N) repeat purchases, N ~ Poisson(λT). Given
N, the arrival times are the order statistics of N uniforms on (0, T]; the first x of them are
drawn exactly as T·S_k/(S_x + G), k = 1..x, with S_k partial sums of Exp(1) variables and
G ~ Gamma(N + 1 − x) (the Rényi representation), which is vectorised and never materialises the
N − x arrivals that the dead customer does not make.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl

from clv_pipeline.models.bg_nbd import BetaGeoParams
from clv_pipeline.models.gamma_gamma import GammaGammaParams
from clv_pipeline.models.mbg_nbd import ModifiedBetaGeoParams
from clv_pipeline.models.pareto_nbd import ParetoNBDParams


def _simulate_times(params, T: np.ndarray, rng: np.random.Generator, dropout_at_zero: bool = False):
    """Repeat-purchase counts and times: returns (x, t_x, owner, times) with the times of all
    repeat purchases flattened in customer order (``owner`` = customer index of each time).

    ``dropout_at_zero``: MBG/NBD — the customer may also drop out right after the first purchase,
    so the number of repeat purchases before dropout is Geometric(p) − 1 on {0, 1, …}."""
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 1 or not np.all(np.isfinite(T)) or np.any(T < 0):
        raise ValueError("T must be a one-dimensional array of finite values >= 0")
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = np.clip(rng.beta(params.a, params.b, n), 1e-12, 1.0)
    j = rng.geometric(p) - (1 if dropout_at_zero else 0)
    n_arrivals = rng.poisson(lam * T)
    x = np.minimum(j, n_arrivals).astype(np.int64)
    total = int(x.sum())
    owner = np.repeat(np.arange(n), x)
    e = rng.exponential(1.0, total)
    g = rng.gamma(np.maximum(n_arrivals - x + 1, 1).astype(np.float64), 1.0, n)
    cums = np.cumsum(e)
    starts = np.concatenate(([0], np.cumsum(x)[:-1]))
    offset = np.zeros(n)  # running sum before each customer's first draw
    has_prev = (x > 0) & (starts > 0)
    offset[has_prev] = cums[starts[has_prev] - 1]
    s_k = cums - np.repeat(offset, x)  # partial sums S_1..S_x within each customer
    ends = starts + x - 1
    s_x = np.zeros(n)
    s_x[x > 0] = s_k[ends[x > 0]]
    times = T[owner] * s_k / (s_x[owner] + g[owner])
    t_x = np.zeros(n)
    t_x[x > 0] = times[ends[x > 0]]
    return x, t_x, owner, times


def simulate_bg_nbd(params: BetaGeoParams, T: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) for customers observed for T time units after their first purchase.

    Time is continuous, in the time unit of α (λ is per unit). Returns x (int64, repeat
    purchases in (0, T]) and t_x (float64, time of the last one, 0 when x = 0).
    """
    x, t_x, _, _ = _simulate_times(params, T, rng)
    return x, t_x


def simulate_mbg_nbd(params: ModifiedBetaGeoParams, T: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) under MBG/NBD (Batislam et al. 2007): as BG/NBD, plus a dropout chance p
    right after the first purchase."""
    x, t_x, _, _ = _simulate_times(params, T, rng, dropout_at_zero=True)
    return x, t_x


def simulate_pareto_nbd(params: ParetoNBDParams, T: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, t_x) under Pareto/NBD (Schmittlein et al. 1987): λ ~ Gamma(r, α), μ ~ Gamma(s, β),
    lifetime ~ Exponential(μ); x ~ Poisson(λ·D) with D = min(lifetime, T) the time alive in (0, T],
    and t_x = D·U^(1/x) (the largest of x uniform arrival times on (0, D]), 0 when x = 0."""
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 1 or not np.all(np.isfinite(T)) or np.any(T < 0):
        raise ValueError("T must be a one-dimensional array of finite values >= 0")
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    mu = rng.gamma(params.s, 1.0 / params.beta, n)
    alive = np.minimum(rng.exponential(1.0, n) / np.maximum(mu, 1e-300), T)
    x = rng.poisson(lam * alive).astype(np.int64)
    u = rng.uniform(0.0, 1.0, n)
    t_x = np.where(x > 0, alive * u ** (1.0 / np.maximum(x, 1)), 0.0)
    return x, t_x


def simulate_gamma_gamma(params: GammaGammaParams, frequency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean value of ``frequency`` transactions per customer under Gamma-Gamma (0 where frequency = 0)."""
    x = np.asarray(frequency, dtype=np.int64)
    nu = rng.gamma(params.q, 1.0 / params.gamma, len(x))
    # the sum of x Gamma(p, ν) values is Gamma(p·x, ν)
    total = rng.gamma(np.maximum(params.p * x, 1e-300), 1.0 / nu)
    return np.where(x > 0, total / np.maximum(x, 1), 0.0)


def simulate_transactions(
    bg_params: BetaGeoParams | ModifiedBetaGeoParams,
    gg_params: GammaGammaParams,
    birth_dates: Sequence[dt.date] | pl.Series | np.ndarray,
    observation_end: dt.date,
    rng: np.random.Generator,
    user_ids: Sequence | np.ndarray | pl.Series | None = None,
) -> pl.DataFrame:
    """Transaction-level data (user_id, event_date, value) from BG/NBD (or MBG/NBD) + Gamma-Gamma.

    **The BG/NBD parameters are per day** (α in days): customer i makes its first purchase on
    ``birth_dates[i]`` and repeat purchases at continuous times t in (0, T_i] days with
    T_i = observation_end − birth date (in days). A purchase at time t is bucketed to day
    birth + ceil(t), so repeat purchases fall on days birth+1 … observation_end; two purchases
    in the same day bucket stay separate rows (an RFM summary merges them, as for real data).
    Every purchase, the first included, gets a Gamma-Gamma value (USD, > 0).

    ``user_ids`` (any dtype, kept) defaults to "u0000001", …; births after ``observation_end``
    raise ValueError.
    Output rows are sorted by (user_id, event_date).
    """
    births = pl.Series("birth", birth_dates, dtype=pl.Date)
    n = len(births)
    if births.null_count():
        raise ValueError("birth_dates must not contain nulls")
    birth_day = births.cast(pl.Int32).to_numpy().astype(np.int64)  # days since 1970-01-01
    end_day = (observation_end - dt.date(1970, 1, 1)).days
    T = (end_day - birth_day).astype(np.float64)
    if np.any(T < 0):
        i = int(np.flatnonzero(T < 0)[0])
        raise ValueError(f"birth date {births[i]} (row {i}) is after observation_end {observation_end}")
    if user_ids is None:
        width = max(7, len(str(n)))
        ids = pl.Series("user_id", [f"u{i + 1:0{width}d}" for i in range(n)], dtype=pl.String)
    else:
        ids = pl.Series("user_id", user_ids)
        if len(ids) != n:
            raise ValueError(f"user_ids has {len(ids)} entries for {n} birth dates")

    x, _, owner, times = _simulate_times(bg_params, T, rng, dropout_at_zero=isinstance(bg_params, ModifiedBetaGeoParams))
    repeat_day = birth_day[owner] + np.maximum(np.ceil(times), 1).astype(np.int64)
    nu = rng.gamma(gg_params.q, 1.0 / gg_params.gamma, n)
    all_owner = np.concatenate((np.arange(n), owner))
    all_day = np.concatenate((birth_day, repeat_day))
    values = rng.gamma(gg_params.p, 1.0 / nu[all_owner])
    return pl.DataFrame(
        {
            "user_id": ids.gather(all_owner),
            "event_date": pl.Series(all_day, dtype=pl.Int32).cast(pl.Date),
            "value": pl.Series(values, dtype=pl.Float64),
        }
    ).sort("user_id", "event_date", maintain_order=True)
