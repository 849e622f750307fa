r"""Off-policy estimators of a policy's value (or cost) from logged bandit feedback.

All take OBP's argument names, keyword-only: ``reward (n,)``, ``action (n,)`` (0 = no offer),
``pscore (n,)`` = logging probability of the logged action, ``action_dist (n, K+1)`` = the
evaluated policy ``pi(.|x_i)`` (stochastic or one-hot), ``q_hat (n, K+1)`` = any outcome model's
prediction of ``E[reward | x_i, a]``. With ``w_i = pi(a_i|x_i) / pscore_i``,
``q_i = q_hat[i, a_i]`` and ``dm_i = sum_a pi(a|x_i) q_hat[i, a]``:

=============  ============================================================================
``dm``         ``mean(dm_i)``; needs a correct outcome model (its CI ignores model error).
``ips``        ``mean(w_i r_i)``; unbiased when ``pscore`` is the true logging probability
               and the logger supports every action ``pi`` takes (overlap).
``snips``      ``sum w_i r_i / sum w_i``; consistent under the same assumptions, bounded by the
               reward range; small bias ``O(1/n)``.
``clipped_ips`` ``mean(min(w_i, lambda_) r_i)``; biased towards zero, lower variance.
``dr``         ``mean(dm_i + w_i (r_i - q_i))``; unbiased if either the propensities or the
               outcome model are right.
``sndr``       ``mean(dm_i) + sum w_i (r_i - q_i) / sum w_i``.
``switch_dr``  ``mean(dm_i + 1{w_i <= lambda_} w_i (r_i - q_i))``: DM where weights explode.
``dr_os``      ``mean(dm_i + w~_i (r_i - q_i))`` with optimistic shrinkage
               ``w~ = lambda_ w / (w^2 + lambda_)`` (Su et al., 2020).
=============  ============================================================================

Uncertainty: every estimator is written as ``value = mean(phi_i)`` for a per-row influence term
``phi_i`` (for the self-normalised ones, the delta-method linearisation, e.g. for SNIPS
``phi_i = w_i (r_i - V) / mean(w)``), so ``stderr = sd(phi) / sqrt(n)`` and the analytic
``1 - alpha`` CI is ``value -/+ z_{1-alpha/2} stderr`` (CLT). :func:`bootstrap` gives percentile
CIs by resampling rows and recomputing the whole estimator (self-normalisation inside every
resample). The same functions evaluate cost: pass the cost as ``reward``.

Sums accumulate in float64 (``jax_enable_x64``); the large-array checks (row sums, finiteness) run
inside the same jitted pass as the estimate and raise a ``ValueError`` naming the argument.
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


class Estimate(NamedTuple):
    """An off-policy estimate with its uncertainty and overlap diagnostics.

    ``ess = (sum w)^2 / sum w^2`` is the effective sample size of the importance weights (``n`` for
    DM); ``max_weight`` the largest weight; ``unsupported_mass`` the policy's average probability
    on actions the logger never supports (then IPS-type estimators cannot see that mass)."""

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
    max_row_error: jax.Array  # max_i |sum_a pi(a|x_i) - 1|
    min_prob: jax.Array
    nonfinite: jax.Array  # any NaN/inf in the big inputs
    unsupported: jax.Array  # mean_i sum_a pi(a|x_i) 1{logger never supports a}


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
def _rows_and_checks(reward, action, pscore, action_dist, q_hat, support) -> tuple[_Rows, _Checks]:
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
        # check on dm covers the whole (n, K+1) array without another pass over it
        q_bad = ~jnp.all(jnp.isfinite(dmv))
    # likewise a NaN/inf in a row of pi makes its row sum non-finite
    nonfinite = (~jnp.all(jnp.isfinite(row_sum))) | (~jnp.all(jnp.isfinite(r))) | q_bad
    if support.shape[0] == 1:  # global support: one matrix-vector product
        unsupported_per_row = pi @ (~support[0]).astype(dtype)
    else:
        unsupported_per_row = jnp.sum(jnp.where(support, 0.0, pi), axis=1)
    checks = _Checks(
        max_row_error=jnp.max(jnp.abs(row_sum - 1.0)),
        min_prob=jnp.min(pi),
        nonfinite=nonfinite,
        unsupported=jnp.mean(unsupported_per_row),
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
def _estimate_kernel(name, reward, action, pscore, action_dist, q_hat, support, lambda_, z):
    rows, checks = _rows_and_checks(reward, action, pscore, action_dist, q_hat, support)
    est, phi = _finish(name, rows, checks.unsupported, lambda_, z)
    return est, checks, phi


_rows_and_checks_jit = jax.jit(_rows_and_checks)
_finish_jit = jax.jit(_finish, static_argnames=("name",))

# NumPy (host) inputs with more rows than this are reduced chunk by chunk: each chunk of the
# (n, K+1) arrays is copied to the device into a reused buffer and reduced to per-row terms, instead
# of one copy of the whole arrays into fresh memory (measured 1.9x vs 3.3x the NumPy one-pass
# floor at n = 10^7, K+1 = 11)
CHUNK_ROWS = 1 << 16


def _estimate_chunked(name, reward, action, pscore, action_dist, q_hat, support, lambda_, z):
    """:func:`_estimate_kernel` for large host inputs: per-row reductions and checks chunk by
    chunk, then the estimator on the (n,) per-row terms (same formulas, same float64 sums)."""
    n = reward.shape[0]
    parts, checks = [], []
    for start in range(0, n, CHUNK_ROWS):
        sl = slice(start, start + CHUNK_ROWS)
        rows, chk = _rows_and_checks_jit(
            reward[sl], action[sl], pscore[sl], action_dist[sl],
            None if q_hat is None else q_hat[sl],
            support if support.shape[0] == 1 else support[sl])
        parts.append(rows)
        checks.append((chk, min(n, start + CHUNK_ROWS) - start))
    rows = _Rows(*(jnp.concatenate(x) for x in zip(*parts, strict=True)))
    merged = _Checks(
        max_row_error=jnp.max(jnp.stack([c.max_row_error for c, _ in checks])),
        min_prob=jnp.min(jnp.stack([c.min_prob for c, _ in checks])),
        nonfinite=jnp.any(jnp.stack([c.nonfinite for c, _ in checks])),
        unsupported=sum(c.unsupported * m for c, m in checks) / n,
    )
    est, phi = _finish_jit(name, rows, merged.unsupported, lambda_, z)
    return est, merged, phi


# ------------------------------------------------------------------------------ host validation
def _fail(name: str, problem: str, fix: str) -> None:
    raise ValueError(f"{name}: {problem}. Fix: {fix}.")


def _host(a):
    """Keep JAX arrays as they are and view anything else as NumPy (no copy): converting the
    (n, K+1) inputs with ``jnp.asarray`` here would copy them once more before the jitted pass."""
    return a if isinstance(a, jax.Array) else np.asarray(a)


def _validate_shapes(reward, action, pscore, action_dist, q_hat, name):
    reward, action, pscore, action_dist = (_host(a) for a in
                                           (reward, action, pscore, action_dist))
    if reward.ndim != 1:
        _fail("reward", f"expected shape (n,), got {reward.shape}", "pass one reward per row")
    n = reward.shape[0]
    if n < 2:
        _fail("reward", "need at least 2 rows for a standard error", "pass more logged rows")
    if action.shape != (n,):
        _fail("action", f"expected shape ({n},) like reward, got {action.shape}",
              "pass one logged action per row")
    if not jnp.issubdtype(action.dtype, jnp.integer):
        _fail("action", f"dtype {action.dtype} is not integer", "encode actions as 0..K")
    if pscore.shape != (n,):
        _fail("pscore", f"expected shape ({n},) like reward, got {pscore.shape}",
              "pass the logging probability of each logged action")
    if action_dist.ndim != 2 or action_dist.shape[0] != n:
        _fail("action_dist", f"expected shape ({n}, K+1), got {action_dist.shape}",
              "pass the evaluated policy's distribution over all K+1 actions per row")
    k1 = action_dist.shape[1]
    a_np = np.asarray(action)
    if a_np.min() < 0 or a_np.max() >= k1:
        _fail("action", f"values must lie in [0, {k1 - 1}] (action_dist has {k1} columns), got "
              f"[{a_np.min()}, {a_np.max()}]", "encode actions 0..K and match action_dist")
    ps = np.asarray(pscore)
    if not np.all(np.isfinite(ps)) or (ps <= 0).any() or (ps > 1).any():
        bad = int(np.flatnonzero(~(np.isfinite(ps) & (ps > 0) & (ps <= 1)))[0])
        _fail("pscore", f"must lie in (0, 1]; row {bad} has {ps[bad]!r}",
              "a logged action must have had positive logging probability; fix or drop the row")
    if name in _NEEDS_Q:
        if q_hat is None:
            _fail("q_hat", f"{name} needs an outcome model", "pass q_hat of shape (n, K+1)")
    if q_hat is not None:
        q_hat = _host(q_hat)
        if q_hat.shape != action_dist.shape:
            _fail("q_hat", f"expected shape {action_dist.shape} like action_dist, got "
                  f"{q_hat.shape}", "predict every action for every row")
    return reward, action, pscore, action_dist, q_hat


def _support(action, k1, logging_dist, n):
    if logging_dist is None:  # global support: actions the logger was ever seen taking
        seen = np.bincount(np.asarray(action), minlength=k1) > 0
        return jnp.asarray(np.broadcast_to(seen, (1, k1)))
    logging_dist = jnp.asarray(logging_dist)
    if logging_dist.shape != (n, k1):
        _fail("logging_dist", f"expected shape ({n}, {k1}), got {logging_dist.shape}",
              "pass the logging policy's full distribution per row (LoggedData.action_prob)")
    return logging_dist > 0


def _check_results(checks: _Checks, has_q: bool) -> None:
    if bool(checks.nonfinite):
        _fail("reward/action_dist" + ("/q_hat" if has_q else ""), "contain NaN or inf",
              "repair the inputs; an estimate from non-finite data would be NaN")
    if float(checks.max_row_error) > 1e-6:
        worst = float(checks.max_row_error)
        _fail("action_dist", f"rows must sum to 1 (worst row off by {worst:.3g})",
              "normalise the policy's distribution per row")
    if float(checks.min_prob) < 0:
        _fail("action_dist", "has negative probabilities", "pass a probability distribution")
    if float(checks.unsupported) > 0:
        warnings.warn(
            f"the evaluated policy puts {float(checks.unsupported):.4f} of its mass (per row, on "
            "average) on actions the logging policy never takes; importance-weighted estimators "
            "cannot see that mass (reported as Estimate.unsupported_mass).",
            UnsupportedActionWarning, stacklevel=3)


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
    """Run estimator ``name`` (one of :data:`ESTIMATORS`) with an analytic ``1 - alpha`` CI."""
    if name not in _KERNELS:
        _fail("name", f"unknown estimator {name!r}", f"use one of {ESTIMATORS}")
    lam, z = _check_options(name, lambda_, alpha)
    reward, action, pscore, action_dist, q_hat = _validate_shapes(
        reward, action, pscore, action_dist, q_hat, name)
    n, k1 = action_dist.shape
    support = _support(action, k1, logging_dist, n)
    q = q_hat if name in _NEEDS_Q else None
    on_host = not isinstance(action_dist, jax.Array) and (q is None or
                                                           not isinstance(q, jax.Array))
    kernel = _estimate_chunked if on_host and n > 4 * CHUNK_ROWS else _estimate_kernel
    est, checks, phi = kernel(name, reward, action, pscore, action_dist, q, support, lam, z)
    _check_results(checks, q_hat is not None)
    est = Estimate(*(float(v) if i != 4 else int(v) for i, v in enumerate(est)))
    return (est, np.asarray(phi)) if return_influence else est


def _named(name: str) -> Callable[..., Estimate]:
    def fn(*, reward, action, pscore, action_dist, q_hat=None, lambda_=None, alpha=0.05,
           logging_dist=None) -> Estimate:
        return estimate(name, reward=reward, action=action, pscore=pscore,
                        action_dist=action_dist, q_hat=q_hat, lambda_=lambda_, alpha=alpha,
                        logging_dist=logging_dist)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"The ``{name}`` estimator (see the module docstring for its formula)."
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
                   alpha: float = 0.05) -> Estimate:
    """Estimator ``name`` on S logs at once (every argument has a leading seed axis), one
    compilation (``vmap``); returns an :class:`Estimate` of ``(S,)`` arrays."""
    if name not in _KERNELS:
        _fail("name", f"unknown estimator {name!r}", f"use one of {ESTIMATORS}")
    lam, z = _check_options(name, lambda_, alpha)
    reward, action, pscore, action_dist = (_host(a) for a in
                                           (reward, action, pscore, action_dist))
    if reward.ndim != 2 or action_dist.ndim != 3:
        _fail("reward/action_dist", f"expected (S, n) and (S, n, K+1), got {reward.shape} and "
              f"{action_dist.shape}", "stack one log per seed on a leading axis")
    q = _host(q_hat) if (q_hat is not None and name in _NEEDS_Q) else None
    _validate_shapes(reward[0], action[0], pscore[0], action_dist[0],
                     None if q is None else q[0], name)
    ps = np.asarray(pscore)
    if not np.all(np.isfinite(ps)) or (ps <= 0).any() or (ps > 1).any():
        _fail("pscore", "must lie in (0, 1] in every seed", "fix or drop those rows")
    support = jnp.ones((1, action_dist.shape[2]), bool)

    def one(r, a, p, pi, qh):
        return _estimate_kernel(name, r, a, p, pi, qh, support, lam, z)[:2]

    est, checks = jax.vmap(one)(reward, action, pscore, action_dist, q)
    worst = _Checks(jnp.max(checks.max_row_error), jnp.min(checks.min_prob),
                    jnp.any(checks.nonfinite), jnp.max(checks.unsupported))
    _check_results(worst, q is not None)
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
    reward, action, pscore, action_dist, q_hat = _validate_shapes(
        reward, action, pscore, action_dist, q_hat, name)
    rows, _ = jax.jit(_rows_and_checks)(reward, action, pscore, action_dist,
                                        q_hat if name in _NEEDS_Q else None,
                                        jnp.ones((1, action_dist.shape[1]), bool))
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
