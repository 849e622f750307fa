"""Baseline policies, all returning :class:`policies.allocation.Allocation`.

Budgeted baselines share one rule (:func:`fill_budget`): each user has a proposed action and a
priority; users are taken in decreasing priority while the running sum of the *estimated*
incremental cost of their proposed action stays within the budget (the first user that does not fit
is split fractionally so the budget is met exactly in expectation). This is how such rules are run
in practice; only the priority and the proposed action differ:

* :func:`lifecycle_rule`: segment -> offer (e.g. lapsed users get offer k), random order.
* :func:`treat_all`: one fixed offer to every eligible user (no budget).
* :func:`random_allocation`: a random eligible offer, random order.
* :func:`propensity_targeting`: a fixed offer, ranked by predicted purchase propensity (what this
  framework argues against: it targets sure things).
* :func:`value_only_uplift`: the offer with the largest estimated ``tau_v``, ranked by it (ignores
  cost).
* :func:`cost_aware_uplift` / :func:`oracle`: :func:`policies.allocation.allocate` on estimated /
  true effects.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
from numpy.typing import ArrayLike

from estimators.checks import fail
from estimators.precision import float64
from policies._validation import check_effects, check_eligible, check_nonneg_scalar
from policies.allocation import Allocation, allocate


def _record(dist: np.ndarray, v: np.ndarray, c: np.ndarray, budget_binds: bool, n_frac: int,
            method: str) -> Allocation:
    k = v.shape[1]
    return Allocation(np.argmax(dist, axis=1), dist, float(np.sum(dist * v)),
                      float(np.sum(dist * c)), 0.0, 0.0, np.zeros(k), budget_binds, False,
                      np.zeros(k, dtype=bool), n_frac, method)


@float64
def fill_budget(proposed_action: ArrayLike, priority: ArrayLike, tau_value: ArrayLike,
                tau_cost: ArrayLike, *, budget: float | None, eligible: ArrayLike | None = None,
                method: str = "fill") -> Allocation:
    """Take users by decreasing ``priority`` (ties: lower index first), giving each its
    ``proposed_action`` (0 = skip), while ``sum tau_cost[i, proposed_i]`` stays <= ``budget``; the
    first user that does not fit gets the fraction that exhausts the budget, later users none.
    ``budget=None``: everyone gets their proposed action."""
    v, c = check_effects(tau_value, tau_cost)
    e = check_eligible(eligible, v.shape)
    n = v.shape[0]
    a = np.asarray(proposed_action).astype(np.int64)
    pr = np.asarray(priority, dtype=np.float64)
    if a.shape != (n,) or (a < 0).any() or (a >= v.shape[1]).any():
        fail("proposed_action", f"expected ({n},) ints in [0, {v.shape[1] - 1}], got shape "
             f"{a.shape}", "one action index per user")
    if not e[np.arange(n), a].all():
        row = int(np.flatnonzero(~e[np.arange(n), a])[0])
        fail("proposed_action", f"proposes ineligible action {a[row]}",
             "propose 0 (no offer) there", row=row)
    if pr.shape != (n,) or not np.all(np.isfinite(pr)):
        fail("priority", f"expected a finite ({n},) array, got shape {pr.shape}",
             "one finite priority per user")
    rows = np.arange(n)
    share = np.where(a > 0, 1.0, 0.0)
    binds = False
    n_frac = 0
    if budget is not None:
        b = check_nonneg_scalar("budget", budget)
        order = np.argsort(-pr, kind="stable")
        order = order[a[order] > 0]
        cost = c[order, a[order]]
        spent = np.cumsum(cost)
        over = np.flatnonzero(spent > b)
        first_out = int(over[0]) if over.size else order.size  # a strict ranking: no skipping
        share = np.zeros(n)
        share[order[:first_out]] = 1.0
        if first_out < order.size:
            binds = True
            before = spent[first_out - 1] if first_out > 0 else 0.0
            frac = float(np.clip((b - before) / cost[first_out], 0.0, 1.0))
            share[order[first_out]] = frac
            n_frac = int(0.0 < frac < 1.0)
    dist = np.zeros(v.shape)
    dist[rows, a] = share
    dist[rows, 0] += 1.0 - share
    return _record(dist, v, c, binds, n_frac, method)


@float64
def lifecycle_rule(key: jax.Array, segment: ArrayLike, tau_value: ArrayLike, tau_cost: ArrayLike, *,
                   offer_by_segment: Mapping[int, int], budget: float | None = None,
                   eligible: ArrayLike | None = None) -> Allocation:
    """Heuristic lifecycle rule: users in segment s get ``offer_by_segment[s]`` (missing segments:
    no offer; ineligible users: no offer), taken in random order under the budget."""
    v, _ = check_effects(tau_value, tau_cost)
    e = check_eligible(eligible, v.shape)
    seg = np.asarray(segment).astype(np.int64)
    if seg.shape != (v.shape[0],):
        fail("segment", f"expected shape ({v.shape[0]},), got {seg.shape}",
             "one lifecycle segment per user")
    for s, k in offer_by_segment.items():
        if not 0 <= int(k) < v.shape[1]:
            fail("offer_by_segment", f"offer {k} for segment {s} is not in [0, {v.shape[1] - 1}]",
                 "map each segment to an action index (0 = no offer)")
    a = np.zeros(v.shape[0], dtype=np.int64)
    for s, k in offer_by_segment.items():
        a[seg == int(s)] = int(k)
    a = np.where(e[np.arange(v.shape[0]), a], a, 0)
    priority = np.asarray(jax.random.uniform(key, (v.shape[0],)))
    return fill_budget(a, priority, tau_value, tau_cost, budget=budget, eligible=e,
                       method="lifecycle_rule")


@float64
def treat_all(tau_value: ArrayLike, tau_cost: ArrayLike, *, offer: int,
              eligible: ArrayLike | None = None) -> Allocation:
    """Every user eligible for ``offer`` gets it (no budget)."""
    v, _ = check_effects(tau_value, tau_cost)
    e = check_eligible(eligible, v.shape)
    if not 1 <= int(offer) < v.shape[1]:
        fail("offer", f"must be in [1, {v.shape[1] - 1}], got {offer}", "pick one of the offers")
    a = np.where(e[:, int(offer)], int(offer), 0)
    return fill_budget(a, np.zeros(v.shape[0]), tau_value, tau_cost, budget=None, eligible=e,
                       method="treat_all")


@float64
def random_allocation(key: jax.Array, tau_value: ArrayLike, tau_cost: ArrayLike, *, budget: float,
                      eligible: ArrayLike | None = None) -> Allocation:
    """A uniformly random eligible offer per user (users with none eligible: no offer), random
    order, under the budget."""
    v, _ = check_effects(tau_value, tau_cost)
    e = check_eligible(eligible, v.shape)
    k_act, k_ord = jax.random.split(key)
    offers = e[:, 1:]
    score = np.where(offers, np.asarray(jax.random.uniform(k_act, offers.shape)), -1.0)
    a = np.where(offers.any(axis=1), 1 + np.argmax(score, axis=1), 0)
    priority = np.asarray(jax.random.uniform(k_ord, (v.shape[0],)))
    return fill_budget(a, priority, tau_value, tau_cost, budget=budget, eligible=e,
                       method="random")


@float64
def propensity_targeting(purchase_score: ArrayLike, tau_value: ArrayLike, tau_cost: ArrayLike, *,
                         offer: int, budget: float,
                         eligible: ArrayLike | None = None) -> Allocation:
    """Rank users by predicted purchase propensity (highest first) and give them ``offer``."""
    v, _ = check_effects(tau_value, tau_cost)
    e = check_eligible(eligible, v.shape)
    if not 1 <= int(offer) < v.shape[1]:
        fail("offer", f"must be in [1, {v.shape[1] - 1}], got {offer}", "pick one of the offers")
    a = np.where(e[:, int(offer)], int(offer), 0)
    return fill_budget(a, purchase_score, tau_value, tau_cost, budget=budget, eligible=e,
                       method="propensity_targeting")


@float64
def value_only_uplift(tau_value_est: ArrayLike, tau_cost_est: ArrayLike, *, budget: float,
                      eligible: ArrayLike | None = None) -> Allocation:
    """The eligible offer with the largest estimated ``tau_v`` (none if all <= 0), users ranked by
    that ``tau_v``; cost enters only through the budget check."""
    v, _ = check_effects(tau_value_est, tau_cost_est)
    e = check_eligible(eligible, v.shape)
    masked = np.where(e, v, -np.inf)
    masked[:, 0] = 0.0
    a = np.argmax(masked, axis=1)
    return fill_budget(a, masked[np.arange(v.shape[0]), a], tau_value_est, tau_cost_est,
                       budget=budget, eligible=e, method="value_only_uplift")


@float64
def cost_aware_uplift(tau_value_est: ArrayLike, tau_cost_est: ArrayLike, *, budget: float,
                      eligible: ArrayLike | None = None, **allocate_kwargs) -> Allocation:
    """The frontier allocator on estimated effects (the approach this framework argues for)."""
    return allocate(tau_value_est, tau_cost_est, budget=budget, eligible=eligible,
                    **allocate_kwargs)


@float64
def oracle(tau_value_true: ArrayLike, tau_cost_true: ArrayLike, *, budget: float,
           eligible: ArrayLike | None = None, **allocate_kwargs) -> Allocation:
    """The frontier allocator on the true effects (upper bound)."""
    return allocate(tau_value_true, tau_cost_true, budget=budget, eligible=eligible,
                    **allocate_kwargs)
