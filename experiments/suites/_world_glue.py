"""Shared glue for the world-effect suites (horizons, interference, drift): fit one uplift head
from its config on a log, allocate a budget on an evaluation population, score the policy by truth.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from estimators.heads import HeadConfig, make_learner
from policies.allocation import allocate
from simulators import LoggedData, policy_truth


class Scored(NamedTuple):
    incremental_value: float
    incremental_value_accounting: float
    incremental_cost: float


def fit_tau(head: HeadConfig, features: np.ndarray, log: LoggedData, label: np.ndarray,
            eval_features: np.ndarray) -> np.ndarray:
    """The head's learner (:func:`estimators.heads.make_learner`) fitted on ``label``; its
    predicted ``tau`` on ``eval_features``."""
    learner = make_learner(head)
    learner.fit(features, log.action, label, action_prob=log.action_prob, n_actions=log.n_actions)
    return np.asarray(learner.predict_tau(eval_features))


def allocate_and_score(tau_v: np.ndarray, tau_c: np.ndarray, evaluation: LoggedData,
                       budget_per_user: float) -> Scored:
    """Budgeted allocation on the estimates, scored by the exact truth on ``evaluation``'s users."""
    alloc = allocate(tau_v, tau_c, budget=budget_per_user * evaluation.n,
                     eligible=evaluation.eligible)
    t = policy_truth(evaluation.truth, np.asarray(alloc.action_dist),
                     eligible=evaluation.eligible)
    return Scored(t.incremental_value, t.incremental_value_accounting, t.incremental_cost)


class AtBudget(NamedTuple):
    """A policy allocated on its own estimates, scored by truth at the budget: ``as_allocated``
    (the allocation at the nominal budget) and ``at_budget`` (the largest nominal budget whose
    true incremental cost is within the budget), each a :class:`Scored`; ``nominal_budget``
    per user of the second; ``feasible``: whether the first already kept to the budget."""

    as_allocated: Scored
    at_budget: Scored
    nominal_budget: float
    feasible: bool
    action_dist: np.ndarray  # the at-budget policy


def score_at_true_budget(tau_v: np.ndarray, tau_c: np.ndarray, evaluation: LoggedData,
                         budget_per_user: float, *, tol: float = 1e-3,
                         max_iter: int = 40) -> AtBudget:
    """Compare policies at equal true spend. A policy whose estimates under-state cost spends
    more than the budget in truth, and more spend buys more value, so its regret at the nominal
    budget flatters it. Here it is re-allocated **on its own estimates** with the nominal budget
    lowered (bisection on ``b`` in ``[0, budget]``) until its true incremental cost is at most
    ``budget * (1 + tol)`` per user: the value it reaches at the budget. A policy that keeps to
    the budget is returned as allocated. Uses the world's truth only to measure spend, which a
    deployment would do by pacing on realised cost."""

    def scored(b: float) -> tuple[Scored, np.ndarray]:
        alloc = allocate(tau_v, tau_c, budget=b * evaluation.n, eligible=evaluation.eligible)
        dist = np.asarray(alloc.action_dist)
        t = policy_truth(evaluation.truth, dist, eligible=evaluation.eligible)
        return Scored(t.incremental_value, t.incremental_value_accounting,
                      t.incremental_cost), dist

    cap = budget_per_user * (1 + tol)
    first, dist = scored(budget_per_user)
    if first.incremental_cost <= cap:
        return AtBudget(first, first, budget_per_user, True, dist)
    lo, hi = 0.0, budget_per_user
    best, best_dist = scored(0.0)
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        s, d = scored(mid)
        if s.incremental_cost <= cap:
            lo, best, best_dist = mid, s, d
        else:
            hi = mid
        if hi - lo <= tol * budget_per_user:
            break
    return AtBudget(first, best, lo, False, best_dist)
