r"""Model selection for one uplift head by the design notes' criteria, on a randomised holdout.

The design notes: "prioritise incremental calibration, monotonic ranking in holdout bins, and
split stability over raw predictive fit". :func:`score_candidates` scores every candidate's
predictions ``tau_hat (n, K+1)`` of one head (value or cost) on a randomised holdout log
``(action, reward, action_prob)`` (``action_prob[:, 0] > 0``: a no-offer arm on every row; the
candidates were fitted on other data) by, per offer ``a = 1..K`` over the rows eligible for it
(``action_prob[:, a] > 0``), ``n_bins`` equal-count bins of increasing ``tau_hat[:, a]``
(:func:`estimators.calibration.incremental_calibration`; per bin the observed uplift is the Hajek
difference in means ``O_b = sum_{b, A=a} y / e_a / sum_{b, A=a} 1 / e_a - sum_{b, A=0} y / e_0 /
sum_{b, A=0} 1 / e_0``):

* **calibration error** (lower is better), *not* standardised by its standard error (a
  standardised gap rewards candidates whose bins are noisier):
  ``CE = sum_a sum_b n_ab |P_ab - O_ab| / sum_a sum_b n_ab`` with ``P_ab`` the bin's mean
  prediction and ``n_ab`` its rows (the count-weighted mean gap over bins and offers, in the
  label's units); the standardised version ``chi2 / (K n_bins)`` (``chi2 = sum ((P - O) /
  se)^2``, about 1 when calibrated) is reported beside it, not used by the rule;
* **rank monotonicity** (higher is better): ``RM = sum_a m_a rho_a / sum_a m_a``, ``rho_a`` the
  Spearman correlation of bin order with ``O_ab`` (:func:`estimators.metrics.rank_monotonicity`),
  ``m_a`` the offer's eligible rows;
* **split stability** (higher is better; only when ``split_tau`` is given): the candidate refitted
  on ``B >= 2`` disjoint parts of its training log (e.g. the two halves), predictions
  ``split_tau (B, n, K+1)`` on the holdout rows; ``SS = sum_a m_a r_a / sum_a m_a`` over the offers
  where it is defined, ``r_a`` the mean pairwise Spearman correlation of the refits' ``tau[:, a]``
  on the offer's eligible rows (:func:`estimators.metrics.split_stability`'s ``rank_corr``).
  Undefined (NaN) when every refit's prediction is constant across rows for every offer: such a
  candidate ranks no one;
* **holdout MSE** of the factual outcome (only when ``mu_hat`` is given; the "raw predictive fit"
  the notes put last): ``MSE = mean_i (y_i - mu_hat[i, A_i])^2``, unweighted over all holdout rows
  (under a uniform log every arm has the same weight).

**The rule** (:func:`pick`, ``rule="criteria"``): a rank sum. For each of the available criteria
``j`` (CE, RM and, when given, SS) rank the candidates, 1 = best, with average ranks for ties and
NaN ranked last (tied among the NaNs); ``S(c) = sum_j rank_j(c)``; the pick is ``argmin_c S(c)``,
ties broken by the lower CE, then the lower MSE (if given), then candidate order. Every criterion
counts equally; raw fit enters only as the last tie-break. Reference rules: ``rule="mse"`` picks
``argmin MSE`` (needs ``mu_hat``), and :func:`pick_by_pehe` the candidate with the smallest true
PEHE (``tau_true`` known: simulated worlds only, the oracle pick).

Plain arrays in, small NamedTuples out; never imports ``simulators``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from estimators import checks
from estimators.calibration import _check_log, incremental_calibration
from estimators.checks import fail
from estimators.metrics import pehe, split_stability
from estimators.precision import float64

__all__ = ["RULES", "CandidateScores", "Selection", "pick", "pick_by_pehe", "rank_sum",
           "score_candidates"]

RULES = ("criteria", "mse")


class CandidateScores(NamedTuple):
    """Per candidate ``(C,)`` arrays, in the order of ``names`` (module docstring for each)."""

    names: tuple[str, ...]
    calibration_error: np.ndarray  # CE, label units, lower is better
    calibration_chi2: np.ndarray  # chi2 / (K n_bins): about 1 when calibrated (not in the rule)
    rank_spearman: np.ndarray  # RM in [-1, 1], higher is better
    split_rank_corr: np.ndarray  # SS in [-1, 1], higher is better; NaN if undefined / not given
    holdout_mse: np.ndarray  # factual MSE; NaN when mu_hat is not given
    rank_sum: np.ndarray  # S(c) of the criteria rule


class Selection(NamedTuple):
    """The picked candidate: its ``index`` into ``names`` and ``name``, the ``rule`` used and
    the scores it was picked from (``None`` for :func:`pick_by_pehe`)."""

    index: int
    name: str
    rule: str
    scores: CandidateScores | None


def _names(names: Sequence[str]) -> tuple[str, ...]:
    out = tuple(str(n) for n in names)
    if not out:
        fail("names", "the candidate list is empty", "pass at least one candidate")
    if len(set(out)) != len(out):
        dup = sorted({n for n in out if out.count(n) > 1})
        fail("names", f"duplicate candidate names {dup}", "give every candidate its own name")
    return out


def _stack(field: str, arrays: Sequence[Any], n_cand: int, shape: tuple[int, ...]) -> np.ndarray:
    """``(C, *shape)`` float64 stack of one finite array per candidate."""
    if len(arrays) != n_cand:
        fail(field, f"has {len(arrays)} entries for {n_cand} candidates", "pass one per candidate")
    out = []
    for c, a in enumerate(arrays):
        a = np.asarray(a, dtype=np.float64)
        if a.shape != shape:
            fail(f"{field}[{c}]", f"expected shape {shape}, got {a.shape}",
                 "pass every candidate's predictions on the same holdout rows and K+1 actions")
        out.append(checks.check_finite(f"{field}[{c}]", a, "check the candidate's predictions"))
    return np.stack(out)


def _ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Ranks 1 = best, average ranks for ties, NaN tied last."""
    v = np.asarray(values, dtype=np.float64)
    key = np.where(np.isnan(v), np.inf, -v if higher_is_better else v)
    return stats.rankdata(key, method="average")


def rank_sum(calibration_error: Any, rank_spearman: Any,
             split_rank_corr: Any | None = None) -> np.ndarray:
    """``S(c) = rank(CE) + rank(-RM) [+ rank(-SS)]`` (module docstring; a criterion that is NaN
    for every candidate, e.g. no split refits, is left out)."""
    total = _ranks(calibration_error, False) + _ranks(rank_spearman, True)
    if split_rank_corr is not None and not np.all(np.isnan(split_rank_corr)):
        total = total + _ranks(split_rank_corr, True)
    return total


@float64
def score_candidates(names: Sequence[str], tau_hat: Sequence[Any], *, action: Any, reward: Any,
                     action_prob: Any, split_tau: Sequence[Any] | None = None,
                     mu_hat: Sequence[Any] | None = None, n_bins: int = 10) -> CandidateScores:
    """Score each candidate's holdout predictions by the selection criteria (module docstring).

    ``tau_hat``: one ``(n, K+1)`` array per candidate (column 0, no offer, is ignored), on the
    ``n`` rows of the randomised holdout log ``action (n,)``, ``reward (n,)`` (the head's label:
    value or cost), ``action_prob (n, K+1)`` (logging distribution, ``> 0`` in column 0 on every
    row). ``split_tau``: optional, one ``(B, n, K+1)`` array per candidate (its refits on ``B``
    disjoint parts of the training log). ``mu_hat``: optional, one ``(n, K+1)`` outcome-mean
    array per candidate (for the holdout MSE). Raises ``ValueError`` naming the field for an
    empty candidate list, mismatched shapes, a holdout without no-offer (control) rows or with
    too few rows per bin."""
    names = _names(names)
    e = np.asarray(action_prob)
    if e.ndim != 2 or e.shape[1] < 2:
        fail("action_prob", f"expected shape (n, K+1) with K >= 1, got {e.shape}",
             "pass the holdout's logging distribution over all K+1 actions")
    n, k1 = e.shape
    action, y, e = _check_log(action, reward, action_prob, n, "score_candidates")
    if n_bins < 2:
        fail("n_bins", f"need at least 2 bins, got {n_bins}", "e.g. n_bins=10")
    n_control = int(np.sum(action == 0))
    if n_control < 2 * n_bins:
        fail("action", f"the holdout has {n_control} no-offer (control) rows, fewer than 2 per "
             f"bin ({n_bins} bins)", "use a randomised holdout with a no-offer arm, a larger "
             "holdout or fewer bins")
    for a in range(1, k1):
        if np.sum(action == a) < 2 * n_bins:
            fail("action", f"offer {a} was logged on {int(np.sum(action == a))} holdout rows, "
                 f"fewer than 2 per bin ({n_bins} bins)", "a larger holdout or fewer bins")
    taus = _stack("tau_hat", tau_hat, len(names), (n, k1))
    splits = None
    if split_tau is not None:
        if len(split_tau) != len(names):
            fail("split_tau", f"has {len(split_tau)} entries for {len(names)} candidates",
                 "pass one (B, n, K+1) stack of refits per candidate")
        b = np.shape(split_tau[0])[0] if np.ndim(split_tau[0]) == 3 else 0
        if b < 2:
            fail("split_tau[0]", f"expected shape (B >= 2, {n}, {k1}), got "
                 f"{np.shape(split_tau[0])}", "stack at least two refits on axis 0")
        splits = _stack("split_tau", split_tau, len(names), (b, n, k1))
    mus = None if mu_hat is None else _stack("mu_hat", mu_hat, len(names), (n, k1))
    rows = np.arange(n)
    m = np.array([np.sum(e[:, a] > 0) for a in range(1, k1)], dtype=np.float64)
    ce, chi, rm, ss, mse = (np.full(len(names), np.nan) for _ in range(5))
    for c in range(len(names)):  # loop over candidates and offers, not rows
        gaps, counts, chis, rhos, stab, stab_w = [], [], [], [], [], []
        for a in range(1, k1):
            cal = incremental_calibration(taus[c, :, a], action, y, e, a, n_bins=n_bins)
            gaps.append(np.sum(cal.count * np.abs(cal.predicted - cal.observed)))
            counts.append(cal.count.sum())
            chis.append(cal.chi2)
            rhos.append(cal.monotonicity.spearman)
            if splits is not None:
                elig = e[:, a] > 0
                r = split_stability(splits[c][:, elig, a])["rank_corr"]
                if not np.isnan(r):
                    stab.append(r)
                    stab_w.append(m[a - 1])
        ce[c] = float(np.sum(gaps) / np.sum(counts))
        chi[c] = float(np.sum(chis) / ((k1 - 1) * n_bins))
        # a constant prediction bins by row order: its Spearman is a number (noise), kept
        rho = np.nan_to_num(np.asarray(rhos), nan=0.0)
        rm[c] = float(np.sum(m * rho) / m.sum())
        if stab:
            ss[c] = float(np.sum(np.multiply(stab_w, stab)) / np.sum(stab_w))
        if mus is not None:
            mse[c] = float(np.mean((y - mus[c, rows, action]) ** 2))
    return CandidateScores(names, ce, chi, rm, ss, mse, rank_sum(ce, rm, ss))


def pick(scores: CandidateScores, rule: str = "criteria") -> Selection:
    """The candidate picked by ``rule``: ``"criteria"`` (the rank sum of the module docstring,
    ties by calibration error, then holdout MSE, then order) or ``"mse"`` (the smallest holdout
    MSE of the factual outcome, ties by order)."""
    if rule not in RULES:
        fail("rule", f"unknown rule {rule!r}", f"one of {RULES}")
    if rule == "mse":
        if np.all(np.isnan(scores.holdout_mse)):
            fail("mu_hat", "rule 'mse' needs the candidates' holdout outcome means",
                 "pass mu_hat to score_candidates")
        i = int(np.nanargmin(scores.holdout_mse))
    else:
        mse = np.where(np.isnan(scores.holdout_mse), 0.0, scores.holdout_mse)
        order = np.lexsort((np.arange(len(scores.names)), mse, scores.calibration_error,
                            scores.rank_sum))
        i = int(order[0])
    return Selection(i, scores.names[i], rule, scores)


@float64
def pick_by_pehe(names: Sequence[str], tau_hat: Sequence[Any], tau_true: Any,
                 eligible: Any | None = None) -> Selection:
    """The oracle pick: ``argmin_c PEHE(tau_hat[c], tau_true)`` over the eligible offer columns
    (:func:`estimators.metrics.pehe`; simulated worlds only). Rule name ``"pehe"``."""
    names = _names(names)
    truth = np.asarray(tau_true, dtype=np.float64)
    if truth.ndim != 2:
        fail("tau_true", f"expected shape (n, K+1), got {truth.shape}",
             "pass the true effects of the rows the candidates predict")
    taus = _stack("tau_hat", tau_hat, len(names), truth.shape)
    errs = [pehe(t, truth, eligible) for t in taus]
    i = int(np.argmin(errs))
    return Selection(i, names[i], "pehe", None)
