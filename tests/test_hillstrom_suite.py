"""The real-data suite ties its off-policy estimates to the experiment's published arm means
(on the Hillstrom file vendored with the package, so this never skips)."""

from __future__ import annotations

import pytest

from estimators.heads import ONE_NET_HEADS
from experiments.suites.hillstrom import HillstromSuiteConfig, plot, run


@pytest.fixture(autouse=True)
def _vendored_data(monkeypatch):
    """The vendored file, whatever ``$ALLOCBENCH_HILLSTROM`` says on this machine."""
    monkeypatch.delenv("ALLOCBENCH_HILLSTROM", raising=False)


PUBLISHED = {"no_email": 0.6528, "all_mens": 1.4226, "all_womens": 1.0772}


def test_snips_of_each_arm_policy_is_the_published_arm_mean_and_budget_holds(tmp_path):
    df = run(HillstromSuiteConfig(learner=ONE_NET_HEADS), seed=0, progress=False)  # one net
    spend = df[(df["metric"] == "spend_per_customer")].set_index(["policy", "estimator"])["value"]
    for policy, mean in PUBLISHED.items():
        assert round(spend[(policy, "snips")], 4) == mean
        # IPS and DR estimate the same arm mean; they differ from it only by sampling noise
        lo = df[(df.policy == policy) & (df.metric == "spend_per_customer")
                & (df.estimator == "ips")]
        assert float(lo["ci_low"].iloc[0]) < mean < float(lo["ci_high"].iloc[0])
    share = df[(df.metric == "emailed_share") & (df.policy == "uplift_budgeted")]["value"]
    assert float(share.iloc[0]) == pytest.approx(0.5, abs=1e-9)
    assert plot(df, tmp_path)[0].exists()
