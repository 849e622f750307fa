"""The online test's cost guardrail and holdout contrasts, and budget pacing inside the closed loop,
against known truth: the guardrail rolls back a candidate that overspends and promotes nothing it
should not, stays quiet (<= alpha / 2 breaches, one-sided) when costs are equal, its rescaled cost
estimate is unbiased for the eventual cost difference, the holdout contrasts cover the true lifts,
a cost-pipeline bug is caught in the loop by the guardrail, and the paced loop's budgets are
exactly :func:`policies.pacing.pacing_step` of its own history."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from experiments.loop import ClosedLoop, LoopConfig, OnlineTest, OnlineTestConfig
from experiments.suites import online
from policies.pacing import pacing_step

PROBS = np.array([0.1, 0.45, 0.45])  # holdout, incumbent, candidate


def _round(rng: np.random.Generator, n: int, *, value_effect: float, cost_effect: float,
           redeemed_now: float = 1.0) -> dict[str, np.ndarray]:
    """One round of a three-arm test: zero-inflated log-normal value (+ the arm's effect), a
    redemption cost of 1 per redeemed offer with probability 0.3 (incumbent) or ``0.3 +
    cost_effect`` (candidate), none in the holdout, redeemed within the round with probability
    ``redeemed_now``."""
    arm = rng.choice(3, size=n, p=PROBS)
    value = rng.lognormal(2.0, 0.8, n) * (rng.uniform(size=n) < 0.2)
    value = value + 1.0 * (arm > 0) + value_effect * (arm == 2)
    p_redeem = np.where(arm == 2, 0.3 + cost_effect, np.where(arm == 1, 0.3, 0.0))
    cost = (rng.uniform(size=n) < p_redeem).astype(np.float64)
    now = rng.uniform(size=n) < redeemed_now
    return dict(arm=arm, value=value, cost=cost, cost_observed=cost * now)


def _run_test(cfg: OnlineTestConfig, seed: int, *, n: int, value_effect: float,
              cost_effect: float, redeemed_now: float = 1.0, margin: float = 0.1,
              share: float = 1.0) -> OnlineTest:
    rng = np.random.default_rng(seed)
    test = OnlineTest.start(cfg, started=0, cost_margin=margin, cost_observed_share=share)
    for _ in range(cfg.max_rounds):
        d = _round(rng, n, value_effect=value_effect, cost_effect=cost_effect,
                   redeemed_now=redeemed_now)
        test = test.update(value=d["value"], arm=d["arm"], arm_probs=PROBS, pre_value=None,
                           true_diff=value_effect, n=n, cost_observed=d["cost_observed"],
                           true_cost_diff=cost_effect, true_candidate_lift=1.0 + value_effect,
                           true_incumbent_lift=1.0)
        if test.decision != "running":
            break
    return test


def test_the_guardrail_rolls_back_a_candidate_that_overspends():
    """A candidate with a clear value gain that also costs 0.5 more per user than the margin of
    0.1 allows: the value test alone promotes it, the guardrail rolls it back at once."""
    cfg = OnlineTestConfig(looks_per_round=5, max_rounds=2, cuped=False)
    guarded = _run_test(cfg, 0, n=20_000, value_effect=3.0, cost_effect=0.5)
    rec = guarded.record()
    assert guarded.decision == "rollback" and guarded.cost_breach
    assert rec["test_right"] is False and rec["test_right_guarded"] is True
    assert rec["test_decided_at_look"] == 0 and rec["test_cost_low"] > 0.1
    open_test = _run_test(dataclasses.replace(cfg, cost_guardrail=False), 0, n=20_000,
                          value_effect=3.0, cost_effect=0.5)
    assert open_test.decision == "promote" and open_test.record()["test_right_guarded"] is False
    assert "test_cost_low" not in open_test.record()  # no guardrail, no cost interval


def test_the_guardrail_stays_quiet_without_a_cost_difference():
    """No cost difference (margin 0, the strictest): the always-valid lower bound exceeds it in at
    most alpha / 2 of the runs (one side of the two-sided sequence), over 400 seeds, within 3
    binomial standard errors; no true difference in value either, so every stop is a false one."""
    cfg = OnlineTestConfig(looks_per_round=6, max_rounds=2, cuped=False, alpha=0.1)
    seeds = 400
    breaches = sum(_run_test(cfg, 100 + s, n=2_000, value_effect=0.0, cost_effect=0.0,
                             margin=0.0).cost_breach for s in range(seeds))
    p = cfg.alpha / 2
    assert breaches / seeds <= p + 3 * np.sqrt(p * (1 - p) / seeds)


def test_the_rescaled_cost_estimate_is_unbiased_for_the_eventual_difference():
    """Half of the redemptions arrive within the round; terms divided by the observed share 0.5
    estimate the eventual cost difference 0.1: the mean over 60 seeds of the final estimate lies
    within 3 standard errors of 0.1. The same logs read without the rescaling (share 1) estimate
    the observed half, 0.05, and miss 0.1 by more than 3 of their standard errors."""
    cfg = OnlineTestConfig(looks_per_round=2, max_rounds=1, cuped=False)

    def estimates(share: float) -> np.ndarray:
        return np.array([_run_test(cfg, s, n=4_000, value_effect=0.0, cost_effect=0.1,
                                   redeemed_now=0.5, margin=10.0, share=share).record()
                         ["test_cost_estimate"] for s in range(60)])

    for share, target in ((0.5, 0.1), (1.0, 0.05)):
        est = estimates(share)
        se = est.std(ddof=1) / np.sqrt(len(est))
        assert abs(est.mean() - target) <= 3 * se
        if share == 1.0:
            assert est.mean() < 0.1 - 3 * se


def test_the_holdout_contrasts_cover_the_true_lifts():
    """Each policy against the holdout: the final confidence-sequence interval covers the true
    lift in at least 1 - alpha - 3 s.e. of 200 seeds (time-uniform intervals over-cover)."""
    cfg = OnlineTestConfig(looks_per_round=3, max_rounds=1, cuped=False, alpha=0.1)
    recs = [_run_test(cfg, 500 + s, n=3_000, value_effect=0.5, cost_effect=0.0,
                      margin=10.0).record() for s in range(200)]
    for name, truth in (("candidate_lift", 1.5), ("incumbent_lift", 1.0)):
        assert all(r[f"test_{name}_true"] == pytest.approx(truth) for r in recs)
        covered = np.mean([r[f"test_{name}_covered"] for r in recs])
        assert covered >= 1 - cfg.alpha - 3 * np.sqrt(cfg.alpha * (1 - cfg.alpha) / len(recs))


def test_bad_guardrail_and_pacing_settings_name_the_field():
    with pytest.raises(ValueError, match="online_test.cost_tolerance"):
        OnlineTestConfig(cost_tolerance=-0.1)
    with pytest.raises(ValueError, match="cost_observed_share"):
        OnlineTest.start(OnlineTestConfig(), started=0, cost_observed_share=0.0)
    with pytest.raises(ValueError, match="cost_margin"):
        OnlineTest.start(OnlineTestConfig(), started=0, cost_margin=-1.0)
    with pytest.raises(ValueError, match="pacing"):
        LoopConfig(pacing="greedy")
    with pytest.raises(ValueError, match="serving_cost_scale"):
        LoopConfig(serving_cost_scale=0.0)
    with pytest.raises(ValueError, match="serving_cost_scale"):
        online.OnlineSuiteConfig(serving_cost_scale=-1.0)


# test_loop.SMALL's shapes with more rounds (compiled programs shared through the XLA cache)
LOOP = LoopConfig(rounds=5, users_per_round=1_500, pilot_users=1_000, cost_maturity=1,
                  gate_window=2, online_test=OnlineTestConfig(looks_per_round=3, max_rounds=1))


def _variant(name: str, seed: int) -> pd.DataFrame:
    cfg = online.OnlineSuiteConfig(loop=LOOP, variants=(name,))
    return pd.DataFrame(ClosedLoop(online.loop_config(cfg, name), seed=seed).run(progress=False))


def test_a_cost_pipeline_bug_is_caught_by_the_guardrail_in_the_loop():
    """The candidate's cost predictions halved at serving, every candidate sent to the online test
    (``cost_skew``): each tested candidate really overspends (true cost increase above the margin)
    and each is rolled back for cost within its first round, so the pilot's incumbent stays.
    (Without the guardrail the value test alone decides: the unit test above and the suite's
    ``cost_skew_no_guardrail`` variant.)"""
    guarded = _variant("cost_skew", 2)
    tested = guarded.dropna(subset=["test_cost_breach"])
    assert len(tested) >= 2 and tested["test_cost_breach"].astype(bool).all()
    assert (tested["test_cost_true_diff"] > tested["test_cost_margin"]).all()
    assert (tested["test_rounds"] == 1).all()  # stopped within the candidate's first round
    assert tested["test_right_guarded"].astype(bool).all()
    assert (guarded["incumbent_id_next"] == 0).all()


def test_the_paced_loop_budgets_are_pacing_step_of_its_history():
    """Pacing inside the loop: round 0 allocates exactly the nominal budget; every later round's
    per-user budget is :func:`pacing_step` recomputed from the recorded issued costs and the
    payments the loop had seen (a NumPy reference over the loop's own log)."""
    cfg = dataclasses.replace(LOOP, update="static", pacing="liability")
    loop = ClosedLoop(cfg, seed=4)
    state = loop.init()
    while not loop.done(state):
        state = loop.step(state)
    recs = state.records
    assert recs[0]["pacing_budget_per_user"] == pytest.approx(cfg.policy.budget_per_user)
    served = (1 - cfg.holdout_share) * cfg.users_per_round
    total = cfg.policy.budget_per_user * served * cfg.rounds
    log = state.log
    for r in range(1, cfg.rounds):
        paid = np.array([log["cost"][(log["cohort"] == s) & (log["redemption_lag"] >= 0)
                                     & (log["cohort"] + log["redemption_lag"] <= r - 1)].sum()
                         for s in range(r)])
        issued = [recs[s]["pacing_issued_expected"] for s in range(r)]
        ref = pacing_step(total, cfg.rounds, issued, paid,
                          lag_mean=float(loop.params.redemption_lag_mean))
        assert recs[r]["pacing_budget_per_user"] == pytest.approx(ref.period_budget / served,
                                                                  rel=1e-12)
        assert recs[r]["pacing_correction"] == pytest.approx(ref.correction, rel=1e-12)
    # regret is against the oracle at the nominal budget, as in the unpaced loop (same users)
    unpaced = ClosedLoop(dataclasses.replace(cfg, pacing="none"), seed=4).run(progress=False)
    assert [r["oracle_value"] for r in recs] == [r["oracle_value"] for r in unpaced]
