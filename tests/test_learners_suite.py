"""The learners suite honours the suite contract and reports the baselines beside the learners."""

from __future__ import annotations

import dataclasses

import pytest

from experiments.suites.learners import LearnersSuiteConfig, plot, run, write_results


def test_learners_suite_tiny_run_table_and_figures(tmp_path):
    cfg = LearnersSuiteConfig(worlds=(("uniform_k2", "uniform", 2),),
                              learners=("zero", "ate", "t", "dr"), ns=(2_000,), n_eval=2_000)
    df = run(cfg, seed=0, progress=False)
    assert {"metric", "value", "learner", "n", "seed", "head", "world"} <= set(df.columns)
    assert set(df.learner) == {"zero", "ate", "t", "dr"}
    assert set(df.metric) == {"pehe", "qini_ratio", "calibration_error", "fit_seconds"}
    pehe = df[(df.metric == "pehe") & (df["head"] == "cost")].set_index("learner")["value"]
    # Incremental cost is dense: the heterogeneous learners beat both baselines by a wide margin.
    assert pehe["t"] < pehe["ate"] < pehe["zero"]
    assert pehe["dr"] < pehe["ate"]
    paths = write_results(df, tmp_path)
    assert all(p.exists() for p in paths)
    table = (tmp_path / "learners.md").read_text()
    assert "| zero |" in table and "| ate |" in table
    assert len(plot(df, tmp_path / "figs")) == 2


def test_learners_suite_config_validation():
    with pytest.raises(ValueError, match="unknown"):
        LearnersSuiteConfig(learners=("t", "magic"))
    with pytest.raises(ValueError, match="every n >= 500"):
        dataclasses.replace(LearnersSuiteConfig.compact(), ns=(100,))
