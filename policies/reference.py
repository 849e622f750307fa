"""Exact LP reference for the relaxed multiple-choice knapsack, solved by HiGHS.

Same problem as :func:`policies.allocation.allocate` (see its module docstring), one variable per
surviving (user, action) pair, built with sparse matrices and solved by
``scipy.optimize.linprog`` with HiGHS' interior point method plus crossover (``highs-ipm``:
about 40x faster than dual simplex on these instances; crossover returns a vertex, so at most one
user per coupling constraint is fractional). Meant for n <= 200,000 users (it is the audit, not the
production path). Also reports the integrality gap: the LP objective minus the value of the integer
allocation obtained by rounding every fractional user to one action (the most valuable of its
used actions and no-offer that keeps every constraint satisfied).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.optimize import linprog

from estimators.checks import fail
from estimators.precision import float64
from policies._validation import (
    check_capacity,
    check_effects,
    check_eligible,
    check_nonneg_scalar,
)
from policies.pruning import prune_mask_unchecked

MAX_REFERENCE_USERS = 200_000


class LPReference(NamedTuple):
    """HiGHS solution: ``objective`` (total incremental value of the LP optimum), ``cost``,
    ``action_dist (n, K+1)``, ``budget_dual`` (value per unit of budget), ``integer_objective``
    (fractional users rounded to a single feasible action, see :func:`_round_fractional`),
    ``integrality_gap`` = objective - integer_objective, ``n_fractional``, ``seconds`` (HiGHS wall
    time incl. model build),
    ``integer_action (n,)`` the rounded integer allocation."""

    objective: float
    cost: float
    action_dist: np.ndarray
    budget_dual: float
    integer_objective: float
    integrality_gap: float
    n_fractional: int
    seconds: float
    integer_action: np.ndarray


@float64
def solve_lp_highs(tau_value: ArrayLike, tau_cost: ArrayLike, *, budget: float,
                   eligible: ArrayLike | None = None, min_roi: float | None = None,
                   capacity: ArrayLike | None = None, min_pair_roi: float | None = None,
                   method: str = "highs-ipm") -> LPReference:
    """Solve ``max sum pi*tau_v`` s.t. budget, aggregate ROI floor, capacities, one distribution per
    user over the pruned eligible actions, with HiGHS (``method``: a ``linprog`` HiGHS method)."""
    v, c = check_effects(tau_value, tau_cost)
    v = v.astype(np.float64)
    c = c.astype(np.float64)
    n, n_actions = v.shape
    if n > MAX_REFERENCE_USERS:
        fail("tau_value", f"{n} users exceed the reference limit {MAX_REFERENCE_USERS}",
             "solve a subsample, or use policies.allocation.allocate")
    e = check_eligible(eligible, v.shape)
    b = check_nonneg_scalar("budget", budget)
    r = check_nonneg_scalar("min_roi", min_roi, allow_none=True)
    r_pair = check_nonneg_scalar("min_pair_roi", min_pair_roi, allow_none=True)
    cap = check_capacity(capacity, n_actions)
    t0 = time.perf_counter()
    keep = prune_mask_unchecked(v, c, e, r_pair)
    users, actions = np.nonzero(keep)
    nv = users.size
    cols = np.arange(nv)
    a_eq = sp.csr_matrix((np.ones(nv), (users, cols)), shape=(n, nv))
    rows_ub = [c[users, actions][None, :]]
    b_ub = [b]
    if r is not None:
        rows_ub.append((r * c[users, actions] - v[users, actions])[None, :])
        b_ub.append(0.0)
    a_ub = sp.csr_matrix(np.vstack(rows_ub))
    if cap is not None:
        capped = np.flatnonzero(np.isfinite(cap))
        if capped.size:
            sel = np.isin(actions, capped)
            rr = np.searchsorted(capped, actions[sel])  # capped is sorted: row of each action
            a_cap = sp.csr_matrix((np.ones(sel.sum()), (rr, cols[sel])), shape=(capped.size, nv))
            a_ub = sp.vstack([a_ub, a_cap]).tocsr()
            b_ub.extend(cap[capped].tolist())
    res = linprog(-v[users, actions], A_ub=a_ub, b_ub=np.asarray(b_ub), A_eq=a_eq,
                  b_eq=np.ones(n), bounds=(0, None), method=method)
    seconds = time.perf_counter() - t0
    if res.status != 0:
        fail("budget", f"the LP is infeasible or failed ({res.message})",
             "check that budget and capacities admit the all-no-offer allocation")
    x = np.clip(res.x, 0.0, None)
    dist = np.zeros((n, n_actions))
    dist[users, actions] = x
    dist /= dist.sum(axis=1, keepdims=True)
    frac = dist.max(axis=1) < 1.0 - 1e-9
    rounded = _round_fractional(dist, v, c, np.flatnonzero(frac), b, r, cap)
    objective = float(np.sum(dist * v))
    integer_objective = float(np.sum(rounded * v))
    budget_dual = float(-res.ineqlin.marginals[0]) if res.ineqlin is not None else float("nan")
    return LPReference(objective, float(np.sum(dist * c)), dist, budget_dual, integer_objective,
                       objective - integer_objective, int(frac.sum()), seconds,
                       rounded.argmax(axis=1))


def _round_fractional(dist: np.ndarray, v: np.ndarray, c: np.ndarray, users: np.ndarray,
                      budget: float, min_roi: float | None, cap: np.ndarray | None) -> np.ndarray:
    """An integer allocation from the LP optimum: each fractional user (one by one) gets the most
    valuable action among its used actions and no-offer that keeps the budget, the ROI floor and
    the capacities satisfied given everyone else; if none does (possible only when the rest of
    the plan already violates a constraint by rounding noise), its cheapest used action."""
    rounded = dist.copy()
    tol = 1e-9 * max(1.0, budget)
    cost, value = float(np.sum(dist * c)), float(np.sum(dist * v))  # running totals
    counts = dist.sum(axis=0)
    for i in users:
        cost_rest = cost - float(rounded[i] @ c[i])
        value_rest = value - float(rounded[i] @ v[i])
        counts_rest = counts - rounded[i]
        rounded[i] = 0.0
        used = np.flatnonzero(dist[i] > 1e-12)
        options = sorted(set(used.tolist()) | {0}, key=lambda a: -v[i, a])
        choice = int(used[np.argmin(c[i, used])])
        for a in options:
            new_cost, new_value = cost_rest + c[i, a], value_rest + v[i, a]
            ok = new_cost <= budget + tol
            if min_roi is not None:
                ok &= new_value >= min_roi * new_cost - tol
            if cap is not None:
                ok &= counts_rest[a] + 1.0 <= cap[a] + 1e-9
            if ok:
                choice = int(a)
                break
        rounded[i, choice] = 1.0
        cost, value = cost_rest + c[i, choice], value_rest + v[i, choice]
        counts = counts_rest
        counts[choice] += 1.0
    return rounded
