"""The signals a team watches after launch, computed every round from what the team can see.

Per round (the design notes' list; ``alert`` flags use the thresholds people know):

=======================  ==========================================================================
assignment volume        share of users offered, and per offer (``volume_offer_<a>``)
spend vs plan            the heads' expected incremental cost per user of the deployed
                         distribution against the budget (``spend_plan``), and the cost paid this
                         round from every cohort's redemptions (``spend_paid``, per user)
realised vs predicted    on the newest matured cohort: observed cost / the current heads' predicted
cost                     cost on the offers it got (``cost_calibration``), and the share of its
                         redemptions still outstanding (``cost_outstanding_share``, a truth-side
                         diagnostic of the maturity rule)
value calibration        holdout contrast of the incumbent arm (mean value, incumbent - holdout,
                         with a 95 % CI) against the heads' predicted incremental value
rank monotonicity        Spearman correlation of predicted-uplift quintile and the observed
                         incumbent-minus-holdout value per quintile
feature drift            :func:`estimators.monitoring.feature_drift` against the pilot's features
                         (Evidently's rule per column, PSI >= 0.1); ``drift_alert`` (any
                         column), ``dataset_drift_alert`` (>= half the columns, Evidently)
propensities and SRM     minimum logged propensity of an eligible action; sample-ratio mismatch of
                         the realised actions against the logged rows and of the arms against
                         their probabilities (``srm_alert`` at p < 0.001)
no-offer rate            share of non-holdout users who got no offer
overlap                  ESS / n and unsupported mass of the incumbent's exploitation target under
                         this round's logging distribution (:func:`estimators.monitoring.
                         overlap_summary`)
online test results      in the round record (``test_*``) when a candidate is under test
=======================  ==========================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from estimators.metrics import rank_monotonicity
from estimators.monitoring import (
    feature_drift,
    overlap_summary,
    sample_ratio_mismatch,
)
from experiments.loop.serving import FittedPolicy
from simulators import LoggedData

__all__ = ["round_signals"]

HOLDOUT, INCUMBENT = 0, 1
N_RANK_BINS = 5
DATASET_DRIFT_SHARE = 0.5  # Evidently's dataset-drift rule: at least half the columns drifted


def round_signals(*, logged: LoggedData, arm: np.ndarray, arm_probs: np.ndarray,
                  deployed: np.ndarray, target: np.ndarray, reference_x: np.ndarray,
                  policy: FittedPolicy, budget_per_user: float, log: dict[str, np.ndarray],
                  round_: int, maturity: int) -> dict[str, Any]:
    """The round's monitoring signals (see the module docstring) as a flat dict. ``deployed`` and
    ``target`` are the policy's served distribution and its exploitation target
    (:func:`experiments.loop.serving.serve`, computed once by the loop)."""
    out: dict[str, Any] = {}
    x, elig, action = np.asarray(logged.x), np.asarray(logged.eligible), np.asarray(logged.action)
    n, k1 = elig.shape
    value = np.asarray(logged.value, dtype=np.float64)
    offered = action > 0
    out["volume_offered"] = float(offered.mean())
    for a in range(1, k1):
        out[f"volume_offer_{a}"] = float(np.mean(action == a))
    tv, tc = policy.tau(x, elig)
    out["spend_plan"] = float(np.sum(deployed * tc) / n)
    out["spend_plan_gap"] = out["spend_plan"] - budget_per_user
    lag, cohort = log["redemption_lag"], log["cohort"]
    paid_now = (cohort >= 0) & (lag >= 0) & (cohort + lag == round_)
    out["spend_paid"] = float(log["cost"][paid_now].sum() / n)

    old = cohort == round_ - maturity
    if old.any() and round_ - maturity >= 0:
        seen = (lag >= 0) & (cohort + lag <= round_)
        cost_seen = np.where(seen & old, log["cost"], 0.0)[old]
        a_old = log["action"][old]
        _, tc_old = policy.tau(log["x"][old], log["eligible"][old])
        predicted = tc_old[np.arange(len(a_old)), a_old].sum()
        out["cost_calibration"] = float(cost_seen.sum() / predicted) if predicted > 0 else np.nan
        total = log["cost"][old].sum()
        out["cost_outstanding_share"] = float(1 - cost_seen.sum() / total) if total > 0 else 0.0

    inc, hold = arm == INCUMBENT, arm == HOLDOUT
    if inc.sum() > 1 and hold.sum() > 1:
        lift = value[inc].mean() - value[hold].mean()
        se = np.sqrt(value[inc].var(ddof=1) / inc.sum() + value[hold].var(ddof=1) / hold.sum())
        predicted = float(np.sum(deployed * tv) / n)
        out.update(value_lift_observed=float(lift), value_lift_low=float(lift - 1.96 * se),
                   value_lift_high=float(lift + 1.96 * se), value_lift_predicted=predicted,
                   value_lift_covers_prediction=bool(abs(lift - predicted) <= 1.96 * se))
        score = np.sum(deployed * tv, axis=1)
        edges = np.quantile(score, np.linspace(0, 1, N_RANK_BINS + 1)[1:-1])
        b = np.searchsorted(edges, score, side="right")
        per_bin = [value[inc & (b == j)].mean() - value[hold & (b == j)].mean()
                   for j in range(N_RANK_BINS)
                   if (inc & (b == j)).sum() > 1 and (hold & (b == j)).sum() > 1]
        if len(per_bin) >= 2:
            out["rank_spearman"] = rank_monotonicity(np.asarray(per_bin)).spearman

    drift = feature_drift(reference_x, x)
    out.update(drift_share=float(drift.share_drifted), drift_alert=bool(drift.drifted.any()),
               dataset_drift_alert=bool(drift.share_drifted >= DATASET_DRIFT_SHARE),
               psi_max=float(np.max(drift.psi)), psi_alert=bool(drift.psi_drifted.any()),
               wasserstein_max=float(np.nanmax(drift.wasserstein_normed)))

    p = np.asarray(logged.action_prob)
    out["min_propensity"] = float(p[elig].min())
    srm = sample_ratio_mismatch(action, p)
    arm_srm = sample_ratio_mismatch(arm, np.broadcast_to(arm_probs, (n, len(arm_probs))))
    out.update(srm_p_value=float(srm.p_value), srm_alert=bool(srm.alert),
               arm_srm_p_value=float(arm_srm.p_value), arm_srm_alert=bool(arm_srm.alert))
    not_hold = arm != HOLDOUT
    out["no_offer_rate"] = float(np.mean(action[not_hold] == 0)) if not_hold.any() else np.nan
    ov = overlap_summary(target, p)
    out.update(overlap_ess_share=float(ov.ess / n), overlap_unsupported=float(ov.unsupported_mass),
               overlap_max_weight=float(ov.max_weight))
    out.update(_alerts(out))
    return out


# Threshold alerts on the signals without a statistical test of their own (SRM and drift have
# theirs above). Conventional operating thresholds, stated here, not tuned on the truth.
COST_CALIBRATION_BAND = (0.8, 1.25)  # realised / predicted cost outside -> "cost_alert"
UNSUPPORTED_MASS_MAX = 0.05  # target mass on actions the logger cannot take -> "overlap_alert"
MIN_PROPENSITY_FLOOR = 0.01  # some eligible action logged below 1 % -> "propensity_alert"


def _alerts(sig: dict[str, Any]) -> dict[str, bool]:
    """``cost_alert`` (realised / predicted cost outside [0.8, 1.25]), ``calibration_alert``
    (the holdout lift's 95 % CI excludes the heads' predicted lift), ``rank_alert`` (Spearman of
    the observed lift over predicted quintiles < 0), ``propensity_alert`` (min propensity < 1 %),
    ``overlap_alert`` (unsupported mass > 5 %)."""
    cal = sig.get("cost_calibration", np.nan)
    lo, hi = COST_CALIBRATION_BAND
    return dict(
        cost_alert=bool(np.isfinite(cal) and not lo <= cal <= hi),
        calibration_alert=bool("value_lift_covers_prediction" in sig
                               and not sig["value_lift_covers_prediction"]),
        rank_alert=bool(sig.get("rank_spearman", 1.0) < 0),
        propensity_alert=bool(sig["min_propensity"] < MIN_PROPENSITY_FLOOR),
        overlap_alert=bool(sig["overlap_unsupported"] > UNSUPPORTED_MASS_MAX),
    )
