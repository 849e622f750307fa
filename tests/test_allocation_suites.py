"""The allocation and pacing suites honour the suite contract (tidy rows, figures) on tiny configs,
and their headline facts hold: the oracle has zero regret and the highest true value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments.suites import allocation, pacing


@pytest.fixture(scope="module")
def allocation_rows():
    cfg = dataclasses.replace(allocation.AllocationSuiteConfig.compact(), n_train=3000,
                              n_eval=1500, budget_levels=(0.1, 0.8))
    return allocation.run(cfg, seed=0, progress=False)


def test_allocation_suite_contract_and_oracle(allocation_rows, tmp_path):
    df = allocation_rows
    assert {"metric", "value", "policy", "n", "seed", "budget_per_user"} <= set(df.columns)
    assert set(df.policy) == set(allocation.POLICIES)
    regret = df[df.metric == "regret"]
    assert np.allclose(regret[regret.policy == "oracle"].value, 0.0)
    assert (regret.value >= -1e-9).all(), "a feasible policy beat the LP optimum"
    oracle_cost = df[(df.metric == "incremental_cost") & (df.policy == "oracle")]
    assert np.allclose(oracle_cost.value, oracle_cost.budget_per_user)  # budget binds exactly
    paths = allocation.write_results(df, tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    with pytest.raises(ValueError, match="budget_levels"):
        allocation.AllocationSuiteConfig(budget_levels=())


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
