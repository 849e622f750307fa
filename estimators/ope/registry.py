"""The estimators by name: for each, its per-row influence kernel, what it needs, and its formula
and assumption (the docstring of the public function of that name).

``REGISTRY[name]`` is an :class:`EstimatorSpec`; :data:`ESTIMATORS` lists the names in a fixed
order, :data:`NEEDS_Q_HAT` those that need an outcome model ``q_hat`` and :data:`NEEDS_LAMBDA`
those that need a ``lambda_`` (a weight threshold or shrinkage strength). Suites and configs read
these instead of re-typing the sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import jax

from estimators.ope import kernels
from estimators.ope.kernels import Rows

__all__ = ["ESTIMATORS", "NEEDS_LAMBDA", "NEEDS_Q_HAT", "REGISTRY", "EstimatorSpec"]

Kernel = Callable[[Rows, jax.Array, float], tuple[jax.Array, jax.Array]]


class EstimatorSpec(NamedTuple):
    """One estimator: ``kernel(rows, c, lambda_) -> (value, phi)`` (see
    :mod:`estimators.ope.kernels`), whether it needs ``q_hat`` and ``lambda_``, and ``summary``:
    its formula and assumption (the docstring of ``estimators.ope.<name>``)."""

    name: str
    kernel: Kernel
    needs_q_hat: bool
    needs_lambda: bool
    summary: str


_SPECS = (
    EstimatorSpec("dm", kernels.phi_dm, True, False,
                  """Direct method: ``V = mean_i dm_i = mean_i sum_a pi(a|x_i) q_hat[i, a]``.

Assumption: ``q_hat`` is a correct model of ``E[reward | x, a]`` on the actions ``pi`` takes
(its bias is the model's bias). Uses no propensities, so needs no overlap; the CI reflects only
the sampling of ``x`` and ignores the model's error. Needs ``q_hat``."""),
    EstimatorSpec("ips", kernels.phi_ips, False, False,
                  """Inverse propensity scoring: ``V = mean_i w_i r_i``.

Assumption: ``pscore`` is the true logging probability of the logged action and the logger
supports every action ``pi`` takes (overlap: ``pi(a|x) > 0 => pi_0(a|x) > 0``); then unbiased.
Variance grows with the weights (see ``ess`` and ``max_weight``)."""),
    EstimatorSpec("snips", kernels.phi_snips, False, False,
                  """Self-normalised IPS: ``V = sum_i w_i r_i / sum_i w_i``.

Assumption: as IPS (true ``pscore``, overlap); then consistent with bias ``O(1/n)``, and the
estimate always lies within the reward range. Delta-method influence
``phi_i = V + w_i (r_i - V) / mean(w)``."""),
    EstimatorSpec("clipped_ips", kernels.phi_clipped_ips, False, True,
                  """Clipped IPS: ``V = mean_i min(w_i, lambda_) r_i``.

Assumption: as IPS (true ``pscore``, overlap). Unbiased only if every ``w_i <= lambda_``;
otherwise biased (towards zero for non-negative rewards) in exchange for lower variance.
Needs ``lambda_ > 0`` (the weight cap)."""),
    EstimatorSpec("dr", kernels.phi_dr, True, False,
                  """Doubly robust: ``V = mean_i [dm_i + w_i (r_i - q_i)]``.

Assumption: either the propensities are true (with overlap; then unbiased for any ``q_hat`` that
does not depend on row ``i``'s own reward, e.g. cross-fitted) or ``q_hat`` is correct. Needs
``q_hat``."""),
    EstimatorSpec("sndr", kernels.phi_sndr, True, False,
                  """Self-normalised doubly robust:
``V = mean_i dm_i + sum_i w_i (r_i - q_i) / sum_i w_i``.

Assumption: as DR (true propensities with overlap, or a correct ``q_hat``); then consistent with
bias ``O(1/n)``, and the correction term is bounded by the range of the residuals ``r - q``.
Needs ``q_hat``."""),
    EstimatorSpec("switch_dr", kernels.phi_switch_dr, True, True,
                  """Switch doubly robust (Wang et al., 2017):
``V = mean_i [dm_i + 1{w_i <= lambda_} w_i (r_i - q_i)]``: DR where ``w_i <= lambda_``, DM where
the weights explode.

Assumption: true propensities with overlap on rows with ``w <= lambda_``, and a correct ``q_hat``
wherever ``w > lambda_`` (its bias is ``E[1{w > lambda_} w (r - q)]``). ``lambda_ -> inf`` gives
DR, ``lambda_ -> 0`` DM. Needs ``q_hat`` and ``lambda_ > 0``."""),
    EstimatorSpec("dr_os", kernels.phi_dr_os, True, True,
                  """Doubly robust with optimistic shrinkage (Su et al., 2020):
``V = mean_i [dm_i + w~_i (r_i - q_i)]`` with ``w~ = lambda_ w / (w^2 + lambda_)``.

Assumption: unbiased if ``q_hat`` is correct; with true propensities (and overlap) its bias is
``E[(w~ - w)(r - q)]``, small when ``q_hat`` is good or ``lambda_`` large (``lambda_ -> inf`` is
DR, ``lambda_ -> 0`` is DM). Needs ``q_hat`` and ``lambda_ > 0``."""),
)

REGISTRY: Mapping[str, EstimatorSpec] = MappingProxyType({s.name: s for s in _SPECS})
ESTIMATORS: tuple[str, ...] = tuple(REGISTRY)
NEEDS_Q_HAT: frozenset[str] = frozenset(s.name for s in _SPECS if s.needs_q_hat)
NEEDS_LAMBDA: frozenset[str] = frozenset(s.name for s in _SPECS if s.needs_lambda)
