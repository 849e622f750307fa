"""The jitted passes: one log, many logs (its ``vmap``), and one large host log in row chunks.

:func:`evaluate` is the whole computation for one log, traced once per shape: the per-row terms
(:func:`~estimators.ope.kernels.per_row_terms`), the fast data checks
(:func:`~estimators.ope.checks.flags`) and the estimate with its analytic CI and influence terms
(:func:`finish`), all in float64. :func:`evaluate_batch` is ``jit(vmap(evaluate))`` over a leading
seed axis: S seeds are one compiled call and one device-to-host transfer of ``(S,)`` results and
flags. :func:`evaluate_chunked` serves NumPy inputs of more than ``4 * CHUNK_ROWS`` rows: the
per-row terms and flags chunk by chunk, then :func:`finish` on the ``(n,)`` terms (same formulas,
same float64 sums). :func:`locate` (and its batched and chunked forms) runs only when a flag is
set, to name the seed and row of the defect.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from estimators.ope import checks
from estimators.ope.checks import Flags, Located
from estimators.ope.kernels import Rows, per_row_terms
from estimators.ope.records import Estimate
from estimators.ope.registry import REGISTRY

__all__ = ["CHUNK_ROWS", "evaluate", "evaluate_batch", "evaluate_chunked", "finish", "locate",
           "paired_batch", "rows_jit"]

# NumPy (host) inputs with more rows than 4 * CHUNK_ROWS are reduced chunk by chunk: each chunk
# of the (n, K+1) arrays is copied to the device into a reused buffer and reduced to per-row
# terms, instead of one copy of the whole arrays into fresh memory (measured 1.9x vs 3.3x the
# NumPy one-pass floor at n = 10^7, K+1 = 11). Read at call time (tests shrink it).
CHUNK_ROWS = 1 << 16


def finish(name: str, rows: Rows, unsupported, lambda_, z) -> tuple[Estimate, jax.Array]:
    """The estimate, its analytic CI (``value -/+ z stderr``, ``stderr = sd(phi) / sqrt(n)``)
    and the per-row influence terms ``phi`` from the per-row terms."""
    c = jnp.ones_like(rows.r)
    value, phi = REGISTRY[name].kernel(rows, c, lambda_)
    n = rows.r.shape[0]
    se = jnp.sqrt(jnp.sum((phi - jnp.mean(phi)) ** 2) / (n - 1) / n)
    ess = jnp.sum(rows.w) ** 2 / jnp.sum(rows.w**2) if name != "dm" else jnp.asarray(n, float)
    return Estimate(value, se, value - z * se, value + z * se, n, ess, jnp.max(rows.w),
                    unsupported), phi


def rows_and_flags(reward, action, pscore, action_dist, q_hat, logging_dist,
                   seen) -> tuple[Rows, Flags]:
    """Per-row terms and fast data checks of one log (support from ``logging_dist``, else
    ``seen``, else the actions in ``action``)."""
    rows = per_row_terms(reward, action, pscore, action_dist, q_hat)
    return rows, checks.flags(reward, action, pscore, action_dist, q_hat, logging_dist, seen,
                              rows)


def evaluate(name: str, reward, action, pscore, action_dist, q_hat, logging_dist, lambda_,
             z) -> tuple[Estimate, Flags, jax.Array]:
    """Estimator ``name`` on one log: ``(Estimate, Flags, phi)`` (traced)."""
    rows, fl = rows_and_flags(reward, action, pscore, action_dist, q_hat, logging_dist, None)
    est, phi = finish(name, rows, fl.unsupported, lambda_, z)
    return est, fl, phi


evaluate_jit = jax.jit(evaluate, static_argnames=("name",))


@partial(jax.jit, static_argnames=("name",))
def evaluate_batch(name: str, reward, action, pscore, action_dist, q_hat, logging_dist, lambda_,
                   z) -> tuple[Estimate, Flags]:
    """:func:`evaluate` ``vmap``-ed over a leading seed axis of every array (``lambda_`` and
    ``z`` shared): ``(Estimate, Flags)`` of ``(S,)`` arrays."""

    def one(r, a, p, pi, qh, ld):
        est, fl, _ = evaluate(name, r, a, p, pi, qh, ld, lambda_, z)
        return est, fl

    return jax.vmap(one)(reward, action, pscore, action_dist, q_hat, logging_dist)


@partial(jax.jit, static_argnames=("name",))
def paired_batch(name: str, reward, action, pscore, action_dist, baseline_dist, q_hat, lambda_,
                 z) -> tuple[Estimate, Flags, Flags]:
    """``V(pi) - V(pi_0)`` on S logs: :func:`evaluate` of both policies ``vmap``-ed over the seed
    axis, the paired influence terms ``phi(pi) - phi(pi_0)`` giving the difference's analytic CI
    (the estimate's diagnostics are those of ``pi``)."""

    def one(r, a, p, pi, pi0, qh):
        new, fl_new, phi_new = evaluate(name, r, a, p, pi, qh, None, lambda_, z)
        old, fl_old, phi_old = evaluate(name, r, a, p, pi0, qh, None, lambda_, z)
        d = phi_new - phi_old
        n = d.shape[0]
        se = jnp.sqrt(jnp.sum((d - jnp.mean(d)) ** 2) / (n - 1) / n)
        value = new.value - old.value
        return new._replace(value=value, stderr=se, ci_low=value - z * se,
                            ci_high=value + z * se), fl_new, fl_old

    return jax.vmap(one)(reward, action, pscore, action_dist, baseline_dist, q_hat)


def _locate(reward, action, pscore, action_dist, q_hat, logging_dist) -> Located:
    rows = per_row_terms(reward, action, pscore, action_dist, q_hat)
    return checks.locate(reward, action, pscore, action_dist, q_hat, logging_dist, rows)


_locate_jit = jax.jit(_locate)
_locate_batch = jax.jit(jax.vmap(_locate))
_rows_and_checks_jit = jax.jit(rows_and_flags)
_finish_jit = jax.jit(finish, static_argnames=("name",))
rows_jit = jax.jit(per_row_terms)


def _chunks(n: int) -> list[slice]:
    return [slice(start, min(n, start + CHUNK_ROWS)) for start in range(0, n, CHUNK_ROWS)]


def _cut(a, sl: slice):
    return None if a is None else a[sl]


def locate(reward, action, pscore, action_dist, q_hat, logging_dist, *, batched: bool = False,
           chunked: bool = False) -> Located:
    """Where the defects are (host values): one log, S logs (``batched``), or one large host log
    chunk by chunk (``chunked``; rows numbered from the log's first row)."""
    args = (reward, action, pscore, action_dist, q_hat, logging_dist)
    if batched:
        return jax.device_get(_locate_batch(*args))
    if not chunked:
        return jax.device_get(_locate_jit(*args))
    parts = _chunks(action_dist.shape[0])
    located = [_locate_jit(*(_cut(a, sl) for a in args)) for sl in parts]
    return checks.merge_located(located, [sl.stop - sl.start for sl in parts])


def evaluate_chunked(name: str, reward, action, pscore, action_dist, q_hat, logging_dist,
                     lambda_, z) -> tuple[Estimate, Flags, jax.Array]:
    """:func:`evaluate` for large host inputs, ``CHUNK_ROWS`` rows at a time (the returned
    :class:`Flags` are host values)."""
    n, k1 = action_dist.shape
    seen = None if logging_dist is not None else jnp.asarray(checks.seen_actions(action, k1))
    parts, flags = [], []
    slices = _chunks(n)
    for sl in slices:
        rows, fl = _rows_and_checks_jit(reward[sl], action[sl], pscore[sl], action_dist[sl],
                                        _cut(q_hat, sl), _cut(logging_dist, sl), seen)
        parts.append(rows)
        flags.append(fl)
    rows = Rows(*(jnp.concatenate(x) for x in zip(*parts, strict=True)))
    merged = checks.merge_flags(flags, [sl.stop - sl.start for sl in slices])
    est, phi = _finish_jit(name, rows, merged.unsupported, lambda_, z)
    return est, merged, phi
