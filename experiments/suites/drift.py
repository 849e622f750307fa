"""Drift and monitoring (design lesson 7: static thresholds decay).

A policy learned at period 0 is deployed at later periods while covariates shift, effects drift,
redemption (cost) drifts and demand is seasonal. Per period this suite scores the stale policy, a
policy retrained on that period's randomised log, and the oracle: true incremental value, regret,
true incremental cost against the budget (overspend), and the monitoring signals a team would watch
(mean feature shift, and the stale cost head's calibration error on the period's log).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from experiments.configs import HeadsConfig, LoggingConfig, PolicyConfig, WorldConfig
from experiments.suites._plotting import metric_panels
from experiments.suites._world_glue import allocate_and_score, fit_tau
from experiments.suites.base import Suite, quiet_bar, stream
from simulators import default_params, simulate

__all__ = ["SUITE", "DriftSuiteConfig", "plot", "run"]


@dataclasses.dataclass(frozen=True)
class DriftSuiteConfig:
    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig()
    policy: PolicyConfig = PolicyConfig()
    periods: tuple[int, ...] = (0, 2, 4, 8, 12)
    n_train: int = 20_000
    n_eval: int = 20_000

    def __post_init__(self) -> None:
        if any(t < 0 for t in self.periods):
            raise ValueError("DriftSuiteConfig.periods: periods must be >= 0.")

    @classmethod
    def compact(cls) -> DriftSuiteConfig:
        return cls(periods=(0, 6), n_train=8_000, n_eval=8_000)


def run(cfg: DriftSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Streams: ``stream(seed, "base")`` (the period-0 training log of the stale policy), and per
    period ``t`` ``stream(seed, "train", t)`` and ``stream(seed, "eval", t)``."""
    world = cfg.world
    params = default_params(world)
    budget = cfg.policy.budget_per_user
    base = simulate(stream(seed, "base"), params, world, cfg.n_train, cfg.logging)
    rows = []
    for t in tqdm(cfg.periods, desc="drift", disable=quiet_bar(progress), leave=False):
        evaluation = simulate(stream(seed, "eval", t), params, world, cfg.n_eval, cfg.logging,
                              period=t)
        fresh = simulate(stream(seed, "train", t), params, world, cfg.n_train, cfg.logging,
                         period=t)
        truth = evaluation.truth
        oracle = allocate_and_score(truth.tau_value, truth.tau_cost, evaluation, budget)
        for policy, train in (("stale_period0", base), ("retrained", fresh)):
            tau_v = fit_tau(cfg.learner.value, train.x, train, train.value, evaluation.x)
            tau_c = fit_tau(cfg.learner.cost, train.x, train, train.cost, evaluation.x)
            scored = allocate_and_score(tau_v, tau_c, evaluation, budget)
            # monitoring: does the cost head still match the period's realised cost on offers?
            offered = evaluation.action > 0
            rows_idx = np.arange(evaluation.n)[offered]
            cost_gap = float(np.mean(evaluation.cost[offered]
                                     - tau_c[rows_idx, evaluation.action[offered]]))
            common = dict(seed=seed, period=t, policy=policy)
            rows += [
                dict(common, metric="true_incremental_value", value=scored.incremental_value),
                dict(common, metric="regret", value=oracle.incremental_value
                     - scored.incremental_value),
                dict(common, metric="overspend_per_user",
                     value=scored.incremental_cost - budget),
                dict(common, metric="cost_head_calibration_gap", value=cost_gap),
            ]
        shift = float(np.linalg.norm(evaluation.x.mean(0) - base.x.mean(0)))
        rows.append(dict(seed=seed, period=t, policy="oracle", metric="true_incremental_value",
                         value=oracle.incremental_value))
        rows.append(dict(seed=seed, period=t, policy="monitor", metric="feature_mean_shift",
                         value=shift))
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    metrics = ("true_incremental_value", "overspend_per_user", "cost_head_calibration_gap")
    return [metric_panels(df, metrics, series="policy", x="period", xlabel="deployment period",
                          out_dir=out_dir, name="drift.png", zero_line=True)]


SUITE = Suite(name="drift", config_class=DriftSuiteConfig, run=run, plot=plot,
              key_columns=("period", "policy"))
