r"""Off-policy estimators of a policy's value (or cost) from logged bandit feedback.

All take OBP's argument names, keyword-only: ``reward (n,)``, ``action (n,)`` (0 = no offer),
``pscore (n,)`` = logging probability of the logged action, ``action_dist (n, K+1)`` = the
evaluated policy ``pi(.|x_i)`` (stochastic or one-hot), ``q_hat (n, K+1)`` = any outcome model's
prediction of ``E[reward | x_i, a]``, optional ``logging_dist (n, K+1)`` = the logging policy's
full distribution ``pi_0(.|x_i)`` (used for per-row support and cross-checked against ``pscore``).
With ``w_i = pi(a_i|x_i) / pscore_i``, ``q_i = q_hat[i, a_i]`` and
``dm_i = sum_a pi(a|x_i) q_hat[i, a]``:

=============== ==========================================================================
``dm``          ``mean(dm_i)``. Needs a correct outcome model ``q_hat = E[r | x, a]`` on the
                actions ``pi`` takes; no propensities (its CI ignores model error).
``ips``         ``mean(w_i r_i)``. Unbiased when ``pscore`` is the true logging probability
                and the logger supports every action ``pi`` takes (overlap).
``snips``       ``sum w_i r_i / sum w_i``. Consistent under the IPS assumptions, bias
                ``O(1/n)``, always within the reward range.
``clipped_ips`` ``mean(min(w_i, lambda_) r_i)``. Needs the IPS assumptions and is still biased
                (towards zero for non-negative rewards) unless every ``w_i <= lambda_``;
                lower variance.
``dr``          ``mean(dm_i + w_i (r_i - q_i))``. Unbiased if the propensities are true (with
                overlap; any ``q_hat`` fitted without row ``i``, e.g. cross-fitted), or if
                ``q_hat`` is correct.
``sndr``        ``mean(dm_i) + sum w_i (r_i - q_i) / sum w_i``. Consistent under either DR
                condition, bias ``O(1/n)``; the correction is bounded by the residual range.
``switch_dr``   ``mean(dm_i + 1{w_i <= lambda_} w_i (r_i - q_i))``. DR on rows with
                ``w_i <= lambda_``, DM where weights explode: unbiased if the propensities are
                true and ``q_hat`` is correct wherever ``w > lambda_`` (Wang et al., 2017).
``dr_os``       ``mean(dm_i + w~_i (r_i - q_i))``, ``w~ = lambda_ w / (w^2 + lambda_)``: DR with
                optimistic shrinkage (Su et al., 2020). Unbiased if ``q_hat`` is correct; with
                true propensities its bias is ``E[(w~ - w)(r - q)]`` (-> DR as
                ``lambda_ -> inf``, -> DM as ``lambda_ -> 0``).
=============== ==========================================================================

Uncertainty: every estimator is written as ``value = mean(phi_i)`` for a per-row influence term
``phi_i`` (for the self-normalised ones, the delta-method linearisation, e.g. for SNIPS
``phi_i = w_i (r_i - V) / mean(w)``), so ``stderr = sd(phi) / sqrt(n)`` and the analytic
``1 - alpha`` CI is ``value -/+ z_{1-alpha/2} stderr`` (CLT). :func:`bootstrap` gives percentile
CIs by resampling rows and recomputing the whole estimator (self-normalisation inside every
resample). The same functions evaluate cost: pass the cost as ``reward``.

Support: ``unsupported_mass = mean_i sum_a pi(a|x_i) 1{a unsupported at x_i}``, where ``a`` is
unsupported when ``logging_dist[i, a] = 0`` or, without ``logging_dist``, when the log never
contains action ``a`` (per seed in :func:`estimate_batch`). Importance-weighted estimators cannot
see that mass, so it is reported and warned (:class:`UnsupportedActionWarning`).

Sums accumulate in float64 (``jax_enable_x64``); the large-array checks (row sums, finiteness,
``logging_dist`` against ``pscore``) run inside the same jitted pass as the estimate and raise a
``ValueError`` naming the one argument at fault.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

jax.config.update("jax_enable_x64", True)

__all__ = [
    "ESTIMATORS",
    "Estimate",
    "UnsupportedActionWarning",
    "bootstrap",
    "clipped_ips",
    "dm",
    "dr",
    "dr_os",
    "estimate",
    "estimate_batch",
    "incremental_roi",
    "ips",
    "paired_difference",
    "sndr",
    "snips",
    "switch_dr",
]

# absolute tolerance on probability row sums, relative tolerance of pscore vs logging_dist
# (float32 storage of a float64 probability is off by <= 6e-8 relative)
_PROB_TOL = 1e-6


class Estimate(NamedTuple):
    """An off-policy estimate with its uncertainty and overlap diagnostics.

    ``ess = (sum w)^2 / sum w^2`` is the effective sample size of the importance weights (``n`` for
    DM); ``max_weight`` the largest weight; ``unsupported_mass`` the policy's average probability
    on actions the logger does not support (then IPS-type estimators cannot see that mass). From
    :func:`estimate_batch` every field is an ``(S,)`` array, one entry per seed."""

    value: Any
    stderr: Any
    ci_low: Any
    ci_high: Any
    n: Any
    ess: Any
    max_weight: Any
    unsupported_mass: Any


class UnsupportedActionWarning(UserWarning):
    """The evaluated policy puts mass on actions the logging policy never takes."""


class _Rows(NamedTuple):
    w: jax.Array  # importance weight of the logged action
    r: jax.Array  # reward
    q: jax.Array  # q_hat of the logged action (0 without a model)
    dm: jax.Array  # sum_a pi(a|x) q_hat(x, a) (0 without a model)


class _Checks(NamedTuple):
    reward_nonfinite: jax.Array  # any NaN/inf in reward
    action_dist_nonfinite: jax.Array  # any NaN/inf in action_dist
    q_hat_nonfinite: jax.Array  # any NaN/inf in q_hat (False without one)
    max_row_error: jax.Array  # max_i |sum_a pi(a|x_i) - 1|
    min_prob: jax.Array  # min_{i,a} pi(a|x_i)
    unsupported: jax.Array  # mean_i sum_a pi(a|x_i) 1{logger does not support a at x_i}
    logging_nonfinite: jax.Array  # any NaN/inf in logging_dist (False without one)
    logging_row_error: jax.Array  # max_i |sum_a pi_0(a|x_i) - 1| (0 without logging_dist)
    logging_min: jax.Array  # min_{i,a} pi_0(a|x_i) (0 without logging_dist)
    logging_min_logged: jax.Array  # min_i pi_0(a_i|x_i) (1 without logging_dist)
    pscore_rel_error: jax.Array  # max_i |pscore_i - pi_0(a_i|x_i)| / pscore_i (0 without)


def _merge_checks(parts: list[_Checks], weights: list[int]) -> _Checks:
    """Combine the checks of consecutive row chunks (``weights`` = rows per chunk)."""
    stack = [jnp.stack(x) for x in zip(*parts, strict=True)]
    c = _Checks(*stack)
    return _Checks(
        reward_nonfinite=jnp.any(c.reward_nonfinite),
        action_dist_nonfinite=jnp.any(c.action_dist_nonfinite),
        q_hat_nonfinite=jnp.any(c.q_hat_nonfinite),
        max_row_error=jnp.max(c.max_row_error),
        min_prob=jnp.min(c.min_prob),
        unsupported=jnp.sum(c.unsupported * jnp.asarray(weights, jnp.float64)) / sum(weights),
        logging_nonfinite=jnp.any(c.logging_nonfinite),
        logging_row_error=jnp.max(c.logging_row_error),
        logging_min=jnp.min(c.logging_min),
        logging_min_logged=jnp.min(c.logging_min_logged),
        pscore_rel_error=jnp.max(c.pscore_rel_error),
    )


# --------------------------------------------------------------------------- per-row influence
def _phi_dm(rows: _Rows, c: jax.Array, lambda_: float) -> tuple[jax.Array, jax.Array]:
    v = jnp.sum(c * rows.dm) / jnp.sum(c)
    return v, rows.dm


def _phi_ips(rows: _Rows, c, lambda_):
    phi = rows.w * rows.r
    return jnp.sum(c * phi) / jnp.sum(c), phi


def _phi_snips(rows: _Rows, c, lambda_):
    v = jnp.sum(c * rows.w * rows.r) / jnp.sum(c * rows.w)
    mean_w = jnp.sum(c * rows.w) / jnp.sum(c)
    return v, v + rows.w * (rows.r - v) / mean_w


def _phi_clipped_ips(rows: _Rows, c, lambda_):
    phi = jnp.minimum(rows.w, lambda_) * rows.r
    return jnp.sum(c * phi) / jnp.sum(c), phi


def _phi_dr(rows: _Rows, c, lambda_):
    phi = rows.dm + rows.w * (rows.r - rows.q)
    return jnp.sum(c * phi) / jnp.sum(c), phi


def _phi_sndr(rows: _Rows, c, lambda_):
    total = jnp.sum(c)
    a = jnp.sum(c * rows.dm) / total
    sw = jnp.sum(c * rows.w)
    b = jnp.sum(c * rows.w * (rows.r - rows.q)) / sw
    return a + b, rows.dm + b + rows.w * (rows.r - rows.q - b) / (sw / total)


def _phi_switch_dr(rows: _Rows, c, lambda_):
    phi = rows.dm + jnp.where(rows.w <= lambda_, rows.w, 0.0) * (rows.r - rows.q)
    return jnp.sum(c * phi) / jnp.sum(c), phi


def _phi_dr_os(rows: _Rows, c, lambda_):
    shrunk = lambda_ * rows.w / (rows.w**2 + lambda_)
    phi = rows.dm + shrunk * (rows.r - rows.q)
    return jnp.sum(c * phi) / jnp.sum(c), phi


_KERNELS: dict[str, Callable] = {
    "dm": _phi_dm, "ips": _phi_ips, "snips": _phi_snips, "clipped_ips": _phi_clipped_ips,
    "dr": _phi_dr, "sndr": _phi_sndr, "switch_dr": _phi_switch_dr, "dr_os": _phi_dr_os,
}
ESTIMATORS = tuple(_KERNELS)
_NEEDS_Q = {"dm", "dr", "sndr", "switch_dr", "dr_os"}
_NEEDS_LAMBDA = {"clipped_ips", "switch_dr", "dr_os"}


# ------------------------------------------------------------------------------- the jitted pass
def _rows_and_checks(reward, action, pscore, action_dist, q_hat, seen,
                     logging_dist) -> tuple[_Rows, _Checks]:
    """Per-row terms and the input checks in one pass. Support is either ``seen (K+1,)`` (actions
    present in the log; ``logging_dist`` None) or per row from ``logging_dist (n, K+1) > 0``."""
    dtype = jnp.float64
    pi = action_dist.astype(dtype)
    r = reward.astype(dtype)
    ps = pscore.astype(dtype)
    pi_logged = jnp.take_along_axis(pi, action[:, None], axis=1)[:, 0]
    w = pi_logged / ps
    row_sum = jnp.sum(pi, axis=1)
    if q_hat is None:
        q = jnp.zeros_like(r)
        dmv = jnp.zeros_like(r)
        q_bad = jnp.asarray(False)
    else:
        qh = q_hat.astype(dtype)
        q = jnp.take_along_axis(qh, action[:, None], axis=1)[:, 0]
        dmv = jnp.sum(pi * qh, axis=1)
        # any NaN/inf in q_hat makes its row of pi * q_hat non-finite (0 * inf = NaN), so one
        # check on dm covers the whole (n, K+1) array without another pass over it (a NaN in pi
        # does too, but action_dist is checked, and reported, first)
        q_bad = ~jnp.all(jnp.isfinite(dmv))
    if logging_dist is None:  # global support: one matrix-vector product
        unsupported_per_row = pi @ (~seen).astype(dtype)
        logging = (jnp.asarray(False), jnp.asarray(0.0), jnp.asarray(0.0), jnp.asarray(1.0),
                   jnp.asarray(0.0))
    else:
        ld = logging_dist.astype(dtype)
        ld_sum = jnp.sum(ld, axis=1)  # a NaN/inf in a row of ld makes its sum non-finite
        ld_logged = jnp.take_along_axis(ld, action[:, None], axis=1)[:, 0]
        unsupported_per_row = jnp.sum(jnp.where(ld > 0, 0.0, pi), axis=1)
        logging = (~jnp.all(jnp.isfinite(ld_sum)), jnp.max(jnp.abs(ld_sum - 1.0)), jnp.min(ld),
                   jnp.min(ld_logged), jnp.max(jnp.abs(ps - ld_logged) / ps))
    checks = _Checks(
        ~jnp.all(jnp.isfinite(r)),
        # likewise a NaN/inf in a row of pi makes its row sum non-finite
        ~jnp.all(jnp.isfinite(row_sum)),
        q_bad,
        jnp.max(jnp.abs(row_sum - 1.0)),
        jnp.min(pi),
        jnp.mean(unsupported_per_row),
        *logging,
    )
    return _Rows(w, r, q, dmv), checks


def _finish(name, rows: _Rows, unsupported, lambda_, z):
    """The estimate, its analytic CI and the per-row influence terms from the per-row reductions."""
    c = jnp.ones_like(rows.r)
    value, phi = _KERNELS[name](rows, c, lambda_)
    n = rows.r.shape[0]
    se = jnp.sqrt(jnp.sum((phi - jnp.mean(phi)) ** 2) / (n - 1) / n)
    ess = jnp.sum(rows.w) ** 2 / jnp.sum(rows.w**2) if name != "dm" else jnp.asarray(n, float)
    return Estimate(value, se, value - z * se, value + z * se, n, ess, jnp.max(rows.w),
                    unsupported), phi


@partial(jax.jit, static_argnames=("name",))
def _estimate_kernel(name, reward, action, pscore, action_dist, q_hat, seen, logging_dist,
                     lambda_, z):
    rows, checks = _rows_and_checks(reward, action, pscore, action_dist, q_hat, seen,
                                    logging_dist)
    est, phi = _finish(name, rows, checks.unsupported, lambda_, z)
    return est, checks, phi


_rows_and_checks_jit = jax.jit(_rows_and_checks)
_finish_jit = jax.jit(_finish, static_argnames=("name",))

# NumPy (host) inputs with more rows than this are reduced chunk by chunk: each chunk of the
# (n, K+1) arrays is copied to the device into a reused buffer and reduced to per-row terms, instead
# of one copy of the whole arrays into fresh memory (measured 1.9x vs 3.3x the NumPy one-pass
# floor at n = 10^7, K+1 = 11)
CHUNK_ROWS = 1 << 16


def _estimate_chunked(name, reward, action, pscore, action_dist, q_hat, seen, logging_dist,
                      lambda_, z):
    """:func:`_estimate_kernel` for large host inputs: per-row reductions and checks chunk by
    chunk, then the estimator on the (n,) per-row terms (same formulas, same float64 sums)."""
    n = reward.shape[0]
    parts, checks, sizes = [], [], []
    for start in range(0, n, CHUNK_ROWS):
        sl = slice(start, start + CHUNK_ROWS)
        rows, chk = _rows_and_checks_jit(
            reward[sl], action[sl], pscore[sl], action_dist[sl],
            None if q_hat is None else q_hat[sl], seen,
            None if logging_dist is None else logging_dist[sl])
        parts.append(rows)
        checks.append(chk)
        sizes.append(min(n, start + CHUNK_ROWS) - start)
    rows = _Rows(*(jnp.concatenate(x) for x in zip(*parts, strict=True)))
    merged = _merge_checks(checks, sizes)
    est, phi = _finish_jit(name, rows, merged.unsupported, lambda_, z)
    return est, merged, phi


# ------------------------------------------------------------------------------ host validation
def _fail(name: str, problem: str, fix: str) -> None:
    raise ValueError(f"{name}: {problem}. Fix: {fix}.")


def _host(a):
    """Keep JAX arrays as they are and view anything else as NumPy (no copy): converting the
    (n, K+1) inputs with ``jnp.asarray`` here would copy them once more before the jitted pass."""
    return a if isinstance(a, jax.Array) else np.asarray(a)


def _min_max(a) -> tuple[Any, Any]:
    """Min and max of a host or device array (reduced where it lives: no device-to-host copy)."""
    xp = jnp if isinstance(a, jax.Array) else np
    return xp.min(a).item(), xp.max(a).item()


def _where(index: tuple[int, ...], batched: bool) -> str:
    """``row i`` or ``seed s, row i`` for an index into an (n,) or (S, n) array."""
    return f"seed {index[0]}, row {index[1]}" if batched else f"row {index[0]}"


def _validate_inputs(reward, action, pscore, action_dist, q_hat, logging_dist, name: str,
                     batched: bool = False):
    """Shape, dtype and range checks on the host (cheap: (n,) vectors and shapes only; the
    (n, K+1) arrays are checked inside the jitted pass). ``batched``: every argument has a leading
    seed axis ``S``; the checks cover all seeds."""
    reward, action, pscore, action_dist = (_host(a) for a in
                                           (reward, action, pscore, action_dist))
    rows = "(S, n)" if batched else "(n,)"
    stack = "; stack one log per seed on a leading axis" if batched else ""
    if reward.ndim != 1 + batched:
        _fail("reward", f"expected shape {rows}, got {reward.shape}", "pass one reward per row"
              + stack)
    n = reward.shape[-1]
    if n < 2:
        _fail("reward", "need at least 2 rows for a standard error", "pass more logged rows")
    if action.shape != reward.shape:
        _fail("action", f"expected shape {reward.shape} like reward, got {action.shape}",
              "pass one logged action per row" + stack)
    if not jnp.issubdtype(action.dtype, jnp.integer):
        _fail("action", f"dtype {action.dtype} is not integer", "encode actions as 0..K")
    if pscore.shape != reward.shape:
        _fail("pscore", f"expected shape {reward.shape} like reward, got {pscore.shape}",
              "pass the logging probability of each logged action" + stack)
    if action_dist.ndim != reward.ndim + 1 or action_dist.shape[:-1] != reward.shape:
        want = "(" + ", ".join(str(d) for d in reward.shape) + ", K+1)"
        _fail("action_dist", f"expected shape {want}, got {action_dist.shape}",
              "pass the evaluated policy's distribution over all K+1 actions per row" + stack)
    k1 = action_dist.shape[-1]
    lo, hi = _min_max(action)  # every seed, not just the first
    if lo < 0 or hi >= k1:
        _fail("action", f"values must lie in [0, {k1 - 1}] (action_dist has {k1} columns), got "
              f"[{lo}, {hi}]", "encode actions 0..K and match action_dist")
    ps = np.asarray(pscore)
    ok = np.isfinite(ps) & (ps > 0) & (ps <= 1)
    if not ok.all():
        bad = np.unravel_index(int(np.flatnonzero(~ok.ravel())[0]), ps.shape)
        _fail("pscore", f"must lie in (0, 1]; {_where(bad, batched)} has {ps[bad]!r}",
              "a logged action must have had positive logging probability; fix or drop the row")
    if name in _NEEDS_Q and q_hat is None:
        _fail("q_hat", f"{name} needs an outcome model", "pass q_hat of shape "
              + ("(S, n, K+1)" if batched else "(n, K+1)"))
    if q_hat is not None:
        q_hat = _host(q_hat)
        if q_hat.shape != action_dist.shape:
            _fail("q_hat", f"expected shape {action_dist.shape} like action_dist, got "
                  f"{q_hat.shape}", "predict every action for every row")
    if logging_dist is not None:
        logging_dist = _host(logging_dist)
        if logging_dist.shape != action_dist.shape:
            _fail("logging_dist", f"expected shape {action_dist.shape} like action_dist, got "
                  f"{logging_dist.shape}", "pass the logging policy's full distribution per row "
                  "(LoggedData.action_prob)")
    return reward, action, pscore, action_dist, q_hat, logging_dist


def _seen(action, k1: int) -> jax.Array:
    """Actions present in the log: ``(K+1,)`` bool for ``action (n,)``, ``(S, K+1)`` per seed for
    ``action (S, n)`` (the support when no ``logging_dist`` is given)."""
    a = np.asarray(action)
    if a.ndim == 1:
        return jnp.asarray(np.bincount(a, minlength=k1) > 0)
    seen = np.zeros((a.shape[0], k1), bool)
    seen[np.arange(a.shape[0])[:, None], a] = True
    return jnp.asarray(seen)


def _first(flags, batched: bool) -> str:
    """`` (seed s)`` for the first seed whose flag is set (empty when not batched)."""
    return f" (seed {int(np.flatnonzero(np.asarray(flags))[0])})" if batched else ""


def _check_results(checks: _Checks, has_q: bool, has_logging: bool,
                   batched: bool = False) -> None:
    """Raise ``ValueError`` naming the one argument at fault, then warn about unsupported mass.
    Fields are scalars, or ``(S,)`` per seed when ``batched``."""
    c = _Checks(*(np.asarray(v) for v in jax.device_get(checks)))  # one transfer
    repair = "repair or drop those rows; an estimate from non-finite data would be NaN"
    for flag, field in ((c.reward_nonfinite, "reward"),
                        (c.action_dist_nonfinite, "action_dist"),
                        (c.q_hat_nonfinite if has_q else np.zeros((), bool), "q_hat")):
        if flag.any():
            _fail(field, f"contains NaN or inf{_first(flag, batched)}", repair)
    if (c.max_row_error > _PROB_TOL).any():
        _fail("action_dist", f"rows must sum to 1 (worst row off by {c.max_row_error.max():.3g})"
              f"{_first(c.max_row_error > _PROB_TOL, batched)}",
              "normalise the policy's distribution per row")
    if (c.min_prob < 0).any():
        _fail("action_dist", f"has negative probabilities{_first(c.min_prob < 0, batched)}",
              "pass a probability distribution")
    if has_logging:
        fix = "pass the logging policy's full distribution per row (LoggedData.action_prob)"
        if c.logging_nonfinite.any():
            _fail("logging_dist", f"contains NaN or inf{_first(c.logging_nonfinite, batched)}",
                  fix)
        if (c.logging_min < 0).any():
            _fail("logging_dist", "has negative probabilities"
                  f"{_first(c.logging_min < 0, batched)}", fix)
        if (c.logging_row_error > _PROB_TOL).any():
            _fail("logging_dist", f"rows must sum to 1 (worst row off by "
                  f"{c.logging_row_error.max():.3g})"
                  f"{_first(c.logging_row_error > _PROB_TOL, batched)}", fix)
        if (c.logging_min_logged <= 0).any():
            _fail("logging_dist", "gives probability 0 to a logged action, which the logger "
                  f"could then never have taken{_first(c.logging_min_logged <= 0, batched)}",
                  "pass the distribution the logged actions were actually drawn from")
        if (c.pscore_rel_error > _PROB_TOL).any():
            _fail("logging_dist", "disagrees with pscore: logging_dist[i, action_i] != pscore_i "
                  f"(worst relative gap {c.pscore_rel_error.max():.3g})"
                  f"{_first(c.pscore_rel_error > _PROB_TOL, batched)}",
                  "pass pscore = logging_dist[i, action_i] from the same logging policy")
    if (c.unsupported > 0).any():
        where = (f"in {int((c.unsupported > 0).sum())} of {c.unsupported.size} seeds "
                 if batched else "")
        warnings.warn(
            f"{where}the evaluated policy puts {'up to ' if batched else ''}"
            f"{float(c.unsupported.max()):.4f} of its mass (per row, on average) on actions the "
            "logging policy does not support; importance-weighted estimators cannot see that mass "
            "(reported as Estimate.unsupported_mass).", UnsupportedActionWarning, stacklevel=3)


def _check_options(name: str, lambda_: float | None, alpha: float) -> tuple[float, float]:
    if not 0.0 < alpha < 1.0:
        _fail("alpha", f"must lie in (0, 1), got {alpha}", "use 0.05 for a 95% interval")
    if name in _NEEDS_LAMBDA:
        if lambda_ is None or not np.isfinite(lambda_) or lambda_ <= 0:
            _fail("lambda_", f"{name} needs a positive finite lambda_, got {lambda_}",
                  "e.g. lambda_=10.0 (a weight threshold)")
    return float(lambda_ if lambda_ is not None else math.inf), float(ndtri(1 - alpha / 2))


def estimate(name: str, *, reward, action, pscore, action_dist, q_hat=None, lambda_=None,
             alpha: float = 0.05, logging_dist=None, return_influence: bool = False):
    """Run estimator ``name`` (one of :data:`ESTIMATORS`) with an analytic ``1 - alpha`` CI.

    ``logging_dist (n, K+1)``, if given, must be a distribution per row with
    ``logging_dist[i, action_i] = pscore_i > 0``; it defines per-row support. With
    ``return_influence`` also returns the per-row influence terms ``phi (n,)``."""
    if name not in _KERNELS:
        _fail("name", f"unknown estimator {name!r}", f"use one of {ESTIMATORS}")
    lam, z = _check_options(name, lambda_, alpha)
    reward, action, pscore, action_dist, q_hat, logging_dist = _validate_inputs(
        reward, action, pscore, action_dist, q_hat, logging_dist, name)
    n, k1 = action_dist.shape
    seen = _seen(action, k1) if logging_dist is None else None
    q = q_hat if name in _NEEDS_Q else None
    on_host = not isinstance(action_dist, jax.Array) and (q is None or
                                                           not isinstance(q, jax.Array))
    kernel = _estimate_chunked if on_host and n > 4 * CHUNK_ROWS else _estimate_kernel
    est, checks, phi = kernel(name, reward, action, pscore, action_dist, q, seen, logging_dist,
                              lam, z)
    _check_results(checks, q is not None, logging_dist is not None)
    est = Estimate(*(float(v) if i != 4 else int(v) for i, v in enumerate(est)))
    return (est, np.asarray(phi)) if return_influence else est


_COMMON_DOC = """

Arguments (OBP's names, keyword-only): ``reward (n,)``, ``action (n,)`` in ``0..K``,
``pscore (n,)`` = ``pi_0(a_i|x_i)``, ``action_dist (n, K+1)`` = ``pi(.|x_i)``, ``q_hat (n, K+1)``,
``lambda_``, ``alpha`` (analytic ``1 - alpha`` CI) and optional ``logging_dist (n, K+1)`` (per-row
support, checked against ``pscore``); see :func:`estimate`. Notation: ``w_i = pi(a_i|x_i) /
pscore_i``, ``q_i = q_hat[i, a_i]``, ``dm_i = sum_a pi(a|x_i) q_hat[i, a]``. Returns an
:class:`Estimate`."""

_DOCS: dict[str, str] = {
    "dm": """Direct method: ``V = mean_i dm_i = mean_i sum_a pi(a|x_i) q_hat[i, a]``.

Assumption: ``q_hat`` is a correct model of ``E[reward | x, a]`` on the actions ``pi`` takes
(its bias is the model's bias). Uses no propensities, so needs no overlap; the CI reflects only
the sampling of ``x`` and ignores the model's error. Needs ``q_hat``.""",
    "ips": """Inverse propensity scoring: ``V = mean_i w_i r_i``.

Assumption: ``pscore`` is the true logging probability of the logged action and the logger
supports every action ``pi`` takes (overlap: ``pi(a|x) > 0 => pi_0(a|x) > 0``); then unbiased.
Variance grows with the weights (see ``ess`` and ``max_weight``).""",
    "snips": """Self-normalised IPS: ``V = sum_i w_i r_i / sum_i w_i``.

Assumption: as IPS (true ``pscore``, overlap); then consistent with bias ``O(1/n)``, and the
estimate always lies within the reward range. Delta-method influence
``phi_i = V + w_i (r_i - V) / mean(w)``.""",
    "clipped_ips": """Clipped IPS: ``V = mean_i min(w_i, lambda_) r_i``.

Assumption: as IPS (true ``pscore``, overlap). Unbiased only if every ``w_i <= lambda_``;
otherwise biased (towards zero for non-negative rewards) in exchange for lower variance.
Needs ``lambda_ > 0`` (the weight cap).""",
    "dr": """Doubly robust: ``V = mean_i [dm_i + w_i (r_i - q_i)]``.

Assumption: either the propensities are true (with overlap; then unbiased for any ``q_hat`` that
does not depend on row ``i``'s own reward, e.g. cross-fitted) or ``q_hat`` is correct. Needs
``q_hat``.""",
    "sndr": """Self-normalised doubly robust:
``V = mean_i dm_i + sum_i w_i (r_i - q_i) / sum_i w_i``.

Assumption: as DR (true propensities with overlap, or a correct ``q_hat``); then consistent with
bias ``O(1/n)``, and the correction term is bounded by the range of the residuals ``r - q``.
Needs ``q_hat``.""",
    "switch_dr": """Switch doubly robust (Wang et al., 2017):
``V = mean_i [dm_i + 1{w_i <= lambda_} w_i (r_i - q_i)]``: DR where ``w_i <= lambda_``, DM where
the weights explode.

Assumption: true propensities with overlap on rows with ``w <= lambda_``, and a correct ``q_hat``
wherever ``w > lambda_`` (its bias is ``E[1{w > lambda_} w (r - q)]``). ``lambda_ -> inf`` gives
DR, ``lambda_ -> 0`` DM. Needs ``q_hat`` and ``lambda_ > 0``.""",
    "dr_os": """Doubly robust with optimistic shrinkage (Su et al., 2020):
``V = mean_i [dm_i + w~_i (r_i - q_i)]`` with ``w~ = lambda_ w / (w^2 + lambda_)``.

Assumption: unbiased if ``q_hat`` is correct; with true propensities (and overlap) its bias is
``E[(w~ - w)(r - q)]``, small when ``q_hat`` is good or ``lambda_`` large (``lambda_ -> inf`` is
DR, ``lambda_ -> 0`` is DM). Needs ``q_hat`` and ``lambda_ > 0``.""",
}


def _named(name: str) -> Callable[..., Estimate]:
    def fn(*, reward, action, pscore, action_dist, q_hat=None, lambda_=None, alpha=0.05,
           logging_dist=None) -> Estimate:
        return estimate(name, reward=reward, action=action, pscore=pscore,
                        action_dist=action_dist, q_hat=q_hat, lambda_=lambda_, alpha=alpha,
                        logging_dist=logging_dist)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = _DOCS[name] + _COMMON_DOC
    return fn


dm = _named("dm")
ips = _named("ips")
snips = _named("snips")
clipped_ips = _named("clipped_ips")
dr = _named("dr")
sndr = _named("sndr")
switch_dr = _named("switch_dr")
dr_os = _named("dr_os")


# ---------------------------------------------------------------------- many seeds in one call
def estimate_batch(name: str, *, reward, action, pscore, action_dist, q_hat=None, lambda_=None,
                   alpha: float = 0.05, logging_dist=None) -> Estimate:
    """Estimator ``name`` on S logs at once (every argument has a leading seed axis:
    ``reward, action, pscore (S, n)``, ``action_dist, q_hat, logging_dist (S, n, K+1)``), one
    compilation (``vmap``); returns an :class:`Estimate` of ``(S,)`` arrays.

    Every seed is validated (action range and dtype, pscore, and inside the vmapped pass the
    finiteness, row sums and ``logging_dist`` checks); an error names the first bad seed. Support
    is per seed: ``logging_dist > 0`` if given, else the actions present in that seed's log;
    ``unsupported_mass`` is reported per seed and warned when any is positive."""
    if name not in _KERNELS:
        _fail("name", f"unknown estimator {name!r}", f"use one of {ESTIMATORS}")
    lam, z = _check_options(name, lambda_, alpha)
    reward, action, pscore, action_dist, q_hat, logging_dist = _validate_inputs(
        reward, action, pscore, action_dist, q_hat, logging_dist, name, batched=True)
    q = q_hat if name in _NEEDS_Q else None
    seen = _seen(action, action_dist.shape[-1]) if logging_dist is None else None

    def one(r, a, p, pi, qh, sn, ld):
        return _estimate_kernel(name, r, a, p, pi, qh, sn, ld, lam, z)[:2]

    est, checks = jax.vmap(one)(reward, action, pscore, action_dist, q, seen, logging_dist)
    _check_results(checks, q is not None, logging_dist is not None, batched=True)
    return Estimate(*(np.asarray(v) for v in est))


# ------------------------------------------------------------------------------------ bootstrap
@partial(jax.jit, static_argnames=("name", "n_boot", "batch_size"))
def _bootstrap_kernel(name, key, rows: _Rows, lambda_, n_boot, batch_size):
    n = rows.r.shape[0]

    def one(k):
        counts = jnp.bincount(jax.random.randint(k, (n,), 0, n), length=n).astype(jnp.float64)
        return _KERNELS[name](rows, counts, lambda_)[0]

    return jax.lax.map(one, jax.random.split(key, n_boot), batch_size=batch_size)


def bootstrap(name: str, *, reward, action, pscore, action_dist, q_hat=None, lambda_=None,
              alpha: float = 0.05, n_boot: int = 200, key: jax.Array | None = None,
              batch_size: int = 8) -> Estimate:
    """Percentile bootstrap CI for estimator ``name``: resample rows with replacement ``n_boot``
    times and recompute the whole estimator on each resample (self-normalised estimators are
    renormalised inside every resample). ``stderr`` is the bootstrap standard deviation."""
    if n_boot < 20:
        _fail("n_boot", f"{n_boot} resamples cannot give a percentile interval",
              "use at least 200")
    base = estimate(name, reward=reward, action=action, pscore=pscore, action_dist=action_dist,
                    q_hat=q_hat, lambda_=lambda_, alpha=alpha)
    lam, _ = _check_options(name, lambda_, alpha)
    reward, action, pscore, action_dist, q_hat, _ = _validate_inputs(
        reward, action, pscore, action_dist, q_hat, None, name)
    rows, _ = _rows_and_checks_jit(reward, action, pscore, action_dist,
                                   q_hat if name in _NEEDS_Q else None,
                                   jnp.ones(action_dist.shape[1], bool), None)
    key = jax.random.key(0) if key is None else key
    draws = np.asarray(_bootstrap_kernel(name, key, rows, lam, n_boot, batch_size))
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return base._replace(stderr=float(draws.std(ddof=1)), ci_low=float(lo), ci_high=float(hi))


# ------------------------------------------------------------------- differences and ratios
def paired_difference(name: str, *, reward, action, pscore, action_dist, baseline_dist,
                      q_hat=None, lambda_=None, alpha: float = 0.05) -> Estimate:
    """``V(pi) - V(pi_baseline)`` on the same log (new vs incumbent), with the CI of the paired
    influence terms ``phi_i(pi) - phi_i(pi_baseline)`` (tighter than two separate CIs)."""
    kw = dict(reward=reward, action=action, pscore=pscore, q_hat=q_hat, lambda_=lambda_,
              alpha=alpha, return_influence=True)
    new, phi_new = estimate(name, action_dist=action_dist, **kw)
    old, phi_old = estimate(name, action_dist=baseline_dist, **kw)
    return _linear_estimate(new.value - old.value, phi_new - phi_old, alpha, new)


def incremental_roi(name: str, *, value_reward, cost_reward, action, pscore, action_dist,
                    baseline_dist, q_hat_value=None, q_hat_cost=None, lambda_=None,
                    alpha: float = 0.05) -> Estimate:
    """Incremental ROI ``R = (V(pi) - V(pi_0)) / (C(pi) - C(pi_0))`` with a delta-method CI:
    ``phi_R = (phi_dV - R phi_dC) / dC``. Needs a cost difference clearly away from zero."""
    common = dict(action=action, pscore=pscore, lambda_=lambda_, alpha=alpha,
                  return_influence=True)
    v1, pv1 = estimate(name, reward=value_reward, action_dist=action_dist, q_hat=q_hat_value,
                       **common)
    v0, pv0 = estimate(name, reward=value_reward, action_dist=baseline_dist, q_hat=q_hat_value,
                       **common)
    c1, pc1 = estimate(name, reward=cost_reward, action_dist=action_dist, q_hat=q_hat_cost,
                       **common)
    c0, pc0 = estimate(name, reward=cost_reward, action_dist=baseline_dist, q_hat=q_hat_cost,
                       **common)
    d_v, d_c = v1.value - v0.value, c1.value - c0.value
    phi_dc = pc1 - pc0
    se_dc = phi_dc.std(ddof=1) / np.sqrt(len(phi_dc))
    if abs(d_c) < 3 * se_dc or d_c == 0:
        _fail("cost_reward", f"the incremental cost {d_c:.4g} is within 3 standard errors "
              f"({se_dc:.3g}) of zero, so the ratio is undefined", "compare policies whose "
              "costs differ, or report the value difference instead")
    ratio = d_v / d_c
    phi = ((pv1 - pv0) - ratio * phi_dc) / d_c
    return _linear_estimate(ratio, phi, alpha, v1)


def _linear_estimate(value: float, phi: np.ndarray, alpha: float, like: Estimate) -> Estimate:
    n = len(phi)
    se = float(np.std(phi, ddof=1) / np.sqrt(n))
    z = float(ndtri(1 - alpha / 2))
    return like._replace(value=float(value), stderr=se, ci_low=float(value) - z * se,
                         ci_high=float(value) + z * se)
