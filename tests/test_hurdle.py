"""The two-part (hurdle) learner against a known occurrence x lognormal-amount model."""

from __future__ import annotations

import numpy as np
import pytest

from estimators.base import Logistic, Ridge
from estimators.hurdle import HurdleLearner

N, D, SIGMA = 6000, 3, 0.8
W = np.array([[0.8, -0.5, 0.3], [0.2, 0.6, -0.4]])  # occurrence slopes per arm
B = np.array([-1.0, -0.3])
V = np.array([[0.3, 0.2, 0.0], [0.5, -0.2, 0.1]])  # log-amount slopes per arm
C = np.array([1.0, 1.4])


def _truth(x: np.ndarray) -> np.ndarray:
    p = 1 / (1 + np.exp(-(B + x @ W.T)))
    m = np.exp(C + x @ V.T + SIGMA ** 2 / 2)  # E[lognormal] = exp(mean + sigma^2 / 2)
    return p * m


def _log(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    a = rng.integers(0, 2, size=N)
    p = 1 / (1 + np.exp(-(B[a] + np.sum(x * W[a], axis=1))))
    amount = np.exp(C[a] + np.sum(x * V[a], axis=1) + SIGMA * rng.normal(size=N))
    y = np.where(rng.random(N) < p, amount, 0.0)
    return x, a, y


def test_recovers_mu_of_a_correctly_specified_two_part_model():
    """Both parts are correctly specified, so the error is estimation noise: per arm ~3000 rows,
    ~1000 positives; the amount's log-scale s.e. is about sigma / sqrt(1000) = 0.025 and the
    occurrence's about 0.02 on the logit scale, so the relative error of mu is a few per cent.
    A 10 % bound on the RMS relative error holds with a wide margin and still fails if either
    part (or the smearing factor exp(sigma^2/2) = 1.38) were wrong."""
    x, a, y = _log(0)
    model = HurdleLearner(prob_base=Logistic(alpha=1e-3), amount_base=Ridge(alpha=1e-3))
    model.fit(x, a, y, n_actions=2)
    x_new = np.random.default_rng(9).normal(size=(2000, D))
    mu = np.asarray(model.predict_mu(x_new))
    rel = np.sqrt(np.mean((mu / _truth(x_new) - 1) ** 2))
    assert rel < 0.10
    # the smearing factor estimates E[exp(eps)] = exp(sigma^2 / 2)
    assert np.allclose(np.asarray(model.smearing_), np.exp(SIGMA ** 2 / 2), rtol=0.06)
    tau = np.asarray(model.predict_tau(x_new))
    assert np.all(tau[:, 0] == 0)


def test_beats_a_squared_loss_fit_of_the_heavy_tailed_label():
    from estimators.uplift import TLearner

    x, a, y = _log(1)
    x_new = np.random.default_rng(8).normal(size=(2000, D))
    tau_true = _truth(x_new)[:, 1] - _truth(x_new)[:, 0]
    hurdle = HurdleLearner(prob_base=Logistic(alpha=1e-3), amount_base=Ridge(alpha=1e-3))
    t_hurdle = np.asarray(hurdle.fit(x, a, y, n_actions=2).predict_tau(x_new))[:, 1]
    t_ridge = np.asarray(TLearner(base=Ridge(1.0)).fit(x, a, y, n_actions=2)
                         .predict_tau(x_new))[:, 1]
    err_h = np.sqrt(np.mean((t_hurdle - tau_true) ** 2))
    err_r = np.sqrt(np.mean((t_ridge - tau_true) ** 2))
    assert err_h < 0.5 * err_r  # the linear fit of exp-linear x logistic means is misspecified


def test_constant_amount_and_an_arm_without_positives():
    """A redemption cost: zero without an offer, the face value when redeemed."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 2))
    a = rng.integers(0, 3, size=3000)
    face = np.array([0.0, 2.0, 5.0])
    p = 1 / (1 + np.exp(-(x[:, 0] - 0.5)))
    y = np.where((rng.random(3000) < p) & (a > 0), face[a], 0.0)
    model = HurdleLearner(prob_base=Logistic(alpha=1e-3), amount="constant")
    mu = np.asarray(model.fit(x, a, y, n_actions=3).predict_mu(x))
    assert np.all(mu[:, 0] == 0.0)  # no positive label: occurrence MLE 0
    assert np.allclose(np.asarray(model.amount_params_), [2.0, 5.0])  # exact face values
    # mean of mu per arm vs the arm's sample mean of y: within 3 s.e. of a Bernoulli x face
    for arm in (1, 2):
        sel = a == arm
        se = y[sel].std(ddof=1) / np.sqrt(sel.sum())
        assert abs(mu[sel, arm].mean() - y[sel].mean()) < 3 * se


def test_bad_inputs_are_clear_errors():
    x, a, y = _log(3)
    with pytest.raises(ValueError, match="amount"):
        HurdleLearner(amount="gamma")
    with pytest.raises(ValueError, match="reward"):
        HurdleLearner().fit(x, a, y - 1.0, n_actions=2)
    with pytest.raises(ValueError, match="reward"):
        HurdleLearner().fit(x, a, np.zeros_like(y), n_actions=2)


def _targeted_log(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two-part model under a targeted log: ``P(A = 1 | x) = sigmoid(1.5 x_0)``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    e1 = 1 / (1 + np.exp(-1.5 * x[:, 0]))
    a = (rng.random(N) < e1).astype(int)
    p = 1 / (1 + np.exp(-(B[a] + np.sum(x * W[a], axis=1))))
    amount = np.exp(C[a] + np.sum(x * V[a], axis=1) + SIGMA * rng.normal(size=N))
    y = np.where(rng.random(N) < p, amount, 0.0)
    return x, a, y, np.stack([1 - e1, e1], axis=1)


def test_propensity_weights_equal_per_arm_weighted_fits():
    """``weight_by_propensity``: each arm's occurrence and amount fits are the base fitted on
    that arm's rows with weights ``1 / e_a(x)`` normalised to mean 1 over the arm's rows, and
    the smearing factor is the same weighted mean (NumPy reference, one fit per arm)."""
    x, a, y, e = _targeted_log(5)
    model = HurdleLearner(prob_base=Logistic(alpha=1.0), amount_base=Ridge(alpha=1.0),
                          weight_by_propensity=True).fit(x, a, y, action_prob=e, n_actions=2)
    x_new = np.random.default_rng(6).normal(size=(500, D))
    p, m = (np.asarray(v) for v in model.predict_parts(x_new))
    for arm in (0, 1):
        rows = a == arm
        w = 1 / e[rows, arm]
        w = w / w.mean()
        pos = y[rows] > 0
        logit, ridge = Logistic(alpha=1.0), Ridge(alpha=1.0)
        p_ref = logit.predict(logit.fit(x[rows], pos.astype(float), sample_weight=w), x_new)
        ly = np.log(y[rows][pos])
        params = ridge.fit(x[rows][pos], ly, sample_weight=w[pos])
        resid = np.exp(ly - np.asarray(ridge.predict(params, x[rows][pos])))
        smear = np.sum(w[pos] * resid) / np.sum(w[pos])
        m_ref = np.exp(np.asarray(ridge.predict(params, x_new))) * smear
        np.testing.assert_allclose(p[:, arm], np.clip(p_ref, 0, 1), rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(m[:, arm], m_ref, rtol=1e-7)
    unweighted = HurdleLearner(prob_base=Logistic(alpha=1.0), amount_base=Ridge(alpha=1.0))
    p0, _ = unweighted.fit(x, a, y, action_prob=e, n_actions=2).predict_parts(x_new)
    assert np.max(np.abs(np.asarray(p0) - p)) > 1e-3  # the weights change the fit
    with pytest.raises(ValueError, match="action_prob"):
        HurdleLearner(weight_by_propensity=True).fit(x, a, y, n_actions=2)


def test_head_config_maps_the_propensity_weights():
    from estimators.heads import HeadConfig, make_learner

    learner = make_learner(HeadConfig(learner="hurdle", hurdle_weight_by_propensity=True))
    assert isinstance(learner, HurdleLearner) and learner.weight_by_propensity
    assert not make_learner(HeadConfig(learner="hurdle")).weight_by_propensity
    with pytest.raises(ValueError, match="HeadConfig.hurdle_weight_by_propensity"):
        HeadConfig(hurdle_weight_by_propensity=1)
