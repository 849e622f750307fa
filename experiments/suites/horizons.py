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

import jax
import pandas as pd
from tqdm.auto import tqdm

from estimators.metrics import pehe
from experiments.suites._plotting import metric_panels
from experiments.suites._world_glue import allocate_and_score, fit_tau
from simulators import LoggingConfig, WorldConfig, default_params, simulate

__all__ = ["HorizonsSuiteConfig", "plot", "run"]


@dataclasses.dataclass(frozen=True)
class HorizonsSuiteConfig:
    n_train: tuple[int, ...] = (2_000, 8_000, 32_000)
    n_eval: int = 20_000
    budget_per_user: float = 1.0
    ridge_alpha: float = 1.0

    def __post_init__(self) -> None:
        if not self.n_train or min(self.n_train) < 200:
            raise ValueError("HorizonsSuiteConfig.n_train: give sizes >= 200.")

    @classmethod
    def compact(cls) -> HorizonsSuiteConfig:
        return cls(n_train=(2_000, 8_000), n_eval=8_000)


def run(cfg: HorizonsSuiteConfig, *, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    world = WorldConfig()
    params = default_params(world)
    k_eval, k_train = jax.random.split(jax.random.key(seed))
    evaluation = simulate(k_eval, params, world, cfg.n_eval, LoggingConfig())
    truth = evaluation.truth
    oracle = allocate_and_score(truth.tau_value_accounting, truth.tau_cost, evaluation,
                                cfg.budget_per_user)
    rows = []
    keys = jax.random.split(k_train, len(cfg.n_train))
    for n, key in tqdm(list(zip(cfg.n_train, keys, strict=True)), desc="horizons",
                       disable=not progress, leave=False):
        train = simulate(key, params, world, n, LoggingConfig())
        tau_c = fit_tau(train.x, train, train.cost, evaluation.x, cfg.ridge_alpha)
        for label_name, label in (("learning", train.value),
                                  ("accounting", train.value_accounting)):
            tau_v = fit_tau(train.x, train, label, evaluation.x, cfg.ridge_alpha)
            scored = allocate_and_score(tau_v, tau_c, evaluation, cfg.budget_per_user)
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
