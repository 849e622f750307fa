"""The IHDP suite: the literature's protocol (90/10 split seeded by the replication), metrics
recomputed independently, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.suites.ihdp import IHDPSuiteConfig, run, split
from simulators.ihdp import load_ihdp


def test_split_is_the_seeded_90_10_partition():
    train, test = split(3, 747, 0.1)
    assert len(train) == 672 and len(test) == 75
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.union1d(train, test), np.arange(747))
    again = split(3, 747, 0.1)
    assert np.array_equal(again[1], test)
    assert not np.array_equal(split(4, 747, 0.1)[1], test)  # seeded by the replication


def _ridge_t_learner_tau(x: np.ndarray, t: np.ndarray, y: np.ndarray, x_new: np.ndarray,
                         alpha: float) -> np.ndarray:
    """Independent NumPy T-learner: per-arm ridge with unpenalised intercept (centred solve)."""
    mus = []
    for arm in (0, 1):
        xa, ya = x[t == arm], y[t == arm]
        xm, ym = xa.mean(0), ya.mean()
        xc = xa - xm
        beta = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (ya - ym))
        mus.append(x_new @ beta + ym - xm @ beta)
    return mus[1] - mus[0]


def test_suite_sqrt_pehe_matches_an_independent_computation():
    rows = run(IHDPSuiteConfig(learners=("t_ridge",)), seed=0, progress=False)
    d = load_ihdp(1)
    train, test = split(1, 747, 0.1)
    tau_hat = _ridge_t_learner_tau(d.x[train], d.treatment[train], d.y_factual[train],
                                   d.x[test], 1.0)
    expected = np.sqrt(np.mean((tau_hat - d.tau[test]) ** 2))
    got = rows[(rows.split == "out") & (rows.metric == "sqrt_pehe")].value.item()
    assert got == pytest.approx(expected, rel=1e-8)
    ate = rows[(rows.split == "out") & (rows.metric == "ate_abs_error")].value.item()
    assert ate == pytest.approx(abs(tau_hat.mean() - d.tau[test].mean()), rel=1e-8)
    assert set(rows.replication) == {1}


@pytest.mark.parametrize("seed", [-1, 10, True])
def test_seed_outside_the_replications_is_a_clear_error(seed):
    with pytest.raises(ValueError, match="seed"):
        run(IHDPSuiteConfig(learners=("t_ridge",)), seed=seed, progress=False)


@pytest.mark.parametrize("kwargs, field", [({"learners": ("nope",)}, "learners"),
                                           ({"test_fraction": 0.6}, "test_fraction"),
                                           ({"propensity_clip": 0.0}, "propensity_clip")])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        IHDPSuiteConfig(**kwargs)
