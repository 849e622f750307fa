"""The peeking suite (experiments/suites/peeking.py): its compact preset for one seed keeps the
row contract, the confidence sequence's false-positive rate over all looks stays within alpha
(+3 Monte Carlo SE) while the daily-peeking z test's does not, and the outputs are written."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from experiments import suites as registry
from experiments.suites import peeking


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return peeking.SUITE.rows(peeking.PeekingSuiteConfig.compact(), seeds=[0], progress=False)


def _value(df: pd.DataFrame, **where) -> float:
    sel = np.ones(len(df), bool)
    for k, v in where.items():
        sel &= (df[k] == v).to_numpy()
    assert sel.sum() == 1, where
    return float(df.loc[sel, "value"].iloc[0])


def test_rows_follow_the_contract(rows):
    cfg = peeking.PeekingSuiteConfig.compact()
    assert registry.load("peeking") is peeking.SUITE
    assert {"metric", "value", "seed", *peeking.SUITE.key_columns, "stderr"} <= set(rows)
    assert not rows.duplicated(["seed", *peeking.SUITE.key_columns, "metric"]).any()
    assert set(rows["seed"]) == {0} and np.isfinite(rows["value"]).all()
    fpr = rows[rows["metric"] == "false_positive_rate"]
    assert set(fpr["method"]) == set(peeking.METHODS)
    assert sorted(set(fpr["look"])) == list(range(1, cfg.n_looks + 1))
    # cumulative over looks: never decreasing
    for _, g in fpr.groupby("method"):
        assert np.all(np.diff(g.sort_values("look")["value"].to_numpy()) >= 0)


def test_confidence_sequence_keeps_alpha_and_naive_peeking_does_not(rows):
    cfg = peeking.PeekingSuiteConfig.compact()
    last, a, r = cfg.n_looks, cfg.alpha, cfg.n_null_seeds
    bound = a + 3 * math.sqrt(a * (1 - a) / r)
    fpr = {m: _value(rows, scenario="null", method=m, look=last, metric="false_positive_rate")
           for m in peeking.METHODS}
    assert fpr["confidence_sequence"] <= bound
    assert fpr["confidence_sequence_cuped"] <= bound
    assert fpr["group_sequential"] <= bound
    assert fpr["naive_z"] > 2 * a
    assert fpr["naive_z"] > fpr["confidence_sequence"]
    # under the alternative: no wrong signs from the valid methods, the effect is positive
    assert _value(rows, scenario="alternative", method="truth", look=last,
                  metric="true_effect") > 0
    for m in ("confidence_sequence", "group_sequential"):
        assert _value(rows, scenario="alternative", method=m, look=last,
                      metric="wrong_sign_rate") <= 3 * math.sqrt(0.01 * 0.99 / r)
    ratio = _value(rows, scenario="null", method="cuped", look=last, metric="variance_ratio")
    corr = _value(rows, scenario="null", method="cuped", look=last, metric="corr_phi_psi")
    assert 0 < ratio < 1 and ratio == pytest.approx(1 - corr**2, abs=0.02)


def test_outputs_and_summary(rows, tmp_path):
    paths = peeking.SUITE.outputs(rows, tmp_path)
    assert {p.name for p in paths} == {"peeking.csv", "peeking.png"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    table = peeking.SUITE.headline(rows)
    assert list(table["method"]) == [*peeking.METHODS, "cuped"]
    assert table.set_index("method").loc["naive_z", "fpr_all_looks"] > \
        table.set_index("method").loc["confidence_sequence", "fpr_all_looks"]


def test_config_checks_and_compact_preset():
    compact = peeking.PeekingSuiteConfig.compact()
    assert compact.n_users < peeking.PeekingSuiteConfig().n_users
    assert compact.looks[-1] == compact.n_users and len(compact.looks) == compact.n_looks
    for bad, field in (({"alpha": 1.5}, "alpha"), ({"n_looks": 0}, "n_looks"),
                       ({"effect_offer": 99}, "effect_offer"),
                       ({"n_users": 10, "n_looks": 6}, "n_looks")):
        with pytest.raises(ValueError, match=f"PeekingSuiteConfig.{field}"):
            dataclasses.replace(compact, **bad)
