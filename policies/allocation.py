"""Budgeted allocation: the relaxed multiple-choice knapsack on incremental value and cost.

Problem (LP relaxation, ``pi`` a distribution over actions per user)::

    max_pi  sum_i sum_a pi_ia tau_v[i, a]
    s.t.    sum_i sum_a pi_ia tau_c[i, a] <= budget                  (budget, multiplier lambda)
            sum_i sum_a pi_ia (tau_v - min_roi * tau_c)[i, a] >= 0    (aggregate ROI floor, mu)
            sum_i pi_ia <= capacity[a]                                (per-action caps, nu_a)
            pi_ia = 0 where not eligible or pruned;  sum_a pi_ia = 1;  pi >= 0.

Two solvers return the same :class:`Allocation` record:

* ``method="greedy"`` (budget and ROI floor; exact): every user's upgrade segments on their convex
  frontier (:mod:`policies.frontier`) are taken in decreasing marginal ROI until the budget or the
  ROI floor binds; greedy on convex frontiers is exact for the relaxed multiple-choice knapsack and
  at most one user ends fractional. The global order is found without a global sort: a float64
  histogram of segment slopes (weighted by cost and value) locates the crossing bin, only that bin's
  segments are sorted. Users are processed in fixed-size chunks (one compilation), so n = 10^7 x
  K = 10 runs in a few GB.
* ``method="dual"`` (also per-action capacities): Lagrangian dual ``a_i = argmax_a tau_v -
  price * tau_c - nu_a``; the price (budget and ROI floor combined: ``price = (lambda + mu r) /
  (1 + mu)``) is found by bisection, capacity multipliers ``nu_a`` by coordinate bisection sweeps;
  the primal is recovered by mixing the two assignments that bracket the price so the binding
  constraint holds exactly in expectation (ties split), then any residual capacity excess is moved
  to no-offer.

The aggregate ROI floor: with value-vs-cost frontier ``V*(C)`` concave and ``V*(0) >= 0``,
``V*(C) / C`` decreases in ``C``, so the floor simply stops spending where the average ROI reaches
``min_roi``. Per-pair efficiency floors are pruning (``min_pair_roi``), see :mod:`policies.pruning`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from policies._validation import (
    check_capacity,
    check_effects,
    check_eligible,
    check_nonneg_scalar,
)
from policies.frontier import frontier_slot_major
from policies.pruning import prune_mask_unchecked

jax.config.update("jax_enable_x64", True)

_N_BINS = 1 << 14
_LOG_SLOPE_LO = float(np.log(1e-9))
_LOG_SLOPE_HI = float(np.log(1e9))
DEFAULT_CHUNK = 1 << 18


class Allocation(NamedTuple):
    """An allocation of one action distribution per user.

    ``action (n,)`` the modal action (the deterministic choice; for the fractional user the larger
    share), ``action_dist (n, K+1)`` rows sum to 1, ``expected_value`` / ``expected_cost`` totals of
    ``sum_i sum_a action_dist * tau`` under the tau given, ``budget_multiplier`` lambda (value per
    unit of budget at the margin), ``roi_multiplier`` mu, ``capacity_multipliers (K+1,)`` nu,
    ``budget_binds`` / ``roi_binds`` / ``capacity_binds (K+1,)``, ``n_fractional`` users with a
    split distribution, ``method`` the solver.
    """

    action: np.ndarray
    action_dist: np.ndarray
    expected_value: float
    expected_cost: float
    budget_multiplier: float
    roi_multiplier: float
    capacity_multipliers: np.ndarray
    budget_binds: bool
    roi_binds: bool
    capacity_binds: np.ndarray
    n_fractional: int
    method: str


def _chunk_rows(n: int, chunk_size: int) -> int:
    """Padded chunk length: a power of two (>= 256) so repeated calls reuse compilations."""
    if n >= chunk_size:
        return chunk_size
    return max(256, 1 << int(np.ceil(np.log2(max(n, 1)))))


def _padded(arr: np.ndarray, rows: int, fill: float | bool) -> np.ndarray:
    if arr.shape[0] == rows:
        return arr
    pad = np.full((rows - arr.shape[0], *arr.shape[1:]), fill, dtype=arr.dtype)
    return np.concatenate([arr, pad])


@jax.jit
def _slope_bin(slope: jax.Array) -> jax.Array:
    """Histogram bin of each positive slope on a log grid (out-of-range slopes go to the end bins);
    -1 for unused slots (slope 0)."""
    pos = (jnp.log(jnp.maximum(slope, 1e-300)) - _LOG_SLOPE_LO) / (_LOG_SLOPE_HI - _LOG_SLOPE_LO)
    b = jnp.clip(jnp.floor(pos * _N_BINS), 0, _N_BINS - 1).astype(jnp.int16)
    return jnp.where(slope > 0, b, jnp.int16(-1))


@partial(jax.jit, static_argnames=("r_pair",))
def _chunk_pass(v: jax.Array, c: jax.Array, eligible: jax.Array, r_pair: float | None) -> tuple:
    """One pass over a chunk: prune, frontier (slot-major), slope bins, base totals and every
    segment's cost and value change (the per-bin float64 totals are a host ``bincount``: XLA's CPU
    scatter is slow)."""
    keep = eligible & (v > 0)
    if r_pair is not None:
        keep &= v >= r_pair * c
    keep = keep.at[:, 0].set(True)
    fr = frontier_slot_major(v, c, keep)
    rows = jnp.arange(v.shape[0])
    return (fr.base.astype(jnp.int16), fr.to_action.astype(jnp.int16), _slope_bin(fr.slope),
            v[rows, fr.base].sum(), c[rows, fr.base].sum(), fr.d_cost, fr.d_value)


def _iter_chunks(n: int, chunk_size: int) -> Iterator[tuple[int, int, int]]:
    rows = _chunk_rows(n, chunk_size)
    for start in range(0, n, rows):
        yield start, min(start + rows, n), rows


def _greedy(v: np.ndarray, c: np.ndarray, e: np.ndarray, budget: float, min_roi: float | None,
            r_pair: float | None, chunk_size: int) -> Allocation:
    n, n_actions = v.shape
    # int16 action indices: int8 silently wrapped at 128 actions
    base = np.empty(n, dtype=np.int16)
    path = np.empty((n_actions - 1, n), dtype=np.int16)  # slot-major: path[j, i]
    bins = np.empty((n_actions - 1, n), dtype=np.int16)
    base_v = base_c = 0.0
    hc = np.zeros(_N_BINS)
    hv = np.zeros(_N_BINS)

    def launch(start, stop, rows):
        return _chunk_pass(_padded(np.asarray(v[start:stop], dtype=np.float64), rows, 0.0),
                           _padded(np.asarray(c[start:stop], dtype=np.float64), rows, 0.0),
                           _padded(e[start:stop], rows, False), r_pair)

    chunks = list(_iter_chunks(n, chunk_size))
    pending = launch(*chunks[0])
    for idx, (start, stop, _) in enumerate(chunks):
        out = pending
        if idx + 1 < len(chunks):  # dispatch the next chunk before the host work on this one
            pending = launch(*chunks[idx + 1])
        m = stop - start
        base[start:stop] = np.asarray(out[0])[:m]
        path[:, start:stop] = np.asarray(out[1])[:, :m]
        chunk_bins = np.asarray(out[2])[:, :m]
        bins[:, start:stop] = chunk_bins
        base_v += float(out[3])
        base_c += float(out[4])
        valid = chunk_bins >= 0
        b = chunk_bins[valid]
        hc += np.bincount(b, weights=np.asarray(out[5])[:, :m][valid], minlength=_N_BINS)
        hv += np.bincount(b, weights=np.asarray(out[6])[:, :m][valid], minlength=_N_BINS)
    if base_c > budget:
        raise ValueError(f"budget: {budget} is below the cheapest reachable total cost {base_c} "
                         "(offers with negative incremental cost). Fix: raise the budget.")
    # cumulative totals taking bins from the steepest slope down
    cum_c = base_c + np.cumsum(hc[::-1])[::-1]
    cum_v = base_v + np.cumsum(hv[::-1])[::-1]
    violated = cum_c > budget
    if min_roi is not None:
        violated |= cum_v < min_roi * cum_c
    crossing = int(np.flatnonzero(violated).max()) if violated.any() else -1

    # segments strictly above the crossing bin are taken; exact greedy inside it
    k_taken = np.zeros(n, dtype=np.int16)
    frac_user, theta, price = -1, 0.0, 0.0
    budget_binds = roi_binds = False
    for start in range(0, n, chunk_size):
        k_taken[start:start + chunk_size] = (bins[:, start:start + chunk_size] > crossing).sum(0)
    if crossing >= 0:
        state_c = base_c + hc[crossing + 1:].sum()
        state_v = base_v + hv[crossing + 1:].sum()
        sj, su = np.nonzero(bins == crossing)
        prev = np.where(sj == 0, base[su], path[np.maximum(sj - 1, 0), su]).astype(np.int64)
        to = path[sj, su].astype(np.int64)
        sc = np.asarray(c[su, to], dtype=np.float64) - np.asarray(c[su, prev], dtype=np.float64)
        sv = np.asarray(v[su, to], dtype=np.float64) - np.asarray(v[su, prev], dtype=np.float64)
        ss = sv / sc
        order = np.lexsort((sj, su, -ss))
        su, sj, ss, sc, sv = su[order], sj[order], ss[order], sc[order], sv[order]
        after_c = state_c + np.cumsum(sc)
        after_v = state_v + np.cumsum(sv)
        bad = after_c > budget
        if min_roi is not None:
            bad |= after_v < min_roi * after_c
        stop_at = int(np.argmax(bad)) if bad.any() else len(su)
        np.add.at(k_taken, su[:stop_at], 1)
        if stop_at < len(su):
            cur_c = state_c + sc[:stop_at].sum()
            cur_v = state_v + sv[:stop_at].sum()
            th_budget = (budget - cur_c) / sc[stop_at]
            th_roi = np.inf
            if min_roi is not None and after_v[stop_at] < min_roi * after_c[stop_at]:
                th_roi = (cur_v - min_roi * cur_c) / (min_roi * sc[stop_at] - sv[stop_at])
            theta = float(np.clip(min(th_budget, th_roi), 0.0, 1.0))
            budget_binds = th_budget <= th_roi
            roi_binds = not budget_binds
            price = float(ss[stop_at])
            if theta > 0.0:
                frac_user = int(su[stop_at])

    action = base.astype(np.int64)
    has = k_taken > 0
    action[has] = path[k_taken[has] - 1, has]
    dist = np.zeros((n, n_actions))
    dist[np.arange(n), action] = 1.0
    if frac_user >= 0:
        nxt = int(path[k_taken[frac_user], frac_user])
        dist[frac_user, action[frac_user]] = 1.0 - theta
        dist[frac_user, nxt] = theta
        if theta > 0.5:
            action[frac_user] = nxt
    exp_v, exp_c = _totals(v, c, dist, chunk_size)
    lam = price if budget_binds else 0.0
    mu = price / (min_roi - price) if roi_binds and min_roi is not None and min_roi > price else 0.0
    return Allocation(action, dist, exp_v, exp_c, lam, float(mu), np.zeros(n_actions),
                      bool(budget_binds), bool(roi_binds), np.zeros(n_actions, dtype=bool),
                      int(frac_user >= 0), "greedy")


def _totals(v: np.ndarray, c: np.ndarray, dist: np.ndarray, chunk_size: int
            ) -> tuple[float, float]:
    """float64 totals ``sum pi * tau_v`` and ``sum pi * tau_c`` (chunked)."""
    tv = tc = 0.0
    for start in range(0, v.shape[0], chunk_size):
        sl = slice(start, start + chunk_size)
        tv += float(np.einsum("ia,ia->", dist[sl], np.asarray(v[sl], dtype=np.float64)))
        tc += float(np.einsum("ia,ia->", dist[sl], np.asarray(c[sl], dtype=np.float64)))
    return tv, tc


# --------------------------------------------------------------------------- Lagrangian dual


@jax.jit
def _assign(v: jax.Array, c: jax.Array, keep: jax.Array, price: jax.Array, nu: jax.Array) -> tuple:
    """``a_i = argmax_a v - price * c - nu_a`` over kept actions (ties -> lowest action index) and
    the resulting totals (value, cost, count per action)."""
    score = jnp.where(keep, v - price * c - nu[None, :], -jnp.inf)
    a = jnp.argmax(score, axis=1)
    rows = jnp.arange(v.shape[0])
    counts = jnp.zeros(v.shape[1]).at[a].add(1.0)
    return a, v[rows, a].sum(), c[rows, a].sum(), counts


@partial(jax.jit, static_argnames=("iters",))
def _bisect_price(v: jax.Array, c: jax.Array, keep: jax.Array, nu: jax.Array, budget: float,
                  min_roi: float, hi: float, iters: int = 100) -> tuple[jax.Array, jax.Array]:
    """Smallest price in [0, hi] meeting the budget and (if ``min_roi >= 0``) the ROI floor."""

    def feasible(p):
        _, tv, tc, _ = _assign(v, c, keep, p, nu)
        ok = tc <= budget
        return jnp.where(min_roi >= 0, ok & (tv >= min_roi * tc), ok)

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        f = feasible(mid)
        return jnp.where(f, lo, mid), jnp.where(f, mid, hi)

    lo, hi = jax.lax.fori_loop(0, iters, body, (0.0, hi))
    return jnp.where(feasible(0.0), 0.0, lo), jnp.where(feasible(0.0), 0.0, hi)


@partial(jax.jit, static_argnames=("iters",))
def _bisect_nu(v: jax.Array, c: jax.Array, keep: jax.Array, price: jax.Array, nu: jax.Array,
               action: int, cap: float, hi: float, iters: int = 100) -> jax.Array:
    """Smallest ``nu[action] >= 0`` with the number of users on ``action`` at most ``cap``."""

    def count(x):
        return _assign(v, c, keep, price, nu.at[action].set(x))[3][action]

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        f = count(mid) <= cap
        return jnp.where(f, lo, mid), jnp.where(f, mid, hi)

    _, hi = jax.lax.fori_loop(0, iters, body, (0.0, hi))
    return jnp.where(count(0.0) <= cap, 0.0, hi)


def _dual(v: np.ndarray, c: np.ndarray, e: np.ndarray, budget: float, min_roi: float | None,
          r_pair: float | None, capacity: np.ndarray | None, max_sweeps: int) -> Allocation:
    n, n_actions = v.shape
    keep = prune_mask_unchecked(v.astype(np.float64), c.astype(np.float64), e, r_pair)
    vj = jnp.asarray(v, dtype=jnp.float64)
    cj = jnp.asarray(c, dtype=jnp.float64)
    kj = jnp.asarray(keep)
    pos = keep & (c > 0)
    price_hi = float(np.max(np.where(pos, v / np.where(pos, c, 1.0), 0.0), initial=0.0)) * 2 + 1.0
    nu_hi = float(np.abs(v).max() + price_hi * np.abs(c).max()) * 2 + 1.0
    roi = -1.0 if min_roi is None else float(min_roi)
    nu = jnp.zeros(n_actions)
    capped = [] if capacity is None else [a for a in range(n_actions) if np.isfinite(capacity[a])]
    p_lo, p_hi = _bisect_price(vj, cj, kj, nu, budget, roi, price_hi)
    for _ in range(max_sweeps if capped else 0):
        old = np.asarray(nu).copy()
        for a in capped:
            nu = nu.at[a].set(_bisect_nu(vj, cj, kj, p_hi, nu, a, capacity[a], nu_hi))
        p_lo, p_hi = _bisect_price(vj, cj, kj, nu, budget, roi, price_hi)
        if np.max(np.abs(np.asarray(nu) - old), initial=0.0) <= 1e-9 * (1.0 + nu_hi):
            break
    a_hi, v_hi, c_hi, _ = _assign(vj, cj, kj, p_hi, nu)
    a_lo, v_lo, c_lo, _ = _assign(vj, cj, kj, p_lo, nu)
    a_hi, a_lo = np.asarray(a_hi), np.asarray(a_lo)
    v_hi, c_hi, v_lo, c_lo = (float(x) for x in (v_hi, c_hi, v_lo, c_lo))
    # weight on the cheaper-price (more generous) assignment so the binding constraint holds exactly
    w = 0.0
    budget_binds = roi_binds = False
    if float(p_hi) > 0.0 and (c_lo > c_hi):
        w_b = np.clip((budget - c_hi) / (c_lo - c_hi), 0.0, 1.0)
        w_r = 1.0
        if min_roi is not None:
            g_hi, g_lo = v_hi - min_roi * c_hi, v_lo - min_roi * c_lo
            w_r = 1.0 if g_lo >= 0 else np.clip(g_hi / (g_hi - g_lo), 0.0, 1.0)
        w = float(min(w_b, w_r))
        budget_binds = w_b <= w_r
        roi_binds = not budget_binds
    elif float(p_hi) > 0.0:
        budget_binds = c_hi >= budget * (1 - 1e-9)
        roi_binds = not budget_binds
    rows = np.arange(n)
    dist = np.zeros((n, n_actions))
    dist[rows, a_hi] += 1.0 - w
    dist[rows, a_lo] += w
    counts = dist.sum(axis=0)
    cap_binds = np.zeros(n_actions, dtype=bool)
    if capacity is not None:
        for a in np.flatnonzero(counts > capacity + 1e-9):
            # residual excess (ties / non-converged sweeps): the users with the smallest
            # price-adjusted gain on `a` move to no-offer until the cap holds
            gain = v[:, a] - float(p_hi) * c[:, a]
            users = np.flatnonzero(dist[:, a] > 0)
            users = users[np.argsort(gain[users], kind="stable")]
            excess = counts[a] - capacity[a]
            take = np.minimum(dist[users, a], np.maximum(excess - np.concatenate(
                [[0.0], np.cumsum(dist[users, a])[:-1]]), 0.0))
            dist[users, a] -= take
            dist[users, 0] += take
        cap_binds = dist.sum(axis=0) >= capacity - 1e-9
    exp_v, exp_c = _totals(v, c, dist, DEFAULT_CHUNK)
    price = float(p_hi)
    lam = price if budget_binds else 0.0
    mu = price / (min_roi - price) if roi_binds and min_roi is not None and min_roi > price else 0.0
    action = np.argmax(dist, axis=1)
    n_frac = int(np.sum(dist.max(axis=1) < 1.0 - 1e-12))
    return Allocation(action, dist, exp_v, exp_c, lam, float(mu), np.asarray(nu, dtype=np.float64),
                      bool(budget_binds), bool(roi_binds), cap_binds, n_frac, "dual")


def allocate(tau_value: ArrayLike, tau_cost: ArrayLike, *, budget: float,
             eligible: ArrayLike | None = None, min_roi: float | None = None,
             capacity: ArrayLike | None = None, min_pair_roi: float | None = None,
             method: Literal["auto", "greedy", "dual"] = "auto", chunk_size: int = DEFAULT_CHUNK,
             max_sweeps: int = 50) -> Allocation:
    """Allocate at most one action per user to maximise total incremental value under the budget.

    ``tau_value``, ``tau_cost``: (n, K+1), column 0 (no offer) zero. ``budget``: the total expected
    incremental cost allowed over the n users (units of ``tau_cost.sum()``). ``eligible`` (n, K+1)
    bool, column 0 True. ``min_roi``: aggregate floor ``sum value >= min_roi * sum cost``.
    ``capacity``: (K+1,) or (K,) expected number of users per action (np.inf = uncapped).
    ``min_pair_roi``: per-pair efficiency floor applied in pruning. Pairs with ``tau_v <= 0`` are
    pruned (no-offer is always available). ``method="auto"``: exact greedy without capacities, the
    Lagrangian dual with them.
    """
    v, c = check_effects(tau_value, tau_cost)
    e = check_eligible(eligible, v.shape)
    b = check_nonneg_scalar("budget", budget)
    r = check_nonneg_scalar("min_roi", min_roi, allow_none=True)
    r_pair = check_nonneg_scalar("min_pair_roi", min_pair_roi, allow_none=True)
    cap = check_capacity(capacity, v.shape[1])
    if method not in ("auto", "greedy", "dual"):
        raise ValueError(f"method: expected 'auto', 'greedy' or 'dual', got {method!r}.")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size: must be >= 1, got {chunk_size}.")
    if cap is not None and method == "greedy":
        raise ValueError("method='greedy' does not handle capacity; use method='dual' or 'auto'.")
    if method == "dual" or (method == "auto" and cap is not None):
        return _dual(v, c, e, b, r, r_pair, cap, max_sweeps)
    return _greedy(v, c, e, b, r, r_pair, int(chunk_size))


def allocate_at_price(tau_value: ArrayLike, tau_cost: ArrayLike, *, price: float,
                      eligible: ArrayLike | None = None,
                      min_pair_roi: float | None = None) -> Allocation:
    """Deterministic allocation at a fixed budget multiplier: ``a_i = argmax_a tau_v - price tau_c``
    over pruned eligible actions (ties -> the lower action index, so no-offer wins ties). Used by
    pacing controllers that set the price directly."""
    v, c = check_effects(tau_value, tau_cost)
    e = check_eligible(eligible, v.shape)
    p = check_nonneg_scalar("price", price)
    r_pair = check_nonneg_scalar("min_pair_roi", min_pair_roi, allow_none=True)
    keep = prune_mask_unchecked(v.astype(np.float64), c.astype(np.float64), e, r_pair)
    a, tv, tc, _ = _assign(jnp.asarray(v, dtype=jnp.float64), jnp.asarray(c, dtype=jnp.float64),
                           jnp.asarray(keep), p, jnp.zeros(v.shape[1]))
    a = np.asarray(a).astype(np.int64)
    dist = np.zeros(v.shape)
    dist[np.arange(v.shape[0]), a] = 1.0
    return Allocation(a, dist, float(tv), float(tc), p, 0.0, np.zeros(v.shape[1]), False, False,
                      np.zeros(v.shape[1], dtype=bool), 0, "price")
