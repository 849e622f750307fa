r"""Spend recalibration: the allocator's internal budget set so that the induced allocation's
*estimated true* incremental cost on an independent randomised holdout equals the target.

Why: the allocator keeps ``sum pi tau_c_hat`` within the budget, but at small budgets it picks the
users whose *estimated* cost is lowest for their estimated value, so their errors are selected:
the true cost of the chosen users exceeds the estimate (a winner's curse of the cost head) and the
policy overspends. Recalibrating the head's average (isotonic or linear maps of ``tau_c_hat``)
removes its bias given ``tau_c_hat``, not the bias given selection. This module measures the spend
of the policy actually chosen and corrects the budget instead.

**Estimate.** For a policy ``pi (n, K+1)`` on the holdout's users (the allocation of the heads'
holdout predictions; the heads were fitted on other data, so the holdout outcomes are independent
of the choice given ``x``), the incremental cost per user ``C(pi) - C(pi_0)`` (``pi_0`` = no offer
to all) is estimated by the doubly robust per-row term

``phi_i = sum_a (pi_ia - pi0_ia) q_ia + (pi_{i A_i} - pi0_{i A_i}) / e_{i A_i} (c_i - q_{i A_i})``,

``C_hat = mean(phi)``, ``se = sd(phi) / sqrt(n)`` (``q_hat = 0``: IPS). Unbiased when ``e`` are
the logging propensities (any ``q_hat`` not fitted on the holdout; the cost head's ``mu`` is the
natural one) and ``pi`` puts mass only where ``e > 0``.

**Calibration** (:func:`calibrate_budget`). ``g(b)`` = ``C_hat`` of ``allocate(tau_v, tau_c,
budget = b n)`` on the holdout users, plus ``z_{confidence} se`` when ``confidence`` is given (an
upper confidence bound: the spend then stays within the target with about that probability). The
internal budget per user ``b*`` solves ``g(b*) = target`` by bisection on ``[0, b_hi]``
(``b_hi`` = the target, doubled while ``g(b_hi) < target`` up to ``max_scale`` x the target or
until the budget stops binding); ``b*`` is the bracket's lower end, so ``target (1 - tol) <=
g(b*) <= target`` at convergence. It assumes ``g`` is non-decreasing in ``b`` (more budget, more
spend: true for the allocator's nested solutions up to the estimate's noise) and that the
holdout's users come from the population the policy is deployed on, so the per-user budget
transfers: deploy ``allocate(..., budget = b* n_deploy)``. The remaining error of the deployed
spend is the holdout estimate's (``stderr``) plus the two samples' difference.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from estimators import checks
from estimators.checks import fail
from estimators.precision import float64
from policies._validation import check_effects, check_eligible, check_nonneg_scalar
from policies.allocation import allocate

__all__ = ["SpendCalibration", "calibrate_budget", "holdout_incremental_cost"]


class SpendCalibration(NamedTuple):
    """``internal_budget_per_user`` (``b*``, pass ``b* n`` to the allocator), the holdout
    estimate of the allocation's true incremental cost per user at ``b*`` and its standard error,
    the target, bisection ``iterations``, ``converged`` (``g(b*)`` within ``tol``), ``capped``
    (``g`` stayed below the target up to the cap or the budget stopped binding: ``b*`` is that
    end) and ``nominal_estimate`` (the estimate at the nominal budget, before calibration)."""

    internal_budget_per_user: float
    estimated_cost_per_user: float
    stderr: float
    target_per_user: float
    iterations: int
    converged: bool
    capped: bool
    nominal_estimate: float


def _holdout(action: Any, cost: Any, action_prob: Any, shape: tuple[int, int],
             q_hat: Any | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n, k1 = shape
    e = checks.check_shape("action_prob", action_prob, (n, k1),
                           "pass the holdout's logging distribution, one row per holdout user")
    e = checks.check_probability_rows("action_prob", checks.check_finite("action_prob", e)
                                      .astype(np.float64),
                                      fix="pass the logging distribution of the holdout")
    if np.any(e[:, 0] <= 0):
        fail("action_prob", "column 0 (no offer) must be > 0 on every holdout row: incremental "
             "cost is measured against no-offer", "use a randomised holdout with a no-offer arm",
             row=int(np.flatnonzero(e[:, 0] <= 0)[0]))
    a = checks.check_actions("action", checks.check_shape("action", action, (n,),
                                                          "one logged action per holdout row"),
                             k1)
    checks.check_logged_propensity("action_prob", e, a,
                                   fix="pass the propensities the actions were drawn from")
    c = checks.check_finite("cost", checks.check_shape("cost", cost, (n,),
                                                       "one cost per holdout row")
                            ).astype(np.float64)
    if q_hat is None:
        q = np.zeros((n, k1))
    else:
        q = checks.check_finite("q_hat", checks.check_shape(
            "q_hat", q_hat, (n, k1), "pass the cost model's E[cost | x, a] on the holdout rows")
        ).astype(np.float64)
    return a, c, e, q


def _dr_cost(dist: np.ndarray, a: np.ndarray, c: np.ndarray, e: np.ndarray,
             q: np.ndarray) -> tuple[float, float]:
    rows = np.arange(len(a))
    diff = dist.copy()
    diff[:, 0] -= 1.0  # pi - pi_0
    phi = np.sum(diff * q, axis=1) + diff[rows, a] / e[rows, a] * (c - q[rows, a])
    return float(phi.mean()), float(phi.std(ddof=1) / np.sqrt(len(phi)))


@float64
def holdout_incremental_cost(action_dist: ArrayLike, *, action: Any, cost: Any,
                             action_prob: Any, q_hat: Any | None = None) -> tuple[float, float]:
    """``(C_hat, se)``: the doubly robust (IPS without ``q_hat``) estimate of the incremental
    cost per user ``C(pi) - C(no offer)`` of ``action_dist (n, K+1)`` on a randomised holdout
    (module docstring). ``action_dist`` must put no mass where ``action_prob`` is 0."""
    dist = checks.check_finite("action_dist", np.asarray(action_dist, dtype=np.float64))
    if dist.ndim != 2:
        fail("action_dist", f"expected shape (n, K+1), got {dist.shape}",
             "one probability row per holdout user")
    a, c, e, q = _holdout(action, cost, action_prob, dist.shape, q_hat)
    dist = checks.check_probability_rows("action_dist", dist, eligible=e > 0,
                                         fix="allocate with eligible = action_prob > 0")
    return _dr_cost(dist, a, c, e, q)


@float64
def calibrate_budget(tau_value: ArrayLike, tau_cost: ArrayLike, *, budget_per_user: float,
                     action: Any, cost: Any, action_prob: Any, eligible: ArrayLike | None = None,
                     q_hat: Any | None = None, confidence: float | None = None,
                     tol: float = 1e-3, max_iter: int = 40, max_scale: float = 4.0,
                     **allocate_kwargs: Any) -> SpendCalibration:
    """The internal budget per user whose allocation has estimated true incremental cost equal
    to ``budget_per_user`` on the holdout (module docstring).

    ``tau_value``, ``tau_cost``: the heads' predictions ``(n, K+1)`` on the holdout's users;
    ``action``, ``cost``, ``action_prob``: the holdout log (cost label, logging distribution with
    a no-offer arm); ``eligible``: defaults to ``action_prob > 0`` (an allocation must stay where
    the holdout has support); ``q_hat``: the cost head's ``mu`` on the holdout (DR; ``None``:
    IPS); ``confidence``: calibrate the one-sided upper bound ``C_hat + z se`` instead of
    ``C_hat``; ``tol``: the bisection stops when ``target - tol * target <= g(b*) <= target``
    (``converged``; ``g`` may jump where users tie, then ``max_iter`` ends it unconverged);
    ``allocate_kwargs``: passed to :func:`policies.allocation.allocate` (e.g. ``min_roi``)."""
    v, c_hat = check_effects(tau_value, tau_cost)
    target = check_nonneg_scalar("budget_per_user", budget_per_user)
    if target <= 0:
        fail("budget_per_user", "must be > 0 to calibrate a spend", "e.g. 0.05")
    a, c, e, q = _holdout(action, cost, action_prob, v.shape, q_hat)
    elig = e > 0 if eligible is None else check_eligible(eligible, v.shape) & (e > 0)
    if confidence is not None and not 0.5 <= float(confidence) < 1.0:
        fail("confidence", f"must lie in [0.5, 1), got {confidence}", "e.g. 0.9, or None")
    for name, val, low in (("tol", tol, 0.0), ("max_scale", max_scale, 1.0)):
        if not np.isfinite(val) or val <= low:
            fail(name, f"must be a finite number > {low:g}, got {val}", "keep the default")
    if int(max_iter) < 1:
        fail("max_iter", f"must be >= 1, got {max_iter}", "e.g. 40")
    z = 0.0 if confidence is None else float(stats.norm.ppf(confidence))
    n = v.shape[0]

    def g(b: float) -> tuple[float, float, float, bool]:
        alloc = allocate(v, c_hat, budget=b * n, eligible=elig, **allocate_kwargs)
        est, se = _dr_cost(np.asarray(alloc.action_dist, dtype=np.float64), a, c, e, q)
        return est + z * se, est, se, bool(alloc.budget_binds)

    hi = target
    g_hi, est_hi, se_hi, binds = g(hi)
    nominal = est_hi
    while g_hi < target:  # spends less than the target in truth: widen upwards
        if not binds or hi >= max_scale * target:
            return SpendCalibration(hi, est_hi, se_hi, target, 0, True, True, nominal)
        hi = min(2.0 * hi, max_scale * target)
        g_hi, est_hi, se_hi, binds = g(hi)
    lo = 0.0
    g_lo, est_lo, se_lo, _ = g(lo)
    if g_lo > target:  # even the zero-budget allocation (free offers) overspends
        return SpendCalibration(0.0, est_lo, se_lo, target, 0, True, True, nominal)
    it, converged = 0, target - g_lo <= tol * target
    while not converged and it < int(max_iter):
        it += 1
        mid = 0.5 * (lo + hi)
        g_mid, est_mid, se_mid, _ = g(mid)
        if g_mid <= target:
            lo, g_lo, est_lo, se_lo = mid, g_mid, est_mid, se_mid
        else:
            hi = mid
        converged = target - g_lo <= tol * target
    return SpendCalibration(lo, est_lo, se_lo, target, it, converged, False, nominal)
