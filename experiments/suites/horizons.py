"""Learning horizon vs accounting horizon (design lesson 1).

The business is judged on the accounting-horizon value (longer window, purchase pull-forward,
noisier basket), but training on it dilutes the ranking signal. For each training size ``n`` this
suite fits the value head on the learning-horizon label and, separately, on the accounting label,
allocates the same budget, and scores both policies by their *true accounting-horizon* incremental
value, beside the oracle that allocates on the true accounting uplift.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from estimators.metrics import pehe
from experiments.configs import HeadsConfig, LoggingConfig, PolicyConfig, WorldConfig
from experiments.suites._plotting import metric_panels
from experiments.suites._world_glue import allocate_and_score, fit_tau
from experiments.suites.base import Suite, quiet_bar, stream
from simulators import default_params, simulate

__all__ = ["SUITE", "HorizonsSuiteConfig", "plot", "run"]


@dataclasses.dataclass(frozen=True)
class HorizonsSuiteConfig:
    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig()
    policy: PolicyConfig = PolicyConfig()
    n_train: tuple[int, ...] = (2_000, 8_000, 32_000)
    n_eval: int = 20_000

    def __post_init__(self) -> None:
        if not self.n_train or min(self.n_train) < 200:
            raise ValueError("HorizonsSuiteConfig.n_train: give sizes >= 200.")

    @classmethod
    def compact(cls) -> HorizonsSuiteConfig:
        return cls(n_train=(2_000, 8_000), n_eval=8_000)


def run(cfg: HorizonsSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Streams: ``stream(seed, "eval")``, ``stream(seed, "train", n)`` per training size."""
    world = cfg.world
    params = default_params(world)
    evaluation = simulate(stream(seed, "eval"), params, world, cfg.n_eval, cfg.logging)
    truth = evaluation.truth
    budget = cfg.policy.budget_per_user
    oracle = allocate_and_score(truth.tau_value_accounting, truth.tau_cost, evaluation, budget)
    rows = []
    for n in tqdm(cfg.n_train, desc="horizons", disable=quiet_bar(progress), leave=False):
        train = simulate(stream(seed, "train", n), params, world, n, cfg.logging)
        tau_c = fit_tau(cfg.learner.cost, train.x, train, train.cost, evaluation.x)
        for label_name, label in (("learning", train.value),
                                  ("accounting", train.value_accounting)):
            tau_v = fit_tau(cfg.learner.value, train.x, train, label, evaluation.x)
            scored = allocate_and_score(tau_v, tau_c, evaluation, budget)
            common = dict(seed=seed, n=n, label=label_name)
            rows += [
                dict(common, metric="pehe_vs_accounting_uplift",
                     value=pehe(tau_v, truth.tau_value_accounting, evaluation.eligible)),
                dict(common, metric="true_incremental_value_accounting",
                     value=scored.incremental_value_accounting),
                dict(common, metric="regret_accounting",
                     value=oracle.incremental_value_accounting
                     - scored.incremental_value_accounting),
                dict(common, metric="true_incremental_cost", value=scored.incremental_cost),
            ]
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    return [metric_panels(df, ("regret_accounting", "pehe_vs_accounting_uplift"), series="label",
                          x="n", xlabel="training rows", out_dir=out_dir, name="horizons.png",
                          logx=True, label="trained on {} label")]


SUITE = Suite(name="horizons", config_class=HorizonsSuiteConfig, run=run, plot=plot,
              key_columns=("n", "label"))
