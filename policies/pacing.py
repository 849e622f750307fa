"""Budget pacing across T periods against one total budget, under redemption lag.

Offers issued in period s are paid when redeemed, ``lag`` periods later, with the world's geometric
lag ``P(lag = l) = (1 - q) q^l``, ``q = m / (1 + m)`` for mean lag ``m``. At the start of period t
(periods 0..t-1 closed) the part of cohort s not yet paid is expected to be ``q^(t - s)`` of its
expected cost, so

    committed_t = realised spend so far + kappa * sum_s issued_expected_s * q^(t - s)

where ``kappa`` (:func:`cost_correction`) rescales the model's expected costs by how much the
matured part actually cost (realised / expected-so-far; it corrects cost drift and model bias).
The controller (:func:`pacing_step`) re-plans every period: the remaining budget ``B -
committed_t`` is spread evenly over the remaining periods, deflated by ``kappa``, and the
allocator's budget multiplier lambda is re-solved for that period's budget. Plain arrays in and out.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from policies._validation import check_nonneg_scalar


def _lag_q(lag_mean: float) -> float:
    m = check_nonneg_scalar("lag_mean", lag_mean)
    return m / (1.0 + m)


def _history(name: str, x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or not np.all(np.isfinite(a)) or (a < 0).any():
        raise ValueError(f"{name}: expected a 1-d array of finite non-negative amounts per past "
                         f"period, got shape {a.shape}. Fix: one entry per closed period.")
    return a


def unpaid_fraction(lag_mean: float, periods_since_issue) -> np.ndarray:
    """``P(lag >= d) = q^d``: the expected share of a cohort's cost still unpaid after ``d`` closed
    periods (``d = 0``: nothing paid yet)."""
    d = np.asarray(periods_since_issue, dtype=np.float64)
    if (d < 0).any():
        raise ValueError("periods_since_issue: must be >= 0.")
    return _lag_q(lag_mean) ** d


def cost_correction(issued_expected, realised_spend, *, lag_mean: float,
                    bounds: tuple[float, float] = (0.5, 2.0), min_matured: float = 1e-9) -> float:
    """``kappa = sum(realised) / sum_s issued_expected_s (1 - q^(t - s))`` over closed periods
    s < t, clipped to ``bounds``; 1 while nothing is expected to have matured yet."""
    issued = _history("issued_expected", issued_expected)
    realised = _history("realised_spend", realised_spend)
    if issued.shape != realised.shape:
        raise ValueError("realised_spend: must have one entry per closed period, like "
                         "issued_expected.")
    t = issued.size
    matured = float(np.sum(issued * (1.0 - unpaid_fraction(lag_mean, t - np.arange(t)))))
    if matured <= min_matured:
        return 1.0
    return float(np.clip(realised.sum() / matured, *bounds))


def outstanding_liability(issued_expected, *, lag_mean: float, correction: float = 1.0) -> float:
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


def pacing_step(total_budget: float, n_periods: int, issued_expected, realised_spend, *,
                lag_mean: float, use_liability: bool = True) -> PacingDecision:
    """Budget for period t = len(issued_expected): ``max(0, B - committed) / (T - t) / kappa``.

    ``issued_expected[s]``: the model's expected cost of the offers issued in period s;
    ``realised_spend[s]``: the payments made in period s (any cohort). ``use_liability=False``
    gives the naive controller that sees realised spend only (it overspends under lag)."""
    b = check_nonneg_scalar("total_budget", total_budget)
    issued = _history("issued_expected", issued_expected)
    realised = _history("realised_spend", realised_spend)
    t = issued.size
    if int(n_periods) <= t:
        raise ValueError(f"n_periods: {n_periods} must exceed the number of closed periods {t}.")
    kappa = cost_correction(issued, realised, lag_mean=lag_mean) if use_liability else 1.0
    outstanding = outstanding_liability(issued, lag_mean=lag_mean, correction=kappa)
    committed = float(realised.sum()) + (outstanding if use_liability else 0.0)
    per_period = max(b - committed, 0.0) / (int(n_periods) - t) / kappa
    return PacingDecision(per_period, committed, b * t / int(n_periods), kappa, outstanding)
