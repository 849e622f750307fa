r"""The stable-proxy value head: a two-part (hurdle) T-learner for sparse, heavy-tailed labels.

The design notes' advice for value that is zero for most users and heavy-tailed otherwise
(purchase x basket) is to model the stable parts separately: per action ``a``,

    mu_a(x) = P(y > 0 | x, a) * E[y | y > 0, x, a],

with the occurrence ``p_a(x)`` a probability model of ``1{y > 0}`` and the amount ``m_a(x)`` a
model of the positive labels. Amount models (``amount``):

* ``"log"``: a regression ``g_a`` of ``log y`` on ``x`` over the positive rows of arm ``a``, and
  Duan's (1983) smearing estimate ``m_a(x) = exp(g_a(x)) * mean_{i: A_i=a, y_i>0}
  exp(log y_i - g_a(x_i))`` (no lognormality assumed; exact when the log-scale residual is
  independent of ``x``);
* ``"constant"``: ``m_a = mean_{i: A_i=a, y_i>0} y_i`` (a redemption cost: the face value).

``tau(x, a) = mu_a(x) - mu_0(x)``. The occurrence model is the fitted probability of
``prob_base`` (a :class:`~estimators.base.Logistic` by default) on 0/1 labels. Per-arm fits share
one compiled fit through :func:`estimators.crossfit.fit_masked` (masks ``1{A=a}`` for the
occurrence, ``1{A=a} 1{y>0}`` for the amount), so any base model works, traceable or not.
Correct when both parts are; the gain over one regression of ``y`` is variance: a squared-loss
fit of ``y`` is dominated by the few large baskets. Labels must be ``>= 0``. An arm
with no positive label has occurrence MLE 0 and gets ``mu_a = 0`` (the no-offer arm of a
redemption cost); the others get both parts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from estimators.base import BaseModel, Logistic, Ridge
from estimators.checks import fail
from estimators.crossfit import fit_masked, predict_stacked
from estimators.precision import float64_methods
from estimators.uplift import _arm_masks, _Predictions, check_fit_inputs, supported_actions

__all__ = ["AMOUNT_MODELS", "HurdleLearner"]

AMOUNT_MODELS = ("log", "constant")


@float64_methods("fit", "predict_mu", "predict_tau", "predict_parts")
@dataclasses.dataclass
class HurdleLearner(_Predictions):
    """Two-part T-learner ``mu_a(x) = p_a(x) m_a(x)`` (module docstring)."""

    prob_base: BaseModel = dataclasses.field(default_factory=Logistic)
    amount_base: BaseModel = dataclasses.field(default_factory=Ridge)
    amount: str = "log"
    prob_params_: Any = dataclasses.field(default=None, repr=False)
    amount_params_: Any = dataclasses.field(default=None, repr=False)
    smearing_: Any = dataclasses.field(default=None, repr=False)
    amount_arms_: np.ndarray | None = dataclasses.field(default=None, repr=False)
    n_actions_: int | None = dataclasses.field(default=None, repr=False)
    n_features_: int | None = dataclasses.field(default=None, repr=False)
    supported_actions_: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.amount not in AMOUNT_MODELS:
            fail("HurdleLearner.amount", f"unknown amount model {self.amount!r}",
                 f"use one of {list(AMOUNT_MODELS)}")

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> HurdleLearner:
        x, action, reward, action_prob, k1 = check_fit_inputs(
            x, action, reward, action_prob, n_actions, "HurdleLearner.fit")
        if np.any(reward < 0):
            fail("reward", f"a hurdle model needs labels >= 0 (zero or a positive amount), got "
                 f"min {reward.min():.4g}", "use a T-learner for signed labels")
        sup = supported_actions(action, action_prob, k1)
        masks = _arm_masks(action, k1)[sup]
        positive = (reward > 0).astype(np.float64)
        n_pos = (masks * positive).sum(axis=1)
        if not np.any(n_pos > 0):
            fail("reward", "no row has a positive label, so there is nothing to model",
                 "check the label (value or cost) passed to this head")
        # An arm without a positive label has occurrence MLE 0, so mu_a = 0 (the no-offer arm
        # of a redemption cost); only arms with positives get models.
        self.amount_arms_ = np.flatnonzero(n_pos > 0)
        arm_masks = masks[self.amount_arms_]
        self.prob_params_ = fit_masked(self.prob_base, x, positive, arm_masks)
        amount_masks = arm_masks * positive
        count = n_pos[self.amount_arms_]
        if self.amount == "log":
            log_y = np.log(np.where(reward > 0, reward, 1.0))
            self.amount_params_ = fit_masked(self.amount_base, x, log_y, amount_masks)
            fitted = np.asarray(predict_stacked(self.amount_base, self.amount_params_, x))
            resid = np.exp(log_y[:, None] - fitted) * amount_masks.T
            self.smearing_ = jnp.asarray(resid.sum(axis=0) / count)
        else:
            self.amount_params_ = jnp.asarray((amount_masks * reward).sum(axis=1) / count)
        self.n_actions_, self.n_features_, self.supported_actions_ = k1, x.shape[1], sup
        return self

    def predict_parts(self, x: Any) -> tuple[jax.Array, jax.Array]:
        """``(p, m)``: occurrence probability and conditional amount of each supported arm,
        ``(n, len(supported_actions_))`` each."""
        x = jnp.asarray(x, dtype=jnp.float64)
        p_fit = jnp.clip(predict_stacked(self.prob_base, self.prob_params_, x), 0.0, 1.0)
        if self.amount == "log":
            g = predict_stacked(self.amount_base, self.amount_params_, x)
            m_fit = jnp.exp(g) * self.smearing_[None, :]
        else:
            m_fit = jnp.broadcast_to(self.amount_params_[None, :], p_fit.shape)
        shape = (x.shape[0], len(self.supported_actions_))
        p = jnp.zeros(shape).at[:, self.amount_arms_].set(p_fit)
        m = jnp.zeros(shape).at[:, self.amount_arms_].set(m_fit)
        return p, m

    def _mu(self, x: jax.Array) -> jax.Array:
        p, m = self.predict_parts(x)
        return p * m
