"""Allocation benchmark suite: incremental value against budget for the oracle, cost-aware uplift
(the frontier allocator on learned value and cost heads), value-only uplift, propensity-to-buy
targeting, a lifecycle heuristic and random allocation; regret against the oracle; realised
(true expected) incremental cost against the budget.

Per seed: a uniformly randomised training log fits T-learner ridge heads for value and cost
(``estimators``) and a logistic purchase model on the no-offer rows (for propensity targeting); a
fresh evaluation population is allocated by every policy at each budget level and scored by the
world's exact truth (``policy_truth``). Budgets are per user (total budget = level x n_eval).

Run ``python -m experiments.run experiment=allocation 'seeds=[0,1,2,3,4]'`` (``make results``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from estimators.base import Logistic
from estimators.heads import make_heads
from experiments.configs import HeadsConfig, LoggingConfig, WorldConfig
from experiments.store import atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.base import Suite, stream
from policies import baselines
from simulators import default_params, policy_truth, simulate

__all__ = ["POLICIES", "SUITE", "AllocationSuiteConfig", "plot", "run", "write_results"]

POLICIES = ("oracle", "cost_aware_uplift", "value_only_uplift", "propensity_targeting",
            "lifecycle_rule", "random")


@dataclasses.dataclass(frozen=True)
class AllocationSuiteConfig:
    """``budget_levels``: budget per evaluation user (same units as the world's cost);
    ``lifecycle_offers``: segment -> offer for the heuristic (0 new, 1 active, 2 lapsed);
    ``propensity_offer``: the fixed offer of propensity targeting."""

    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig()
    n_train: int = 40_000
    n_eval: int = 20_000
    budget_levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    propensity_offer: int = 1
    lifecycle_offers: tuple[tuple[int, int], ...] = ((0, 1), (2, 2))

    @classmethod
    def compact(cls) -> AllocationSuiteConfig:
        return cls(n_train=8_000, n_eval=4_000, budget_levels=(0.1, 0.4, 1.6))

    def __post_init__(self) -> None:
        if self.n_train < 100 or self.n_eval < 10:
            raise ValueError("AllocationSuiteConfig: n_train >= 100, n_eval >= 10.")
        if not self.budget_levels or min(self.budget_levels) < 0:
            raise ValueError("AllocationSuiteConfig.budget_levels: non-empty, all >= 0.")


def _features(x: np.ndarray, segment: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.eye(3)[segment]], axis=1)


def run(cfg: AllocationSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows: policy, budget_per_user, seed, n, metric, value (per-user means). Streams:
    ``stream(seed, "train")``, ``stream(seed, "eval")`` (the training log follows ``logging``, the
    evaluation population is uniform), ``stream(seed, "policy", level, i)`` for the random
    baselines at each budget level."""
    world = cfg.world
    params = default_params(world)
    train = simulate(stream(seed, "train"), params, world, cfg.n_train, cfg.logging)
    ev = simulate(stream(seed, "eval"), params, world, cfg.n_eval, LoggingConfig(kind="uniform"))
    f_train = _features(train.x, train.segment)
    f_eval = _features(ev.x, ev.segment)
    heads = make_heads(cfg.learner).fit(f_train, train.action, value=train.value, cost=train.cost,
                                        action_prob=train.action_prob, n_actions=world.n_actions)
    tv_hat, tc_hat = (np.asarray(t) for t in heads.predict_tau(f_eval))
    no_offer = train.action == 0
    buy = Logistic(alpha=1.0)
    buy_params = buy.fit(f_train[no_offer], (train.value[no_offer] > 0).astype(np.float64))
    purchase_score = np.asarray(buy.predict(buy_params, f_eval))
    tv, tc, e = ev.truth.tau_value, ev.truth.tau_cost, ev.eligible
    rows = []
    for level in cfg.budget_levels:
        budget = level * cfg.n_eval
        keys = [stream(seed, "policy", round(level * 1e6), i) for i in range(2)]
        allocs = {
            "oracle": baselines.oracle(tv, tc, budget=budget, eligible=e),
            "cost_aware_uplift": baselines.cost_aware_uplift(tv_hat, tc_hat, budget=budget,
                                                             eligible=e),
            "value_only_uplift": baselines.value_only_uplift(tv_hat, tc_hat, budget=budget,
                                                             eligible=e),
            "propensity_targeting": baselines.propensity_targeting(
                purchase_score, tv_hat, tc_hat, offer=cfg.propensity_offer, budget=budget,
                eligible=e),
            "lifecycle_rule": baselines.lifecycle_rule(
                keys[0], ev.segment, tv_hat, tc_hat, offer_by_segment=dict(cfg.lifecycle_offers),
                budget=budget, eligible=e),
            "random": baselines.random_allocation(keys[1], tv_hat, tc_hat, budget=budget,
                                                  eligible=e),
        }
        truth = {p: policy_truth(ev.truth, a.action_dist, eligible=ev.eligible)
                 for p, a in allocs.items()}
        best = truth["oracle"].incremental_value
        for p, t in truth.items():
            for metric, value in (("incremental_value", t.incremental_value),
                                  ("incremental_cost", t.incremental_cost),
                                  ("regret", best - t.incremental_value),
                                  ("cost_over_budget", t.incremental_cost - level),
                                  ("roi", t.incremental_value / t.incremental_cost
                                   if t.incremental_cost > 0 else np.nan)):
                rows.append({"policy": p, "budget_per_user": level, "seed": seed,
                             "n": cfg.n_eval, "metric": metric, "value": float(value)})
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per (policy, budget, metric)."""
    g = df.groupby(["metric", "policy", "budget_per_user"])["value"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"].fillna(0.0) / np.sqrt(out["count"])
    return out.drop(columns="std")


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Value vs budget, regret vs budget, realised cost vs budget (mean +- 1 s.e. over seeds)."""
    plt = pyplot()
    s = summary(df)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for ax, metric, title in zip(axes, ("incremental_value", "regret", "incremental_cost"),
                                 ("incremental value per user", "regret vs oracle per user",
                                  "realised incremental cost per user"), strict=True):
        for p in POLICIES:
            d = s[(s.metric == metric) & (s.policy == p)].sort_values("budget_per_user")
            if d.empty:
                continue
            ax.errorbar(d.budget_per_user, d["mean"], yerr=d.se, capsize=3, label=p,
                        **series_style(p))
        if metric == "incremental_cost":
            b = np.sort(df.budget_per_user.unique())
            ax.plot(b, b, "--", lw=1, label="budget", color=series_style("budget")["color"])
        log_axis(ax, "x", np.sort(df.budget_per_user.unique()))
        ax.set_xlabel("budget per user")
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    figure_legend(fig, axes, fontsize=8)
    return [save(fig, out_dir, "allocation_vs_budget.png")]


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """CSV of all rows, a markdown table of means +- s.e., and the figure."""
    out_dir = Path(out_dir)
    csv = out_dir / "allocation.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = summary(df)
    lines = []
    for metric in ("incremental_value", "regret", "incremental_cost", "roi"):
        t = s[s.metric == metric].pivot(index="policy", columns="budget_per_user",
                                        values="mean").reindex(list(POLICIES))
        se = s[s.metric == metric].pivot(index="policy", columns="budget_per_user",
                                         values="se").reindex(list(POLICIES))
        lines += [f"### {metric} (per user; mean ± s.e. over seeds)", "",
                  "| policy | " + " | ".join(f"B={b:g}" for b in t.columns) + " |",
                  "|---|" + "---|" * len(t.columns)]
        for p in t.index:
            cells = [f"{t.loc[p, b]:.4f} ± {se.loc[p, b]:.4f}" for b in t.columns]
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
        lines.append("")
    md = out_dir / "allocation.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


SUITE = Suite(name="allocation", config_class=AllocationSuiteConfig, run=run, plot=plot,
              write=write_results, key_columns=("policy", "budget_per_user", "n"),
              result_seeds=(0, 1, 2, 3, 4))
