"""The online test of a gated candidate against the incumbent and the holdout, looked at every
period.

Per user ``i`` of a round under test, randomised to holdout / incumbent / candidate with known
probabilities ``q``, the Horvitz-Thompson term of a difference of arms ``t - c``,
``phi_i = y_i (1{t}/q_t - 1{c}/q_c)`` (:func:`estimators.sequential.ab_influence`), is i.i.d.
with mean ``E[Y(t)] - E[Y(c)]`` on the round's population. Users arrive in ``looks_per_round``
batches; after each batch the analyst looks at the interval of the mean of all terms so far: the
always-valid confidence sequence (``method="cs"``, planned horizon ``t_star = max_rounds *
users_per_round``) or the naive z interval (``method="naive"``, invalid under peeking: shown for
contrast). With ``cuped`` a value contrast's terms are adjusted by the pre-period term ``psi_i =
x_pre_i (1{t}/q_t - 1{c}/q_c)`` (mean 0 by randomisation), ``theta`` estimated once, on the data
of the test's first look, and held fixed for every later look (so a look's interval never uses a
coefficient fitted on later data).

Four contrasts, each its own sequence:

* ``value``: candidate - incumbent on value; it decides.
* ``cost`` (the **cost guardrail**, when ``cost_guardrail`` and the round's costs are given):
  candidate - incumbent on the cost redeemed within the serving round, divided by
  ``cost_observed_share``, the share of a cohort's cost that is redeemed in its own round
  (estimated by the loop from matured cohorts). Assumption: the redemption lag does not depend on
  the arm, so the observed difference is ``share x`` the eventual one and the rescaled terms are
  unbiased for the eventual cost difference (an over-estimated share makes the guardrail
  conservative, never anti-conservative). Costs that arrive later do not enter a user's term: the
  terms stay i.i.d. and fixed, as the confidence sequence needs.
* ``candidate_lift`` and ``incumbent_lift``: each policy against the randomised holdout on value
  (the programme's incremental value, what a finance team reads), CUPED-adjusted like ``value``;
  reported with their truth, not used to decide.

Decision at the first look where: the cost guardrail is breached, i.e. the lower bound of the
cost difference exceeds ``cost_margin`` per user (``cost_tolerance x budget_per_user``):
``rollback`` (``cost_breach``); else the value interval is above 0: ``promote``; below 0:
``rollback``. Still inconclusive after ``max_rounds`` rounds: ``keep`` (the incumbent stays). The
guardrail stops for harm only (as product experimentation guardrails do): a candidate whose cost
increase is not shown to exceed the margin may be promoted on value; the OPE gate has already
bounded its cost offline.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from estimators.sequential import ab_influence, confidence_sequence, cuped, naive_z_looks
from experiments.loop.config import OnlineTestConfig

__all__ = ["Contrast", "OnlineTest"]

HOLDOUT, INCUMBENT, CANDIDATE = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class Contrast:
    """The accumulated terms of one contrast (``phi``, its pre-period terms ``psi``), its CUPED
    coefficient once fixed, and the users-weighted sum of its true per-user difference."""

    phi: np.ndarray
    psi: np.ndarray
    theta: float | None = None
    true_sum: float = 0.0

    @classmethod
    def empty(cls) -> Contrast:
        return cls(np.zeros(0), np.zeros(0))

    def extend(self, phi: np.ndarray, psi: np.ndarray, *, true_mean: float, n: int) -> Contrast:
        return dataclasses.replace(self, phi=np.concatenate([self.phi, phi]),
                                   psi=np.concatenate([self.psi, psi]),
                                   true_sum=self.true_sum + true_mean * n)

    def with_theta(self, first_look: int | None, use_cuped: bool) -> Contrast:
        """Fix ``theta`` on the first look's data (once; never when ``psi`` has no variance)."""
        if (self.theta is not None or not use_cuped or first_look is None
                or not np.var(self.psi[:first_look]) > 0):
            return self
        theta = float(cuped(self.phi[:first_look], self.psi[:first_look],
                            covariate_mean=0.0).theta)
        return dataclasses.replace(self, theta=theta)

    def interval(self, t: int, t_star: float, config: OnlineTestConfig) -> dict[str, float]:
        """``estimate, low, high, n, variance_ratio`` of the mean of the first ``t`` terms."""
        phi, ratio = self.phi[:t], 1.0
        if self.theta is not None:
            adjusted = cuped(phi, self.psi[:t], theta=self.theta, covariate_mean=0.0)
            phi, ratio = adjusted.adjusted, float(adjusted.variance_ratio)
        look = [len(phi)]
        if config.method == "cs":
            res = confidence_sequence(phi, looks=look, alpha=config.alpha,
                                      t_star=max(t_star, 2.0))
        else:
            res = naive_z_looks(phi, looks=look, alpha=config.alpha)
        return dict(estimate=float(res.estimate[-1]), low=float(res.ci_low[-1]),
                    high=float(res.ci_high[-1]), n=float(t), variance_ratio=ratio)

    @property
    def true_mean(self) -> float:
        return self.true_sum / max(len(self.phi), 1)


@dataclasses.dataclass(frozen=True)
class OnlineTest:
    """The test's contrasts and its state (immutable: ``update`` returns a new one).

    ``cost_margin``: the guardrail's allowed cost increase per user; ``cost_observed_share``: the
    share of a cohort's cost redeemed within its serving round (see the module docstring)."""

    config: OnlineTestConfig
    started: int
    value: Contrast
    cost: Contrast
    candidate_lift: Contrast
    incumbent_lift: Contrast
    looks: tuple[int, ...]
    rounds_run: int
    decision: str  # running | promote | rollback | keep
    decided_at_look: int
    last: dict[str, float]
    cost_margin: float = 0.0
    cost_observed_share: float = 1.0
    cost_breach: bool = False
    last_contrasts: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)

    @classmethod
    def start(cls, config: OnlineTestConfig, *, started: int, cost_margin: float = 0.0,
              cost_observed_share: float = 1.0) -> OnlineTest:
        if not 0.0 < cost_observed_share <= 1.0:
            raise ValueError(f"cost_observed_share: must lie in (0, 1], got "
                             f"{cost_observed_share!r}. Fix: the share of a cohort's cost "
                             "redeemed within its serving round, estimated from matured cohorts.")
        if not cost_margin >= 0.0:
            raise ValueError(f"cost_margin: must be >= 0, got {cost_margin!r}. Fix: "
                             "online_test.cost_tolerance * budget_per_user.")
        empty = Contrast.empty()
        return cls(config, started, empty, empty, empty, empty, (), 0, "running", -1, {},
                   float(cost_margin), float(cost_observed_share))

    def update(self, *, value: np.ndarray, arm: np.ndarray, arm_probs: np.ndarray,
               pre_value: np.ndarray | None, true_diff: float, n: int,
               cost_observed: np.ndarray | None = None, true_cost_diff: float = 0.0,
               true_candidate_lift: float = 0.0,
               true_incumbent_lift: float = 0.0) -> OnlineTest:
        """Add one round of users and look ``looks_per_round`` times. ``cost_observed``: each
        user's cost redeemed within the round (``None``: no cost guardrail this round); the
        ``true_*`` arguments are the round's true per-user differences (for the record only)."""
        cfg = self.config

        def terms(y: np.ndarray | None, treatment: int, control: int) -> np.ndarray:
            if y is None:
                return np.zeros(len(arm))
            return ab_influence(y, arm, arm_probs, treatment=treatment, control=control)

        offset = len(self.value.phi)
        cuts = np.linspace(0, n, cfg.looks_per_round + 1).round().astype(int)[1:]
        new_looks = tuple(int(offset + c) for c in cuts if c >= 2)
        first = new_looks[0] if new_looks else None
        contrasts = {}
        for name, treatment, control, truth in (
                ("value", CANDIDATE, INCUMBENT, true_diff),
                ("candidate_lift", CANDIDATE, HOLDOUT, true_candidate_lift),
                ("incumbent_lift", INCUMBENT, HOLDOUT, true_incumbent_lift)):
            c = getattr(self, name).extend(terms(value, treatment, control),
                                           terms(pre_value, treatment, control),
                                           true_mean=truth, n=n)
            contrasts[name] = c.with_theta(first, cfg.cuped)
        guarded = cfg.cost_guardrail and cost_observed is not None
        cost_terms = (terms(np.asarray(cost_observed, dtype=np.float64)
                            / self.cost_observed_share, CANDIDATE, INCUMBENT)
                      if guarded else np.zeros(n))
        contrasts["cost"] = self.cost.extend(cost_terms, np.zeros(n), true_mean=true_cost_diff,
                                             n=n)
        t_star = float(cfg.max_rounds * n)
        decision, at, last, breach = self.decision, self.decided_at_look, dict(self.last), False
        cost_last = dict(self.last_contrasts.get("cost", {}))
        for j, t in enumerate(new_looks):
            last = contrasts["value"].interval(t, t_star, cfg)
            if guarded:
                cost_last = contrasts["cost"].interval(t, t_star, cfg)
            if decision != "running":
                continue
            if guarded and cost_last["low"] > self.cost_margin:
                decision, breach = "rollback", True
            elif last["low"] > 0 or last["high"] < 0:
                decision = "promote" if last["low"] > 0 else "rollback"
            if decision != "running":
                at = len(self.looks) + j
                break
        stop = new_looks[j] if new_looks and decision != "running" else (
            new_looks[-1] if new_looks else None)
        summaries = dict(self.last_contrasts)
        if guarded:
            summaries["cost"] = cost_last
        if stop is not None:
            for name in ("candidate_lift", "incumbent_lift"):
                summaries[name] = contrasts[name].interval(stop, t_star, cfg)
        rounds_run = self.rounds_run + 1
        if decision == "running" and rounds_run >= cfg.max_rounds:
            decision = "keep"
        return dataclasses.replace(self, looks=self.looks + new_looks, rounds_run=rounds_run,
                                   decision=decision, decided_at_look=at, last=last,
                                   cost_breach=self.cost_breach or breach,
                                   last_contrasts=summaries, **contrasts)

    @property
    def phi(self) -> np.ndarray:
        """The value contrast's terms (candidate - incumbent)."""
        return self.value.phi

    @property
    def true_diff(self) -> float:
        """The true value difference candidate - incumbent over the users tested so far."""
        return self.value.true_mean

    @property
    def true_cost_diff(self) -> float:
        """The true (eventual) cost difference candidate - incumbent per user tested so far."""
        return self.cost.true_mean

    def record(self, prefix: str = "test_") -> dict[str, Any]:
        """The test's record. ``right`` judges the decision on value alone (promote: the true
        value difference is > 0; rollback: < 0); ``right_guarded`` also by the guardrail
        (promote: value gain and true cost increase <= ``cost_margin``; rollback: value loss or
        true cost increase > ``cost_margin``); ``None`` for ``keep``."""
        right = guarded = None
        over = self.true_cost_diff > self.cost_margin
        if self.decision == "promote":
            right = self.true_diff > 0
            guarded = right and not over
        elif self.decision == "rollback":
            right = self.true_diff < 0
            guarded = right or over
        out = {f"{prefix}{k}": v for k, v in self.last.items()}
        out.update({f"{prefix}decision": self.decision, f"{prefix}true_diff": self.true_diff,
                    f"{prefix}right": right, f"{prefix}looks": len(self.looks),
                    f"{prefix}decided_at_look": self.decided_at_look,
                    f"{prefix}rounds": self.rounds_run, f"{prefix}right_guarded": guarded,
                    f"{prefix}cost_true_diff": self.true_cost_diff,
                    f"{prefix}cost_margin": self.cost_margin})
        if "cost" in self.last_contrasts:
            c = self.last_contrasts["cost"]
            out.update({f"{prefix}cost_estimate": c["estimate"], f"{prefix}cost_low": c["low"],
                        f"{prefix}cost_high": c["high"],
                        f"{prefix}cost_observed_share": self.cost_observed_share,
                        f"{prefix}cost_breach": self.cost_breach,
                        f"{prefix}cost_covered": bool(c["low"] <= self.true_cost_diff
                                                      <= c["high"])})
        for name in ("candidate_lift", "incumbent_lift"):
            if name not in self.last_contrasts:
                continue
            c, truth = self.last_contrasts[name], getattr(self, name).true_mean
            out.update({f"{prefix}{name}_estimate": c["estimate"],
                        f"{prefix}{name}_low": c["low"], f"{prefix}{name}_high": c["high"],
                        f"{prefix}{name}_true": truth,
                        f"{prefix}{name}_covered": bool(c["low"] <= truth <= c["high"])})
        return out
