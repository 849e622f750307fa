"""Serving a fitted policy: heads -> budgeted allocation -> exploration -> the logged distribution.

A *policy* in the loop is a :class:`FittedPolicy`: fitted heads (anything with
``predict_tau(x) -> (tau_value, tau_cost)``, optionally ``predict_tau_draws``) and the serving
transform of its features (identity, or the candidate's skewed feature pipeline). It is served by
an *allocator* ``allocator(tau_value, tau_cost, budget, eligible) -> action_dist`` (default: the
exact budgeted allocation :func:`policies.allocation.allocate`).

Exploration-aware allocation (``epsilon`` and ``floor``): the deployed row is the mixture
``p_i = (1 - w_i) pi_i + w_i u_i`` with ``u_i`` uniform over the eligible actions (``w_i =
epsilon``, or ``w_i = m_i floor`` for a floor on ``m_i`` eligible actions, which is the same
mixture as :func:`policies.exploration.propensity_floor`). Its expected cost is
``sum_i (1 - w_i) c_i(pi_i) + sum_i w_i c_i(u_i)``, so allocating ``(1 - w_i) tau`` under the
budget ``B - sum_i w_i c_i(u_i)`` meets ``B`` exactly under the heads and maximises the
mixture's value (the same multiple-choice knapsack with rescaled rows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from estimators.checks import fail
from experiments.loop.config import ExplorationConfig
from policies.allocation import allocate
from policies.exploration import epsilon_mix, propensity_floor

__all__ = ["Allocator", "FittedPolicy", "budgeted_allocator", "serve"]

Allocator = Callable[[np.ndarray, np.ndarray, float, np.ndarray], np.ndarray]


def budgeted_allocator(tau_value: np.ndarray, tau_cost: np.ndarray, budget: float,
                       eligible: np.ndarray) -> np.ndarray:
    """The default allocator: :func:`policies.allocation.allocate`'s action distribution."""
    return np.asarray(allocate(tau_value, tau_cost, budget=max(budget, 0.0),
                               eligible=eligible).action_dist)


@dataclasses.dataclass
class FittedPolicy:
    """Fitted heads, an id, the round whose log trained it and its serving feature shift.

    ``draws``: optional list of further fitted heads (a bootstrap ensemble) for Thompson
    exploration when the heads have no ``predict_tau_draws``. ``serving_cost_scale``: the cost
    predictions are multiplied by it at serving (a cost-pipeline bug; 1 = none)."""

    heads: Any
    policy_id: int
    trained_at: int
    serving_shift: float = 0.0
    draws: list[Any] | None = None
    serving_cost_scale: float = 1.0

    def offline(self) -> FittedPolicy:
        """The same heads behind the training pipeline (what an offline evaluation on the logs'
        features sees): no serving skew of the features or of the cost predictions."""
        return dataclasses.replace(self, serving_shift=0.0, serving_cost_scale=1.0)

    def features(self, x: np.ndarray) -> np.ndarray:
        """The features this policy sees at serving time: with a skew ``s``, features 0 and 1
        (the effect modifiers of the default world) are served as ``(1 - 2 s) x`` (``s = 0.5``:
        missing at serving and filled with 0; ``s = 1``: sign flipped by a units bug)."""
        if self.serving_shift == 0.0:
            return x
        out = np.array(x, dtype=np.float64, copy=True)
        out[:, :2] *= 1.0 - 2.0 * self.serving_shift
        return out

    def tau(self, x: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tv, tc = self.heads.predict_tau(self.features(x))
        return (_masked(np.asarray(tv), eligible),
                _masked(np.asarray(tc) * self.serving_cost_scale, eligible))

    def tau_draws(self, x: np.ndarray, eligible: np.ndarray,
                  n_draws: int) -> tuple[np.ndarray, np.ndarray]:
        z = self.features(x)
        value, cost = getattr(self.heads, "value", None), getattr(self.heads, "cost", None)
        if all(hasattr(h, "predict_tau_draws") for h in (value, cost)):
            dv = np.asarray(value.predict_tau_draws(z))
            dc = np.asarray(cost.predict_tau_draws(z))
            idx = np.linspace(0, min(len(dv), len(dc)) - 1, n_draws).round().astype(int)
            return (_masked(dv[idx], eligible),
                    _masked(dc[idx] * self.serving_cost_scale, eligible))
        if not self.draws:
            fail("exploration.kind", "thompson needs posterior draws: heads with "
                 "predict_tau_draws or a bootstrap ensemble (FittedPolicy.draws)",
                 "use the loop's fitting (it builds the ensemble) or exploration.kind=floor")
        taus = [h.predict_tau(z) for h in self.draws[:n_draws]]
        return (_masked(np.stack([np.asarray(t[0]) for t in taus]), eligible),
                _masked(np.stack([np.asarray(t[1]) for t in taus]) * self.serving_cost_scale,
                        eligible))


def _masked(tau: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    out = np.where(eligible, tau, 0.0)
    out[..., 0] = 0.0
    return out


def _uniform(eligible: np.ndarray) -> np.ndarray:
    return eligible / eligible.sum(axis=1, keepdims=True)


def serve(policy: FittedPolicy, x: np.ndarray, eligible: np.ndarray, *, budget: float,
          exploration: ExplorationConfig, allocator: Allocator = budgeted_allocator
          ) -> tuple[np.ndarray, np.ndarray]:
    """``(deployed, target)``: the deployed distribution (with exploration; rows sum to 1, zero
    where ineligible) and the exploitation target it explores around, both ``(n, K+1)``, for a
    total expected budget ``budget`` over the ``n`` users."""
    eligible = np.asarray(eligible, dtype=bool)
    if exploration.kind == "thompson":
        dv, dc = policy.tau_draws(x, eligible, exploration.n_draws)
        dists = [allocator(dv[s], dc[s], budget, eligible) for s in range(len(dv))]
        deployed = np.mean(dists, axis=0)
        tv, tc = policy.tau(x, eligible)
        return _renormalised(deployed, eligible), allocator(tv, tc, budget, eligible)
    tv, tc = policy.tau(x, eligible)
    target = allocator(tv, tc, budget, eligible)
    if exploration.kind == "none":
        return target, target
    m = eligible.sum(axis=1)
    w = (np.full(len(m), exploration.epsilon) if exploration.kind == "epsilon"
         else np.minimum(exploration.floor * m, 1.0))
    u = _uniform(eligible)
    explore_cost = float(np.sum(w * np.sum(u * tc, axis=1)))
    scaled = allocator(tv * (1 - w)[:, None], tc * (1 - w)[:, None], budget - explore_cost,
                       eligible)
    deployed = (epsilon_mix(scaled, eligible, epsilon=exploration.epsilon)
                if exploration.kind == "epsilon"
                else propensity_floor(scaled, eligible, floor=exploration.floor))
    return _renormalised(np.asarray(deployed), eligible), target


def _renormalised(p: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    p = np.where(eligible, np.clip(p, 0.0, None), 0.0)
    return p / p.sum(axis=1, keepdims=True)

