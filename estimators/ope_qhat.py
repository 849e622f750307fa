r"""Cross-fitted outcome model ``q_hat (n, K+1)`` for the doubly robust OPE estimators.

``q_hat[i, a]`` estimates ``E[reward | x_i, a]`` with one base model per action (any
:class:`estimators.base.BaseModel`: ``Ridge``, ``Logistic``, ``MLP``), fitted on the rows that
took action ``a``. K-fold cross-fitting: row ``i`` in fold ``f`` is predicted by the models fitted
on the other folds only, so ``q_hat`` is independent of row ``i``'s own noise (the condition under
which DR's analytic CI stays valid; Chernozhukov et al., 2018).

A thin layer over :mod:`estimators.crossfit`, which owns the mechanism: balanced random folds
from the caller's ``key`` (required: no hidden default key), the one support rule (every
(fold, action) training set holds >= ``MIN_TRAIN_ROWS`` = 1 row; checked for every pair, in every
seed, before any fit; a violation is a ``ValueError`` naming ``action``) and the masked fits.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from estimators.base import BaseModel, Ridge
from estimators.checks import fail
from estimators.crossfit import (
    check_fold_support,
    check_n_folds,
    cross_fit,
    cross_fit_batch,
    fold_ids,
    fold_ids_batch,
)
from estimators.precision import float64

__all__ = ["DEFAULT_BASE", "cross_fit_q_hat", "cross_fit_q_hat_batch"]

DEFAULT_BASE: BaseModel = Ridge(alpha=1.0)

# The fold generator cross_fit_q_hat uses (kept under its old private name for callers that
# reconstruct the folds of a given key).
_fold_ids = fold_ids


def _check(x: Any, action: Any, reward: Any, n_actions: int, n_folds: int,
           batched: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    action = np.asarray(action)
    reward = np.asarray(reward, dtype=np.float64)
    lead = 1 if batched else 0
    if x.ndim != 2 + lead:
        fail("x", f"expected {'(S, n, d)' if batched else '(n, d)'}, got {x.shape}",
             "pass one feature row per logged row")
    if action.shape != x.shape[:-1] or reward.shape != x.shape[:-1]:
        fail("action/reward", f"shapes {action.shape}/{reward.shape} disagree with x {x.shape}",
             "pass one action and reward per row of x")
    if not np.issubdtype(action.dtype, np.integer):
        fail("action", f"dtype {action.dtype} is not integer", "encode 0..K")
    if n_actions < 1 or action.min() < 0 or action.max() >= n_actions:
        fail("action", f"values must lie in [0, {n_actions - 1}] (n_actions={n_actions})",
             "pass n_actions = K+1")
    check_n_folds(n_folds, x.shape[-2])
    if not (np.isfinite(x).all() and np.isfinite(reward).all()):
        fail("x/reward", "contain NaN or inf", "repair or drop those rows")
    return x, action, reward


@float64
def cross_fit_q_hat(x: Any, action: Any, reward: Any, *, n_actions: int, key: jax.Array,
                    base: BaseModel = DEFAULT_BASE, n_folds: int = 5,
                    unsupported: str = "raise") -> jax.Array:
    """Cross-fitted ``q_hat (n, n_actions)``: ``q_hat[i, a] = m_{a, -f(i)}(x_i)`` where
    ``m_{a, -f}`` is ``base`` fitted on rows with action ``a`` outside fold ``f`` (balanced random
    folds ``crossfit.fold_ids(n, n_folds, key)``). One compilation for all
    ``n_folds * n_actions`` fits. An empty (fold, action) training set (an action the logger
    never took, or took in one fold only): ``unsupported="raise"`` (default) is a ``ValueError``
    naming ``action``; ``unsupported="zero"`` predicts 0 for that action in that fold, for logs
    that legitimately lack an action (a candidate policy evaluated on an incumbent's log): DR then
    reduces to IPS on that action, whose unsupported mass the estimator reports."""
    if unsupported not in ("raise", "zero"):
        fail("unsupported", f"expected 'raise' or 'zero', got {unsupported!r}",
             "use 'raise' (default) or 'zero'")
    x, action, reward = _check(x, action, reward, n_actions, n_folds, batched=False)
    fold = fold_ids(x.shape[0], n_folds, key)
    if unsupported == "raise":
        check_fold_support(action, np.asarray(fold), n_actions, n_folds)
    q = cross_fit(base, x, reward, fold, n_folds=n_folds, action=action,
                  n_actions=n_actions).predictions
    if unsupported == "raise":
        return q
    folds = np.asarray(fold)
    train = np.zeros((n_folds, n_actions), dtype=bool)  # has action a rows outside fold f
    for f in range(n_folds):
        train[f] = np.bincount(action[folds != f], minlength=n_actions) > 0
    return jax.numpy.asarray(np.where(train[folds], np.nan_to_num(np.asarray(q)), 0.0))


@float64
def cross_fit_q_hat_batch(x: Any, action: Any, reward: Any, *, n_actions: int, key: jax.Array,
                          base: BaseModel = DEFAULT_BASE, n_folds: int = 5) -> jax.Array:
    """:func:`cross_fit_q_hat` on S logs at once (leading seed axis on ``x, action, reward``),
    ``vmap``-ed in one compilation; log ``s`` uses the folds of key
    ``jax.random.split(key, S)[s]``. Returns ``(S, n, n_actions)``; the support check names the
    first failing seed."""
    x, action, reward = _check(x, action, reward, n_actions, n_folds, batched=True)
    folds = fold_ids_batch(x.shape[1], n_folds, jax.random.split(key, x.shape[0]))
    check_fold_support(action, np.asarray(folds), n_actions, n_folds)
    return cross_fit_batch(base, x, reward, folds, n_folds=n_folds, action=action,
                           n_actions=n_actions).predictions
