"""Monitoring detectors (estimators/monitoring.py): SRM, PSI, normed Wasserstein, KS, feature
drift, overlap and alarm metrics.

Statistical checks use fixed seeds and tolerances from standard errors: a rate over ``S``
replications is compared with its target within ``3 sqrt(q (1 - q) / S)``, a mean within 3 of its
estimated standard errors (plus, for PSI, the leading finite-sample bias ``(B - 1)(1/n_r +
1/n_c)``, the null expectation of a binned chi-square-type divergence).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from estimators.monitoring import (
    PSI_EMPTY_FLOOR,
    alarm_metrics,
    feature_drift,
    ks_test,
    overlap_summary,
    population_stability_index,
    proportion_z_test,
    sample_ratio_mismatch,
    wasserstein_normed,
)

N_SRM = 20_000
S_SRM = 300


def _softmax_rows(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Heterogeneous propensity rows over 3 actions: softmax of ``scale * N(0, I)`` logits."""
    z = rng.normal(size=(n, 3)) * scale
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _draw(rng: np.random.Generator, p: np.ndarray, s: int) -> np.ndarray:
    """``s`` independent vectors of actions, ``A_si ~ Categorical(p_i)``: shape ``(s, n)``."""
    u = rng.random((s, p.shape[0]))
    return (u[..., None] > np.cumsum(p, axis=1)[None, :, :-1]).sum(axis=-1)


def _rate_bound(q: float, s: int) -> float:
    return q + 3.0 * np.sqrt(q * (1.0 - q) / s)


# --------------------------------------------------------------------------------------------
# sample ratio mismatch


def test_srm_pearson_matches_hand_computation_and_drops_impossible_columns():
    # column 2 has probability 0 in every row: dropped from the dof, not an alert
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.9, 0.1, 0.0], [0.4, 0.6, 0.0]])
    action = np.array([0, 0, 0, 1])
    res = sample_ratio_mismatch(action, p)
    np.testing.assert_array_equal(res.observed, [3.0, 1.0, 0.0])
    np.testing.assert_allclose(res.expected, [2.0, 2.0, 0.0])
    assert res.statistic == pytest.approx((3 - 2) ** 2 / 2 + (1 - 2) ** 2 / 2)
    assert res.dof == 1
    assert res.p_value == pytest.approx(stats.chi2.sf(1.0, 1))
    assert not res.alert and not res.impossible
    # exact variance of the action-0 count: sum p (1 - p) = .25 + .16 + .09 + .24 = 0.74
    assert res.z[0] == pytest.approx(1.0 / np.sqrt(0.74))
    assert np.isnan(res.z[2])
    # two categories: the Wald statistic is z_0^2 with one dof
    assert res.exact_dof == 1
    assert res.exact_statistic == pytest.approx(1.0 / 0.74)


def test_srm_identical_rows_exact_equals_pearson():
    """With one row for every unit the counts are multinomial: the exact-covariance Wald
    statistic equals Pearson's chi-square (a known identity), with the same dof."""
    rng = np.random.default_rng(0)
    p = np.tile([0.5, 0.3, 0.2], (5_000, 1))
    res = sample_ratio_mismatch(_draw(rng, p, 1)[0], p)
    assert res.exact_statistic == pytest.approx(res.statistic, rel=1e-8)
    assert res.exact_dof == res.dof == 2
    np.testing.assert_allclose(res.statistic, stats.chisquare(res.observed, res.expected)[0])


def test_srm_null_conservative_pearson_and_calibrated_exact():
    """Actions drawn from heterogeneous logged rows (n = 20,000, 300 replications).

    Pearson at alpha = 0.001: expected <= 0.3 alarms; P(Binomial(300, 0.001) >= 4) ~ 3e-4, so at
    most 3. Its mean matches the exact ``E[X^2] = dof + 1 - sum_a sum_i p_ia^2 / E_a`` (module
    docstring), which these rows put far below the dof: the chi-square reference is
    conservative, as documented. The exact-covariance Wald test is calibrated: mean ~ dof,
    ``P(p < 0.05) ~ 0.05``, per-action ``E[z^2] = 1``."""
    rng = np.random.default_rng(12)
    p = _softmax_rows(rng, N_SRM, scale=2.0)
    res = [sample_ratio_mismatch(a, p) for a in _draw(rng, p, S_SRM)]
    pv = np.array([r.p_value for r in res])
    stat = np.array([r.statistic for r in res])
    exact_p = np.array([r.exact_p_value for r in res])
    exact = np.array([r.exact_statistic for r in res])
    z = np.array([r.z for r in res])
    assert {r.dof for r in res} == {r.exact_dof for r in res} == {2}
    assert sum(r.alert for r in res) <= 3
    assert (exact_p < 0.001).sum() <= 3
    # conservative: no more small p-values than uniform allows
    for q in (0.05, 0.5):
        assert (pv < q).mean() <= _rate_bound(q, S_SRM)
    expected_x2 = 3.0 - ((p**2).sum(axis=0) / p.sum(axis=0)).sum()
    se = stat.std(ddof=1) / np.sqrt(S_SRM)
    assert abs(stat.mean() - expected_x2) <= 3 * se
    assert expected_x2 + 3 * se < 2.0  # the Pearson statistic is deflated below its dof
    # exact test: roughly uniform p-values
    se = exact.std(ddof=1) / np.sqrt(S_SRM)
    assert abs(exact.mean() - 2.0) <= 3 * se
    q = 0.05
    assert abs((exact_p < q).mean() - q) <= 3 * np.sqrt(q * (1 - q) / S_SRM)
    assert abs(exact_p.mean() - 0.5) <= 3 * np.sqrt(1 / 12 / S_SRM)
    np.testing.assert_allclose((z**2).mean(axis=0), 1.0, atol=3 * np.sqrt(2 / S_SRM))


def test_srm_fires_on_mislogged_propensities():
    """Action 1 is assigned with probability 0.22 but logged as 0.20 (heterogeneous other
    columns): the expected count is off by 400 of ~4,000 (~7 standard deviations), so both
    tests fire in >= 95% of 300 replications (measured: all)."""
    rng = np.random.default_rng(7)
    p0 = rng.uniform(0.3, 0.5, N_SRM)
    logged = np.stack([p0, np.full(N_SRM, 0.20), 0.8 - p0], axis=1)
    true = logged + np.array([-0.02, 0.02, 0.0])
    actions = _draw(rng, true, S_SRM)
    pearson = np.mean([sample_ratio_mismatch(a, logged).alert for a in actions])
    exact = np.mean([sample_ratio_mismatch(a, logged, method="exact").alert for a in actions])
    assert pearson >= 0.95 and exact >= 0.95


def test_srm_impossible_event_alerts():
    p = np.array([[0.5, 0.5, 0.0], [0.3, 0.3, 0.4], [0.5, 0.5, 0.0]])
    res = sample_ratio_mismatch(np.array([2, 0, 1]), p)  # unit 0 took action 2 (prob 0)
    assert res.impossible and res.alert
    assert res.p_value == 0.0 and res.exact_p_value == 0.0
    assert res.statistic == np.inf
    # even at a tiny alpha, and for an action whose column total is positive
    assert sample_ratio_mismatch(np.array([2, 0, 1]), p, alpha=1e-12).alert


def test_srm_groups_tests_arm_counts():
    """``groups`` aggregates actions into arms: holdout (action 0) against any offer."""
    rng = np.random.default_rng(3)
    p = _softmax_rows(rng, 2_000, scale=1.0)
    action = _draw(rng, p, 1)[0]
    res = sample_ratio_mismatch(action, p, groups=np.array([0, 1, 1]))
    np.testing.assert_array_equal(res.observed, [np.sum(action == 0), np.sum(action > 0)])
    np.testing.assert_allclose(res.expected, [p[:, 0].sum(), p[:, 1:].sum()])
    arm_p = np.stack([p[:, 0], p[:, 1:].sum(axis=1)], axis=1)
    direct = sample_ratio_mismatch((action > 0).astype(np.int64), arm_p)
    assert res.statistic == pytest.approx(direct.statistic)
    assert res.exact_statistic == pytest.approx(direct.exact_statistic)
    assert res.dof == 1


# --------------------------------------------------------------------------------------------
# PSI, Wasserstein, KS


def test_psi_matches_hand_computation():
    ref = np.arange(10.0)
    # quartile edges 2.25, 4.5, 6.75: reference shares .3 .2 .2 .3 (bins closed on the right)
    cur = np.array([0.0, 0.0, 3.0, 5.0, 5.0, 5.0, 8.0, 20.0])
    r = np.array([0.3, 0.2, 0.2, 0.3])
    c = np.array([2, 1, 3, 2]) / 8
    assert population_stability_index(ref, cur, n_bins=4) == pytest.approx(
        np.sum((c - r) * np.log(c / r)))
    # empty current bins are floored at 1e-4 (not renormalised)
    c = np.array([1.0, PSI_EMPTY_FLOOR, PSI_EMPTY_FLOOR, PSI_EMPTY_FLOOR])
    assert population_stability_index(ref, np.zeros(5), n_bins=4) == pytest.approx(
        np.sum((c - r) * np.log(c / r)))
    # a value above the whole reference lands in the top bin
    assert population_stability_index(ref, np.array([100.0]), n_bins=4) == pytest.approx(
        np.sum((np.array([1e-4, 1e-4, 1e-4, 1.0]) - r) * np.log(np.array([1e-4] * 3 + [1]) / r)))


def test_psi_discrete_feature_unique_edges():
    """A 0/1 feature: tied quantiles collapse to unique edges; PSI is the two-share value
    (empty bins are floored on both sides and contribute 0)."""
    ref = np.array([0.0] * 7 + [1.0] * 3)
    cur = np.array([0.0] * 6 + [1.0] * 4)
    expected = (0.4 - 0.3) * np.log(0.4 / 0.3) + (0.6 - 0.7) * np.log(0.6 / 0.7)
    assert population_stability_index(ref, cur) == pytest.approx(expected)
    assert population_stability_index(ref, ref) == 0.0


def test_psi_identical_and_null_samples():
    rng = np.random.default_rng(1)
    x = rng.normal(size=5_000)
    assert population_stability_index(x, x) == 0.0
    # independent samples of one distribution: E[PSI] ~ (B - 1)(1/n_r + 1/n_c)
    n, reps = 20_000, 30
    v = np.array([population_stability_index(rng.normal(size=n), rng.normal(size=n))
                  for _ in range(reps)])
    assert abs(v.mean() - 9 * 2 / n) <= 3 * v.std(ddof=1) / np.sqrt(reps)


def test_psi_normal_shift_matches_binned_analytic_value():
    """N(0,1) against N(0.5,1), deciles of the reference: the exact binned PSI is
    ``sum_b (c_b - 0.1) ln(c_b / 0.1)`` with ``c_b`` from the normal CDF at the true deciles
    (0.2377). 30 replications at n = 100,000: mean within 3 standard errors plus the leading
    bias (B - 1)(1/n_r + 1/n_c)."""
    z = np.concatenate([[-np.inf], stats.norm.ppf(np.arange(1, 10) / 10), [np.inf]])
    c = np.diff(stats.norm.cdf(z - 0.5))
    analytic = float(np.sum((c - 0.1) * np.log(c / 0.1)))
    assert analytic == pytest.approx(0.2377, abs=1e-4)
    rng = np.random.default_rng(3)
    n, reps = 100_000, 30
    v = np.array([population_stability_index(rng.normal(size=n), rng.normal(0.5, 1.0, size=n))
                  for _ in range(reps)])
    assert abs(v.mean() - analytic) <= 3 * v.std(ddof=1) / np.sqrt(reps) + 9 * 2 / n


def test_wasserstein_normed_shift():
    rng = np.random.default_rng(4)
    n = 100_000
    ref, cur = rng.normal(size=n), rng.normal(0.2, 1.0, size=n)
    w = wasserstein_normed(ref, cur)
    assert w == pytest.approx(stats.wasserstein_distance(ref, cur) / ref.std(), rel=1e-12)
    # a pure shift: W1 ~ |mean difference|, standard error sqrt(1/n + 1/n)
    assert abs(w - 0.2) <= 3 * np.sqrt(2 / n)
    # scale-free: rescaling both samples leaves it unchanged
    assert wasserstein_normed(10 * ref, 10 * cur) == pytest.approx(w)
    # constant reference: 0 if nothing moved, inf otherwise
    assert wasserstein_normed(np.ones(10), np.ones(4)) == 0.0
    assert wasserstein_normed(np.ones(10), np.array([1.0, 1.1])) == np.inf


def test_ks_test_matches_scipy():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=500), rng.normal(0.5, 1.0, size=300)
    assert ks_test(ref, cur) == stats.ks_2samp(ref, cur).pvalue
    assert ks_test(ref, cur) < 0.05
    assert ks_test(ref, ref) == pytest.approx(1.0)


def test_proportion_z_test_hand_computation():
    ref = np.array([1.0] * 30 + [0.0] * 70)
    cur = np.array([1.0] * 45 + [0.0] * 55)
    q = 75 / 200
    z = 0.15 / np.sqrt(q * (1 - q) * (1 / 100 + 1 / 100))
    assert proportion_z_test(ref, cur) == pytest.approx(2 * stats.norm.sf(z))
    assert proportion_z_test(np.zeros(5), np.zeros(3)) == 1.0


# --------------------------------------------------------------------------------------------
# feature drift


def _table(rng, n, shift=0.0, share=0.3):
    """Columns: three N(0,1) (the first shifted by ``shift``), and one Bernoulli(share)."""
    x = rng.normal(size=(n, 3))
    x[:, 0] += shift
    return np.column_stack([x, (rng.random(n) < share).astype(float)])


def test_feature_drift_ks_regime_flags_shifted_columns_only():
    """n_ref = 400 (<= 1000): "ks" for numerical columns, "z" for the binary one. Over 100
    replications a 0.5-sd shift and a 0.30 -> 0.45 share are flagged in >= 95% (power ~ 1), the
    unshifted numerical columns at most at ks_alpha + 3 SE."""
    rng = np.random.default_rng(6)
    reps = 100
    flags = np.array([feature_drift(_table(rng, 400), _table(rng, 400, 0.5, 0.45)).drifted
                      for _ in range(reps)])
    res = feature_drift(_table(rng, 400), _table(rng, 300), names=["a", "b", "c", "flag"])
    assert res.method == ("ks", "ks", "ks", "z")
    assert res.names == ("a", "b", "c", "flag")
    assert flags[:, 0].mean() >= 0.95 and flags[:, 3].mean() >= 0.95
    assert flags[:, 1:3].mean() <= _rate_bound(0.05, 2 * reps)
    np.testing.assert_array_equal(res.drift_score[:3], res.ks_p_value[:3])
    assert res.drift_score[3] == res.z_p_value[3]
    assert np.isnan(res.z_p_value[:3]).all()
    # the stable binary column: z-test rejection rate at most alpha + 3 SE
    stable = np.array([feature_drift(_table(rng, 400), _table(rng, 400)).drifted[3]
                       for _ in range(reps)])
    assert stable.mean() <= _rate_bound(0.05, reps)


def test_feature_drift_wasserstein_regime():
    """n_ref = 5,000 (> 1000): "wasserstein". Unshifted columns have normed W1 ~ |mean
    difference| with sd sqrt(2/5000) = 0.02, so the 0.1 threshold is 5 sd away; the 0.5 shift
    gives ~0.5 (and PSI ~ 0.24 >= 0.1)."""
    rng = np.random.default_rng(8)
    res = feature_drift(_table(rng, 5_000), _table(rng, 5_000, shift=0.5))
    assert res.method == ("wasserstein", "wasserstein", "wasserstein", "z")
    assert res.names == ("x0", "x1", "x2", "x3")
    np.testing.assert_array_equal(res.drifted, [True, False, False, False])
    np.testing.assert_array_equal(res.psi_drifted, [True, False, False, False])
    assert res.share_drifted == 0.25
    np.testing.assert_array_equal(res.drift_score[:3], res.wasserstein_normed[:3])
    assert abs(res.wasserstein_normed[0] - 0.5) <= 0.05  # 0.5 / sd(ref) within sampling error


def test_feature_drift_method_switch_at_1000_rows():
    rng = np.random.default_rng(9)
    assert feature_drift(rng.normal(size=(1000, 1)), rng.normal(size=(50, 1))).method == ("ks",)
    assert feature_drift(rng.normal(size=(1001, 1)),
                         rng.normal(size=(50, 1))).method == ("wasserstein",)
    # a column binary in the reference but with a new value in the current is numerical
    ref = np.array([[0.0], [1.0]] * 50)
    assert feature_drift(ref, np.array([[0.0], [2.0]])).method == ("ks",)


# --------------------------------------------------------------------------------------------
# alarm metrics and overlap


ALERTS = np.array([
    [0, 1, 0, 0, 1, 1],  # 1 false alarm; detected at 4
    [0, 0, 0, 1, 0, 0],  # detected at 3
    [1, 1, 0, 0, 0, 0],  # 2 false alarms; never detected
    [0, 0, 0, 0, 0, 1],  # detected at 5
], dtype=bool)


def test_alarm_metrics_shared_onset():
    m = alarm_metrics(ALERTS, onset=3)
    assert m.false_alarm_rate == 3 / 12
    assert m.detection_rate == 3 / 4
    assert m.mean_delay == 1.0
    np.testing.assert_array_equal(m.delays, [1.0, 0.0, np.nan, 2.0])


def test_alarm_metrics_no_drift_and_per_run_onsets():
    for none in (None, -1):
        m = alarm_metrics(ALERTS, onset=none)
        assert m.false_alarm_rate == 7 / 24
        assert np.isnan(m.detection_rate) and np.isnan(m.mean_delay)
        assert np.isnan(m.delays).all()
    # run 1 has no drift; run 2 drifts from period 0 (no pre-onset cells); run 3 from 5
    m = alarm_metrics(ALERTS.astype(int), onset=np.array([3, -1, 0, 5]))
    assert m.false_alarm_rate == 2 / 14
    assert m.detection_rate == 1.0
    assert m.mean_delay == pytest.approx(1 / 3)
    np.testing.assert_array_equal(m.delays, [1.0, np.nan, 0.0, 0.0])
    assert np.isnan(alarm_metrics(ALERTS, onset=0).false_alarm_rate)


def test_overlap_summary_hand_computation():
    pi = np.array([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8], [1.0, 0.0, 0.0]])
    pi0 = np.array([[0.5, 0.25, 0.25], [0.5, 0.5, 0.0], [0.4, 0.3, 0.3]])
    s = overlap_summary(pi, pi0)
    first = 1.0 + 0.2 + 1.0
    second = (0.25 / 0.5 + 0.25 / 0.25) + 0.04 / 0.5 + 1.0 / 0.4
    assert s.ess == pytest.approx(first**2 / second)
    assert s.unsupported_mass == pytest.approx(0.8 / 3)
    assert s.min_propensity == 0.0  # policy mass on (row 1, action 2), where pi0 = 0
    assert s.max_weight == pytest.approx(2.5)
    # the logger against itself: ESS = n, weights 1, nothing unsupported
    s = overlap_summary(pi0, pi0)
    assert s.ess == pytest.approx(3.0)
    assert s.max_weight == pytest.approx(1.0)
    assert s.unsupported_mass == 0.0 and s.min_propensity == 0.25


# --------------------------------------------------------------------------------------------
# bad input


P3 = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
BAD_P = np.array([[0.5, 0.3, 0.3], [0.2, 0.3, 0.5]])
NAN_P = np.array([[0.5, np.nan, 0.2], [0.2, 0.3, 0.5]])
X = np.arange(20.0)


@pytest.mark.parametrize("call, field", [
    (lambda: sample_ratio_mismatch(np.array([0, 1, 2]), P3), "action"),
    (lambda: sample_ratio_mismatch(np.array([0.0, 1.0]), P3), "action"),
    (lambda: sample_ratio_mismatch(np.array([0, 3]), P3), "action"),
    (lambda: sample_ratio_mismatch(np.array([0, 1]), BAD_P), "action_dist"),
    (lambda: sample_ratio_mismatch(np.array([0, 1]), NAN_P), "action_dist"),
    (lambda: sample_ratio_mismatch(np.array([], dtype=int), np.zeros((0, 3))), "action"),
    (lambda: sample_ratio_mismatch(np.array([0, 1]), P3, alpha=0.0), "alpha"),
    (lambda: sample_ratio_mismatch(np.array([0, 1]), P3, groups=[0, 1]), "groups"),
    (lambda: sample_ratio_mismatch(np.array([0, 1]), P3, method="gtest"), "method"),
    (lambda: population_stability_index(X, X, n_bins=1), "n_bins"),
    (lambda: population_stability_index(np.array([]), X), "reference"),
    (lambda: population_stability_index(X, np.array([1.0, np.nan])), "current"),
    (lambda: population_stability_index(X[:, None], X), "reference"),
    (lambda: wasserstein_normed(X, np.array([])), "current"),
    (lambda: ks_test(np.array([np.inf]), X), "reference"),
    (lambda: proportion_z_test(X, X), "reference"),
    (lambda: feature_drift(np.ones((5, 2)), np.ones((5, 3))), "current"),
    (lambda: feature_drift(np.ones((5, 2)), np.ones((5, 2)), names=["a"]), "names"),
    (lambda: feature_drift(np.ones((0, 2)), np.ones((5, 2))), "reference"),
    (lambda: feature_drift(np.ones((5, 2)), np.full((5, 2), np.nan)), "current"),
    (lambda: feature_drift(np.ones((5, 2)), np.ones((5, 2)), n_bins=0), "n_bins"),
    (lambda: feature_drift(np.ones((5, 2)), np.ones((5, 2)), ks_alpha=1.5), "ks_alpha"),
    (lambda: alarm_metrics(ALERTS, onset=6), "onset"),
    (lambda: alarm_metrics(ALERTS, onset=np.array([1, 2])), "onset"),
    (lambda: alarm_metrics(ALERTS * 2, onset=1), "alerts"),
    (lambda: alarm_metrics(np.zeros((0, 4), bool), onset=1), "alerts"),
    (lambda: overlap_summary(P3, P3[:1]), "logging_dist"),
    (lambda: overlap_summary(BAD_P, P3), "action_dist_policy"),
    (lambda: overlap_summary(P3, NAN_P), "logging_dist"),
])
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=rf"^{field}[ :].*Fix: ") as err:
        call()
    assert str(err.value).endswith(".")
