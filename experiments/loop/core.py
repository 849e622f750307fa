"""The closed loop, round by round: a pure-state API a user can drive with their own learner.

::

    loop = ClosedLoop(LoopConfig(), seed=0)            # or fit_heads=..., allocator=...
    state = loop.init()
    while not loop.done(state):
        state = loop.step(state)                          # one round; state.records grows
    rows = loop.run(checkpoint_dir="outputs/loop")      # the same, resumable after a kill

A round ``r`` (all randomness from ``stream(seed, <name>, r)``, so a round is reproducible from
the seed alone and a resumed loop equals an uninterrupted one):

1. **users**: ``users_per_round`` fresh users at the round's world period (drift), with the
   other programs' reach as configured;
2. **deploy**: each user is randomised to the holdout (no offer), the incumbent, or, while a
   candidate is under test, the candidate; each policy is served through the budgeted
   allocator with exploration; the logged propensity is the exact marginal
   ``q_0 1{a=0} + q_inc pi_inc(a|x) + q_cand pi_cand(a|x)`` (valid for off-policy evaluation of
   any later policy), the arm is logged too;
3. **online test** (a candidate under test): the value difference candidate - incumbent on this
   round's users, looked at ``looks_per_round`` times, by the always-valid confidence sequence
   (optionally CUPED-adjusted); promote, roll back, or (inconclusive after ``max_rounds``) keep;
4. **monitoring** (:mod:`experiments.loop.monitor`): the design notes' signals, with alerts;
5. **update**: heads refitted on the matured, non-gate rows (``gated``: the OPE gate on the
   matured gate rows decides whether the candidate goes to the online test, or straight to
   promotion when the test is disabled; ``retrain``: always replace; ``recalibrate``: linear
   recalibration of the incumbent's heads on the newest matured cohort; ``static``: nothing).

Every round's record carries the truth: the true incremental value, cost and regret (against the
oracle's budgeted allocation on the same users) of the incumbent and of the candidate, and
whether each gate and test decision was right.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from estimators.calibration import LinearRecalibration
from estimators.checks import fail
from estimators.heads import UpliftHeads, make_heads
from experiments.loop import monitor
from experiments.loop.config import LoopConfig
from experiments.loop.gate import horizon_check, ope_gate
from experiments.loop.online_test import OnlineTest
from experiments.loop.serving import Allocator, FittedPolicy, budgeted_allocator, serve
from experiments.store import atomic_write
from experiments.suites.base import quiet_bar, stream, stream_id
from policies.allocation import allocate
from policies.pacing import pacing_step
from simulators import LoggedData, LoggingConfig, Truth, default_params, policy_truth, simulate
from simulators.deploy import deploy, draw_population, pre_period_value

__all__ = ["ClosedLoop", "LoopState", "default_fit_heads"]

HOLDOUT, INCUMBENT, CANDIDATE = 0, 1, 2
FitHeads = Callable[[LoggedData, jax.Array], Any]

_COLUMNS = ("x", "segment", "period", "eligible", "action", "action_prob", "value",
            "value_accounting", "cost", "redemption_lag", "other_actions")
_TRUTH = ("mu_value", "mu_cost", "mu_value_accounting", "response_type")


def default_fit_heads(config: LoopConfig) -> FitHeads:
    """The configured heads (:func:`estimators.heads.make_heads`) fitted on a log with its
    propensities."""

    def fit(log: LoggedData, key: jax.Array) -> UpliftHeads:
        del key  # the heads' own seeds are in their config
        return make_heads(config.learner).fit(log.x, log.action, log.value, log.cost,
                                              action_prob=log.action_prob,
                                              n_actions=log.n_actions)

    return fit


@dataclasses.dataclass
class LoopState:
    """Everything a round needs from the past (picklable: checkpoints are this object)."""

    round: int
    incumbent: FittedPolicy
    candidate: FittedPolicy | None
    test: OnlineTest | None
    log: dict[str, np.ndarray]  # accumulated rows: _COLUMNS, _TRUTH, cohort, gate, arm
    reference_x: np.ndarray  # the pilot's features: the feature-drift reference
    next_id: int
    records: list[dict[str, Any]]


class ClosedLoop:
    """Deploy -> log -> test -> monitor -> retrain -> gate, against the world's truth."""

    def __init__(self, config: LoopConfig, *, seed: int, fit_heads: FitHeads | None = None,
                 allocator: Allocator = budgeted_allocator) -> None:
        if not isinstance(config, LoopConfig):
            fail("config", f"expected a LoopConfig, got {type(config).__name__}",
                 "pass LoopConfig(...)")
        self.config = config
        self.seed = seed
        self.fit_heads = fit_heads or default_fit_heads(config)
        self.allocator = allocator
        self.params = default_params(config.world)
        self._root = stream(seed, "loop")

    # ------------------------------------------------------------------------------ helpers
    def _key(self, name: str, r: int) -> jax.Array:
        """``stream(seed, "loop")`` folded with the name's id and ``r + 1`` (the pilot is round
        -1): eager ``fold_in``s, no compilation per (name, round)."""
        return jax.random.fold_in(jax.random.fold_in(self._root, stream_id(name)), r + 1)

    def _params(self, r: int):
        cfg = self.config
        if cfg.portfolio_reach == 1.0 or r < cfg.portfolio_change_round:
            return self.params
        reach = np.clip(np.asarray(self.params.program_prob) * cfg.portfolio_reach, 0.0, 1.0)
        return self.params._replace(program_prob=jax.numpy.asarray(reach))

    def _gate_split(self, name: str, r: int, n: int) -> np.ndarray:
        """Exactly ``round(gate_share * n)`` random rows of the round reserved for the gate."""
        m = round(self.config.gate_share * n)
        order = np.asarray(jax.random.permutation(self._key(name, r), n))
        gate = np.zeros(n, dtype=bool)
        gate[order[:m]] = True
        return gate

    def _fit(self, log: LoggedData, r: int, policy_id: int, shift: float,
             cost_scale: float = 1.0) -> FittedPolicy:
        heads = self.fit_heads(log, self._key("fit", r))
        draws = None
        if self.config.exploration.kind == "thompson" and not all(
                hasattr(getattr(heads, h, None), "predict_tau_draws") for h in ("value", "cost")):
            draws = []
            for s, k in enumerate(jax.random.split(self._key("bootstrap", r),
                                                   self.config.exploration.n_draws)):
                rows = np.asarray(jax.random.randint(k, (log.n,), 0, log.n))
                draws.append(self.fit_heads(log.subset(rows), jax.random.fold_in(k, s)))
        return FittedPolicy(heads, policy_id, r, shift, draws, serving_cost_scale=cost_scale)

    # --------------------------------------------------------------------------------- init
    def init(self) -> LoopState:
        """The pilot: a uniformly randomised log at period 0 trains the first incumbent."""
        cfg = self.config
        pilot = simulate(self._key("pilot", -1), self.params, cfg.world, cfg.pilot_users,
                         LoggingConfig(kind="uniform"), period=0)
        gate = self._gate_split("gate", -1, pilot.n)
        log = _rows(pilot, cohort=-1, gate=gate, arm=np.full(pilot.n, -1))
        incumbent = self._fit(pilot.subset(~gate), -1, 0, 0.0)
        return LoopState(0, incumbent, None, None, log, np.asarray(pilot.x), 1, [])

    def done(self, state: LoopState) -> bool:
        return state.round >= self.config.rounds

    # --------------------------------------------------------------------------------- step
    def step(self, state: LoopState) -> LoopState:
        """Run round ``state.round``; returns the new state (the input is not modified)."""
        cfg = self.config
        r = state.round
        if r >= cfg.rounds:
            fail("state.round", f"the loop has run all {cfg.rounds} rounds", "start a new loop")
        state = dataclasses.replace(state, log=dict(state.log), records=list(state.records))
        params = self._params(r)
        n = cfg.users_per_round
        budget_pu = cfg.policy.budget_per_user
        pop = draw_population(self._key("users", r), params, cfg.world, n, cfg.period(r))
        x, elig = np.asarray(pop.users.x), np.asarray(pop.users.eligible)
        budget = budget_pu * n
        rec: dict[str, Any] = dict(round=r, period=cfg.period(r), n_users=n)
        if cfg.pacing == "liability":
            budget = self._paced_budget(state, r, params, rec)

        inc_dep, inc_target = serve(state.incumbent, x, elig, budget=budget,
                                    exploration=cfg.exploration, allocator=self.allocator)
        arm_probs = np.array([cfg.holdout_share, 1.0 - cfg.holdout_share, 0.0])
        cand_dep = None
        if state.candidate is not None:
            cand_dep, _ = serve(state.candidate, x, elig, budget=budget,
                                          exploration=cfg.exploration, allocator=self.allocator)
            s = cfg.online_test.share
            arm_probs = np.array([cfg.holdout_share, (1 - cfg.holdout_share) * (1 - s),
                                  (1 - cfg.holdout_share) * s])
        arm = np.asarray(jax.random.choice(self._key("arm", r), 3, (n,), p=arm_probs))
        no_offer = np.zeros_like(inc_dep)
        no_offer[:, 0] = 1.0
        arm_dist = np.where((arm == INCUMBENT)[:, None], inc_dep, no_offer)
        mixture = arm_probs[0] * no_offer + arm_probs[1] * inc_dep
        if cand_dep is not None:
            arm_dist = np.where((arm == CANDIDATE)[:, None], cand_dep, arm_dist)
            mixture = mixture + arm_probs[2] * cand_dep
        logged = deploy(self._key("deploy", r), params, pop, arm_dist)
        logged = dataclasses.replace(logged, action_prob=mixture)  # the marginal propensity
        gate = self._gate_split("gate", r, n)
        rows = _rows(logged, cohort=r, gate=gate, arm=arm)
        state.log = {k: np.concatenate([state.log[k], rows[k]]) for k in state.log}

        # ---- truth of this round's policies on these users
        truth = pop.truth
        tau_v = truth.mu_value - truth.mu_value[:, :1]
        tau_c = truth.mu_cost - truth.mu_cost[:, :1]
        # the oracle spends the nominal budget (a paced round's budget is the policy's choice)
        oracle = allocate(tau_v, tau_c, budget=budget_pu * n, eligible=elig)
        oracle_t = policy_truth(truth, oracle.action_dist, eligible=elig)
        rec.update(incumbent_id=state.incumbent.policy_id,
                   oracle_value=oracle_t.incremental_value)
        if cfg.pacing == "liability":
            rec["pacing_issued_expected"] = _issued_expected(
                (arm_probs[1], state.incumbent, inc_dep), (arm_probs[2], state.candidate,
                                                           cand_dep), x=x, eligible=elig)
        for name, dist in (("incumbent", inc_dep), ("incumbent_target", inc_target),
                           ("candidate", cand_dep)):
            if dist is None:
                continue
            t = policy_truth(truth, dist, eligible=elig)
            rec[f"{name}_value"] = t.incremental_value
            rec[f"{name}_cost"] = t.incremental_cost
            rec[f"{name}_regret"] = oracle_t.incremental_value - t.incremental_value
            rec[f"{name}_value_accounting"] = t.incremental_value_accounting
        rec["incumbent_overspend"] = rec["incumbent_cost"] - budget_pu

        # ---- online test of the candidate under test
        served = state.incumbent  # the policy deployed this round (a promotion replaces it)
        if state.candidate is not None:
            test = state.test
            pre = (pre_period_value(self._key("pre", r), params, pop)
                   if cfg.online_test.cuped else None)
            redeemed_now = np.asarray(logged.redemption_lag) == 0
            test = test.update(value=np.asarray(logged.value), arm=arm, arm_probs=arm_probs,
                               pre_value=pre, true_diff=rec["candidate_value"]
                               - rec["incumbent_value"], n=n,
                               cost_observed=np.where(redeemed_now, np.asarray(logged.cost), 0.0),
                               true_cost_diff=rec["candidate_cost"] - rec["incumbent_cost"],
                               true_candidate_lift=rec["candidate_value"],
                               true_incumbent_lift=rec["incumbent_value"])
            rec.update(test.record(prefix="test_"))
            rec["candidate_id"] = state.candidate.policy_id
            if test.decision != "running":
                if test.decision == "promote":
                    state.incumbent = state.candidate
                    rec.update(promoted=True, promotion_right=bool(test.true_diff > 0))
                state.candidate, state.test = None, None
            else:
                state.test = test

        # ---- monitoring
        rec.update(monitor.round_signals(
            logged=logged, arm=arm, arm_probs=arm_probs, deployed=inc_dep, target=inc_target,
            reference_x=state.reference_x, policy=served, budget_per_user=budget_pu,
            log=state.log, round_=r, maturity=cfg.cost_maturity))

        # ---- update
        if cfg.update != "static" and state.candidate is None:
            self._update(state, r, rec, budget_pu)
        rec["incumbent_id_next"] = state.incumbent.policy_id
        state.records.append(rec)
        state.round = r + 1
        return state

    def _matured(self, state: LoopState, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose cohort has matured at the end of round ``r``, and their observed cost."""
        cfg = self.config
        cohort = state.log["cohort"]
        mature = cohort <= r - cfg.cost_maturity
        if cfg.train_window > 0:
            mature &= (cohort > r - cfg.cost_maturity - cfg.train_window) | (cohort < 0)
        lag = state.log["redemption_lag"]
        seen = (cohort < 0) | ((lag >= 0) & (cohort + lag <= r))
        return mature, np.where(seen, state.log["cost"], 0.0)

    def _update(self, state: LoopState, r: int, rec: dict[str, Any], budget_pu: float) -> None:
        cfg = self.config
        mature, cost_seen = self._matured(state, r)
        gate_rows = state.log["gate"].astype(bool)
        train = mature & ~gate_rows
        if cfg.update == "recalibrate":
            newest = state.log["cohort"] == r - cfg.cost_maturity
            if r >= cfg.cost_maturity and newest.any():  # a deployment cohort, not the pilot
                log = _as_logged(state.log, newest & ~gate_rows, cost_seen)
                state.incumbent = _recalibrated(state.incumbent, log, state.next_id, r)
                state.next_id += 1
            return
        if not (mature & (state.log["cohort"] >= 0)).any():
            return  # no deployment cohort has matured yet: the pilot already trained the incumbent
        log = _as_logged(state.log, train, cost_seen)
        candidate = self._fit(log, r, state.next_id, cfg.serving_skew, cfg.serving_cost_scale)
        state.next_id += 1
        rec["candidate_trained"] = candidate.policy_id
        cohort = state.log["cohort"]
        newest = mature & (cohort >= 0) & (cohort > r - cfg.cost_maturity - cfg.gate_window)
        n_matured = r - cfg.cost_maturity + 1
        window = newest | ((cohort < 0) & (n_matured < cfg.gate_window))
        rows = _as_logged(state.log, window & gate_rows, cost_seen)
        g = ope_gate(candidate, state.incumbent, rows, cost_label=rows.cost,
                     budget_per_user=budget_pu, exploration=cfg.exploration, config=cfg.gate,
                     key=self._key("gate_q", r), allocator=self.allocator)
        rec.update(gate_value_diff=g.value_diff.value, gate_value_low=g.value_diff.ci_low,
                   gate_value_high=g.value_diff.ci_high, gate_cost_diff=g.cost_diff.value,
                   gate_cost_low=g.cost_diff.ci_low, gate_cost_high=g.cost_diff.ci_high,
                   gate_candidate_cost=g.candidate_cost.value,
                   gate_candidate_cost_high=g.candidate_cost.ci_high,
                   gate_served_candidate_cost=g.served_candidate_cost,
                   gate_true_value_diff=g.true_value_diff, gate_true_cost_diff=g.true_cost_diff,
                   gate_served_value_diff=g.served_value_diff,
                   gate_value_covered=g.value_covered, gate_cost_covered=g.cost_covered,
                   gate_passed=g.passed, gate_should_pass=g.should_pass,
                   gate_right=g.passed == g.should_pass, gate_rows=g.n_rows,
                   gate_unsupported_mass=g.unsupported_mass, gate_ess=float(g.value_diff.ess))
        self._decide(state, candidate, g.passed, r, rec)
        h = horizon_check(state.incumbent, rows, budget_per_user=budget_pu,
                          exploration=cfg.exploration, alpha=cfg.gate.alpha,
                          key=self._key("horizon_q", r), allocator=self.allocator)
        rec.update(horizon_estimate=h.estimate.value, horizon_low=h.estimate.ci_low,
                   horizon_high=h.estimate.ci_high, horizon_truth=h.truth,
                   horizon_covered=h.covered)

    def _decide(self, state: LoopState, candidate: FittedPolicy, passed: bool, r: int,
                rec: dict[str, Any]) -> None:
        """``retrain``: replace; ``gated``: to the online test (or straight to promotion)."""
        cfg = self.config
        if cfg.update == "retrain":
            state.incumbent = candidate
            return
        if not passed:
            return
        if cfg.online_test.enabled:
            state.candidate = candidate
            state.test = OnlineTest.start(
                cfg.online_test, started=r + 1,
                cost_margin=cfg.online_test.cost_tolerance * cfg.policy.budget_per_user,
                cost_observed_share=self._observed_cost_share(state, r))
        else:
            state.incumbent = candidate
            rec.update(promoted=True, promotion_right=rec["gate_should_pass"])

    def _observed_cost_share(self, state: LoopState, r: int) -> float:
        """The share of a cohort's cost redeemed within its serving round, on the deployment
        cohorts matured by the end of round ``r``: ``sum cost[lag = 0] / sum cost[lag <=
        maturity]`` (redemptions later than the maturity are not seen yet, so this over-states
        the share a little: the guardrail is then conservative); 1 before any has matured."""
        maturity = self.config.cost_maturity
        log = state.log
        lag, cohort, cost = log["redemption_lag"], log["cohort"], log["cost"]
        seen = (cohort >= 0) & (cohort <= r - maturity) & (lag >= 0) & (lag <= maturity)
        total = float(cost[seen].sum())
        share = float(cost[seen & (lag == 0)].sum()) / total if total > 0 else 1.0
        return share if share > 0 else 1.0

    def _paced_budget(self, state: LoopState, r: int, params: Any,
                      rec: dict[str, Any]) -> float:
        """The round's allocator budget under ``pacing="liability"``
        (:func:`policies.pacing.pacing_step` over the deployment rounds; the pilot is outside
        the plan). Budgets are for served (non-holdout) users, so the allocator, which spends per
        user of the whole round, gets the period budget divided by ``1 - holdout_share``."""
        cfg = self.config
        served = (1.0 - cfg.holdout_share) * cfg.users_per_round
        issued = [rec_s["pacing_issued_expected"] for rec_s in state.records]
        log = state.log
        lag, cohort, cost = log["redemption_lag"], log["cohort"], log["cost"]
        paid_rows = (cohort >= 0) & (lag >= 0) & (cohort + lag <= r - 1)
        paid = np.bincount(cohort[paid_rows], weights=cost[paid_rows], minlength=r)[:r]
        decision = pacing_step(cfg.policy.budget_per_user * served * cfg.rounds, cfg.rounds,
                               np.asarray(issued, dtype=np.float64), paid,
                               lag_mean=float(params.redemption_lag_mean))
        rec.update(pacing_budget_per_user=decision.period_budget / served,
                   pacing_correction=decision.correction,
                   pacing_committed_share=decision.committed
                   / (cfg.policy.budget_per_user * served * cfg.rounds),
                   pacing_planned_share=decision.planned
                   / (cfg.policy.budget_per_user * served * cfg.rounds))
        return decision.period_budget / (1.0 - cfg.holdout_share)

    # ---------------------------------------------------------------------------------- run
    def run(self, *, checkpoint_dir: str | Path | None = None, progress: bool = True,
            on_round: Callable[[LoopState], None] | None = None) -> list[dict[str, Any]]:
        """All rounds; with ``checkpoint_dir`` the state after every round is written
        atomically (``state.pkl``) and a rerun resumes from the last completed round."""
        path = None if checkpoint_dir is None else Path(checkpoint_dir) / "state.pkl"
        state = None
        if path is not None and path.exists():
            with open(path, "rb") as f:
                saved = pickle.load(f)
            if saved["config"] != self.config or saved["seed"] != self.seed:
                fail("checkpoint_dir", f"{path} holds a loop of another config or seed",
                     "use a fresh directory per config and seed")
            state = saved["state"]
        state = state or self.init()
        bar = tqdm(total=self.config.rounds, initial=state.round, desc="loop rounds",
                   disable=quiet_bar(progress), leave=False)
        while not self.done(state):
            state = self.step(state)
            if path is not None:
                payload = {"config": self.config, "seed": self.seed, "state": state}
                atomic_write(path, functools.partial(_pickle, payload=payload))
            bar.update(1)
            if on_round is not None:
                on_round(state)
        bar.close()
        return state.records


def _pickle(tmp: Path, payload: Any) -> None:
    with open(tmp, "wb") as f:
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())


def _issued_expected(*arms: tuple[float, FittedPolicy | None, np.ndarray | None],
                     x: np.ndarray, eligible: np.ndarray) -> float:
    """The serving heads' expected cost of a round's offers: ``sum_arm q_arm sum_i sum_a
    d_arm(a | x_i) tau_c_arm(x_i, a)`` over the policies served (as each serves them)."""
    total = 0.0
    for share, policy, dist in arms:
        if policy is None or dist is None or share == 0:
            continue
        _, tc = policy.tau(x, eligible)
        total += float(share * np.sum(dist * tc))
    return total


def _rows(log: LoggedData, *, cohort: int, gate: np.ndarray, arm: np.ndarray
          ) -> dict[str, np.ndarray]:
    out = {c: np.asarray(getattr(log, c)) for c in _COLUMNS}
    for name, value in zip(_TRUTH, log.truth, strict=True):
        out[name] = np.asarray(value)
    out["cohort"] = np.full(log.n, cohort, dtype=np.int64)
    out["gate"] = np.asarray(gate, dtype=bool)
    out["arm"] = np.asarray(arm, dtype=np.int64)
    out["face_value"] = np.broadcast_to(np.asarray(log.face_value), (log.n, log.n_actions))
    return out


def _as_logged(log: dict[str, np.ndarray], rows: np.ndarray, cost: np.ndarray) -> LoggedData:
    take = {c: log[c][rows] for c in _COLUMNS}
    take["cost"] = cost[rows]
    truth = Truth(*(log[t][rows] for t in _TRUTH))
    return LoggedData(**take, face_value=log["face_value"][0], truth=truth)


def _recalibrated(policy: FittedPolicy, log: LoggedData, policy_id: int,
                  r: int) -> FittedPolicy:
    heads = policy.heads
    if not isinstance(heads, UpliftHeads):
        fail("update", "'recalibrate' needs UpliftHeads (value and cost heads with "
             "recalibrators)", "use update=retrain with custom heads")
    base = dataclasses.replace(heads, value_recalibration=None, cost_recalibration=None)
    tv, tc = (np.asarray(t) for t in base.predict_tau(policy.features(log.x)))
    value_cal = LinearRecalibration().fit(tv[:, 1:], log.action, log.value, log.action_prob)
    cost_cal = LinearRecalibration().fit(tc[:, 1:], log.action, log.cost, log.action_prob)
    new = dataclasses.replace(heads, value_recalibration=value_cal, cost_recalibration=cost_cal)
    return dataclasses.replace(policy, heads=new, policy_id=policy_id, trained_at=r)
