"""Ranking and accuracy diagnostics for uplift models, on plain arrays.

* :func:`pehe` against a known ``tau`` (simulated worlds);
* gains per row, either from truth (:func:`truth_gain`) or unbiasedly from a randomised log by
  inverse propensity weighting (:func:`ipw_gain`);
* :func:`qini_curve`, :func:`auuc`, :func:`qini_coefficient`, :func:`uplift_at_k` on any gain;
* :func:`value_cost_curve`: cumulative incremental value against cumulative incremental cost when
  users are ranked by ``tau_v / tau_c``;
* :func:`rank_monotonicity` (Spearman and inversion count across holdout bins) and
  :func:`split_stability` (spread of predictions across folds / bootstraps).

Multi-action rankings follow the policy "give each user its best predicted offer":
``a_hat(x) = argmax_{a>=1} tau_hat(x, a)``, score ``tau_hat(x, a_hat)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from estimators import checks
from estimators.checks import fail
from estimators.precision import float64

__all__ = [
    "RankMonotonicity",
    "ValueCostCurve",
    "auuc",
    "best_offer",
    "ipw_gain",
    "pehe",
    "qini_coefficient",
    "qini_curve",
    "rank_monotonicity",
    "split_stability",
    "truth_gain",
    "uplift_at_k",
    "value_at_costs",
    "value_cost_curve",
]


def _arr(a: Any, name: str, ndim: int) -> np.ndarray:
    out = np.asarray(a)
    if out.ndim != ndim:
        fail(name, f"expected a {ndim}-D array, got shape {out.shape}",
             f"pass a {ndim}-D array")
    return checks.check_finite(name, out, "check the model's predictions").astype(np.float64)


def _mask(eligible: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``eligible`` as a boolean ``shape`` array (bool, or 0/1 values), else ``ValueError``
    (:func:`estimators.checks.check_eligible`; a row may have no eligible offer)."""
    return checks.check_eligible(name, eligible, shape, require_no_offer=False)


def _actions(a: Any, name: str, n: int, k1: int) -> np.ndarray:
    """``a`` as an integer ``(n,)`` array of actions in ``[0, k1 - 1]``, else ``ValueError``
    (a -1 would silently index the last offer)."""
    out = np.asarray(a)
    if out.shape != (n,):
        fail(name, f"expected shape ({n},) (one action per row), got {out.shape}",
             "pass one action index per row")
    if not np.issubdtype(out.dtype, np.integer):
        fail(name, f"dtype {out.dtype} is not integer", "pass action indices 0..K (0 = no offer)")
    if n and (out.min() < 0 or out.max() >= k1):
        fail(name, f"values must lie in [0, {k1 - 1}] (0 = no offer, {k1} columns), got "
             f"[{out.min()}, {out.max()}]", "encode 'no offer' as 0, never -1")
    return out


@float64
def pehe(tau_hat: Any, tau_true: Any, eligible: Any | None = None) -> float:
    """Precision in estimating heterogeneous effects:
    ``sqrt(mean_{i, a>=1, eligible} (tau_hat[i,a] - tau_true[i,a])^2)`` (offer columns only).
    ``eligible`` must have the shape ``(n, K+1)`` of ``tau_hat``."""
    th = _arr(tau_hat, "pehe.tau_hat", 2)
    tt = _arr(tau_true, "pehe.tau_true", 2)
    if th.shape != tt.shape:
        fail("pehe.tau_true", f"shape {tt.shape} must match tau_hat's {th.shape}",
             "pass the truth of the same rows and actions")
    mask = np.ones_like(th, bool) if eligible is None else _mask(eligible, th.shape,
                                                                  "pehe.eligible")
    mask = mask[:, 1:]
    if not mask.any():
        fail("pehe.eligible", "no eligible (row, offer) pair", "pass a mask with some offers")
    err = (th - tt)[:, 1:][mask]
    return float(np.sqrt(np.mean(err**2)))


@float64
def best_offer(tau_hat: Any, eligible: Any | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(a_hat, score)``: each row's best eligible offer ``argmax_{a>=1} tau_hat`` and its
    predicted uplift (``(0, 0.0)`` for rows with no eligible offer)."""
    full = _arr(tau_hat, "best_offer.tau_hat", 2)
    th = full[:, 1:].copy()
    if eligible is not None:
        th[~_mask(eligible, full.shape, "best_offer.eligible")[:, 1:]] = -np.inf
    idx = np.argmax(th, axis=1)
    score = th[np.arange(len(th)), idx]
    none = ~np.isfinite(score)  # no eligible offer: "no offer", zero predicted uplift
    return np.where(none, 0, idx + 1), np.where(none, 0.0, score)


@float64
def truth_gain(tau_true: Any, chosen: Any) -> np.ndarray:
    """Exact per-row gain of giving row ``i`` the offer ``chosen[i]``: ``tau_true[i, chosen_i]``
    (``chosen (n,)`` integer in ``[0, K]``)."""
    tt = _arr(tau_true, "truth_gain.tau_true", 2)
    chosen = _actions(chosen, "truth_gain.chosen", *tt.shape)
    return tt[np.arange(len(tt)), chosen]


@float64
def ipw_gain(chosen: Any, action: Any, reward: Any, action_prob: Any) -> np.ndarray:
    """Unbiased per-row gain from a randomised log:
    ``g_i = 1{A_i = c_i} y_i / e(c_i|x_i) - 1{A_i = 0} y_i / e(0|x_i)``, with ``E[g_i | x_i] =
    tau(x_i, c_i)``. Needs ``e(c_i|x_i) > 0`` and ``e(0|x_i) > 0`` (positivity)."""
    y = _arr(reward, "ipw_gain.reward", 1)
    e = _arr(action_prob, "ipw_gain.action_prob", 2)
    if e.shape[0] != len(y):
        fail("ipw_gain.action_prob", f"expected shape ({len(y)}, K+1) like reward, got {e.shape}",
             "pass the logged propensities of the same rows")
    chosen = _actions(chosen, "ipw_gain.chosen", *e.shape)
    action = _actions(action, "ipw_gain.action", *e.shape)
    rows = np.arange(len(y))
    e_c, e_0 = e[rows, chosen], e[:, 0]
    if np.any(e_c <= 0) or np.any(e_0 <= 0):
        fail("ipw_gain.action_prob", "zero propensity for the chosen offer or for no-offer; IPW "
             "gain is not identified there", "restrict to eligible offers / rows with a holdout",
             row=int(np.flatnonzero((e_c <= 0) | (e_0 <= 0))[0]))
    return (action == chosen) * y / e_c - (action == 0) * y / e_0


@float64
def qini_curve(score: Any, gain: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(fraction, cumulative_gain)``: rank rows by ``score`` (descending) and accumulate
    ``gain / n``; both of length ``n + 1`` starting at ``(0, 0)``."""
    s = _arr(score, "qini_curve.score", 1)
    g = _arr(gain, "qini_curve.gain", 1)
    if s.shape != g.shape:
        fail("qini_curve.gain", f"shape {g.shape} must match score's {s.shape}",
             "pass one score and one gain per row")
    order = np.argsort(-s, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(g[order]) / len(g)])
    return np.linspace(0.0, 1.0, len(g) + 1), cum


@float64
def auuc(score: Any, gain: Any) -> float:
    """Area under the uplift (Qini) curve, trapezoid rule on ``[0, 1]``."""
    f, c = qini_curve(score, gain)
    return float(np.trapezoid(c, f))


@float64
def qini_coefficient(score: Any, gain: Any) -> float:
    """AUUC minus the area under random targeting (the straight line to the total gain)."""
    f, c = qini_curve(score, gain)
    return float(np.trapezoid(c, f) - 0.5 * c[-1])


@float64
def uplift_at_k(score: Any, gain: Any, fraction: float) -> float:
    """Mean gain among the top ``fraction`` of rows by ``score``:
    ``mean_{i in top k by score} gain_i`` with ``k = max(1, round(fraction n))``; ``score`` and
    ``gain`` are ``(n,)`` over the same rows. Ties are averaged over a uniformly random order of
    the tied rows, not broken by row index: the rows strictly above the k-th score count fully
    and the tied block at the boundary fills the remaining places with its mean gain, so a
    constant score gives the mean gain (random targeting)."""
    if not 0.0 < fraction <= 1.0:
        fail("uplift_at_k.fraction", f"must lie in (0, 1], got {fraction}", "e.g. 0.1")
    s = _arr(score, "uplift_at_k.score", 1)
    g = _arr(gain, "uplift_at_k.gain", 1)
    if s.shape != g.shape:
        fail("uplift_at_k.gain", f"shape {g.shape} must match score {s.shape}",
             "pass one score and one gain per row")
    if len(s) == 0:
        fail("uplift_at_k.score", "no rows", "pass at least one row")
    k = max(1, round(fraction * len(s)))
    threshold = np.sort(s)[::-1][k - 1]
    above, tied = s > threshold, s == threshold
    return float((g[above].sum() + (k - above.sum()) * g[tied].mean()) / k)


class ValueCostCurve(NamedTuple):
    cumulative_cost: np.ndarray  # (n+1,) per user
    cumulative_value: np.ndarray  # (n+1,) per user
    order: np.ndarray  # (n,) ranking used


@float64
def value_cost_curve(tau_value_hat: Any, tau_cost_hat: Any, gain_value: Any,
                     gain_cost: Any) -> ValueCostCurve:
    """Cumulative incremental value against cumulative incremental cost (both per user) when
    rows are ranked by predicted efficiency ``tau_v / tau_c``: rows with ``tau_c <= 0 < tau_v``
    (value for free) first, then descending ratio, rows with ``tau_v <= 0`` last.
    ``gain_*`` are the realised or true gains of the action each row would get."""
    tv = _arr(tau_value_hat, "value_cost_curve.tau_value_hat", 1)
    tc = _arr(tau_cost_hat, "value_cost_curve.tau_cost_hat", 1)
    gv = _arr(gain_value, "value_cost_curve.gain_value", 1)
    gc = _arr(gain_cost, "value_cost_curve.gain_cost", 1)
    if not (tv.shape == tc.shape == gv.shape == gc.shape):
        fail("value_cost_curve", "all four arrays must have the same shape (n,), got "
             f"{tv.shape}, {tc.shape}, {gv.shape}, {gc.shape}", "pass one entry per row")
    ratio = np.where(tc > 0, tv / np.where(tc > 0, tc, 1.0), np.inf)
    ratio = np.where(tv <= 0, -np.inf, ratio)
    order = np.lexsort((-tv, -ratio))  # primary: ratio desc, tie-break: value desc
    n = len(tv)
    return ValueCostCurve(np.concatenate([[0.0], np.cumsum(gc[order]) / n]),
                          np.concatenate([[0.0], np.cumsum(gv[order]) / n]), order)


@float64
def value_at_costs(tv_hat: np.ndarray, tc_hat: np.ndarray, gain_value: np.ndarray,
                   gain_cost: np.ndarray, costs: tuple[float, ...]) -> np.ndarray:
    """True incremental value per user reached at each true incremental cost per user ``c`` of
    ``costs`` along the value-vs-cost curve of :func:`value_cost_curve`
    (users in descending predicted ``tau_v / tau_c``), restricted to the users with predicted
    value uplift ``tv_hat > 0`` (the others are never targeted). Tied users (equal predicted
    ratio and value) are one block crossed in a straight line, the curve's expectation over a
    random order within the block. At the first point where the cumulative cost reaches ``c``
    the value is interpolated linearly from the point before; a curve that never costs ``c``
    gives its final value (0 when no user is targeted)."""
    tv, tc = np.asarray(tv_hat, np.float64), np.asarray(tc_hat, np.float64)
    curve = value_cost_curve(tv, tc, gain_value, gain_cost)
    m = int(np.sum(tv > 0))  # the curve ranks every tv <= 0 row after the tv > 0 rows
    ordered = curve.order[:m]
    # the curve's own sort key (ratio, then value): equal keys are one tied block
    ratio = np.where(tc > 0, tv / np.where(tc > 0, tc, 1.0), np.inf)[ordered]
    new_key = (ratio[1:] != ratio[:-1]) | (tv[ordered][1:] != tv[ordered][:-1])
    keep = np.concatenate([[0], 1 + np.flatnonzero(new_key), [m]]) if m else np.array([0])
    keep = np.unique(keep)
    cost, value = curve.cumulative_cost[keep], curve.cumulative_value[keep]
    out = np.empty(len(costs))
    for i, c in enumerate(costs):
        hit = np.flatnonzero(cost >= c)
        if not len(hit):
            out[i] = value[-1]
            continue
        j = hit[0]  # >= 1: the curve starts at cost 0 < c
        w = (c - cost[j - 1]) / (cost[j] - cost[j - 1])
        out[i] = value[j - 1] + w * (value[j] - value[j - 1])
    return out


class RankMonotonicity(NamedTuple):
    spearman: float  # rank correlation of bin order with observed uplift
    inversions: int  # pairs of bins (i < j) with observed_i > observed_j (bins ordered by pred)
    max_inversions: int  # B (B - 1) / 2


@float64
def rank_monotonicity(observed_by_bin: Any) -> RankMonotonicity:
    """Given observed uplift per bin with bins ordered by increasing predicted uplift, the
    Spearman correlation between bin rank and observed uplift and the inversion count."""
    obs = _arr(observed_by_bin, "rank_monotonicity.observed_by_bin", 1)
    b = len(obs)
    if b < 2:
        fail("rank_monotonicity.observed_by_bin", f"need at least 2 bins, got {b}",
             "use more bins")
    rho = float(stats.spearmanr(np.arange(b), obs).statistic)
    inv = int(np.sum(np.triu(obs[:, None] > obs[None, :], k=1)))
    return RankMonotonicity(rho, inv, b * (b - 1) // 2)


@float64
def split_stability(predictions: Any) -> dict[str, float]:
    """Spread of predictions across refits: ``predictions (B, n, ...)`` from B folds/bootstraps.

    Returns ``mean_sd`` (mean over rows/columns of the across-fit standard deviation),
    ``signal_sd`` (sd across rows of the mean prediction; both with ddof=1) and their ratio
    ``noise_to_signal``;
    also ``rank_corr`` (mean pairwise Spearman of the flattened predictions).

    Undefined cases are NaN, never a number: ``noise_to_signal`` when ``signal_sd = 0`` (the mean
    prediction is the same on every row: no signal to compare the spread with), ``rank_corr``
    when some fit is constant across rows (it ranks nothing). A constant-effect predictor hits
    both; ``mean_sd`` stays defined (0 when every fit returns the same constant)."""
    p = np.asarray(predictions, dtype=np.float64)
    if p.ndim < 2 or p.shape[0] < 2:
        fail("split_stability.predictions", f"need shape (B >= 2, n, ...), got {p.shape}",
             "stack at least two refits on axis 0")
    flat = p.reshape(p.shape[0], -1)
    mean_sd = float(np.mean(np.std(flat, axis=0, ddof=1)))
    signal_sd = float(np.std(flat.mean(axis=0), ddof=1))
    b = flat.shape[0]
    if np.any(np.ptp(flat, axis=1) == 0):
        rank_corr = float("nan")
    else:
        # Spearman = Pearson of ranks; np.corrcoef gives the (B, B) matrix for every B >= 2
        # (scipy's spearmanr collapses to a scalar when B = 2).
        corr = np.corrcoef(stats.rankdata(flat, axis=1))
        rank_corr = float((corr.sum() - b) / (b * (b - 1)))
    # a score constant across rows has signal_sd 0 up to round-off of its mean: below that
    # scale the ratio is undefined, not ~1e15
    scale = float(np.max(np.abs(flat))) if flat.size else 0.0
    has_signal = signal_sd > 1e-12 * max(scale, np.finfo(float).tiny)
    return dict(mean_sd=mean_sd, signal_sd=signal_sd,
                noise_to_signal=mean_sd / signal_sd if has_signal else float("nan"),
                rank_corr=rank_corr)
