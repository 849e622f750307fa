"""Argument checks shared by the decision layer: every bad input is a ``ValueError`` that names the
argument and says how to fix it (never a NaN result or a silent wrong answer)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def check_effects(tau_value: ArrayLike, tau_cost: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate an (n, K+1) pair of incremental value / cost arrays (column 0 = no offer = 0)."""
    v = np.asarray(tau_value)
    c = np.asarray(tau_cost)
    for name, arr in (("tau_value", v), ("tau_cost", c)):
        if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] < 1:
            raise ValueError(f"{name}: expected shape (n, K+1) with n >= 1 users and K >= 1 "
                             f"offers, got {arr.shape}. Fix: pass one row per user and one column "
                             "per action, column 0 = no offer.")
        if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}.")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: contains NaN or infinite entries. Fix: impute or drop those "
                             "users before allocating.")
        if np.any(arr[:, 0] != 0):
            raise ValueError(f"{name}[:, 0] must be 0: column 0 is the incremental effect of "
                             "no-offer against itself. Fix: subtract column 0 from every column.")
    if v.shape != c.shape:
        raise ValueError(f"tau_cost: shape {c.shape} differs from tau_value's {v.shape}. Fix: pass "
                         "value and cost effects for the same users and actions.")
    return v, c


def check_eligible(eligible: ArrayLike, shape: tuple[int, int]) -> np.ndarray:
    """Validate an (n, K+1) boolean eligibility mask whose column 0 (no offer) is all True."""
    if eligible is None:
        return np.ones(shape, dtype=bool)
    e = np.asarray(eligible)
    if e.shape != tuple(shape):
        raise ValueError(f"eligible: expected shape {tuple(shape)}, got {e.shape}. Fix: one "
                         "boolean per user and action.")
    if e.dtype != np.bool_:
        if not np.all((e == 0) | (e == 1)):
            raise ValueError("eligible: entries must be boolean (0/1). Fix: pass a bool mask.")
        e = e.astype(bool)
    if not e[:, 0].all():
        raise ValueError("eligible[:, 0] must be True for every user: no-offer is always allowed. "
                         "Fix: set column 0 to True.")
    return e


def check_nonneg_scalar(name: str, x, *, allow_none: bool = False) -> float | None:
    """A finite, non-negative float (or None when allowed)."""
    if x is None:
        if allow_none:
            return None
        raise ValueError(f"{name}: is required (a finite number >= 0).")
    try:
        f = float(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected a number, got {x!r}.") from err
    if not math.isfinite(f) or f < 0:
        raise ValueError(f"{name}: must be finite and >= 0, got {f}. Fix: pass a non-negative "
                         "finite value.")
    return f


def check_probability(name: str, x, *, upper: float = 1.0) -> float:
    """A float in [0, upper]."""
    f = check_nonneg_scalar(name, x)
    if f > upper:
        raise ValueError(f"{name}: must be in [0, {upper}], got {f}.")
    return f


def check_capacity(capacity: ArrayLike, n_actions: int) -> np.ndarray | None:
    """Per-action capacities, (K+1,) or (K,) (offers only); inf = uncapped; no-offer uncapped."""
    if capacity is None:
        return None
    cap = np.asarray(capacity, dtype=np.float64)
    if cap.ndim != 1 or cap.shape[0] not in (n_actions, n_actions - 1):
        raise ValueError(f"capacity: expected shape ({n_actions},) or ({n_actions - 1},) (offers "
                         f"only), got {cap.shape}. Fix: one cap per action, np.inf for uncapped.")
    if cap.shape[0] == n_actions - 1:
        cap = np.concatenate([[np.inf], cap])
    if np.isnan(cap).any() or (cap < 0).any():
        raise ValueError("capacity: entries must be >= 0 (np.inf for uncapped), no NaN.")
    if np.isfinite(cap[0]):
        raise ValueError("capacity[0] must be np.inf: no-offer cannot be capped (every user can "
                         "always get no-offer). Fix: pass caps for offers only or inf first.")
    return cap


def check_action_dist(action_dist: ArrayLike, eligible: np.ndarray | None = None) -> np.ndarray:
    """(n, A) non-negative rows summing to 1, zero on ineligible actions."""
    p = np.asarray(action_dist, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"action_dist: expected shape (n, K+1), got {p.shape}.")
    if not np.all(np.isfinite(p)) or (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-8):
        raise ValueError("action_dist: rows must be finite, non-negative and sum to 1. Fix: "
                         "normalise the distribution per user.")
    if eligible is not None and (p[~eligible] > 0).any():
        raise ValueError("action_dist: puts probability on ineligible actions. Fix: zero those "
                         "entries and renormalise.")
    return p
