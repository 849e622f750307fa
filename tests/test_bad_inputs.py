"""Bad inputs found by trying the public API as a new user would (issue 15): each is a
``ValueError`` naming the argument at fault and the fix (or a warning where the input is legal
but suspicious), never a number, an inf or a message that blames another argument."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from estimators.ope import estimate, estimate_batch, paired_difference, paired_difference_batch
from estimators.uplift import DRLearner, RLearner
from experiments.plugins import instantiate, predict_effects
from policies.allocation import allocate
from simulators import WorldConfig
from simulators.data import LoggedData

N, K1 = 200, 3


@pytest.fixture(scope="module")
def log_arrays():
    rng = np.random.default_rng(0)
    action = rng.integers(0, K1, N)
    return dict(reward=rng.exponential(size=N), action=action, pscore=np.full(N, 1 / K1),
                action_dist=np.eye(K1)[action])


def test_cross_fitting_learners_reject_more_folds_than_rows(uniform_log):
    small = uniform_log.subset(np.arange(200))
    for learner in (DRLearner(n_folds=5000), RLearner(n_folds=300)):
        with pytest.raises(ValueError, match=r"^n_folds: .*n = 200"):
            learner.fit(small.x, small.action, small.value, action_prob=small.action_prob)


@pytest.mark.parametrize("budget", ["10", b"10", True])
def test_allocate_does_not_coerce_a_string_or_flag_budget(budget):
    tau = np.array([[0.0, 1.0], [0.0, 2.0]])
    with pytest.raises(ValueError, match=r"^budget: expected a number, got"):
        allocate(tau, tau, budget=budget)


def test_an_overflowing_importance_weight_is_an_error_naming_pscore(log_arrays):
    tiny = dict(log_arrays, pscore=np.r_[1e-300, log_arrays["pscore"][1:]])
    with pytest.raises(ValueError, match=r"^pscore \(row 0\): the estimate or its standard"):
        estimate("ips", **tiny)
    batch = {k: np.stack([log_arrays[k], tiny[k]]) for k in tiny}
    with pytest.raises(ValueError, match=r"^pscore \(seed 1, row 0\)"):
        estimate_batch("ips", **batch)


def test_a_tiny_but_finite_pscore_is_warned(log_arrays):
    small = dict(log_arrays, pscore=np.r_[1e-20, log_arrays["pscore"][1:]])
    with pytest.warns(RuntimeWarning, match="smallest logging probability is 1e-20"):
        estimate("ips", **small)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimate("ips", **log_arrays)  # ordinary propensities: no warning


def test_paired_difference_names_a_baseline_of_the_wrong_shape(log_arrays):
    baseline = np.full((N, K1 - 1), 1 / (K1 - 1))
    with pytest.raises(ValueError, match=r"^baseline_dist: expected shape \(200, 3\)"):
        paired_difference("ips", baseline_dist=baseline, **log_arrays)
    batch = {k: v[None] for k, v in log_arrays.items()}
    with pytest.raises(ValueError, match=r"^baseline_dist: expected shape \(1, 200, 3\)"):
        paired_difference_batch("ips", baseline_dist=baseline[None], **batch)


@pytest.mark.parametrize("value", [2.5, "4", True])
def test_world_config_sizes_must_be_integers(value):
    with pytest.raises(ValueError, match=r"^WorldConfig.n_offers: must be an integer"):
        WorldConfig(n_offers=value)


def test_logged_data_with_a_short_x_names_x(uniform_log):
    fields = {f.name: getattr(uniform_log, f.name) for f in dataclasses.fields(uniform_log)
              if f.init and f.name != "validate"}
    fields["x"] = fields["x"][:-1]
    with pytest.raises(ValueError, match=r"LoggedData.x: has \d+ rows but action and eligible"):
        LoggedData(**fields)


def test_a_plugin_returning_k_columns_is_told_the_protocol(uniform_log):
    class KColumns:
        def predict_tau(self, x):
            return np.ones((len(x), 4))

    with pytest.raises(ValueError, match=r"left out the no-offer column 0.*\(n, K\+1\)"):
        predict_effects(KColumns(), uniform_log.x[:10], 5, "value")


def test_a_function_plugin_needs_no_partial_flag(log_arrays):
    fn = instantiate({"_target_": "estimators.ope.ips"})
    assert np.isfinite(fn(**log_arrays).value)
    explicit = instantiate({"_target_": "estimators.ope.ips", "_partial_": True})
    assert fn(**log_arrays).value == explicit(**log_arrays).value
