"""Budget pacing across T periods against one total budget, under redemption lag.

Offers issued in period s are paid when redeemed, ``lag`` periods later, with the world's geometric
lag ``P(lag = l) = (1 - q) q^l``, ``q = m / (1 + m)`` for mean lag ``m``. At the start of period t
(periods 0..t-1 closed) the part of cohort s not yet paid is expected to be ``q^(t - s)`` of its
expected cost, so

    committed_t = realised spend so far + kappa * sum_s issued_expected_s * q^(t - s)

where ``kappa`` (:func:`cost_correction`) rescales the model's expected costs by how much the
matured part of recent cohorts actually cost (paid / expected-so-far, recency weighted; it corrects
cost drift, seasonality and model bias).
The controller (:func:`pacing_step`) re-plans every period: the remaining budget ``B -
committed_t`` is spread evenly over the remaining periods, deflated by ``kappa``, and the
allocator's budget multiplier lambda is re-solved for that period's budget. Plain arrays in and out.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from estimators.checks import fail
from estimators.precision import float64
from policies._validation import check_nonneg_scalar


def _lag_q(lag_mean: float) -> float:
    m = check_nonneg_scalar("lag_mean", lag_mean)
    return m / (1.0 + m)


def _history(name: str, x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or not np.all(np.isfinite(a)) or (a < 0).any():
        fail(name, f"expected a 1-d array of finite non-negative amounts per past period, got "
             f"shape {a.shape}", "one entry per closed period")
    return a


@float64
def unpaid_fraction(lag_mean: float, periods_since_issue: ArrayLike) -> np.ndarray:
    """``P(lag >= d) = q^d``: the expected share of a cohort's cost still unpaid after ``d`` closed
    periods (``d = 0``: nothing paid yet)."""
    d = np.asarray(periods_since_issue, dtype=np.float64)
    if (d < 0).any():
        fail("periods_since_issue", "must be >= 0", "count closed periods from 0")
    return _lag_q(lag_mean) ** d


@float64
def cost_correction(issued_expected: ArrayLike, paid_by_cohort: ArrayLike, *, lag_mean: float,
                    halflife: float | None = 2.0, bounds: tuple[float, float] = (0.5, 2.0),
                    min_matured: float = 1e-9) -> float:
    """``kappa = sum_s w_s paid_s / sum_s w_s issued_expected_s (1 - q^(t - s))`` over closed
    cohorts s < t: what the matured part of each cohort actually cost relative to the model, with
    recency weights ``w_s = 2^(-(t - 1 - s) / halflife)`` (``halflife=None``: equal weights) so
    that drift and seasonality are tracked; clipped to ``bounds``; 1 while nothing is expected to
    have matured yet. Assumption: the model's error is a common multiplicative factor."""
    issued = _history("issued_expected", issued_expected)
    paid = _history("paid_by_cohort", paid_by_cohort)
    if issued.shape != paid.shape:
        fail("paid_by_cohort", f"has {paid.size} entries but issued_expected has {issued.size}",
             "one entry per closed period (cohort), like issued_expected")
    if halflife is not None and not (np.isfinite(halflife) and halflife > 0):
        fail("halflife", f"must be a positive number of periods (or None for equal weights), got "
             f"{halflife!r}", "e.g. halflife=2.0")
    lo, hi = bounds
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
        fail("bounds", f"need 0 < low <= high, got {bounds!r}", "e.g. (0.5, 2.0)")
    t = issued.size
    age = t - np.arange(t)
    w = np.ones(t) if halflife is None else 0.5 ** ((age - 1) / float(halflife))
    matured = float(np.sum(w * issued * (1.0 - unpaid_fraction(lag_mean, age))))
    if matured <= min_matured:
        return 1.0
    return float(np.clip(np.sum(w * paid) / matured, *bounds))


@float64
def outstanding_liability(issued_expected: ArrayLike, *, lag_mean: float,
                          correction: float = 1.0) -> float:
    """``kappa * sum_s issued_expected_s q^(t - s)``: expected future payments on offers already
    issued, at the start of period t = len(issued_expected)."""
    issued = _history("issued_expected", issued_expected)
    t = issued.size
    return float(correction * np.sum(issued * unpaid_fraction(lag_mean, t - np.arange(t))))


class PacingDecision(NamedTuple):
    """``period_budget`` the expected incremental cost (model units) to allocate this period,
    ``committed`` realised + outstanding liability, ``planned`` the linear plan ``B t / T``,
    ``correction`` kappa, ``outstanding`` the liability term."""

    period_budget: float
    committed: float
    planned: float
    correction: float
    outstanding: float


@float64
def pacing_step(total_budget: float, n_periods: int, issued_expected: ArrayLike,
                paid_by_cohort: ArrayLike, *, lag_mean: float, use_liability: bool = True,
                halflife: float | None = 2.0) -> PacingDecision:
    """Budget for period t = len(issued_expected): ``max(0, B - committed) / (T - t) / kappa``.

    ``issued_expected[s]``: the model's expected cost of the offers issued in period s;
    ``paid_by_cohort[s]``: what those offers have cost so far (payments up to period t-1).
    ``use_liability=False`` gives the naive controller that sees realised spend only (no
    outstanding liability, no correction; it overspends under lag)."""
    b = check_nonneg_scalar("total_budget", total_budget)
    issued = _history("issued_expected", issued_expected)
    paid = _history("paid_by_cohort", paid_by_cohort)
    t = issued.size
    if isinstance(n_periods, bool) or not float(n_periods).is_integer():
        fail("n_periods", f"must be a whole number of periods, got {n_periods!r}",
             "pass an int")
    if int(n_periods) <= t:
        fail("n_periods", f"{n_periods} must exceed the number of closed periods {t}",
             "plan over more periods than have closed")
    kappa = (cost_correction(issued, paid, lag_mean=lag_mean, halflife=halflife)
             if use_liability else 1.0)
    outstanding = outstanding_liability(issued, lag_mean=lag_mean, correction=kappa)
    committed = float(paid.sum()) + (outstanding if use_liability else 0.0)
    per_period = max(b - committed, 0.0) / (int(n_periods) - t) / kappa
    return PacingDecision(per_period, committed, b * t / int(n_periods), kappa, outstanding)
