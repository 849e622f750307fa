"""Incremental calibration of uplift predictions on a randomised holdout, and recalibration.

Calibration of offer ``a``: bin holdout rows by predicted ``tau_hat(x, a)`` (equal-count bins); in
each bin compare the mean prediction with the observed uplift, the propensity-weighted (Hajek)
difference in means ``sum 1{A=a} y / e_a / sum 1{A=a}/e_a - sum 1{A=0} y / e_0 / sum 1{A=0}/e_0``,
which is consistent for the bin's mean true uplift when ``e`` are the logging propensities.
Recalibration maps ``tau_hat`` to ``E[tau | tau_hat]`` by regressing the unbiased IPW pseudo-outcome
``phi = 1{A=a} y / e_a - 1{A=0} y / e_0`` (``E[phi | x] = tau(x, a)``) on ``tau_hat``
monotonically (:class:`IsotonicRecalibration`), or linearly by a propensity-weighted arm
contrast (:class:`LinearRecalibration`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
from scipy import stats
from scipy.optimize import isotonic_regression

from estimators import checks
from estimators.checks import fail
from estimators.metrics import RankMonotonicity, rank_monotonicity
from estimators.precision import float64, float64_methods

__all__ = [
    "CalibrationBins",
    "IsotonicRecalibration",
    "LinearRecalibration",
    "incremental_calibration",
    "ipw_pseudo_outcomes",
]


def _check_log(action: Any, reward: Any, action_prob: Any, n: int,
               where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A randomised log of ``n`` rows for calibration: ``action (n,)`` ints, finite ``reward
    (n,)``, ``action_prob (n, K+1)`` a probability table (:func:`estimators.checks.
    check_probability_rows`, rows summing to 1 within ``ROW_SUM_ATOL``) with a no-offer holdout
    (``action_prob[:, 0] > 0``) and positive probability of every logged action."""
    action = np.asarray(action)
    if action.shape != (n,) or np.shape(reward) != (n,):
        fail(where, f"action and reward must have shape ({n},) like the predictions, got "
             f"{action.shape} and {np.shape(reward)}", "pass one logged row per prediction")
    if np.ndim(action_prob) != 2 or np.shape(action_prob)[0] != n:
        fail(f"{where}.action_prob", f"must have shape ({n}, K+1), got {np.shape(action_prob)}",
             "pass the logged propensities of every action")
    reward = checks.check_finite(f"{where}.reward", reward).astype(np.float64)
    e = checks.check_finite(f"{where}.action_prob", action_prob).astype(np.float64)
    if np.any(e[:, 0] <= 0):
        fail(f"{where}.action_prob", "column 0 (no-offer holdout) must be > 0 on every row; "
             "uplift is not identified without a control", "use a log with a holdout",
             row=int(np.flatnonzero(e[:, 0] <= 0)[0]))
    k1 = e.shape[1]
    if not np.issubdtype(action.dtype, np.integer):
        fail(f"{where}.action", f"action must be integers in [0, {k1 - 1}] (0 = no offer), got "
             f"dtype {action.dtype}", "pass logged action indices")
    if np.any(action < 0) or np.any(action >= k1):
        row = int(np.flatnonzero((action < 0) | (action >= k1))[0])
        fail(f"{where}.action", f"action must be integers in [0, {k1 - 1}] (0 = no offer), got "
             f"{action[row]}", "pass logged action indices", row=row)
    e = checks.check_probability_rows(f"{where}.action_prob", e,
                                      fix="pass all K+1 logged propensity columns")
    checks.check_logged_propensity(f"{where}.action_prob", e, action,
                                   fix="pass the propensities the actions were actually drawn "
                                   "from")
    return action, reward, e


@float64
def ipw_pseudo_outcomes(action: Any, reward: Any, action_prob: Any) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """``phi (n, K)`` with ``phi[i, a-1] = 1{A=a} y / e_a - 1{A=0} y / e_0`` and a validity
    mask ``(n, K)`` (``e_a > 0``)."""
    action = np.asarray(action)
    y = np.asarray(reward, dtype=np.float64)
    e = np.asarray(action_prob, dtype=np.float64)
    k1 = e.shape[1]
    onehot = np.eye(k1)[action]
    safe = np.where(e > 0, e, 1.0)
    term = onehot * y[:, None] / safe
    return term[:, 1:] - term[:, :1], e[:, 1:] > 0


class CalibrationBins(NamedTuple):
    predicted: np.ndarray  # (B,) mean predicted uplift per bin
    observed: np.ndarray  # (B,) Hajek difference in means per bin
    stderr: np.ndarray  # (B,)
    ci_low: np.ndarray
    ci_high: np.ndarray
    count: np.ndarray  # (B,) rows per bin
    error: float  # count-weighted mean |predicted - observed|
    chi2: float  # sum_b ((predicted_b - observed_b) / stderr_b)^2
    p_value: float  # P(chi2_B >= chi2) under calibration
    miscalibrated: bool  # p_value < alpha
    monotonicity: RankMonotonicity


def _hajek(y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted mean ``sum w y / sum w`` and its linearised variance
    ``sum w^2 (y - m)^2 / (sum w)^2``."""
    sw = w.sum()
    m = float((w * y).sum() / sw)
    return m, float((w**2 * (y - m) ** 2).sum() / sw**2)


@float64
def incremental_calibration(tau_hat: Any, action: Any, reward: Any, action_prob: Any, offer: int,
                            n_bins: int = 10, alpha: float = 0.05) -> CalibrationBins:
    """Calibration of predicted uplift ``tau_hat (n,)`` of ``offer`` on a holdout log.

    Bins: ``n_bins`` equal-count bins by rank of ``tau_hat`` over rows eligible for the offer.
    Per bin the observed uplift is the Hajek difference in means (module docstring) with
    linearised standard error ``sqrt(v_a + v_0)`` (disjoint rows, independent given the bin)
    and a normal ``1 - alpha`` CI. If the predictions (fitted on other data) are calibrated,
    each standardised gap is ~N(0, 1), so ``chi2 = sum_b gap_b^2 ~ chi2(n_bins)``;
    ``miscalibrated`` when its p-value is below ``alpha``.
    """
    th = np.asarray(tau_hat, dtype=np.float64)
    if th.ndim != 1 or not np.all(np.isfinite(th)):
        fail("incremental_calibration.tau_hat", "must be a finite 1-D array (n,) of predicted "
             "uplift for one offer", "pass tau_hat[:, offer]")
    action, y, e = _check_log(action, reward, action_prob, len(th), "incremental_calibration")
    if not 1 <= offer < e.shape[1]:
        fail("incremental_calibration.offer", f"must be in [1, {e.shape[1] - 1}], got {offer}",
             "pick one of the offers")
    if n_bins < 2:
        fail("incremental_calibration.n_bins", f"need at least 2 bins, got {n_bins}",
             "e.g. n_bins=10")
    rows = e[:, offer] > 0
    th, action, y, e = th[rows], action[rows], y[rows], e[rows]
    # Equal-count bins by rank (ties broken by row order, so flat predictions still bin).
    ranks = np.argsort(np.argsort(th, kind="stable"), kind="stable")
    bin_id = ranks * n_bins // len(th)
    z = stats.norm.ppf(1 - alpha / 2)
    pred, obs, se, count = (np.zeros(n_bins) for _ in range(4))
    for b in range(n_bins):  # loop over bins, not rows
        m = bin_id == b
        treated, control = m & (action == offer), m & (action == 0)
        if treated.sum() < 2 or control.sum() < 2:
            fail("incremental_calibration", f"bin {b} has fewer than 2 treated or 2 control rows",
                 "use fewer bins (n_bins) or a larger holdout")
        m1, v1 = _hajek(y[treated], 1.0 / e[treated, offer])
        m0, v0 = _hajek(y[control], 1.0 / e[control, 0])
        pred[b], obs[b], se[b], count[b] = th[m].mean(), m1 - m0, np.sqrt(v1 + v0), m.sum()
    se = np.maximum(se, 1e-12)
    gap = (pred - obs) / se
    chi2 = float(np.sum(gap**2))
    p_value = float(stats.chi2.sf(chi2, df=n_bins))
    return CalibrationBins(pred, obs, se, obs - z * se, obs + z * se, count,
                           float(np.sum(count * np.abs(pred - obs)) / count.sum()), chi2, p_value,
                           p_value < alpha, rank_monotonicity(obs))


def _fit_inputs(tau_hat: Any, action: Any, reward: Any, action_prob: Any,
                where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    th = np.asarray(tau_hat, dtype=np.float64)
    if th.ndim != 2 or not np.all(np.isfinite(th)):
        fail(f"{where}.tau_hat", f"must be a finite (n, K) array (offer columns 1..K only), got "
             f"shape {th.shape}", "pass tau_hat[:, 1:]")
    action, y, e = _check_log(action, reward, action_prob, th.shape[0], where)
    if e.shape[1] != th.shape[1] + 1:
        fail(f"{where}.tau_hat", f"has {th.shape[1]} offer columns but action_prob has "
             f"{e.shape[1]} actions; expected K and K+1", "pass tau_hat[:, 1:]")
    phi, valid = ipw_pseudo_outcomes(action, y, e)
    return th, phi, valid


@float64_methods("fit", "transform")
@dataclasses.dataclass
class LinearRecalibration:
    """Per offer ``a``: ``tau_cal = b0_a + b1_a tau_hat``.

    Fitted on rows with ``A in {0, a}`` by propensity-weighted least squares (weights ``1/e_A``)
    of ``y`` on ``[1, t, D, D t]`` with ``t = tau_hat_a``, ``D = 1{A = a}``: the arm contrast
    ``b0 + b1 t`` is the best linear predictor of ``tau_a`` given ``t`` under randomisation with
    known propensities (the ``[1, t]`` terms absorb the baseline, so this is much less noisy than
    regressing the IPW pseudo-outcome). Fit on a calibration split, apply elsewhere."""

    coef_: np.ndarray | None = None  # (K, 2): intercept, slope

    def fit(self, tau_hat: Any, action: Any, reward: Any,
            action_prob: Any) -> LinearRecalibration:
        th, _, valid = _fit_inputs(tau_hat, action, reward, action_prob,
                                   "LinearRecalibration.fit")
        action = np.asarray(action)
        y = np.asarray(reward, dtype=np.float64)
        e = np.asarray(action_prob, dtype=np.float64)
        coef = np.zeros((th.shape[1], 2))
        for a in range(th.shape[1]):  # loop over offers
            m = valid[:, a] & ((action == 0) | (action == a + 1))
            t = th[m, a]
            treated = (action[m] == a + 1).astype(np.float64)
            if treated.sum() < 3 or (1 - treated).sum() < 3:
                fail("LinearRecalibration.fit", f"offer {a + 1} needs at least 3 treated and 3 "
                     "control rows", "a larger calibration log")
            w = 1.0 / e[m][np.arange(m.sum()), action[m]]
            design = np.stack([np.ones_like(t), t, treated, treated * t], axis=1)
            sw = np.sqrt(w)
            sol = np.linalg.lstsq(design * sw[:, None], y[m] * sw, rcond=None)[0]
            coef[a] = sol[2:]
        self.coef_ = coef
        return self

    def transform(self, tau: Any) -> np.ndarray:
        if self.coef_ is None:
            fail("LinearRecalibration", "not fitted", "call .fit first")
        tau = np.asarray(tau, dtype=np.float64)
        if tau.ndim != 2 or tau.shape[1] != len(self.coef_):
            fail("LinearRecalibration.transform.tau", f"must be (n, {len(self.coef_)}) (offer "
                 f"columns), got {tau.shape}", "pass tau[:, 1:]")
        return self.coef_[:, 0] + self.coef_[:, 1] * tau


@float64_methods("fit", "transform")
@dataclasses.dataclass
class IsotonicRecalibration:
    """Per offer ``a``: the non-decreasing step function of ``tau_hat_a`` minimising squared
    error to the IPW pseudo-outcome ``phi_a`` (pool-adjacent-violators), evaluated by linear
    interpolation between fitted points (flat outside the fitted range)."""

    knots_: list[tuple[np.ndarray, np.ndarray]] | None = None

    def fit(self, tau_hat: Any, action: Any, reward: Any,
            action_prob: Any) -> IsotonicRecalibration:
        th, phi, valid = _fit_inputs(tau_hat, action, reward, action_prob,
                                     "IsotonicRecalibration.fit")
        knots = []
        for a in range(th.shape[1]):  # loop over offers
            m = valid[:, a]
            # Collapse tied predictions first: one point per distinct tau_hat with the mean
            # pseudo-outcome, weighted by its count (else ties get arbitrary, order-dependent fits).
            xs, inv = np.unique(th[m, a], return_inverse=True)
            counts = np.bincount(inv, minlength=len(xs)).astype(np.float64)
            means = np.bincount(inv, weights=phi[m, a], minlength=len(xs)) / counts
            fitted = isotonic_regression(means, weights=counts).x
            knots.append((xs, fitted))
        self.knots_ = knots
        return self

    def transform(self, tau: Any) -> np.ndarray:
        if self.knots_ is None:
            fail("IsotonicRecalibration", "not fitted", "call .fit first")
        tau = np.asarray(tau, dtype=np.float64)
        if tau.ndim != 2 or tau.shape[1] != len(self.knots_):
            fail("IsotonicRecalibration.transform.tau", f"must be (n, {len(self.knots_)}) (offer "
                 f"columns), got {tau.shape}", "pass tau[:, 1:]")
        return np.stack([np.interp(tau[:, a], xs, ys)
                         for a, (xs, ys) in enumerate(self.knots_)], axis=1)
