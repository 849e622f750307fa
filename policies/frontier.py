"""Per-user efficient frontier: the upper convex hull of (incremental cost, incremental value).

For user ``i`` the points are ``(tau_c[i, a], tau_v[i, a])`` over the surviving actions (see
:mod:`policies.pruning`) plus no-offer at (0, 0). The frontier starts at the cheapest point (ties:
the most valuable; (0, 0) unless a surviving offer has ``tau_c <= 0``) and repeatedly moves to the
point of larger cost with the steepest positive slope ``(v_b - v_a) / (c_b - c_a)`` (gift wrapping;
on exact slope ties the lowest action index, so collinear points give equal consecutive slopes).
Each move is an *upgrade segment* with marginal ROI = slope, and the slopes never increase along a
user's frontier. Any LP-optimal allocation of the relaxed multiple-choice knapsack puts each user on
this frontier, which is why greedy on the segments is exact.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)


class Frontier(NamedTuple):
    """Upgrade segments of each user's frontier, in order (m users, A = K+1 actions).

    ``base (m,)`` the starting action; ``slope (m, A-1)`` the marginal ROI of each segment (> 0;
    0 marks an unused trailing slot); ``to_action (m, A-1)`` the action reached by the segment
    (meaningless in unused slots). Segment j of user i moves from ``to_action[i, j-1]`` (or ``base``
    for j = 0) to ``to_action[i, j]``; its cost and value deltas are differences of the inputs.
    """

    base: jax.Array
    slope: jax.Array
    to_action: jax.Array


def _pick(x: jax.Array, idx: jax.Array) -> jax.Array:
    return jnp.take_along_axis(x, idx[:, None], axis=1)[:, 0]


class SlotMajorFrontier(NamedTuple):
    """The frontier in slot-major layout (each array (A-1, m)) with each segment's cost and value
    change; unused slots have slope 0 and zero deltas."""

    base: jax.Array
    slope: jax.Array
    d_cost: jax.Array
    d_value: jax.Array
    to_action: jax.Array


def frontier_slot_major(tau_value: jax.Array, tau_cost: jax.Array, keep: jax.Array
                        ) -> SlotMajorFrontier:
    """The gift-wrapping walk (traceable; call inside ``jit``). Cost O(m A L) for frontiers of
    length at most L: the walk stops as soon as no user in the batch can move."""
    v = jnp.where(keep, tau_value.astype(jnp.float64), -jnp.inf)
    c = tau_cost.astype(jnp.float64)
    m, n_actions = v.shape
    c_masked = jnp.where(keep, c, jnp.inf)
    cheapest = keep & (c_masked == c_masked.min(axis=1, keepdims=True))
    base = jnp.argmax(jnp.where(cheapest, v, -jnp.inf), axis=1)
    n_slots = n_actions - 1

    def cond(state):
        return (state[0] < n_slots) & state[-1]

    def body(state):
        j, cur, vc, cc, slope_out, dc_out, dv_out, to_out, _ = state
        dc = c - cc[:, None]
        dv = v - vc[:, None]  # -inf on pruned pairs, so they never qualify
        slope = jnp.where((dc > 0) & (dv > 0), dv / dc, -jnp.inf)
        nxt = jnp.argmax(slope, axis=1)
        best = _pick(slope, nxt)
        ok = best > -jnp.inf
        nxt = jnp.where(ok, nxt, cur)
        vn = _pick(v, nxt)
        cn = _pick(c, nxt)
        return (j + 1, nxt, vn, cn, slope_out.at[j].set(jnp.where(ok, best, 0.0)),
                dc_out.at[j].set(cn - cc), dv_out.at[j].set(vn - vc), to_out.at[j].set(nxt),
                ok.any())

    zeros = jnp.zeros((n_slots, m))
    init = (0, base, _pick(v, base), _pick(c, base), zeros, zeros, zeros,
            jnp.broadcast_to(base[None, :], (n_slots, m)), True)
    _, _, _, _, slope, d_cost, d_value, to_action, _ = jax.lax.while_loop(cond, body, init)
    return SlotMajorFrontier(base, slope, d_cost, d_value, to_action)


@jax.jit
def user_frontier(tau_value: jax.Array, tau_cost: jax.Array, keep: jax.Array) -> Frontier:
    """Frontier segments for every user, row-major. ``keep`` must have column 0 True; values of
    pairs with ``keep`` False are ignored."""
    fr = frontier_slot_major(tau_value, tau_cost, keep)
    return Frontier(fr.base, fr.slope.T, fr.to_action.T)
