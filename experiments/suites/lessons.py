"""Lessons suite: two of the design notes' lessons as experiments on the world's exact truth.

**Lesson 4, campaign averages hide heterogeneity** (section ``campaign``). A campaign is a
(lifecycle segment, offer) cell. ``campaign_average`` allocates the budget from each campaign's
*average* effects: the randomised training log's Hajek difference in means of value and of cost,
offer ``a`` against no-offer inside segment ``s``, given to every user of the cell (the exact
allocator then funds whole campaigns, at most one fractionally). ``campaign_average_truth`` does
the same with the true cell means on the evaluation users (the best any campaign-level plan can
do). ``cost_aware_uplift`` allocates at the user-action level from the learned heads and
``oracle`` from the true effects. All are scored by truth at the same budget. The edges the
campaign view misses are counted at the oracle's budget multiplier ``lambda`` (its value per unit
of cost at the margin): a user-action edge ``(i, a)`` is *efficient* when ``tau_v - lambda tau_c
> 0``; a campaign is efficient when the mean of ``tau_v - lambda tau_c`` over its eligible users
is ``> 0``. ``efficient_edges_in_inefficient_campaigns`` is the share of efficient edges that sit
in inefficient campaigns, and ``oracle_value_in_inefficient_campaigns`` the share of the oracle's
incremental value that comes from them.

**Lesson 5, no-offer is a first-class action** (section ``forced``). ``forced_offer`` is the
same allocation with no outside option while budget remains: users the allocator leaves without
an offer receive, in decreasing order of net value ``tau_v - lambda tau_c`` at the allocator's
multiplier (``lambda = 0`` when the budget does not bind), their best eligible *offer*, until the
budget is spent (:func:`policies.baselines.fill_budget`). Where the budget binds the two
coincide; beyond the point where no offer adds value the forced policy keeps spending. Each is
run on the learned heads (``cost_aware_uplift`` vs ``forced_offer``) and on the truth (``oracle``
vs ``forced_offer_truth``). The leak is measured on truth: ``leaked_cost`` is the true incremental
cost spent on users whose best action is nothing (no eligible offer has a positive true
incremental value: sleeping dogs and lost causes mostly), ``leaked_value`` the true incremental
value earned on them (negative for sleeping dogs), ``sleeping_dog_cost`` the cost spent on
sleeping dogs.

Per seed: a randomised training log (``logging``, with propensities) fits the value and cost heads
(``learner``); a fresh uniform evaluation population is allocated by every policy; everything is
per evaluation user. Run ``python -m experiments.run experiment=lessons``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from estimators.heads import make_heads
from experiments.configs import HeadsConfig, LoggingConfig, WorldConfig
from experiments.store import atomic_write
from experiments.suites._plotting import figure_legend, log_axis, pyplot, save, series_style
from experiments.suites.allocation import features
from experiments.suites.base import Suite, mean_se, stream
from policies import baselines
from policies.allocation import Allocation
from simulators import LoggedData, default_params, policy_truth, simulate

__all__ = ["SUITE", "LessonsSuiteConfig", "campaign_effects", "forced_offer", "plot", "run",
           "summary", "write_results"]

CAMPAIGN_POLICIES = ("oracle", "campaign_average_truth", "cost_aware_uplift", "campaign_average")
FORCED_POLICIES = ("oracle", "forced_offer_truth", "cost_aware_uplift", "forced_offer")
SLEEPING_DOG = 3  # simulators.world.TYPE_NAMES
SHARE_METRICS = ("efficient_edges_in_inefficient_campaigns",
                 "oracle_value_in_inefficient_campaigns", "treated_share")


@dataclasses.dataclass(frozen=True)
class LessonsSuiteConfig:
    """``campaign_budgets`` / ``forced_budgets``: budgets per evaluation user of the two sections
    (the forced section reaches past the point where the oracle stops spending, about 5.2 per
    user in the default world)."""

    world: WorldConfig = WorldConfig()
    logging: LoggingConfig = LoggingConfig()
    learner: HeadsConfig = HeadsConfig()
    n_train: int = 40_000
    n_eval: int = 20_000
    campaign_budgets: tuple[float, ...] = (0.1, 0.4, 1.6)
    forced_budgets: tuple[float, ...] = (0.4, 1.6, 3.2, 6.4, 12.8)

    @classmethod
    def compact(cls) -> LessonsSuiteConfig:
        return cls(n_train=8_000, n_eval=4_000, campaign_budgets=(0.4,),
                   forced_budgets=(1.6, 6.4))

    def __post_init__(self) -> None:
        if self.n_train < 100 or self.n_eval < 10:
            raise ValueError(f"LessonsSuiteConfig: n_train >= 100 and n_eval >= 10, got "
                             f"n_train={self.n_train}, n_eval={self.n_eval}. Fix: raise them.")
        for name in ("campaign_budgets", "forced_budgets"):
            levels = getattr(self, name)
            if not levels or min(levels) <= 0:
                raise ValueError(f"LessonsSuiteConfig.{name}: non-empty, every budget per user "
                                 f"> 0, got {levels!r}. Fix: e.g. (0.4, 1.6).")
        if self.logging.kind == "confounded":
            raise ValueError("LessonsSuiteConfig.logging: the confounded logger records no "
                             "propensities, so the campaign readout (a Hajek difference in "
                             "means) is not identified. Fix: use a randomised logging kind.")


def campaign_effects(segment: np.ndarray, action: np.ndarray, reward: np.ndarray,
                     pscore: np.ndarray, eligible: np.ndarray, n_segments: int) -> np.ndarray:
    """Campaign readout ``(S, K+1)``: per segment ``s`` and offer ``a``, the Hajek difference in
    means ``sum w y / sum w`` over rows logged with ``a`` minus the same over rows logged with
    no-offer, weights ``w = 1 / pscore`` (consistent for the cell's average effect under a
    randomised log; the ratio estimator's bias is O(1/n)). Column 0 is 0, and so is a campaign
    no row of the segment is eligible for (it can reach nobody); a campaign with eligible rows but
    none logged raises ``ValueError`` (it has no readout)."""
    n_actions = eligible.shape[1]
    out = np.zeros((n_segments, n_actions))
    w = 1.0 / np.asarray(pscore, dtype=np.float64)
    for s in range(n_segments):
        in_s = segment == s
        means = np.zeros(n_actions)
        for a in range(n_actions):
            rows = in_s & (action == a)
            if rows.any():
                means[a] = np.sum(w[rows] * reward[rows]) / np.sum(w[rows])
            elif eligible[in_s, a].any():
                raise ValueError(f"action: no row of segment {s} was logged with action {a}, "
                                 f"so campaign ({s}, {a}) has no readout. Fix: a larger n_train "
                                 "or a logging policy that explores every offer in every "
                                 "segment.")
        out[s] = np.where(eligible[in_s].any(axis=0), means - means[0], 0.0)
    out[:, 0] = 0.0
    return out


def _cell_means(values: np.ndarray, segment: np.ndarray, eligible: np.ndarray,
                n_segments: int) -> np.ndarray:
    """``(S, K+1)`` mean of ``values[:, a]`` over the eligible users of each segment (0 where a
    cell has no eligible user)."""
    out = np.zeros((n_segments, values.shape[1]))
    for s in range(n_segments):
        e = eligible[segment == s]
        out[s] = np.sum(np.where(e, values[segment == s], 0.0), axis=0) / np.maximum(e.sum(0), 1)
    return out


def forced_offer(tau_value: np.ndarray, tau_cost: np.ndarray, *, budget: float,
                 eligible: np.ndarray, base: Allocation | None = None) -> Allocation:
    """The allocator's solution with no outside option while budget remains: first
    :func:`policies.allocation.allocate` on the given effects; then every user it leaves without
    an offer gets their best eligible offer at its budget multiplier ``lambda`` (``argmax_{a >= 1}
    tau_v - lambda tau_c``, ``lambda = 0`` if the budget does not bind), taken in decreasing order
    of that net value while the budget lasts (:func:`policies.baselines.fill_budget` on the
    remaining budget). ``base``: that allocation when the caller already has it (same effects,
    budget and eligibility), so it is not solved twice."""
    if base is None:
        base = baselines.cost_aware_uplift(tau_value, tau_cost, budget=budget, eligible=eligible)
    lam = base.budget_multiplier if base.budget_binds else 0.0
    untreated = base.action_dist[:, 0] >= 1.0 - 1e-12
    net = np.where(eligible, tau_value - lam * tau_cost, -np.inf)
    net[:, 0] = -np.inf
    has_offer = eligible[:, 1:].any(axis=1)
    proposed = np.where(untreated & has_offer, np.argmax(net, axis=1), 0)
    priority = np.where(proposed > 0, net[np.arange(len(net)), proposed], 0.0)
    extra = baselines.fill_budget(proposed, priority, tau_value, tau_cost,
                                  budget=max(budget - base.expected_cost, 0.0), eligible=eligible,
                                  method="forced_offer")
    dist = base.action_dist.copy()
    dist[untreated] = extra.action_dist[untreated]
    return Allocation(np.argmax(dist, axis=1), dist, float(np.sum(dist * tau_value)),
                      float(np.sum(dist * tau_cost)), lam, 0.0, np.zeros(dist.shape[1]),
                      base.budget_binds or extra.budget_binds, False,
                      np.zeros(dist.shape[1], dtype=bool), extra.n_fractional, "forced_offer")


def _truth_rows(ev: LoggedData, dist: np.ndarray, best: float, level: float) -> dict[str, float]:
    t = policy_truth(ev.truth, dist, eligible=ev.eligible)
    return {"incremental_value": t.incremental_value, "incremental_cost": t.incremental_cost,
            "regret": best - t.incremental_value, "cost_over_budget": t.incremental_cost - level}


def run(cfg: LessonsSuiteConfig, *, seed: int, progress: bool = True) -> pd.DataFrame:
    """Tidy rows: section (campaign / forced), policy, budget_per_user, n, metric, value (per
    evaluation user). Streams: ``stream(seed, "train")`` (the ``logging`` log),
    ``stream(seed, "eval")`` (a uniform evaluation population)."""
    world = cfg.world
    params = default_params(world)
    train = simulate(stream(seed, "train"), params, world, cfg.n_train, cfg.logging)
    ev = simulate(stream(seed, "eval"), params, world, cfg.n_eval, LoggingConfig(kind="uniform"))
    heads = make_heads(cfg.learner).fit(features(train.x, train.segment), train.action,
                                        value=train.value, cost=train.cost,
                                        action_prob=train.action_prob,
                                        n_actions=world.n_actions)
    tv_hat, tc_hat = (np.asarray(t, dtype=np.float64)
                      for t in heads.predict_tau(features(ev.x, ev.segment)))
    tv = np.asarray(ev.truth.tau_value, dtype=np.float64)
    tc = np.asarray(ev.truth.tau_cost, dtype=np.float64)
    e = np.asarray(ev.eligible, dtype=bool)
    seg_train, seg = np.asarray(train.segment), np.asarray(ev.segment)
    n_seg = int(params.segment_probs.shape[0])
    a_train = np.asarray(train.action)
    p_train = np.asarray(train.action_prob)[np.arange(train.n), a_train]
    camp_v, camp_c = (campaign_effects(seg_train, a_train, np.asarray(y), p_train,
                                       np.asarray(train.eligible, dtype=bool), n_seg)
                      for y in (train.value, train.cost))
    true_v, true_c = _cell_means(tv, seg, e, n_seg), _cell_means(tc, seg, e, n_seg)
    rows: list[dict] = []

    def emit(section: str, policy: str, level: float, metrics: dict[str, float]) -> None:
        rows.extend({"section": section, "policy": policy, "budget_per_user": level,
                     "seed": seed, "n": cfg.n_eval, "metric": m, "value": float(v)}
                    for m, v in metrics.items())

    nothing_best = ~np.where(e[:, 1:], tv[:, 1:] > 0, False).any(axis=1)
    dogs = np.asarray(ev.truth.response_type) == SLEEPING_DOG
    for level in cfg.campaign_budgets:
        budget = level * cfg.n_eval
        oracle = baselines.oracle(tv, tc, budget=budget, eligible=e)
        allocs = {
            "oracle": oracle,
            "campaign_average_truth": baselines.oracle(true_v[seg], true_c[seg], budget=budget,
                                                       eligible=e),
            "cost_aware_uplift": baselines.cost_aware_uplift(tv_hat, tc_hat, budget=budget,
                                                             eligible=e),
            "campaign_average": baselines.cost_aware_uplift(camp_v[seg], camp_c[seg],
                                                            budget=budget, eligible=e),
        }
        best = policy_truth(ev.truth, oracle.action_dist, eligible=e).incremental_value
        for p, a in allocs.items():
            emit("campaign", p, level, _truth_rows(ev, a.action_dist, best, level))
        lam = oracle.budget_multiplier if oracle.budget_binds else 0.0
        net = tv - lam * tc
        efficient = e & (net > 0)
        efficient[:, 0] = False
        cell_ok = (_cell_means(net, seg, e, n_seg) > 0)[seg]
        in_bad = efficient & ~cell_ok
        oracle_value = np.sum(oracle.action_dist * tv)
        emit("campaign", "oracle", level, {
            "efficient_edges_in_inefficient_campaigns": in_bad.sum() / max(efficient.sum(), 1),
            "oracle_value_in_inefficient_campaigns":
                np.sum(np.where(~cell_ok, oracle.action_dist * tv, 0.0)[:, 1:])
                / oracle_value if oracle_value > 0 else 0.0,
            "budget_multiplier": lam})
    for level in cfg.forced_budgets:
        budget = level * cfg.n_eval
        oracle = baselines.oracle(tv, tc, budget=budget, eligible=e)
        learned = baselines.cost_aware_uplift(tv_hat, tc_hat, budget=budget, eligible=e)
        allocs = {
            "oracle": oracle,
            "forced_offer_truth": forced_offer(tv, tc, budget=budget, eligible=e, base=oracle),
            "cost_aware_uplift": learned,
            "forced_offer": forced_offer(tv_hat, tc_hat, budget=budget, eligible=e,
                                         base=learned),
        }
        best = policy_truth(ev.truth, oracle.action_dist, eligible=e).incremental_value
        for p, a in allocs.items():
            d = a.action_dist
            leak = {"leaked_cost": np.sum((d * tc)[nothing_best]) / cfg.n_eval,
                    "leaked_value": np.sum((d * tv)[nothing_best]) / cfg.n_eval,
                    "sleeping_dog_cost": np.sum((d * tc)[dogs]) / cfg.n_eval,
                    "treated_share": float(np.mean(1.0 - d[:, 0]))}
            emit("forced", p, level, _truth_rows(ev, d, best, level) | leak)
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per (section, policy, budget, metric)."""
    return mean_se(df, ["section", "metric", "policy", "budget_per_user"])


def _panel(ax, s: pd.DataFrame, section: str, metric: str, policies: tuple[str, ...],
           title: str) -> None:
    for p in policies:
        d = s[(s.section == section) & (s.metric == metric) & (s.policy == p)]
        d = d.sort_values("budget_per_user")
        if d.empty:
            continue
        style = series_style(p.removesuffix("_truth"))
        ax.errorbar(d.budget_per_user, d["mean"], yerr=d.se, capsize=3, label=p,
                    linestyle="--" if p.endswith("_truth") or p == "oracle" else "-", **style)
    log_axis(ax, "x", np.sort(s[s.section == section].budget_per_user.unique()))
    ax.set_xlabel("budget per user")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Two figures, mean +- 1 s.e. over seeds: ``lessons_campaign.png`` (true value and regret
    of campaign-level against user-action allocation) and ``lessons_forced.png`` (true value,
    spend and leaked cost of the forced-offer policy against the allocator with no-offer)."""
    plt = pyplot()
    s = summary(df)
    paths = []
    for section, policies, panels, name in (
            ("campaign", CAMPAIGN_POLICIES,
             (("incremental_value", "true incremental value per user"),
              ("regret", "regret vs oracle per user")), "lessons_campaign.png"),
            ("forced", FORCED_POLICIES,
             (("incremental_value", "true incremental value per user"),
              ("incremental_cost", "true incremental cost per user"),
              ("leaked_cost", "cost on users whose best action is nothing")),
             "lessons_forced.png")):
        if s[s.section == section].empty:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.3))
        for ax, (metric, title) in zip(np.atleast_1d(axes), panels, strict=True):
            _panel(ax, s, section, metric, policies, title)
        figure_legend(fig, np.atleast_1d(axes), fontsize=8)
        paths.append(save(fig, out_dir, name))
    return paths


def _table(s: pd.DataFrame, section: str, metric: str, policies: tuple[str, ...]) -> list[str]:
    d = s[(s.section == section) & (s.metric == metric)]
    if d.empty:
        return []
    mean = d.pivot(index="policy", columns="budget_per_user", values="mean")
    se = d.pivot(index="policy", columns="budget_per_user", values="se")
    order = [p for p in policies if p in mean.index]
    unit = "share" if metric in SHARE_METRICS else "per user"
    lines = [f"### {section}: {metric} ({unit}; mean ± s.e. over seeds)", "",
             "| policy | " + " | ".join(f"B={b:g}" for b in mean.columns) + " |",
             "|---|" + "---|" * len(mean.columns)]
    for p in order:
        lines.append(f"| {p} | " + " | ".join(f"{mean.loc[p, b]:.4f} ± {se.loc[p, b]:.4f}"
                                             for b in mean.columns) + " |")
    return [*lines, ""]


def write_results(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``lessons.csv`` (all rows), ``lessons.md`` (a table per section and metric), figures."""
    out_dir = Path(out_dir)
    csv = out_dir / "lessons.csv"
    atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
    s = summary(df)
    lines = ["## Lesson 4: campaign averages hide heterogeneity", ""]
    for metric in ("incremental_value", "regret", "incremental_cost",
                   "efficient_edges_in_inefficient_campaigns",
                   "oracle_value_in_inefficient_campaigns"):
        lines += _table(s, "campaign", metric, CAMPAIGN_POLICIES)
    lines += ["## Lesson 5: no-offer is a first-class action", ""]
    for metric in ("incremental_value", "regret", "incremental_cost", "leaked_cost",
                   "leaked_value", "sleeping_dog_cost", "treated_share"):
        lines += _table(s, "forced", metric, FORCED_POLICIES)
    md = out_dir / "lessons.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines)))
    return [csv, md, *plot(df, out_dir)]


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """Regret per user of every policy at every budget, and the forced policy's leaked cost."""
    s = summary(df)
    keep = s[(s.metric == "regret") | ((s.section == "forced") & (s.metric == "leaked_cost"))]
    return keep.pivot_table(index=["section", "metric", "policy"], columns="budget_per_user",
                            values="mean").reset_index()


SUITE = Suite(name="lessons", config_class=LessonsSuiteConfig, run=run, plot=plot,
              write=write_results, summary=headline,
              key_columns=("section", "policy", "budget_per_user", "n"),
              result_seeds=(0, 1, 2, 3, 4))
