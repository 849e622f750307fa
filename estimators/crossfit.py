r"""K-fold cross-fitting: one fold generator, one support rule, one masked-fit mechanism.

Every cross-fitted nuisance model in allocbench (the OPE outcome model ``q_hat`` of
:mod:`estimators.ope_qhat`, the DR-learner's per-arm outcome models and the R-learner's marginal
``m(x)`` in :mod:`estimators.uplift`) is built here:

* **folds** (:func:`fold_ids`, :func:`fold_ids_batch`): a random balanced assignment drawn from a
  JAX key, ``fold = permutation(key, [0, 1, ..., F-1, 0, 1, ...])``, so every fold has
  ``floor(n/F)`` or ``ceil(n/F)`` rows. Batched logs draw one key per seed (split by the caller).
* **support rule** (:data:`MIN_TRAIN_ROWS` = 1, :func:`check_fold_support`): for every fold ``f``
  and action ``a``, the training set of the model ``m_{a,-f}`` (the rows with action ``a``
  outside fold ``f``) must hold at least one row. That is the identification condition, not a
  taste: an out-of-fold model must *exist* and be independent of the rows it predicts, and that
  is all the DR/AIPW arguments use (``q_hat`` and the DR pseudo-outcome stay unbiased for any
  fixed out-of-fold model; a model fitted on few rows costs variance, not validity; the
  nominal-coverage argument of DR's analytic CI needs only that ``q_hat`` does not use the
  row's own noise). With zero rows the weighted fit has nothing to fit, and a base model
  returns its prior (0 for ridge) or NaN: a silent wrong answer. A higher threshold would
  reject valid logs (an arm with 3 rows in 2 folds always leaves one complement with 1 row) and
  would still not protect the flexible base models (an MLP also needs rows after its own
  validation split), whose own minimum belongs to the base model. The rule is checked on the
  host for every (fold, action) pair, in every seed, before any fit; a violation is a
  ``ValueError`` naming ``action``.
* **masked fits** (:func:`fit_masked`, :func:`cross_fit`): a (fold, action) model is the base
  model fitted with the 0/1 ``sample_weight`` mask ``1{fold_i != f} 1{A_i = a}`` (a zero weight
  drops a row exactly: every base model's loss is a weighted sum over rows), so all ``F * A``
  fits share one compiled fit (``jax.lax.map`` over the masks inside ``jit``: static shapes,
  peak memory of one fit). Stacked parameters are ordered fold-major: index ``f * A + a``.
  A base model that is not pure JAX (``traceable = False``: BART through ``bartz``, LightGBM)
  goes through the same masks, folds and out-of-fold selection, its fits run one after another
  on the host (:func:`is_traceable`, :class:`HostFits`); its ``fit`` drops zero-weight rows.
  A base whose loss is a weighted sum with nothing else depending on the row count
  (:func:`pads_exactly`: ridge, logistic) is fitted by :func:`fit_masked` on each mask's
  positive-weight rows only, gathered into a :func:`padded_rows` bucket (the same fit on
  ``n / (K+1)`` rows per arm instead of ``n``).
* **seed batches** (:func:`fit_masked_batch`, :func:`fit_masked_each`, :func:`cross_fit_batch`):
  the fits of S logs in one compiled call, seed ``s`` equal to its own fit; the learners'
  ``fit_batch`` (the protocol's batch path) goes through them.

All public functions run in float64 (:func:`estimators.precision.float64`).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from estimators.base import BaseModel
from estimators.checks import fail
from estimators.precision import float64

__all__ = [
    "MIN_TRAIN_ROWS",
    "CrossFit",
    "HostFits",
    "check_fold_support",
    "check_n_folds",
    "cross_fit",
    "cross_fit_batch",
    "fit_masked",
    "fit_masked_batch",
    "fit_masked_each",
    "fold_action_masks",
    "fold_ids",
    "fold_ids_batch",
    "is_traceable",
    "padded_rows",
    "pads_exactly",
    "predict_stacked",
]

# The one support rule: rows of each action a model m_{a,-f} is fitted on (module docstring).
MIN_TRAIN_ROWS = 1


class CrossFit(NamedTuple):
    """Result of :func:`cross_fit`.

    ``predictions``: out-of-fold predictions, ``(n, A)`` per action (``(n,)`` without actions):
    row ``i`` in fold ``f`` gets ``m_{a,-f}(x_i)``. ``params``: the fitted base-model params
    stacked on a leading axis of length ``F * A`` (index ``f * A + a``), or ``F`` without actions.
    """

    predictions: jax.Array
    params: Any


# ---------------------------------------------------------------------------------------------
# folds
# ---------------------------------------------------------------------------------------------


def _fold_ids(n: int, n_folds: int, key: jax.Array) -> jax.Array:
    return jax.random.permutation(key, jnp.arange(n) % n_folds)


_fold_ids_jit = jax.jit(_fold_ids, static_argnums=(0, 1))
_fold_ids_vmap = jax.jit(jax.vmap(_fold_ids, in_axes=(None, None, 0)), static_argnums=(0, 1))


@float64
def fold_ids(n: int, n_folds: int, key: jax.Array) -> jax.Array:
    """Balanced random fold per row, ``(n,)`` ints in ``[0, n_folds)``: a permutation (drawn from
    ``key``) of ``arange(n) % n_folds``, so fold sizes differ by at most one."""
    check_n_folds(n_folds, n)
    return _fold_ids_jit(n, n_folds, key)


@float64
def fold_ids_batch(n: int, n_folds: int, keys: jax.Array) -> jax.Array:
    """:func:`fold_ids` for S logs at once, one key per log (``keys (S,)``, e.g.
    ``jax.random.split(key, S)``): ``(S, n)``; row ``s`` equals
    ``fold_ids(n, n_folds, keys[s])``."""
    check_n_folds(n_folds, n)
    return _fold_ids_vmap(n, n_folds, keys)


def check_n_folds(n_folds: int, n: int) -> None:
    """Raise the shared ``ValueError`` (field ``n_folds``) unless ``2 <= n_folds <= n``."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, int | np.integer) or not (
            2 <= n_folds <= n):
        fail("n_folds", f"cross-fitting needs an integer 2 <= n_folds <= n = {n}, got {n_folds!r}",
             "use e.g. n_folds=5 (or 2 on a small log)")


def check_fold_support(action: Any, folds: Any, n_actions: int, n_folds: int, *,
                       labels: Any | None = None) -> None:
    """Raise the shared ``ValueError`` (field ``action``) unless every (fold ``f``, action ``a``)
    training set, the rows with action ``a`` outside fold ``f``, holds at least
    :data:`MIN_TRAIN_ROWS` rows (module docstring: why one). ``action``, ``folds``: ``(n,)``, or
    ``(S, n)`` for S logs (checked in every seed; the message names the first failing seed).
    ``labels[j]`` is the action reported for column ``j`` (default ``j``), for callers that fit
    a subset of the actions re-indexed ``0..A-1``."""
    a2, f2 = np.atleast_2d(np.asarray(action)), np.atleast_2d(np.asarray(folds))
    lab = np.arange(n_actions) if labels is None else np.asarray(labels)
    for s in range(a2.shape[0]):
        counts = np.bincount(f2[s] * n_actions + a2[s], minlength=n_folds * n_actions).reshape(
            n_folds, n_actions)
        train = counts.sum(axis=0)[None, :] - counts  # rows of action a outside fold f
        short = np.nonzero((train < MIN_TRAIN_ROWS).any(axis=0))[0]
        if short.size:
            where = f" in seed {s}" if np.ndim(action) == 2 else ""
            fail("action",
                 f"actions {[int(lab[a]) for a in short]} have no training rows in some fold's "
                 f"complement{where} (logged {counts.sum(axis=0)[short].tolist()} times, "
                 f"n_folds={n_folds}; each (fold, action) model needs >= {MIN_TRAIN_ROWS} row of "
                 f"its action outside its fold), so their cross-fitted outcome model would be "
                 f"fitted on nothing and predict the base model's prior",
                 "lower n_folds, draw the folds from another key (seed), or log more rows of "
                 "those actions")


# ---------------------------------------------------------------------------------------------
# masked fits
# ---------------------------------------------------------------------------------------------


def fold_action_masks(folds: jax.Array, action: jax.Array | None, n_folds: int,
                      n_actions: int | None) -> jax.Array:
    """Training weights of the cross-fitted models, one row per model (traceable):
    ``(F * A, n)`` with row ``f * A + a`` equal to ``1{fold_i != f} 1{A_i = a}``; without
    ``action``, ``(F, n)`` with row ``f`` equal to ``1{fold_i != f}``."""
    train = folds[None, :] != jnp.arange(n_folds)[:, None]  # (F, n)
    if action is None:
        return train.astype(jnp.float64)
    arm = action[None, :] == jnp.arange(n_actions)[:, None]  # (A, n)
    return (train[:, None, :] & arm[None, :, :]).reshape(n_folds * n_actions, -1).astype(
        jnp.float64)


@float64
def is_traceable(base: BaseModel) -> bool:
    """Whether ``base.fit`` / ``base.predict`` are pure JAX (traceable under ``jit``/``vmap``).

    A base model that wraps an external sampler or library (BART's MCMC through ``bartz``,
    LightGBM) sets the class attribute ``traceable = False``; its stacked fits then run one after
    another on the host and are kept as :class:`HostFits`. Every base model, traceable or not,
    honours the same contract: a zero ``sample_weight`` drops the row."""
    return bool(getattr(base, "traceable", True))


class HostFits(tuple):
    """Stacked params of a non-traceable base model: a tuple of per-fit params (index as the
    leading axis of a traceable base's stacked params)."""


def fit_masked(base: BaseModel, x: Any, y: Any, weights: Any) -> Any:
    """Fit ``base`` once per row of ``weights (m, n)``; returns params stacked on a leading axis.

    Fit ``j`` minimises the base model's weighted loss with ``sample_weight = weights[j]`` on
    label ``y (n,)`` (or ``y[j]`` for ``y (m, n)``: one target per fit, as the effect stages of
    the X- and DR-learners); with a 0/1 mask this equals the fit on the selected rows. A
    traceable base shares one compilation for all ``m`` fits (``jax.lax.map`` over the masks,
    inside ``jit`` with the base-model config static: peak memory of one fit); a non-traceable
    one (:func:`is_traceable`) fits one after another and returns :class:`HostFits`. A base
    that :func:`pads_exactly` is fitted on its positive-weight rows only (gathered per fit into
    a :func:`padded_rows` bucket, zero-weight padding), which is the same fit at a fraction of
    the rows when the masks are sparse (a T-learner arm holds ``n / (K+1)`` rows)."""
    x = jnp.asarray(x, dtype=jnp.float64)
    y = jnp.asarray(y, dtype=jnp.float64)
    weights = jnp.asarray(weights, dtype=jnp.float64)
    if not is_traceable(base):
        return HostFits(base.fit(x, y if y.ndim == 1 else y[j], weights[j])
                        for j in range(weights.shape[0]))
    if pads_exactly(base) and not isinstance(weights, jax.core.Tracer):
        return _fit_compacted(base, x[None], y[None], weights[None])
    return _fit_masked(base, x, y, weights)


@float64
def fit_masked_batch(base: BaseModel, x: Any, y: Any, weights: Any) -> Any:
    """:func:`fit_masked` on S logs at once: ``x (S, n, d)``, ``y (S, n)`` (or ``(S, m, n)``),
    ``weights (S, m, n)``; params stacked with leading axes ``(S, m)`` (a tuple of S
    :class:`HostFits` for a non-traceable base). Seed ``s``'s fits equal
    ``fit_masked(base, x[s], y[s], weights[s])``. A base that :func:`pads_exactly` runs the
    ``S * m`` fits in one compiled ``lax.map`` over gathered rows (no batched linear algebra,
    which XLA's CPU backend runs slower than a loop of plain solves); others are ``vmap``-ed."""
    x = jnp.asarray(x, dtype=jnp.float64)
    y = jnp.asarray(y, dtype=jnp.float64)
    weights = jnp.asarray(weights, dtype=jnp.float64)
    if x.ndim != 3 or weights.ndim != 3 or weights.shape[0] != x.shape[0] or (
            weights.shape[2] != x.shape[1]) or y.shape not in (x.shape[:2], weights.shape):
        fail("weights", f"expected x (S, n, d), y (S, n) or (S, m, n), weights (S, m, n); got "
             f"x {x.shape}, y {y.shape}, weights {weights.shape}",
             "stack one log per seed on the leading axis")
    n_seeds, m = weights.shape[:2]
    if not is_traceable(base):
        return tuple(fit_masked(base, x[s], y[s], weights[s]) for s in range(n_seeds))
    if pads_exactly(base):
        params = _fit_compacted(base, x, y, weights)
        return jax.tree_util.tree_map(lambda a: a.reshape(n_seeds, m, *a.shape[1:]), params)
    return _fit_masked_vmap(base, x, y, weights)


def fit_masked_each(base: BaseModel, x: list, y: list, weights: list) -> list:
    """:func:`fit_masked` of each of S logs (``x[s] (n_s, d)``, ``y[s]``, ``weights[s]
    (m_s, n_s)``): a list of S stacked params, seed ``s`` equal to ``fit_masked(base, x[s], y[s],
    weights[s])``. Seeds whose shapes agree go through one :func:`fit_masked_batch` call (the
    seed-batch path of the learners' ``fit_batch``)."""
    groups: dict[tuple, list[int]] = {}
    for s in range(len(x)):
        key = (np.shape(x[s]), np.shape(y[s]), np.shape(weights[s]))
        groups.setdefault(key, []).append(s)
    out: list = [None] * len(x)
    for members in groups.values():
        stacked = fit_masked_batch(base, np.stack([np.asarray(x[s]) for s in members]),
                                   np.stack([np.asarray(y[s]) for s in members]),
                                   np.stack([np.asarray(weights[s]) for s in members]))
        if is_traceable(base):  # slice on the host: one transfer, not one dispatch per leaf
            stacked = jax.device_get(stacked)
        for i, s in enumerate(members):
            out[s] = (stacked[i] if not is_traceable(base)  # a tuple of HostFits
                      else jax.tree_util.tree_map(lambda a, i=i: jnp.asarray(a[i]), stacked))
    return out


def _compact_rows(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices and weights of each fit's positive-weight rows: ``weights (S, m, n)`` ->
    ``seed (S*m,)``, ``index (S*m, B)``, ``w (S*m, B)`` with ``B = padded_rows(max rows)``;
    each fit's rows in their original order, then padding (index 0, weight 0)."""
    n_seeds, m, n = weights.shape
    flat = weights.reshape(n_seeds * m, n)
    fit_of, row = np.nonzero(flat > 0)
    counts = np.bincount(fit_of, minlength=n_seeds * m)
    width = padded_rows(max(int(counts.max()), 1))
    rank = np.arange(fit_of.size) - np.repeat(np.cumsum(counts) - counts, counts)
    index = np.zeros((n_seeds * m, width), dtype=np.int32)
    w = np.zeros((n_seeds * m, width))
    index[fit_of, rank] = row
    w[fit_of, rank] = flat[fit_of, row]
    return np.repeat(np.arange(n_seeds, dtype=np.int32), m), index, w


def _fit_compacted(base: BaseModel, x: jax.Array, y: jax.Array, weights: jax.Array) -> Any:
    """The ``S * m`` fits of :func:`fit_masked_batch` on gathered rows (exact for a base that
    :func:`pads_exactly`); params stacked on one leading axis of length ``S * m``."""
    seed, index, w = _compact_rows(np.asarray(weights))
    fit = np.tile(np.arange(weights.shape[1], dtype=np.int32), weights.shape[0])
    return _fit_gathered(base, x, y, jnp.asarray(seed), jnp.asarray(fit), jnp.asarray(index),
                         jnp.asarray(w))


@functools.partial(jax.jit, static_argnames=("base",))
def _fit_gathered(base: BaseModel, x: jax.Array, y: jax.Array, seed: jax.Array, fit: jax.Array,
                  index: jax.Array, w: jax.Array) -> Any:
    per_fit_y = y.ndim == 3

    def one(args: tuple[jax.Array, ...]) -> Any:
        s, j, rows, wj = args
        ys = y[s, j] if per_fit_y else y[s]
        return base.fit(x[s][rows], ys[rows], wj)

    return jax.lax.map(one, (seed, fit, index, w))


@functools.partial(jax.jit, static_argnames=("base",))
def _fit_masked_vmap(base: BaseModel, x: jax.Array, y: jax.Array, weights: jax.Array) -> Any:
    return jax.vmap(lambda xs, ys, ws: _fit_masked_traced(base, xs, ys, ws))(x, y, weights)


def pads_exactly(base: BaseModel) -> bool:
    """Whether appending zero-weight rows leaves ``base``'s fit unchanged (every statistic it
    computes is a weighted sum over rows: ``pads_exactly = True`` on ridge and logistic; not on
    the MLP, whose validation split and batches depend on the row count)."""
    return bool(getattr(base, "pads_exactly", False))


def padded_rows(n: int) -> int:
    """The row bucket of ``n``: ``n`` rounded up to a multiple of 256 up to 4,096 rows, else the
    next power of two. A log that grows round by round then compiles a fit only when it
    doubles; the padding (at most 2x rows) costs far less than a compilation for these fits."""
    if n <= 4096:
        return -(-n // 256) * 256
    return 1 << int(np.ceil(np.log2(n)))


def _fit_masked_traced(base: BaseModel, x: jax.Array, y: jax.Array, weights: jax.Array) -> Any:
    """``weights (m, n)``; ``y (n,)`` shared by every fit (not copied ``m`` times) or
    ``y (m, n)``, one target per fit."""
    if y.ndim == 1:
        return jax.lax.map(lambda w: base.fit(x, y, w), weights)
    return jax.lax.map(lambda yw: base.fit(x, yw[0], yw[1]), (y, weights))


_fit_masked = jax.jit(_fit_masked_traced, static_argnames=("base",))


@float64
def predict_stacked(base: BaseModel, params: Any, x: Any) -> jax.Array:
    """Predictions of stacked params (leading axis ``m``, or :class:`HostFits`) on ``x``:
    shape ``(n, m)``."""
    x = jnp.asarray(x, dtype=jnp.float64)
    if isinstance(params, HostFits):
        return jnp.stack([jnp.asarray(base.predict(p, x), dtype=jnp.float64) for p in params],
                         axis=1)
    return _predict_stacked(base, params, x)


@functools.partial(jax.jit, static_argnames=("base",))
def _predict_stacked(base: BaseModel, params: Any, x: jax.Array) -> jax.Array:
    return jax.vmap(lambda p: base.predict(p, x))(params).T


def _cross_fit_traced(base: BaseModel, x: jax.Array, y: jax.Array, folds: jax.Array,
                      action: jax.Array | None, n_folds: int,
                      n_actions: int | None) -> CrossFit:
    masks = fold_action_masks(folds, action, n_folds, n_actions)
    params = _fit_masked_traced(base, x, y, masks)
    preds = jax.vmap(lambda p: base.predict(p, x))(params)  # (F*A, n) or (F, n)
    return CrossFit(_out_of_fold(preds, folds, n_folds, action is not None), params)


def _out_of_fold(preds: jax.Array, folds: jax.Array, n_folds: int, per_action: bool) -> jax.Array:
    """Row ``i`` of fold ``f`` takes the predictions of the models fitted without fold ``f``:
    ``preds (F*A, n)`` (or ``(F, n)``) to ``(n, A)`` (or ``(n,)``)."""
    n = preds.shape[-1]
    preds = preds.reshape(n_folds, -1, n)
    # row i takes the models of its own held-out fold: preds[fold_i, :, i]
    oof = jnp.take_along_axis(preds, folds[None, None, :], axis=0)[0].T  # (n, A) or (n, 1)
    return oof if per_action else oof[:, 0]


def _cross_fit_host(base: BaseModel, x: jax.Array, y: jax.Array, folds: jax.Array,
                    action: jax.Array | None, n_folds: int, n_actions: int | None) -> CrossFit:
    """:func:`cross_fit` of a non-traceable base: the same masks and out-of-fold selection, the
    fits one after another on the host, and each model predicts only the rows of its held-out
    fold (the rows the out-of-fold selection keeps: the same values, ``1 / n_folds`` of the
    prediction work)."""
    params = fit_masked(base, x, y, fold_action_masks(folds, action, n_folds, n_actions))
    per_fold = len(params) // n_folds  # models are fold-major: model j is fold j // per_fold
    fold_of = np.asarray(folds)
    oof = np.zeros((x.shape[0], per_fold))
    for j, p in enumerate(params):
        rows = np.flatnonzero(fold_of == j // per_fold)
        if rows.size:
            oof[rows, j % per_fold] = np.asarray(base.predict(p, x[rows]), dtype=np.float64)
    preds = jnp.asarray(oof, dtype=jnp.float64)
    return CrossFit(preds if action is not None else preds[:, 0], params)


_cross_fit_jit = jax.jit(_cross_fit_traced, static_argnames=("base", "n_folds", "n_actions"))


@functools.partial(jax.jit, static_argnames=("base", "n_folds", "n_actions"))
def _cross_fit_vmap(base: BaseModel, x: jax.Array, y: jax.Array, folds: jax.Array,
                    action: jax.Array | None, n_folds: int, n_actions: int | None) -> CrossFit:
    return jax.vmap(lambda xs, ys, fs, a: _cross_fit_traced(base, xs, ys, fs, a, n_folds,
                                                            n_actions))(x, y, folds, action)


def _prepare(x: Any, y: Any, folds: Any, action: Any | None, n_actions: int | None,
             ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array | None]:
    if (action is None) != (n_actions is None):
        fail("n_actions", "pass action and n_actions together (per-action models) or neither "
             "(one model per fold)", "give both, or drop both")
    return (jnp.asarray(x, dtype=jnp.float64), jnp.asarray(y, dtype=jnp.float64),
            jnp.asarray(folds), None if action is None else jnp.asarray(action))


@float64
def cross_fit(base: BaseModel, x: Any, y: Any, folds: Any, *, n_folds: int,
              action: Any | None = None, n_actions: int | None = None) -> CrossFit:
    """Cross-fit ``base`` on ``(x (n, d), y (n,))`` over the given ``folds (n,)``.

    With ``action (n,)`` in ``[0, n_actions)``: one model ``m_{a,-f}`` per (fold, action), fitted
    on the rows with action ``a`` outside fold ``f``; ``predictions[i, a] = m_{a,-f(i)}(x_i)``.
    Without: one model ``m_{-f}`` per fold on all rows outside ``f`` (the marginal ``E[y | x]``
    of the R-learner); ``predictions[i] = m_{-f(i)}(x_i)``. One compilation for all fits.
    Callers check the folds first (:func:`check_fold_support`): an empty training set is not
    detected here (inside ``jit``)."""
    x, y, folds, action = _prepare(x, y, folds, action, n_actions)
    if not is_traceable(base):
        return _cross_fit_host(base, x, y, folds, action, n_folds, n_actions)
    return _cross_fit_jit(base, x, y, folds, action, n_folds, n_actions)


@float64
def cross_fit_batch(base: BaseModel, x: Any, y: Any, folds: Any, *, n_folds: int,
                    action: Any | None = None, n_actions: int | None = None) -> CrossFit:
    """:func:`cross_fit` on S logs at once (leading seed axis on ``x, y, folds, action``),
    ``vmap``-ed in one compilation: predictions ``(S, n, A)`` (or ``(S, n)``), params with
    leading axes ``(S, F * A)``."""
    x, y, folds, action = _prepare(x, y, folds, action, n_actions)
    if not is_traceable(base):
        fits = [_cross_fit_host(base, x[s], y[s], folds[s], None if action is None else action[s],
                                n_folds, n_actions) for s in range(x.shape[0])]
        return CrossFit(jnp.stack([f.predictions for f in fits]),
                        HostFits(f.params for f in fits))
    return _cross_fit_vmap(base, x, y, folds, action, n_folds, n_actions)
