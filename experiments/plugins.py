"""Bring your own estimator: the protocols a plug-in satisfies, and adapters for EconML and OBP.

A plug-in is any importable object named by a Hydra ``_target_`` (``{"_target_":
"my_pkg.MyLearner", ...kwargs}``), so nothing needs to live inside allocbench:

- an **uplift learner**: ``fit(x, action, reward, action_prob=None, n_actions=None)`` and
  ``predict_tau(x) -> (n, K+1)`` with column 0 zero (:class:`UpliftLearner`); EconML CATE
  estimators are wrapped by :class:`EconMLLearner` automatically;
- an **OPE function** with OBP's argument names ``(*, reward, action, pscore, action_dist,
  q_hat=None) -> Estimate-like`` (anything with ``value``), or an object with OBP's
  ``estimate_policy_value(reward, action, pscore, action_dist, ...)`` method, wrapped by
  :class:`OBPEstimator` (duck-typed: OBP itself need not be installed);
- an **allocator** ``(tau_value, tau_cost, *, budget, eligible=None) -> Allocation``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from estimators.heads import UpliftLearner

__all__ = ["Allocator", "EconMLLearner", "OBPEstimator", "UpliftLearner", "as_learner",
           "as_ope", "instantiate"]


class Allocator(Protocol):
    def __call__(self, tau_value: Any, tau_cost: Any, *, budget: float,
                 eligible: Any | None = None) -> Any: ...


class EconMLLearner:
    """Adapter: an EconML CATE estimator (``fit(Y, T, X=...)``, ``effect(X, T0=, T1=)``) as an
    allocbench multi-action learner. Actions are passed as discrete treatments (0 = control);
    ``predict_tau[:, a] = effect(X, T0=0, T1=a)``. EconML estimates its own propensities unless
    the estimator is configured otherwise (our logged ``action_prob`` is not passed)."""

    def __init__(self, estimator: Any) -> None:
        if not (hasattr(estimator, "fit") and hasattr(estimator, "effect")):
            raise ValueError("estimator: an EconML-style object needs fit(Y, T, X=...) and "
                             "effect(X, T0=, T1=). Fix: pass an EconML CATE estimator.")
        self.estimator = estimator
        self.n_actions_: int | None = None

    def fit(self, x, action, reward, action_prob=None, n_actions=None) -> EconMLLearner:
        action = np.asarray(action)
        self.n_actions_ = int(n_actions or action.max() + 1)
        self.estimator.fit(np.asarray(reward, float), action, X=np.asarray(x, float))
        return self

    def predict_tau(self, x) -> np.ndarray:
        if self.n_actions_ is None:
            raise ValueError("EconMLLearner.predict_tau: call fit first.")
        x = np.asarray(x, float)
        tau = np.zeros((len(x), self.n_actions_))
        for a in range(1, self.n_actions_):
            tau[:, a] = np.ravel(self.estimator.effect(x, T0=0, T1=a))
        return tau


class OBPEstimator:
    """Adapter: an object with OBP's ``estimate_policy_value(reward, action, pscore, action_dist,
    ...)`` as an allocbench OPE function. OBP's ``action_dist`` has shape (n, K+1, len_list); we add
    the list axis. ``estimate_interval`` (if present) supplies the CI."""

    def __init__(self, estimator: Any) -> None:
        if not hasattr(estimator, "estimate_policy_value"):
            raise ValueError("estimator: needs an estimate_policy_value(reward, action, pscore, "
                             "action_dist, ...) method (OBP's interface).")
        self.estimator = estimator

    def __call__(self, *, reward, action, pscore, action_dist, q_hat=None, **_: Any):
        from estimators.ope import Estimate

        kw = dict(reward=np.asarray(reward), action=np.asarray(action),
                  pscore=np.asarray(pscore), action_dist=np.asarray(action_dist)[:, :, None])
        if q_hat is not None:
            kw["estimated_rewards_by_reg_model"] = np.asarray(q_hat)[:, :, None]
        value = float(self.estimator.estimate_policy_value(**kw))
        low = high = np.nan
        if hasattr(self.estimator, "estimate_interval"):
            ci = self.estimator.estimate_interval(**kw)
            low, high = float(ci["95.0% CI (lower)"]), float(ci["95.0% CI (upper)"])
        return Estimate(value, np.nan, low, high, len(kw["reward"]), np.nan, np.nan, np.nan)


def instantiate(spec: Any) -> Any:
    """Hydra-instantiate a ``{"_target_": ...}`` spec (dict or DictConfig); other values pass."""
    from hydra.utils import instantiate as hydra_instantiate

    if isinstance(spec, dict) or hasattr(spec, "_target_") or (
            hasattr(spec, "keys") and "_target_" in spec):
        if "_target_" not in spec:
            raise ValueError("spec: a plug-in spec needs a '_target_' (dotted path of a class or "
                             "function). Fix: {'_target_': 'my_module.MyLearner'}.")
        spec = dict(spec)
        if "_partial_" not in spec and _is_function(spec["_target_"]):
            spec["_partial_"] = True  # a function plug-in is called later with the data
        return hydra_instantiate(spec, _convert_="all")
    return spec


def _is_function(target: str) -> bool:
    """Whether ``target`` names a plain function (instantiating it would call it now, with no
    data); unimportable targets are left to Hydra's own error."""
    import inspect

    from hydra.utils import get_object

    try:
        obj = get_object(target)
    except Exception:
        return False
    return inspect.isfunction(obj) or inspect.isbuiltin(obj)


def predict_effects(learner: Any, x: Any, n_actions: int, head: str) -> np.ndarray:
    """A plug-in learner's ``predict_tau(x)`` checked against the protocol: ``(n, K+1)``
    float64 with column 0 (no offer) zero; a wrong shape is a ``ValueError`` that names the
    learner and the expected shape (not a downstream allocator complaint)."""
    tau = np.asarray(learner.predict_tau(x), dtype=np.float64)
    n = np.shape(x)[0]
    name = type(learner).__name__
    if tau.shape != (n, n_actions):
        hint = (" (K columns: it left out the no-offer column 0)"
                if tau.shape == (n, n_actions - 1) else "")
        raise ValueError(f"learner ({head} head): {name}.predict_tau returned shape {tau.shape}"
                         f"{hint}; the protocol is (n, K+1) = ({n}, {n_actions}). Fix: return one "
                         f"column per action with column 0 = 0, e.g. np.hstack([zeros, tau]).")
    if not np.all(np.isfinite(tau)):
        raise ValueError(f"learner ({head} head): {name}.predict_tau returned NaN or inf. Fix: "
                         "check the plug-in's fit on this log.")
    if np.any(tau[:, 0] != 0):
        raise ValueError(f"learner ({head} head): {name}.predict_tau column 0 must be 0 (the "
                         f"effect of no offer against itself), got {tau[:, 0].max():.3g}. Fix: "
                         f"subtract column 0 from every column.")
    return tau


def as_learner(obj: Any) -> UpliftLearner:
    """Accept an allocbench learner as is; wrap an EconML estimator."""
    if isinstance(obj, UpliftLearner):
        return obj
    if hasattr(obj, "effect"):
        return EconMLLearner(obj)
    raise ValueError(f"learner: {type(obj).__name__} has neither fit/predict_tau nor EconML's "
                     "fit/effect. Fix: implement the UpliftLearner protocol.")


def as_ope(obj: Any) -> Callable[..., Any]:
    """Accept an OPE function with OBP's argument names; wrap an OBP-style estimator object."""
    if hasattr(obj, "estimate_policy_value"):
        return OBPEstimator(obj)
    if callable(obj):
        return obj
    raise ValueError(f"ope: {type(obj).__name__} is neither a function nor an object with "
                     "estimate_policy_value. Fix: pass one of those.")
