"""Multi-action uplift meta-learners: S, T, X, DR and R (scikit-learn style objects).

Action 0 is the no-offer control; ``n_actions = K + 1``. Every learner has

* ``fit(x, action, reward, action_prob=None, n_actions=None) -> self``
* ``predict_mu(x, actions=None) -> (n, K+1)``: estimated ``mu(x, a) = E[reward | x, a]``
* ``predict_tau(x, actions=None) -> (n, K+1)``: estimated ``tau(x, a) = mu(x, a) - mu(x, 0)``
  (column 0 is 0)
* ``supported_actions_``: the sorted actions the log identifies (always including 0).

Per-arm and per-fold fits reuse one compiled base-model fit by masking ``sample_weight`` (static
shapes; ``jax.lax.map`` over the masks keeps peak memory at one fit): the mechanism of
:mod:`estimators.crossfit`, which also owns the folds of DR and R (balanced, random from the fold
key ``jax.random.key(seed)`` of the learner's ``seed`` field) and the one cross-fitting support
rule (every (fold, arm) training set holds >= 1 row). ``action_prob (n, K+1)`` is the logged
propensity of every action; DR and R require it and never assume uniform logging. Every public
method runs in float64 (:mod:`estimators.precision`).

Logs that never use some arms (the binary holdout design: one campaign offer ``o`` against no
offer, ``action_prob`` with zero columns for the other offers) are accepted. An arm is *supported*
when the logger uses it: its ``action_prob`` column is positive on some row, or, without
``action_prob``, it has logged rows. Only supported arms are fitted (as EconML fits only the
treatments present); an unsupported arm's effect is not identified by the log, so no number is
invented for it: ``predict_tau(x)`` / ``predict_mu(x)`` keep the ``(n, K+1)`` contract whenever
every arm is supported, and otherwise raise a ``ValueError`` naming the unsupported arms, while
``predict_tau(x, actions=learner.supported_actions_)`` returns the identified columns (column
``j`` is action ``actions[j]``). A zero, NaN or extrapolated column would be a silent wrong
answer to an allocator that reads every column. A supported arm with fewer than 2 logged rows,
and a log whose no-offer arm is unsupported, are errors at ``fit``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from estimators.base import BaseModel, Ridge, check_xy
from estimators.checks import ROW_SUM_ATOL, fail
from estimators.crossfit import (
    check_fold_support,
    check_n_folds,
    cross_fit,
    fit_masked,
    fit_masked_each,
    fold_ids,
    predict_stacked,
)
from estimators.precision import float64_methods

__all__ = [
    "DRLearner",
    "RLearner",
    "SLearner",
    "TLearner",
    "XLearner",
    "check_fit_inputs",
    "check_seed_axis",
    "fit_masked",
    "predict_stacked",
    "supported_actions",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def check_fit_inputs(
    x: Any,
    action: Any,
    reward: Any,
    action_prob: Any | None,
    n_actions: int | None,
    where: str,
    require_propensity: bool = False,
    base: Any | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Validate learner inputs; return float64/int NumPy copies and ``n_actions``.

    Raises ``ValueError`` naming the argument: wrong shapes, NaN, actions out of range,
    propensities outside ``[0, 1]`` / rows not summing to 1 / zero propensity on the logged
    action, a missing ``action_prob`` where the learner needs it, an unsupported no-offer arm, no
    supported offer, or a supported arm (:func:`supported_actions`) with fewer than 2 rows.
    Arms the logger never uses are allowed (they are not fitted).
    """
    x = np.asarray(x, dtype=np.float64)
    reward = np.asarray(reward, dtype=np.float64)
    check_xy(x, reward, None, f"{where} (x, reward)")
    action = np.asarray(action)
    if action.shape != (x.shape[0],) or not np.issubdtype(action.dtype, np.integer):
        raise ValueError(f"{where}: action must be an integer array of shape ({x.shape[0]},), "
                         f"got {action.dtype} {action.shape}. Fix: pass the logged action index "
                         f"per row (0 = no offer).")
    if action_prob is not None:
        action_prob = np.asarray(action_prob, dtype=np.float64)
        if action_prob.ndim != 2 or action_prob.shape[0] != x.shape[0]:
            raise ValueError(f"{where}: action_prob must have shape (n, K+1) = "
                             f"({x.shape[0]}, n_actions), got {action_prob.shape}.")
        if n_actions is None:
            n_actions = action_prob.shape[1]
        elif action_prob.shape[1] != n_actions:
            raise ValueError(f"{where}: action_prob has {action_prob.shape[1]} columns but "
                             f"n_actions={n_actions}. Fix: make them agree.")
    if n_actions is None:
        n_actions = int(action.max()) + 1
    if n_actions < 2:
        raise ValueError(f"{where}: n_actions must be >= 2 (no-offer plus at least one offer), "
                         f"got {n_actions}.")
    if action.min() < 0 or action.max() >= n_actions:
        raise ValueError(f"{where}: action must lie in [0, {n_actions - 1}], got range "
                         f"[{action.min()}, {action.max()}]. Fix: check n_actions.")
    if require_propensity and action_prob is None:
        raise ValueError(f"{where}: action_prob is required (the logged propensities of every "
                         f"action); this learner never assumes uniform logging. Fix: pass "
                         f"LoggedData.action_prob.")
    if action_prob is not None:
        if not np.all(np.isfinite(action_prob)) or np.any(action_prob < 0) or np.any(
                action_prob > 1):
            raise ValueError(f"{where}: action_prob must be finite and in [0, 1].")
        if np.any(np.abs(action_prob.sum(axis=1) - 1.0) > ROW_SUM_ATOL):
            raise ValueError(f"{where}: action_prob rows must sum to 1 (the full logging "
                             f"distribution). Fix: pass all K+1 columns.")
        if np.any(action_prob[np.arange(len(action)), action] <= 0):
            raise ValueError(f"{where}: action_prob is 0 for some logged actions. Fix: pass the "
                             f"propensities the actions were actually drawn from.")
    counts = np.bincount(action, minlength=n_actions)
    supported = supported_actions(action, action_prob, n_actions)
    if supported[0] != 0:
        raise ValueError(f"{where}: the no-offer action 0 is never logged (no rows"
                         f"{' and zero action_prob[:, 0]' if action_prob is not None else ''}), "
                         f"so no effect tau(x, a) = mu(x, a) - mu(x, 0) is identified. Fix: use a "
                         f"log with a no-offer holdout.")
    if len(supported) < 2:
        raise ValueError(f"{where}: no offer (action >= 1) is logged, so there is no effect to "
                         f"estimate. Fix: use a log in which some offer is given.")
    few = [int(a) for a in supported if counts[a] < 2]
    if few:
        raise ValueError(f"{where}: actions {few} have fewer than 2 logged rows (counts "
                         f"{counts[few].tolist()}) although the logger uses them, so their "
                         f"outcome model cannot be fitted. Fix: log more data or drop those "
                         f"actions (n_actions).")
    if base is not None and hasattr(base, "validate_labels"):
        base.validate_labels(reward, where)
    return x, action, reward, action_prob, int(n_actions)


def supported_actions(action: np.ndarray, action_prob: np.ndarray | None,
                      n_actions: int) -> np.ndarray:
    """The sorted actions the logger uses: with ``action_prob``, those whose propensity column is
    positive on some row (a logged action always is); without, those with a logged row."""
    if action_prob is not None:
        used = np.any(action_prob > 0, axis=0)
    else:
        used = np.bincount(action, minlength=n_actions) > 0
    return np.flatnonzero(used)


def _positions(obj: Any, actions: Any | None, where: str) -> np.ndarray | None:
    """Columns of the supported-arm predictions for the requested ``actions``; ``None`` for all
    ``K+1`` actions (then every arm must be supported)."""
    sup = obj.supported_actions_
    if actions is None:
        if len(sup) == obj.n_actions_:
            return None
        missing = sorted(set(range(obj.n_actions_)) - set(sup.tolist()))
        raise ValueError(f"{where}: actions {missing} were never logged (zero action_prob "
                         f"everywhere, or no rows and no action_prob), so their effect is not "
                         f"identified and they were not fitted. Fix: request the fitted "
                         f"actions, actions=learner.supported_actions_ = {sup.tolist()} (column "
                         f"j is then action supported_actions_[j]), or fit on a log that uses "
                         f"every action.")
    req = np.asarray(actions)
    if req.ndim != 1 or req.size == 0 or not np.issubdtype(req.dtype, np.integer):
        raise ValueError(f"{where}: actions must be a non-empty 1-D integer array of action "
                         f"indices, got {req.dtype} {req.shape}. Fix: e.g. "
                         f"actions=learner.supported_actions_.")
    bad = sorted({int(a) for a in req if a not in set(sup.tolist())})
    if bad:
        raise ValueError(f"{where}: actions {bad} are not among the fitted (logged) actions "
                         f"{sup.tolist()}, so their effect is not identified. Fix: request only "
                         f"learner.supported_actions_.")
    return np.searchsorted(sup, req)


def _select(pred: jax.Array, cols: np.ndarray | None) -> jax.Array:
    return pred if cols is None else _take_columns(pred, jnp.asarray(cols))


@jax.jit
def _take_columns(pred: jax.Array, cols: jax.Array) -> jax.Array:
    return jnp.take(pred, cols, axis=1)


def _with_control(tau_offers: jax.Array) -> jax.Array:
    """Prepend the no-offer column (0) to per-offer effects ``(n, m)``."""
    return jnp.concatenate([jnp.zeros((tau_offers.shape[0], 1)), tau_offers], axis=1)


def _arm_masks(action: np.ndarray, n_actions: int) -> np.ndarray:
    return (action[None, :] == np.arange(n_actions)[:, None]).astype(np.float64)


def _check_fitted(obj: Any, attr: str) -> None:
    if getattr(obj, attr, None) is None:
        raise ValueError(f"{type(obj).__name__}: not fitted yet. Fix: call .fit(...) first.")


def _check_predict_x(obj: Any, x: Any) -> jax.Array:
    _check_fitted(obj, "n_actions_")
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 2 or xa.shape[1] != obj.n_features_:
        raise ValueError(f"{type(obj).__name__}.predict: x must have shape (n, "
                         f"{obj.n_features_}), got {xa.shape}.")
    if not np.all(np.isfinite(xa)):
        raise ValueError(f"{type(obj).__name__}.predict: x contains NaN or inf.")
    return jnp.asarray(xa)


def _tau_from_mu(mu: jax.Array) -> jax.Array:
    return mu - mu[:, :1]


# ---------------------------------------------------------------------------------------------
# T-learner
# ---------------------------------------------------------------------------------------------


class _SeedBatchFit:
    """``fit`` and ``fit_batch`` from one implementation. A learner defines ``_check`` (the
    validated, converted inputs of one log, :func:`check_fit_inputs`) and ``_fit_logs`` (the
    fitted attributes of each of a list of checked logs, batching the base-model fits across
    logs through :func:`estimators.crossfit.fit_masked_each`)."""

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> Any:
        log = self._check(x, action, reward, action_prob, n_actions, f"{type(self).__name__}.fit")
        for name, value in self._fit_logs([log])[0].items():
            setattr(self, name, value)
        return self

    def fit_batch(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
                  n_actions: int | None = None) -> list[Any]:
        """Fit on S logs at once: every argument has a leading seed axis (an ``(S, n, ...)``
        array, or a length-S sequence of per-seed arrays, whose row counts may differ). Returns
        S fitted copies of this (unchanged) learner, copy ``s`` equal to
        ``copy.deepcopy(self).fit(x[s], action[s], ...)``; the base-model fits of all seeds
        whose shapes agree run in one compiled call."""
        where = f"{type(self).__name__}.fit_batch"
        n_seeds = check_seed_axis(where, x=x, action=action, reward=reward,
                                  action_prob=action_prob)
        logs = [self._check(x[s], action[s], reward[s],
                            None if action_prob is None else action_prob[s], n_actions,
                            f"{where} (seed {s})") for s in range(n_seeds)]
        return [dataclasses.replace(self, **state) for state in self._fit_logs(logs)]


def check_seed_axis(where: str, **arrays: Any) -> int:
    """The common length S of the leading (seed) axis of the given arrays or sequences (``None``
    entries skipped); a ``ValueError`` naming the first one that disagrees."""
    sizes = {name: len(a) for name, a in arrays.items() if a is not None}
    n_seeds = next(iter(sizes.values()))
    for name, size in sizes.items():
        if size != n_seeds or size == 0:
            fail(name, f"{where}: the leading (seed) axis has {size} entries, x has {n_seeds}",
                 "stack one log per seed on the leading axis of every argument")
    return n_seeds


class _Predictions:
    """``predict_mu`` / ``predict_tau`` of a fitted learner from its ``_mu`` / ``_tau`` (columns of
    the supported arms): ``(n, K+1)``, or the columns of ``actions`` in that order."""

    def predict_mu(self, x: Any, actions: Any | None = None) -> jax.Array:
        x = _check_predict_x(self, x)
        where = f"{type(self).__name__}.predict_mu"
        return _select(self._mu(x), _positions(self, actions, where))

    def predict_tau(self, x: Any, actions: Any | None = None) -> jax.Array:
        x = _check_predict_x(self, x)
        where = f"{type(self).__name__}.predict_tau"
        return _select(self._tau(x), _positions(self, actions, where))

    def _tau(self, x: jax.Array) -> jax.Array:
        """Default for learners that model ``mu`` per arm: ``tau = mu - mu_0``."""
        return _tau_from_mu(self._mu(x))


@float64_methods("fit", "fit_batch", "predict_mu", "predict_tau")
@dataclasses.dataclass
class TLearner(_SeedBatchFit, _Predictions):
    """T-learner: one outcome model per action, ``mu_a(x) = base fitted on rows with A = a``.

    ``tau(x, a) = mu_a(x) - mu_0(x)``. Unbiased for ``tau`` when each arm's model is correctly
    specified and, given ``x``, the action is unconfounded. With ``weight_by_propensity`` each
    row gets weight ``1 / action_prob[i, a_i]`` (corrects a misspecified model towards the
    population fit under skewed logging); off by default. Only the supported arms
    (``supported_actions_``, module docstring) are fitted.
    """

    base: BaseModel = dataclasses.field(default_factory=Ridge)
    weight_by_propensity: bool = False
    params_: Any = dataclasses.field(default=None, repr=False)
    n_actions_: int | None = dataclasses.field(default=None, repr=False)
    n_features_: int | None = dataclasses.field(default=None, repr=False)
    supported_actions_: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def _check(self, x: Any, action: Any, reward: Any, action_prob: Any | None,
               n_actions: int | None, where: str) -> tuple:
        return check_fit_inputs(x, action, reward, action_prob, n_actions, where,
                                require_propensity=self.weight_by_propensity, base=self.base)

    def _fit_logs(self, logs: list[tuple]) -> list[dict[str, Any]]:
        masks, supports = [], []
        for _, action, _, action_prob, k1 in logs:
            sup = supported_actions(action, action_prob, k1)
            w = np.ones(len(action))
            if self.weight_by_propensity:
                w = 1.0 / action_prob[np.arange(len(action)), action]
            masks.append(_arm_masks(action, k1)[sup] * w)
            supports.append(sup)
        params = fit_masked_each(self.base, [log[0] for log in logs], [log[2] for log in logs],
                                 masks)
        return [dict(params_=p, n_actions_=log[4], n_features_=log[0].shape[1],
                     supported_actions_=sup)
                for p, sup, log in zip(params, supports, logs, strict=True)]

    def _mu(self, x: jax.Array) -> jax.Array:
        """``mu`` of the supported arms, ``(n, len(supported_actions_))``."""
        return predict_stacked(self.base, self.params_, x)

    def predict_tau_draws(self, x: Any, actions: Any | None = None) -> jax.Array:
        """Posterior draws of ``tau``: ``(S, n, K+1)``, or ``(S, n, len(actions))`` with the
        columns of ``actions`` (the :meth:`predict_tau` semantics), float64.

        Draw ``s`` is ``mu_a^(s)(x) - mu_0^(s)(x)`` with ``mu_a^(s)`` the ``s``-th posterior draw
        of arm ``a``'s model (``base.predict_draws(params_a, x) -> (S, n)``, e.g.
        :class:`estimators.bart.BART`); the arms are separate fits (separate chains), so their
        draws are independent and pairing them by index is a draw from the product posterior.
        Column of action 0 is zero. Requires a base model with ``predict_draws``."""
        from estimators.crossfit import HostFits

        where = "TLearner.predict_tau_draws"
        draws_of = getattr(self.base, "predict_draws", None)
        if not callable(draws_of):
            fail("base", f"{where} needs posterior draws, but the base model "
                 f"{type(self.base).__name__} has no predict_draws(params, x) -> (S, n)",
                 "use a Bayesian base such as estimators.bart.BART, or predict_tau for point "
                 "estimates")
        with jax.enable_x64(True):
            xj = _check_predict_x(self, x)
            cols = _positions(self, actions, where)
            n_sup = len(self.supported_actions_)
            if isinstance(self.params_, HostFits):
                fits = list(self.params_)
            else:  # stacked params of a traceable base: arm j is index j of the leading axis
                fits = [jax.tree_util.tree_map(lambda a, j=j: a[j], self.params_)
                        for j in range(n_sup)]
            draws = [jnp.asarray(draws_of(p, xj), dtype=jnp.float64) for p in fits]
            shapes = {d.shape for d in draws}
            if len(shapes) != 1 or draws[0].ndim != 2 or draws[0].shape[1] != xj.shape[0]:
                fail("base", f"{where}: predict_draws returned shapes {sorted(shapes)} for the "
                     f"{n_sup} arms; expected one common (S, {xj.shape[0]})",
                     "use the same base model (same number of draws) for every arm")
            mu = jnp.stack(draws, axis=-1)  # (S, n, n_sup)
            tau = mu - mu[..., :1]
            return tau if cols is None else tau[..., cols]


# ---------------------------------------------------------------------------------------------
# S-learner
# ---------------------------------------------------------------------------------------------


@float64_methods("fit", "predict_mu", "predict_tau")
@dataclasses.dataclass
class SLearner(_Predictions):
    """S-learner: a single model on ``[x, onehot(a)]`` (and ``x * onehot(a)`` if
    ``interactions``), ``mu(x, a) = f([x, e_a])``; ``tau(x, a) = f([x, e_a]) - f([x, e_0])``.

    With a linear base and no interactions the effect is constant in ``x`` (the classic S-learner
    bias towards zero heterogeneity); unbiased when ``f`` is correctly specified. The design keeps
    all ``K+1`` indicator columns; an unsupported arm's (all-zero) column is not predicted.
    """

    base: BaseModel = dataclasses.field(default_factory=Ridge)
    interactions: bool = False
    params_: Any = dataclasses.field(default=None, repr=False)
    n_actions_: int | None = dataclasses.field(default=None, repr=False)
    n_features_: int | None = dataclasses.field(default=None, repr=False)
    supported_actions_: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def _design(self, x: jax.Array, action: jax.Array, k1: int) -> jax.Array:
        onehot = jax.nn.one_hot(action, k1, dtype=jnp.float64)[:, 1:]
        parts = [x, onehot]
        if self.interactions:
            parts.append((onehot[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1))
        return jnp.concatenate(parts, axis=1)

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> SLearner:
        x, action, reward, action_prob, k1 = check_fit_inputs(
            x, action, reward, action_prob, n_actions, "SLearner.fit", base=self.base)
        self.params_ = self.base.fit(self._design(jnp.asarray(x), jnp.asarray(action), k1),
                                     reward)
        self.n_actions_, self.n_features_ = k1, x.shape[1]
        self.supported_actions_ = supported_actions(action, action_prob, k1)
        return self

    def _mu(self, x: jax.Array) -> jax.Array:
        k1 = self.n_actions_
        cols = [self.base.predict(self.params_, self._design(x, jnp.full(x.shape[0], a), k1))
                for a in self.supported_actions_]
        return jnp.stack(cols, axis=1)


# ---------------------------------------------------------------------------------------------
# X-learner
# ---------------------------------------------------------------------------------------------


@float64_methods("fit", "predict_mu", "predict_tau")
@dataclasses.dataclass
class XLearner(_Predictions):
    """Multi-action X-learner (Künzel et al. 2019), each offer ``a`` against control 0.

    Stage 1: T-learner ``mu_a``. Stage 2: imputed effects ``D1 = y - mu_0(x)`` on rows with
    ``A = a`` and ``D0 = mu_a(x) - y`` on rows with ``A = 0``, regressed on ``x`` by
    ``final`` into ``tau1_a`` and ``tau0_a``. Combination ``tau_a = g_a tau0_a + (1 - g_a) tau1_a``
    with ``g_a(x) = e_a(x) / (e_a(x) + e_0(x))``, a ridge regression of the logged ratio on ``x``
    (clipped to [0, 1]) when ``action_prob`` is given, else the constant arm share.
    ``predict_mu = mu_0 + tau``. Only the supported offers are fitted.
    """

    base: BaseModel = dataclasses.field(default_factory=Ridge)
    final: BaseModel = dataclasses.field(default_factory=Ridge)
    stage1_: TLearner | None = dataclasses.field(default=None, repr=False)
    params1_: Any = dataclasses.field(default=None, repr=False)
    params0_: Any = dataclasses.field(default=None, repr=False)
    gate_: Any = dataclasses.field(default=None, repr=False)
    n_actions_: int | None = dataclasses.field(default=None, repr=False)
    n_features_: int | None = dataclasses.field(default=None, repr=False)
    supported_actions_: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> XLearner:
        x, action, reward, action_prob, k1 = check_fit_inputs(
            x, action, reward, action_prob, n_actions, "XLearner.fit")
        stage1 = TLearner(base=self.base).fit(x, action, reward, action_prob, k1)
        sup = stage1.supported_actions_
        offers = sup[1:]
        mu = np.asarray(stage1._mu(jnp.asarray(x)))  # (n, len(sup)), column j = action sup[j]
        masks = _arm_masks(action, k1)[sup]
        # Row r of the stacked fits below is offer a = offers[r].
        d1 = reward[None, :] - mu[:, 0][None, :]  # (1, n) broadcast: treated minus control model
        d0 = mu[:, 1:].T - reward[None, :]  # (len(offers), n)
        k = len(offers)
        self.params1_ = _fit_columns(self.final, jnp.asarray(x),
                                     jnp.asarray(np.broadcast_to(d1.T, (len(reward), k))),
                                     jnp.asarray(masks[1:].T))
        self.params0_ = _fit_columns(self.final, jnp.asarray(x), jnp.asarray(d0.T),
                                     jnp.asarray(np.broadcast_to(masks[:1].T, (len(reward), k))))
        if action_prob is not None:
            e_a, e_0 = action_prob[:, offers], action_prob[:, :1]
            ratio = e_a / np.maximum(e_a + e_0, 1e-12)
            gate = Ridge(alpha=1.0)
            # Rows with e_a + e_0 = 0 carry no information on the gate for offer a (a supported
            # offer has e_a > 0 on some row, so its gate is fitted on something).
            gate_w = (e_a + e_0 > 0).astype(np.float64)
            self.gate_ = ("model", gate, _fit_columns(gate, jnp.asarray(x), jnp.asarray(ratio),
                                                      jnp.asarray(gate_w)))
        else:
            share = masks[1:].sum(1) / (masks[1:].sum(1) + masks[0].sum())
            self.gate_ = ("constant", None, jnp.asarray(share))
        self.stage1_ = stage1
        self.n_actions_, self.n_features_, self.supported_actions_ = k1, x.shape[1], sup
        return self

    def _tau(self, x: jax.Array) -> jax.Array:
        """``tau`` of the supported arms, ``(n, len(supported_actions_))``."""
        tau1 = predict_stacked(self.final, self.params1_, x)
        tau0 = predict_stacked(self.final, self.params0_, x)
        kind, gate, gp = self.gate_
        if kind == "model":
            g = jnp.clip(predict_stacked(gate, gp, x), 0.0, 1.0)
        else:
            g = jnp.broadcast_to(gp, tau1.shape)
        return _with_control(g * tau0 + (1.0 - g) * tau1)

    def _mu(self, x: jax.Array) -> jax.Array:
        return self.stage1_._mu(x)[:, :1] + self._tau(x)


# ---------------------------------------------------------------------------------------------
# DR-learner
# ---------------------------------------------------------------------------------------------


@jax.jit
def _aipw(mu: jax.Array, action: jax.Array, reward: jax.Array,
          action_prob: jax.Array) -> tuple[jax.Array, jax.Array]:
    """AIPW pseudo-outcomes of the offers from out-of-fold ``mu (n, A)`` (column 0 = no offer):
    ``phi_a = mu_a - mu_0 + 1{A=a}(y - mu_a)/e_a - 1{A=0}(y - mu_0)/e_0``, ``(n, A-1)``, and their
    weights ``1{e_a > 0} 1{e_0 > 0}``."""
    arm = jax.nn.one_hot(action, mu.shape[1], dtype=jnp.float64)  # (n, K+1)
    safe_e = jnp.where(action_prob > 0, action_prob, 1.0)
    resid = arm * (reward[:, None] - mu) / safe_e
    phi = (mu[:, 1:] - mu[:, :1]) + resid[:, 1:] - resid[:, :1]
    # phi_a is unbiased only where both e_a > 0 and e_0 > 0 (the no-offer residual term is
    # undefined at e_0 = 0), so only those rows enter arm a's final fit.
    weight = (action_prob[:, 1:] > 0) & (action_prob[:, :1] > 0)
    return phi, weight.astype(jnp.float64)


def _learner_folds(learner: Any, action: np.ndarray | None, n_actions: int | None, n: int,
                   labels: np.ndarray | None = None) -> jax.Array:
    """The learner's folds ``fold_ids(n, n_folds, jax.random.key(seed))``, checked (n_folds, and
    the support rule per (fold, arm) when ``action`` is given)."""
    check_n_folds(learner.n_folds, n)
    if isinstance(learner.seed, bool) or not isinstance(learner.seed, int | np.integer) or (
            learner.seed < 0):
        fail(f"{type(learner).__name__}.seed", f"must be an int >= 0 (the fold key is "
             f"jax.random.key(seed)), got {learner.seed!r}", "use e.g. seed=0")
    folds = fold_ids(n, learner.n_folds, jax.random.key(learner.seed))
    if action is not None:
        check_fold_support(action, np.asarray(folds), n_actions, learner.n_folds, labels=labels)
    return folds


def _fit_columns(final: BaseModel, x: jax.Array, targets: jax.Array, weights: jax.Array) -> Any:
    """Fit ``final`` on each column of ``targets (n, K)`` with ``weights (n, K)`` (stacked
    params, :func:`estimators.crossfit.fit_masked`)."""
    return fit_masked(final, x, jnp.asarray(targets).T, jnp.asarray(weights).T)


@float64_methods("fit", "pseudo_outcomes", "predict_mu", "predict_tau")
@dataclasses.dataclass
class DRLearner(_Predictions):
    """Multi-action DR-learner (Kennedy 2023) with K-fold cross-fitting and logged propensities.

    For each offer ``a`` the AIPW pseudo-outcome, with ``mu_hat`` fitted out of fold,
    ``phi_a = mu_a - mu_0 + 1{A=a}(y - mu_a)/e_a - 1{A=0}(y - mu_0)/e_0`` (``e = action_prob``)
    has ``E[phi_a | x] = tau_a(x)`` if either ``mu_hat`` or ``e`` is correct (``e`` is the logged
    truth here), so regressing ``phi_a`` on ``x`` with ``final`` estimates ``tau_a``. Rows with
    ``e_a = 0`` (offer ineligible) or ``e_0 = 0`` (no-offer never logged there) are dropped from
    arm ``a``'s final fit. ``predict_mu`` is
    ``mu_0`` (average of the fold models) plus ``tau``. Only the supported arms are fitted (the
    binary holdout design fits ``mu_0``, ``mu_o`` and ``tau_o`` only).

    Cross-fitting (:mod:`estimators.crossfit`): folds ``fold_ids(n, n_folds, jax.random.key(seed))``
    (``seed`` is the fold key's seed: the same seed gives the same folds), one outcome model per
    (fold, supported arm) fitted by sample-weight masks; every (fold, arm) training set must hold
    >= 1 row of its arm (else a ``ValueError`` naming ``action``).
    """

    base: BaseModel = dataclasses.field(default_factory=Ridge)
    final: BaseModel = dataclasses.field(default_factory=Ridge)
    n_folds: int = 2
    seed: int = 0
    outcome_params_: Any = dataclasses.field(default=None, repr=False)
    final_params_: Any = dataclasses.field(default=None, repr=False)
    n_actions_: int | None = dataclasses.field(default=None, repr=False)
    n_features_: int | None = dataclasses.field(default=None, repr=False)
    supported_actions_: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def pseudo_outcomes(self, x: Any, action: Any, reward: Any, action_prob: Any,
                        n_actions: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cross-fitted AIPW pseudo-outcomes ``phi (n, K)`` for offers 1..K and their row
        weights ``(n, K)`` (0 where ``e_a = 0`` or ``e_0 = 0``). The outcome models are fitted
        for the supported arms only; an unsupported offer's column (``e_a = 0`` on every row)
        has weight 0 everywhere and ``phi = 0``: it carries no information."""
        x, action, reward, action_prob, k1 = check_fit_inputs(
            x, action, reward, action_prob, n_actions, "DRLearner.fit", require_propensity=True,
            base=self.base)
        sup = supported_actions(action, action_prob, k1)
        pos = np.zeros(k1, dtype=np.int64)
        pos[sup] = np.arange(len(sup))
        action_s = pos[action]  # logged actions are supported: index into sup
        folds = _learner_folds(self, action_s, len(sup), len(reward), labels=sup)
        mu, params = cross_fit(self.base, x, reward, folds, n_folds=self.n_folds,
                               action=action_s, n_actions=len(sup))
        phi_s, weight_s = _aipw(mu, jnp.asarray(action_s), jnp.asarray(reward),
                                jnp.asarray(action_prob[:, sup]))
        phi = np.zeros((len(reward), k1 - 1))
        weight = np.zeros((len(reward), k1 - 1))
        phi[:, sup[1:] - 1] = np.asarray(phi_s)
        weight[:, sup[1:] - 1] = np.asarray(weight_s)
        self.outcome_params_, self.supported_actions_ = params, sup
        return phi, weight

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> DRLearner:
        phi, weight = self.pseudo_outcomes(x, action, reward, action_prob, n_actions)
        cols = self.supported_actions_[1:] - 1
        empty = [int(a) + 1 for a in cols[weight[:, cols].sum(axis=0) == 0]]
        if empty:
            raise ValueError(f"DRLearner.fit: offers {empty} are never logged where no-offer is "
                             f"also possible (no row has e_a > 0 and e_0 > 0), so their effect "
                             f"is not identified. Fix: pass action_prob with a no-offer holdout "
                             f"on the rows that can get those offers.")
        xa = jnp.asarray(x, dtype=jnp.float64)
        self.final_params_ = _fit_columns(self.final, xa, jnp.asarray(phi[:, cols]),
                                          jnp.asarray(weight[:, cols]))
        self.n_actions_, self.n_features_ = phi.shape[1] + 1, xa.shape[1]
        return self

    def _tau(self, x: jax.Array) -> jax.Array:
        """``tau`` of the supported arms, ``(n, len(supported_actions_))``."""
        return _with_control(predict_stacked(self.final, self.final_params_, x))

    def _mu(self, x: jax.Array) -> jax.Array:
        pred = predict_stacked(self.base, self.outcome_params_, x)
        n_sup = len(self.supported_actions_)
        mu0 = pred.reshape(x.shape[0], self.n_folds, n_sup)[:, :, 0].mean(axis=1)
        return mu0[:, None] + self._tau(x)


# ---------------------------------------------------------------------------------------------
# R-learner
# ---------------------------------------------------------------------------------------------


@float64_methods("fit", "predict_mu", "predict_tau")
@dataclasses.dataclass
class RLearner(_Predictions):
    """Multi-action R-learner (Nie & Wager 2021) with a linear effect model.

    Robinson decomposition with logged propensities ``e_a(x) = action_prob``:
    ``y - m(x) = sum_{a>=1} (1{A=a} - e_a(x)) tau_a(x) + eps``, where ``m(x) = E[y | x]`` is fitted
    by ``base`` with K-fold cross-fitting. With ``tau_a(x) = theta_a · [1, x]`` this is one ridge
    regression (penalty ``alpha`` on the slopes) of the residual on the features
    ``(1{A=a} - e_a) [1, x]``, solved in closed form (float64). Consistent when ``e`` is the true
    logging policy and ``m`` converges. ``predict_mu = mu_0(x) + tau`` with ``mu_0`` fitted by
    ``base`` on the control rows. Only the supported offers enter the decomposition (an
    unsupported offer has ``1{A=a} - e_a = 0`` on every row, so the log says nothing about it).

    Cross-fitting of ``m`` (:mod:`estimators.crossfit`): folds
    ``fold_ids(n, n_folds, jax.random.key(seed))``, one model per fold fitted on the rows outside
    it (all arms, so the support rule holds whenever ``2 <= n_folds <= n``).
    """

    base: BaseModel = dataclasses.field(default_factory=Ridge)
    alpha: float = 1.0
    n_folds: int = 2
    seed: int = 0
    theta_: Any = dataclasses.field(default=None, repr=False)
    mu0_params_: Any = dataclasses.field(default=None, repr=False)
    n_actions_: int | None = dataclasses.field(default=None, repr=False)
    n_features_: int | None = dataclasses.field(default=None, repr=False)
    supported_actions_: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def fit(self, x: Any, action: Any, reward: Any, action_prob: Any | None = None,
            n_actions: int | None = None) -> RLearner:
        x, action, reward, action_prob, k1 = check_fit_inputs(
            x, action, reward, action_prob, n_actions, "RLearner.fit", require_propensity=True,
            base=self.base)
        n, d = x.shape
        folds = _learner_folds(self, None, None, n)
        m_hat = np.asarray(cross_fit(self.base, x, reward, folds, n_folds=self.n_folds).predictions)
        sup = supported_actions(action, action_prob, k1)
        offers = sup[1:]
        resid_t = np.eye(k1)[action][:, offers] - action_prob[:, offers]  # (n, len(offers))
        x1 = np.concatenate([np.ones((n, 1)), x], axis=1)  # (n, d+1)
        z = (resid_t[:, :, None] * x1[:, None, :]).reshape(n, -1)  # (n, len(offers)*(d+1))
        # Penalise slopes only: scale alpha by a mask via a weighted identity.
        pen = np.tile(np.concatenate([[1e-8], np.ones(d)]), len(offers)) * self.alpha
        theta = _r_solve_pen(jnp.asarray(z), jnp.asarray(reward - m_hat), jnp.asarray(pen))
        self.theta_ = theta.reshape(len(offers), d + 1)
        self.mu0_params_ = self.base.fit(x, reward, (action == 0).astype(np.float64))
        self.n_actions_, self.n_features_, self.supported_actions_ = k1, d, sup
        return self

    def _tau(self, x: jax.Array) -> jax.Array:
        """``tau`` of the supported arms, ``(n, len(supported_actions_))``."""
        x1 = jnp.concatenate([jnp.ones((x.shape[0], 1)), x], axis=1)
        return _with_control(x1 @ self.theta_.T)

    def _mu(self, x: jax.Array) -> jax.Array:
        return self.base.predict(self.mu0_params_, x)[:, None] + self._tau(x)


@jax.jit
def _r_solve_pen(z: jax.Array, y: jax.Array, pen: jax.Array) -> jax.Array:
    gram = z.T @ z + jnp.diag(pen)
    chol = jax.scipy.linalg.cho_factor(gram)
    return jax.scipy.linalg.cho_solve(chol, z.T @ y)
