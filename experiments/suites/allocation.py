"""Allocation benchmark suite: incremental value against budget for the oracle, cost-aware uplift
(the frontier allocator on learned value and cost heads), value-only uplift, propensity-to-buy
targeting, a lifecycle heuristic and random allocation; regret against the oracle; realised
(true expected) incremental cost against the budget.

Per seed: a uniformly randomised training log fits T-learner ridge heads for value and cost
(``estimators``) and a logistic purchase model on the no-offer rows (for propensity targeting); a
fresh evaluation population is allocated by every policy at each budget level and scored by the
world's exact truth (``policy_truth``). Budgets are per user (total budget = level x n_eval).
``treat_all`` (one fixed offer to everyone eligible, no budget) sits beside them.

Constraints (rows with ``constraint`` other than ``none``): the oracle and the cost-aware
allocator again under each operational constraint of :func:`policies.allocation.allocate` in
turn, on top of the budget: ``roi_floor`` (aggregate ``sum value >= min_roi * sum cost``),
``pair_roi_floor`` (pruning: no user-action pair with ``tau_v < min_pair_roi * tau_c``) and
``capacity`` (each offer to at most ``capacity_share`` of the users). Their regret is against the
*unconstrained* oracle, so the oracle's regret under a constraint is what that constraint costs
in true value; the allocator's dual prices are reported as metrics (``budget_multiplier``
lambda, ``roi_multiplier`` mu, ``capacity_multiplier`` the largest nu_a).

Run ``python -m experiments.run experiment=allocation 'seeds=[0,1,2,3,4]'`` (``make results``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from estimators.base import Logistic
from estimators.heads import make_heads
from experiments.configs import HeadsConfig, LoggingConfig, SourceConfig, WorldConfig
from experiments.store import OMIT_AT_DEFAULT, atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.base import Suite, mean_se, stream
from policies import baselines
from simulators import policy_truth
from simulators.sources import draw_log

__all__ = ["CONSTRAINTS", "POLICIES", "SUITE", "AllocationSuiteConfig", "features", "plot", "run",
           "write_results"]

POLICIES = ("oracle", "cost_aware_uplift", "value_only_uplift", "propensity_targeting",
            "lifecycle_rule", "random", "treat_all")
CONSTRAINTS = ("roi_floor", "pair_roi_floor", "capacity")
CONSTRAINED_POLICIES = ("oracle", "cost_aware_uplift")
# the registered worlds with an incentive cost (a world without one has no budget to allocate)
SOURCES_WITH_COST = ("hillstrom", "lbcf")


@dataclasses.dataclass(frozen=True)
class AllocationSuiteConfig:
    """``budget_levels``: budget per evaluation user (same units as the world's cost);
    ``lifecycle_offers``: segment -> offer for the heuristic (0 new, 1 active, 2 lapsed);
    ``propensity_offer``: the fixed offer of propensity targeting and of ``treat_all``;
    ``constraints``: the constraint runs (some of :data:`CONSTRAINTS`), with ``min_roi`` (value
    per unit of cost over the whole allocation), ``min_pair_roi`` (per user-action pair) and
    ``capacity_share`` (share of the evaluation users each offer may reach)."""

    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig()
    # a literature world with cost (world=hillstrom_semi) in place of the synthetic world; left
    # out of the config hash while synthetic
    source: SourceConfig = dataclasses.field(default=SourceConfig(), metadata=OMIT_AT_DEFAULT)
    n_train: int = 40_000
    n_eval: int = 20_000
    budget_levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    propensity_offer: int = 1
    lifecycle_offers: tuple[tuple[int, int], ...] = ((0, 1), (2, 2))
    constraints: tuple[str, ...] = CONSTRAINTS
    min_roi: float = 2.0
    min_pair_roi: float = 1.0
    capacity_share: float = 0.1

    @classmethod
    def compact(cls) -> AllocationSuiteConfig:
        return cls(n_train=8_000, n_eval=4_000, budget_levels=(0.1, 0.4, 1.6))

    def __post_init__(self) -> None:
        if not self.source.synthetic:
            self.source.require("allocation", ("synthetic", *SOURCES_WITH_COST))
        if self.n_train < 100 or self.n_eval < 10:
            raise ValueError("AllocationSuiteConfig: n_train >= 100, n_eval >= 10.")
        if not self.budget_levels or min(self.budget_levels) < 0:
            raise ValueError("AllocationSuiteConfig.budget_levels: non-empty, all >= 0.")
        unknown = sorted(set(self.constraints) - set(CONSTRAINTS))
        if unknown:
            raise ValueError(f"AllocationSuiteConfig.constraints: unknown {unknown}. Fix: some "
                             f"of {CONSTRAINTS}.")
        if self.min_roi < 0 or self.min_pair_roi < 0:
            raise ValueError(f"AllocationSuiteConfig.min_roi / min_pair_roi: must be >= 0, got "
                             f"{self.min_roi} / {self.min_pair_roi}. Fix: e.g. 2.0 / 1.0.")
        if not 0.0 < self.capacity_share <= 1.0:
            raise ValueError(f"AllocationSuiteConfig.capacity_share: must lie in (0, 1], got "
                             f"{self.capacity_share}. Fix: e.g. 0.1 (each offer to at most 10% "
                             "of users).")

    def constraint_kwargs(self, constraint: str, n_actions: int) -> dict:
        """The :func:`policies.allocation.allocate` arguments of a constraint run."""
        if constraint == "roi_floor":
            return {"min_roi": self.min_roi}
        if constraint == "pair_roi_floor":
            return {"min_pair_roi": self.min_pair_roi}
        cap = np.full(n_actions, self.capacity_share * self.n_eval)
        cap[0] = np.inf
        return {"capacity": cap}


def features(x: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Model features: the user's covariates and a one-hot of the lifecycle segment."""
    return np.concatenate([x, np.eye(3)[segment]], axis=1)


def run(cfg: AllocationSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows: policy, budget_per_user, seed, n, metric, value (per-user means). Streams:
    ``stream(seed, "train")``, ``stream(seed, "eval")`` (the training log follows ``logging``, the
    evaluation population is uniform), ``stream(seed, "policy", level, i)`` for the random
    baselines at each budget level."""
    train = draw_log(stream(seed, "train"), cfg.source, cfg.world, cfg.n_train, cfg.logging)
    ev = draw_log(stream(seed, "eval"), cfg.source, cfg.world, cfg.n_eval, cfg.logging,
                  uniform=True)
    n_actions = ev.n_actions
    f_train = features(train.x, train.segment)
    f_eval = features(ev.x, ev.segment)
    heads = make_heads(cfg.learner).fit(f_train, train.action, value=train.value, cost=train.cost,
                                        action_prob=train.action_prob, n_actions=n_actions)
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
        allocs["treat_all"] = baselines.treat_all(tv_hat, tc_hat, offer=cfg.propensity_offer,
                                                  eligible=e)
        runs = [("none", p, a) for p, a in allocs.items()]
        for constraint in cfg.constraints:
            kw = cfg.constraint_kwargs(constraint, n_actions)
            runs += [(constraint, "oracle", baselines.oracle(tv, tc, budget=budget, eligible=e,
                                                             **kw)),
                     (constraint, "cost_aware_uplift", baselines.cost_aware_uplift(
                         tv_hat, tc_hat, budget=budget, eligible=e, **kw))]
        best = policy_truth(ev.truth, allocs["oracle"].action_dist,
                            eligible=e).incremental_value
        for constraint, p, a in runs:
            t = policy_truth(ev.truth, a.action_dist, eligible=e)
            metrics = [("incremental_value", t.incremental_value),
                       ("incremental_cost", t.incremental_cost),
                       ("regret", best - t.incremental_value),
                       ("cost_over_budget", t.incremental_cost - level),
                       ("roi", t.incremental_value / t.incremental_cost
                        if t.incremental_cost > 0 else np.nan)]
            if p in CONSTRAINED_POLICIES:  # the allocator's dual prices
                metrics += [("budget_multiplier", a.budget_multiplier),
                            ("roi_multiplier", a.roi_multiplier),
                            ("capacity_multiplier", float(np.max(a.capacity_multipliers)))]
            for metric, value in metrics:
                rows.append({"policy": p, "constraint": constraint, "budget_per_user": level,
                             "seed": seed, "n": cfg.n_eval, "metric": metric,
                             "value": float(value)})
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per (constraint, policy, budget, metric)."""
    if "constraint" not in df:  # rows stored before the constraint runs existed
        df = df.assign(constraint="none")
    return mean_se(df, ["constraint", "metric", "policy", "budget_per_user"])


def _constraint_series(constraint: str, policy: str) -> str:
    return policy if constraint == "none" else f"{policy}@{constraint}"


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``allocation_vs_budget.png``: value, regret and realised cost vs budget of every policy;
    ``allocation_constraints.png``: what each constraint costs the oracle and the cost-aware
    allocator in true value, and the budget multiplier (mean +- 1 s.e. over seeds)."""
    plt = pyplot()
    s = summary(df)
    budgets = np.sort(df.budget_per_user.unique())
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    free = s[s.constraint == "none"]
    for ax, metric, title in zip(axes, ("incremental_value", "regret", "incremental_cost"),
                                 ("incremental value per user", "regret vs oracle per user",
                                  "realised incremental cost per user"), strict=True):
        for p in POLICIES:
            d = free[(free.metric == metric) & (free.policy == p)].sort_values("budget_per_user")
            if d.empty:
                continue
            ax.errorbar(d.budget_per_user, d["mean"], yerr=d.se, capsize=3, label=p,
                        **series_style(p))
        if metric == "incremental_cost":
            ax.plot(budgets, budgets, "--", lw=1, label="budget",
                    color=series_style("budget")["color"])
        log_axis(ax, "x", budgets)
        ax.set_xlabel("budget per user")
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    figure_legend(fig, axes, fontsize=8)
    paths = [save(fig, out_dir, "allocation_vs_budget.png")]
    constrained = sorted(set(s.constraint) - {"none"}, key=lambda c: CONSTRAINTS.index(c)
                         if c in CONSTRAINTS else len(CONSTRAINTS))
    if constrained:
        fig, axes = plt.subplots(1, len(CONSTRAINED_POLICIES) + 1, figsize=(16, 4.5))
        lines = ("-", "--", "-.", ":")
        for ax, (metric, policy, title) in zip(axes, (
                ("regret", "oracle", "oracle: true value lost to the constraint"),
                ("regret", "cost_aware_uplift", "cost-aware uplift: regret vs oracle"),
                ("budget_multiplier", "oracle", "oracle: budget multiplier lambda")),
                strict=True):
            for constraint, ls in zip(("none", *constrained), lines, strict=False):
                d = s[(s.constraint == constraint) & (s.metric == metric)
                      & (s.policy == policy)].sort_values("budget_per_user")
                if d.empty:
                    continue
                style = series_style(_constraint_series(constraint, policy))
                ax.errorbar(d.budget_per_user, d["mean"], yerr=d.se, capsize=3, linestyle=ls,
                            label=f"{policy}: {constraint}", **style)
            log_axis(ax, "x", budgets)
            ax.set_xlabel("budget per user")
            ax.set_title(title, fontsize=10)
            ax.grid(alpha=0.3)
        figure_legend(fig, axes, fontsize=8)
        paths.append(save(fig, out_dir, "allocation_constraints.png"))
    return paths


def _table(s: pd.DataFrame, metric: str, rows: list[tuple[str, str]]) -> list[str]:
    d = s[s.metric == metric]
    mean = d.pivot_table(index=["constraint", "policy"], columns="budget_per_user",
                         values="mean")
    se = d.pivot_table(index=["constraint", "policy"], columns="budget_per_user", values="se")
    rows = [r for r in rows if r in mean.index]
    if not rows:
        return []
    lines = ["| policy | constraint | " + " | ".join(f"B={b:g}" for b in mean.columns) + " |",
             "|---|---|" + "---|" * len(mean.columns)]
    for c, p in rows:
        cells = [fmt if np.isfinite(mean.loc[(c, p), b]) else "n/a"
                 for b, fmt in ((b, f"{mean.loc[(c, p), b]:.4f} ± {se.loc[(c, p), b]:.4f}")
                                for b in mean.columns)]
        lines.append(f"| {p} | {c} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """CSV of all rows, a markdown table of means +- s.e., and the figures."""
    out_dir = Path(out_dir)
    csv = out_dir / "allocation.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = summary(df)
    free = [("none", p) for p in POLICIES]
    constrained = [(c, p) for p in CONSTRAINED_POLICIES
                   for c in ("none", *CONSTRAINTS) if c in set(s.constraint)]
    lines = []
    for metric in ("incremental_value", "regret", "incremental_cost", "roi"):
        lines += [f"### {metric} (per user; mean ± s.e. over seeds)", "", *_table(s, metric, free)]
    if len(set(s.constraint)) > 1:
        lines += ["## Constraints on top of the budget", "",
                  "Regret is against the unconstrained oracle: the oracle's regret under a "
                  "constraint is the true value that constraint costs. `n/a`: ROI of an "
                  "allocation that spends nothing.", ""]
        for metric in ("incremental_value", "regret", "incremental_cost", "roi",
                       "budget_multiplier", "roi_multiplier", "capacity_multiplier"):
            lines += [f"### {metric} under constraints (per user; mean ± s.e. over seeds)", "",
                      *_table(s, metric, constrained)]
    md = out_dir / "allocation.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


SUITE = Suite(name="allocation", config_class=AllocationSuiteConfig, run=run, plot=plot,
              write=write_results, key_columns=("policy", "constraint", "budget_per_user", "n"),
              result_seeds=(0, 1, 2, 3, 4),
              # the registered worlds with an incentive cost (conf/world/); LBCF's value is
              # signed (no hurdle head: LightGBM T-learners, the LBCF suite's best) and costs
              # ~60 per treated user (the paper's budget is 75 per user)
              result_variants=(("world=hillstrom_semi",),
                               ("world=lbcf", "learner.value.learner=t",
                                "learner.value.base=lightgbm", "learner.cost.learner=t",
                                "learner.cost.base=lightgbm",
                                "experiment.params.budget_levels=[5,10,20,40,60]")))
