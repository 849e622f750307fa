"""The world-effect suites reproduce the design lessons they exist to show, scored by truth."""

from __future__ import annotations

import numpy as np

from estimators.heads import ONE_NET_HEADS
from experiments.suites import drift, horizons, interference


def _value(df, **where):
    m = np.ones(len(df), bool)
    for k, v in where.items():
        m &= (df[k] == v).to_numpy()
    assert m.sum() == 1, where
    return float(df.loc[m, "value"].iloc[0])


def test_horizons_learning_label_ranks_better_than_accounting_label(tmp_path):
    df = horizons.run(horizons.HorizonsSuiteConfig(n_train=(2_000,), n_eval=5_000), seed=0,
                      progress=False)
    pehe_learn = _value(df, label="learning", metric="pehe_vs_accounting_uplift")
    pehe_acc = _value(df, label="accounting", metric="pehe_vs_accounting_uplift")
    assert pehe_learn < pehe_acc
    assert horizons.plot(df, tmp_path)[0].exists()


def test_interference_competing_treatment_features_help_the_cost_head(tmp_path):
    # the cost head is the subject: the value head on one net (ONE_NET_HEADS), not five
    cfg = interference.InterferenceSuiteConfig(program_reach=(2.0,), n_train=8_000, n_eval=5_000,
                                               learner=ONE_NET_HEADS)
    df = interference.run(cfg, seed=0, progress=False)
    with_other = _value(df, features="x_and_other_programs", metric="pehe_cost")
    without = _value(df, features="x_only", metric="pehe_cost")
    assert with_other < without
    assert interference.plot(df, tmp_path)[0].exists()


def test_drift_stale_cost_head_loses_calibration(tmp_path):
    df = drift.run(drift.DriftSuiteConfig(periods=(8,), n_train=5_000, n_eval=5_000,
                                          learner=ONE_NET_HEADS), seed=0, progress=False)
    stale = _value(df, policy="stale_period0", metric="cost_head_calibration_gap")
    fresh = _value(df, policy="retrained", metric="cost_head_calibration_gap")
    assert abs(stale) > abs(fresh)
    assert _value(df, policy="monitor", metric="feature_mean_shift") > 0.5
    assert drift.plot(df, tmp_path)[0].exists()
