r"""Cross-fitted outcome model ``q_hat (n, K+1)`` for the doubly robust OPE estimators.

``q_hat[i, a]`` estimates ``E[reward | x_i, a]`` with one base model per action (any
:class:`estimators.base.BaseModel`: ``Ridge``, ``Logistic``, ``MLP``), fitted on the rows that
took action ``a``. K-fold cross-fitting: row ``i`` in fold ``f`` is predicted by the models fitted
on the other folds only, so ``q_hat`` is independent of row ``i``'s own noise (the condition under
which DR's analytic CI stays valid; Chernozhukov et al., 2018). Needs every action in every
training split: for each fold ``f`` and action ``a`` at least one row with action ``a`` outside
``f`` (otherwise that model is fitted on nothing and its prediction is the base model's prior,
e.g. 0 for ridge). The folds are drawn first and this is checked for every (fold, action) pair,
in every seed, before any fit; a violation is a ``ValueError`` naming ``action``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from estimators.base import BaseModel, Ridge

jax.config.update("jax_enable_x64", True)

__all__ = ["DEFAULT_BASE", "cross_fit_q_hat", "cross_fit_q_hat_batch"]

DEFAULT_BASE: BaseModel = Ridge(alpha=1.0)


def _fold_ids(n: int, n_folds: int, key: jax.Array) -> jax.Array:
    return jax.random.permutation(key, jnp.arange(n) % n_folds)


def _masks(action: jax.Array, fold: jax.Array, n_actions: int, n_folds: int) -> jax.Array:
    """(n_folds * n_actions, n) training weights: 1 where row is outside fold f and took a."""
    f = jnp.repeat(jnp.arange(n_folds), n_actions)[:, None]
    a = jnp.tile(jnp.arange(n_actions), n_folds)[:, None]
    return ((fold[None, :] != f) & (action[None, :] == a)).astype(jnp.float64)


def _core(base: BaseModel, x: jax.Array, action: jax.Array, reward: jax.Array, fold: jax.Array,
          n_actions: int, n_folds: int) -> jax.Array:
    n = x.shape[0]
    masks = _masks(action, fold, n_actions, n_folds)
    params = jax.lax.map(lambda w: base.fit(x, reward, w), masks)
    preds = jax.vmap(lambda p: base.predict(p, x))(params)  # (F*A, n)
    preds = preds.reshape(n_folds, n_actions, n)
    # row i takes the models of its own held-out fold: preds[fold_i, :, i]
    return jnp.take_along_axis(preds, fold[None, None, :], axis=0)[0].T  # (n, A)


_core_jit = jax.jit(_core, static_argnames=("base", "n_actions", "n_folds"))


@partial(jax.jit, static_argnames=("base", "n_actions", "n_folds"))
def _core_batch(base, x, action, reward, folds, n_actions, n_folds):
    return jax.vmap(lambda xs, a, r, f: _core(base, xs, a, r, f, n_actions, n_folds))(
        x, action, reward, folds)


_fold_ids_jit = jax.jit(_fold_ids, static_argnums=(0, 1))
_fold_ids_batch = jax.jit(jax.vmap(_fold_ids, in_axes=(None, None, 0)), static_argnums=(0, 1))


def _check_fold_support(action: np.ndarray, folds: np.ndarray, n_actions: int,
                        n_folds: int) -> None:
    """Raise unless every (fold f, action a) training set, the rows with action ``a`` outside
    fold ``f``, is non-empty (in every seed for ``(S, n)`` inputs)."""
    a2, f2 = np.atleast_2d(action), np.atleast_2d(folds)
    for s in range(a2.shape[0]):
        counts = np.bincount(f2[s] * n_actions + a2[s], minlength=n_folds * n_actions).reshape(
            n_folds, n_actions)
        train = counts.sum(axis=0)[None, :] - counts  # rows of action a outside fold f
        if (train == 0).any():
            bad = sorted({int(a) for a in np.nonzero(train == 0)[1]})
            where = f" in seed {s}" if action.ndim == 2 else ""
            raise ValueError(
                f"action: actions {bad} have no training rows in some fold's complement{where} "
                f"(logged {counts.sum(axis=0)[bad].tolist()} times, n_folds={n_folds}), so their "
                "cross-fitted outcome model would be fitted on nothing and predict the base "
                "model's prior. Fix: lower n_folds, try another key, or log more rows of those "
                "actions.")


def _check(x: Any, action: Any, reward: Any, n_actions: int, n_folds: int,
           batched: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
    x = np.asarray(x, dtype=np.float64)
    action = np.asarray(action)
    reward = np.asarray(reward, dtype=np.float64)
    lead = 1 if batched else 0
    if x.ndim != 2 + lead:
        raise ValueError(f"x: expected {'(S, n, d)' if batched else '(n, d)'}, got {x.shape}. "
                         "Fix: pass one feature row per logged row.")
    if action.shape != x.shape[:-1] or reward.shape != x.shape[:-1]:
        raise ValueError(f"action/reward: shapes {action.shape}/{reward.shape} disagree with x "
                         f"{x.shape}. Fix: pass one action and reward per row of x.")
    if not np.issubdtype(action.dtype, np.integer):
        raise ValueError(f"action: dtype {action.dtype} is not integer. Fix: encode 0..K.")
    if n_actions < 1 or action.min() < 0 or action.max() >= n_actions:
        raise ValueError(f"action: values must lie in [0, {n_actions - 1}] (n_actions="
                         f"{n_actions}). Fix: pass n_actions = K+1.")
    if n_folds < 2 or n_folds > x.shape[-2]:
        raise ValueError(f"n_folds: need 2 <= n_folds <= n, got {n_folds}. Fix: use 5.")
    if not (np.isfinite(x).all() and np.isfinite(reward).all()):
        raise ValueError("x/reward: contain NaN or inf. Fix: repair or drop those rows.")
    return jnp.asarray(x), jnp.asarray(action), jnp.asarray(reward)


def cross_fit_q_hat(x: Any, action: Any, reward: Any, *, n_actions: int,
                    base: BaseModel = DEFAULT_BASE, n_folds: int = 5,
                    key: jax.Array | None = None) -> jax.Array:
    """Cross-fitted ``q_hat (n, n_actions)``: ``q_hat[i, a] = m_{a, -f(i)}(x_i)`` where
    ``m_{a, -f}`` is ``base`` fitted on rows with action ``a`` outside fold ``f`` (random balanced
    folds from ``key``). One compilation for all ``n_folds * n_actions`` fits. Raises
    ``ValueError`` naming ``action`` if some (fold, action) training set is empty."""
    x, action, reward = _check(x, action, reward, n_actions, n_folds, batched=False)
    key = jax.random.key(0) if key is None else key
    fold = _fold_ids_jit(x.shape[0], n_folds, key)
    _check_fold_support(np.asarray(action), np.asarray(fold), n_actions, n_folds)
    return _core_jit(base, x, action, reward, fold, n_actions, n_folds)


def cross_fit_q_hat_batch(x: Any, action: Any, reward: Any, *, n_actions: int,
                          base: BaseModel = DEFAULT_BASE, n_folds: int = 5,
                          key: jax.Array | None = None) -> jax.Array:
    """:func:`cross_fit_q_hat` on S logs at once (leading seed axis on ``x, action, reward``),
    ``vmap``-ed in one compilation; returns ``(S, n, n_actions)``."""
    x, action, reward = _check(x, action, reward, n_actions, n_folds, batched=True)
    key = jax.random.key(0) if key is None else key
    folds = _fold_ids_batch(x.shape[1], n_folds, jax.random.split(key, x.shape[0]))
    _check_fold_support(np.asarray(action), np.asarray(folds), n_actions, n_folds)
    return _core_batch(base, x, action, reward, folds, n_actions, n_folds)
