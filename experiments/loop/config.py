"""The closed loop's typed configuration (frozen dataclasses: hashable, Hydra schemas derived)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from estimators.checks import fail
from estimators.heads import ONE_NET_HEADS
from experiments.configs import HeadsConfig, PolicyConfig, WorldConfig
from experiments.store import OMIT_AT_DEFAULT

__all__ = ["PACING_KINDS", "UPDATES", "ExplorationConfig", "GateConfig", "LoopConfig",
           "OnlineTestConfig"]

EXPLORATION_KINDS = ("none", "epsilon", "floor", "thompson")
UPDATES = ("gated", "retrain", "recalibrate", "static")
PACING_KINDS = ("none", "liability")


def _unit(field: str, value: float, *, low_open: bool = False, high_open: bool = False) -> None:
    ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if isinstance(value, bool) or not isinstance(value, int | float) or not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        fail(field, f"must lie in {lo}0, 1{hi}, got {value!r}", "e.g. 0.1")


def _count(field: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(field, f"must be an int >= {minimum}, got {value!r}", f"e.g. {max(minimum, 2)}")


@dataclasses.dataclass(frozen=True)
class ExplorationConfig:
    """How the deployed policy stays stochastic (``policies.exploration``).

    ``none``: the allocation itself (deterministic except the one fractional user); ``epsilon``:
    ``(1 - epsilon) pi + epsilon Uniform(eligible)``; ``floor``: every eligible action gets
    probability >= ``floor``; ``thompson``: the average allocation over ``n_draws`` draws of the
    effects (posterior draws when both heads have ``predict_tau_draws``, else a bootstrap
    ensemble of the heads refitted on resampled rows). For ``epsilon`` and ``floor`` the
    allocation is exploration-aware: it spends the budget left after the exploration mass's
    expected cost (under the heads), so the deployed mixture meets the budget in expectation."""

    kind: Literal["none", "epsilon", "floor", "thompson"] = "floor"
    epsilon: float = 0.1
    floor: float = 0.05
    n_draws: int = 4

    def __post_init__(self) -> None:
        if self.kind not in EXPLORATION_KINDS:
            fail("exploration.kind", f"unknown {self.kind!r}", f"one of {EXPLORATION_KINDS}")
        _unit("exploration.epsilon", self.epsilon)
        _unit("exploration.floor", self.floor, high_open=True)
        _count("exploration.n_draws", self.n_draws, 2)


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """The OPE gate: paired DR differences candidate - incumbent on the gate split (rows never
    trained on), value and cost, with ``1 - alpha`` CIs. The rule: pass iff the value
    difference's lower bound is > ``min_value_gain`` per user **and** the candidate keeps to the
    budget or spends no more than the incumbent: the upper bound of its own DR cost per user is
    <= ``(1 + cost_tolerance) * budget_per_user``, or that of the paired cost difference is <=
    ``cost_tolerance * budget_per_user`` (budget adherence itself is the allocator's job)."""

    alpha: float = 0.1
    min_value_gain: float = 0.0
    cost_tolerance: float = 0.1

    def __post_init__(self) -> None:
        _unit("gate.alpha", self.alpha, low_open=True, high_open=True)
        if not self.cost_tolerance >= 0:
            fail("gate.cost_tolerance", f"must be >= 0, got {self.cost_tolerance}", "e.g. 0.05")


@dataclasses.dataclass(frozen=True)
class OnlineTestConfig:
    """The online test of a gated candidate against the incumbent on fresh users, looked at
    ``looks_per_round`` times a round for at most ``max_rounds`` rounds: an always-valid
    confidence sequence (``method="cs"``, :mod:`estimators.sequential`) or, to show what peeking
    does, the naive fixed-sample z interval (``method="naive"``). Promote when the interval on
    the value difference is above 0, roll back when it is below, keep the incumbent when it is
    still inconclusive after ``max_rounds``. ``enabled=False``: a candidate that passes the gate
    is promoted at once (OPE alone). ``share``: the candidate's share of non-holdout users.
    ``cuped``: adjust by the users' pre-period no-offer value. ``cost_guardrail``: roll back at
    the first look where the always-valid lower bound of the candidate's cost increase per user
    (on the costs redeemed within the serving round, rescaled to the eventual cost:
    :mod:`experiments.loop.online_test`) exceeds ``cost_tolerance * budget_per_user``. Every test
    also reports both policies against the holdout (their incremental value, with truth)."""

    enabled: bool = True
    share: float = 0.5
    looks_per_round: int = 7
    max_rounds: int = 2
    alpha: float = 0.05
    method: Literal["cs", "naive"] = "cs"
    cuped: bool = True
    cost_guardrail: bool = dataclasses.field(default=True, metadata=OMIT_AT_DEFAULT)
    cost_tolerance: float = dataclasses.field(default=0.1, metadata=OMIT_AT_DEFAULT)

    def __post_init__(self) -> None:
        _unit("online_test.share", self.share, low_open=True, high_open=True)
        _count("online_test.looks_per_round", self.looks_per_round, 1)
        _count("online_test.max_rounds", self.max_rounds, 1)
        _unit("online_test.alpha", self.alpha, low_open=True, high_open=True)
        if self.method not in ("cs", "naive"):
            fail("online_test.method", f"unknown {self.method!r}", "'cs' or 'naive'")
        if isinstance(self.cost_guardrail, int) and not isinstance(self.cost_guardrail, bool):
            fail("online_test.cost_guardrail", f"must be true or false, got "
                 f"{self.cost_guardrail!r}", "true")
        if (isinstance(self.cost_tolerance, bool) or not isinstance(self.cost_tolerance,
                                                                    int | float)
                or not 0 <= self.cost_tolerance < float("inf")):
            fail("online_test.cost_tolerance", f"must be a finite number >= 0, got "
                 f"{self.cost_tolerance!r}", "e.g. 0.1 (10 % of the budget per user)")


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """One closed loop: ``rounds`` rounds of ``users_per_round`` fresh users each.

    Round ``r`` runs at world period ``max(0, r - drift_onset + 1)`` when ``drift`` is on (the
    world's covariate shift, effect, cost drift and seasonality then start at round
    ``drift_onset``), else at period 0. The first incumbent is trained on a uniformly randomised
    pilot of ``pilot_users`` at period 0. ``update``: ``gated`` (OPE gate, then the online test),
    ``retrain`` (the retrained heads replace the incumbent every round, no gate),
    ``recalibrate`` (the incumbent's heads are linearly recalibrated on the newest matured
    cohort), ``static`` (never changes). A cohort's outcomes are used ``cost_maturity`` rounds
    after it was served (redemptions arrive with the world's lag; the costs still outstanding
    then are missing from the training label, and reported). ``gate_share`` of every round's
    users (exactly, a random subset) are reserved for the gate and monitoring, never trained on;
    the gate uses the newest ``gate_window`` matured cohorts' reserved rows (the pilot's until
    that many have matured): recent users, and a fixed size once the window is full.
    ``train_window``: train on the newest that many matured cohorts (0 = all, pilot included).
    ``serving_skew``: the candidate's serving features differ from training (features 0-1 served
    as ``(1 - 2 s) x``: a feature-parity bug the logs do not show,
    :meth:`FittedPolicy.features`). ``portfolio_reach``: from round ``portfolio_change_round``
    the other programs reach that multiple of their audience. ``serving_cost_scale``: the
    candidate's cost predictions are multiplied by it at serving only (a cost-pipeline bug the
    offline gate does not see; 1 = none). ``pacing``: ``none`` allocates ``budget_per_user`` every
    round under the heads; ``liability`` paces one total budget, ``budget_per_user`` per served
    user over all ``rounds``, by :func:`policies.pacing.pacing_step`: each round's allocator budget
    is what is left after the cost paid so far and the outstanding liability of issued offers
    (the world's redemption-lag mean), spread over the rounds left and deflated by the ratio of
    realised to predicted cost on matured cohorts."""

    world: WorldConfig = WorldConfig()
    # one TARNet, not the default's five: the loop refits every round (README, "The closed loop")
    learner: HeadsConfig = ONE_NET_HEADS
    policy: PolicyConfig = PolicyConfig()
    exploration: ExplorationConfig = ExplorationConfig()
    gate: GateConfig = GateConfig()
    online_test: OnlineTestConfig = OnlineTestConfig()
    update: Literal["gated", "retrain", "recalibrate", "static"] = "gated"
    rounds: int = 12
    users_per_round: int = 20_000
    pilot_users: int = 2_000
    holdout_share: float = 0.05
    gate_share: float = 0.2
    gate_window: int = 4
    cost_maturity: int = 2
    train_window: int = 0
    drift: bool = True
    drift_onset: int = 0
    serving_skew: float = 0.0
    portfolio_reach: float = 1.0
    portfolio_change_round: int = 0
    serving_cost_scale: float = dataclasses.field(default=1.0, metadata=OMIT_AT_DEFAULT)
    pacing: Literal["none", "liability"] = dataclasses.field(default="none",
                                                            metadata=OMIT_AT_DEFAULT)

    def __post_init__(self) -> None:
        if self.pacing not in PACING_KINDS:
            fail("pacing", f"unknown {self.pacing!r}", f"one of {PACING_KINDS}")
        if (isinstance(self.serving_cost_scale, bool)
                or not isinstance(self.serving_cost_scale, int | float)
                or not 0 < self.serving_cost_scale < float("inf")):
            fail("serving_cost_scale", f"must be a finite number > 0, got "
                 f"{self.serving_cost_scale!r}", "1.0 (no cost-pipeline bug), e.g. 0.5")
        if self.update not in UPDATES:
            fail("update", f"unknown {self.update!r}", f"one of {UPDATES}")
        _count("rounds", self.rounds, 1)
        _count("users_per_round", self.users_per_round, 200)
        _count("pilot_users", self.pilot_users, 200)
        _unit("holdout_share", self.holdout_share, high_open=True)
        _unit("gate_share", self.gate_share, low_open=True, high_open=True)
        _count("cost_maturity", self.cost_maturity, 0)
        _count("train_window", self.train_window, 0)
        _count("gate_window", self.gate_window, 1)
        _count("drift_onset", self.drift_onset, 0)
        _count("portfolio_change_round", self.portfolio_change_round, 0)
        _unit("serving_skew", self.serving_skew)
        if not self.portfolio_reach >= 0:
            fail("portfolio_reach", f"must be >= 0, got {self.portfolio_reach}", "e.g. 1.0")

    def period(self, round_: int) -> int:
        """The world period of round ``round_``."""
        return max(0, round_ - self.drift_onset + 1) if self.drift else 0
