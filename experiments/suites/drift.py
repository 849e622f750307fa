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

import jax
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from experiments.suites._plotting import metric_panels
from experiments.suites._world_glue import allocate_and_score, fit_tau
from simulators import LoggingConfig, WorldConfig, default_params, simulate

__all__ = ["DriftSuiteConfig", "plot", "run"]


@dataclasses.dataclass(frozen=True)
class DriftSuiteConfig:
    periods: tuple[int, ...] = (0, 2, 4, 8, 12)
    n_train: int = 20_000
    n_eval: int = 20_000
    budget_per_user: float = 1.0
    ridge_alpha: float = 1.0

    def __post_init__(self) -> None:
        if any(t < 0 for t in self.periods):
            raise ValueError("DriftSuiteConfig.periods: periods must be >= 0.")

    @classmethod
    def compact(cls) -> DriftSuiteConfig:
        return cls(periods=(0, 6), n_train=8_000, n_eval=8_000)


def run(cfg: DriftSuiteConfig, *, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    world = WorldConfig()
    params = default_params(world)
    key = jax.random.key(seed)
    base = simulate(jax.random.fold_in(key, 10_000), params, world, cfg.n_train, LoggingConfig())
    rows = []
    for t in tqdm(cfg.periods, desc="drift", disable=not progress, leave=False):
        k_train, k_eval = jax.random.split(jax.random.fold_in(key, t))
        evaluation = simulate(k_eval, params, world, cfg.n_eval, LoggingConfig(), period=t)
        fresh = simulate(k_train, params, world, cfg.n_train, LoggingConfig(), period=t)
        truth = evaluation.truth
        oracle = allocate_and_score(truth.tau_value, truth.tau_cost, evaluation,
                                    cfg.budget_per_user)
        for policy, train in (("stale_period0", base), ("retrained", fresh)):
            tau_v = fit_tau(train.x, train, train.value, evaluation.x, cfg.ridge_alpha)
            tau_c = fit_tau(train.x, train, train.cost, evaluation.x, cfg.ridge_alpha)
            scored = allocate_and_score(tau_v, tau_c, evaluation, cfg.budget_per_user)
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
                     value=scored.incremental_cost - cfg.budget_per_user),
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
