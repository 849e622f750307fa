"""Pruning of (user, action) pairs before ranking.

A pair survives when it is eligible, its incremental value is positive (``tau_v > 0``) and, if a
per-pair efficiency floor ``r`` is given, ``tau_v >= r * tau_c`` (i.e. ``tau_v / tau_c >= r`` for
``tau_c > 0``; pairs with ``tau_c <= 0`` and ``tau_v > 0`` have unbounded efficiency and stay).
No-offer (column 0) always stays.

Assumption for exactness: dropping ``tau_v <= 0`` never changes the budgeted optimum when
``tau_c >= 0`` on those pairs (they are dominated by no-offer at (0, 0)). With a negative
incremental cost a pair with ``tau_v <= 0`` could free budget; the decision layer still drops it
on purpose (never pay a user to lose value).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from estimators.precision import float64
from policies._validation import check_effects, check_eligible, check_nonneg_scalar


@float64
def prune_mask(tau_value: ArrayLike, tau_cost: ArrayLike, *, eligible: ArrayLike | None = None,
               min_pair_roi: float | None = None) -> np.ndarray:
    """Boolean (n, K+1) mask of the surviving pairs; column 0 is always True.

    ``keep[i, a] = eligible[i, a] and tau_v[i, a] > 0 and tau_v[i, a] >= min_pair_roi *
    tau_c[i, a]`` for ``a >= 1``.
    """
    v, c = check_effects(tau_value, tau_cost)
    e = check_eligible(eligible, v.shape)
    r = check_nonneg_scalar("min_pair_roi", min_pair_roi, allow_none=True)
    return prune_mask_unchecked(v, c, e, r)


def prune_mask_unchecked(v: Any, c: Any, e: Any, r: float | None) -> Any:
    """:func:`prune_mask` on already validated arrays (works chunk by chunk, on NumPy arrays and,
    inside ``jit``, on JAX arrays: no in-place update)."""
    keep = e & (v > 0)
    if r is not None:
        keep = keep & (v >= r * c)
    return keep | (np.arange(v.shape[1]) == 0)
