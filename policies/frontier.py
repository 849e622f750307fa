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

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from estimators.precision import float64


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


UNROLL_MAX_ACTIONS = 32


def over_actions(n_actions: int, body: Callable[[Any, Any], Any], init: Any) -> Any:
    """``carry = body(a, carry)`` for a = 0 .. n_actions-1: unrolled in Python for a small action
    axis (XLA then fuses the whole chain into one elementwise loop over the users), a
    ``lax.fori_loop`` for a large one (bounded compile time)."""
    if n_actions <= UNROLL_MAX_ACTIONS:
        carry = init
        for a in range(n_actions):
            carry = body(a, carry)
        return carry
    return jax.lax.fori_loop(0, n_actions, body, init)


def select_rows(index: jax.Array, rows: tuple[jax.Array, ...], init: tuple[jax.Array, ...]
                ) -> tuple[jax.Array, ...]:
    """``row[index[i], i]`` for each action-major ``row (A, m)``; ``init`` where index is out of
    range. The elementwise form of ``take_along_axis`` (XLA's CPU gather runs row by row)."""

    def body(a, acc):
        hit = index == a
        return tuple(jnp.where(hit, r[a], x) for r, x in zip(rows, acc, strict=True))

    return over_actions(rows[0].shape[0], body, init)


@float64
def choice_at_price(v_t: jax.Array, c_t: jax.Array, keep_t: jax.Array, price: jax.Array | float
                    ) -> jax.Array:
    """Each user's frontier vertex after every upgrade segment with slope > ``price``:
    ``argmax_a v - price c`` over kept actions, ties to the cheaper action, then the lower index
    (so a segment of slope exactly ``price`` is not taken). ``price = inf``: the cheapest kept
    action (ties: the most valuable), the frontier's base. Action-major inputs (A, m)."""
    at_inf = jnp.isinf(price)
    finite_price = jnp.where(at_inf, 0.0, price)
    m = v_t.shape[1]

    def body(a, acc):
        best1, best2, choice = acc
        key1 = jnp.where(at_inf, -c_t[a], v_t[a] - finite_price * c_t[a])
        key2 = jnp.where(at_inf, v_t[a], -c_t[a])
        better = keep_t[a] & ((key1 > best1) | ((key1 == best1) & (key2 > best2)))
        return (jnp.where(better, key1, best1), jnp.where(better, key2, best2),
                jnp.where(better, a, choice).astype(jnp.int16))

    init = (jnp.full(m, -jnp.inf), jnp.full(m, -jnp.inf), jnp.zeros(m, dtype=jnp.int16))
    return over_actions(v_t.shape[0], body, init)[2]


@float64
def frontier_slot_major(tau_value: jax.Array, tau_cost: jax.Array, keep: jax.Array,
                        start: jax.Array | None = None) -> SlotMajorFrontier:
    """The gift-wrapping walk (traceable; call inside ``jit``). Cost O(m A L) for frontiers of
    length at most L: the walk stops as soon as no user in the batch can move. ``start (m,)``:
    begin the walk at these actions (vertices of the frontier, e.g. the choice at some price)
    instead of the cheapest point; ``base`` is then ``start``.

    Action-major (A, m) and elementwise over the users: every step is one comparison chain over
    the actions (no per-row argmax or gather, which XLA's CPU backend runs row by row; slopes are
    compared by cross-multiplication, ``dv_a dc_b > dv_b dc_a`` with both ``dc > 0``, so there is
    one division per step, not one per action). On exact slope ties the lowest action index
    wins."""
    keep_t = keep.T
    v_t = jnp.where(keep_t, tau_value.astype(jnp.float64).T, -jnp.inf)  # (A, m)
    c_t = tau_cost.astype(jnp.float64).T
    n_actions, m = v_t.shape
    n_slots = n_actions - 1

    if start is None:  # the cheapest kept action (ties: the most valuable, then lowest index)
        start = choice_at_price(v_t, c_t, keep_t, jnp.inf)
    base = start.astype(jnp.int32)
    base_v, base_c = select_rows(base, (v_t, c_t), (jnp.full(m, -jnp.inf), jnp.zeros(m)))

    def steepest(cur, vc, cc):
        def body(a, acc):
            best_dv, best_dc, found, nxt = acc
            dc = c_t[a] - cc
            dv = v_t[a] - vc  # -inf on pruned pairs, so they never qualify
            candidate = (dc > 0) & (dv > 0)
            better = candidate & (~found | (dv * best_dc > best_dv * dc))
            return (jnp.where(better, dv, best_dv), jnp.where(better, dc, best_dc),
                    found | candidate, jnp.where(better, a, nxt).astype(jnp.int32))

        init = (jnp.zeros(m), jnp.ones(m), jnp.zeros(m, dtype=bool), cur)
        # materialise the choice: otherwise XLA fuses the whole chain into every consumer
        return jax.lax.optimization_barrier(over_actions(n_actions, body, init)[3])

    def cond(state):
        return (state[0] < n_slots) & state[-1]

    def body(state):
        j, cur, vc, cc, slope_out, dc_out, dv_out, to_out, _ = state
        nxt = steepest(cur, vc, cc)
        vn, cn = select_rows(nxt, (v_t, c_t), (vc, cc))
        ok = nxt != cur
        slope = jnp.where(ok, (vn - vc) / jnp.where(ok, cn - cc, 1.0), 0.0)
        return (j + 1, nxt, vn, cn, slope_out.at[j].set(slope), dc_out.at[j].set(cn - cc),
                dv_out.at[j].set(vn - vc), to_out.at[j].set(nxt), ok.any())

    zeros = jnp.zeros((n_slots, m))
    init = (0, base, base_v, base_c, zeros, zeros, zeros,
            jnp.broadcast_to(base[None, :], (n_slots, m)), True)
    _, _, _, _, slope, d_cost, d_value, to_action, _ = jax.lax.while_loop(cond, body, init)
    return SlotMajorFrontier(base, slope, d_cost, d_value, to_action)


@jax.jit
def _user_frontier(tau_value: jax.Array, tau_cost: jax.Array, keep: jax.Array) -> Frontier:
    fr = frontier_slot_major(tau_value, tau_cost, keep)
    return Frontier(fr.base, fr.slope.T, fr.to_action.T)


@float64
def user_frontier(tau_value: jax.Array, tau_cost: jax.Array, keep: jax.Array) -> Frontier:
    """Frontier segments for every user, row-major (jit-compiled, float64). ``keep`` must have
    column 0 True; values of pairs with ``keep`` False are ignored."""
    return _user_frontier(tau_value, tau_cost, keep)
