"""Pacing: the liability arithmetic against the world's redemption lags, and the controller keeping
the eventual spend within a derived tolerance of the budget under lag and cost drift."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.suites.pacing import PacingSuiteConfig, simulate_pacing, world_for
from policies.pacing import cost_correction, outstanding_liability, pacing_step, unpaid_fraction
from simulators.world import sample_outcomes, sample_users


def test_unpaid_fraction_matches_world_lags():
    """Empirical P(lag >= d) among redemptions vs q^d; tolerance 4 binomial standard errors."""
    cfg = PacingSuiteConfig(lag_mean=2.0)
    world, params = world_for(cfg)
    users = sample_users(jax.random.key(0), params, world, 40_000, 0)
    action = jnp.full((40_000,), 1)
    _, _, cost, lag = (np.asarray(o) for o in sample_outcomes(jax.random.key(1), params, users,
                                                               action))
    lag = lag[cost > 0]
    for d in range(6):
        p = float(unpaid_fraction(2.0, d))
        emp = float(np.mean(lag >= d))
        assert abs(emp - p) <= 4 * np.sqrt(p * (1 - p) / lag.size) + 1e-12


def test_liability_and_correction_arithmetic():
    issued = np.array([100.0, 100.0])
    q = 0.5  # lag mean 1
    assert outstanding_liability(issued, lag_mean=1.0) == pytest.approx(100 * q**2 + 100 * q)
    paid = np.array([90.0, 30.0])
    matured = 100 * (1 - q**2) + 100 * (1 - q)
    assert cost_correction(issued, paid, lag_mean=1.0, halflife=None) == pytest.approx(
        120 / matured)
    w = np.array([0.5, 1.0])  # halflife 1: the older cohort counts half
    kappa = float(np.sum(w * paid) / (0.5 * 100 * (1 - q**2) + 100 * (1 - q)))
    assert cost_correction(issued, paid, lag_mean=1.0, halflife=1.0) == pytest.approx(kappa)
    dec = pacing_step(1000.0, 4, issued, paid, lag_mean=1.0, halflife=1.0)
    committed = 120 + kappa * (100 * q**2 + 100 * q)
    assert dec.committed == pytest.approx(committed)
    assert dec.period_budget == pytest.approx((1000 - committed) / 2 / kappa)
    naive = pacing_step(1000.0, 4, issued, paid, lag_mean=1.0, use_liability=False)
    assert naive.committed == pytest.approx(120.0)
    assert naive.period_budget == pytest.approx((1000 - 120) / 2)
    with pytest.raises(ValueError, match="n_periods"):
        pacing_step(1000.0, 2, issued, paid, lag_mean=1.0)
    with pytest.raises(ValueError, match="paid_by_cohort"):
        pacing_step(1000.0, 4, issued, [60.0], lag_mean=1.0)
    with pytest.raises(ValueError, match="issued_expected"):
        outstanding_liability([np.nan], lag_mean=1.0)
    with pytest.raises(ValueError, match="lag_mean"):
        unpaid_fraction(-1.0, 1)


@pytest.fixture(scope="module")
def pacing_runs():
    cfg = PacingSuiteConfig(n_periods=8, n_per_period=3_000, lag_mean=2.0, cost_drift=0.06)
    return {c: simulate_pacing(cfg, c, seed=11) for c in ("liability", "no_pacing", "spend_only")}


def _tolerance(run) -> float:
    """4 standard deviations of the spend the controller cannot react to: cohorts' redemption noise
    still unresolved when the last decision is made (the last cohort in full, earlier cohorts by
    their unpaid share q^(T-1-s)). Var(cost of a cohort) <= sum_i face_i E[cost_i] (cost is face
    value or 0)."""
    T = run["var_bound"].size
    share = run["q"] ** np.maximum(T - 1 - np.arange(T), 0)
    return 4.0 * float(np.sqrt(np.sum(run["var_bound"] * share))) / float(run["budget"])


def test_liability_pacing_spends_the_budget_within_tolerance(pacing_runs):
    run = pacing_runs["liability"]
    tol = _tolerance(run)
    assert tol < 0.2, "the tolerance must be informative"
    assert abs(run["total_spend"] / run["budget"] - 1.0) <= tol
    # the path stays near plan too: committed (true expected) within tol of plan every period
    assert np.all(np.abs(run["committed"] - run["plan"]) / run["budget"] <= tol)


def test_unpaced_controllers_miss_that_tolerance(pacing_runs):
    """The same tolerance is violated without pacing and with spend-only pacing (lag + drift)."""
    for name in ("no_pacing", "spend_only"):
        run = pacing_runs[name]
        assert run["total_spend"] / run["budget"] - 1.0 > _tolerance(run), name


def test_pacing_rejects_degenerate_controller_settings():
    hist = np.array([10.0, 12.0])
    with pytest.raises(ValueError, match="halflife"):
        cost_correction(hist, hist, lag_mean=1.0, halflife=0.0)
    with pytest.raises(ValueError, match="bounds"):
        cost_correction(hist, hist, lag_mean=1.0, bounds=(0.0, 2.0))
    with pytest.raises(ValueError, match="n_periods"):
        pacing_step(100.0, 2.5, hist[:1], hist[:1], lag_mean=1.0)
