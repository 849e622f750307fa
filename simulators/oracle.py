"""The oracle: exact policy value and cost from the world's truth, and the optimal budgeted policy.

For a stochastic policy ``pi (n, K+1)`` on logged users with truth ``mu``:
``V(pi) = (1/n) sum_i sum_a pi(a|x_i) mu_value(x_i, a)`` and ``C(pi)`` likewise with ``mu_cost``.
This is the finite-population value (conditional on the users drawn). The population value
``E_x[...]`` is approximated by :func:`population_policy_truth` on a very large fresh sample, whose
Monte Carlo error is reported so tests can check it is negligible next to estimator error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from simulators.data import Truth
from simulators.world import Users, WorldConfig, WorldParams, expected_outcomes, sample_users

__all__ = ["PolicyTruth", "optimal_policy", "policy_truth", "population_policy_truth"]


class PolicyTruth(NamedTuple):
    """Exact per-user means of a policy (average over users)."""

    value: float
    cost: float
    value_accounting: float
    incremental_value: float  # V(pi) - V(no offer)
    incremental_cost: float
    incremental_value_accounting: float
    stderr_value: float = 0.0  # Monte Carlo error over users (0 for the finite-population value)
    stderr_cost: float = 0.0


def _check_dist(action_dist, shape) -> np.ndarray:
    p = np.asarray(action_dist, dtype=np.float64)
    if p.shape != tuple(shape):
        raise ValueError(f"action_dist: expected shape {tuple(shape)}, got {p.shape}. "
                         "Fix: pass one probability row over all K+1 actions per user.")
    if not np.all(np.isfinite(p)) or (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-6):
        raise ValueError("action_dist: rows must be finite, non-negative and sum to 1. "
                         "Fix: normalise the policy's distribution per user.")
    return p


def policy_truth(truth: Truth, action_dist) -> PolicyTruth:
    """Exact finite-population ``V(pi)``, ``C(pi)`` and accounting value on the logged users."""
    mv = np.asarray(truth.mu_value, dtype=np.float64)
    p = _check_dist(action_dist, mv.shape)
    mc = np.asarray(truth.mu_cost, dtype=np.float64)
    ma = np.asarray(truth.mu_value_accounting, dtype=np.float64)
    v, c, a = (float(np.mean(np.sum(p * m, axis=1))) for m in (mv, mc, ma))
    return PolicyTruth(v, c, a, v - float(mv[:, 0].mean()), c - float(mc[:, 0].mean()),
                       a - float(ma[:, 0].mean()))


def population_policy_truth(
    key: jax.Array, params: WorldParams, config: WorldConfig,
    policy_fn: Callable[[Users], jax.Array], n: int = 1 << 20, period: int = 0,
    chunks: int = 4,
) -> PolicyTruth:
    """Population ``E_x[sum_a pi(a|x) mu(x, a)]`` for a policy given as a function of users,
    from ``n * chunks`` fresh users (truth only, no outcome noise), with Monte Carlo stderr."""
    @jax.jit
    def one(k):
        users = sample_users(k, params, config, n, period)
        mv, mc, ma = expected_outcomes(params, users)
        p = policy_fn(users)
        rows = jnp.stack([jnp.sum(p * mv, 1), jnp.sum(p * mc, 1), jnp.sum(p * ma, 1),
                          mv[:, 0], mc[:, 0], ma[:, 0]])
        return rows.mean(1), (rows**2).mean(1)

    means, sq = zip(*(one(k) for k in jax.random.split(key, chunks)), strict=True)
    m = np.mean(np.asarray(means), axis=0)
    var = np.mean(np.asarray(sq), axis=0) - m**2
    se = np.sqrt(np.maximum(var, 0.0) / (n * chunks))
    return PolicyTruth(m[0], m[1], m[2], m[0] - m[3], m[1] - m[4], m[2] - m[5], se[0], se[1])


def optimal_policy(truth: Truth, budget: float, eligible=None, **constraints):
    """The optimal budgeted allocation on the *true* incremental value and cost.

    ``budget`` is the total expected incremental cost allowed over the logged users. Delegates to
    :func:`policies.allocation.allocate` (the exact LP relaxation of the multiple-choice knapsack)
    so the oracle and the deployable allocators share one audited solver.
    """
    from policies.allocation import allocate

    return allocate(np.asarray(truth.tau_value), np.asarray(truth.tau_cost), budget=budget,
                    eligible=eligible, **constraints)
