"""Input checks of the off-policy estimators: shapes on the host, data inside the jitted pass.

Every message has the one shape of :func:`estimators.checks.fail`
(``field (seed s, row i): problem. Fix: fix.``) and uses its tolerances. Four steps:

1. :func:`validate_shapes` (host, before the pass): shapes, dtypes, a needed ``q_hat``; it reads
   no data, so it costs nothing for arrays already on the device.
2. :func:`flags` (traced, in the same jitted pass as the estimate, ``vmap``-ed with it over
   seeds): one bitmask per log with bit ``k`` set when some row has defect :data:`DEFECTS` ``[k]``
   (action outside ``[0, K]``, ``pscore`` outside ``(0, 1]``, non-finite ``reward``,
   ``action_dist`` or ``q_hat``, rows of ``action_dist`` not summing to 1 or negative, and for
   ``logging_dist``: non-finite, negative, rows not summing to 1, zero on the logged action,
   disagreeing with ``pscore``), and the unsupported mass. Valid inputs cost one fused reduction
   and one device-to-host transfer with the estimate.
3. Only when a bit is set, :func:`locate` (traced, its own jitted pass) finds the first offending
   row of every defect and the value to report, and :func:`raise_on_checks` raises a
   ``ValueError`` for the first defect in :data:`DEFECTS` order, in the first seed that has it.
4. :func:`warn_unsupported` warns (:class:`~estimators.ope.records.UnsupportedActionWarning`)
   when the policy puts mass on actions the logger does not support.

Both traced steps build the defects from one function (:func:`_defects`), so they agree.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from estimators.checks import PSCORE_RTOL, ROW_SUM_ATOL, fail
from estimators.ope.kernels import Rows
from estimators.ope.records import UnsupportedActionWarning
from estimators.ope.registry import ESTIMATORS, REGISTRY, EstimatorSpec

__all__ = [
    "DEFECTS",
    "Flags",
    "Located",
    "check_finite_result",
    "check_options",
    "flags",
    "get_spec",
    "locate",
    "merge_flags",
    "merge_located",
    "raise_on_checks",
    "seen_actions",
    "two_sided_z",
    "validate_shapes",
    "warn_unsupported",
]

_LOGGING_FIX = "pass the logging policy's full distribution per row (LoggedData.action_prob)"
_REPAIR = "repair or drop those rows; an estimate from non-finite data would be NaN"

# (field, problem, fix) per data defect, in the order they are reported; ``{v}`` is the value
# :func:`_defects` returns for the offending row
DEFECTS: tuple[tuple[str, str, str], ...] = (
    ("action", "values must lie in [0, {k}] (action_dist has {k1} columns), got [{lo}, {hi}]",
     "encode actions 0..K and match action_dist"),
    ("pscore", "must lie in (0, 1], got {v!r}",
     "a logged action must have had positive logging probability; fix or drop the row"),
    ("reward", "contains NaN or inf", _REPAIR),
    ("action_dist", "contains NaN or inf", _REPAIR),
    ("q_hat", "contains NaN or inf", _REPAIR),
    ("action_dist", "rows must sum to 1 (this row sums to {v:.8g}; tolerance "
     f"{ROW_SUM_ATOL:g})", "normalise the policy's distribution per row"),
    ("action_dist", "has negative probabilities", "pass a probability distribution"),
    ("logging_dist", "contains NaN or inf", _LOGGING_FIX),
    ("logging_dist", "has negative probabilities", _LOGGING_FIX),
    ("logging_dist", "rows must sum to 1 (this row sums to {v:.8g}; tolerance "
     f"{ROW_SUM_ATOL:g})", _LOGGING_FIX),
    ("logging_dist", "gives probability 0 to a logged action, which the logger could then "
     "never have taken", "pass the distribution the logged actions were actually drawn from"),
    ("logging_dist", "disagrees with pscore: logging_dist[i, action_i] != pscore_i (relative "
     f"gap {{v:.3g}}; tolerance {PSCORE_RTOL:g})",
     "pass pscore = logging_dist[i, action_i] from the same logging policy"),
)


class Flags(NamedTuple):
    """The fast data checks of one log (scalars; ``(S,)`` per seed under ``vmap``)."""

    defects: jax.Array  # int32 bitmask, bit k: some row has defect DEFECTS[k]
    unsupported: jax.Array  # mean_i sum_a pi(a|x_i) 1{logger does not support a at x_i}


class Located(NamedTuple):
    """Where each defect first occurs in one log (``(D,)``; ``(S, D)`` per seed), ``D =
    len(DEFECTS)``: its first row (``-1``: none) and the value reported for that row."""

    row: jax.Array
    value: jax.Array
    action_min: jax.Array  # min_i a_i and max_i a_i, for the action message
    action_max: jax.Array


# ------------------------------------------------------------------------- traced (in the pass)
def _defects(reward, action, pscore, action_dist, q_hat, logging_dist,
             rows: Rows) -> tuple[list[jax.Array], list[jax.Array]]:
    """Per-row defect masks ``(n,)`` in :data:`DEFECTS` order, and per defect the ``(n,)``
    value its message reports. Checks that do not apply (no ``q_hat`` / ``logging_dist``) are
    constant False."""
    dtype = jnp.float64
    n, k1 = action_dist.shape
    pi = action_dist.astype(dtype)
    ps = pscore.astype(dtype)
    zero = jnp.zeros(n, dtype)
    never = jnp.zeros(n, bool)
    row_sum = jnp.sum(pi, axis=1)  # a NaN/inf in a row of pi makes its row sum non-finite
    masks = [
        (action < 0) | (action >= k1),
        ~(jnp.isfinite(ps) & (ps > 0) & (ps <= 1)),
        ~jnp.isfinite(rows.r),
        ~jnp.isfinite(row_sum),
        # any NaN/inf in q_hat makes its row of pi * q_hat non-finite (0 * inf = NaN), so one
        # check on dm covers the whole (n, K+1) array without another pass over it (a NaN in pi
        # does too, but action_dist is checked, and reported, first)
        never if q_hat is None else ~jnp.isfinite(rows.dm),
        jnp.abs(row_sum - 1.0) > ROW_SUM_ATOL,
        jnp.min(pi, axis=1) < 0,
    ]
    values = [zero, ps, zero, zero, zero, row_sum, zero]
    if logging_dist is None:
        masks += [never] * 5
        values += [zero] * 5
    else:
        ld = logging_dist.astype(dtype)
        ld_sum = jnp.sum(ld, axis=1)  # a NaN/inf in a row of ld makes its sum non-finite
        ld_logged = jnp.take_along_axis(ld, action[:, None], axis=1)[:, 0]
        rel = jnp.abs(ps - ld_logged) / ps
        masks += [~jnp.isfinite(ld_sum), jnp.min(ld, axis=1) < 0,
                  jnp.abs(ld_sum - 1.0) > ROW_SUM_ATOL, ld_logged <= 0, rel > PSCORE_RTOL]
        values += [zero, zero, ld_sum, zero, rel]
    return masks, values


def _unsupported(action, action_dist, logging_dist, seen) -> jax.Array:
    """``mean_i sum_a pi(a|x_i) 1{a unsupported at x_i}``: support from ``logging_dist > 0``,
    else ``seen (K+1,)``, else the actions present in ``action``."""
    dtype = jnp.float64
    pi = action_dist.astype(dtype)
    if logging_dist is not None:
        return jnp.mean(jnp.sum(jnp.where(logging_dist.astype(dtype) > 0, 0.0, pi), axis=1))
    if seen is None:
        seen = jnp.zeros(action_dist.shape[1], bool).at[action].set(True)
    return jnp.mean(pi @ (~seen).astype(dtype))  # global support: one matrix-vector product


def flags(reward, action, pscore, action_dist, q_hat, logging_dist, seen, rows: Rows) -> Flags:
    """The defect bitmask and unsupported mass of one log (traced with :func:`per_row_terms`,
    whose ``rows`` it reuses)."""
    masks, _ = _defects(reward, action, pscore, action_dist, q_hat, logging_dist, rows)
    # one `any` per mask (XLA fuses them with the producers; a bitwise-or reduction over a
    # per-row code measured ~2x slower on CPU)
    defects = sum(jnp.where(jnp.any(m), jnp.int32(1 << k), jnp.int32(0))
                  for k, m in enumerate(masks))
    return Flags(defects, _unsupported(action, action_dist, logging_dist, seen))


def _first(bad: jax.Array) -> jax.Array:
    """Index of the first True of a (n,) mask, -1 when there is none."""
    return jnp.where(jnp.any(bad), jnp.argmax(bad), -1)


def locate(reward, action, pscore, action_dist, q_hat, logging_dist, rows: Rows) -> Located:
    """First offending row and reported value of every defect of one log (traced; run only
    when :func:`flags` found one)."""
    masks, values = _defects(reward, action, pscore, action_dist, q_hat, logging_dist, rows)
    first = jnp.stack([_first(m) for m in masks])
    value = jnp.stack([v[jnp.maximum(r, 0)] for v, r in zip(values, first, strict=True)])
    return Located(first, value, jnp.min(action), jnp.max(action))


# ------------------------------------------------------------------------------------- host
def merge_flags(parts: list[Flags], sizes: list[int]) -> Flags:
    """The flags of a log from those of its consecutive row chunks (``sizes`` rows each)."""
    d, u = (np.asarray(v) for v in zip(*jax.device_get(parts), strict=True))
    return Flags(np.bitwise_or.reduce(d), np.sum(u * np.asarray(sizes, np.float64)) / sum(sizes))


def merge_located(parts: list[Located], sizes: list[int]) -> Located:
    """:class:`Located` of a log from its chunks', rows numbered from the log's first row."""
    row, value, lo, hi = (np.stack(v) for v in zip(*jax.device_get(parts), strict=True))
    offsets = np.cumsum([0, *sizes[:-1]])
    out_row = np.full(row.shape[1], -1)
    out_value = value[0].copy()
    for k in range(row.shape[1]):
        hit = np.flatnonzero(row[:, k] >= 0)
        if hit.size:
            out_row[k] = offsets[hit[0]] + row[hit[0], k]
            out_value[k] = value[hit[0], k]
    return Located(out_row, out_value, lo.min(), hi.max())


def _host(a):
    """Keep JAX arrays as they are and view anything else as NumPy (no copy): converting the
    (n, K+1) inputs with ``jnp.asarray`` here would copy them once more before the jitted pass."""
    return a if isinstance(a, jax.Array) else np.asarray(a)


def get_spec(name: str) -> EstimatorSpec:
    """The registry entry of ``name``, or a ``ValueError`` naming the known estimators."""
    if not isinstance(name, str) or name not in REGISTRY:
        fail("name", f"unknown estimator {name!r}", f"use one of {ESTIMATORS}")
    return REGISTRY[name]


@functools.lru_cache(maxsize=64)
def two_sided_z(alpha: float) -> float:
    """``z_{1 - alpha/2}``, the standard normal quantile of a two-sided ``1 - alpha`` interval
    (computed once per ``alpha``)."""
    with jax.enable_x64(True):
        return float(ndtri(1 - alpha / 2))


def check_options(spec: EstimatorSpec, lambda_: float | None,
                  alpha: float) -> tuple[float, float]:
    """``(lambda_, z)``: ``lambda_`` (``inf`` for an estimator without one) and the normal
    quantile of the ``1 - alpha`` interval, after checking both."""
    if not 0.0 < alpha < 1.0:
        fail("alpha", f"must lie in (0, 1), got {alpha}", "use 0.05 for a 95% interval")
    if spec.needs_lambda:
        if lambda_ is None or not np.isfinite(lambda_) or lambda_ <= 0:
            fail("lambda_", f"{spec.name} needs a positive finite lambda_, got {lambda_}",
                 "e.g. lambda_=10.0 (a weight threshold)")
    return float(lambda_ if lambda_ is not None else math.inf), two_sided_z(float(alpha))


def validate_shapes(reward, action, pscore, action_dist, q_hat, logging_dist,
                    spec: EstimatorSpec, batched: bool = False):
    """Shape and dtype checks on the host (no data is read; the values are checked inside the
    jitted pass). ``batched``: every argument has a leading seed axis ``S``. Returns the
    arguments, NumPy-viewed unless they are JAX arrays."""
    reward, action, pscore, action_dist = (_host(a) for a in
                                           (reward, action, pscore, action_dist))
    rows = "(S, n)" if batched else "(n,)"
    stack = "; stack one log per seed on a leading axis" if batched else ""
    if reward.ndim != 1 + batched:
        fail("reward", f"expected shape {rows}, got {reward.shape}",
             "pass one reward per row" + stack)
    if reward.shape[-1] < 2:
        fail("reward", "need at least 2 rows for a standard error", "pass more logged rows")
    if action.shape != reward.shape:
        fail("action", f"expected shape {reward.shape} like reward, got {action.shape}",
             "pass one logged action per row" + stack)
    if not jnp.issubdtype(action.dtype, jnp.integer):
        fail("action", f"dtype {action.dtype} is not integer", "encode actions as 0..K")
    if pscore.shape != reward.shape:
        fail("pscore", f"expected shape {reward.shape} like reward, got {pscore.shape}",
             "pass the logging probability of each logged action" + stack)
    if action_dist.ndim != reward.ndim + 1 or action_dist.shape[:-1] != reward.shape:
        want = "(" + ", ".join(str(d) for d in reward.shape) + ", K+1)"
        fail("action_dist", f"expected shape {want}, got {action_dist.shape}",
             "pass the evaluated policy's distribution over all K+1 actions per row" + stack)
    if spec.needs_q_hat and q_hat is None:
        fail("q_hat", f"{spec.name} needs an outcome model",
             "pass q_hat of shape " + ("(S, n, K+1)" if batched else "(n, K+1)"))
    if q_hat is not None:
        q_hat = _host(q_hat)
        if q_hat.shape != action_dist.shape:
            fail("q_hat", f"expected shape {action_dist.shape} like action_dist, got "
                 f"{q_hat.shape}", "predict every action for every row")
    if logging_dist is not None:
        logging_dist = _host(logging_dist)
        if logging_dist.shape != action_dist.shape:
            fail("logging_dist", f"expected shape {action_dist.shape} like action_dist, got "
                 f"{logging_dist.shape}", _LOGGING_FIX)
    return reward, action, pscore, action_dist, q_hat, logging_dist


def seen_actions(action, k1: int) -> np.ndarray:
    """``(K+1,)`` bool: the actions present in a host log ``action (n,)`` (its support when no
    ``logging_dist`` is given). Out-of-range actions are skipped here and reported by the pass."""
    a = np.asarray(action)
    seen = np.zeros(k1, bool)
    seen[a[(a >= 0) & (a < k1)]] = True
    return seen


def raise_on_checks(located: Located, k1: int, batched: bool = False) -> None:
    """Raise ``ValueError`` for the first defect in :data:`DEFECTS` order, in the first seed
    that has it, naming the field, seed and row. ``located`` holds host arrays: ``(D,)``, or
    ``(S, D)`` per seed when ``batched``; ``k1`` is the number of actions."""
    row = np.asarray(located.row).reshape(-1, len(DEFECTS))
    value = np.asarray(located.value).reshape(row.shape)
    lo, hi = np.ravel(located.action_min), np.ravel(located.action_max)
    for k, (field, problem, fix) in enumerate(DEFECTS):
        hit = np.flatnonzero(row[:, k] >= 0)
        if hit.size:
            s = int(hit[0])
            fail(field, problem.format(v=float(value[s, k]), k=k1 - 1, k1=k1, lo=int(lo[s]),
                                       hi=int(hi[s])),
                 fix, seed=s if batched else None, row=int(row[s, k]))


# a logging probability below this is legal but almost certainly a logging bug (warned)
SUSPICIOUS_PSCORE = 1e-12


def check_finite_result(value: Any, stderr: Any, pscore: Any, batched: bool = False) -> None:
    """Raise ``ValueError`` (field ``pscore``) when valid data still give a non-finite estimate
    or standard error: every data check passed, so the importance weights ``pi / pscore``
    overflowed (a ``pscore`` near the smallest float). ``value, stderr``: scalars, or ``(S,)``
    per seed when ``batched``."""
    bad = ~(np.isfinite(np.asarray(value)) & np.isfinite(np.asarray(stderr)))
    if not np.any(bad):
        smallest = float(np.min(np.asarray(pscore)))
        if smallest < SUSPICIOUS_PSCORE:
            warnings.warn(f"pscore: the smallest logging probability is {smallest:.3g} (an "
                          f"importance weight up to {1.0 / smallest:.3g}); the estimate is then "
                          f"one row's value. Check the logged propensities, or bound the "
                          f"weights with clipped_ips / switch_dr.", RuntimeWarning,
                          stacklevel=4)
        return
    seed = int(np.flatnonzero(np.reshape(bad, -1))[0]) if batched else None
    ps = np.asarray(pscore)[seed] if batched else np.asarray(pscore)
    row = int(np.argmin(ps))
    fail("pscore", f"the estimate or its standard error is not finite although every row is "
         f"valid: the smallest pscore, {ps[row]:.3g}, gives an importance weight up to "
         f"{1.0 / ps[row]:.3g}, which overflows the sums", "drop or repair rows whose logging "
         "probability is this small (no reweighting estimator can use them), or bound the "
         "weights with clipped_ips / switch_dr", seed=seed, row=row)


def warn_unsupported(unsupported, batched: bool = False, stacklevel: int = 4) -> None:
    """Warn when the policy puts mass on actions the logger does not support (``unsupported``:
    a scalar, or ``(S,)`` per seed when ``batched``)."""
    u = np.atleast_1d(np.asarray(unsupported))
    if (u > 0).any():
        where = f"in {int((u > 0).sum())} of {u.size} seeds " if batched else ""
        warnings.warn(
            f"{where}the evaluated policy puts {'up to ' if batched else ''}"
            f"{float(u.max()):.4f} of its mass (per row, on average) on actions the "
            "logging policy does not support; importance-weighted estimators cannot see that mass "
            "(reported as Estimate.unsupported_mass).", UnsupportedActionWarning,
            stacklevel=stacklevel)
