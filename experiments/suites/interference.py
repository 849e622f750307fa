"""Interference: concurrent programs on overlapping audiences (sub-additive response, cannibalised
redemption). Per-program lift is conditional on the portfolio; this suite scales the other programs'
reach and compares learners that ignore the other assignments with learners given them as
competing-treatment features: PEHE against the (portfolio-conditional) truth and regret of the
budgeted policy against the oracle.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from estimators.metrics import pehe
from experiments.configs import HeadsConfig, LoggingConfig, PolicyConfig, WorldConfig
from experiments.suites._plotting import metric_panels
from experiments.suites._world_glue import allocate_and_score, fit_tau
from experiments.suites.base import Suite, quiet_bar, stream
from simulators import default_params, simulate

__all__ = ["SUITE", "InterferenceSuiteConfig", "plot", "run"]


@dataclasses.dataclass(frozen=True)
class InterferenceSuiteConfig:
    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig()
    policy: PolicyConfig = PolicyConfig()
    program_reach: tuple[float, ...] = (0.0, 1.0, 2.0)  # multiplier of the programs' reach
    n_train: int = 20_000
    n_eval: int = 20_000

    def __post_init__(self) -> None:
        if any(r < 0 for r in self.program_reach):
            raise ValueError("InterferenceSuiteConfig.program_reach: multipliers must be >= 0.")

    @classmethod
    def compact(cls) -> InterferenceSuiteConfig:
        return cls(program_reach=(0.0, 2.0), n_train=8_000, n_eval=8_000)


def run(cfg: InterferenceSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Streams ``stream(seed, "train")`` and ``stream(seed, "eval")``, the same at every reach
    (common random numbers: the reach levels differ only by the programs' reach)."""
    world = cfg.world
    base = default_params(world)
    budget = cfg.policy.budget_per_user
    rows = []
    for reach in tqdm(cfg.program_reach, desc="interference", disable=quiet_bar(progress),
                      leave=False):
        params = base._replace(program_prob=jnp.clip(base.program_prob * reach, 0.0, 0.95))
        train = simulate(stream(seed, "train"), params, world, cfg.n_train, cfg.logging)
        evaluation = simulate(stream(seed, "eval"), params, world, cfg.n_eval, cfg.logging)
        truth = evaluation.truth
        oracle = allocate_and_score(truth.tau_value, truth.tau_cost, evaluation, budget)
        for features in ("x_only", "x_and_other_programs"):
            if features == "x_only":
                f_train, f_eval = train.x, evaluation.x
            else:
                f_train = np.hstack([train.x, train.other_actions])
                f_eval = np.hstack([evaluation.x, evaluation.other_actions])
            tau_v = fit_tau(cfg.learner.value, f_train, train, train.value, f_eval)
            tau_c = fit_tau(cfg.learner.cost, f_train, train, train.cost, f_eval)
            scored = allocate_and_score(tau_v, tau_c, evaluation, budget)
            common = dict(seed=seed, program_reach=reach, features=features)
            share = float((evaluation.other_actions > 0).any(1).mean())
            rows += [
                dict(common, metric="share_with_other_program", value=share),
                dict(common, metric="pehe_value", value=pehe(tau_v, truth.tau_value,
                                                             evaluation.eligible)),
                dict(common, metric="pehe_cost", value=pehe(tau_c, truth.tau_cost,
                                                            evaluation.eligible)),
                dict(common, metric="regret", value=oracle.incremental_value
                     - scored.incremental_value),
                dict(common, metric="true_incremental_cost", value=scored.incremental_cost),
            ]
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    return [metric_panels(df, ("regret", "pehe_value", "pehe_cost"), series="features",
                          x="program_reach", xlabel="other programs' reach (x default)",
                          out_dir=out_dir, name="interference.png")]


SUITE = Suite(name="interference", config_class=InterferenceSuiteConfig, run=run, plot=plot,
              key_columns=("program_reach", "features"))
