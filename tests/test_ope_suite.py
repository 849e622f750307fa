"""The OPE suite honours the suite contract (tidy rows, figures, config checks) on a tiny run."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.configs import OPEConfig
from experiments.suites.ope import OPESuiteConfig, plot, run, write_results


@pytest.fixture(scope="module")
def tiny_df():
    cfg = OPESuiteConfig(ope=OPEConfig(estimators=("ips", "dr", "switch_dr")), ns=(500,),
                         n_replicates=40, n_train=2_000, n_reference=5_000, chunk=40)
    return run(cfg, seed=0, progress=False)


def test_suite_rows_are_tidy_and_sane(tiny_df):
    df = tiny_df
    assert {"metric", "value", "estimator", "target", "logging", "n", "seed"} <= set(df.columns)
    assert set(df.target) == {"allocation", "softmax", "offer_1"}
    assert set(df.logging) == {"uniform", "warm_start", "epsilon_greedy"}
    assert np.isfinite(df.value).all()
    cov = df[df.metric == "coverage"].value
    assert ((cov >= 0) & (cov <= 1)).all()
    # the oracle does not depend on the estimator or the logging policy
    oracle = df[df.metric == "oracle"].groupby(["target", "outcome"]).value.nunique()
    assert (oracle == 1).all()
    # IPS under uniform logging is unbiased: |bias| < 4 of its own standard errors (40 seeds)
    u = df[(df.logging == "uniform") & (df.estimator == "ips")].pivot_table(
        index=["target", "outcome"], columns="metric", values="value")
    assert (u.bias.abs() < 4 * u.bias_se).all(), u


def test_suite_writes_table_and_figures(tiny_df, tmp_path):
    paths = write_results(tiny_df, tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert len(plot(tiny_df, tmp_path / "figs")) == 2
    assert "| value | allocation |" in (tmp_path / "ope.md").read_text()


def test_suite_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="estimators"):
        OPESuiteConfig(ope=OPEConfig(estimators=("ipw",)))
    with pytest.raises(ValueError, match="loggings"):
        OPESuiteConfig(loggings=("random",))


def test_overlap_diagnostics_are_reported_and_flag_cells(tiny_df, tmp_path):
    """ESS share, max weight and unsupported mass sit beside bias and coverage in every cell and
    in ope.md; uniform logging has full support and an ESS share near 1 for the one-offer target
    only when that offer is common; the flag rule (ESS share < 0.1 or unsupported mass) is
    applied cell by cell and summarised as a confusion count against under-coverage."""
    from experiments.suites.ope import ESS_FLAG_SHARE, overlap_flags

    df = tiny_df
    for metric in ("ess_share", "max_weight", "unsupported_mass"):
        assert metric in set(df.metric)
    ips = df[(df.estimator == "ips")].pivot_table(index=["logging", "target", "outcome"],
                                                  columns="metric", values="value")
    assert (ips.ess_share > 0).all() and (ips.ess_share <= 1 + 1e-12).all()
    assert (ips.loc["uniform"].unsupported_mass < 1e-12).all()
    assert (ips.max_weight >= 1.0 - 1e-12).all()
    flags = overlap_flags(df)
    assert len(flags) == len(ips)
    assert (flags.flagged == ((flags.ess_share < ESS_FLAG_SHARE)
                              | (flags.unsupported_mass > 1e-12))).all()
    write_results(df, tmp_path)
    text = (tmp_path / "ope.md").read_text()
    assert "ess_share" in text and "Overlap flags (IPS, every n)" in text
