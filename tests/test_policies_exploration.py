"""Exploration: propensity floor and epsilon mixing hold exactly; sampled actions follow the logged
distribution; the logged propensities make IPS unbiased for a new policy on the world's truth."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from policies.allocation import allocate
from policies.exploration import (
    epsilon_mix,
    explore,
    propensity_floor,
    sample_actions,
    thompson_dist,
)
from simulators.world import expected_outcomes, sample_outcomes, sample_users

N = 4000


@pytest.fixture(scope="module")
def users_truth(world_params, world_config):
    users = sample_users(jax.random.key(7), world_params, world_config, N)
    mv, mc, _ = (np.asarray(m) for m in expected_outcomes(world_params, users))
    return users, mv - mv[:, :1], mc - mc[:, :1], np.asarray(users.eligible), mv


def test_floor_and_epsilon_hold_on_eligible_actions(users_truth):
    _, tv, tc, e, _ = users_truth
    alloc = allocate(tv, tc, budget=0.05 * tc.max(axis=1).sum(), eligible=e)
    p = propensity_floor(epsilon_mix(alloc.action_dist, e, epsilon=0.1), e, floor=0.03)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert (p[e] >= 0.03 - 1e-12).all() and (p[~e] == 0).all()
    m = e.sum(axis=1, keepdims=True)
    eps = epsilon_mix(alloc.action_dist, e, epsilon=0.1)
    assert (eps[e] >= (0.1 / m.repeat(e.shape[1], 1))[e] - 1e-12).all()
    with pytest.raises(ValueError, match="floor"):
        propensity_floor(alloc.action_dist, e, floor=0.9)
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_mix(alloc.action_dist, e, epsilon=1.5)
    with pytest.raises(ValueError, match="action_dist"):
        epsilon_mix(alloc.action_dist * 2, e, epsilon=0.1)


def test_sampled_frequencies_match_distribution():
    """Each action's count is Binomial(n, p): |count - n p| <= 5 sqrt(n p (1-p)) (5 sigma)."""
    n = 20000
    p = np.tile([0.5, 0.3, 0.15, 0.05], (n, 1))
    dec = sample_actions(jax.random.key(3), p)
    counts = np.bincount(dec.action, minlength=4)
    sd = np.sqrt(n * p[0] * (1 - p[0]))
    assert (np.abs(counts - n * p[0]) <= 5 * sd).all()
    np.testing.assert_allclose(dec.pscore, p[np.arange(n), dec.action])


def test_logged_propensities_make_ips_unbiased(users_truth, world_params):
    """IPS of the oracle allocation from explored logs, over 16 seeds, matches its true value.
    Tolerance: 4 standard errors of the mean over seeds (per-seed IPS estimates are iid)."""
    users, tv, tc, e, mv = users_truth
    target = allocate(tv, tc, budget=0.05 * tc.max(axis=1).sum(), eligible=e).action_dist
    true_value = float(np.mean(np.sum(target * mv, axis=1)))
    estimates = []
    for s in range(16):
        k_a, k_o = jax.random.split(jax.random.key(100 + s))
        dec = explore(k_a, target, e, epsilon=0.3, floor=0.02)
        value, *_ = sample_outcomes(k_o, world_params, users, jnp.asarray(dec.action))
        w = target[np.arange(N), dec.action] / dec.pscore
        estimates.append(float(np.mean(np.asarray(value) * w)))
    est = np.asarray(estimates)
    se = est.std(ddof=1) / np.sqrt(est.size)
    assert abs(est.mean() - true_value) <= 4 * se


def test_thompson_propensities_are_the_mean_allocation(users_truth):
    _, tv, tc, e, _ = users_truth
    rng = np.random.default_rng(0)
    draws_v = tv[None] + rng.normal(0, 0.5, (4, *tv.shape)) * (np.arange(tv.shape[1]) > 0)
    draws_c = np.broadcast_to(tc, draws_v.shape)
    budget = 0.05 * tc.max(axis=1).sum()
    p = thompson_dist(draws_v, draws_c, budget=budget, eligible=e)
    assert np.allclose(p.sum(axis=1), 1.0) and (p[~e] == 0).all()
    # the logged propensities are the average of the per-draw allocations, not one allocation
    per_draw = [allocate(draws_v[s], tc, budget=budget, eligible=e).action_dist for s in range(4)]
    np.testing.assert_allclose(p, np.mean(per_draw, axis=0), atol=1e-12)
    assert not np.allclose(p, per_draw[0]), "draws too similar to test the mixing"
    # each draw meets the budget under the (shared) cost, hence so does the mixture
    assert float(np.sum(p * tc)) <= budget * (1 + 1e-9)
    floored = propensity_floor(p, e, floor=0.01)
    assert (floored[e] >= 0.01 - 1e-12).all()
    with pytest.raises(ValueError, match="tau_value_draws"):
        thompson_dist(tv, tc, budget=budget)
