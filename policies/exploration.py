"""Exploration: make the deployed policy stochastic with known propensities so the next round's
off-policy evaluation is valid.

* :func:`epsilon_mix` ``pi' = (1 - eps) pi + eps * Uniform(eligible)``.
* :func:`propensity_floor` ``pi' = f + (1 - m_i f) pi`` on the ``m_i`` eligible actions of user i,
  so every eligible action has probability >= f (needs ``f <= 1 / m_i``).
* :func:`thompson_dist` Thompson-style allocation: draw one of S posterior (or bootstrap) draws of
  ``tau`` uniformly, allocate on it; the exact propensity of that procedure is the average of the S
  allocations' ``action_dist``.
* :func:`sample_actions` draws the action and returns its logged propensity ``pscore``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from estimators.checks import check_support, fail
from estimators.precision import float64
from policies._validation import check_action_dist, check_eligible, check_probability
from policies.allocation import allocate


class ExplorationDecision(NamedTuple):
    """The logged decision: ``action (n,)`` sampled, ``pscore (n,)`` = ``action_dist[i, action_i]``
    (> 0 by construction), ``action_dist (n, K+1)`` the full logging distribution."""

    action: np.ndarray
    pscore: np.ndarray
    action_dist: np.ndarray


@float64
def epsilon_mix(action_dist: ArrayLike, eligible: ArrayLike | None = None, *,
                epsilon: float) -> np.ndarray:
    """``(1 - epsilon) * action_dist + epsilon * uniform over each user's eligible actions``."""
    p = check_action_dist(action_dist)
    e = check_eligible(eligible, p.shape)
    check_support("action_dist", p, e)
    eps = check_probability("epsilon", epsilon)
    uniform = e / e.sum(axis=1, keepdims=True)
    return (1.0 - eps) * p + eps * uniform


@float64
def propensity_floor(action_dist: ArrayLike, eligible: ArrayLike | None = None, *,
                     floor: float) -> np.ndarray:
    """Every eligible action gets probability >= ``floor``: ``floor + (1 - m_i floor) pi`` on the
    ``m_i`` eligible actions (the smallest uniform mix that achieves the floor for every user)."""
    p = check_action_dist(action_dist)
    e = check_eligible(eligible, p.shape)
    check_support("action_dist", p, e)
    f = check_probability("floor", floor)
    m = e.sum(axis=1, keepdims=True)
    if f * m.max() > 1.0 + 1e-12:
        fail("floor", f"{f} times the largest number of eligible actions {m.max()} exceeds 1",
             "use floor <= 1 / (K+1)")
    return np.where(e, f + (1.0 - m * f) * p, 0.0)


@float64
def thompson_dist(tau_value_draws: ArrayLike, tau_cost_draws: ArrayLike, *, budget: float,
                  eligible: ArrayLike | None = None, **allocate_kwargs) -> np.ndarray:
    """Propensities of Thompson-style allocation: mean over the S draws ``(S, n, K+1)`` of
    ``allocate(draw_s, budget)`` action distributions (each draw's allocation meets the budget
    under that draw's costs)."""
    vd = np.asarray(tau_value_draws)
    cd = np.asarray(tau_cost_draws)
    if vd.ndim != 3 or vd.shape != cd.shape or vd.shape[0] < 1:
        fail("tau_value_draws / tau_cost_draws", f"expected equal shapes (S, n, K+1), got "
             f"{vd.shape} and {cd.shape}", "stack the draws on axis 0")
    total = np.zeros(vd.shape[1:])
    for s in range(vd.shape[0]):
        total += allocate(vd[s], cd[s], budget=budget, eligible=eligible,
                          **allocate_kwargs).action_dist
    return total / vd.shape[0]


@jax.jit
def _sample(key: jax.Array, p: jax.Array) -> jax.Array:
    return jax.random.categorical(key, jnp.log(p), axis=1)


@float64
def sample_actions(key: jax.Array, action_dist: ArrayLike) -> ExplorationDecision:
    """Draw ``a_i ~ action_dist[i]`` with an explicit key; ``pscore_i = action_dist[i, a_i]``."""
    p = check_action_dist(action_dist)
    a = np.asarray(_sample(key, jnp.asarray(p))).astype(np.int64)
    return ExplorationDecision(a, p[np.arange(p.shape[0]), a], p)


@float64
def explore(key: jax.Array, action_dist: ArrayLike, eligible: ArrayLike | None = None, *,
            epsilon: float = 0.0, floor: float = 0.0) -> ExplorationDecision:
    """Epsilon mixing, then the propensity floor, then sampling: the logged decision."""
    p = epsilon_mix(action_dist, eligible, epsilon=epsilon)
    p = propensity_floor(p, eligible, floor=floor)
    return sample_actions(key, p)
