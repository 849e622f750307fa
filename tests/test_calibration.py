"""Calibration diagnostics, recalibration and ranking metrics against the world's truth."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from estimators.calibration import (
    IsotonicRecalibration,
    LinearRecalibration,
    _fit_inputs,
    incremental_calibration,
)
from estimators.metrics import (
    auuc,
    best_offer,
    ipw_gain,
    pehe,
    qini_curve,
    rank_monotonicity,
    split_stability,
    truth_gain,
    uplift_at_k,
    value_cost_curve,
)
from estimators.uplift import DRLearner, SLearner, TLearner, XLearner
from simulators import LoggingConfig, simulate_batch

N_SEEDS = 3
N = 20_000


@pytest.fixture(scope="module")
def logs(world_params, world_config):
    """Per seed: a training, a calibration and a holdout uniform log (one compile)."""
    batch = simulate_batch(jax.random.split(jax.random.key(50), 3 * N_SEEDS), world_params,
                           world_config, N, LoggingConfig(kind="uniform"))
    return [tuple(batch.seed(3 * s + j) for j in range(3)) for s in range(N_SEEDS)]


def test_mis_scaled_uplift_is_flagged_and_fixed_by_linear_recalibration(logs):
    offer = 4
    for _, cal, hold in logs:
        true_cal = np.asarray(cal.truth.tau_cost)[:, 1:]
        true_hold = np.asarray(hold.truth.tau_cost)
        good = incremental_calibration(true_hold[:, offer], hold.action, hold.cost,
                                       hold.action_prob, offer)
        bad = incremental_calibration(3.0 * true_hold[:, offer], hold.action, hold.cost,
                                      hold.action_prob, offer)
        recal = LinearRecalibration().fit(3.0 * true_cal, cal.action, cal.cost, cal.action_prob)
        fixed_tau = recal.transform(3.0 * true_hold[:, 1:])[:, offer - 1]
        fixed = incremental_calibration(fixed_tau, hold.action, hold.cost, hold.action_prob,
                                        offer)
        # The chi2 test has size alpha = 0.05 for a calibrated model (the truth itself, and the
        # recalibrated one up to the calibration split's estimation error); a 3x mis-scaled
        # model's bin gaps are ~2 tau / se >> 1, so its p-value is essentially 0.
        assert bad.miscalibrated and bad.p_value < 1e-6
        assert good.p_value > 1e-3  # a 5% test rejects 5% of correct models
        assert fixed.p_value > 1e-3
        assert fixed.error < 0.3 * bad.error
        # Slope estimated within 3 SE-ish of 1/3 (regression of an unbiased pseudo-outcome).
        assert abs(recal.coef_[offer - 1, 1] - 1 / 3) < 0.05
        # The true uplift ranks bins monotonically up to noise.
        assert good.monotonicity.spearman > 0.9


def test_isotonic_recalibration_repairs_a_fitted_mis_scaled_model(logs):
    train, cal, hold = logs[0]
    learner = TLearner().fit(train.x, train.action, train.cost, train.action_prob)
    offer = 4
    raw_cal = 3.0 * np.asarray(learner.predict_tau(cal.x))[:, 1:]
    raw_hold = 3.0 * np.asarray(learner.predict_tau(hold.x))[:, 1:]
    before = incremental_calibration(raw_hold[:, offer - 1], hold.action, hold.cost,
                                     hold.action_prob, offer)
    iso = IsotonicRecalibration().fit(raw_cal, cal.action, cal.cost, cal.action_prob)
    after = incremental_calibration(iso.transform(raw_hold)[:, offer - 1], hold.action,
                                    hold.cost, hold.action_prob, offer)
    assert before.miscalibrated
    assert after.p_value > 1e-3  # false-alarm rate 1e-3, not alpha = 0.05
    assert after.error < 0.2 * before.error
    # Recalibration also lowers the PEHE against the truth.
    true_tau = np.asarray(hold.truth.tau_cost)[:, offer]
    assert np.sqrt(np.mean((iso.transform(raw_hold)[:, offer - 1] - true_tau) ** 2)) < np.sqrt(
        np.mean((raw_hold[:, offer - 1] - true_tau) ** 2))


def test_qini_of_true_tau_dominates_fitted_models(logs, world_config):
    auuc_true_ipw, auuc_fit_ipw = [], []
    for train, _, hold in logs:
        true_tau = np.asarray(hold.truth.tau_value)
        chosen_true, score_true = best_offer(true_tau, hold.eligible)
        g_true = truth_gain(true_tau, chosen_true)
        ipw_true = ipw_gain(chosen_true, hold.action, hold.value, hold.action_prob)
        auuc_true_ipw.append(auuc(score_true, ipw_true))
        for learner in (SLearner(interactions=True), TLearner(), XLearner(), DRLearner()):
            tau_hat = learner.fit(train.x, train.action, train.value, train.action_prob,
                                  world_config.n_actions).predict_tau(hold.x)
            chosen, score = best_offer(tau_hat, hold.eligible)
            # Exact (truth-gain) Qini: ranking by the true best uplift maximises every prefix
            # sum, so the whole curve dominates.
            _, curve_true = qini_curve(score_true, g_true)
            _, curve_fit = qini_curve(score, truth_gain(true_tau, chosen))
            assert np.all(curve_true >= curve_fit - 1e-9)
            auuc_fit_ipw.append(auuc(score, ipw_gain(chosen, hold.action, hold.value,
                                                      hold.action_prob)))
    # Estimated on the log (IPW gains, what a practitioner sees): the mean over seeds of the true
    # ranking's AUUC exceeds each fitted model's mean minus 2 SE of the paired difference.
    fit = np.asarray(auuc_fit_ipw).reshape(N_SEEDS, 4)
    diff = np.asarray(auuc_true_ipw)[:, None] - fit
    se = diff.std(axis=0, ddof=1) / np.sqrt(N_SEEDS)
    assert np.all(diff.mean(axis=0) > -2 * se), (diff, se)


def test_metric_definitions_on_small_examples():
    f, c = qini_curve(np.array([0.1, 0.9, 0.5]), np.array([1.0, 2.0, -1.0]))
    np.testing.assert_allclose(f, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(c, [0, 2 / 3, 1 / 3, 2 / 3])
    assert uplift_at_k(np.array([0.1, 0.9, 0.5]), np.array([1.0, 2.0, -1.0]), 1 / 3) == 2.0
    rm = rank_monotonicity(np.array([0.0, 2.0, 1.0, 3.0]))
    assert rm.inversions == 1 and rm.max_inversions == 6
    curve = value_cost_curve(np.array([1.0, 2.0, -1.0, 1.0]), np.array([1.0, 1.0, 1.0, 0.0]),
                             np.array([1.0, 2.0, -1.0, 1.0]), np.array([1.0, 1.0, 1.0, 0.0]))
    # Free value first (ratio inf), then ratio 2, then 1, negative value last.
    np.testing.assert_array_equal(curve.order, [3, 1, 0, 2])
    np.testing.assert_allclose(curve.cumulative_value, [0, 0.25, 0.75, 1.0, 0.75])
    rng = np.random.default_rng(0)
    signal = rng.normal(size=200)
    stab = split_stability(signal + 0.1 * rng.normal(size=(5, 200)))
    assert 0.05 < stab["noise_to_signal"] < 0.2 and stab["rank_corr"] > 0.95
    tau = np.array([[0.0, 1.0, 2.0], [0.0, -1.0, 0.5]])
    assert pehe(tau, tau) == 0.0
    chosen, score = best_offer(tau, np.array([[True, True, False], [True, False, False]]))
    np.testing.assert_array_equal(chosen, [1, 0])
    np.testing.assert_array_equal(score, [1.0, 0.0])


def test_calibration_bad_inputs(logs):
    _, _, hold = logs[0]
    tau = np.asarray(hold.truth.tau_cost)
    with pytest.raises(ValueError, match="tau_hat"):
        incremental_calibration(tau, hold.action, hold.cost, hold.action_prob, 1)
    with pytest.raises(ValueError, match="offer"):
        incremental_calibration(tau[:, 1], hold.action, hold.cost, hold.action_prob, 0)
    with pytest.raises(ValueError, match="n_bins"):
        incremental_calibration(tau[:, 1], hold.action, hold.cost, hold.action_prob, 1,
                                n_bins=1)
    no_control = np.array(hold.action_prob)
    no_control[:, 0] = 0.0
    with pytest.raises(ValueError, match="holdout"):
        incremental_calibration(tau[:, 1], hold.action, hold.cost, no_control, 1)
    with pytest.raises(ValueError, match="not fitted"):
        LinearRecalibration().transform(tau[:, 1:])
    with pytest.raises(ValueError, match="offer columns"):
        LinearRecalibration().fit(tau, hold.action, hold.cost, hold.action_prob)
    with pytest.raises(ValueError, match="NaN"):
        pehe(np.full((2, 3), np.nan), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="fraction"):
        uplift_at_k(np.zeros(3), np.zeros(3), 0.0)


def test_isotonic_recalibration_with_tied_predictions_returns_mean_pseudo_outcome():
    """A constant prediction is one tied point: the least-squares non-decreasing fit there is the
    mean pseudo-outcome over the offer's valid rows (exact up to float rounding)."""
    rng = np.random.default_rng(3)
    n = 300
    action = rng.integers(0, 3, size=n)
    prob = np.full((n, 3), 1.0 / 3.0)
    reward = rng.normal(size=n) + action
    tau_hat = np.full((n, 2), 0.7)
    iso = IsotonicRecalibration().fit(tau_hat, action, reward, prob)
    _, phi, valid = _fit_inputs(tau_hat, action, reward, prob, "test")
    expected = [phi[valid[:, a], a].mean() for a in range(2)]
    np.testing.assert_allclose(iso.transform(np.full((4, 2), 0.7)),
                               np.tile(expected, (4, 1)), rtol=1e-12, atol=1e-12)


def test_calibration_log_checks_reject_bad_actions_and_propensities():
    n = 30
    action = np.tile([0, 1, 2], n // 3)
    prob = np.full((n, 3), 1.0 / 3.0)
    reward = np.ones(n)
    tau = np.zeros((n, 2))
    with pytest.raises(ValueError, match="action must be integers"):
        LinearRecalibration().fit(tau, np.where(action == 2, -1, action), reward, prob)
    with pytest.raises(ValueError, match="action must be integers"):
        LinearRecalibration().fit(tau, action.astype(float), reward, prob)
    with pytest.raises(ValueError, match="rows summing to 1"):
        LinearRecalibration().fit(tau, action, reward, prob * 0.5)


_TAU = np.array([[0.0, 1.0, 2.0], [0.0, -1.0, 0.5], [0.0, 0.3, 0.1], [0.0, 0.2, -0.4]])
_PROB = np.full((4, 3), 1.0 / 3.0)
_ACTION = np.array([0, 1, 2, 0])
_REWARD = np.array([1.0, 0.0, 2.0, 1.0])


@pytest.mark.parametrize("call, field", [
    # a score of 3 rows ranked against a gain of 10 rows used to return a number
    (lambda: uplift_at_k(np.arange(3.0), np.arange(10.0), 0.5), "uplift_at_k.gain"),
    (lambda: uplift_at_k(np.zeros(0), np.zeros(0), 0.5), "uplift_at_k.score"),
    # chosen = -1 used to index the last offer
    (lambda: truth_gain(_TAU, np.array([-1, 0, 1, 2])), "truth_gain.chosen"),
    (lambda: truth_gain(_TAU, np.array([0, 1, 3, 2])), "truth_gain.chosen"),
    (lambda: truth_gain(_TAU, np.array([0, 1, 2])), "truth_gain.chosen"),
    (lambda: truth_gain(_TAU, np.array([0.0, 1.0, 2.0, 1.0])), "truth_gain.chosen"),
    (lambda: ipw_gain(np.array([-1, 1, 2, 1]), _ACTION, _REWARD, _PROB), "ipw_gain.chosen"),
    (lambda: ipw_gain(np.array([1, 1, 2, 1]), np.array([0, 1, -1, 0]), _REWARD, _PROB),
     "ipw_gain.action"),
    (lambda: ipw_gain(np.array([1, 1, 2]), _ACTION, _REWARD, _PROB), "ipw_gain.chosen"),
    (lambda: ipw_gain(np.array([1, 1, 2, 1]), _ACTION, _REWARD, _PROB[:3]),
     "ipw_gain.action_prob"),
    # a wrong-shape eligible used to raise IndexError (or broadcast silently)
    (lambda: pehe(_TAU, _TAU, np.ones((3, 3), bool)), "pehe.eligible"),
    (lambda: pehe(_TAU, _TAU, np.ones((4, 2), bool)), "pehe.eligible"),
    (lambda: pehe(_TAU, _TAU, np.full((4, 3), 0.5)), "pehe.eligible"),
    (lambda: best_offer(_TAU, np.ones((4, 1), bool)), "best_offer.eligible"),
])
def test_metrics_reject_bad_shapes_and_actions(call, field):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        call()


def test_metrics_accept_valid_actions_and_masks():
    np.testing.assert_array_equal(truth_gain(_TAU, np.array([0, 1, 2, 1])), [0.0, -1.0, 0.1, 0.2])
    g = ipw_gain(np.array([1, 1, 2, 1]), _ACTION, _REWARD, _PROB)
    np.testing.assert_allclose(g, [-3.0, 0.0, 6.0, -3.0])
    assert pehe(_TAU, np.zeros_like(_TAU), np.ones((4, 3), int)) == pehe(_TAU, np.zeros_like(_TAU))
