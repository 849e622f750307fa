"""Separate value and cost heads: two independent uplift learners behind one small object.

Value is sparse and heavy-tailed, cost dense and low-variance, so each head has its own learner,
base model and (optional) recalibration. The allocator consumes ``tau_value, tau_cost``.

This module also holds the one learner protocol (:class:`UpliftLearner`, imported by
``experiments.plugins``) and the one way to build heads from typed config
(:class:`HeadConfig`, :class:`HeadsConfig`, :func:`make_learner`, :func:`make_heads`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from estimators.bart import BART, BCFLearner
from estimators.base import MLP, BaseModel, Logistic, Ridge
from estimators.checks import fail
from estimators.gbm import LightGBM
from estimators.hurdle import AMOUNT_MODELS, HurdleLearner
from estimators.precision import float64_methods
from estimators.tarnet import TARNet, TARNetConfig
from estimators.uplift import (
    DRLearner,
    RLearner,
    SLearner,
    TLearner,
    XLearner,
    check_seed_axis,
)

__all__ = [
    "BASES",
    "DEFAULT_COST_HEAD",
    "DEFAULT_VALUE_HEAD",
    "HURDLE_COST_HEAD",
    "HURDLE_HEADS",
    "HURDLE_VALUE_HEAD",
    "LEARNERS",
    "ONE_NET_HEADS",
    "HeadConfig",
    "HeadsConfig",
    "Recalibrator",
    "UpliftHeads",
    "UpliftLearner",
    "fit_learner_batch",
    "learner_supported_actions",
    "make_base",
    "make_heads",
    "make_learner",
]


@runtime_checkable
class UpliftLearner(Protocol):
    """The one multi-action uplift learner interface (action 0 = no offer, ``K+1`` actions).

    Required (what ``isinstance(obj, UpliftLearner)`` checks):

    * ``fit(x (n, d), action (n,), reward (n,), action_prob=None (n, K+1), n_actions=None)``
      fits in place and returns the learner;
    * ``predict_tau(x) -> (n, K+1)``: ``tau(x, a) = mu(x, a) - mu(x, 0)``, column 0 zero.

    Optional, used when present (all of :mod:`estimators.uplift`'s learners have them):

    * ``predict_mu(x, actions=None) -> (n, K+1)``: ``mu(x, a) = E[reward | x, a]``
      (:class:`UpliftHeads.predict_mu` needs it);
    * ``actions=`` on ``predict_tau`` / ``predict_mu``: the columns of those actions only, in that
      order;
    * ``supported_actions_``: sorted actions the fit identified (always including 0). Asking
      such a learner for all ``K+1`` columns while some action is unsupported is a
      ``ValueError``; score only ``actions=learner.supported_actions_``. A learner without the
      attribute is taken to support every action (:func:`learner_supported_actions`);
    * ``fit_batch(x (S, n, d), action (S, n), reward (S, n), action_prob=None, n_actions=None)
      -> list`` of S fitted copies (the T- and hurdle learners batch their base fits across
      seeds); without it :func:`fit_learner_batch` fits deep copies one after another.
    """

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> Any: ...

    def predict_tau(self, x: Any) -> Any: ...


class Recalibrator(Protocol):
    """A fitted map from predicted to calibrated uplift (see :mod:`estimators.calibration`):
    ``transform(tau (n, K)) -> (n, K)`` on all ``K`` offer columns, column ``j`` = offer
    ``j + 1``."""

    def transform(self, tau: Any) -> jax.Array: ...


def learner_supported_actions(learner: Any) -> np.ndarray:
    """The sorted actions a fitted learner can score: its ``supported_actions_``, or, for a
    learner without that attribute, every action ``0..n_actions_-1`` it predicts."""
    sup = getattr(learner, "supported_actions_", None)
    if sup is not None:
        return np.asarray(sup)
    k1 = getattr(learner, "n_actions_", None)
    if k1 is None:
        fail(f"{type(learner).__name__}", "not fitted yet (no supported_actions_ or n_actions_)",
             "call .fit(...) first")
    return np.arange(int(k1))


def fit_learner_batch(learner: Any, x: Any, action: Any, reward: Any,
                      action_prob: Any | None = None, n_actions: int | None = None) -> list:
    """S fitted copies of ``learner``, one per log (every argument with a leading seed axis: an
    ``(S, n, ...)`` array or a length-S sequence); ``learner`` itself is left unfitted. The
    seed-batch path of the learner protocol: a learner's own ``fit_batch`` (the T- and hurdle
    learners batch their base-model fits across seeds) when it has one, otherwise deep copies
    fitted one after another."""
    own = getattr(learner, "fit_batch", None)
    if callable(own):
        return own(x, action, reward, action_prob=action_prob, n_actions=n_actions)
    n_seeds = check_seed_axis(f"{type(learner).__name__}.fit_batch", x=x, action=action,
                              reward=reward, action_prob=action_prob)
    return [copy.deepcopy(learner).fit(x[s], action[s], reward[s],
                                       action_prob=None if action_prob is None else action_prob[s],
                                       n_actions=n_actions) for s in range(n_seeds)]


def _predict(learner: Any, method: str, x: Any, actions: Any | None) -> jax.Array:
    """``learner.<method>(x)`` or its ``actions`` columns (learners without ``actions=``, i.e.
    without ``supported_actions_``, predict every column and are sliced)."""
    fn = getattr(learner, method)
    if actions is None:
        return fn(x)
    if getattr(learner, "supported_actions_", None) is not None:
        return fn(x, actions=actions)
    return jnp.asarray(fn(x))[:, np.asarray(actions)]


@float64_methods("fit", "fit_batch", "predict_tau", "predict_mu")
@dataclasses.dataclass
class UpliftHeads:
    """A value head and a cost head, each its own learner (and optional recalibrator).

    ``fit(x, action, value, cost, action_prob, n_actions)`` fits ``value`` on the value label and
    ``cost`` on the cost label; ``predict_tau(x) -> (tau_value, tau_cost)``, each ``(n, K+1)`` with
    column 0 zero; ``predict_mu(x) -> (mu_value, mu_cost)``. A recalibrator, if set, maps the
    offer columns of that head's ``tau`` (column 0 stays 0).

    ``supported_actions_`` is the intersection of the two heads' supported actions: the actions
    both heads identified, hence the ones a caller may score. ``predict_tau(x, actions=...)`` and
    ``predict_mu(x, actions=...)`` return those columns only (in the order given), e.g.
    ``actions=heads.supported_actions_`` on a holdout log that never used some offers. A
    recalibrator maps all ``K`` offer columns, so a recalibrated head needs every action
    supported.
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

    def fit_batch(self, x: Any, action: Any, value: Any, cost: Any,
                  action_prob: Any | None = None, n_actions: int | None = None
                  ) -> list[UpliftHeads]:
        """Fit on S logs at once (a leading seed axis on every argument, see
        :func:`fit_learner_batch`): S fitted copies of these heads (recalibrators shared, as
        :meth:`fit` keeps them), copy ``s`` equal to ``copy.deepcopy(self).fit(x[s], ...)``."""
        values = fit_learner_batch(self.value, x, action, value, action_prob, n_actions)
        costs = fit_learner_batch(self.cost, x, action, cost, action_prob, n_actions)
        return [dataclasses.replace(self, value=v, cost=c)
                for v, c in zip(values, costs, strict=True)]

    @property
    def supported_actions_(self) -> np.ndarray:
        """Sorted actions supported by both heads (always including 0 after a fit)."""
        return np.intersect1d(learner_supported_actions(self.value),
                              learner_supported_actions(self.cost))

    @staticmethod
    def _recalibrate(tau: jax.Array, recal: Recalibrator | None) -> jax.Array:
        if recal is None:
            return tau
        offers = jnp.asarray(recal.transform(tau[:, 1:]))
        return jnp.concatenate([jnp.zeros_like(tau[:, :1]), offers], axis=1)

    def _head_tau(self, head: str, x: Any, actions: Any | None) -> jax.Array:
        learner, recal = getattr(self, head), getattr(self, f"{head}_recalibration")
        if recal is None:
            return _predict(learner, "predict_tau", x, actions)
        if actions is not None:
            sup = learner_supported_actions(learner)
            k1 = getattr(learner, "n_actions_", None)
            if k1 is not None and len(sup) != k1:
                missing = sorted(set(range(k1)) - set(sup.tolist()))
                fail(f"{head}_recalibration", f"maps all K offer columns, but the {head} head "
                     f"never fitted actions {missing}",
                     f"drop the recalibrator or fit the {head} head on a log using every action")
            return self._recalibrate(learner.predict_tau(x), recal)[:, np.asarray(actions)]
        return self._recalibrate(learner.predict_tau(x), recal)

    def predict_tau(self, x: Any, actions: Any | None = None) -> tuple[jax.Array, jax.Array]:
        """``(tau_value, tau_cost)``: ``(n, K+1)`` each, or the columns of ``actions``."""
        return self._head_tau("value", x, actions), self._head_tau("cost", x, actions)

    def predict_mu(self, x: Any, actions: Any | None = None) -> tuple[jax.Array, jax.Array]:
        """Outcome means per action (before recalibration, which acts on uplift only):
        ``(mu_value, mu_cost)``, ``(n, K+1)`` each, or the columns of ``actions``."""
        return (_predict(self.value, "predict_mu", x, actions),
                _predict(self.cost, "predict_mu", x, actions))


# ---------------------------------------------------------------------------------------------
# typed config -> learners and heads
# ---------------------------------------------------------------------------------------------

LEARNERS = ("t", "s", "x", "dr", "r", "hurdle", "tarnet", "bcf")
BASES = ("ridge", "logistic", "mlp", "bart", "lightgbm")


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _as_config(field: str, value: Any, cls: type) -> Any:
    """``value`` as the frozen settings dataclass ``cls`` (a mapping of its fields, e.g. from
    Hydra, is converted; unknown keys are an error naming them)."""
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping) or hasattr(value, "keys"):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value.keys()) - known)
        if unknown:
            fail(field, f"unknown keys {unknown}", f"use only {sorted(known)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in value.items()})
    fail(field, f"expected a {cls.__name__} (or a mapping of its fields), got "
         f"{type(value).__name__}", f"pass {field.rsplit('.', 1)[-1]}={cls.__name__}(...)")


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """One head's learner: meta-learner ``learner`` on base model ``base``.

    ``learner``: ``"t"`` :class:`~estimators.uplift.TLearner`, ``"s"``
    :class:`~estimators.uplift.SLearner` (``interactions`` adds ``x * onehot(a)``), ``"x"``
    :class:`~estimators.uplift.XLearner`, ``"dr"`` :class:`~estimators.uplift.DRLearner`,
    ``"r"`` :class:`~estimators.uplift.RLearner`, ``"hurdle"``
    :class:`~estimators.hurdle.HurdleLearner` (the stable-proxy two-part model
    ``P(y > 0 | x, a) E[y | y > 0, x, a]``, amount model ``hurdle_amount``), ``"tarnet"``
    :class:`~estimators.tarnet.TARNet` (settings ``tarnet``; ``base`` unused), ``"bcf"``
    :class:`~estimators.bart.BCFLearner` (binary holdout logs only; forest sizes and MCMC from
    ``bart``: ``n_trees`` prognostic trees, ``n_trees // 4`` effect trees).

    ``base``: ``"ridge"`` ``Ridge(alpha)``, ``"logistic"`` ``Logistic(alpha)`` (labels in [0, 1]
    only), ``"mlp"`` the :class:`~estimators.base.MLP` settings ``mlp``, ``"bart"`` the
    :class:`~estimators.bart.BART` settings ``bart``, ``"lightgbm"`` the
    :class:`~estimators.gbm.LightGBM` settings ``lightgbm`` (optional extra
    ``allocbench[gbm]``). The nested settings are the models' own frozen dataclasses (Hydra:
    ``learner.value.bart.n_trees=50``); their ``seed`` is replaced by this head's ``seed``, the
    one seed of a head.

    Mapping onto the learners' fields (their other fields keep their defaults):

    * ``alpha`` (> 0) is the ridge/logistic base's L2 penalty and the penalty of the effect
      stage: the ``final`` model ``Ridge(alpha)`` of ``x`` and ``dr`` (imputed effects and AIPW
      pseudo-outcomes are unbounded, so a logistic final stage would be wrong), and the slope
      penalty of ``r``'s linear effect model. In ``hurdle`` the occurrence model is
      ``Logistic(alpha)`` for a ridge/logistic base, else the flexible base on the 0/1 labels
      (a probability regression); the amount model is the base (ridge: ``Ridge(alpha)``).
    * ``n_folds`` (>= 2) and ``seed`` (>= 0): cross-fitting of ``dr`` and ``r`` (folds
      ``crossfit.fold_ids(n, n_folds, jax.random.key(seed))``); ``seed`` also seeds the MLP,
      BART, LightGBM and TARNet randomness. Other learners ignore ``n_folds``.
    * ``x`` estimates its gate from the logged ``action_prob`` when ``fit`` gets it (constant arm
      shares otherwise); ``dr`` and ``r`` require ``action_prob``; ``t`` is unweighted;
      ``hurdle_weight_by_propensity`` weights the hurdle's per-arm fits by ``1 / e_a(x)``
      (requires ``action_prob``; for targeted logs).

    ``HeadConfig()`` is ``TLearner(base=Ridge(alpha=1.0))``.
    """

    learner: str = "t"
    base: str = "ridge"
    alpha: float = 1.0
    n_folds: int = 2
    seed: int = 0
    interactions: bool = False
    hurdle_amount: str = "log"
    # added after results were published: out of the config hash at its default (the same
    # metadata as experiments.store.OMIT_AT_DEFAULT, spelled here: estimators import no experiments)
    hurdle_weight_by_propensity: bool = dataclasses.field(default=False,
                                                          metadata={"omit_at_default": True})
    mlp: MLP = MLP()
    bart: BART = BART()
    lightgbm: LightGBM = LightGBM()
    tarnet: TARNetConfig = TARNetConfig()

    def __post_init__(self) -> None:
        if self.learner not in LEARNERS:
            fail("HeadConfig.learner", f"unknown learner {self.learner!r}",
                 f"use one of {list(LEARNERS)}")
        if self.base not in BASES:
            fail("HeadConfig.base", f"unknown base model {self.base!r}",
                 f"use one of {list(BASES)}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float | np.number) \
                or not math.isfinite(self.alpha) or self.alpha <= 0:
            fail("HeadConfig.alpha", f"must be a finite number > 0, got {self.alpha!r}",
                 "use e.g. alpha=1.0")
        if not _is_int(self.n_folds) or self.n_folds < 2:
            fail("HeadConfig.n_folds", f"must be an int >= 2, got {self.n_folds!r}",
                 "use e.g. n_folds=2 (or 5)")
        if not _is_int(self.seed) or self.seed < 0:
            fail("HeadConfig.seed", f"must be an int >= 0, got {self.seed!r}", "use e.g. seed=0")
        if not isinstance(self.interactions, bool | np.bool_):
            fail("HeadConfig.interactions", f"must be a bool, got {self.interactions!r}",
                 "use True or False")
        if not isinstance(self.hurdle_weight_by_propensity, bool | np.bool_):
            fail("HeadConfig.hurdle_weight_by_propensity", f"must be a bool, got "
                 f"{self.hurdle_weight_by_propensity!r}", "true or false")
        if self.hurdle_amount not in AMOUNT_MODELS:
            fail("HeadConfig.hurdle_amount", f"unknown amount model {self.hurdle_amount!r}",
                 f"use one of {list(AMOUNT_MODELS)}")
        for name, cls in (("mlp", MLP), ("bart", BART), ("lightgbm", LightGBM),
                          ("tarnet", TARNetConfig)):
            object.__setattr__(self, name, _as_config(f"HeadConfig.{name}", getattr(self, name),
                                                      cls))


# the stable-proxy two-part heads (the default until the TARNet value head replaced it)
HURDLE_VALUE_HEAD = HeadConfig(learner="hurdle", hurdle_amount="log")
HURDLE_COST_HEAD = HeadConfig(learner="hurdle", hurdle_amount="constant")
# the default heads, chosen by benchmark (README, "Default heads, chosen by benchmark"): five
# TARNets for value (one net's seed-driven variance dominated its error on small logs), the
# weighted proxy for cost; both need the logged propensities (``action_prob``)
DEFAULT_VALUE_HEAD = HeadConfig(learner="tarnet",
                                tarnet=TARNetConfig(weight_by_propensity=True, n_members=5))
DEFAULT_COST_HEAD = dataclasses.replace(HURDLE_COST_HEAD, hurdle_weight_by_propensity=True)


def _as_head_config(field: str, value: Any) -> HeadConfig:
    return _as_config(f"HeadsConfig.{field}", value, HeadConfig)


@dataclasses.dataclass(frozen=True)
class HeadsConfig:
    """The value head's and the cost head's :class:`HeadConfig` (a mapping of ``HeadConfig``
    fields, e.g. from Hydra, is converted). ``HeadsConfig()`` is the default heads, chosen by the
    learners benchmark (README, "Default heads, chosen by benchmark"): :data:`DEFAULT_VALUE_HEAD`,
    an ensemble of five TARNets (shared trunk, one head per action, Huber loss, early stopping;
    ``TARNetConfig.n_members = 5``, the members' mean) whose rows are weighted by
    ``1 / action_prob[i, A_i]``, and :data:`DEFAULT_COST_HEAD`, the stable-proxy cost head
    (redemption probability x the mean redeemed amount, the face value) with each arm's fits
    weighted by ``1 / e_a(x)``. Both need the logged propensities. On the default world, n =
    20,000, budget 1.0 per user, they cut the true regret of the cost-aware policy from 33 %
    (ridge T-learner heads), 22 % (the linear hurdle pair, :data:`HURDLE_VALUE_HEAD` /
    :data:`HURDLE_COST_HEAD`) and 20 % (one TARNet) to 18 %, and from 49 %, 30 % and 13 % to
    5 % at budget 0.05. Below about 4,000 training users on the default world the hurdle pair is
    the better choice (regret 36 % against the default's 39 % at 2,000 users and budget 1.0, 41 %
    against 64 % at 0.05; the learners suite's draws at 2,000 favour the default at budget 1.0):
    :data:`HURDLE_HEADS`, ``learner=hurdle``."""

    value: HeadConfig = DEFAULT_VALUE_HEAD
    cost: HeadConfig = DEFAULT_COST_HEAD

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _as_head_config("value", self.value))
        object.__setattr__(self, "cost", _as_head_config("cost", self.cost))


# the previous default pair, the linear stable proxies (``learner=hurdle``)
HURDLE_HEADS = HeadsConfig(value=HURDLE_VALUE_HEAD, cost=HURDLE_COST_HEAD)
# the default heads with one TARNet instead of five (the default until stop 28): for the closed
# loop, which refits its heads every round of every variant, where five nets would cost five
# times the fit time (README, "The closed loop")
ONE_NET_HEADS = HeadsConfig(
    value=dataclasses.replace(DEFAULT_VALUE_HEAD,
                              tarnet=dataclasses.replace(DEFAULT_VALUE_HEAD.tarnet, n_members=1)),
    cost=DEFAULT_COST_HEAD)


def make_base(config: HeadConfig) -> BaseModel:
    """The base model of ``config``: ``Ridge(alpha)``, ``Logistic(alpha)``, or its ``mlp`` /
    ``bart`` / ``lightgbm`` settings with the head's ``seed``."""
    if config.base == "ridge":
        return Ridge(alpha=float(config.alpha))
    if config.base == "logistic":
        return Logistic(alpha=float(config.alpha))
    return dataclasses.replace(getattr(config, config.base), seed=int(config.seed))


def make_learner(config: HeadConfig) -> UpliftLearner:
    """A fresh, unfitted learner for ``config`` (mapping in :class:`HeadConfig`)."""
    if not isinstance(config, HeadConfig):
        fail("config", f"expected a HeadConfig, got {type(config).__name__}",
             "pass HeadConfig(learner=..., base=...)")
    alpha, seed = float(config.alpha), int(config.seed)
    if config.learner == "tarnet":
        return TARNet(config=dataclasses.replace(config.tarnet, seed=seed))
    if config.learner == "bcf":
        b = config.bart
        return BCFLearner(n_trees_mu=b.n_trees, n_trees_tau=max(1, b.n_trees // 4),
                          n_burn=b.n_burn, n_draws=b.n_draws, n_chains=b.n_chains, seed=seed)
    base = make_base(config)
    if config.learner == "t":
        return TLearner(base=base)
    if config.learner == "s":
        return SLearner(base=base, interactions=bool(config.interactions))
    if config.learner == "x":
        return XLearner(base=base, final=Ridge(alpha=alpha))
    if config.learner == "dr":
        return DRLearner(base=base, final=Ridge(alpha=alpha), n_folds=int(config.n_folds),
                         seed=seed)
    if config.learner == "hurdle":
        linear = config.base in ("ridge", "logistic")
        return HurdleLearner(prob_base=Logistic(alpha=alpha) if linear else base,
                             amount_base=Ridge(alpha=alpha) if linear else base,
                             amount=config.hurdle_amount,
                             weight_by_propensity=bool(config.hurdle_weight_by_propensity))
    return RLearner(base=base, alpha=alpha, n_folds=int(config.n_folds), seed=seed)


def make_heads(config: HeadsConfig) -> UpliftHeads:
    """Unfitted :class:`UpliftHeads` with one fresh learner per head (never shared)."""
    if not isinstance(config, HeadsConfig):
        fail("config", f"expected a HeadsConfig, got {type(config).__name__}",
             "pass HeadsConfig(value=HeadConfig(...), cost=HeadConfig(...))")
    return UpliftHeads(value=make_learner(config.value), cost=make_learner(config.cost))
