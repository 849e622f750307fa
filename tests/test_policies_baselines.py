"""Baselines on the world's truth: each meets the budget under the costs it was given, the oracle
dominates every baseline on the true value, and the rules do what they say."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from policies import baselines
from policies.allocation import allocate
from simulators import policy_truth


@pytest.fixture(scope="module")
def eval_log(uniform_log):
    return uniform_log


def _all(log, budget):
    tv, tc, e = log.truth.tau_value, log.truth.tau_cost, log.eligible
    score = np.asarray(log.x[:, 0])
    k1, k2 = jax.random.split(jax.random.key(0))
    return {
        "oracle": baselines.oracle(tv, tc, budget=budget, eligible=e),
        "cost_aware": baselines.cost_aware_uplift(tv, tc, budget=budget, eligible=e),
        "value_only": baselines.value_only_uplift(tv, tc, budget=budget, eligible=e),
        "propensity": baselines.propensity_targeting(score, tv, tc, offer=1, budget=budget,
                                                     eligible=e),
        "lifecycle": baselines.lifecycle_rule(k1, log.segment, tv, tc,
                                              offer_by_segment={2: 2, 0: 1}, budget=budget,
                                              eligible=e),
        "random": baselines.random_allocation(k2, tv, tc, budget=budget, eligible=e),
    }


@pytest.mark.parametrize("budget_per_user", [0.05, 0.5])
def test_budget_met_and_oracle_dominates(eval_log, budget_per_user):
    budget = budget_per_user * eval_log.n
    allocs = _all(eval_log, budget)
    tc = eval_log.truth.tau_cost
    values = {}
    for name, a in allocs.items():
        p = a.action_dist
        assert np.allclose(p.sum(axis=1), 1.0) and (p >= 0).all()
        assert (p[~eval_log.eligible] == 0).all(), name
        assert float(np.sum(p * tc)) <= budget * (1 + 1e-12) + 1e-9, name
        values[name] = policy_truth(eval_log.truth, p).incremental_value
    # the oracle is the LP optimum on these users and costs: no feasible policy beats it
    for name, v in values.items():
        assert v <= values["oracle"] + 1e-9, name
    # rankings that ignore incremental cost (or incrementality) leave value on the table
    assert values["value_only"] < values["oracle"] - 1e-6
    assert values["propensity"] < values["oracle"] - 1e-6
    assert values["random"] < values["oracle"] - 1e-6


def test_rules_do_what_they_say(eval_log):
    tv, tc, e = eval_log.truth.tau_value, eval_log.truth.tau_cost, eval_log.eligible
    seg = eval_log.segment
    ta = baselines.treat_all(tv, tc, offer=2, eligible=e)
    assert (ta.action == np.where(e[:, 2], 2, 0)).all()
    lc = baselines.lifecycle_rule(jax.random.key(1), seg, tv, tc, offer_by_segment={2: 3},
                                  eligible=e)
    assert (lc.action[(seg == 2) & e[:, 3]] == 3).all() and (lc.action[seg != 2] == 0).all()
    vo = baselines.value_only_uplift(tv, tc, budget=1e12, eligible=e)
    best = np.where(e, tv, -np.inf)
    best[:, 0] = 0.0
    assert (vo.action == np.argmax(best, axis=1)).all()
    # a strict ranking: with a binding budget, every user ranked above a taken user is taken
    score = np.asarray(eval_log.x[:, 0])
    pt = baselines.propensity_targeting(score, tv, tc, offer=1, budget=0.05 * eval_log.n,
                                        eligible=e)
    taken = (pt.action_dist[:, 1] > 0) & e[:, 1]
    cand = e[:, 1]
    assert score[taken].min() >= score[cand & ~taken].max()
    assert pt.n_fractional <= 1


def test_bad_baseline_inputs(eval_log):
    tv, tc, e = eval_log.truth.tau_value, eval_log.truth.tau_cost, eval_log.eligible
    with pytest.raises(ValueError, match="offer"):
        baselines.treat_all(tv, tc, offer=0, eligible=e)
    with pytest.raises(ValueError, match="offer_by_segment"):
        baselines.lifecycle_rule(jax.random.key(0), eval_log.segment, tv, tc,
                                 offer_by_segment={1: 99}, eligible=e)
    with pytest.raises(ValueError, match="priority"):
        baselines.fill_budget(np.zeros(eval_log.n, int), np.full(eval_log.n, np.nan), tv, tc,
                              budget=1.0)
    with pytest.raises(ValueError, match="proposed_action"):
        baselines.fill_budget(np.ones(eval_log.n, int), np.zeros(eval_log.n), tv, tc,
                              budget=1.0, eligible=np.zeros_like(e) | np.eye(1, e.shape[1],
                                                                                dtype=bool))
    assert allocate(tv, tc, budget=0.0, eligible=e).expected_cost == 0.0
