"""The default benchmark (issue 2's main job), end to end on the embedded synthetic world.

default world -> uniform randomised training log -> T-learners with a JAX ridge base for the value
head and the cost head -> budgeted allocation on the estimated incremental value and cost ->
IPS and DR estimates (95% CIs) of that policy's value and cost on an independent evaluation log ->
beside the oracle's exact value and cost of the same policy and the value of the oracle policy
(the optimal budgeted policy on the true uplift).

Training and evaluation logs are independent draws, so the evaluated policy does not depend on the
outcomes it is evaluated on (otherwise IPS/DR would be optimistic). Every number in the table comes
from the stage that claims it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from estimators.base import Ridge
from estimators.heads import UpliftHeads
from estimators.ope import estimate, paired_difference
from estimators.uplift import TLearner
from experiments.store import atomic_write
from experiments.suites._plotting import pyplot, save
from policies.allocation import allocate
from simulators import (
    LoggingConfig,
    WorldConfig,
    default_params,
    optimal_policy,
    policy_truth,
    simulate,
    simulate_batch,
)

__all__ = ["MainSuiteConfig", "plot", "run", "run_batch", "summary_table", "write_outputs"]


MAIN_ESTIMATORS = ("dm", "ips", "snips", "dr", "sndr")  # the OPE functions without a lambda_


@dataclasses.dataclass(frozen=True)
class MainSuiteConfig:
    """Knobs of the default benchmark; the global Hydra groups map onto them (``world.*`` ->
    the world sizes, ``logging.*`` -> the logger, ``learner.value_alpha/cost_alpha`` -> the ridge
    penalties of the two heads, ``policy.budget_per_user``, ``ope.estimators/ci_level``).

    ``budget_per_user`` is the allowed expected incremental cost per evaluated user (the total
    budget is ``budget_per_user * n_eval``).
    """

    n_train: int = 20_000
    n_eval: int = 20_000
    n_continuous: int = 6
    n_binary: int = 4
    n_offers: int = 4
    n_programs: int = 2
    logging: str = "uniform"
    logging_offer: int = 1
    treat_prob: float = 0.5
    temperature: float = 0.5
    prior_noise: float = 1.0
    epsilon: float = 0.1
    value_alpha: float = 1.0
    cost_alpha: float = 1.0
    budget_per_user: float = 1.0
    estimators: tuple[str, ...] = ("ips", "dr")
    ci_level: float = 0.95

    def __post_init__(self) -> None:
        if self.n_train < 100 or self.n_eval < 100:
            raise ValueError("MainSuiteConfig.n_train/n_eval: need at least 100 rows each. "
                             "Fix: raise them (default 20000).")
        if self.budget_per_user < 0:
            raise ValueError("MainSuiteConfig.budget_per_user: must be >= 0.")
        if not 0.0 < self.ci_level < 1.0:
            raise ValueError("MainSuiteConfig.ci_level: must lie in (0, 1), e.g. 0.95.")
        if self.logging == "confounded":
            raise ValueError("MainSuiteConfig.logging: the confounded logger records no "
                             "propensities, so IPS/DR cannot run. Fix: uniform, holdout, "
                             "warm_start or epsilon_greedy.")
        if self.value_alpha <= 0 or self.cost_alpha <= 0:
            raise ValueError("MainSuiteConfig.value_alpha/cost_alpha: ridge penalties must be "
                             "> 0. Fix: e.g. 1.0.")
        bad = [e for e in self.estimators if e not in MAIN_ESTIMATORS]
        if bad or not self.estimators:
            raise ValueError(f"MainSuiteConfig.estimators: {bad or 'empty'} not available in the "
                             f"main job. Fix: a non-empty subset of {MAIN_ESTIMATORS} (the "
                             "lambda_ estimators run in the ope suite).")
        # the world and the logger validate their own fields (and the offer against K) here,
        # at start-up, not after the first simulation
        self.world_config()
        self.logging_config()
        if self.logging == "holdout" and not 1 <= self.logging_offer <= self.n_offers:
            raise ValueError(f"MainSuiteConfig.logging_offer: {self.logging_offer} is not an "
                             f"offer of this world (1..{self.n_offers}). Fix: pick one of them.")

    def world_config(self) -> WorldConfig:
        return WorldConfig(n_continuous=self.n_continuous, n_binary=self.n_binary,
                           n_offers=self.n_offers, n_programs=self.n_programs)

    def logging_config(self) -> LoggingConfig:
        return LoggingConfig(kind=self.logging, offer=self.logging_offer,
                             treat_prob=self.treat_prob, temperature=self.temperature,
                             prior_noise=self.prior_noise, epsilon=self.epsilon)

    @classmethod
    def compact(cls) -> MainSuiteConfig:
        return cls(n_train=10_000, n_eval=10_000)


def _one_hot(action: np.ndarray, n_actions: int) -> np.ndarray:
    return np.eye(n_actions)[action]


def run(cfg: MainSuiteConfig, *, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Run the pipeline once. Tidy rows ``(seed, policy, metric, estimator, value, stderr, ci_low,
    ci_high, ess)``: ``metric`` is ``policy_value``/``policy_cost`` (per-user level) or
    ``incremental_value``/``incremental_cost`` (against no-offer on the same log, a paired
    difference); ``estimator`` is one of ``cfg.estimators`` or ``truth`` (the oracle's exact
    value)."""
    world = cfg.world_config()
    params = default_params(world)
    k_train, k_eval = jax.random.split(jax.random.key(seed))
    logging = cfg.logging_config()
    bar = _progress(1, progress)
    train = simulate(k_train, params, world, cfg.n_train, logging)
    evaluation = simulate(k_eval, params, world, cfg.n_eval, logging)
    bar.update(1)
    df = _evaluate(cfg, world, train, evaluation, seed, bar)
    bar.close()
    return df


def run_batch(cfg: MainSuiteConfig, *, seeds: list[int], progress: bool = True) -> pd.DataFrame:
    """:func:`run` for several seeds in one job: the training and evaluation logs of every seed
    are simulated in one ``vmap``-ed call each (one compilation for the batch), then each seed's
    heads, allocation and OPE run on its own logs. Same rows as ``run`` seed by seed (the vmapped
    simulation equals the per-seed one to float rounding)."""
    world = cfg.world_config()
    params = default_params(world)
    keys = jnp.stack([jax.random.split(jax.random.key(s)) for s in seeds])
    logging = cfg.logging_config()
    bar = _progress(len(seeds), progress)
    train = simulate_batch(keys[:, 0], params, world, cfg.n_train, logging)
    evaluation = simulate_batch(keys[:, 1], params, world, cfg.n_eval, logging)
    bar.update(1)
    frames = [_evaluate(cfg, world, train.seed(i), evaluation.seed(i), seed, bar)
              for i, seed in enumerate(seeds)]
    bar.close()
    return pd.concat(frames, ignore_index=True)


def _evaluate(cfg: MainSuiteConfig, world: WorldConfig, train, evaluation, seed: int,
              bar) -> pd.DataFrame:
    """Heads, allocation and OPE of one seed's training and evaluation logs."""
    heads = UpliftHeads(value=TLearner(base=Ridge(alpha=cfg.value_alpha)),
                        cost=TLearner(base=Ridge(alpha=cfg.cost_alpha)))
    heads.fit(train.x, train.action, value=train.value, cost=train.cost,
              action_prob=train.action_prob, n_actions=world.n_actions)
    mu_v, mu_c = (np.asarray(m) for m in heads.predict_mu(evaluation.x))
    mu_hat = {"value": mu_v, "cost": mu_c}
    tau_v, tau_c = (np.asarray(t) for t in heads.predict_tau(evaluation.x))
    bar.update(1)

    budget = cfg.budget_per_user * cfg.n_eval
    learned = allocate(tau_v, tau_c, budget=budget, eligible=evaluation.eligible)
    oracle = optimal_policy(evaluation.truth, budget, eligible=evaluation.eligible)
    no_offer = _one_hot(np.zeros(cfg.n_eval, int), world.n_actions)
    bar.update(1)

    policies = {
        "cost_aware_uplift": np.asarray(learned.action_dist),
        "oracle": np.asarray(oracle.action_dist),
        "no_offer": no_offer,
        "logging": np.asarray(evaluation.action_prob),
    }
    rows = []
    alpha = 1 - cfg.ci_level
    for name, dist in policies.items():
        truth = policy_truth(evaluation.truth, dist, eligible=evaluation.eligible)
        for target, reward, level, incremental in (
            ("value", evaluation.value, truth.value, truth.incremental_value),
            ("cost", evaluation.cost, truth.cost, truth.incremental_cost),
        ):
            common = dict(reward=reward, action=evaluation.action, pscore=evaluation.pscore,
                          action_dist=dist, alpha=alpha)
            for est_name in cfg.estimators:  # (estimators without an outcome model ignore it)
                for metric, est in (
                    (f"policy_{target}", estimate(est_name, q_hat=mu_hat[target], **common)),
                    (f"incremental_{target}", paired_difference(
                        est_name, baseline_dist=no_offer, q_hat=mu_hat[target], **common)),
                ):
                    rows.append(dict(policy=name, metric=metric, estimator=est_name,
                                     value=est.value, stderr=est.stderr, ci_low=est.ci_low,
                                     ci_high=est.ci_high, ess=est.ess))
            for metric, true_value in ((f"policy_{target}", level),
                                       (f"incremental_{target}", incremental)):
                rows.append(dict(policy=name, metric=metric, estimator="truth",
                                 value=true_value, stderr=0.0, ci_low=true_value,
                                 ci_high=true_value, ess=np.nan))
    bar.update(1)
    df = pd.DataFrame(rows)
    df.insert(0, "seed", seed)
    df["budget_per_user"] = cfg.budget_per_user
    df["n_eval"] = cfg.n_eval
    return df


def _progress(n_seeds: int, enabled: bool):
    """One bar over the stages: simulate (all seeds), then fit / allocate / evaluate per seed."""
    from tqdm.auto import tqdm

    return tqdm(total=1 + 3 * n_seeds, desc="main benchmark", disable=not enabled, leave=False)


def _estimators(df: pd.DataFrame) -> list[str]:
    """The OPE estimators present in the rows, in the order they were run."""
    return [e for e in dict.fromkeys(df["estimator"]) if e != "truth"]


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (policy, metric) of the first seed: truth, IPS and DR estimates with their CIs;
    with several seeds, also the share of seeds whose interval covers the truth."""
    wide = []
    first = df[df["seed"] == df["seed"].min()] if "seed" in df else df
    for (policy, metric), g in first.groupby(["policy", "metric"], sort=False):
        row = {"policy": policy, "metric": metric}
        g = g.set_index("estimator")
        row["truth"] = g.loc["truth", "value"]
        for est in _estimators(df):
            row[est] = g.loc[est, "value"]
            row[f"{est}_ci"] = f"[{g.loc[est, 'ci_low']:.3f}, {g.loc[est, 'ci_high']:.3f}]"
            low, high = g.loc[est, "ci_low"], g.loc[est, "ci_high"]
            row[f"{est}_covers"] = bool(low <= row["truth"] <= high)
        if "seed" in df and df["seed"].nunique() > 1:
            every = df[(df["policy"] == policy) & (df["metric"] == metric)]
            truth = every[every["estimator"] == "truth"].set_index("seed")["value"]
            for est in _estimators(df):
                e = every[every["estimator"] == est].set_index("seed")
                covered = (e["ci_low"] <= truth[e.index]) & (truth[e.index] <= e["ci_high"])
                row[f"{est}_coverage_{len(e)}_seeds"] = float(covered.mean())
        wide.append(row)
    return pd.DataFrame(wide)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """IPS and DR estimates with CIs beside the oracle truth, per policy, for value and cost."""
    plt = pyplot()
    seed0 = df[df["seed"] == df["seed"].min()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("incremental_value", "incremental_cost"), strict=True):
        sub = seed0[seed0["metric"] == metric]
        names = list(dict.fromkeys(sub["policy"]))
        ests = _estimators(df)
        for j, est in enumerate(ests):
            e = sub[sub["estimator"] == est].set_index("policy").loc[names]
            pos = np.arange(len(names)) + (j - (len(ests) - 1) / 2) * 0.5 / len(ests)
            ax.errorbar(pos, e["value"], yerr=[e["value"] - e["ci_low"], e["ci_high"] - e["value"]],
                        fmt="o", capsize=3, label=f"{est.upper()} (95% CI)")
        t = sub[sub["estimator"] == "truth"].set_index("policy").loc[names]
        ax.scatter(np.arange(len(names)), t["value"], marker="_", s=600, color="k", label="truth")
        ax.set_xticks(np.arange(len(names)), names, rotation=20)
        ax.set_title(f"{metric.replace('_', ' ')} per user")
        ax.grid(alpha=0.3)
    axes[0].legend()
    return [save(fig, out_dir, "main_benchmark.png")]


def write_outputs(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Print the summary table and write ``main_benchmark.csv`` and the figure under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = summary_table(df)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    csv = out_dir / "main_benchmark.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    return [csv, *plot(df, out_dir)]


if __name__ == "__main__":
    write_outputs(run(MainSuiteConfig()), Path("results/main"))
