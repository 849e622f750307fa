"""The allocation and pacing suites honour the suite contract (tidy rows, figures) on tiny configs,
and their headline facts hold: the oracle has zero regret and the highest true value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from estimators.heads import ONE_NET_HEADS
from experiments.suites import allocation, pacing


@pytest.fixture(scope="module")
def allocation_rows():
    cfg = dataclasses.replace(allocation.AllocationSuiteConfig.compact(), n_train=3000,
                              n_eval=1500, budget_levels=(0.1, 1.6),
                              learner=ONE_NET_HEADS)  # one net: the allocator, not the ensemble
    return allocation.run(cfg, seed=0, progress=False)


def test_allocation_suite_contract_and_oracle(allocation_rows, tmp_path):
    df = allocation_rows
    assert {"metric", "value", "policy", "constraint", "n", "seed", "budget_per_user"} <= set(
        df.columns)
    free = df[df.constraint == "none"]
    assert set(free.policy) == set(allocation.POLICIES)
    regret = free[free.metric == "regret"]
    assert np.allclose(regret[regret.policy == "oracle"].value, 0.0)
    over = free[free.metric == "cost_over_budget"].set_index(["policy", "budget_per_user"]).value
    within = regret.set_index(["policy", "budget_per_user"]).value[over <= 1e-9]
    assert (within >= -1e-9).all(), "a policy within the budget beat the LP optimum"
    oracle_cost = free[(free.metric == "incremental_cost") & (free.policy == "oracle")]
    assert np.allclose(oracle_cost.value, oracle_cost.budget_per_user)  # budget binds exactly
    # treat_all ignores the budget: the same spend at every level
    treat = free[(free.policy == "treat_all") & (free.metric == "incremental_cost")].value
    assert treat.nunique() == 1
    paths = allocation.write_results(df, tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert "allocation_constraints.png" in {p.name for p in paths}
    assert "## Constraints on top of the budget" in (tmp_path / "allocation.md").read_text()
    with pytest.raises(ValueError, match="budget_levels"):
        allocation.AllocationSuiteConfig(budget_levels=())
    with pytest.raises(ValueError, match="constraints"):
        allocation.AllocationSuiteConfig(constraints=("roi",))
    with pytest.raises(ValueError, match="capacity_share"):
        allocation.AllocationSuiteConfig(capacity_share=0.0)


def test_each_constraint_costs_the_oracle_value_and_prices_it(allocation_rows):
    """On truth a constraint can only lower the oracle's value; where it binds the value drops,
    the ROI floor holds and its multiplier is positive, and the capacity multipliers price the
    capped offers."""
    df = allocation_rows[allocation_rows.policy == "oracle"]
    wide = df.pivot_table(index=["constraint", "budget_per_user"], columns="metric",
                          values="value")
    cfg = allocation.AllocationSuiteConfig()
    assert (wide.regret >= -1e-7).all()
    free_roi = wide.loc[("none", 1.6), "roi"]
    assert free_roi < cfg.min_roi  # so the floor binds at 1.6 per user
    floor = wide.loc[("roi_floor", 1.6)]
    assert floor.roi == pytest.approx(cfg.min_roi, rel=1e-6) and floor.regret > 0.01
    assert floor.roi_multiplier > 0 and floor.incremental_cost < 1.6
    assert wide.loc[("capacity", 1.6), "capacity_multiplier"] > 0
    assert wide.loc[("capacity", 1.6), "regret"] > 0
    assert wide.loc[("none", 0.1), "budget_multiplier"] > wide.loc[("none", 1.6),
                                                                    "budget_multiplier"] > 0


@pytest.mark.slow  # the pacing mechanism itself is tested by default in test_policies_pacing
def test_pacing_suite_contract(tmp_path):
    cfg = dataclasses.replace(pacing.PacingSuiteConfig.compact(), n_periods=4,
                              n_per_period=800)
    df = pacing.run(cfg, seed=0, progress=False)
    assert {"metric", "value", "controller", "n", "seed", "period"} <= set(df.columns)
    assert set(df.controller) == set(pacing.CONTROLLERS)
    paths = pacing.write_results(df, tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    with pytest.raises(ValueError, match="controller"):
        pacing.simulate_pacing(cfg, "pid", seed=0)
