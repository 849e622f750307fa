"""Separate value and cost heads: two independent uplift learners behind one small object.

Value is sparse and heavy-tailed, cost dense and low-variance, so each head has its own learner,
base model and (optional) recalibration. The allocator consumes ``tau_value, tau_cost``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

__all__ = ["Recalibrator", "UpliftHeads", "UpliftLearner"]


class UpliftLearner(Protocol):
    """What a head needs: the meta-learner interface of :mod:`estimators.uplift`."""

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> Any: ...

    def predict_mu(self, x: Any) -> jax.Array: ...

    def predict_tau(self, x: Any) -> jax.Array: ...


class Recalibrator(Protocol):
    """A fitted map from predicted to calibrated uplift (see :mod:`estimators.calibration`)."""

    def transform(self, tau: Any) -> jax.Array: ...


@dataclasses.dataclass
class UpliftHeads:
    """A value head and a cost head, each its own learner (and optional recalibrator).

    ``fit(x, action, value, cost, action_prob, n_actions)`` fits ``value`` on the value label and
    ``cost`` on the cost label; ``predict_tau(x) -> (tau_value, tau_cost)``, each ``(n, K+1)`` with
    column 0 zero; ``predict_mu(x) -> (mu_value, mu_cost)``. A recalibrator, if set, maps the
    offer columns of that head's ``tau`` (column 0 stays 0).
    """

    value: UpliftLearner
    cost: UpliftLearner
    value_recalibration: Recalibrator | None = None
    cost_recalibration: Recalibrator | None = None

    def __post_init__(self) -> None:
        if self.value is self.cost:
            raise ValueError("UpliftHeads: value and cost must be two separate learner objects "
                             "(fitting one would overwrite the other). Fix: construct two, e.g. "
                             "value=TLearner(...), cost=TLearner(...).")

    def fit(self, x: Any, action: Any, value: Any, cost: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> UpliftHeads:
        self.value.fit(x, action, value, action_prob=action_prob, n_actions=n_actions)
        self.cost.fit(x, action, cost, action_prob=action_prob, n_actions=n_actions)
        return self

    @staticmethod
    def _recalibrate(tau: jax.Array, recal: Recalibrator | None) -> jax.Array:
        if recal is None:
            return tau
        offers = jnp.asarray(recal.transform(tau[:, 1:]))
        return jnp.concatenate([jnp.zeros_like(tau[:, :1]), offers], axis=1)

    def predict_tau(self, x: Any) -> tuple[jax.Array, jax.Array]:
        tau_v = self._recalibrate(self.value.predict_tau(x), self.value_recalibration)
        tau_c = self._recalibrate(self.cost.predict_tau(x), self.cost_recalibration)
        return tau_v, tau_c

    def predict_mu(self, x: Any) -> tuple[jax.Array, jax.Array]:
        """Outcome means per action (before recalibration, which acts on uplift only)."""
        return self.value.predict_mu(x), self.cost.predict_mu(x)
