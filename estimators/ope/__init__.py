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

Sums accumulate in float64: every public function runs under
:func:`estimators.precision.float64` (a call-local ``jax.enable_x64``), whatever the caller's
setting. The data checks (action range, pscore, finiteness, row sums, ``logging_dist`` against
``pscore``) run inside the same jitted pass as the estimate and raise a ``ValueError`` naming the
one argument at fault, with its seed and row.

Modules, one job each: :mod:`~estimators.ope.registry` (names, kernels, needs, formulas),
:mod:`~estimators.ope.kernels` (per-row terms and influence kernels),
:mod:`~estimators.ope.checks` (host shape checks, in-jit data checks, the errors),
:mod:`~estimators.ope.passes` (the jitted pass, its ``vmap`` over seeds, row chunking of large
host inputs), :mod:`~estimators.ope.api` (:func:`estimate`, :func:`estimate_batch`, the named
estimators), :mod:`~estimators.ope.inference` (:func:`bootstrap`, :func:`paired_difference`,
:func:`incremental_roi`).
"""

from __future__ import annotations

from estimators.ope.api import (
    clipped_ips,
    dm,
    dr,
    dr_os,
    estimate,
    estimate_batch,
    ips,
    sndr,
    snips,
    switch_dr,
)
from estimators.ope.inference import (
    bootstrap,
    incremental_roi,
    paired_difference,
    paired_difference_batch,
)
from estimators.ope.passes import CHUNK_ROWS
from estimators.ope.records import Estimate, UnsupportedActionWarning
from estimators.ope.registry import (
    ESTIMATORS,
    NEEDS_LAMBDA,
    NEEDS_Q_HAT,
    REGISTRY,
    EstimatorSpec,
)

__all__ = [
    "CHUNK_ROWS",
    "ESTIMATORS",
    "NEEDS_LAMBDA",
    "NEEDS_Q_HAT",
    "REGISTRY",
    "Estimate",
    "EstimatorSpec",
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
    "paired_difference_batch",
    "sndr",
    "snips",
    "switch_dr",
]
