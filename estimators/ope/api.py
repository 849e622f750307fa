"""The public estimators: :func:`estimate` (one log), :func:`estimate_batch` (S logs, one
compiled ``vmap`` of the same pass) and one function per estimator name with OBP's argument names
(``reward, action, pscore, action_dist, q_hat``). Every one runs in float64 (:func:`float64`)
whatever the caller's ``jax_enable_x64``."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from estimators.ope import passes
from estimators.ope.checks import (
    check_finite_result,
    check_options,
    get_spec,
    raise_on_checks,
    validate_shapes,
    warn_unsupported,
)
from estimators.ope.records import Estimate
from estimators.ope.registry import REGISTRY
from estimators.precision import float64

__all__ = ["clipped_ips", "dm", "dr", "dr_os", "estimate", "estimate_batch", "ips", "sndr",
           "snips", "switch_dr"]


def _estimate(name: str, *, reward, action, pscore, action_dist, q_hat=None, lambda_=None,
              alpha: float = 0.05, logging_dist=None, return_influence: bool = False,
              stacklevel: int = 5):
    """:func:`estimate` without the float64 wrapper (callers inside this package hold it);
    ``stacklevel`` points the unsupported-mass warning at the user's call."""
    spec = get_spec(name)
    lam, z = check_options(spec, lambda_, alpha)
    reward, action, pscore, action_dist, q_hat, logging_dist = validate_shapes(
        reward, action, pscore, action_dist, q_hat, logging_dist, spec)
    n, k1 = action_dist.shape
    q = q_hat if spec.needs_q_hat else None
    on_host = not isinstance(action_dist, jax.Array) and (q is None or
                                                           not isinstance(q, jax.Array))
    chunked = on_host and n > 4 * passes.CHUNK_ROWS
    run = passes.evaluate_chunked if chunked else passes.evaluate_jit
    est, flags, phi = run(name, reward, action, pscore, action_dist, q, logging_dist, lam, z)
    est, flags, phi = jax.device_get((est, flags, phi if return_influence else None))
    if flags.defects:
        raise_on_checks(passes.locate(reward, action, pscore, action_dist, q, logging_dist,
                                      chunked=chunked), k1)
    warn_unsupported(flags.unsupported, stacklevel=stacklevel)
    check_finite_result(est.value, est.stderr, pscore)
    est = Estimate(*(float(v) if i != 4 else int(v) for i, v in enumerate(est)))
    return (est, np.asarray(phi)) if return_influence else est


@float64
def estimate(name: str, *, reward, action, pscore, action_dist, q_hat=None, lambda_=None,
             alpha: float = 0.05, logging_dist=None, return_influence: bool = False):
    """Run estimator ``name`` (one of :data:`ESTIMATORS`) with an analytic ``1 - alpha`` CI.

    ``logging_dist (n, K+1)``, if given, must be a distribution per row with
    ``logging_dist[i, action_i] = pscore_i > 0``; it defines per-row support. With
    ``return_influence`` also returns the per-row influence terms ``phi (n,)``. NumPy inputs of
    more than ``4 * CHUNK_ROWS`` rows are reduced chunk by chunk (same numbers)."""
    return _estimate(name, reward=reward, action=action, pscore=pscore,
                     action_dist=action_dist, q_hat=q_hat, lambda_=lambda_, alpha=alpha,
                     logging_dist=logging_dist, return_influence=return_influence)


@float64
def estimate_batch(name: str, *, reward, action, pscore, action_dist, q_hat=None, lambda_=None,
                   alpha: float = 0.05, logging_dist=None) -> Estimate:
    """Estimator ``name`` on S logs at once (every argument has a leading seed axis:
    ``reward, action, pscore (S, n)``, ``action_dist, q_hat, logging_dist (S, n, K+1)``): the
    ``jax.vmap`` of :func:`estimate`'s pass, one compilation and one device-to-host transfer;
    returns an :class:`Estimate` of ``(S,)`` arrays.

    Every seed is validated inside the vmapped pass (action range, pscore, finiteness, row sums
    and the ``logging_dist`` checks); an error names the first bad seed and its row. Support is
    per seed: ``logging_dist > 0`` if given, else the actions present in that seed's log;
    ``unsupported_mass`` is reported per seed and warned when any is positive."""
    spec = get_spec(name)
    lam, z = check_options(spec, lambda_, alpha)
    reward, action, pscore, action_dist, q_hat, logging_dist = validate_shapes(
        reward, action, pscore, action_dist, q_hat, logging_dist, spec, batched=True)
    q = q_hat if spec.needs_q_hat else None
    est, flags = jax.device_get(passes.evaluate_batch(
        name, reward, action, pscore, action_dist, q, logging_dist, lam, z))
    if np.any(flags.defects):
        raise_on_checks(passes.locate(reward, action, pscore, action_dist, q, logging_dist,
                                      batched=True), action_dist.shape[-1], batched=True)
    warn_unsupported(flags.unsupported, batched=True)
    check_finite_result(est.value, est.stderr, pscore, batched=True)
    return Estimate(*(np.asarray(v) for v in est))


_COMMON_DOC = """

Arguments (OBP's names, keyword-only): ``reward (n,)``, ``action (n,)`` in ``0..K``,
``pscore (n,)`` = ``pi_0(a_i|x_i)``, ``action_dist (n, K+1)`` = ``pi(.|x_i)``, ``q_hat (n, K+1)``,
``lambda_``, ``alpha`` (analytic ``1 - alpha`` CI) and optional ``logging_dist (n, K+1)`` (per-row
support, checked against ``pscore``); see :func:`estimate`. Notation: ``w_i = pi(a_i|x_i) /
pscore_i``, ``q_i = q_hat[i, a_i]``, ``dm_i = sum_a pi(a|x_i) q_hat[i, a]``. Returns an
:class:`Estimate`."""


def _named(name: str) -> Callable[..., Estimate]:
    def fn(*, reward, action, pscore, action_dist, q_hat=None, lambda_=None, alpha=0.05,
           logging_dist=None) -> Estimate:
        return _estimate(name, reward=reward, action=action, pscore=pscore,
                         action_dist=action_dist, q_hat=q_hat, lambda_=lambda_, alpha=alpha,
                         logging_dist=logging_dist)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = REGISTRY[name].summary + _COMMON_DOC
    return float64(fn)


dm = _named("dm")
ips = _named("ips")
snips = _named("snips")
clipped_ips = _named("clipped_ips")
dr = _named("dr")
sndr = _named("sndr")
switch_dr = _named("switch_dr")
dr_os = _named("dr_os")
