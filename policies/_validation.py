"""Argument checks of the decision layer: every bad input is a ``ValueError`` that names the
argument and says how to fix it (never a NaN result or a silent wrong answer).

Thin wrappers over :mod:`estimators.checks`, which owns the tolerances (``ROW_SUM_ATOL``,
``INELIGIBLE_MASS_ATOL``) and the message shape ``field (row i): problem. Fix: fix.`` shared with
the simulators and the estimators."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from estimators import checks
from estimators.checks import fail


def check_effects(tau_value: ArrayLike, tau_cost: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate an (n, K+1) pair of incremental value / cost arrays (column 0 = no offer = 0)."""
    v = np.asarray(tau_value)
    c = np.asarray(tau_cost)
    for name, arr in (("tau_value", v), ("tau_cost", c)):
        if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] < 1:
            fail(name, f"expected shape (n, K+1) with n >= 1 users and K >= 1 offers, got "
                 f"{arr.shape}", "pass one row per user and one column per action, column 0 = "
                 "no offer")
        if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
            fail(name, f"expected a numeric array, got dtype {arr.dtype}", "pass numbers")
        checks.check_finite(name, arr, "impute or drop those users before allocating")
        if np.any(arr[:, 0] != 0):
            row = int(np.flatnonzero(arr[:, 0] != 0)[0])
            fail(name, f"column 0 must be 0 (the incremental effect of no-offer against itself), "
                 f"got {arr[row, 0]:.6g}", f"subtract column 0 from every column so that "
                 f"{name}[:, 0] == 0", row=row)
    if v.shape != c.shape:
        fail("tau_cost", f"shape {c.shape} differs from tau_value's {v.shape}",
             "pass value and cost effects for the same users and actions")
    return v, c


def check_eligible(eligible: ArrayLike, shape: tuple[int, int]) -> np.ndarray:
    """Validate an (n, K+1) boolean eligibility mask whose column 0 (no offer) is all True;
    ``None`` means every action is allowed."""
    if eligible is None:
        return np.ones(shape, dtype=bool)
    return checks.check_eligible("eligible", eligible, shape)


def check_nonneg_scalar(name: str, x, *, allow_none: bool = False) -> float | None:
    """A finite, non-negative float (or None when allowed)."""
    if x is None:
        if allow_none:
            return None
        fail(name, "is required (a finite number >= 0)", f"pass {name}=<a number >= 0>")
    if isinstance(x, str | bytes | bool | np.bool_):
        fail(name, f"expected a number, got {type(x).__name__} {x!r} (not converted: a string "
             "or a flag here is a mistake upstream)", f"pass {name} as a float or int")
    try:
        f = float(x)
    except (TypeError, ValueError):
        fail(name, f"expected a number, got {x!r}", "pass a finite number >= 0")
    if not math.isfinite(f) or f < 0:
        fail(name, f"must be finite and >= 0, got {f}", "pass a non-negative finite value")
    return f


def check_probability(name: str, x, *, upper: float = 1.0) -> float:
    """A float in [0, upper]."""
    f = check_nonneg_scalar(name, x)
    if f > upper:
        fail(name, f"must be in [0, {upper}], got {f}", f"pass a value in [0, {upper}]")
    return f


def check_capacity(capacity: ArrayLike, n_actions: int) -> np.ndarray | None:
    """Per-action capacities, (K+1,) or (K,) (offers only); inf = uncapped; no-offer uncapped."""
    if capacity is None:
        return None
    cap = np.asarray(capacity, dtype=np.float64)
    if cap.ndim != 1 or cap.shape[0] not in (n_actions, n_actions - 1):
        fail("capacity", f"expected shape ({n_actions},) or ({n_actions - 1},) (offers only), got "
             f"{cap.shape}", "one cap per action, np.inf for uncapped")
    if cap.shape[0] == n_actions - 1:
        cap = np.concatenate([[np.inf], cap])
    if np.isnan(cap).any() or (cap < 0).any():
        fail("capacity", "entries must be >= 0, no NaN", "use np.inf for uncapped actions")
    if np.isfinite(cap[0]):
        fail("capacity[0]", "must be np.inf: no-offer cannot be capped (every user can always "
             "get no-offer)", "pass caps for offers only, or np.inf first")
    return cap


def check_action_dist(action_dist: ArrayLike, eligible: np.ndarray | None = None) -> np.ndarray:
    """(n, K+1) probability rows (:func:`estimators.checks.check_probability_rows`: entries in
    [0, 1], rows summing to 1 within ``ROW_SUM_ATOL``) and, with ``eligible``, at most
    ``INELIGIBLE_MASS_ATOL`` per row on ineligible actions. Returns it as float64."""
    if np.ndim(action_dist) != 2:
        fail("action_dist", f"expected shape (n, K+1), got {np.shape(action_dist)}",
             "one probability row per user")
    return checks.check_probability_rows("action_dist", action_dist, eligible=eligible,
                                         fix="normalise the distribution per user")
