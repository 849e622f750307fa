"""One place for input checks: the tolerances and the message shape every layer uses.

Simulators, estimators and policies all validate probability tables, actions, eligibility masks,
shapes and finite values; they do it through these functions, so an invariant has one tolerance
and every failure reads the same way::

    <field>[ (seed s, row i)]: <what is wrong>. Fix: <what to do>.

always as a ``ValueError`` (never a NaN result or a silent wrong answer). Functions here take
NumPy-convertible arrays (host values); checks that must run inside ``jit`` on traced values use
the same tolerances (:data:`ROW_SUM_ATOL`, :data:`PSCORE_RTOL`, :data:`INELIGIBLE_MASS_ATOL`).
This module imports nothing from ``simulators`` or ``policies``: it is the shared bottom layer.

Where a failure is about one (row, action) pair (mass on an ineligible action, a False no-offer
flag) the row is named in the problem text together with the action, and only a seed goes into
the location.
"""

from __future__ import annotations

import math
import operator
from typing import Any, NoReturn

import numpy as np

__all__ = [
    "INELIGIBLE_MASS_ATOL",
    "PSCORE_RTOL",
    "ROW_SUM_ATOL",
    "check_actions",
    "check_eligible",
    "check_finite",
    "check_int",
    "check_logged_propensity",
    "check_probability_rows",
    "check_shape",
    "check_support",
    "fail",
    "ineligible_mass",
    "location",
]

# A probability row (a policy's or a logger's distribution over K+1 actions) sums to 1 within this
# absolute tolerance. Float64 probabilities stored as float32 are off by <= 6e-8 relative per
# entry, so a row of up to ~16 float32 entries stays well inside it. Single entries may exceed 1
# by the same amount (round-off of a one-hot row).
ROW_SUM_ATOL = 1e-6
# pscore (the logged action's probability) agrees with logging_dist[i, action_i] within this
# relative tolerance (the same float32 storage argument).
PSCORE_RTOL = 1e-6
# Probability a distribution may put on the ineligible actions of one row, in total (round-off,
# not a decision).
INELIGIBLE_MASS_ATOL = 1e-6


def location(*, seed: int | None = None, row: int | None = None) -> str:
    """``" (seed s, row i)"`` / ``" (row i)"`` / ``""``: where in the input a check failed."""
    parts = [f"seed {seed}" if seed is not None else "", f"row {row}" if row is not None else ""]
    parts = [p for p in parts if p]
    return f" ({', '.join(parts)})" if parts else ""


def fail(field: str, problem: str, fix: str, *, seed: int | None = None,
         row: int | None = None) -> NoReturn:
    """Raise the one ``ValueError`` shape: ``field (seed, row): problem. Fix: fix.``"""
    problem, fix = problem.rstrip("."), fix.rstrip(".")
    raise ValueError(f"{field}{location(seed=seed, row=row)}: {problem}. Fix: {fix}.")


def check_int(field: str, value: Any, fix: str, *, low: int, high: int | None = None) -> int:
    """``value`` as a Python int, or ``ValueError`` naming ``field`` if it is not an integer (a
    bool is not) or lies outside ``[low, high]``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)
    except TypeError:
        fail(field, f"must be an integer, got {value!r}", fix)
    if v < low or (high is not None and v > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        fail(field, f"must be {rng}, got {v}", fix)
    return v


def check_real(field: str, value: Any, fix: str, *, low: float = -math.inf,
               high: float = math.inf, low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a Python float, or ``ValueError`` naming ``field`` if it is not a real number
    (a bool is not), not finite, or outside the interval from ``low`` to ``high`` (each end
    excluded when ``*_open``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        fail(field, f"must be a real number, got {value!r}", fix)
    v = float(value)
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and (
        v < high if high_open else v <= high)
    if not ok:
        lo = "(" if low_open or low == -math.inf else "["
        hi = ")" if high_open or high == math.inf else "]"
        fail(field, f"must be finite and in {lo}{low:g}, {high:g}{hi}, got {value!r}", fix)
    return v


def _first_bad(bad: np.ndarray) -> tuple[int | None, int | None]:
    """(seed, row) of the first True in a (n,) or (S, n) mask."""
    idx = np.argwhere(bad)[0]
    return (int(idx[0]), int(idx[1])) if bad.ndim == 2 else (None, int(idx[0]))


def _numeric(field: str, a: np.ndarray, fix: str) -> None:
    """Fail unless ``a`` has a numeric (or bool) dtype (strings, objects, ...)."""
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        fail(field, f"expected a numeric array, got dtype {a.dtype}", fix)


def check_shape(field: str, arr: Any, expected: tuple[int | None, ...], fix: str) -> np.ndarray:
    """``arr`` as an array whose shape matches ``expected`` (``None`` = any size on that axis)."""
    a = np.asarray(arr)
    if a.ndim != len(expected) or any(e is not None and s != e
                                      for s, e in zip(a.shape, expected, strict=True)):
        want = "(" + ", ".join("?" if e is None else str(e) for e in expected) + ")"
        fail(field, f"expected shape {want}, got {a.shape}", fix)
    return a


def check_finite(field: str, arr: Any, fix: str = "repair or drop those rows", *,
                 batched: bool = False) -> np.ndarray:
    """``arr`` as a numeric array with no NaN or infinite entry; the first bad row is named
    (rows are axis 0, or axis 1 under a leading seed axis when ``batched``)."""
    a = np.asarray(arr)
    _numeric(field, a, "pass numbers")
    finite = np.isfinite(a)
    if not finite.all():
        lead = min(a.ndim, 2 if batched else 1)
        bad = ~finite.reshape(*a.shape[:lead], -1).all(axis=-1) if a.ndim > lead else ~finite
        seed, row = _first_bad(bad) if bad.ndim else (None, None)
        fail(field, "contains NaN or infinite entries", fix, seed=seed, row=row)
    return a


def check_actions(field: str, action: Any, n_actions: int) -> np.ndarray:
    """Integer actions in ``[0, n_actions)`` (any leading shape)."""
    a = np.asarray(action)
    if not np.issubdtype(a.dtype, np.integer):
        fail(field, f"dtype {a.dtype} is not integer", f"encode actions as ints 0..{n_actions - 1}")
    if a.size and (a.min() < 0 or a.max() >= n_actions):
        bad = (a < 0) | (a >= n_actions)
        seed, row = _first_bad(bad.reshape(-1) if a.ndim != 2 else bad)
        value = a[seed, row] if seed is not None else a.reshape(-1)[row]
        fail(field, f"value {int(value)} is outside [0, {n_actions - 1}]",
             f"use 0 = no offer and 1..{n_actions - 1} for the offers", seed=seed, row=row)
    return a


def check_eligible(field: str, eligible: Any, shape: tuple[int, ...], *,
                   require_no_offer: bool = True, strict_bool: bool = False) -> np.ndarray:
    """An eligibility mask of exactly ``shape`` (``(n, K+1)``, or ``(S, n, K+1)``) as a bool array.

    Entries must be bool, or 0/1 numbers (converted) unless ``strict_bool``. With
    ``require_no_offer`` (the default) column 0, no-offer, must be True in every row: no-offer is
    always allowed."""
    e = np.asarray(eligible)
    if e.shape != tuple(shape):
        fail(field, f"expected shape {tuple(shape)}, got {e.shape}",
             "pass one boolean per user and action (the log's eligible mask)")
    if e.dtype != np.bool_:
        if strict_bool:
            fail(field, f"dtype {e.dtype} is not bool", "pass a boolean mask")
        if not (np.issubdtype(e.dtype, np.number) and np.all((e == 0) | (e == 1))):
            fail(field, f"entries must be boolean (0/1), got dtype {e.dtype} with other values",
                 "pass a bool mask")
        e = e.astype(bool)
    if require_no_offer and e.size and not e[..., 0].all():
        bad = ~e[..., 0]
        seed, row = _first_bad(bad) if bad.ndim <= 2 else (None, None)
        fail(field, f"column 0 (no offer) must be True in every row, row {row} has False",
             f"no-offer is always allowed; set {field}[..., 0] = True"
             if e.ndim > 2 else f"no-offer is always allowed; set {field}[:, 0] = True",
             seed=seed)
    return e


def ineligible_mass(p: Any, eligible: Any) -> np.ndarray:
    """Per row, the total probability ``sum_a p[.., a] * (1 - eligible[.., a])`` that the table
    ``p`` puts on ineligible actions (``eligible`` broadcasts against ``p``)."""
    return np.where(np.asarray(eligible, dtype=bool), 0.0, np.asarray(p, dtype=np.float64)
                    ).sum(axis=-1)


def check_support(field: str, p: Any, eligible: Any, *, eligible_field: str = "eligible",
                  fix: str | None = None) -> None:
    """At most :data:`INELIGIBLE_MASS_ATOL` of each row of ``p`` (``(n, K+1)`` or
    ``(S, n, K+1)``) on actions that ``eligible`` rules out."""
    a = np.asarray(p, dtype=np.float64)
    e = np.asarray(eligible, dtype=bool)
    if e.shape != a.shape[-e.ndim:] and e.shape != a.shape:
        fail(eligible_field, f"shape {e.shape} does not match {field}'s {a.shape}",
             "one flag per user and action")
    leak = ineligible_mass(a, e)
    bad = leak > INELIGIBLE_MASS_ATOL
    if bad.any():
        seed, row = _first_bad(bad)
        where = (seed, row) if seed is not None else (row,)
        off = np.where(np.broadcast_to(e, a.shape), 0.0, a)[where]
        fail(field, f"puts probability {leak[where]:.6g} on ineligible actions in row {row} "
             f"(action {int(np.argmax(off))}: {off.max():.6g}; tolerance "
             f"{INELIGIBLE_MASS_ATOL:g})",
             fix or f"give ineligible actions probability 0 (see {eligible_field}) and "
             "renormalise", seed=seed)


def check_probability_rows(field: str, p: Any, *, eligible: Any | None = None,
                           eligible_field: str = "eligible",
                           fix: str = "normalise each row over the actions") -> np.ndarray:
    """A table of distributions over actions, ``(n, K+1)`` or ``(S, n, K+1)``: finite numeric
    entries in ``[0, 1 + ROW_SUM_ATOL]``, every row summing to 1 within :data:`ROW_SUM_ATOL`, and
    (with ``eligible``) at most :data:`INELIGIBLE_MASS_ATOL` per row on ineligible actions
    (:func:`check_support`). Returns it as a float64 array."""
    raw = np.asarray(p)
    if raw.ndim not in (2, 3):
        fail(field, f"expected shape (n, K+1) or (S, n, K+1), got {raw.shape}",
             "one probability row per user")
    _numeric(field, raw, "pass float probabilities")
    a = raw.astype(np.float64, copy=False)
    check_finite(field, a, "pass probabilities in [0, 1]", batched=a.ndim == 3)
    bad = ((a < 0) | (a > 1 + ROW_SUM_ATOL)).any(axis=-1)
    if bad.any():
        seed, row = _first_bad(bad)
        fail(field, "has entries outside [0, 1]", "pass probabilities", seed=seed, row=row)
    sums = a.sum(axis=-1)
    bad = np.abs(sums - 1.0) > ROW_SUM_ATOL
    if bad.any():
        seed, row = _first_bad(bad)
        value = sums[(seed, row) if seed is not None else row]
        fail(field, f"expected rows summing to 1 (tolerance {ROW_SUM_ATOL:g}), this row sums "
             f"to {value:.10g}", fix, seed=seed, row=row)
    if eligible is not None:
        check_support(field, a, eligible, eligible_field=eligible_field)
    return a


def check_logged_propensity(field: str, p: Any, action: Any,
                            fix: str = "the logger must give positive probability to every "
                                       "action it takes") -> np.ndarray:
    """``pscore = p[i, action_i]`` of a validated ``(n, K+1)`` table and ``(n,)`` actions must lie
    in ``(0, 1]`` (a logged action had positive probability). Returns the pscores."""
    a = np.asarray(p)
    act = np.asarray(action)
    ps = np.take_along_axis(a, act[..., None].astype(np.int64), axis=-1)[..., 0]
    bad = ~(ps > 0)
    if bad.any():
        seed, row = _first_bad(bad)
        value = ps[(seed, row) if seed is not None else row]
        fail(field, f"the logged action has probability {value:.3g}; pscore must lie in (0, 1]",
             fix, seed=seed, row=row)
    return ps
