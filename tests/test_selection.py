"""Head selection by the design notes' criteria (estimators/selection.py), spend recalibration of
the cost head's winner's curse (policies/spend.py) and the selection suite."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pandas as pd
import pytest

from estimators.ope import paired_difference
from estimators.selection import pick, pick_by_pehe, rank_sum, score_candidates
from experiments.suites import selection as suite
from policies.allocation import allocate
from policies.spend import calibrate_budget, holdout_incremental_cost
from simulators import LoggingConfig, policy_truth, simulate


def _log(n: int, k1: int, rng: np.random.Generator, tau: np.ndarray, base: np.ndarray,
         sd: float = 1.0):
    """A uniform randomised log over ``k1`` actions with reward ``base + tau[A] + noise``."""
    e = np.full((n, k1), 1.0 / k1)
    action = rng.integers(0, k1, size=n)
    y = base + tau[np.arange(n), action] + rng.normal(scale=sd, size=n)
    return action, y, e


def test_criteria_pick_the_calibrated_candidate_mse_the_better_fit():
    """A: the right uplift, a baseline that ignores ``b(x)`` (large factual MSE). B: the right
    baseline, uplift ``2 tau + 1`` (miscalibrated, smaller MSE). The criteria pick A, MSE picks
    B, the oracle PEHE picks A."""
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.normal(size=(n, 2))
    tau = np.stack([np.zeros(n), 1.0 + x[:, 0]], axis=1)
    base = 3.0 * x[:, 1]
    action, y, e = _log(n, 2, rng, tau, base)
    tau_b = np.stack([np.zeros(n), 2.0 * tau[:, 1] + 1.0], axis=1)
    mu_a, mu_b = tau.copy(), base[:, None] + tau_b
    split_a = tau[None] + rng.normal(scale=0.05, size=(2, n, 2))
    split_b = tau_b[None] + rng.normal(scale=0.5, size=(2, n, 2))
    scores = score_candidates(["A", "B"], [tau, tau_b], action=action, reward=y,
                              action_prob=e, split_tau=[split_a, split_b], mu_hat=[mu_a, mu_b])
    assert scores.calibration_error[0] < 0.2 < 1.0 < scores.calibration_error[1]
    assert scores.holdout_mse[1] < scores.holdout_mse[0]
    assert scores.rank_spearman[0] > 0.9 and scores.rank_spearman[1] > 0.9
    assert scores.split_rank_corr[0] > scores.split_rank_corr[1]
    assert pick(scores, "criteria").name == "A"
    assert pick(scores, "mse").name == "B"
    assert pick_by_pehe(["A", "B"], [tau, tau_b], tau).name == "A"


def _reference(tau: np.ndarray, action: np.ndarray, y: np.ndarray, e: np.ndarray,
               n_bins: int) -> tuple[float, float]:
    """NumPy reference of CE and RM (module docstring of estimators.selection)."""
    gap_sum, count, rho_sum, m_sum = 0.0, 0.0, 0.0, 0.0
    for a in range(1, e.shape[1]):
        rows = e[:, a] > 0
        t, act, yy, ee = tau[rows, a], action[rows], y[rows], e[rows]
        order = np.argsort(t, kind="stable")
        bins = np.empty(len(t), dtype=int)
        bins[order] = np.arange(len(t)) * n_bins // len(t)
        pred, obs = np.zeros(n_bins), np.zeros(n_bins)
        for b in range(n_bins):
            m = bins == b
            tr, co = m & (act == a), m & (act == 0)
            w1, w0 = 1 / ee[tr, a], 1 / ee[co, 0]
            obs[b] = np.sum(w1 * yy[tr]) / w1.sum() - np.sum(w0 * yy[co]) / w0.sum()
            pred[b] = t[m].mean()
            gap_sum += m.sum() * abs(pred[b] - obs[b])
            count += m.sum()
        r_obs = np.argsort(np.argsort(obs)).astype(float)  # distinct values: ranks
        rho = np.corrcoef(np.arange(n_bins), r_obs)[0, 1]
        rho_sum += rows.sum() * rho
        m_sum += rows.sum()
    return gap_sum / count, rho_sum / m_sum


def test_scores_match_a_numpy_reference():
    rng = np.random.default_rng(1)
    n, k1, n_bins = 6_000, 3, 4
    x = rng.normal(size=n)
    tau = np.stack([np.zeros(n), 1 + x, 0.5 - 0.5 * x], axis=1)
    e = np.full((n, k1), 1.0 / 3)
    ineligible = rng.random(n) < 0.3  # offer 2 not available on 30 % of rows
    e[ineligible] = [0.5, 0.5, 0.0]
    action = np.array([rng.choice(k1, p=p) for p in e])
    y = 2 * x + tau[np.arange(n), action] + rng.normal(size=n)
    cands = [tau + rng.normal(scale=s, size=tau.shape) * [0, 1, 1] for s in (0.1, 1.0)]
    mus = [c + 2 * x[:, None] for c in cands]
    splits = [np.stack([c, c + rng.normal(scale=0.3, size=c.shape)]) for c in cands]
    scores = score_candidates(["a", "b"], cands, action=action, reward=y, action_prob=e,
                              split_tau=splits, mu_hat=mus, n_bins=n_bins)
    for i, c in enumerate(cands):
        ce, rm = _reference(c, action, y, e, n_bins)
        assert scores.calibration_error[i] == pytest.approx(ce, rel=1e-10)
        assert scores.rank_spearman[i] == pytest.approx(rm, rel=1e-10)
        assert scores.holdout_mse[i] == pytest.approx(
            np.mean((y - mus[i][np.arange(n), action]) ** 2), rel=1e-12)
        corr, w = [], []
        for a in (1, 2):
            rows = e[:, a] > 0
            r = [np.argsort(np.argsort(s[rows, a])) for s in splits[i]]
            corr.append(np.corrcoef(r[0], r[1])[0, 1])
            w.append(rows.sum())
        assert scores.split_rank_corr[i] == pytest.approx(np.average(corr, weights=w),
                                                          rel=1e-10)
    # the rank sum: average ranks for ties, NaN last
    s = rank_sum([0.1, 0.2, 0.3], [1.0, 1.0, 0.0], [np.nan, 0.9, 0.8])
    assert np.allclose(s, [1 + 1.5 + 3, 2 + 1.5 + 1, 3 + 3 + 2])


@pytest.fixture(scope="module")
def spend_case(world_params, world_config):
    """Holdout and evaluation users of the default world; the value head is the truth, the cost
    head the truth times log-normal noise (per user and offer): the allocator selects the users
    whose cost is under-estimated."""
    uniform = LoggingConfig(kind="uniform")
    hold = simulate(jax.random.key(11), world_params, world_config, 40_000, uniform)
    ev = simulate(jax.random.key(12), world_params, world_config, 40_000, uniform)
    rng = np.random.default_rng(3)

    def noisy(d):
        tc = np.asarray(d.truth.tau_cost, dtype=np.float64)
        return np.asarray(d.truth.tau_value, dtype=np.float64), tc * np.exp(
            rng.normal(scale=0.6, size=tc.shape) - 0.18)

    return hold, ev, noisy(hold), noisy(ev)


def test_spend_recalibration_brings_true_cost_to_the_budget(spend_case):
    hold, ev, (tv_h, tc_h), (tv_e, tc_e) = spend_case
    budget = 0.1
    nominal = allocate(tv_e, tc_e, budget=budget * ev.n, eligible=ev.eligible)
    over = policy_truth(ev.truth, nominal.action_dist).incremental_cost / budget
    assert over > 1.3  # the winner's curse of the noisy cost head
    q = np.asarray(hold.truth.mu_cost) * 1.1  # any cost model not fitted on the holdout
    cal = calibrate_budget(tv_h, tc_h, budget_per_user=budget, action=hold.action,
                           cost=hold.cost, action_prob=hold.action_prob, q_hat=q)
    assert cal.converged and not cal.capped
    assert cal.internal_budget_per_user < budget
    assert cal.estimated_cost_per_user == pytest.approx(budget, rel=2e-3)
    tol = 3 * cal.stderr
    on_hold = allocate(tv_h, tc_h, budget=cal.internal_budget_per_user * hold.n,
                       eligible=hold.action_prob > 0)
    assert abs(policy_truth(hold.truth, on_hold.action_dist).incremental_cost - budget) < tol
    deployed = allocate(tv_e, tc_e, budget=cal.internal_budget_per_user * ev.n,
                        eligible=ev.eligible)
    assert abs(policy_truth(ev.truth, deployed.action_dist).incremental_cost - budget) < tol
    # the upper bound spends less, by about z * se
    ucb = calibrate_budget(tv_h, tc_h, budget_per_user=budget, action=hold.action,
                           cost=hold.cost, action_prob=hold.action_prob, q_hat=q,
                           confidence=0.9)
    assert ucb.internal_budget_per_user < cal.internal_budget_per_user
    assert ucb.estimated_cost_per_user + 1.2816 * ucb.stderr == pytest.approx(budget, rel=2e-3)
    # the DR estimate is estimators.ope's paired DR difference against no-offer
    base = np.zeros_like(on_hold.action_dist)
    base[:, 0] = 1.0
    pscore = hold.action_prob[np.arange(hold.n), hold.action]
    ref = paired_difference("dr", reward=hold.cost, action=hold.action, pscore=pscore,
                            action_dist=on_hold.action_dist, baseline_dist=base, q_hat=q)
    est, se = holdout_incremental_cost(on_hold.action_dist, action=hold.action, cost=hold.cost,
                                       action_prob=hold.action_prob, q_hat=q)
    assert est == pytest.approx(float(ref.value), rel=1e-9)
    assert se == pytest.approx(float(ref.stderr), rel=1e-3)


def test_bad_inputs_name_the_field(spend_case):
    rng = np.random.default_rng(0)
    n = 400
    tau = np.stack([np.zeros(n), rng.normal(size=n)], axis=1)
    action, y, e = _log(n, 2, rng, tau, np.zeros(n))
    with pytest.raises(ValueError, match="^names: the candidate list is empty"):
        score_candidates([], [], action=action, reward=y, action_prob=e)
    with pytest.raises(ValueError, match=r"^tau_hat\[1\]: expected shape"):
        score_candidates(["a", "b"], [tau, tau[:10]], action=action, reward=y, action_prob=e)
    with pytest.raises(ValueError, match="^action: the holdout has 0 no-offer"):
        score_candidates(["a"], [tau], action=np.ones(n, dtype=int), reward=y, action_prob=e)
    no_control = e.copy()
    no_control[:, 0], no_control[:, 1] = 0.0, 1.0
    with pytest.raises(ValueError, match=r"action_prob.*no-offer"):
        score_candidates(["a"], [tau], action=action, reward=y, action_prob=no_control)
    with pytest.raises(ValueError, match="^names: duplicate"):
        score_candidates(["a", "a"], [tau, tau], action=action, reward=y, action_prob=e)
    scores = score_candidates(["a"], [tau], action=action, reward=y, action_prob=e, n_bins=4)
    with pytest.raises(ValueError, match="^rule: unknown"):
        pick(scores, "auc")
    with pytest.raises(ValueError, match="^mu_hat: rule 'mse'"):
        pick(scores, "mse")
    hold, _, (tv_h, tc_h), _ = spend_case
    kw = dict(action=hold.action, cost=hold.cost, action_prob=hold.action_prob)
    with pytest.raises(ValueError, match="^budget_per_user"):
        calibrate_budget(tv_h, tc_h, budget_per_user=0.0, **kw)
    with pytest.raises(ValueError, match="^confidence"):
        calibrate_budget(tv_h, tc_h, budget_per_user=0.1, confidence=1.5, **kw)
    with pytest.raises(ValueError, match="^cost: expected shape"):
        calibrate_budget(tv_h, tc_h, budget_per_user=0.1, action=hold.action,
                         cost=hold.cost[:5], action_prob=hold.action_prob)
    bad = np.asarray(hold.action_prob).copy()
    bad[:, 1] += bad[:, 0]
    bad[:, 0] = 0.0
    with pytest.raises(ValueError, match="^action_prob.*no offer"):
        calibrate_budget(tv_h, tc_h, budget_per_user=0.1, action=hold.action, cost=hold.cost,
                         action_prob=bad)
    with pytest.raises(ValueError, match="SelectionSuiteConfig.candidates"):
        suite.SelectionSuiteConfig(candidates=("hurdle", "nope"))
    with pytest.raises(ValueError, match="SelectionSuiteConfig.spend"):
        suite.SelectionSuiteConfig(spend=("holdout_budget",))


TINY = dataclasses.replace(
    suite.SelectionSuiteConfig.compact(), worlds=("default",),
    candidates=("ate", "ridge_t", "default"), n_train=2_000, n_holdout=2_000, n_eval=2_000,
    budgets=(0.25,), n_bins=4)


@pytest.fixture(scope="module")
def tiny_rows():
    return suite.SUITE.rows(TINY, seeds=[0], progress=False)


def test_suite_rows_are_reproducible_and_complete(tiny_rows, tmp_path):
    df = tiny_rows
    again = suite.run(TINY, seed=0, progress=False).assign(seed=0)
    timed = df.metric == "fit_seconds"  # wall time: the one column not fixed by the seed
    pd.testing.assert_frame_equal(df[~timed].reset_index(drop=True),
                                  again.loc[~timed.to_numpy(), df.columns].reset_index(drop=True))
    pol = df[df.section == "policy"]
    assert set(pol.rule) == set(suite.RULES)
    assert set(pol[pol.rule == "criteria"].spend) == set(suite.SPEND)
    assert np.isfinite(pol[pol.metric.isin(("regret", "cost_ratio"))].value).all()
    cand = df[df.section == "candidates"]
    for rule in ("criteria", "mse", "pehe"):
        picked = cand[cand.metric == f"picked_{rule}"].groupby("head").value.sum()
        assert (picked == 1).all()
    # the recalibrated spend's holdout estimate sits on the budget (up to the bisection)
    est = pol[(pol.spend == "holdout_budget") & (pol.metric == "holdout_cost_ratio")].value
    assert np.allclose(est, 1.0, atol=5e-3)
    paths = suite.write_results(df, tmp_path)
    assert {p.name for p in paths} == {"selection.csv", "selection.md", "selection_policy.png",
                                       "selection_spend.png"}
    assert "| criteria | holdout_budget |" in (tmp_path / "selection.md").read_text()
    assert suite.headline(df) is not None
