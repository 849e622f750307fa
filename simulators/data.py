"""`LoggedData`: the contract between the world (or a real-data adapter) and every later stage.

One row per decision. Arrays in the hot path; :meth:`LoggedData.to_pandas` for people.
Validation happens at construction and raises ``ValueError`` naming the offending field and the fix.
The record is a registered JAX pytree, so batches of logs (a leading seed axis) flow through
``jax.vmap``/``jax.jit``; rebuilding from leaves skips validation, and :meth:`LoggedData.seed`
slices one seed out of a batch and validates it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

from simulators.world import N_SEGMENTS, N_TYPES, SEGMENT_NAMES

__all__ = ["LoggedData", "Truth"]


class Truth(NamedTuple):
    """Ground truth of a simulated log, conditional on each row's observed context.

    ``mu_value[i, a] = E[value | x_i, segment_i, period_i, other_actions_i, action=a]`` (learning
    horizon); ``mu_cost`` and ``mu_value_accounting`` likewise. ``response_type`` is the latent
    response type that generated row i (0 sure thing, 1 persuadable, 2 lost cause, 3 sleeping dog).
    """

    mu_value: Any
    mu_cost: Any
    mu_value_accounting: Any
    response_type: Any

    @property
    def tau_value(self) -> Any:
        """True incremental value ``mu_value[:, a] - mu_value[:, 0]``."""
        return self.mu_value - self.mu_value[..., :1]

    @property
    def tau_cost(self) -> Any:
        """True incremental cost ``mu_cost[:, a] - mu_cost[:, 0]``."""
        return self.mu_cost - self.mu_cost[..., :1]

    @property
    def tau_value_accounting(self) -> Any:
        return self.mu_value_accounting - self.mu_value_accounting[..., :1]


_ROW_FIELDS = ("segment", "period", "action", "value", "value_accounting", "cost")
_PROB_TOL = 1e-6


def _fail(field: str, problem: str, fix: str) -> None:
    raise ValueError(f"LoggedData.{field}: {problem}. Fix: {fix}.")


def _as_np(a: Any) -> np.ndarray:
    return np.asarray(a)


def _numeric(field: str, a: np.ndarray, fix: str = "pass numbers") -> None:
    """Fail unless ``a`` has a numeric (or bool) dtype, so later finiteness checks cannot raise
    a bare ``TypeError``."""
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        _fail(field, f"dtype {a.dtype} is not numeric", fix)


def _first(mask: np.ndarray) -> str:
    """Where the first True of a (n,) or (n, m) mask is, for messages."""
    idx = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"row {idx[0]}" + (f", column {idx[1]}" if len(idx) > 1 else "")


def _finite(field: str, a: np.ndarray, fix: str) -> None:
    """Fail if ``a`` (numeric) contains NaN or inf."""
    if not np.all(np.isfinite(a)):
        _fail(field, f"contains NaN or inf (first at {_first(~np.isfinite(a))})", fix)


def _at_least(field: str, a: np.ndarray, low: int, meaning: str, fix: str) -> None:
    """Fail if any entry of ``a`` is below ``low``."""
    if a.size and a.min() < low:
        bad = a < low
        _fail(field, f"values must be >= {low} ({meaning}); {_first(bad)} is {a[bad][0]}", fix)


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, eq=False)
class LoggedData:
    """Logged decisions with their full logging distribution, outcomes and (when simulated) truth.

    Fields (``n`` rows, ``K+1`` actions with action 0 = no offer, ``P`` competing programs):

    - ``x (n, d)`` float features; ``segment (n,)`` int lifecycle segment (0 new, 1 active,
      2 lapsed); ``period (n,)`` int ``>= 0``;
    - ``eligible (n, K+1)`` bool, column 0 always true;
    - ``action (n,)`` int, the logged action;
    - ``action_prob (n, K+1)`` the logging policy's full distribution (rows sum to 1, zero where
      ineligible), or ``None`` when the logger recorded no propensities (confounded history);
    - ``value (n,)`` learning-horizon value label, ``value_accounting (n,)`` accounting-horizon
      value, ``cost (n,)`` realised incentive cost (face value paid on redemption), ``>= 0``;
    - ``redemption_lag (n,)`` int periods between assignment and redemption, ``-1`` if not redeemed;
    - ``other_actions (n, P)`` int (>= 0) assignments of the concurrent programs (0 = not
      treated);
    - ``face_value (K+1,)`` the nominal value of each offer (issued liability per assignment);
    - ``truth`` a :class:`Truth` for simulated data, ``None`` for real data (``mu_*`` of shape
      ``(n, K+1)``, ``response_type (n,)`` int in 0..3).
    """

    x: Any
    segment: Any
    period: Any
    eligible: Any
    action: Any
    action_prob: Any
    value: Any
    value_accounting: Any
    cost: Any
    redemption_lag: Any
    other_actions: Any
    face_value: Any
    truth: Truth | None = None
    validate: dataclasses.InitVar[bool] = True

    def __post_init__(self, validate: bool) -> None:
        if validate:
            self._validate()

    # ------------------------------------------------------------------ pytree
    def tree_flatten(self):
        children = tuple(getattr(self, f.name) for f in dataclasses.fields(self))
        return children, None

    @classmethod
    def tree_unflatten(cls, aux, children):
        obj = object.__new__(cls)
        for f, c in zip(dataclasses.fields(cls), children, strict=True):
            object.__setattr__(obj, f.name, c)
        return obj

    # --------------------------------------------------------------- accessors
    @property
    def n(self) -> int:
        return int(np.shape(self.action)[-1])

    @property
    def n_actions(self) -> int:
        """``K + 1`` (no-offer included)."""
        return int(np.shape(self.eligible)[-1])

    @property
    def has_propensities(self) -> bool:
        return self.action_prob is not None

    @property
    def pscore(self) -> Any:
        """``action_prob[i, action_i]``: the logging probability of the logged action."""
        if self.action_prob is None:
            raise ValueError(
                "LoggedData.action_prob: this log recorded no propensities (confounded historical "
                "policy), so pscore does not exist. Fix: log the full action distribution, or use "
                "an estimator that does not need propensities (and expect bias)."
            )
        return np.take_along_axis(
            np.asarray(self.action_prob), np.asarray(self.action)[..., None], axis=-1
        )[..., 0]

    def seed(self, i: int) -> LoggedData:
        """Seed ``i`` of a batch whose leaves carry a leading seed axis, validated."""
        leaves, treedef = jax.tree_util.tree_flatten(self)
        out = jax.tree_util.tree_unflatten(treedef, [np.asarray(a)[i] for a in leaves])
        out._validate()
        return out

    def subset(self, rows: Any) -> LoggedData:
        """A validated copy restricted to ``rows`` (index array or boolean mask)."""

        def take(a: Any) -> Any:
            return None if a is None else np.asarray(a)[rows]

        truth = None if self.truth is None else Truth(*(take(t) for t in self.truth))
        return LoggedData(
            x=take(self.x), segment=take(self.segment), period=take(self.period),
            eligible=take(self.eligible), action=take(self.action),
            action_prob=take(self.action_prob), value=take(self.value),
            value_accounting=take(self.value_accounting), cost=take(self.cost),
            redemption_lag=take(self.redemption_lag), other_actions=take(self.other_actions),
            face_value=np.asarray(self.face_value), truth=truth,
        )

    def to_pandas(self) -> pd.DataFrame:
        """One row per decision; matrix fields become numbered columns (``x_0``, ``prob_1``...)."""
        cols: dict[str, Any] = {}
        x = _as_np(self.x)
        for j in range(x.shape[1]):
            cols[f"x_{j}"] = x[:, j]
        for name in _ROW_FIELDS:
            cols[name] = _as_np(getattr(self, name))
        cols["redemption_lag"] = _as_np(self.redemption_lag)
        if self.action_prob is not None:
            cols["pscore"] = self.pscore
        other = _as_np(self.other_actions)
        for p in range(other.shape[1]):
            cols[f"other_{p}"] = other[:, p]
        for a in range(self.n_actions):
            cols[f"eligible_{a}"] = _as_np(self.eligible)[:, a]
            if self.action_prob is not None:
                cols[f"prob_{a}"] = _as_np(self.action_prob)[:, a]
            if self.truth is not None:
                cols[f"mu_value_{a}"] = _as_np(self.truth.mu_value)[:, a]
                cols[f"mu_cost_{a}"] = _as_np(self.truth.mu_cost)[:, a]
                cols[f"mu_value_accounting_{a}"] = _as_np(self.truth.mu_value_accounting)[:, a]
        if self.truth is not None:
            cols["response_type"] = _as_np(self.truth.response_type)
        return pd.DataFrame(cols)

    # -------------------------------------------------------------- validation
    def _validate(self) -> None:
        x = _as_np(self.x)
        if x.ndim != 2:
            _fail("x", f"expected shape (n, d), got {x.shape}", "pass a 2-D feature matrix")
        n = x.shape[0]
        if n == 0:
            _fail("x", "no rows", "pass at least one logged decision")
        if not np.issubdtype(x.dtype, np.number):
            _fail("x", f"dtype {x.dtype} is not numeric", "encode features as floats")
        if not np.all(np.isfinite(x)):
            _fail("x", "contains NaN or inf", "impute or drop non-finite features")
        eligible = _as_np(self.eligible)
        if eligible.ndim != 2 or eligible.shape[0] != n:
            _fail("eligible", f"expected shape ({n}, K+1), got {eligible.shape}",
                  "pass one boolean row per decision and one column per action")
        if eligible.dtype != bool:
            _fail("eligible", f"dtype {eligible.dtype} is not bool", "pass a boolean mask")
        n_act = eligible.shape[1]
        if n_act < 2:
            _fail("eligible", "needs at least two actions (no-offer plus one offer)",
                  "add the offer columns")
        if not eligible[:, 0].all():
            _fail("eligible", "column 0 (no offer) must be true for every row",
                  "no-offer is always available; set eligible[:, 0] = True")
        for name in (*_ROW_FIELDS, "redemption_lag"):
            a = _as_np(getattr(self, name))
            if a.shape != (n,):
                _fail(name, f"expected shape ({n},), got {a.shape}", "pass one entry per row")
            if not np.issubdtype(a.dtype, np.number):
                _fail(name, f"dtype {a.dtype} is not numeric", "pass numbers")
            if not np.all(np.isfinite(a)):
                _fail(name, "contains NaN or inf", "drop or repair those rows")
        for name in ("segment", "period", "action", "redemption_lag"):
            a = _as_np(getattr(self, name))
            if not np.issubdtype(a.dtype, np.integer):
                _fail(name, f"dtype {a.dtype} is not integer", "pass integer codes")
        segment = _as_np(self.segment)
        if segment.min() < 0 or segment.max() >= N_SEGMENTS:
            bad = int(np.flatnonzero((segment < 0) | (segment >= N_SEGMENTS))[0])
            codes = ", ".join(f"{i} {s}" for i, s in enumerate(SEGMENT_NAMES))
            _fail("segment", f"values must lie in [0, {N_SEGMENTS - 1}], row {bad} is "
                  f"{segment[bad]}", f"encode lifecycle segments as {codes}")
        _at_least("period", _as_np(self.period), 0, "periods count from 0",
                  "re-base periods so the first is 0")
        _at_least("redemption_lag", _as_np(self.redemption_lag), -1,
                  "periods until redemption, -1 if never redeemed",
                  "use -1 for offers that were not redeemed")
        _at_least("cost", _as_np(self.cost), 0, "realised incentive cost paid",
                  "record costs as non-negative amounts")
        action = _as_np(self.action)
        if action.min() < 0 or action.max() >= n_act:
            _fail("action", f"values must lie in [0, {n_act - 1}], got [{action.min()}, "
                  f"{action.max()}]", "encode actions as 0 (no offer) .. K")
        if not eligible[np.arange(n), action].all():
            bad = int(np.flatnonzero(~eligible[np.arange(n), action])[0])
            _fail("action", f"row {bad} logged action {action[bad]} which is ineligible",
                  "fix the eligibility mask or drop rows whose logged action was not allowed")
        other = _as_np(self.other_actions)
        if other.ndim != 2 or other.shape[0] != n:
            _fail("other_actions", f"expected shape ({n}, P), got {other.shape}",
                  "pass one column per concurrent program (P may be 0)")
        _numeric("other_actions", other, "pass integer assignments (0 = not treated)")
        _finite("other_actions", other, "pass integer assignments (0 = not treated), no NaN")
        if (other.astype(np.float64) % 1 != 0).any():
            _fail("other_actions", "values must be whole numbers",
                  "pass integer assignments (0 = not treated)")
        _at_least("other_actions", other, 0, "0 = not treated, k > 0 = the program's action",
                  "encode each program's assignment as 0 (not treated) or a positive code")
        face = _as_np(self.face_value)
        if face.shape != (n_act,):
            _fail("face_value", f"expected shape ({n_act},), got {face.shape}",
                  "pass one face value per action, 0 for no-offer")
        _numeric("face_value", face, "pass one float face value per action")
        if not np.all(np.isfinite(face)) or face[0] != 0 or (face < 0).any():
            _fail("face_value", "must be finite, non-negative, with face_value[0] == 0",
                  "no-offer has no face value")
        if self.action_prob is not None:
            prob = _as_np(self.action_prob)
            if prob.shape != eligible.shape:
                _fail("action_prob", f"expected shape {eligible.shape}, got {prob.shape}",
                      "log the full distribution over all K+1 actions")
            _numeric("action_prob", prob, "log float probabilities")
            if not np.all(np.isfinite(prob)):
                _fail("action_prob", "contains NaN or inf", "log valid probabilities")
            if (prob < 0).any() or (prob > 1 + _PROB_TOL).any():
                _fail("action_prob", "entries must lie in [0, 1]", "log probabilities")
            sums = prob.sum(axis=1)
            if not np.allclose(sums, 1.0, atol=1e-5):
                bad = int(np.argmax(np.abs(sums - 1)))
                _fail("action_prob", f"rows must sum to 1 (row {bad} sums to {sums[bad]:.6g})",
                      "normalise the logging distribution per row")
            if (prob[~eligible] > _PROB_TOL).any():
                _fail("action_prob", "puts mass on ineligible actions",
                      "zero the probability of ineligible actions and renormalise")
            ps = prob[np.arange(n), action]
            if not (ps > 0).all():
                bad = int(np.flatnonzero(ps <= 0)[0])
                _fail("action_prob", f"logged action of row {bad} has propensity {ps[bad]:.3g}; "
                      "pscore must lie in (0, 1]",
                      "the logger must give positive probability to every action it takes")
        if self.truth is not None:
            for name in ("mu_value", "mu_cost", "mu_value_accounting"):
                t = _as_np(getattr(self.truth, name))
                if t.shape != eligible.shape:
                    _fail(f"truth.{name}", f"expected shape {eligible.shape}, got {t.shape}",
                          "pass truth for every (row, action)")
                _numeric(f"truth.{name}", t, "pass float expectations")
                if not np.all(np.isfinite(t)):
                    _fail(f"truth.{name}", "contains NaN or inf", "check the world parameters")
            rtype = _as_np(self.truth.response_type)
            if rtype.shape != (n,):
                _fail("truth.response_type", f"expected shape ({n},), got {rtype.shape}",
                      "pass the latent response type of every row")
            if not np.issubdtype(rtype.dtype, np.integer):
                _fail("truth.response_type", f"dtype {rtype.dtype} is not integer",
                      "pass integer type codes")
            if rtype.min() < 0 or rtype.max() >= N_TYPES:
                _fail("truth.response_type", f"values must lie in [0, {N_TYPES - 1}], got "
                      f"[{rtype.min()}, {rtype.max()}]",
                      "encode 0 sure thing, 1 persuadable, 2 lost cause, 3 sleeping dog")
