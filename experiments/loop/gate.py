"""The OPE gate: is the retrained candidate better than the incumbent, judged on logged data?

On the gate split (rows of matured cohorts the heads never trained on, logged with the deployed
mixture's exact propensities), for label ``y`` in {value, cost}:

    Delta_y = mean_i [ phi_i(pi_cand) - phi_i(pi_inc) ],
    phi_i(pi) = sum_a pi(a|x_i) q(x_i, a) + pi(a_i|x_i) / pscore_i * (y_i - q(x_i, a_i)),

the paired DR difference (:func:`estimators.ope.paired_difference`), with ``q`` a cross-fitted
per-action ridge on the gate rows and the CI of the paired influence terms. It is unbiased when
the propensities are the true logging probabilities and the logger supports what both policies
do (unsupported mass is reported; without exploration it is what breaks the gate). Both
policies are allocated on the gate rows with the same per-user budget.

Rule (:class:`~experiments.loop.config.GateConfig`): pass iff ``ci_low(Delta_value) >
min_value_gain`` and the candidate keeps to the budget or spends no more than the incumbent:
the upper bound of its DR cost per user ``C(pi_cand)`` is ``<= (1 + cost_tolerance) *
budget_per_user``, or that of ``Delta_cost`` is ``<= cost_tolerance * budget_per_user``. The
cost label is the cost observed so far (redemptions still outstanding are missing: the maturity
rule keeps that small).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import numpy as np

from estimators.base import Ridge
from estimators.ope import Estimate, UnsupportedActionWarning, estimate, paired_difference
from estimators.ope_qhat import cross_fit_q_hat
from experiments.loop.config import ExplorationConfig, GateConfig
from experiments.loop.serving import Allocator, FittedPolicy, serve
from simulators import LoggedData, policy_truth

__all__ = ["GateResult", "HorizonCheck", "cross_fitted_q_hat", "horizon_check", "ope_gate"]

N_FOLDS = 5


class GateResult(NamedTuple):
    """The gate's estimates, its decision, and what the truth says about both."""

    value_diff: Estimate
    cost_diff: Estimate
    candidate_cost: Estimate
    passed: bool
    n_rows: int
    true_value_diff: float  # the OPE estimand: both policies as evaluated offline, these users
    true_cost_diff: float
    served_value_diff: float  # what deploying them would do (each policy's serving features)
    served_cost_diff: float
    served_candidate_cost: float
    value_covered: bool
    cost_covered: bool
    should_pass: bool  # the rule applied to the served truth
    unsupported_mass: float


def cross_fitted_q_hat(x: np.ndarray, action: np.ndarray, reward: np.ndarray, *,
                       n_actions: int, key: jax.Array) -> np.ndarray:
    """Out-of-fold per-action ridge predictions ``(n, K+1)``
    (:func:`estimators.ope_qhat.cross_fit_q_hat` with ``unsupported="zero"``: an action the
    logger never took predicts 0, so DR reduces to IPS there and the unsupported mass is
    reported)."""
    return np.asarray(cross_fit_q_hat(x, action, reward, n_actions=n_actions, key=key,
                                      base=Ridge(alpha=1.0), n_folds=N_FOLDS,
                                      unsupported="zero"))


def ope_gate(candidate: FittedPolicy, incumbent: FittedPolicy, rows: LoggedData, *,
             cost_label: np.ndarray, budget_per_user: float, exploration: ExplorationConfig,
             config: GateConfig, key: jax.Array, allocator: Allocator) -> GateResult:
    """Gate ``candidate`` against ``incumbent`` on ``rows`` (see the module docstring).
    ``cost_label`` is the cost observed so far (outstanding redemptions missing)."""
    budget = budget_per_user * rows.n
    # offline, both policies see the logs' features; served, each its own serving pipeline
    policies = (("cand", candidate.offline()), ("inc", incumbent.offline()),
                ("served", candidate), ("served_inc", incumbent))
    dist = {name: serve(p, rows.x, rows.eligible, budget=budget, exploration=exploration,
                        allocator=allocator)[0] for name, p in policies}
    k_value, k_cost = jax.random.split(key)
    est = {}
    for label, y, k in (("value", rows.value, k_value), ("cost", cost_label, k_cost)):
        q = cross_fitted_q_hat(rows.x, rows.action, y, n_actions=rows.n_actions, key=k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnsupportedActionWarning)
            est[label] = paired_difference(
                "dr", reward=y, action=rows.action, pscore=rows.pscore, action_dist=dist["cand"],
                baseline_dist=dist["inc"], q_hat=q, alpha=config.alpha)
            if label == "cost":
                est["candidate_cost"] = estimate(
                    "dr", reward=y, action=rows.action, pscore=rows.pscore,
                    action_dist=dist["cand"], q_hat=q, alpha=config.alpha)
    truth = {name: policy_truth(rows.truth, d, eligible=rows.eligible) for name, d in dist.items()}
    tv = truth["cand"].value - truth["inc"].value
    tc = truth["cand"].cost - truth["inc"].cost
    sv = truth["served"].value - truth["served_inc"].value
    sc = truth["served"].cost - truth["served_inc"].cost
    v, c, cc = est["value"], est["cost"], est["candidate_cost"]
    cap = (1.0 + config.cost_tolerance) * budget_per_user
    slack = config.cost_tolerance * budget_per_user
    passed = bool(v.ci_low > config.min_value_gain
                  and (cc.ci_high <= cap or c.ci_high <= slack))
    should = bool(sv > config.min_value_gain
                  and (truth["served"].incremental_cost <= cap or sc <= slack))
    support = rows.action_prob > 0
    unsupported = float(np.mean(np.sum(np.where(support, 0.0, dist["cand"]), axis=1)))
    return GateResult(v, c, cc, passed, rows.n, float(tv), float(tc), float(sv), float(sc),
                      float(truth["served"].incremental_cost),
                      bool(v.ci_low <= tv <= v.ci_high), bool(c.ci_low <= tc <= c.ci_high),
                      should, unsupported)


class HorizonCheck(NamedTuple):
    """A policy's accounting-horizon value per user: its DR estimate (with CI) on the gate rows
    and the truth on the same users."""

    estimate: Estimate
    truth: float
    covered: bool


def horizon_check(policy: FittedPolicy, rows: LoggedData, *, budget_per_user: float,
                  exploration: ExplorationConfig, alpha: float, key: jax.Array,
                  allocator: Allocator) -> HorizonCheck:
    """Reconcile the selected policy to the accounting horizon: ``V_acc(pi) = mean_i phi_i``
    (DR on the ``value_accounting`` label, cross-fitted ridge ``q``), against
    ``sum_a pi(a|x_i) mu_acc(x_i, a)`` averaged over the same users."""
    dist = serve(policy, rows.x, rows.eligible, budget=budget_per_user * rows.n,
                 exploration=exploration, allocator=allocator)[0]
    y = np.asarray(rows.value_accounting)
    q = cross_fitted_q_hat(rows.x, rows.action, y, n_actions=rows.n_actions, key=key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsupportedActionWarning)
        est = estimate("dr", reward=y, action=rows.action, pscore=rows.pscore, action_dist=dist,
                       q_hat=q, alpha=alpha)
    truth = policy_truth(rows.truth, dist, eligible=rows.eligible).value_accounting
    return HorizonCheck(est, float(truth), bool(est.ci_low <= truth <= est.ci_high))
