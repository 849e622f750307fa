r"""Per-row terms and the per-row influence kernels of every estimator.

:func:`per_row_terms` reduces the ``(n, K+1)`` inputs to four ``(n,)`` vectors (:class:`Rows`), in
float64 whatever the input dtype. Each kernel maps them to ``(value, phi)``: the estimate, with the
rows weighted by ``c (n,)`` (``c = 1`` for the estimate itself; bootstrap counts for a resample),
and the per-row influence terms ``phi (n,)`` of the unweighted estimate, so that
``value = mean(phi)`` and ``stderr = sd(phi) / sqrt(n)``. For the self-normalised estimators
``phi`` is the delta-method linearisation (e.g. SNIPS: ``phi_i = V + w_i (r_i - V) / mean(w)``).
Traced code only (called inside ``jit``/``vmap``); formulas and assumptions are in
:mod:`estimators.ope.registry`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "Rows",
    "per_row_terms",
    "phi_clipped_ips",
    "phi_dm",
    "phi_dr",
    "phi_dr_os",
    "phi_ips",
    "phi_sndr",
    "phi_snips",
    "phi_switch_dr",
]


class Rows(NamedTuple):
    """The per-row terms every estimator is a function of (all ``(n,)`` float64)."""

    w: jax.Array  # importance weight of the logged action, pi(a_i|x_i) / pscore_i
    r: jax.Array  # reward
    q: jax.Array  # q_hat[i, a_i] (0 without a model)
    dm: jax.Array  # sum_a pi(a|x_i) q_hat[i, a] (0 without a model)


def per_row_terms(reward, action, pscore, action_dist, q_hat) -> Rows:
    """``w_i = pi(a_i|x_i) / pscore_i``, ``r_i``, ``q_i = q_hat[i, a_i]`` and
    ``dm_i = sum_a pi(a|x_i) q_hat[i, a]`` (``q_i = dm_i = 0`` when ``q_hat`` is None)."""
    dtype = jnp.float64
    pi = action_dist.astype(dtype)
    r = reward.astype(dtype)
    pi_logged = jnp.take_along_axis(pi, action[:, None], axis=1)[:, 0]
    w = pi_logged / pscore.astype(dtype)
    if q_hat is None:
        return Rows(w, r, jnp.zeros_like(r), jnp.zeros_like(r))
    qh = q_hat.astype(dtype)
    q = jnp.take_along_axis(qh, action[:, None], axis=1)[:, 0]
    return Rows(w, r, q, jnp.sum(pi * qh, axis=1))


def _mean(c: jax.Array, phi: jax.Array) -> jax.Array:
    return jnp.sum(c * phi) / jnp.sum(c)


def phi_dm(rows: Rows, c: jax.Array, lambda_: float) -> tuple[jax.Array, jax.Array]:
    """DM: ``phi_i = dm_i``."""
    return _mean(c, rows.dm), rows.dm


def phi_ips(rows: Rows, c: jax.Array, lambda_: float) -> tuple[jax.Array, jax.Array]:
    """IPS: ``phi_i = w_i r_i``."""
    phi = rows.w * rows.r
    return _mean(c, phi), phi


def phi_snips(rows: Rows, c: jax.Array, lambda_: float) -> tuple[jax.Array, jax.Array]:
    """SNIPS: ``V = sum c w r / sum c w``; ``phi_i = V + w_i (r_i - V) / mean(w)``."""
    v = jnp.sum(c * rows.w * rows.r) / jnp.sum(c * rows.w)
    mean_w = jnp.sum(c * rows.w) / jnp.sum(c)
    return v, v + rows.w * (rows.r - v) / mean_w


def phi_clipped_ips(rows: Rows, c: jax.Array, lambda_: float) -> tuple[jax.Array, jax.Array]:
    """Clipped IPS: ``phi_i = min(w_i, lambda_) r_i``."""
    phi = jnp.minimum(rows.w, lambda_) * rows.r
    return _mean(c, phi), phi


def phi_dr(rows: Rows, c: jax.Array, lambda_: float) -> tuple[jax.Array, jax.Array]:
    """DR: ``phi_i = dm_i + w_i (r_i - q_i)``."""
    phi = rows.dm + rows.w * (rows.r - rows.q)
    return _mean(c, phi), phi


def phi_sndr(rows: Rows, c: jax.Array, lambda_: float) -> tuple[jax.Array, jax.Array]:
    """SNDR: ``V = mean(dm) + b``, ``b = sum c w (r - q) / sum c w``;
    ``phi_i = dm_i + b + w_i (r_i - q_i - b) / mean(w)``."""
    total = jnp.sum(c)
    a = jnp.sum(c * rows.dm) / total
    sw = jnp.sum(c * rows.w)
    b = jnp.sum(c * rows.w * (rows.r - rows.q)) / sw
    return a + b, rows.dm + b + rows.w * (rows.r - rows.q - b) / (sw / total)


def phi_switch_dr(rows: Rows, c: jax.Array, lambda_: float) -> tuple[jax.Array, jax.Array]:
    """Switch-DR: ``phi_i = dm_i + 1{w_i <= lambda_} w_i (r_i - q_i)``."""
    phi = rows.dm + jnp.where(rows.w <= lambda_, rows.w, 0.0) * (rows.r - rows.q)
    return _mean(c, phi), phi


def phi_dr_os(rows: Rows, c: jax.Array, lambda_: float) -> tuple[jax.Array, jax.Array]:
    """DR-os: ``phi_i = dm_i + w~_i (r_i - q_i)``, ``w~ = lambda_ w / (w^2 + lambda_)``."""
    shrunk = lambda_ * rows.w / (rows.w**2 + lambda_)
    phi = rows.dm + shrunk * (rows.r - rows.q)
    return _mean(c, phi), phi
