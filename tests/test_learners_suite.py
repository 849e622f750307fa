"""The learners suite honours the suite contract and reports the baselines beside the learners."""

from __future__ import annotations

import dataclasses

import pytest

from experiments.suites.learners import LearnersSuiteConfig, plot, run, write_results


def test_learners_suite_tiny_run_table_and_figures(tmp_path):
    cfg = LearnersSuiteConfig(worlds=(("uniform_k2", "uniform", 2),),
                              learners=("zero", "ate", "t", "dr"), noiseless=("t",),
                              ns=(2_000,), n_eval=2_000, budgets=(0.05, 1.0))
    df = run(cfg, seed=0, progress=False)
    assert {"metric", "value", "learner", "n", "seed", "head", "world"} <= set(df.columns)
    assert set(df.learner) == {"zero", "ate", "t", "dr", "t@noiseless"}
    assert set(df.metric) == {"pehe", "qini_ratio", "calibration_error", "fit_seconds",
                              "regret", "cost_ratio"}
    assert set(df["head"]) == {"value", "cost", "policy@0.05", "policy@1"}
    policy = df[df["head"].str.startswith("policy")].pivot_table(
        index=["learner", "head"], columns="metric", values="value")
    # the oracle solves the same LP on the true effects: no policy within the budget beats it
    # (LP optimality, up to the allocator's 1e-9 relative tolerance); an overspending one may
    within = policy[policy.cost_ratio <= 1.0]
    assert len(within) > 0 and (within.regret > -1e-6).all()
    value_pehe = df[(df.metric == "pehe") & (df["head"] == "value")].set_index("learner")["value"]
    # the value label is sparse and heavy-tailed: without its noise the same ridge T-learner is
    # left with its misfit (most of its PEHE here: 2.40 against 2.98 with noise)
    assert value_pehe["t@noiseless"] < value_pehe["t"]
    pehe = df[(df.metric == "pehe") & (df["head"] == "cost")].set_index("learner")["value"]
    # Incremental cost is dense: the heterogeneous learners beat both baselines by a wide margin.
    assert pehe["t"] < pehe["ate"] < pehe["zero"]
    assert pehe["dr"] < pehe["ate"]
    paths = write_results(df, tmp_path)
    assert all(p.exists() for p in paths)
    table = (tmp_path / "learners.md").read_text()
    assert "| zero |" in table and "| ate |" in table
    assert "policy: true regret" in table and "| t@noiseless |" in table
    assert len(plot(df, tmp_path / "figs")) == 3


def test_learners_suite_config_validation():
    with pytest.raises(ValueError, match="unknown"):
        LearnersSuiteConfig(learners=("t", "magic"))
    with pytest.raises(ValueError, match="every n >= 500"):
        dataclasses.replace(LearnersSuiteConfig.compact(), ns=(100,))
    with pytest.raises(ValueError, match="budgets"):
        dataclasses.replace(LearnersSuiteConfig.compact(), budgets=(0.0,))
    with pytest.raises(ValueError, match="noiseless"):
        dataclasses.replace(LearnersSuiteConfig.compact(), noiseless=("zero",))
