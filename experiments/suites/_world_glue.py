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
