"""Shared machinery of the maximum-likelihood fits: result type, input errors, the optimiser loop.

Every model is fitted the same way:

* the parameters are optimised on the log scale (so they stay positive without constraints
  other than wide box bounds that keep ``exp`` finite),
* the objective is the *mean* negative log-likelihood per customer (a well-scaled number for
  L-BFGS-B whatever the number of customers) with its analytic gradient (``jac=True``),
* the fit is run from a few deterministic starting points and the best optimum is kept.

No randomness is involved, so the same input gives bit-identical parameters.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

import numpy as np
from scipy.optimize import minimize

P = TypeVar("P")

#: Box bounds on the log of every parameter: exp(±25) keeps every parameter in
#: [1.4e-11, 7.2e10], far outside any sensible value, while keeping all terms finite.
LOG_PARAM_BOUND = 25.0

#: A start whose final max |gradient| of the mean log-likelihood (w.r.t. the log-parameters) is
#: below this counts as converged even when L-BFGS-B stops on an "ABNORMAL" line search, which it
#: does when it is already at the optimum to machine precision.
GRADIENT_TOL = 1e-6

#: A start also counts as converged when the quasi-Newton model predicts that no step can raise
#: the *total* log-likelihood by more than this (½ gᵀ H⁻¹ g, with L-BFGS's inverse Hessian). This
#: covers maxima at infinity along a flat ridge — e.g. Pareto/NBD with s, β → ∞ (a dropout rate
#: common to every customer), where the line search fails while the likelihood still creeps up
#: by thousandths; such estimates are also flagged by the caller as at the edge of the space.
LOG_LIKELIHOOD_TOL = 0.01


class ModelInputError(ValueError):
    """Raised when the arrays given to a model are inconsistent or outside its domain.

    ``row`` is the index of the first offending row when the error is about rows (None
    otherwise), so that callers holding the user ids can name the user."""

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row


@dataclass(frozen=True)
class PositiveParams:
    """Base of every model's parameter record: a frozen dataclass whose fields are all finite and
    > 0 (converted to float on construction; ModelInputError naming ``MODEL`` otherwise)."""

    MODEL: ClassVar[str] = "model"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = float(getattr(self, field.name))
            if not (math.isfinite(value) and value > 0):
                raise ModelInputError(f"{self.MODEL} parameter {field.name} must be finite and > 0, got {value!r}")
            object.__setattr__(self, field.name, value)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FitResult(Generic[P]):
    """Outcome of a maximum-likelihood fit.

    ``log_likelihood`` is the total over customers (not the mean), so it is comparable with the
    published figures; ``n_users`` is the number of customers the likelihood was computed on (for
    Gamma-Gamma only the repeat buyers with positive spend); ``n_patterns`` the number of distinct
    data patterns the optimiser actually iterated over; ``converged`` is True when the best start
    reported success and no parameter sits on its box bound.
    """

    params: P
    log_likelihood: float
    n_users: int
    converged: bool
    message: str
    iterations: int
    n_patterns: int = 0


def as_float_array(name: str, values: object) -> np.ndarray:
    """Convert ``values`` to a 1-d float64 array (a scalar becomes length 1)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelInputError(f"{name} must be numeric: {exc}") from exc
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ModelInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def wsum(weights: np.ndarray, values: np.ndarray) -> float:
    """Σ weights·values as ``np.sum(weights * values)``.

    Deliberately not ``np.dot``: numpy's pairwise summation gives the same bits on every machine
    whatever the BLAS build and thread count, and avoids BLAS threading overhead (measured at
    several ms per call on a busy 2-core machine, for 20k elements).
    """
    return float(np.sum(weights * values))


def softplus_and_logistic(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ln(1 + e^d), 1/(1 + e^−d)) from one exponential: with e = exp(−|d|),
    softplus = max(d, 0) + ln(1 + e) and logistic = 1/(1+e) for d >= 0, e/(1+e) otherwise.

    ln(1 + e) instead of log1p(e): the absolute error is below 1.2e-16 (all a log-likelihood
    needs) and numpy's vectorised log is several times faster than log1p and logaddexp, which
    dominate the cost of a likelihood evaluation on hundreds of thousands of patterns. d = −inf
    gives (0, 0).
    """
    e = np.exp(-np.abs(d))
    one_e = 1.0 + e
    softplus = np.maximum(d, 0.0) + np.log(one_e)
    logistic = np.where(d >= 0, 1.0, e) / one_e
    return softplus, logistic


def check_equal_lengths(**arrays: np.ndarray) -> int:
    """Raise ModelInputError unless all arrays have the same length; return that length."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ModelInputError(f"arrays must have equal lengths, got {lengths}")
    return next(iter(lengths.values()))


def broadcast_lengths(**arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast 1-d arrays of equal length or length 1 (scalars); ModelInputError otherwise."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len({n for n in lengths.values() if n != 1}) > 1:
        raise ModelInputError(f"arrays must have equal lengths (or be scalars), got {lengths}")
    return [np.ascontiguousarray(a) for a in np.broadcast_arrays(*arrays.values())]


def raise_first_bad(bad: np.ndarray, what: str, **arrays: np.ndarray) -> None:
    """Raise ModelInputError naming the first row where ``bad`` is True, with its values."""
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        values = ", ".join(f"{name}={arr[i].item()!r}" for name, arr in arrays.items())
        n_bad = int(np.count_nonzero(bad))
        raise ModelInputError(f"{what}: first offending row {i} ({values}); {n_bad} row(s) in total", row=i)


def validate_purchase_history(x: object, t_x: object, T: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check and convert purchase-history arrays (x, t_x, T) shared by BG/NBD, MBG/NBD and
    Pareto/NBD; raise ModelInputError naming the first bad row and its values.

    Requirements: equal lengths, finite values, x a non-negative integer, 0 <= t_x <= T, and
    t_x == 0 when x == 0. Scalars are accepted and broadcast against the arrays.
    """
    x, t_x, T = broadcast_lengths(x=as_float_array("x", x), t_x=as_float_array("t_x", t_x), T=as_float_array("T", T))
    finite = np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T)
    raise_first_bad(~finite, "x, t_x and T must be finite", x=x, t_x=t_x, T=T)
    raise_first_bad((x < 0) | (x != np.floor(x)), "x must be a non-negative integer", x=x, t_x=t_x, T=T)
    raise_first_bad((t_x < 0) | (t_x > T), "need 0 <= t_x <= T", x=x, t_x=t_x, T=T)
    raise_first_bad((x == 0) & (t_x != 0), "t_x must be 0 when x == 0", x=x, t_x=t_x, T=T)
    return np.ascontiguousarray(x), np.ascontiguousarray(t_x), np.ascontiguousarray(T)


def validate_horizon(t: object) -> np.ndarray:
    """A prediction horizon (scalar or array) in the model's time unit: finite and >= 0."""
    t = as_float_array("t", t)
    raise_first_bad(~np.isfinite(t) | (t < 0), "t must be finite and >= 0", t=t)
    return t


def validate_weights(weights: object | None, n: int) -> np.ndarray | None:
    """Optional frequency weights: finite, >= 0, one per row."""
    if weights is None:
        return None
    w = as_float_array("weights", weights)
    if len(w) != n:
        raise ModelInputError(f"weights must have one entry per row: {len(w)} weights for {n} rows")
    raise_first_bad(~np.isfinite(w) | (w < 0), "weights must be finite and >= 0", weights=w)
    return w


def compress_patterns(*columns: np.ndarray, weights: np.ndarray | None = None):
    """Unique rows of the stacked ``columns`` with their (summed) weights.

    Returns ``(unique_columns, counts, inverse)`` where ``unique_columns`` is a tuple of arrays in
    lexicographic order, ``counts`` the summed weights of each pattern and ``inverse`` maps every
    input row to its pattern. The order does not depend on the input row order, so neither does
    anything computed from it (fits are bit-identical for shuffled input).
    """
    n = len(columns[0])
    order = np.lexsort(columns[::-1])  # first column is the primary key
    new_group = np.zeros(n, dtype=bool)
    if n:
        new_group[0] = True
        for col in columns:
            sorted_col = col[order]
            new_group[1:] |= sorted_col[1:] != sorted_col[:-1]
    group_of_sorted = np.cumsum(new_group) - 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = group_of_sorted
    firsts = order[new_group]
    n_groups = len(firsts)
    if weights is None:
        counts = np.bincount(inverse, minlength=n_groups).astype(np.float64)
    else:
        counts = np.bincount(inverse, weights=weights, minlength=n_groups)
    return tuple(np.ascontiguousarray(col[firsts]) for col in columns), counts, inverse


@dataclass(frozen=True)
class HistoryPatterns:
    """Unique (x, t_x, T) patterns with their summed weights, and the distinct values of each
    column with every pattern's index into them.

    Terms that depend on one column only (ln Γ(r+x), ln(α+T), ln(α+t_x), …) are evaluated once per
    distinct value — a few hundred for daily data — and gathered, instead of once per pattern.
    """

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weights: np.ndarray
    x_levels: np.ndarray
    x_index: np.ndarray
    x_weights: np.ndarray
    T_levels: np.ndarray
    T_index: np.ndarray
    t_x_levels: np.ndarray
    t_x_index: np.ndarray

    @classmethod
    def build(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> "HistoryPatterns":
        """Compress validated arrays (``weights`` = frequency weights, default 1 per row)."""
        (ux, utx, uT), counts, _ = compress_patterns(x, t_x, T, weights=weights)
        return cls.from_unique(ux, utx, uT, counts)

    @classmethod
    def from_unique(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray) -> "HistoryPatterns":
        x_lv, x_idx, x_w = x_levels(x, weights)
        T_lv, T_idx = np.unique(T, return_inverse=True)
        tx_lv, tx_idx = np.unique(t_x, return_inverse=True)
        return cls(x, t_x, T, weights, x_lv, x_idx, x_w, T_lv, T_idx.reshape(-1), tx_lv, tx_idx.reshape(-1))

    @property
    def total_weight(self) -> float:
        return float(self.weights.sum())

    def __len__(self) -> int:
        return len(self.x)


def x_levels(x: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values of x, the index of each row's value, and the summed weight per value.

    The special functions of the likelihood depend on x only, so they are evaluated once per
    distinct x (a few hundred at most) instead of once per row.
    """
    levels, inverse = np.unique(x, return_inverse=True)
    inverse = inverse.reshape(-1)
    return levels, inverse, np.bincount(inverse, weights=weights, minlength=len(levels))


#: A shape/rate pair is "on a ridge to infinity" when both exceed e^RIDGE_LOG (about 1e5).
RIDGE_LOG = 11.5

#: Two converged starts whose optima differ by less than this in every log-parameter are taken to
#: have found the same maximum.
AGREEMENT_TOL = 1e-4


def minimize_multistart(
    neg_mean_ll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: Sequence[Sequence[float]],
    param_names: Sequence[str],
    n_total: float = 1.0,
    ridges: Sequence[tuple[int, int]] = (),
) -> tuple[np.ndarray, bool, str, int]:
    """Minimise an objective over log-parameters from several starts; keep the lowest.

    ``neg_mean_ll_and_grad(log_params)`` returns the mean negative log-likelihood and its gradient
    with respect to the log-parameters. The starts are run in order until two of them have
    converged to the same optimum (every log-parameter within ``AGREEMENT_TOL``) — independent
    confirmation that the maximum is not a start-dependent artefact — or all have been run.
    Returns ``(best_log_params, converged, message, iterations)``; the message reports how many
    starts were run, converged and agreed. ``n_total`` (the total weight the mean is taken over)
    converts LOG_LIKELIHOOD_TOL to the mean objective.

    A parameter on its box bound normally means no convergence. ``ridges`` lists pairs (shape,
    rate) of a gamma or beta mixing distribution whose ratio alone is identified when both grow
    without limit — the heterogeneity vanishes (e.g. Pareto/NBD s, β → ∞: every customer has the
    dropout rate s/β). A maximum at infinity along such a ridge is the limit model; when every
    parameter on the bound has its partner beyond e^RIDGE_LOG too, the fit counts as converged and
    the message says so.
    """
    tol = LOG_LIKELIHOOD_TOL / max(float(n_total), 1.0)
    bounds = [(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * len(param_names)
    results = []
    for start in starts:
        x0 = np.clip(np.log(np.asarray(start, dtype=np.float64)), -LOG_PARAM_BOUND + 1, LOG_PARAM_BOUND - 1)
        res = minimize(
            neg_mean_ll_and_grad,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20},
        )
        if not np.isfinite(res.fun):
            continue
        results.append(res)
        converged_runs = [r for r in results if _start_converged(r, tol)]
        if len(converged_runs) >= 2 and _agreeing(converged_runs, min(converged_runs, key=lambda r: r.fun)) >= 2:
            break
    if not results:
        return np.full(len(param_names), np.nan), False, "no start gave a finite likelihood", 0
    best = min(results, key=lambda r: r.fun)
    n_converged = sum(_start_converged(r, tol) for r in results)
    n_agree = _agreeing([r for r in results if _start_converged(r, tol)], best)
    at_bound_idx = [i for i, v in enumerate(best.x) if abs(v) >= LOG_PARAM_BOUND - 1e-6]
    at_bound = [param_names[i] for i in at_bound_idx]
    on_ridge = bool(at_bound_idx) and all(
        any(i in pair and min(best.x[pair[0]], best.x[pair[1]]) > RIDGE_LOG for pair in ridges) for i in at_bound_idx
    )
    converged = _start_converged(best, tol) and (not at_bound or on_ridge)
    max_grad = float(np.max(np.abs(best.jac)))
    status = str(best.message).strip().rstrip(":").strip() or "stopped"  # scipy may say just "ABNORMAL: "
    msg = (
        f"{status}; max |gradient| {max_grad:.2e}; {len(results)} of {len(starts)} starts run, "
        f"{n_converged} converged, {n_agree} at the best optimum"
    )
    if on_ridge:
        ratios = [f"{param_names[a]}/{param_names[b]}" for a, b in ridges if min(best.x[a], best.x[b]) > RIDGE_LOG]
        msg += (
            f"; maximum at infinity along the ridge {', '.join(ratios)} (bound exp({LOG_PARAM_BOUND:g}) reached): "
            "the limit model without that heterogeneity, of which only the ratio is identified"
        )
    elif at_bound:
        msg += f"; parameter(s) {', '.join(at_bound)} at the bound exp(±{LOG_PARAM_BOUND:g})"
    return np.asarray(best.x, dtype=np.float64), converged, msg, int(best.nit)


def _agreeing(runs: list, best) -> int:
    """How many of ``runs`` ended within AGREEMENT_TOL (every log-parameter) of ``best``."""
    return sum(bool(np.max(np.abs(np.asarray(r.x) - np.asarray(best.x))) <= AGREEMENT_TOL) for r in runs)


def _start_converged(res, tol: float) -> bool:
    """Success, or a gradient below GRADIENT_TOL, or a predicted gain ½ gᵀH⁻¹g below ``tol``."""
    if res.success:
        return True
    g = np.asarray(res.jac, dtype=np.float64)
    if not np.all(np.isfinite(g)):
        return False
    if np.max(np.abs(g)) <= GRADIENT_TOL:
        return True
    try:
        gain = 0.5 * float(g @ res.hess_inv.matvec(g))
    except (AttributeError, ValueError):
        return False
    return bool(np.isfinite(gain) and 0 <= gain <= tol)


def fit_purchase_model(
    model: str,
    make_params: Callable[..., P],
    param_names: Sequence[str],
    x: object,
    t_x: object,
    T: object,
    weights: object | None,
    log_likelihood_and_gradient: Callable[[np.ndarray, HistoryPatterns], tuple[float, np.ndarray]],
    starts: Callable[[float, float], Sequence[Sequence[float]]],
) -> FitResult[P]:
    """The maximum-likelihood fit shared by BG/NBD, MBG/NBD and Pareto/NBD.

    Validates (x, t_x, T) and the optional frequency ``weights``, compresses the customers to
    unique patterns with summed weights, minimises the mean negative log-likelihood per customer
    over the log-parameters with the analytic gradient (``log_likelihood_and_gradient(log_params,
    patterns)`` returns the *total* Σ w ln L and its gradient) from the ``starts(rate, mean_T)``
    — rate being the mean repeat purchases per unit time and mean_T the mean observation length,
    scales for the rate parameters — and keeps the best optimum (``minimize_multistart``, with both
    gamma/beta mixing pairs (0, 1) and (2, 3) as ridges). Data without a single repeat purchase
    have no maximum: the fit is then reported as not converged.
    """
    x, t_x, T = validate_purchase_history(x, t_x, T)
    if len(x) == 0:
        raise ModelInputError(f"cannot fit the {model} model on zero customers")
    w_in = validate_weights(weights, len(x))
    patterns = HistoryPatterns.build(x, t_x, T, weights=w_in)
    total_w = patterns.total_weight
    if total_w <= 0:
        raise ModelInputError("weights sum to zero")

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = log_likelihood_and_gradient(log_params, patterns)
        if not np.isfinite(ll) or not np.all(np.isfinite(grad)):
            return np.inf, np.zeros_like(log_params)
        return -ll / total_w, -grad / total_w

    counts, ux, uT = patterns.weights, patterns.x, patterns.T
    rate = min(max(wsum(counts, ux) / max(wsum(counts, uT), 1e-12), 1e-6), 1e6)
    mean_T = wsum(counts, uT) / total_w or 1.0
    log_best, converged, message, nit = minimize_multistart(
        objective, starts(rate, mean_T), param_names, total_w, ridges=((0, 1), (2, 3))
    )
    if not np.all(np.isfinite(log_best)):
        raise ModelInputError(f"{model} fit failed: {message}")
    if not np.any((ux > 0) & (counts > 0)):
        converged = False
        message = f"no repeat purchases in the data: the {model} likelihood has no maximum; " + message
    ll_total, _ = log_likelihood_and_gradient(log_best, patterns)
    return FitResult(
        params=make_params(*np.exp(log_best)),
        log_likelihood=ll_total,
        n_users=int(round(total_w)) if weights is not None else len(x),
        converged=converged,
        message=message,
        iterations=nit,
        n_patterns=len(patterns),
    )


def numerical_hessian(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, rel_step: float = 1e-5) -> np.ndarray:
    """Symmetrised central-difference Hessian of a function given its analytic gradient.

    Used to obtain asymptotic standard errors (inverse of the observed information).
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    h = np.empty((n, n))
    for i in range(n):
        step = rel_step * max(1.0, abs(x[i]))
        e = np.zeros(n)
        e[i] = step
        h[i] = (grad(x + e) - grad(x - e)) / (2 * step)
    return 0.5 * (h + h.T)
