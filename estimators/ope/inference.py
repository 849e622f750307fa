"""Inference beyond the analytic CI: the percentile bootstrap, paired differences of two policies
on the same log, and the incremental ROI ratio with its delta-method CI."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from estimators.checks import fail
from estimators.ope import passes
from estimators.ope.api import _estimate
from estimators.ope.checks import (
    check_options,
    get_spec,
    raise_on_checks,
    two_sided_z,
    validate_shapes,
    warn_unsupported,
)
from estimators.ope.kernels import Rows
from estimators.ope.records import Estimate
from estimators.ope.registry import REGISTRY
from estimators.precision import float64

__all__ = ["bootstrap", "incremental_roi", "paired_difference", "paired_difference_batch"]


@partial(jax.jit, static_argnames=("name", "n_boot", "batch_size"))
def _bootstrap_draws(name, key, rows: Rows, lambda_, n_boot, batch_size):
    """``n_boot`` resampled estimates: each draws ``n`` rows with replacement (as multiplicities
    ``c``) and recomputes the whole estimator, self-normalisation included."""
    n = rows.r.shape[0]

    def one(k):
        counts = jnp.bincount(jax.random.randint(k, (n,), 0, n), length=n).astype(jnp.float64)
        return REGISTRY[name].kernel(rows, counts, lambda_)[0]

    return jax.lax.map(one, jax.random.split(key, n_boot), batch_size=batch_size)


def _is_key(key) -> bool:
    """A typed PRNG key (``jax.random.key``) or a raw ``uint32 (2,)`` one (``PRNGKey``)."""
    if not isinstance(key, jax.Array):
        return False
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.shape == ()
    return key.dtype == jnp.uint32 and key.shape == (2,)


@float64
def bootstrap(name: str, *, reward, action, pscore, action_dist, q_hat=None, lambda_=None,
              alpha: float = 0.05, logging_dist=None, n_boot: int = 200, key: jax.Array,
              batch_size: int = 8) -> Estimate:
    """Percentile bootstrap CI for estimator ``name``: resample rows with replacement ``n_boot``
    times (from the explicit PRNG ``key``) and recompute the whole estimator on each resample
    (self-normalised estimators are renormalised inside every resample); ``ci_low, ci_high`` are
    the ``alpha/2`` and ``1 - alpha/2`` quantiles of the draws and ``stderr`` their standard
    deviation. ``value`` and the diagnostics are :func:`estimate`'s (with ``logging_dist``, if
    given, for support and its checks)."""
    if n_boot < 20:
        fail("n_boot", f"{n_boot} resamples cannot give a percentile interval",
             "use at least 200")
    if not _is_key(key):
        fail("key", f"expected a PRNG key, got {type(key).__name__}",
             "pass key=jax.random.key(seed); the resamples are random")
    base = _estimate(name, reward=reward, action=action, pscore=pscore, action_dist=action_dist,
                     q_hat=q_hat, lambda_=lambda_, alpha=alpha, logging_dist=logging_dist)
    spec = get_spec(name)
    lam, _ = check_options(spec, lambda_, alpha)
    reward, action, pscore, action_dist, q_hat, _ = validate_shapes(
        reward, action, pscore, action_dist, q_hat, None, spec)
    rows = passes.rows_jit(reward, action, pscore, action_dist,
                           q_hat if spec.needs_q_hat else None)
    draws = np.asarray(_bootstrap_draws(name, key, rows, lam, n_boot, batch_size))
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return base._replace(stderr=float(draws.std(ddof=1)), ci_low=float(lo), ci_high=float(hi))


def _check_baseline(action_dist, baseline_dist, batched: bool) -> None:
    """``baseline_dist`` must have ``action_dist``'s shape (checked first, so a wrong baseline
    is not reported as a bad ``action``)."""
    if np.shape(baseline_dist) != np.shape(action_dist):
        want = "(S, n, K+1)" if batched else "(n, K+1)"
        fail("baseline_dist", f"expected shape {np.shape(action_dist)} like action_dist {want}, "
             f"got {np.shape(baseline_dist)}", "pass the baseline policy's distribution over "
             "all K+1 actions per row (column 0 = no offer)")


@float64
def paired_difference(name: str, *, reward, action, pscore, action_dist, baseline_dist,
                      q_hat=None, lambda_=None, alpha: float = 0.05) -> Estimate:
    """``V(pi) - V(pi_baseline)`` on the same log (new vs incumbent), with the CI of the paired
    influence terms ``phi_i(pi) - phi_i(pi_baseline)`` (tighter than two separate CIs)."""
    _check_baseline(action_dist, baseline_dist, batched=False)
    kw = dict(reward=reward, action=action, pscore=pscore, q_hat=q_hat, lambda_=lambda_,
              alpha=alpha, return_influence=True)
    new, phi_new = _estimate(name, action_dist=action_dist, **kw)
    old, phi_old = _estimate(name, action_dist=baseline_dist, **kw)
    return _linear_estimate(new.value - old.value, phi_new - phi_old, alpha, new)


@float64
def paired_difference_batch(name: str, *, reward, action, pscore, action_dist, baseline_dist,
                            q_hat=None, lambda_=None, alpha: float = 0.05) -> Estimate:
    """:func:`paired_difference` on S logs at once (leading seed axis on every argument, as in
    :func:`~estimators.ope.api.estimate_batch`): the ``jax.vmap`` of the same pass, one
    compilation; an :class:`Estimate` of ``(S,)`` arrays. Both policies are validated per seed."""
    spec = get_spec(name)
    lam, z = check_options(spec, lambda_, alpha)
    _check_baseline(action_dist, baseline_dist, batched=True)
    checked = []
    for dist in (action_dist, baseline_dist):
        checked.append(validate_shapes(reward, action, pscore, dist, q_hat, None, spec,
                                       batched=True))
    (reward, action, pscore, action_dist, q_hat, _), (_, _, _, baseline_dist, _, _) = checked
    q = q_hat if spec.needs_q_hat else None
    est, fl_new, fl_old = jax.device_get(passes.paired_batch(
        name, reward, action, pscore, action_dist, baseline_dist, q, lam, z))
    k1 = action_dist.shape[-1]
    for dist, flags in ((action_dist, fl_new), (baseline_dist, fl_old)):
        if np.any(flags.defects):
            raise_on_checks(passes.locate(reward, action, pscore, dist, q, None, batched=True),
                            k1, batched=True)
    warn_unsupported(np.maximum(fl_new.unsupported, fl_old.unsupported), batched=True)
    return Estimate(*(np.asarray(v) for v in est))


@float64
def incremental_roi(name: str, *, value_reward, cost_reward, action, pscore, action_dist,
                    baseline_dist, q_hat_value=None, q_hat_cost=None, lambda_=None,
                    alpha: float = 0.05) -> Estimate:
    """Incremental ROI ``R = (V(pi) - V(pi_0)) / (C(pi) - C(pi_0))`` with a delta-method CI:
    ``phi_R = (phi_dV - R phi_dC) / dC``. Needs a cost difference clearly away from zero
    (more than 3 standard errors)."""
    common = dict(action=action, pscore=pscore, lambda_=lambda_, alpha=alpha,
                  return_influence=True)
    v1, pv1 = _estimate(name, reward=value_reward, action_dist=action_dist, q_hat=q_hat_value,
                        **common)
    v0, pv0 = _estimate(name, reward=value_reward, action_dist=baseline_dist, q_hat=q_hat_value,
                        **common)
    c1, pc1 = _estimate(name, reward=cost_reward, action_dist=action_dist, q_hat=q_hat_cost,
                        **common)
    c0, pc0 = _estimate(name, reward=cost_reward, action_dist=baseline_dist, q_hat=q_hat_cost,
                        **common)
    d_v, d_c = v1.value - v0.value, c1.value - c0.value
    phi_dc = pc1 - pc0
    se_dc = phi_dc.std(ddof=1) / np.sqrt(len(phi_dc))
    if abs(d_c) < 3 * se_dc or d_c == 0:
        fail("cost_reward", f"the incremental cost {d_c:.4g} is within 3 standard errors "
             f"({se_dc:.3g}) of zero, so the ratio is undefined", "compare policies whose "
             "costs differ, or report the value difference instead")
    ratio = d_v / d_c
    phi = ((pv1 - pv0) - ratio * phi_dc) / d_c
    return _linear_estimate(ratio, phi, alpha, v1)


def _linear_estimate(value: float, phi: np.ndarray, alpha: float, like: Estimate) -> Estimate:
    """``value`` with the analytic CI of the linear influence terms ``phi`` (diagnostics of
    ``like``)."""
    n = len(phi)
    se = float(np.std(phi, ddof=1) / np.sqrt(n))
    z = two_sided_z(float(alpha))
    return like._replace(value=float(value), stderr=se, ci_low=float(value) - z * se,
                         ci_high=float(value) + z * se)
