"""`LoggedData`: the contract between the world (or a real-data adapter) and every later stage.

One row per decision. Arrays in the hot path; :meth:`LoggedData.to_pandas` for people.
Validation happens at construction and raises ``ValueError`` naming the offending field and the fix.
The record is a registered JAX pytree, so batches of logs (a leading seed axis) flow through
``jax.vmap``/``jax.jit``; rebuilding from leaves skips validation, and :meth:`LoggedData.seed`
slices one seed out of a batch and validates it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, NoReturn

import jax
import numpy as np
import pandas as pd

from estimators import checks
from estimators.precision import float64
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
    @float64
    def tau_value(self) -> Any:
        """True incremental value ``mu_value[:, a] - mu_value[:, 0]``."""
        return self.mu_value - self.mu_value[..., :1]

    @property
    @float64
    def tau_cost(self) -> Any:
        """True incremental cost ``mu_cost[:, a] - mu_cost[:, 0]``."""
        return self.mu_cost - self.mu_cost[..., :1]

    @property
    @float64
    def tau_value_accounting(self) -> Any:
        return self.mu_value_accounting - self.mu_value_accounting[..., :1]


_ROW_FIELDS = ("segment", "period", "action", "value", "value_accounting", "cost")


def _field(name: str) -> str:
    return f"LoggedData.{name}"


def _fail(field: str, problem: str, fix: str, *, row: int | None = None) -> NoReturn:
    checks.fail(_field(field), problem, fix, row=row)


def _as_np(a: Any) -> np.ndarray:
    return np.asarray(a)


def _at_least(field: str, a: np.ndarray, low: int, meaning: str, fix: str) -> None:
    """Fail if any entry of ``a`` is below ``low``, naming the first offending row."""
    if a.size and a.min() < low:
        idx = np.argwhere(a < low)[0]
        _fail(field, f"values must be >= {low} ({meaning}), got {a[tuple(idx)]}", fix,
              row=int(idx[0]))


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
            _fail("action_prob", "this log recorded no propensities (confounded historical "
                  "policy), so pscore does not exist", "log the full action distribution, or use "
                  "an estimator that does not need propensities (and expect bias)")
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
        """Every field against the contract of the class docstring; shared checks (and their
        tolerances) from :mod:`estimators.checks`, so the estimators and the decision layer reject
        exactly what this record rejects."""
        x = _as_np(self.x)
        if x.ndim != 2:
            _fail("x", f"expected shape (n, d), got {x.shape}", "pass a 2-D feature matrix")
        n = x.shape[0]
        if n == 0:
            _fail("x", "no rows", "pass at least one logged decision")
        if not np.issubdtype(x.dtype, np.number):
            _fail("x", f"dtype {x.dtype} is not numeric", "encode features as floats")
        checks.check_finite(_field("x"), x, "impute or drop non-finite features")
        n_logged = np.shape(_as_np(self.action))[:1]
        if n_logged and n_logged[0] != n and np.shape(_as_np(self.eligible))[:1] == n_logged:
            _fail("x", f"has {n} rows but action and eligible have {n_logged[0]}",
                  "pass one feature row per logged decision")
        eligible = _as_np(self.eligible)
        if eligible.ndim != 2 or eligible.shape[0] != n:
            _fail("eligible", f"expected shape ({n}, K+1), got {eligible.shape}",
                  "pass one boolean row per decision and one column per action")
        if eligible.shape[1] < 2:
            _fail("eligible", "needs at least two actions (no-offer plus one offer)",
                  "add the offer columns")
        checks.check_eligible(_field("eligible"), eligible, eligible.shape, strict_bool=True)
        n_act = eligible.shape[1]
        for name in (*_ROW_FIELDS, "redemption_lag"):
            a = _as_np(getattr(self, name))
            if a.shape != (n,):
                _fail(name, f"expected shape ({n},), got {a.shape}", "pass one entry per row")
            checks.check_finite(_field(name), a, "drop or repair those rows")
        for name in ("segment", "period", "action", "redemption_lag"):
            a = _as_np(getattr(self, name))
            if not np.issubdtype(a.dtype, np.integer):
                _fail(name, f"dtype {a.dtype} is not integer", "pass integer codes")
        segment = _as_np(self.segment)
        if segment.min() < 0 or segment.max() >= N_SEGMENTS:
            bad = int(np.flatnonzero((segment < 0) | (segment >= N_SEGMENTS))[0])
            codes = ", ".join(f"{i} {s}" for i, s in enumerate(SEGMENT_NAMES))
            _fail("segment", f"values must lie in [0, {N_SEGMENTS - 1}], got {segment[bad]}",
                  f"encode lifecycle segments as {codes}", row=bad)
        _at_least("period", _as_np(self.period), 0, "periods count from 0",
                  "re-base periods so the first is 0")
        _at_least("redemption_lag", _as_np(self.redemption_lag), -1,
                  "periods until redemption, -1 if never redeemed",
                  "use -1 for offers that were not redeemed")
        _at_least("cost", _as_np(self.cost), 0, "realised incentive cost paid",
                  "record costs as non-negative amounts")
        action = checks.check_actions(_field("action"), self.action, n_act)
        logged_ok = eligible[np.arange(n), action]
        if not logged_ok.all():
            bad = int(np.flatnonzero(~logged_ok)[0])
            _fail("action", f"row {bad} logged action {action[bad]} which is ineligible",
                  "fix the eligibility mask or drop rows whose logged action was not allowed")
        other = _as_np(self.other_actions)
        if other.ndim != 2 or other.shape[0] != n:
            _fail("other_actions", f"expected shape ({n}, P), got {other.shape}",
                  "pass one column per concurrent program (P may be 0)")
        checks.check_finite(_field("other_actions"), other,
                            "pass integer assignments (0 = not treated), no NaN")
        if (other.astype(np.float64) % 1 != 0).any():
            bad = int(np.argwhere(other.astype(np.float64) % 1 != 0)[0, 0])
            _fail("other_actions", "values must be whole numbers",
                  "pass integer assignments (0 = not treated)", row=bad)
        _at_least("other_actions", other, 0, "0 = not treated, k > 0 = the program's action",
                  "encode each program's assignment as 0 (not treated) or a positive code")
        face = _as_np(self.face_value)
        if face.shape != (n_act,):
            _fail("face_value", f"expected shape ({n_act},), got {face.shape}",
                  "pass one face value per action, 0 for no-offer")
        checks.check_finite(_field("face_value"), face, "pass one finite face value per action")
        if face[0] != 0 or (face < 0).any():
            _fail("face_value", "must be non-negative, with face_value[0] == 0",
                  "no-offer has no face value")
        if self.action_prob is not None:
            prob = _as_np(self.action_prob)
            if prob.shape != eligible.shape:
                _fail("action_prob", f"expected shape {eligible.shape}, got {prob.shape}",
                      "log the full distribution over all K+1 actions")
            prob = checks.check_probability_rows(
                _field("action_prob"), prob, fix="normalise the logging distribution per row")
            leak = checks.ineligible_mass(prob, eligible)
            if (leak > checks.INELIGIBLE_MASS_ATOL).any():
                bad = int(np.flatnonzero(leak > checks.INELIGIBLE_MASS_ATOL)[0])
                _fail("action_prob", f"puts mass on ineligible actions ({leak[bad]:.6g} in row "
                      f"{bad}; tolerance {checks.INELIGIBLE_MASS_ATOL:g})",
                      "zero the probability of ineligible actions and renormalise")
            checks.check_logged_propensity(_field("action_prob"), prob, action)
        if self.truth is not None:
            for name in ("mu_value", "mu_cost", "mu_value_accounting"):
                t = _as_np(getattr(self.truth, name))
                if t.shape != eligible.shape:
                    _fail(f"truth.{name}", f"expected shape {eligible.shape}, got {t.shape}",
                          "pass truth for every (row, action)")
                checks.check_finite(_field(f"truth.{name}"), t, "check the world parameters")
            rtype = _as_np(self.truth.response_type)
            if rtype.shape != (n,):
                _fail("truth.response_type", f"expected shape ({n},), got {rtype.shape}",
                      "pass the latent response type of every row")
            if not np.issubdtype(rtype.dtype, np.integer):
                _fail("truth.response_type", f"dtype {rtype.dtype} is not integer",
                      "pass integer type codes")
            if rtype.min() < 0 or rtype.max() >= N_TYPES:
                bad = int(np.flatnonzero((rtype < 0) | (rtype >= N_TYPES))[0])
                _fail("truth.response_type", f"values must lie in [0, {N_TYPES - 1}], got "
                      f"{rtype[bad]}",
                      "encode 0 sure thing, 1 persuadable, 2 lost cause, 3 sleeping dog", row=bad)
