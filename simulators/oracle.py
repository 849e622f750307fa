"""The oracle: exact policy value and cost from the world's truth, and the optimal budgeted policy.

For a stochastic policy ``pi (n, K+1)`` on logged users with truth ``mu``:
``V(pi) = (1/n) sum_i sum_a pi(a|x_i) mu_value(x_i, a)`` and ``C(pi)`` likewise with ``mu_cost``.
This is the finite-population value (conditional on the users drawn). The population value
``E_x[...]`` is approximated by :func:`population_policy_truth` on a very large fresh sample, whose
Monte Carlo error is reported so tests can check it is negligible next to estimator error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from estimators import checks
from estimators.precision import float64
from simulators.data import Truth
from simulators.world import (
    Users,
    WorldConfig,
    WorldParams,
    expected_outcomes,
    sample_users,
    validate_params,
)

if TYPE_CHECKING:
    from policies.allocation import Allocation

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


def _check_dist(action_dist: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """The policy's (n, K+1) probability table, by the shared check (rows summing to 1 within
    ``ROW_SUM_ATOL``)."""
    if np.shape(action_dist) != tuple(shape):
        checks.fail("action_dist", f"expected shape {tuple(shape)}, got {np.shape(action_dist)}",
                    "pass one probability row over all K+1 actions per user")
    return checks.check_probability_rows("action_dist", action_dist,
                                         fix="normalise the policy's distribution per user")


@float64
def policy_truth(truth: Truth, action_dist: ArrayLike, *,
                 eligible: ArrayLike | None = None) -> PolicyTruth:
    """Exact finite-population ``V(pi)``, ``C(pi)`` and accounting value on the logged users.

    ``eligible`` (n, K+1) bool, the log's eligibility mask: when given, a policy that puts mass
    on an ineligible action raises ``ValueError`` instead of being scored on an offer the user
    could not receive. Pass it whenever the users have eligibility limits (``log.eligible``).
    """
    mv = np.asarray(truth.mu_value, dtype=np.float64)
    p = _check_dist(action_dist, mv.shape)
    if eligible is not None:
        checks.check_support("action_dist", p, checks.check_eligible("eligible", eligible,
                                                                    mv.shape),
                             fix="zero the probability of ineligible actions and renormalise "
                             "(the truth would score offers the users cannot receive); "
                             "allocate(..., eligible=log.eligible) does this")
    mc = np.asarray(truth.mu_cost, dtype=np.float64)
    ma = np.asarray(truth.mu_value_accounting, dtype=np.float64)
    v, c, a = (float(np.mean(np.sum(p * m, axis=1))) for m in (mv, mc, ma))
    return PolicyTruth(v, c, a, v - float(mv[:, 0].mean()), c - float(mc[:, 0].mean()),
                       a - float(ma[:, 0].mean()))


@float64
def population_policy_truth(
    key: jax.Array, params: WorldParams, config: WorldConfig,
    policy_fn: Callable[[Users], jax.Array], n: int = 1 << 20, period: int = 0,
    chunks: int = 4,
) -> PolicyTruth:
    """Population ``E_x[sum_a pi(a|x) mu(x, a)]`` for a policy given as a function of users,
    from ``n * chunks`` fresh users (truth only, no outcome noise), with Monte Carlo stderr.

    ``params`` are validated first (:func:`simulators.world.validate_params`); a ``policy_fn``
    that puts mass on an action a sampled user is not eligible for raises ``ValueError``."""
    validate_params(params, config)

    @jax.jit
    def one(k):
        users = sample_users(k, params, config, n, period)
        mv, mc, ma = expected_outcomes(params, users)
        p = policy_fn(users)
        rows = jnp.stack([jnp.sum(p * mv, 1), jnp.sum(p * mc, 1), jnp.sum(p * ma, 1),
                          mv[:, 0], mc[:, 0], ma[:, 0]])
        off = jnp.max(jnp.sum(jnp.where(users.eligible, 0.0, p), axis=1))  # per-user mass
        return rows.mean(1), (rows**2).mean(1), off

    means, sq, off = zip(*(one(k) for k in jax.random.split(key, chunks)), strict=True)
    worst = max(float(o) for o in off)
    if worst > checks.INELIGIBLE_MASS_ATOL:
        checks.fail("policy_fn", f"puts probability up to {worst:.6g} per user on actions the "
                    f"users are not eligible for (tolerance {checks.INELIGIBLE_MASS_ATOL:g}); the "
                    "truth would score offers they cannot receive",
                    "mask the policy with users.eligible and renormalise")
    m = np.mean(np.asarray(means), axis=0)
    var = np.mean(np.asarray(sq), axis=0) - m**2
    se = np.sqrt(np.maximum(var, 0.0) / (n * chunks))
    return PolicyTruth(m[0], m[1], m[2], m[0] - m[3], m[1] - m[4], m[2] - m[5], se[0], se[1])


@float64
def optimal_policy(truth: Truth, budget: float, *, eligible: ArrayLike,
                   **constraints: Any) -> Allocation:
    """The optimal budgeted allocation on the *true* incremental value and cost.

    ``budget`` is the total expected incremental cost allowed over the logged users.
    ``eligible`` (n, K+1) bool is required (keyword-only): the oracle may only allocate offers the
    users can receive, so pass the log's mask (``log.eligible``); an all-True mask states
    explicitly that the world has no eligibility limits. ``constraints`` go to
    :func:`policies.allocation.allocate` (the exact LP relaxation of the multiple-choice
    knapsack), so the oracle and the deployable allocators share one audited solver.
    """
    from policies.allocation import allocate

    tau_v = np.asarray(truth.tau_value)
    if eligible is None:
        checks.fail("eligible", "the oracle needs the users' eligibility mask, or it may "
                    "allocate offers they cannot receive",
                    "optimal_policy(truth, budget, eligible=log.eligible)")
    e = checks.check_eligible("eligible", eligible, tau_v.shape)
    return allocate(tau_v, np.asarray(truth.tau_cost), budget=budget, eligible=e, **constraints)
