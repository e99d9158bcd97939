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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

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


class ModelInputError(ValueError):
    """Raised when the arrays given to a model are inconsistent or outside its domain."""


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
        raise ModelInputError(f"{what}: first offending row {i} ({values}); {n_bad} row(s) in total")


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


def x_levels(x: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values of x, the index of each row's value, and the summed weight per value.

    The special functions of the likelihood depend on x only, so they are evaluated once per
    distinct x (a few hundred at most) instead of once per row.
    """
    levels, inverse = np.unique(x, return_inverse=True)
    inverse = inverse.reshape(-1)
    return levels, inverse, np.bincount(inverse, weights=weights, minlength=len(levels))


def minimize_multistart(
    neg_mean_ll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: Sequence[Sequence[float]],
    param_names: Sequence[str],
) -> tuple[np.ndarray, bool, str, int]:
    """Minimise an objective over log-parameters from each start; keep the lowest.

    ``neg_mean_ll_and_grad(log_params)`` returns the mean negative log-likelihood and its gradient
    with respect to the log-parameters. Returns ``(best_log_params, converged, message,
    iterations)``.
    """
    bounds = [(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * len(param_names)
    best = None
    n_success = 0
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
        n_success += _start_converged(res)
        if best is None or res.fun < best.fun:
            best = res
    if best is None:
        return np.full(len(param_names), np.nan), False, "no start gave a finite likelihood", 0
    at_bound = [n for n, v in zip(param_names, best.x, strict=True) if abs(v) >= LOG_PARAM_BOUND - 1e-6]
    converged = _start_converged(best) and not at_bound
    max_grad = float(np.max(np.abs(best.jac)))
    msg = f"{best.message}; max |gradient| {max_grad:.2e} (best of {len(starts)} starts, {n_success} converged)"
    if at_bound:
        msg += f"; parameter(s) {', '.join(at_bound)} at the bound exp(±{LOG_PARAM_BOUND:g})"
    return np.asarray(best.x, dtype=np.float64), converged, msg, int(best.nit)


def _start_converged(res) -> bool:
    return bool(res.success) or bool(np.all(np.isfinite(res.jac)) and np.max(np.abs(res.jac)) <= GRADIENT_TOL)


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
