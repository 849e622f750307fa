"""The online test of a gated candidate against the incumbent, looked at every period.

Per user ``i`` of a round under test, randomised to holdout / incumbent / candidate with known
probabilities ``q``, the Horvitz-Thompson term of the value difference
``phi_i = y_i (1{cand}/q_cand - 1{inc}/q_inc)`` (:func:`estimators.sequential.ab_influence`) is
i.i.d. with mean ``V(cand) - V(inc)`` on the round's population. Users arrive in
``looks_per_round`` batches; after each batch the analyst looks at the interval of the mean of
all terms so far: the always-valid confidence sequence (``method="cs"``, planned horizon
``t_star = max_rounds * users_per_round``) or the naive z interval (``method="naive"``, invalid
under peeking: shown for contrast). With ``cuped`` the terms are adjusted by the pre-period
term ``psi_i = x_pre_i (1{cand}/q_cand - 1{inc}/q_inc)`` (mean 0 by randomisation), ``theta``
estimated once, on the data of the test's first look, and held fixed for every later look
(so a look's interval never uses a coefficient fitted on later data).

Decision at the first look whose interval excludes 0: ``promote`` (above) or ``rollback``
(below); still inconclusive after ``max_rounds`` rounds: ``keep`` (the incumbent stays).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from estimators.sequential import ab_influence, confidence_sequence, cuped, naive_z_looks
from experiments.loop.config import OnlineTestConfig

__all__ = ["OnlineTest"]

INCUMBENT, CANDIDATE = 1, 2


@dataclasses.dataclass(frozen=True)
class OnlineTest:
    """The test's accumulated terms and its state (immutable: ``update`` returns a new one)."""

    config: OnlineTestConfig
    started: int
    phi: np.ndarray
    psi: np.ndarray
    looks: tuple[int, ...]
    rounds_run: int
    true_diff_sum: float
    decision: str  # running | promote | rollback | keep
    decided_at_look: int
    last: dict[str, float]
    theta: float | None = None  # CUPED coefficient, fixed at the first look

    @classmethod
    def start(cls, config: OnlineTestConfig, *, started: int) -> OnlineTest:
        return cls(config, started, np.zeros(0), np.zeros(0), (), 0, 0.0, "running", -1, {})

    def update(self, *, value: np.ndarray, arm: np.ndarray, arm_probs: np.ndarray,
               pre_value: np.ndarray | None, true_diff: float, n: int) -> OnlineTest:
        """Add one round of users and look ``looks_per_round`` times."""
        cfg = self.config
        phi_new = ab_influence(value, arm, arm_probs, treatment=CANDIDATE, control=INCUMBENT)
        psi_new = (np.zeros_like(phi_new) if pre_value is None else
                   ab_influence(pre_value, arm, arm_probs, treatment=CANDIDATE,
                                control=INCUMBENT))
        offset = len(self.phi)
        phi = np.concatenate([self.phi, phi_new])
        psi = np.concatenate([self.psi, psi_new])
        cuts = np.linspace(0, n, cfg.looks_per_round + 1).round().astype(int)[1:]
        new_looks = tuple(int(offset + c) for c in cuts if c >= 2)
        t_star = float(cfg.max_rounds * n)
        decision, at, last = self.decision, self.decided_at_look, dict(self.last)
        theta = self.theta
        if theta is None and cfg.cuped and new_looks and np.var(psi[:new_looks[0]]) > 0:
            theta = float(cuped(phi[:new_looks[0]], psi[:new_looks[0]],
                                covariate_mean=0.0).theta)
        for j, t in enumerate(new_looks):
            est, low, high, ratio = self._interval(phi[:t], psi[:t], t_star, theta)
            last = dict(estimate=est, low=low, high=high, n=float(t), variance_ratio=ratio)
            if decision == "running" and (low > 0 or high < 0):
                decision = "promote" if low > 0 else "rollback"
                at = len(self.looks) + j
                break
        rounds_run = self.rounds_run + 1
        if decision == "running" and rounds_run >= cfg.max_rounds:
            decision = "keep"
        return dataclasses.replace(self, phi=phi, psi=psi, looks=self.looks + new_looks,
                                   rounds_run=rounds_run,
                                   true_diff_sum=self.true_diff_sum + true_diff * n,
                                   decision=decision, decided_at_look=at, last=last,
                                   theta=theta)

    def _interval(self, phi: np.ndarray, psi: np.ndarray, t_star: float,
                  theta: float | None) -> tuple[float, float, float, float]:
        cfg = self.config
        ratio = 1.0
        if theta is not None:
            adjusted = cuped(phi, psi, theta=theta, covariate_mean=0.0)
            phi, ratio = adjusted.adjusted, float(adjusted.variance_ratio)
        look = [len(phi)]
        if cfg.method == "cs":
            res = confidence_sequence(phi, looks=look, alpha=cfg.alpha, t_star=max(t_star, 2.0))
        else:
            res = naive_z_looks(phi, looks=look, alpha=cfg.alpha)
        return (float(res.estimate[-1]), float(res.ci_low[-1]), float(res.ci_high[-1]), ratio)

    @property
    def true_diff(self) -> float:
        """The true value difference candidate - incumbent over the users tested so far."""
        return self.true_diff_sum / max(len(self.phi), 1)

    def record(self, prefix: str = "test_") -> dict[str, Any]:
        right = None
        if self.decision == "promote":
            right = self.true_diff > 0
        elif self.decision == "rollback":
            right = self.true_diff < 0
        out = {f"{prefix}{k}": v for k, v in self.last.items()}
        out.update({f"{prefix}decision": self.decision, f"{prefix}true_diff": self.true_diff,
                    f"{prefix}right": right, f"{prefix}looks": len(self.looks),
                    f"{prefix}decided_at_look": self.decided_at_look,
                    f"{prefix}rounds": self.rounds_run})
        return out
