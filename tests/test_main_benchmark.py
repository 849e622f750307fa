"""The main job end to end: its IPS/DR confidence intervals cover the oracle's exact value and
cost of the policy it learned, on the default seed; the learned policy is judged by the oracle."""

from __future__ import annotations

import pytest

from estimators.heads import ONE_NET_HEADS
from experiments.configs import LoggingConfig, OPEConfig
from experiments.main_benchmark import MainSuiteConfig, plot, run, summary_table


@pytest.fixture(scope="module")
def main_rows():
    return run(MainSuiteConfig.compact(), seed=0, progress=False)


def test_ips_and_dr_cover_the_oracle_truth_on_the_default_seed(main_rows):
    table = summary_table(main_rows).set_index(["policy", "metric"])
    for metric in ("policy_value", "policy_cost", "incremental_value", "incremental_cost"):
        row = table.loc[("cost_aware_uplift", metric)]
        assert row["ips_covers"], (metric, row.to_dict())
        assert row["dr_covers"], (metric, row.to_dict())
    # (not asserted for the oracle policy: on this seed its IPS policy_value interval misses, as
    # 1 in 20 intervals should; coverage itself is tested over 500 seeds in
    # tests/test_ope_statistical.py, this is the end-to-end smoke check of one seed)


def test_learned_policy_is_between_no_offer_and_oracle(main_rows):
    truth = main_rows[main_rows["estimator"] == "truth"].set_index(["policy", "metric"])["value"]
    learned = truth[("cost_aware_uplift", "policy_value")]
    assert truth[("no_offer", "policy_value")] < learned <= truth[("oracle", "policy_value")]
    # the oracle spends at most the budget in expectation (exact LP solution on the true uplift)
    budget = MainSuiteConfig.compact().policy.budget_per_user
    assert truth[("oracle", "policy_cost")] <= budget + 1e-9


def test_plot_and_bad_config(main_rows, tmp_path):
    paths = plot(main_rows, tmp_path)
    assert all(p.stat().st_size > 10_000 for p in paths)
    with pytest.raises(ValueError, match="logging"):
        MainSuiteConfig(logging=LoggingConfig(kind="confounded"))
    with pytest.raises(ValueError, match="n_train"):
        MainSuiteConfig(n_train=5)


def test_seed_batch_equals_seed_by_seed():
    """One job of 3 seeds (logs simulated in one vmapped call) gives the rows of 3 single runs."""
    import pandas as pd

    from experiments.main_benchmark import run_batch

    cfg = MainSuiteConfig(n_train=2_000, n_eval=2_000, ope=OPEConfig(estimators=("ips", "snips",
                                                                                "dr")),
                          learner=ONE_NET_HEADS)  # one net: the batching, not the ensemble
    batch = run_batch(cfg, seeds=[3, 4, 5], progress=False)
    single = pd.concat([run(cfg, seed=s, progress=False) for s in (3, 4, 5)], ignore_index=True)
    assert list(batch["seed"].unique()) == [3, 4, 5]
    pd.testing.assert_frame_equal(batch, single, check_exact=False, rtol=1e-9, atol=1e-12)
    assert set(batch["estimator"]) == {"ips", "snips", "dr", "truth"}
