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
one compiled fit through :func:`estimators.crossfit.fit_masked_each` (masks ``1{A=a}`` for the
occurrence, ``1{A=a} 1{y>0}`` for the amount), so any base model works, traceable or not.
Correct when both parts are; the gain over one regression of ``y`` is variance: a squared-loss
fit of ``y`` is dominated by the few large baskets. Labels must be ``>= 0``. An arm
with no positive label has occurrence MLE 0 and gets ``mu_a = 0`` (the no-offer arm of a
redemption cost); the others get both parts.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from estimators.base import BaseModel, Logistic, Ridge
from estimators.checks import fail
from estimators.crossfit import fit_masked_each, predict_stacked
from estimators.precision import float64_methods
from estimators.uplift import (
    _arm_masks,
    _Predictions,
    _SeedBatchFit,
    check_fit_inputs,
    supported_actions,
)

__all__ = ["AMOUNT_MODELS", "HurdleLearner"]

AMOUNT_MODELS = ("log", "constant")


@float64_methods("fit", "fit_batch", "predict_mu", "predict_tau", "predict_parts")
@dataclasses.dataclass
class HurdleLearner(_SeedBatchFit, _Predictions):
    """Two-part T-learner ``mu_a(x) = p_a(x) m_a(x)`` (module docstring)."""

    prob_base: BaseModel = dataclasses.field(default_factory=Logistic)
    amount_base: BaseModel = dataclasses.field(default_factory=Ridge)
    amount: str = "log"
    weight_by_propensity: bool = False
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

    def _check(self, x: Any, action: Any, reward: Any, action_prob: Any | None,
               n_actions: int | None, where: str) -> tuple:
        x, action, reward, action_prob, k1 = check_fit_inputs(
            x, action, reward, action_prob, n_actions, where)
        if np.any(reward < 0):
            fail("reward", f"a hurdle model needs labels >= 0 (zero or a positive amount), got "
                 f"min {reward.min():.4g}", "use a T-learner for signed labels")
        if not np.any(reward > 0):  # every logged row belongs to a supported arm
            fail("reward", "no row has a positive label, so there is nothing to model",
                 "check the label (value or cost) passed to this head")
        return x, action, reward, action_prob, k1

    def _row_weights(self, action: np.ndarray, action_prob: np.ndarray | None,
                     masks: np.ndarray) -> np.ndarray:
        """Per arm, the rows' fit weights: ``1{A=a}``, or with ``weight_by_propensity``
        ``1{A=a} / e_a(x)`` divided by its mean over the arm's rows (so the penalty keeps its
        scale): each arm's fits then target the whole logged population, not the rows its
        logging policy sent to it (the covariate shift of a targeted log)."""
        if not self.weight_by_propensity:
            return masks
        if action_prob is None:
            fail("action_prob", "weight_by_propensity needs the logged propensities",
                 "pass action_prob to fit, or use weight_by_propensity=False")
        e = np.asarray(action_prob, dtype=np.float64)[np.arange(len(action)), action]
        w = masks / np.where(e > 0, e, np.inf)[None, :]
        return w / (w.sum(axis=1, keepdims=True) / masks.sum(axis=1, keepdims=True))

    def _fit_logs(self, logs: list[tuple]) -> list[dict[str, Any]]:
        states, arm_masks, positives = [], [], []
        for x, action, reward, action_prob, k1 in logs:
            sup = supported_actions(action, action_prob, k1)
            masks = self._row_weights(action, action_prob, _arm_masks(action, k1)[sup])
            positive = (reward > 0).astype(np.float64)
            n_pos = (masks * positive).sum(axis=1)
            # An arm without a positive label has occurrence MLE 0, so mu_a = 0 (the no-offer
            # arm of a redemption cost); only arms with positives get models.
            arms = np.flatnonzero(n_pos > 0)
            states.append(dict(amount_arms_=arms, n_actions_=k1, n_features_=x.shape[1],
                               supported_actions_=sup, _count=n_pos[arms]))
            arm_masks.append(masks[arms])
            positives.append(positive)
        xs = [log[0] for log in logs]
        prob = fit_masked_each(self.prob_base, xs, positives, arm_masks)
        amount_masks = [m * p for m, p in zip(arm_masks, positives, strict=True)]
        if self.amount == "log":
            log_y = [np.log(np.where(log[2] > 0, log[2], 1.0)) for log in logs]
            amount = fit_masked_each(self.amount_base, xs, log_y, amount_masks)
        for i, (state, (x, _, reward, _, _)) in enumerate(zip(states, logs, strict=True)):
            count = state.pop("_count")
            state["prob_params_"] = prob[i]
            if self.amount == "log":
                fitted = np.asarray(predict_stacked(self.amount_base, amount[i], x))
                resid = np.exp(log_y[i][:, None] - fitted) * amount_masks[i].T
                state["amount_params_"] = amount[i]
                state["smearing_"] = jnp.asarray(resid.sum(axis=0) / count)
            else:
                state["amount_params_"] = jnp.asarray((amount_masks[i] * reward).sum(axis=1)
                                                      / count)
                state["smearing_"] = None
        return states

    def predict_parts(self, x: Any) -> tuple[jax.Array, jax.Array]:
        """``(p, m)``: occurrence probability and conditional amount of each supported arm,
        ``(n, len(supported_actions_))`` each."""
        x = jnp.asarray(x, dtype=jnp.float64)
        p_fit = predict_stacked(self.prob_base, self.prob_params_, x)
        amount = (predict_stacked(self.amount_base, self.amount_params_, x)
                  if self.amount == "log" else self.amount_params_)
        return _assemble(p_fit, amount, self.smearing_, self.amount,
                         tuple(int(a) for a in self.amount_arms_), len(self.supported_actions_))

    def _mu(self, x: jax.Array) -> jax.Array:
        p, m = self.predict_parts(x)
        return p * m


@functools.partial(jax.jit, static_argnames=("amount", "arms", "n_supported"))
def _assemble(p_fit: jax.Array, amount_fit: jax.Array, smearing: jax.Array | None, amount: str,
              arms: tuple[int, ...], n_supported: int) -> tuple[jax.Array, jax.Array]:
    """``(p, m)`` of :meth:`HurdleLearner.predict_parts` from the fitted arms' predictions in
    one compiled call (arms without a positive label keep ``p = m = 0``)."""
    p_fit = jnp.clip(p_fit, 0.0, 1.0)
    if amount == "log":
        m_fit = jnp.exp(amount_fit) * smearing[None, :]
    else:
        m_fit = jnp.broadcast_to(amount_fit[None, :], p_fit.shape)
    cols = jnp.asarray(arms)
    shape = (p_fit.shape[0], n_supported)
    return (jnp.zeros(shape).at[:, cols].set(p_fit), jnp.zeros(shape).at[:, cols].set(m_fit))
