"""Per-user efficient frontier: the upper convex hull of (incremental cost, incremental value).

For user ``i`` the points are ``(tau_c[i, a], tau_v[i, a])`` over the surviving actions (see
:mod:`policies.pruning`) plus no-offer at (0, 0). The frontier starts at the cheapest point (ties:
the most valuable; (0, 0) unless a surviving offer has ``tau_c <= 0``) and repeatedly moves to the
point of larger cost with the steepest positive slope ``(v_b - v_a) / (c_b - c_a)`` (gift wrapping;
on collinear ties the farthest point). Each move is an *upgrade segment* with marginal ROI = slope,
and the slopes strictly decrease along a user's frontier. Any LP-optimal allocation of the relaxed
multiple-choice knapsack puts each user on this frontier, which is why greedy on the segments is
exact.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)


class Frontier(NamedTuple):
    """Upgrade segments of each user's frontier, in order (m users, A = K+1 actions).

    ``base (m,)`` the starting action; ``slope, d_cost, d_value (m, A-1)`` of each segment (slope 0
    and zero deltas for unused trailing slots); ``to_action (m, A-1)`` the action after the segment
    (repeats the previous action in unused slots); ``valid (m, A-1)`` whether the slot is a segment.
    """

    base: jax.Array
    slope: jax.Array
    d_cost: jax.Array
    d_value: jax.Array
    to_action: jax.Array
    valid: jax.Array


@jax.jit
def user_frontier(tau_value: jax.Array, tau_cost: jax.Array, keep: jax.Array) -> Frontier:
    """Frontier segments for every user (vectorised; cost O(m A^2)). ``keep`` must have column 0
    True; values of pairs with ``keep`` False are ignored."""
    v = jnp.where(keep, tau_value.astype(jnp.float64), -jnp.inf)
    c = tau_cost.astype(jnp.float64)
    m, n_actions = v.shape
    rows = jnp.arange(m)
    c_masked = jnp.where(keep, c, jnp.inf)
    cheapest = keep & (c_masked == c_masked.min(axis=1, keepdims=True))
    base = jnp.argmax(jnp.where(cheapest, v, -jnp.inf), axis=1)

    def step(cur, _):
        vc = v[rows, cur]
        cc = c[rows, cur]
        dc = c - cc[:, None]
        dv = v - vc[:, None]
        cand = keep & (dc > 0) & (dv > 0)
        slope = jnp.where(cand, dv / jnp.where(cand, dc, 1.0), -jnp.inf)
        best = slope.max(axis=1)
        nxt = jnp.argmax(jnp.where(cand & (slope == best[:, None]), c, -jnp.inf), axis=1)
        ok = jnp.isfinite(best)
        nxt = jnp.where(ok, nxt, cur)
        seg = (jnp.where(ok, best, 0.0), jnp.where(ok, dc[rows, nxt], 0.0),
               jnp.where(ok, dv[rows, nxt], 0.0), nxt, ok)
        return nxt, seg

    _, (slope, dcost, dvalue, to_action, valid) = jax.lax.scan(step, base, None,
                                                                length=n_actions - 1)
    return Frontier(base, slope.T, dcost.T, dvalue.T, to_action.T, valid.T)
